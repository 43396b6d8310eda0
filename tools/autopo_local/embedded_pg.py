"""A project-managed local PostgreSQL cluster for development and tests.

The pipelines load their snapshots into PostgreSQL. A developer machine or a CI
runner may have no database at all, so this module can initialise and run a
private cluster in a directory of the project (default ``./.pg``), using the
system's PostgreSQL binaries when present and otherwise the ones bundled by the
``pgserver`` wheel.

Layout of ``data_dir``::

    data_dir/
      pgdata/          the cluster (PGDATA)
      pgdata/autopo.conf   settings this module owns (port, listen address, ...)
      pgdata/pg_hba.conf   who may connect: every role, with its password (scram-sha-256)
      postgres.log     server log
      superuser-password   the password of the superuser ``autopo``: mode 0600, the invoking user's
      .lock            serialises start/stop of this data dir across processes

The server listens on 127.0.0.1 only, with no Unix socket, and asks every
connection for its role's password (scram-sha-256), the superuser ``autopo``'s
included: another user of the machine cannot connect (nor, as that superuser,
run programs with ``COPY ... TO PROGRAM``). The superuser's password is generated
at the first start and kept in ``data_dir/superuser-password``, created 0600;
``url`` carries it (URL-encoded), so whoever uses ``url`` needs nothing else. A
cluster made before passwords (``--auth=trust``) gets one on its next start.

No Unix socket, rather than one in a private folder: every client here (psycopg,
SQLAlchemy, psql through ``url``) uses TCP, the socket's default folders are not
the service account's to write, a folder below a long ``data_dir`` can exceed the
108-byte socket path limit, and a socket would be one more door to guard. The
``local`` rule of pg_hba.conf asks for the password too, should one be turned on.

initdb and postgres refuse to run as root. When this module runs as root it runs
them as an unprivileged service account (``$AUTOPO_PG_USER``, else a dedicated
system user ``autopo-pg`` created on first use, else ``nobody``) and gives that
account ownership of the cluster's folder. That account often cannot reach
``data_dir`` at all: a clone in root's home or under ``mktemp -d`` sits below a
0700 folder. Rather than loosen the permissions of the user's folders, the cluster
then lives outside the clone, in ``$AUTOPO_PG_SYSTEM_DIR`` (default
``/var/lib/autopo-pg``), in a folder named after ``data_dir``, and ``data_dir``
keeps a pointer to it (``cluster-dir``). pgserver's binaries, when they are the
ones used and sit in such a clone's venv, are copied there once too. The first
start says so in one line; ``destroy`` removes the cluster wherever it lives.

CLI::

    python -m autopo_local.embedded_pg start|stop|status|url|destroy [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import grp
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from autopo_local.private_files import write_private

log = logging.getLogger(__name__)

SUPERUSER = "autopo"
DATABASE = "autopo"
DEFAULT_SERVICE_USER = "autopo-pg"
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_PGDATA = "pgdata"
_CONF = "autopo.conf"
_LOG = "postgres.log"
_LOCK = ".lock"
# In data_dir, the invoking user's: the superuser's password (never in the service account's folder).
_PASSWORD_FILE = "superuser-password"
_HBA = "pg_hba.conf"
# The whole pg_hba.conf: no trust, no peer; every role gives its password. No replication rule.
_HBA_RULES = """\
# Managed by autopo_local.embedded_pg: every connection gives its role's password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
"""
_RESTART_HINT = "`make clean` (or `python -m autopo_local.embedded_pg destroy`) deletes the cluster to start afresh"
# In data_dir: where the cluster lives when it is not data_dir itself (root, unreachable data_dir).
_POINTER = "cluster-dir"
SYSTEM_DIR_ENV = "AUTOPO_PG_SYSTEM_DIR"
DEFAULT_SYSTEM_DIR = Path("/var/lib/autopo-pg")
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 60


class EmbeddedPostgresError(RuntimeError):
    """The local cluster could not be found, initialised, started or stopped."""


# --------------------------------------------------------------------------- binaries


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED_BINARIES)


def bundled_pg_bin() -> Path | None:
    """Binaries shipped in the ``pgserver`` wheel (``pgserver/pginstall/bin``), if installed."""
    # find_spec locates the package without importing it: importing pgserver
    # pulls in platformdirs/psutil and warns about XDG dirs, none of which we need.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_server_binaries(candidate):
            return candidate
    return None


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin$", path)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def _system_pg_bin() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        # pg_config may come from libpq-dev alone, whose bindir lacks the server.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _has_server_binaries(Path(out)):
                return Path(out)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_server_binaries(Path(candidate)):
            return Path(candidate)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        # A PATH entry may hold only symlinks to pg_ctl/initdb; the real
        # directory next to the resolved pg_ctl also has postgres.
        for directory in (Path(pg_ctl).parent, Path(pg_ctl).resolve().parent):
            if _has_server_binaries(directory):
                return directory
    return None


def find_pg_bin() -> Path:
    """Directory holding initdb, pg_ctl and postgres.

    Order: ``$AUTOPO_PG_BIN`` (the value ``pgserver`` or ``bundled`` selects the
    pgserver wheel's binaries), the system's PostgreSQL, the pgserver wheel.
    """
    override = os.environ.get("AUTOPO_PG_BIN", "").strip()
    if override:
        if override.lower() in ("pgserver", "bundled"):
            bundled = bundled_pg_bin()
            if bundled is None:
                raise EmbeddedPostgresError(
                    f"AUTOPO_PG_BIN={override} but the pgserver package (with its bundled "
                    "PostgreSQL binaries) is not installed"
                )
            return bundled
        path = Path(override).expanduser()
        if not _has_server_binaries(path):
            raise EmbeddedPostgresError(
                f"AUTOPO_PG_BIN={override} does not contain executable " + ", ".join(_REQUIRED_BINARIES)
            )
        return path
    found = _system_pg_bin() or bundled_pg_bin()
    if found is None:
        raise EmbeddedPostgresError(
            "no PostgreSQL server binaries found: install PostgreSQL, `pip install pgserver`, "
            "or set AUTOPO_PG_BIN to a directory containing initdb, pg_ctl and postgres"
        )
    return found


def pg_major_version(pg_bin: Path) -> str:
    """Major version of the server binaries, e.g. ``"15"``, as written in PG_VERSION."""
    out = subprocess.run(
        [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if match is None:
        raise EmbeddedPostgresError(f"cannot parse postgres version from {out!r}")
    major = int(match.group(1))
    # Before PostgreSQL 10 the major version had two parts (9.6).
    return f"{major}.{match.group(2)}" if major < 10 and match.group(2) else str(major)


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class _Account:
    """Who runs initdb/pg_ctl/postgres; ``uid=None`` means "the current user, as is"."""

    name: str
    uid: int | None
    gid: int


def _ensure_service_user(name: str, created: list[str]) -> pwd.struct_passwd | None:
    """The system user ``name``, created when missing (its name then goes into ``created``)."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.access(p, os.X_OK)), None
    )
    if useradd is None:
        return None
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "autopo local PostgreSQL",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Another process may have created it in the meantime: look again either way.
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        if result.returncode == 0:
            created.append(name)
        return entry
    log.warning("could not create system user %s: %s", name, result.stderr.strip())
    return None


