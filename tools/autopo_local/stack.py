"""Airflow on this machine the way a user runs it, and the one local stack every ``make`` target uses.

``make demo``, ``make run``, ``make pools``, ``make airflow`` and ``make up`` all work on the same
Airflow metadata database (``airflow_local`` in the embedded PostgreSQL) with the same keys and the
same warehouse connection (``AIRFLOW_CONN_AUTOPO_DB``, the embedded ``autopo`` database unless the
caller set it): a run that ``make demo`` made is in the UI that ``make up`` serves. While ``make up``
runs, ``make run`` triggers the day through the REST API and the scheduler runs it (an in-process
``airflow dags test`` beside a live scheduler would run the same tasks twice); otherwise it runs
in-process with ``airflow dags test``.

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
* ``dag.test()`` marks its run's tasks scheduled and runs them itself; the scheduler
  does not tell such runs apart, hence the REST trigger while the stack is up.

CLI (what the Makefile calls)::

    python -m autopo_local.stack setup | up | down | status | db-url
    python -m autopo_local.stack run --pipeline stock_health --date 2024-12-04
    python -m autopo_local.stack demo --date 2024-12-04
    python -m autopo_local.stack airflow -- ARGS...
    python -m autopo_local.stack exec -- COMMAND...
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from psycopg import sql

from autopo_local.embedded_pg import EmbeddedPostgres, free_port, port_is_free
from autopo_local.private_files import write_private
from autopo_local.rest import AirflowClient, AirflowStackError

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
STOP_GRACE_S = 20
# How long `make api` waits for the API server that `make up` started to answer.
API_START_TIMEOUT_S = 180
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
) -> dict[str, str]:
    """The environment every component and CLI call of a stack runs with.

    ``keys``: ``fernet_key``, ``jwt_secret`` and ``api_secret_key``, the same for every
    component (and, for a stack that is stopped and started again, across starts).
    """
    # Airflow settings are the stack's own; connections and variables the user exported are kept
    # (AIRFLOW_CONN_AUTOPO_SMTP, AIRFLOW_CONN_AUTOPO_WEBHOOK, ...).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW") or k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
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


def start_in_own_group(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_file: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``argv`` in the background, its output appended to ``log_file``, in a process group (and session)
    of its own: when stopped, the component and the processes it forked (uvicorn and executor workers,
    task supervisors) are signalled together, by this PID, and nothing else is."""
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_component(home: Path, env: Mapping[str, str], name: str, *args: str) -> subprocess.Popen[bytes]:
    """``airflow <args>`` in the background, logging to ``<home>/component-logs/<name>.log``."""
    log_path = home / "component-logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return start_in_own_group([sys.executable, "-m", "airflow", *args], env, home, log_file)


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


def configured_pools(env: Mapping[str, str]) -> dict[str, int]:
    """Each pipeline's pool and its slots, from the configs the stack's processes read."""
    from autopo_pipelines.config import load_configs

    loaded = load_configs(Path(env["AUTOPO_CONFIG_DIR"]))
    return {config.pool: config.airflow.pool_size for config in loaded.configs.values()}


def set_pools(env: Mapping[str, str], home: Path) -> None:
    """Each pipeline's pool with its configured size, in one ``airflow pools import``."""
    pools = {
        name: {"slots": slots, "description": f"autopo pipeline {name}", "include_deferred": False}
        for name, slots in configured_pools(env).items()
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=home, delete=False) as handle:
        json.dump(pools, handle)
    try:
        run_cli(env, home, "pools", "import", handle.name, timeout=120)
    finally:
        os.unlink(handle.name)


# --- the local stack: make setup / run / demo / up / down / airflow ----------------------

LOCAL_METADATA_DB = "airflow_local"
RUN_TIMEOUT_S = 6 * 3600


