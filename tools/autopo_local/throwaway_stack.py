"""A throwaway Airflow stack, as a user runs it: the system tests' fixture and ``make bench``'s scheduler stage.

``start_airflow_stack`` builds a throwaway Airflow home, migrates a PostgreSQL
metadata database, starts the four components on 127.0.0.1 (the pieces of
``autopo_local.stack``, which ``make up`` uses too) and waits until
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from autopo_local.private_files import write_private
from autopo_local.rest import AirflowClient, AirflowStackError
from autopo_local.stack import (
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

# Bounded waits (seconds). Generous for a 2-core CI runner, small enough to fail fast.
MIGRATE_TIMEOUT_S = 180
CLI_TIMEOUT_S = 60
API_READY_TIMEOUT_S = 90
DAG_PARSED_TIMEOUT_S = 120


# --------------------------------------------------------------------------- the stack


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


class ApiReadiness:
    """Waiting until a running stack's API server answers, its components report heartbeats and a DAG
    is parsed: shared by this stack and the distributed test's (tests/system/distributed_stack.py).
    The class using it has ``api_url``, ``client`` and ``check_alive()`` (which raises when one of its
    processes has exited, so a wait never outlives a crash)."""

    api_url: str
    client: AirflowClient

    def check_alive(self) -> None:
        raise NotImplementedError

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


@dataclass
class AirflowStack(ApiReadiness):
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

    ``cluster_url_base`` is ``postgresql://user:password@host:port`` of the cluster that gets the
    metadata database. On error the components already started are stopped, their
    logs written to stderr, and the exception propagates.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    home.mkdir(parents=True, exist_ok=True)
    data_root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    password_file = home / "simple_auth_manager_passwords.json"
    # Private from its first byte, like everything that holds a secret.
    write_private(password_file, json.dumps({ADMIN_USER: password}) + "\n")

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
