#!/usr/bin/env bash
# The Debian packages the tests use besides Python's: docker-compose (the real compose parser for
# docker-compose.yaml; no Docker engine is needed or installed), redis-server (the Celery broker
# the distributed test starts on a port of its own) and chromium (/usr/bin/chromium, the browser
# Playwright drives in tests/system/test_dashboard_browser.py and `make dashboard-screenshot`;
# Playwright's own browser download is not used). Installed with apt as root (or passwordless
# sudo), only when missing: a second run does nothing. Used by `make test`, `make setup` and .ci/run.
#
#   tools/system_packages.sh            install what is missing, or fail saying what and how
#   tools/system_packages.sh --if-able  the same, but only a note when this user cannot install
set -euo pipefail

missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if ! sudo -n true 2>/dev/null; then
        message="the tests need ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' (or run as root)"
        if [[ ${1:-} == --if-able ]]; then
            echo "note: $message" >&2
            exit 0
        fi
        echo "$message" >&2
        exit 1
    fi
    sudo=(sudo -n)
fi
echo "installing ${missing[*]} (apt)"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's redis-server package starts a system Redis on 6379 (where the init system lets it): the
# tests start their own, so none is left running as a service, now or at the next boot.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    if [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/redis-server ]]; then
        "${sudo[@]}" /etc/init.d/redis-server stop >/dev/null 2>&1 || true
        if command -v update-rc.d >/dev/null; then
            "${sudo[@]}" update-rc.d redis-server disable >/dev/null 2>&1 || true
        fi
    fi
fi
