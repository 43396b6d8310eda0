"""Airflow as a user runs it, for the system tests: a throwaway stack per session.

``start_airflow_stack`` builds a throwaway Airflow home, migrates a PostgreSQL
metadata database, starts the four components on 127.0.0.1 (the pieces of
``autopo_pipelines.local_airflow``, which ``make up`` uses too) and waits until
the DAGs are parsed. ``AirflowClient`` drives it only through the public REST
API (``/api/v2``) with a JWT from the API server, the way the UI and scripts do.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from autopo_pipelines.local_airflow import (
    COMPONENTS,
    create_metadata_db,
    drop_metadata_db,
    free_port,
    new_keys,
    set_pools,
    stack_environment,
    start_component,
    stop_process_groups,
    tail,
)

METADATA_DB = "airflow_meta"
ADMIN_USER = "admin"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})

# Bounded waits (seconds). Generous for a 2-core CI runner, small enough to fail fast.
MIGRATE_TIMEOUT_S = 180
CLI_TIMEOUT_S = 60
API_READY_TIMEOUT_S = 90
DAG_PARSED_TIMEOUT_S = 120
HTTP_TIMEOUT_S = 30


class AirflowStackError(RuntimeError):
    """The stack could not be started or did not answer in time."""


def report(config: Any, text: str) -> None:
    """Write to the terminal past pytest's output capture (timings; logs on failure), also under ``-q``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        sys.stderr.write(text + "\n")
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(text)


# --------------------------------------------------------------------------- REST client