@dataclass
class LocalStack:
    """The project's Airflow on this machine: one home, one metadata database, one warehouse."""

    home: Path
    data_root: Path
    pg_dir: Path

    @property
    def state_path(self) -> Path:
        return self.home / "local-stack.json"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {}
        return dict(json.loads(self.state_path.read_text(encoding="utf-8")))

    def save_state(self, state: Mapping[str, Any]) -> None:
        # Keys and the admin's password: private from the first byte.
        write_private(self.state_path, json.dumps(state, indent=2) + "\n")

    def server(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.pg_dir)

    def running_components(self) -> dict[str, int]:
        return {name: pgid for name, pgid in self.state().get("groups", {}).items() if group_alive(pgid)}

    # -- setup ------------------------------------------------------------------

    def setup(self) -> dict[str, str]:
        """Database, schema, Airflow metadata and pools, each done only when missing; the environment."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        server = self.server()
        server.start()
        for notice in server.notices:
            print(f"note: {notice}")
        warehouse_url = os.environ.get("AIRFLOW_CONN_AUTOPO_DB") or server.url
        from autopo_pipelines.migrations import apply_migrations

        apply_migrations(warehouse_url, REPO_ROOT / "migrations")
        cluster = server.url.rsplit("/", 1)[0]
        create_metadata_db(f"{cluster}/postgres", LOCAL_METADATA_DB, replace=False)
        state = self.state()
        # Kept across runs and restarts: connections stored encrypted need the same Fernet key.
        state.setdefault("keys", new_keys())
        state.setdefault("password", secrets.token_urlsafe(12))
        state.setdefault("api_port", 8080)
        state["metadata_url"] = cluster.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{LOCAL_METADATA_DB}"
        state["warehouse_url"] = warehouse_url
        self.save_state(state)
        write_private(self.password_file, json.dumps({ADMIN_USER: state["password"]}) + "\n")
        env = self.environment(state)
        airflow_version = version("apache-airflow")
        if state.get("migrated_airflow") != airflow_version or not _has_airflow_schema(server.url, LOCAL_METADATA_DB):
            print(f"preparing Airflow's metadata database ({LOCAL_METADATA_DB} in the embedded PostgreSQL) ...")
            run_cli(env, self.home, "db", "migrate", timeout=600)
            state["migrated_airflow"] = airflow_version
            state.pop("pools", None)
        pools = configured_pools(env)
        if state.get("pools") != pools:
            set_pools(env, self.home)
            state["pools"] = pools
        self.save_state(state)
        return env

    def environment(self, state: Mapping[str, Any] | None = None) -> dict[str, str]:
        state = state if state is not None else self.state()
        if "metadata_url" not in state:
            raise SystemExit("the local stack is not set up here: run `make setup` (or `make demo`) first")
        return stack_environment(
            home=self.home,
            metadata_url=state["metadata_url"],
            api_port=int(state["api_port"]),
            data_root=self.data_root,
            warehouse_url=state["warehouse_url"],
            password_file=self.password_file,
            keys=state["keys"],
        )

    # -- running a day ----------------------------------------------------------

    def run_day(self, pipeline: str, date: dt.date) -> int:
        """One date through the real DAG, then the day's summary; 0 only when the day completed."""
        env = self.setup()
        from autopo_local.summary import day_summary, render_summary
        from autopo_pipelines.layout import DataLayout

        runs = self.home / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        log_path = runs / f"{pipeline}_{date.isoformat()}.log"
        started = time.monotonic()
        if self.running_components():
            stack_data = Path(self.state()["data_root"])
            if stack_data != self.data_root:
                # Its scheduler would run the day on its own data root, not on this one.
                print(f"`make up` runs on the data root {stack_data}: `make down` first to run on {self.data_root}")
                return 2
            ran, rc = self._trigger_on_stack(pipeline, date, log_path)
        else:
            print(f"running {pipeline} for {date} on {self.data_root} (Airflow log: {log_path})")
            with log_path.open("w", encoding="utf-8") as log_file:
                rc = subprocess.run(
                    [sys.executable, "-m", "airflow", "dags", "test", pipeline, "-c", json.dumps({"date": str(date)})],
                    # A run of a past date from the command line sends no deadline email.
                    env={**env, "AUTOPO_DEADLINE_ALERTS": "off"},
                    cwd=self.home,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    check=False,
                ).returncode
            ran = "DagRun Finished" in log_path.read_text(encoding="utf-8", errors="replace")
        print(f"took {time.monotonic() - started:.0f}s")
        if not ran:
            print("the DAG did not run; the end of its log:")
            print(tail(log_path, 25))
            return rc or 1
        summary = day_summary(pipeline, date, DataLayout(self.data_root), env["AIRFLOW_CONN_AUTOPO_DB"])
        print(render_summary(summary))
        return 1 if rc or summary["problems"] else 0

    def _trigger_on_stack(self, pipeline: str, date: dt.date, log_path: Path) -> tuple[bool, int]:
        """The running stack's scheduler runs the day: trigger it over REST and follow it."""
        state = self.state()
        client = AirflowClient(state["url"], ADMIN_USER, state["password"])
        try:
            deadline = time.monotonic() + 120
            while True:  # a stack that has just started may not have parsed the DAG yet
                try:
                    run_id = client.trigger(pipeline, {"date": str(date)})
                    break
                except AirflowStackError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(2)
            print(f"`make up` is running: triggered {pipeline} run {run_id} for {date}; see it at {state['url']}")
            run_state = client.wait_for_run(pipeline, run_id, RUN_TIMEOUT_S, fail_on_retry=False, poll=2)
            tasks = client.task_instances(pipeline, run_id)
            lines = [f"{t['task_id']}[{t['map_index']}] {t['state']}" for t in tasks]
            log_path.write_text(f"run {run_id}: {run_state}\n" + "\n".join(lines) + "\n", encoding="utf-8")
        finally:
            client.close()
        return True, 0 if run_state == "success" else 1

    def demo(self, date: dt.date) -> int:
        """The sample day (written unless the inboxes already hold that date), PO first, then stock health."""
        from autopo_local.sample_day import generate_sample_day
        from autopo_pipelines.layout import DataLayout

        layout = DataLayout(self.data_root)
        stamps = (f"{date:%Y%m%d}", date.isoformat())
        has = {
            pipeline: any(any(stamp in f.name for stamp in stamps) for f in layout.inbox(pipeline).glob("*"))
            for pipeline in ("stock_health", "po_snapshots")
        }
        if not all(has.values()):
            day = generate_sample_day(layout, date)
            print(f"sample day {date}: {len(day.files)} store files, {len(day.po_files)} PO exports")
        # PO first: stock_health's on_order_qty is the open PO quantity of the same date.
        codes = [self.run_day(pipeline, date) for pipeline in ("po_snapshots", "stock_health")]
        return max(codes)

    # -- make up / down / status / airflow ------------------------------------------

    def up(self, api_port: int) -> int:
        running = self.running_components()
        if running:
            print(f"already running ({', '.join(running)}): UI at {self.state()['url']}; `make down` first to restart")
            return 0
        if not port_is_free(api_port):
            raise SystemExit(f"port {api_port} is in use: `make up API_PORT=...` picks another")
        state = self.state()
        state["api_port"] = api_port
        self.save_state(state)
        env = self.setup()
        groups = {}
        for name, args in COMPONENTS.items():
            process = start_component(self.home, env, name, *(a.format(api_port=api_port) for a in args))
            groups[name] = process.pid
        state = self.state()
        state.update({"url": f"http://127.0.0.1:{api_port}", "groups": groups, "data_root": str(self.data_root)})
        self.save_state(state)
        print(f"Airflow is starting: UI at {state['url']} (user {ADMIN_USER}, password {state['password']})")
        print(f"component logs: {self.home / 'component-logs'}; stop it all with `make down`")
        return 0

    def down(self) -> int:
        state = self.state()
        groups = {name: int(pgid) for name, pgid in state.get("groups", {}).items()}
        if not groups:
            print("nothing to stop: `make up` has not started Airflow here")
            return 0
        for problem in stop_process_groups(groups):
            print(problem)
        state["groups"] = {}
        self.save_state(state)
        print(f"stopped: {', '.join(groups)}")
        return 0

    def status(self) -> int:
        state = self.state()
        groups = state.get("groups", {})
        for name, pgid in groups.items():
            print(f"{name}: {'running' if group_alive(pgid) else 'stopped'} (process group {pgid})")
        if groups:
            print(f"UI: {state['url']} (user {ADMIN_USER}, password {state['password']})")
        else:
            print("not running: `make up` starts it")
        return 0 if groups and all(group_alive(p) for p in groups.values()) else 1

    @staticmethod
    def wait_until_serving(url: str, timeout_s: float = API_START_TIMEOUT_S) -> bool:
        """Whether the API server at ``url`` answers its health check within the time a start takes
        (`make up` returns while it starts); False, saying so on stderr, when it does not."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                print(f"the API server at {url} did not answer in {timeout_s:.0f} s", file=sys.stderr)
                return False
            time.sleep(1)

    def api(self, path: str) -> int:
        """GET a path of the running stack's API server (``/api/v2/...``, or the dashboard's
        ``/autopo/api/v1/...``) as the admin, with a token from ``POST /auth/token``; prints the JSON."""
        state = self.state()
        groups = state.get("groups", {})
        if not groups or not all(group_alive(p) for p in groups.values()):
            print("not running: `make up` starts it", file=sys.stderr)
            return 1
        if not self.wait_until_serving(state["url"]):
            return 1
        client = AirflowClient(state["url"], ADMIN_USER, state["password"])
        try:
            response = client.request("GET", path, expect=range(100, 600))
        finally:
            client.close()
        try:
            print(json.dumps(response.json(), indent=2))
        except ValueError:
            print(response.text)
        if response.status_code != 200:
            print(f"GET {path}: HTTP {response.status_code}", file=sys.stderr)
            return 1
        return 0

    def airflow(self, args: Sequence[str]) -> int:
        """``airflow <args>`` on this stack's metadata database and settings (running or not),
        e.g. ``backfill create`` or ``tasks clear``."""
        return self.execute([sys.executable, "-m", "airflow", *args])

    def execute(self, command: Sequence[str]) -> int:
        """Any command in the stack's environment (``make bench`` runs its ``dag.test()`` there)."""
        env = self.setup()
        return subprocess.run(list(command), env=env, cwd=self.home, check=False).returncode