def _service_account(created: list[str]) -> _Account:
    if os.geteuid() != 0:
        return _Account(pwd.getpwuid(os.geteuid()).pw_name, None, os.getegid())
    wanted = os.environ.get("AUTOPO_PG_USER", "").strip()
    if wanted:
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError:
            raise EmbeddedPostgresError(f"AUTOPO_PG_USER={wanted}: no such user") from None
    else:
        entry = _ensure_service_user(DEFAULT_SERVICE_USER, created) or pwd.getpwnam("nobody")
    if entry.pw_uid == 0:
        raise EmbeddedPostgresError("PostgreSQL cannot run as root; choose another AUTOPO_PG_USER")
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _search_denied(path: Path, account: _Account) -> Path | None:
    """First ancestor of ``path`` that ``account`` cannot traverse, if any.

    os.access only answers for the current user, so the mode bits are checked
    by hand for the service account (ACLs are not considered).
    """
    if account.uid is None:
        return None
    groups = {account.gid} | {g.gr_gid for g in _groups_of(account.name)}
    for directory in reversed(path.resolve().parents):
        st = directory.stat()
        if st.st_uid == account.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return directory
    return None


def _groups_of(user: str) -> list[grp.struct_group]:
    return [g for g in grp.getgrall() if user in g.gr_mem]