class AirflowClient:
    """The REST calls a user (or the UI) makes, against ``/api/v2``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT_S)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------

    def login(self) -> str:
        """A JWT from SimpleAuthManager's token endpoint (what the login form posts)."""
        response = self._http.post("/auth/token", json={"username": self._username, "password": self._password})
        if response.status_code != 201:
            raise AirflowStackError(f"login failed: HTTP {response.status_code} {response.text[:500]}")
        self._token = response.json()["access_token"]
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if self._token is None:
            self.login()
        for attempt in (1, 2):
            response = self._http.request(
                method, path, headers={**(headers or {}), "Authorization": f"Bearer {self._token}"}, **kwargs
            )
            if response.status_code == 401 and attempt == 1:
                self.login()  # expired token: log in again once
                continue
            break
        if response.status_code not in set(expect):
            raise AirflowStackError(f"{method} {path}: HTTP {response.status_code} {response.text[:2000]}")
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    # -- what the tests use -----------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/api/v2/dags/{dag_id}", expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get_json("/api/v2/importErrors")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        logical_date: str | None = None,
    ) -> str:
        """Trigger a manual run; returns its run id.

        ``logical_date`` has no default in 3.3's ``TriggerDAGRunPostBody``: omitting it is a 422.
        ``null`` gives a run without a logical date (what the UI's trigger form sends by default).
        """
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id is not None:
            body["dag_run_id"] = run_id
        response = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return str(response.json()["dag_run_id"])

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, reprocess_behavior: str = "none") -> int:
        """What ``airflow backfill create`` does, through ``POST /api/v2/backfills``; the backfill's id."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "run_backwards": False,
            "dag_run_conf": {},
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": 3,
        }
        return int(self.request("POST", "/api/v2/backfills", json=body).json()["id"])

    def wait_for_backfill(self, backfill_id: int, timeout: float) -> dict[str, Any]:
        """Until the scheduler has marked the backfill complete (all its runs ended); the backfill."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = self.get_json(f"/api/v2/backfills/{backfill_id}")
            if backfill.get("completed_at"):
                return dict(backfill)
            time.sleep(1)
        raise AirflowStackError(f"backfill {backfill_id} not completed after {timeout:.0f}s")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get_json(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, *, fail_on_retry: bool = True, poll: float = 1.0
    ) -> str:
        """Poll the run until it is ``success`` or ``failed``; returns that state.

        ``fail_on_retry``: a task waiting for a retry (the pipelines' retry delay is
        minutes) ends the wait at once with the task's log, instead of timing out.
        """
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_RUN_STATES:
                return str(state)
            if fail_on_retry:
                retrying = [ti for ti in self.task_instances(dag_id, run_id) if ti["state"] == "up_for_retry"]
                if retrying:
                    ti = retrying[0]
                    log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                    raise AirflowStackError(
                        f"{dag_id}/{run_id}: {ti['task_id']}[{ti['map_index']}] is up for retry; its log:\n{log}"
                    )
            time.sleep(poll)
        summary = [(ti["task_id"], ti["map_index"], ti["state"]) for ti in self.task_instances(dag_id, run_id)]
        raise AirflowStackError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f}s; tasks: {summary}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones one per map index), all fields of the API."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get_json(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                limit=100,
                offset=offset,
                order_by="map_index",
            )
            items.extend(page["task_instances"])
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return items

    def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: Sequence[str | tuple[str, int]],
        *,
        only_failed: bool = True,
        include_downstream: bool = False,
        include_upstream: bool = False,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        """``POST /api/v2/dags/{dag_id}/clearTaskInstances`` with the body the UI's Clear dialog sends.

        ``task_ids`` items are task ids or ``(task_id, map_index)`` pairs (sent as
        ``[task_id, map_index]``). The API's ``dry_run`` defaults to *true*; the UI
        sends false explicitly, and so does this. Returns the task instances cleared
        (or, with ``dry_run``, that would be).
        """
        body = {
            "dag_run_id": run_id,
            "dry_run": dry_run,
            "task_ids": [list(t) if isinstance(t, tuple) else t for t in task_ids],
            "only_failed": only_failed,
            "include_downstream": include_downstream,
            "include_upstream": include_upstream,
            "include_future": False,
            "include_past": False,
        }
        response = self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return list(response.json()["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's log as text (best effort: for failure messages)."""
        try:
            response = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                params={"map_index": map_index, "full_content": True},
                # JSON: {"content": [{"timestamp", "event", "level", ...} | "line"], "continuation_token"}.
                # text/plain is a 406 on this endpoint (JSON or NDJSON only).
                headers={"Accept": "application/json"},
                expect=(200,),
            )
        except (AirflowStackError, httpx.HTTPError) as exc:
            return f"<log not available: {exc}>"
        lines = []
        for entry in response.json().get("content", []):
            if isinstance(entry, dict):
                level = entry.get("level", "")
                extra = entry.get("error_detail") or ""
                lines.append(f"{entry.get('timestamp') or ''} {level} {entry.get('event', '')} {extra}".rstrip())
            else:
                lines.append(str(entry))
        return "\n".join(lines)[-8000:]


# --------------------------------------------------------------------------- the stack


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class AirflowStack:
    home: Path
    data_root: Path
    env: dict[str, str]
    api_url: str
    client: AirflowClient
    metadata_url: str
    components: list[Component] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # -- processes --------------------------------------------------------------

    def start(self, name: str, *args: str) -> Component:
        process = start_component(self.home, self.env, name, *args)
        component = Component(name, process, self.home / "component-logs" / f"{name}.log")
        self.components.append(component)
        return component

    def check_alive(self) -> None:
        for component in self.components:
            code = component.process.poll()
            if code is not None:
                raise AirflowStackError(
                    f"airflow {component.name} exited with {code}; its log:\n{tail(component.log_path)}"
                )

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT_S) -> str:
        """Run an ``airflow`` CLI command against the stack's home; its stdout."""
        try:
            result = subprocess.run(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AirflowStackError(f"airflow {' '.join(args)} did not finish in {timeout:.0f}s") from exc
        if result.returncode != 0:
            raise AirflowStackError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def stop(self) -> list[str]:
        """Stop every component's process group (SIGTERM, then SIGKILL after a grace period).

        Returns what had to be killed. Only the groups of processes this stack
        started (each component leads its own group) are signalled.
        """
        # First: an open keep-alive connection makes uvicorn wait out its graceful-shutdown timeout.
        self.client.close()
        problems = stop_process_groups({c.name: c.process.pid for c in self.components})
        for component in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                component.process.wait(timeout=10)
        return problems

    def logs_report(self, lines: int = 60) -> str:
        parts = []
        for component in self.components:
            parts.append(f"===== airflow {component.name} (pid {component.process.pid}, last {lines} lines) =====")
            parts.append(tail(component.log_path, lines))
        return "\n".join(parts)

    # -- readiness ---------------------------------------------------------------

    def wait_for_api(self, timeout: float = API_READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
                if response.status_code == 200:
                    self.client.login()
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise AirflowStackError(f"API server at {self.api_url} did not answer in {timeout:.0f}s: {last}")

    def wait_for_healthy(self, components: Sequence[str], timeout: float = API_READY_TIMEOUT_S) -> dict[str, Any]:
        """Until ``/api/v2/monitor/health`` reports each of ``components`` healthy (a recent heartbeat)."""
        deadline = time.monotonic() + timeout
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            health = self.client.get_json("/api/v2/monitor/health")
            if all((health.get(name) or {}).get("status") == "healthy" for name in components):
                return health
            time.sleep(0.5)
        raise AirflowStackError(f"components not healthy after {timeout:.0f}s: {health}")

    def wait_for_dag(self, dag_id: str, timeout: float = DAG_PARSED_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            dag = self.client.dag(dag_id)
            if dag is not None:
                return dag
            time.sleep(1)
        raise AirflowStackError(
            f"DAG {dag_id!r} not parsed in {timeout:.0f}s; import errors: {self.client.import_errors()}"
        )


def start_airflow_stack(
    *,
    home: Path,
    admin_db_url: str,
    cluster_url_base: str,
    data_root: Path,
    warehouse_url: str,
    dag_ids: Sequence[str] = ("stock_health",),
    config_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> AirflowStack:
    """Create the metadata database, migrate it, start the components and wait for the DAGs.

    ``cluster_url_base`` is ``postgresql://user@host:port`` of the cluster that gets the
    metadata database. On error the components already started are stopped, their
    logs written to stderr, and the exception propagates.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    home.mkdir(parents=True, exist_ok=True)
    data_root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    password_file = home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({ADMIN_USER: password}) + "\n", encoding="utf-8")

    create_metadata_db(admin_db_url, METADATA_DB, replace=True)
    metadata_url = cluster_url_base.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{METADATA_DB}"
    api_port = free_port()
    env = stack_environment(
        home=home,
        metadata_url=metadata_url,
        api_port=api_port,
        data_root=data_root,
        warehouse_url=warehouse_url,
        password_file=password_file,
        keys=new_keys(),
        # Never fall back to (or start) the checkout's embedded cluster.
        pg_dir=home / "no-embedded-pg",
    )
    if config_dir is not None:
        env["AUTOPO_CONFIG_DIR"] = str(config_dir)
    env.update(extra_env or {})
    api_url = f"http://127.0.0.1:{api_port}"
    stack = AirflowStack(
        home=home,
        data_root=data_root,
        env=env,
        api_url=api_url,
        client=AirflowClient(api_url, ADMIN_USER, password),
        metadata_url=metadata_url,
        timings=timings,
    )
    try:
        t0 = time.monotonic()
        stack.cli("db", "migrate", timeout=MIGRATE_TIMEOUT_S)
        timings["db_migrate"] = time.monotonic() - t0

        # Pools before the components (as `make setup` does): the CLI writes the metadata
        # database directly, and it is faster alone than competing with four booting processes.
        t0 = time.monotonic()
        set_pools(env, home)
        timings["pools"] = time.monotonic() - t0

        t0 = time.monotonic()
        for name, args in COMPONENTS.items():
            stack.start(name, *(a.format(api_port=api_port) for a in args))

        stack.wait_for_api()
        timings["api_ready"] = time.monotonic() - t0
        for dag_id in dag_ids:
            stack.wait_for_dag(dag_id)
            stack.client.set_paused(dag_id, False)
        timings["dags_parsed"] = time.monotonic() - t0
        stack.wait_for_healthy(("metadatabase", "scheduler", "triggerer", "dag_processor"))
        timings["all_healthy"] = time.monotonic() - t0
    except BaseException:
        logs = stack.logs_report()
        stack.stop()
        with contextlib.suppress(Exception):
            drop_metadata_db(admin_db_url, METADATA_DB)
        sys.stderr.write(f"\nAirflow stack failed to start; component logs:\n{logs}\n")
        raise
    timings["startup_total"] = time.monotonic() - started
    return stack
