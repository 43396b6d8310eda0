"""`make up` / `make down`: Airflow started in the background the way a user runs it, and stopped by the
process groups it started (``python -m autopo_local.stack``, what the make targets call). A day run before it
(as `make demo` runs one) is on the tracking plugin's dashboard while it runs: JSON at /autopo/api/v1, the
pages at /autopo/, an entry in Airflow's navigation."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from autopo_local.sample_day import generate_sample_day
from autopo_local.stack import free_port, group_alive
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.system

DATE = dt.date(2024, 12, 4)


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
        # A small day has run (`make run` before `make up`, as after `make demo`): the dashboard shows it.
        generate_sample_day(DataLayout(data), DATE, stores=2, skus=10)
        ran = local_airflow(
            home, "run", "--pipeline", "stock_health", "--date", DATE.isoformat(), pg_dir=pg_dir, data=data
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
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
        check_dashboard(f"http://127.0.0.1:{port}", token)

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


def check_dashboard(api: str, token: str) -> None:
    """The dashboard on the API server: the day's run in the JSON, a page of its own, the navigation entry."""
    auth = {"Authorization": f"Bearer {token}"}
    runs = httpx.get(f"{api}/autopo/api/v1/runs", headers=auth, timeout=10)
    assert runs.status_code == 200, runs.text
    assert runs.headers["content-type"] == "application/json"
    # The stack's scheduler has started each pipeline's run of today by now: the day that ran is the older one.
    listed = {(r["pipeline"], r["date"]): (r["status"], r["total_files"]) for r in runs.json()["runs"]}
    assert listed[("stock_health", DATE.isoformat())] == ("completed", 2), listed
    assert all(date >= DATE.isoformat() for _, date in listed), listed
    without = httpx.get(f"{api}/autopo/api/v1/runs", timeout=10)
    assert (without.status_code, without.json()) == (401, {"detail": "Not authenticated"})

    # The pages, with the UI's login cookie. Airflow's UI answers any unknown path with its own index page
    # (200), so the content tells that the dashboard answered.
    cookie = {"Cookie": f"_token={token}"}
    today = httpx.get(f"{api}/autopo/", headers=cookie, timeout=10)
    assert today.status_code == 200, today.text
    assert '<section id="today"' in today.text and 'data-base="/autopo"' in today.text, today.text[:500]
    grid = httpx.get(f"{api}/autopo/grid?pipeline=stock_health&end={DATE}&days=1", headers=cookie, timeout=10)
    for store in ("STORE-001", "STORE-002"):
        row = re.search(rf'<tr data-store="{store}">(.*?)</tr>', grid.text, re.S)
        assert row is not None and 'class="cell cell-completed" aria-label="completed"' in row.group(1), grid.text
    login = httpx.get(f"{api}/autopo/", timeout=10)
    assert (login.status_code, login.headers["location"]) == (303, "/auth/login?next=%2Fautopo%2F")
    assert httpx.get(f"{api}/autopo/static/dashboard.js", timeout=10).status_code == 200
    openapi = httpx.get(f"{api}/autopo/api/v1/openapi.json", timeout=10).json()
    assert "/api/v1/runs" in openapi["paths"] and "/api/v1/file-jobs/{job_id}/retry-plan" in openapi["paths"]

    # The navigation entry, where Airflow's UI reads it (GET /api/v2/plugins), and the mounted app.
    plugins = httpx.get(f"{api}/api/v2/plugins", headers=auth, timeout=10).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "autopo_tracking"]
    assert [
        {key: view.get(key) for key in ("name", "href", "url_route", "destination")} for view in ours["external_views"]
    ] == [{"name": "Stores", "href": "autopo/", "url_route": "autopo", "destination": "nav"}]
    assert [app["url_prefix"] for app in ours["fastapi_apps"]] == ["/autopo"]