def _has_airflow_schema(server_url: str, database: str) -> bool:
    url = server_url.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone() == (True,)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Airflow on this machine, as a user runs it.")
    parser.add_argument(
        "command",
        choices=["setup", "run", "demo", "up", "down", "status", "airflow", "exec", "db-url", "api"],
        help="airflow: then -- and its arguments; exec: then -- and a command",
    )
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ".airflow")))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("AUTOPO_DATA_DIR", "data")))
    parser.add_argument("--pg-dir", type=Path, default=Path(os.environ.get("AUTOPO_PG_DIR", ".pg")))
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--pipeline", default="stock_health")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2024, 12, 4))
    parser.add_argument("--get", default="/autopo/api/v1/runs", help="api: the path to GET")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" is the other command's own (airflow's options must not meet ours).
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if rest and args.command not in ("airflow", "exec"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    stack = LocalStack(home=args.home.absolute(), data_root=args.data.absolute(), pg_dir=args.pg_dir.absolute())
    if args.command == "setup":
        stack.setup()
        return 0
    if args.command == "run":
        return stack.run_day(args.pipeline, args.date)
    if args.command == "demo":
        return stack.demo(args.date)
    if args.command == "up":
        return stack.up(args.port)
    if args.command == "down":
        return stack.down()
    if args.command == "airflow":
        return stack.airflow(rest)
    if args.command == "api":
        return stack.api(args.get)
    if args.command == "exec":
        return stack.execute(rest)
    if args.command == "db-url":
        print(os.environ.get("AIRFLOW_CONN_AUTOPO_DB") or _started_url(stack.server()))
        return 0
    return stack.status()


def _started_url(server: EmbeddedPostgres) -> str:
    server.start()
    for notice in server.notices:
        print(f"note: {notice}", file=sys.stderr)
    return server.url


if __name__ == "__main__":
    raise SystemExit(main())