def system_dir() -> Path:
    """Where root keeps the clusters (and binaries) that the service account cannot reach in place."""
    return Path(os.environ.get(SYSTEM_DIR_ENV) or DEFAULT_SYSTEM_DIR).absolute()


def relocated_cluster_dir(data_dir: Path) -> Path:
    """The cluster folder outside the clone for ``data_dir``: one per data dir, named so a person can tell."""
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:12]
    return system_dir() / f"{data_dir.absolute().parent.name or 'root'}{data_dir.name}-{digest}"


def _make_system_dir() -> Path:
    base = system_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
        # Root's; others may pass through to their own cluster folder but not list the clusters.
        os.chmod(base, 0o711)
    except OSError as exc:
        raise EmbeddedPostgresError(
            f"cannot create {base} for the PostgreSQL cluster ({exc.strerror}): set {SYSTEM_DIR_ENV} "
            "to a folder root can write that the service user can traverse"
        ) from exc
    return base


def _reachable_bundled_copy(bundled_bin: Path) -> Path:
    """pgserver's server copied once under the system dir, laid out as in site-packages; its ``bin``.

    The binaries find their libraries through an RPATH relative to themselves
    (``$ORIGIN/../../../pgserver.libs``), so ``pgserver/pginstall`` and ``pgserver.libs`` are copied side by side.
    """
    try:
        version = importlib.metadata.version("pgserver")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    install = bundled_bin.parent
    site = install.parent.parent
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:8]
    target = _make_system_dir() / f"pgserver-{version}-{digest}"
    copied_bin = target / install.parent.name / install.name / bundled_bin.name
    if not _has_server_binaries(copied_bin):
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install, staging / install.parent.name / install.name, symlinks=True)
        libs = site / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                # Readable (and, where executable, runnable) by the service account, writable by root only.
                mode = path.stat().st_mode
                os.chmod(path, (mode | stat.S_IRGRP | stat.S_IROTH | (0o011 if mode & 0o100 else 0)) & ~0o022)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process copied it meanwhile
    return copied_bin


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # postgres binds with SO_REUSEADDR, so sockets in TIME_WAIT do not
        # block it; probe the same way to avoid false "busy" answers.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EmbeddedPostgres:
    """A private PostgreSQL cluster living in ``data_dir``.

    ``port=None`` reuses the port remembered in ``data_dir`` or picks a free
    one. ``durable=False`` turns off fsync and friends: right for throwaway
    test clusters, wrong for data you want to survive an OS crash.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        pg_bin: Path | None = None,
        durable: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._pg_bin = pg_bin
        self.durable = durable
        self._account: _Account | None = None
        #: what start() had to do to the system (a service user, a folder outside data_dir), said once
        self.notices: list[str] = []
        self._created_users: list[str] = []

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster and its log live: ``data_dir``, or the folder its pointer names."""
        try:
            return Path((self.data_dir / _POINTER).read_text(encoding="utf-8").strip())
        except OSError:
            return self.data_dir

    @property
    def pgdata(self) -> Path:
        return self.cluster_dir / _PGDATA

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / _LOG

    @property
    def password_file(self) -> Path:
        """The superuser's password: in ``data_dir`` (the invoking user's), mode 0600."""
        return self.data_dir / _PASSWORD_FILE

    @property
    def password(self) -> str:
        """The superuser's password; set by the first ``start()``."""
        password = self._read_password()
        if password is None:
            raise EmbeddedPostgresError(f"{self.data_dir} has no superuser password yet: start the cluster first")
        return password

    # -- public API -------------------------------------------------------------

    @property
    def pg_bin(self) -> Path:
        if self._pg_bin is None:
            self._pg_bin = find_pg_bin()
        return self._pg_bin

    @property
    def port(self) -> int:
        port = self._requested_port or self._remembered_port()
        if port is None:
            raise EmbeddedPostgresError(f"no port chosen yet for {self.data_dir}; call start() first")
        return port

    @property
    def url(self) -> str:
        """``postgresql://autopo:PASSWORD@127.0.0.1:PORT/autopo``, the password URL-encoded.

        Accepted as it is by psycopg, psql and SQLAlchemy (``postgresql+psycopg2://...`` after a
        prefix replace), and by Airflow as a connection URI; cutting the database off the end
        (``url.rsplit("/", 1)[0]``) keeps the password, which never holds a ``/`` once encoded.
        """
        return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{DATABASE}"

    def is_running(self) -> bool:
        """Whether a postmaster is running on this data dir.

        Same test as ``pg_ctl status`` (the pid in postmaster.pid is alive),
        done in-process: no subprocess, and root can answer even when the
        service account can no longer reach the data dir.
        """
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another user
        return True

    def start(self) -> None:
        """Initialise if needed, start and wait until ``autopo`` accepts connections."""
        self._prepare_data_dir()
        with self._locked():
            password = self._ensure_password()
            if self.is_running():
                # A server started by another process/CLI call: just make sure it answers.
                running_port = self._remembered_port()
                if self._requested_port is not None and running_port not in (None, self._requested_port):
                    raise EmbeddedPostgresError(
                        f"{self.pgdata} is already running on port {running_port}, "
                        f"not {self._requested_port}; stop it first"
                    )
                self._wait_for_connections(self.port, password)
                self._require_passwords(self.port, password)
                return
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(password)
            self._check_version()
            self._start_server(password)

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); a no-op when not running."""
        if not self.is_running():
            return
        # No _prepare_data_dir here: stopping must work even when the data dir
        # became unreachable for the service account (a parent was chmod'ed).
        with self._locked():
            if not self.is_running():
                return
            account = self.account
            if account.uid is not None and _search_denied(self.pgdata, account) is not None:
                self._stop_by_signal()
                return
            result = self._pg_ctl("stop", "-w", "-t", str(_STOP_TIMEOUT_S), "-m", "fast", check=False)
            if result.returncode != 0 and self.is_running():
                raise EmbeddedPostgresError(
                    f"pg_ctl stop failed for {self.pgdata}: {result.stderr.strip() or result.stdout.strip()}"
                )

    # -- internals --------------------------------------------------------------

    def _postmaster_pid(self) -> int | None:
        try:
            first_line = (self.pgdata / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0]
            return int(first_line)
        except (OSError, ValueError):
            return None

    def _stop_by_signal(self) -> None:
        # What `pg_ctl stop -m fast` does: SIGINT, then wait for the
        # postmaster to remove its pid file on its way out.
        pid = self._postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while (self.pgdata / "postmaster.pid").exists() and self.is_running():
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL (pid {pid}) in {self.pgdata} did not stop")
            time.sleep(0.05)

    @property
    def account(self) -> _Account:
        if self._account is None:
            self._account = _service_account(self._created_users)
        return self._account

    def _prepare_data_dir(self) -> None:
        account = self.account
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if account.uid is None:
            return
        said: list[str] = []
        if self._created_users:
            said.append(f"created the system user {account.name!r} to run it")
        cluster_dir = self.cluster_dir
        denied = _search_denied(cluster_dir, account)
        if denied is not None and cluster_dir == self.data_dir and not (self.pgdata / "PG_VERSION").exists():
            # A new cluster whose folder the service account cannot reach (below a 0700 home or
            # mktemp folder): keep it outside instead of opening up the user's folders.
            cluster_dir = relocated_cluster_dir(self.data_dir)
            base = _make_system_dir()
            unreachable = _search_denied(base, account)
            if unreachable is not None:
                raise EmbeddedPostgresError(
                    f"the PostgreSQL service user {account.name!r} cannot reach {self.data_dir} ({denied} is "
                    f"not searchable by it), nor {base} ({unreachable} is not): set {SYSTEM_DIR_ENV} to a "
                    "folder it can reach"
                )
            cluster_dir.mkdir(exist_ok=True)
            (self.data_dir / _POINTER).write_text(f"{cluster_dir}\n", encoding="utf-8")
            said.append(f"{denied} is not searchable by {account.name!r}, so the cluster lives in {cluster_dir}")
            denied = None
        if denied is not None:
            raise EmbeddedPostgresError(
                f"the PostgreSQL service user {account.name!r} cannot reach {cluster_dir}: "
                f"{denied} is not searchable by it (e.g. `chmod o+x {denied}`, or use another "
                "--data-dir / AUTOPO_PG_DIR)"
            )
        denied_bin = _search_denied(self.pg_bin / "postgres", account)
        if denied_bin is not None and self.pg_bin == bundled_pg_bin():
            self._pg_bin = _reachable_bundled_copy(self.pg_bin)
            said.append(f"pgserver's binaries are run from a copy in {self._pg_bin.parent}")
            denied_bin = None
        if denied_bin is not None:
            raise EmbeddedPostgresError(
                f"the PostgreSQL service user {account.name!r} cannot reach the binaries in "
                f"{self.pg_bin}: {denied_bin} is not searchable by it"
            )
        # Only re-own when needed: a recursive chown of a large cluster on every start is slow.
        if cluster_dir.stat().st_uid != account.uid or (
            self.pgdata.exists() and self.pgdata.stat().st_uid != account.uid
        ):
            for path in [cluster_dir, *cluster_dir.rglob("*")]:
                # The superuser's password stays the invoking user's (cluster_dir may be data_dir).
                if path.parent == self.data_dir and path.name.lstrip(".").startswith(_PASSWORD_FILE):
                    continue
                os.chown(path, account.uid, account.gid, follow_symlinks=False)
        os.chmod(cluster_dir, 0o700)
        if said:
            self.notices.append(f"running as root, PostgreSQL runs as {account.name!r}: " + "; ".join(said))

    def destroy(self) -> None:
        """Stop the cluster and remove it, wherever it lives, and ``data_dir``."""
        self.stop()
        cluster_dir = self.cluster_dir
        if cluster_dir != self.data_dir:
            shutil.rmtree(cluster_dir, ignore_errors=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Serialises start/stop of one data dir across processes (two CLI
        # calls, parallel test workers); released automatically if we die.
        with open(self.data_dir / _LOCK, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # Keep messages in English/C so failures can be matched and read in logs.
        env.update({"LC_ALL": "C", "LANG": "C"})
        result = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            env=env,
            # The service account may not be able to enter our cwd (e.g. /root).
            cwd=self.cluster_dir,
            timeout=timeout,
            # Keep the postmaster out of our process group: a Ctrl-C meant
            # for the caller must not shut the database down.
            start_new_session=True,
            # subprocess drops privileges itself (setgroups/setgid/setuid
            # between fork and exec): fork-safe, unlike a Python preexec_fn,
            # and no runuser/setpriv needed on the machine. None = unchanged.
            user=self.account.uid,
            group=self.account.gid if self.account.uid is not None else None,
            extra_groups=[] if self.account.uid is not None else None,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
            )
        return result

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(
            [str(self.pg_bin / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=check,
            timeout=max(_START_TIMEOUT_S, _STOP_TIMEOUT_S) + 30,
        )

    def _initdb(self, password: str) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self.pgdata} exists and is not empty but holds no cluster (no PG_VERSION)")
        # initdb reads the superuser's password from a file: a copy for the service account, 0600 from
        # its creation (mkstemp), in the cluster's folder (the only one that account can surely reach),
        # removed as soon as initdb is done.
        handle, pwfile = tempfile.mkstemp(prefix=".initdb-password.", dir=self.cluster_dir)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                if self.account.uid is not None:
                    os.fchown(out.fileno(), self.account.uid, self.account.gid)
                out.write(password + "\n")
            args = [
                str(self.pg_bin / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                # C collation: sorting by plain character code, as the outputs' contract demands.
                "--encoding=UTF8",
                "--locale=C",
            ]
            if not self.durable:
                args.append("--no-sync")
            self._run(args)
        finally:
            Path(pwfile).unlink(missing_ok=True)
        self._write_cluster_file(self.pgdata / _HBA, _HBA_RULES)
        with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\n# Settings managed by autopo_local.embedded_pg\ninclude_if_exists = '{_CONF}'\n")

    # -- passwords --------------------------------------------------------------

    def _read_password(self) -> str | None:
        """The superuser's password from ``password_file``; None when there is none yet."""
        try:
            # Not through a link: root reads this file, in a folder the service account may own.
            fd = os.open(self.password_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot read {self.password_file}: {exc.strerror}") from exc
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise EmbeddedPostgresError(f"{self.password_file} is not a regular file")
            if info.st_mode & 0o077:
                raise EmbeddedPostgresError(
                    f"{self.password_file} (the database superuser's password) is readable by others "
                    f"(mode {stat.S_IMODE(info.st_mode):o}): `chmod 600` it, or {_RESTART_HINT}"
                )
            # The first line, as initdb reads its --pwfile.
            password = handle.read().split("\n", 1)[0].rstrip("\r")
        if not password:
            raise EmbeddedPostgresError(f"{self.password_file} is empty: restore it, or {_RESTART_HINT}")
        return password

    def _ensure_password(self) -> str:
        """The superuser's password, generated (and kept in ``password_file``) when there is none yet."""
        password = self._read_password()
        if password is not None:
            return password
        if (self.pgdata / "PG_VERSION").exists() and not self._hba_trusts():
            raise EmbeddedPostgresError(
                f"{self.pgdata} asks for the superuser's password but {self.password_file} is missing: "
                f"restore it, or {_RESTART_HINT}"
            )
        # A new cluster, or one from before passwords (trust): it gets this one.
        password = secrets.token_urlsafe(32)
        write_private(self.password_file, password + "\n")
        return password

    def _hba_trusts(self) -> bool:
        """Whether a rule of pg_hba.conf lets a connection in without a password (``trust``)."""
        path = self.pgdata / _HBA
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot read {path}: {exc.strerror}") from exc
        rules = (line.split("#", 1)[0].split() for line in text.splitlines())
        return any("trust" in fields[3:] for fields in rules)

    def _refuses_without_password(self, port: int) -> bool:
        try:
            # password="" (not absent): no PGPASSWORD, and no ~/.pgpass either (a passfile that does not
            # exist is skipped quietly; /dev/null made libpq warn on every start).
            with psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                dbname="postgres",
                password="",
                passfile=str(self.data_dir / "no-such-passfile"),
                connect_timeout=5,
            ):
                return False
        except psycopg.OperationalError:
            return True

    def _require_passwords(self, port: int, password: str) -> None:
        """Make a cluster from before passwords (trust) ask for them: the superuser gets its password,
        pg_hba.conf the rules of a new cluster, and the server reloads them. A no-op otherwise."""
        trusted = self._hba_trusts()
        if not trusted and self._refuses_without_password(port):
            return
        with _admin_connection(port, password) as conn:
            # Still trust: this connection is let in without the password, which is set now.
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
            if trusted:
                self._write_cluster_file(self.pgdata / _HBA, _HBA_RULES)
            conn.execute("SELECT pg_reload_conf()")
        # The postmaster reloads on a signal, a moment later; a pg_hba.conf it cannot parse is not loaded.
        deadline = time.monotonic() + 10
        while not self._refuses_without_password(port):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL on port {port} still lets connections in without a password after "
                    f"{self.pgdata / _HBA} was rewritten; see {self.log_file}"
                )
            time.sleep(0.05)
        if trusted:
            self.notices.append(
                f"{self.pgdata} let every local connection in without a password; it now asks for one "
                f"(scram-sha-256), the superuser's kept in {self.password_file}: restart what was connected "
                "with the old URL (`make down`, `make up`)"
            )

    def _write_cluster_file(self, path: Path, text: str) -> None:
        """A file of the cluster's (pg_hba.conf, autopo.conf): the service account's, 0600, replaced whole."""
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                if self.account.uid is not None:
                    os.fchown(out.fileno(), self.account.uid, self.account.gid)
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _check_version(self) -> None:
        cluster = (self.pgdata / "PG_VERSION").read_text(encoding="ascii").strip()
        binaries = pg_major_version(self.pg_bin)
        if cluster != binaries:
            raise EmbeddedPostgresError(
                f"{self.pgdata} was created by PostgreSQL {cluster} but the binaries in "
                f"{self.pg_bin} are {binaries}: set AUTOPO_PG_BIN to PostgreSQL {cluster} "
                "binaries or delete the data dir"
            )

    def _remembered_port(self) -> int | None:
        try:
            text = (self.pgdata / _CONF).read_text(encoding="utf-8")
        except OSError:
            return None
        match = re.search(r"^port\s*=\s*(\d+)", text, re.MULTILINE)
        return int(match.group(1)) if match else None

    def _write_conf(self, port: int) -> None:
        lines = [
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            # No Unix socket: its default directory may not be writable by the
            # service account, and a long data_dir path would exceed the socket path limit.
            "unix_socket_directories = ''",
            # Roles' passwords stored as SCRAM verifiers (the default only since PostgreSQL 14).
            "password_encryption = 'scram-sha-256'",
        ]
        if not self.durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        self._write_cluster_file(self.pgdata / _CONF, "\n".join(lines) + "\n")

    def _choose_port(self) -> tuple[int, bool]:
        """The port to start on and whether another may be tried if it is taken."""
        if self._requested_port is not None:
            return self._requested_port, False
        remembered = self._remembered_port()
        if remembered is not None:
            if port_is_free(remembered):
                return remembered, True
            log.warning("remembered port %s of %s is taken; picking another", remembered, self.data_dir)
        return free_port(), True

    def _start_server(self, password: str) -> None:
        port, may_move = self._choose_port()
        for attempt in range(3):
            self._write_conf(port)
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            result = self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT_S), "-l", str(self.log_file), check=False)
            if result.returncode == 0:
                self._wait_for_connections(port, password)
                self._require_passwords(port, password)
                self._ensure_database(port, password)
                return
            server_log = self._read_log(log_offset)
            # A free port can be grabbed by someone else between our probe and
            # postgres binding it; only then is another port worth a try.
            if may_move and attempt < 2 and "could not bind" in server_log.lower():
                port = free_port()
                continue
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start in {self.pgdata}: "
                f"{(result.stderr or result.stdout).strip()}\n{server_log[-4000:]}"
            )

    def _read_log(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_for_connections(self, port: int, password: str, timeout: float = _START_TIMEOUT_S) -> None:
        # pg_ctl -w already waits for "ready", but an already-running server
        # may still be recovering; poll a real connection to be sure.
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", password=password, connect_timeout=5
                ):
                    return
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise EmbeddedPostgresError(
                        f"PostgreSQL on port {port} refuses the superuser's password in {self.password_file}: "
                        f"restore the right one, or {_RESTART_HINT}"
                    ) from None
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"PostgreSQL on port {port} does not accept connections: {exc}"
                    ) from exc
                time.sleep(0.05)

    def _ensure_database(self, port: int, password: str) -> None:
        # Checked on every start, so a crash between initdb and CREATE DATABASE heals itself.
        with _admin_connection(port, password) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _admin_connection(port: int, password: str) -> psycopg.Connection[Any]:
    """The superuser, on the maintenance database, in autocommit: for setting the cluster up."""
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=SUPERUSER,
        dbname="postgres",
        password=password,
        autocommit=True,
        connect_timeout=5,
    )


