"""`make up` / `make down`: Airflow started in the background the way a user runs it, and stopped by the
process groups it started (``python -m autopo_local.stack``, what the make targets call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from autopo_local.stack import free_port, group_alive

pytestmark = pytest.mark.system


def local_airflow(home: Path, *args: str, pg_dir: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUTOPO"))}
    return subprocess.run(
        [sys.executable, "-m", "autopo_local.stack", *args, "--home", str(home), "--pg-dir", str(pg_dir),
         "--data", str(data)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_up_prints_the_ui_and_login_and_down_stops_everything_it_started() -> None:
    # Not under pytest's basetemp: the embedded PostgreSQL's service user must reach its data directory.
    base = Path(tempfile.mkdtemp(prefix="autopo-make-up-"))
    base.chmod(0o755)
    home, pg_dir, data = base / "airflow", base / "pg", base / "data"
    port = free_port()
    try:
        up = local_airflow(home, "up", "--port", str(port), pg_dir=pg_dir, data=data)
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((home / "local-stack.json").read_text(encoding="utf-8"))
        assert f"UI at http://127.0.0.1:{port} (user admin, password {state['password']})" in up.stdout
        groups = state["groups"]
        assert sorted(groups) == ["api-server", "dag-processor", "scheduler", "triggerer"]

        deadline = time.monotonic() + 120
        health: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5).json()
                if all(
                    health.get(c, {}).get("status") == "healthy" for c in ("scheduler", "triggerer", "dag_processor")
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert all(v.get("status") == "healthy" for v in health.values()), health
        token = httpx.post(
            f"http://127.0.0.1:{port}/auth/token", json={"username": "admin", "password": state["password"]}, timeout=10
        ).json()["access_token"]
        dags = httpx.get(
            f"http://127.0.0.1:{port}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        assert {d["dag_id"] for d in dags["dags"]} >= {"po_snapshots", "stock_health"}
        assert local_airflow(home, "status", pg_dir=pg_dir, data=data).returncode == 0

        down = local_airflow(home, "down", pg_dir=pg_dir, data=data)
        assert down.returncode == 0, down.stderr
        assert "stopped: api-server, scheduler, dag-processor, triggerer" in down.stdout
        assert not any(group_alive(pgid) for pgid in groups.values())
        assert local_airflow(home, "status", pg_dir=pg_dir, data=data).returncode == 1
    finally:
        state_path = home / "local-stack.json"
        if state_path.exists():
            for pgid in json.loads(state_path.read_text(encoding="utf-8")).get("groups", {}).values():
                if group_alive(pgid):
                    os.killpg(pgid, 9)
        subprocess.run(
            [sys.executable, "-m", "autopo_local.embedded_pg", "stop"],
            env={**os.environ, "AUTOPO_PG_DIR": str(pg_dir)}, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        subprocess.run(["rm", "-rf", str(base)], check=False)
