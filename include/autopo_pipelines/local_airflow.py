"""Airflow on this machine the way a user runs it: the API server (with the UI), the
scheduler, the DAG processor and the triggerer, LocalExecutor, metadata in a
database of the project's embedded PostgreSQL, the project's DAGs and plugin.

``make up`` / ``make down`` call this module's CLI; the system tests start their
own throwaway stack with the same pieces.

Airflow 3.3 facts this relies on (checked against the installed source):

* Task processes (LocalExecutor workers) talk to the API server's execution API
  at ``[core] execution_api_server_url``; it defaults to
  ``http://localhost:8080/execution/``, so a stack on another port must set it.
* The scheduler signs the workers' tokens and the API server checks them with
  ``[api_auth] jwt_secret``. When it is empty each process generates its own
  and every task is rejected, so all components get the same secret.
* SimpleAuthManager reads passwords from ``[core] simple_auth_manager_passwords_file``
  (JSON ``{"user": "password"}``).
* The scheduler and triggerer start a log server on all interfaces unless
  ``--skip-serve-logs``; the API server reads task logs from the shared local
  ``logs/`` folder anyway, so they are started with that flag.

CLI::

    python -m autopo_pipelines.local_airflow up | down | status
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from autopo_pipelines.embedded_pg import free_port, port_is_free

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
STOP_GRACE_S = 20
COMPONENTS = {
    "api-server": ("api-server", "--host", "127.0.0.1", "--port", "{api_port}", "--workers", "1"),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
}


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A killed process stays a zombie until its parent
    (init, for a stack `make up` left behind) reaps it; on Linux those are not counted."""
    proc = Path("/proc")
    if proc.is_dir():
        for stat_file in proc.glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
                fields = stat_file.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def create_metadata_db(admin_url: str, name: str, *, replace: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        if replace:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_metadata_db(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stack_environment(
    *,
    home: Path,
    metadata_url: str,
    api_port: int,
    data_root: Path,
    warehouse_url: str,
    password_file: Path,
    keys: Mapping[str, str],
    pg_dir: Path,
) -> dict[str, str]:
    """The environment every component and CLI call of a stack runs with.

    ``keys``: ``fernet_key``, ``jwt_secret`` and ``api_secret_key``, the same for every
    component (and, for a stack that is stopped and started again, across starts).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    api_url = f"http://127.0.0.1:{api_port}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Two cores: two task processes at a time.
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            # Auth: SimpleAuthManager with one admin whose password we choose.
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            # One signing secret for every component: the scheduler signs task tokens, the API server checks them.
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            # API server on loopback; workers reach its execution API there.
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            # Not started (--skip-serve-logs), but never the shared defaults 8793/8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # The pipelines.
            "AUTOPO_DATA_DIR": str(data_root),
            "AIRFLOW_CONN_AUTOPO_DB": warehouse_url,
            "AUTOPO_CONFIG_DIR": str(REPO_ROOT / "dags" / "configs"),
            "AUTOPO_PG_DIR": str(pg_dir),
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def new_keys() -> dict[str, str]:
    return {
        "fernet_key": fernet_key(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
    }


def start_component(home: Path, env: Mapping[str, str], name: str, *args: str) -> subprocess.Popen[bytes]:
    """``airflow <args>`` in the background, logging to ``<home>/component-logs/<name>.log``."""
    log_path = home / "component-logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=dict(env),
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: when stopped, the component and the processes it
            # forked (uvicorn and executor workers, task supervisors) are signalled
            # together, by this PID, and nothing else is.
            start_new_session=True,
        )


def stop_process_groups(groups: Mapping[str, int], grace_s: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM each named process group, SIGKILL what is left after the grace period; what had to be killed."""
    problems: list[str] = []
    for pgid in groups.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for name, pgid in groups.items():
        while group_alive(pgid) and time.monotonic() < deadline:
            # A leader that is our own child stays a zombie, and its group "alive", until reaped.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pgid, os.WNOHANG)
            time.sleep(0.1)
        if group_alive(pgid):
            problems.append(f"{name} (process group {pgid}) did not stop on SIGTERM; killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    # SIGKILL is not instant either: return when nothing of the groups runs any more.
    killed_by = time.monotonic() + 10
    while any(group_alive(pgid) for pgid in groups.values()) and time.monotonic() < killed_by:
        time.sleep(0.1)
    return problems


def run_cli(env: Mapping[str, str], home: Path, *args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=dict(env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def set_pools(env: Mapping[str, str], home: Path) -> None:
    """Each pipeline's pool with its configured size (as `make pools` does)."""
    pools = subprocess.run(
        [sys.executable, "-m", "autopo_pipelines.config", "pools"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for line in pools.splitlines():
        if line.strip():
            pool, slots = line.split()
            run_cli(env, home, "pools", "set", pool, slots, f"autopo pipeline {pool}", timeout=60)


# --- make up / make down --------------------------------------------------------------

LOCAL_METADATA_DB = "airflow_local"


def _state_path(home: Path) -> Path:
    return home / "local-stack.json"


def up(home: Path, data_root: Path, pg_dir: Path, api_port: int) -> int:
    from autopo_pipelines.embedded_pg import EmbeddedPostgres

    state_path = _state_path(home)
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    running = {name: pgid for name, pgid in state.get("groups", {}).items() if group_alive(pgid)}
    if running:
        print(f"already running ({', '.join(running)}): UI at {state['url']}; `make down` first to restart")
        return 0
    home.mkdir(parents=True, exist_ok=True)
    data_root.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(pg_dir)
    server.start()
    cluster = server.url.rsplit("/", 1)[0]
    create_metadata_db(f"{cluster}/postgres", LOCAL_METADATA_DB, replace=False)
    metadata_url = cluster.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{LOCAL_METADATA_DB}"
    # Kept across restarts: connections stored encrypted need the same Fernet key.
    keys = state.get("keys") or new_keys()
    password = state.get("password") or secrets.token_urlsafe(12)
    password_file = home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({ADMIN_USER: password}) + "\n", encoding="utf-8")
    if not port_is_free(api_port):
        raise SystemExit(f"port {api_port} is in use: `make up API_PORT=...` picks another")
    env = stack_environment(
        home=home,
        metadata_url=metadata_url,
        api_port=api_port,
        data_root=data_root,
        warehouse_url=os.environ.get("AIRFLOW_CONN_AUTOPO_DB") or server.url,
        password_file=password_file,
        keys=keys,
        pg_dir=pg_dir,
    )
    print("migrating the Airflow metadata database ...")
    run_cli(env, home, "db", "migrate")
    set_pools(env, home)
    groups = {}
    for name, args in COMPONENTS.items():
        process = start_component(home, env, name, *(a.format(api_port=api_port) for a in args))
        groups[name] = process.pid
    url = f"http://127.0.0.1:{api_port}"
    state = {
        "url": url,
        "groups": groups,
        "keys": keys,
        "password": password,
        "metadata_url": metadata_url,
        "api_port": api_port,
        "data_root": str(data_root),
        "warehouse_url": env["AIRFLOW_CONN_AUTOPO_DB"],
        "pg_dir": str(pg_dir),
    }
    state_path.write_text(json.dumps(state, indent=2), encoding="utf-8")
    state_path.chmod(0o600)
    print(f"Airflow is starting: UI at {url} (user {ADMIN_USER}, password {password})")
    print(f"component logs: {home / 'component-logs'}; stop it all with `make down`")
    return 0


def down(home: Path) -> int:
    state_path = _state_path(home)
    if not state_path.exists():
        print("nothing to stop: `make up` has not started Airflow here")
        return 0
    state = json.loads(state_path.read_text(encoding="utf-8"))
    groups = {name: int(pgid) for name, pgid in state.get("groups", {}).items()}
    for problem in stop_process_groups(groups):
        print(problem)
    state["groups"] = {}
    state_path.write_text(json.dumps(state, indent=2), encoding="utf-8")
    print(f"stopped: {', '.join(groups) or 'nothing was running'}")
    return 0


def airflow_cli(home: Path, args: list[str]) -> int:
    """``airflow <args>`` against the stack `make up` started (its metadata database, keys and API),
    e.g. ``backfill create``, which writes to the metadata database directly."""
    state_path = _state_path(home)
    if not state_path.exists():
        raise SystemExit("`make up` has not run here: there is no stack to talk to")
    state = json.loads(state_path.read_text(encoding="utf-8"))
    env = stack_environment(
        home=home,
        metadata_url=state["metadata_url"],
        api_port=int(state["api_port"]),
        data_root=Path(state["data_root"]),
        warehouse_url=state["warehouse_url"],
        password_file=home / "simple_auth_manager_passwords.json",
        keys=state["keys"],
        pg_dir=Path(state["pg_dir"]),
    )
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, cwd=home, check=False).returncode


def status(home: Path) -> int:
    state_path = _state_path(home)
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    groups = state.get("groups", {})
    for name, pgid in groups.items():
        print(f"{name}: {'running' if group_alive(pgid) else 'stopped'} (process group {pgid})")
    if groups:
        print(f"UI: {state['url']} (user {ADMIN_USER}, password {state['password']})")
    return 0 if groups and all(group_alive(p) for p in groups.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Airflow on this machine, as a user runs it.")
    parser.add_argument(
        "command", choices=["up", "down", "status", "airflow"], help="airflow: then -- and its arguments"
    )
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ".airflow")))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("AUTOPO_DATA_DIR", "data")))
    parser.add_argument("--pg-dir", type=Path, default=Path(os.environ.get("AUTOPO_PG_DIR", ".pg")))
    parser.add_argument("--port", type=int, default=8080)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "airflow":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    home = args.home.resolve()
    if args.command == "up":
        return up(home, args.data.resolve(), args.pg_dir.resolve(), args.port)
    if args.command == "down":
        return down(home)
    if args.command == "airflow":
        return airflow_cli(home, [a for a in rest if a != "--"])
    return status(home)


if __name__ == "__main__":
    raise SystemExit(main())