# --------------------------------------------------------------------------- CLI


def default_data_dir() -> Path:
    return Path(os.environ.get("AUTOPO_PG_DIR") or ".pg").absolute()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autopo_local.embedded_pg",
        description="Manage the project's local PostgreSQL cluster.",
    )
    parser.add_argument("command", choices=("start", "stop", "status", "url", "destroy"))
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="cluster directory (default: $AUTOPO_PG_DIR or ./.pg)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: remembered or free)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    server = EmbeddedPostgres(args.data_dir or default_data_dir(), port=args.port)
    try:
        if args.command == "start":
            started = time.monotonic()
            server.start()
            print(f"running: {server.url} ({time.monotonic() - started:.2f}s)", file=sys.stderr)
        elif args.command == "stop":
            server.stop()
            print(f"stopped: {server.data_dir}", file=sys.stderr)
        elif args.command == "destroy":
            where = server.cluster_dir
            server.destroy()
            print(f"removed: {where}", file=sys.stderr)
        elif args.command == "status":
            if server.is_running():
                try:
                    where = server.url
                except EmbeddedPostgresError:  # a cluster from before passwords: `start` gives it one
                    where = f"port {server.port}, no password yet (`start` sets one)"
                print(f"running: {where}")
                return 0
            print(f"stopped: {server.data_dir}")
            return 3
        else:
            server.start()
            # stdout carries the URI only, so `$(... url)` can be used in scripts.
            print(server.url)
    except EmbeddedPostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for notice in server.notices:
            print(f"note: {notice}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
