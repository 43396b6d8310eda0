"""The dashboard app (autopo_tracking.dashboard.app) in-process, mounted at /autopo as Airflow's API server
mounts it, with Airflow's real auth: a SimpleAuthManager (tests/dashboard_auth.py: one user limited to one
DAG) initialised by airflow.api_fastapi.app, its login route making the JWTs, Airflow's security
dependencies checking them, and the auth manager deciding per DAG from the pipelines' DAGs serialised into
the session's Airflow metadata database. The warehouse is the session's PostgreSQL (AIRFLOW_CONN_AUTOPO_DB).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from airflow_env import REPO_ROOT, migrate_airflow_db
from autopo_tracking.dashboard import app as dashboard
from dashboard_rows import add_file, add_run, at, table_contents

pytestmark = pytest.mark.integration

PREFIX = "/autopo"
D3, D4 = dt.date(2024, 12, 3), dt.date(2024, 12, 4)
RUN = "manual__2024-12-04T03:00:00+00:00"
# name -> role; po_reader may reach only po_snapshots (AUTOPO_TEST_DAG_LIMITS).
# dag_only may read the DAGs but not their runs or task instances (AUTOPO_TEST_NO_RUNS).
USERS = {"admin": "admin", "user": "user", "viewer": "viewer", "po_reader": "user", "dag_only": "viewer"}
TABLES = ("pipeline_runs", "pipeline_file_jobs", "snapshot_loads", "day_locks")
API_ROUTES = [route for route in dashboard.api.routes if isinstance(route, APIRoute)]
PAGES = [route.path for route in dashboard.pages.routes if isinstance(route, APIRoute)]
SAMPLE_PATH_VALUES = {"pipeline": "stock_health", "date": D4.isoformat(), "job_id": "1"}


def concrete(path: str) -> str:
    """A route's path with sample values for its parameters."""
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


# --- Airflow: metadata database with the pipelines' DAGs, the auth manager ---------------------------


@pytest.fixture(scope="module")
def pipeline_dags() -> None:
    """The checkout's DAGs serialised into the session's Airflow metadata database, as `airflow dags
    reserialize` does: the auth manager's get_authorized_dag_ids reads DagModel rows."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    migrate_airflow_db()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        assert {dag_id for (dag_id,) in session.query(DagModel.dag_id)} >= {"po_snapshots", "stock_health"}


@pytest.fixture(scope="module")
def airflow_auth(pipeline_dags: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """Airflow's auth manager as the API server sets it up: from [core] auth_manager and SimpleAuthManager's
    settings, through airflow.api_fastapi.app.init_auth_manager (the app given to it gets the login routes)."""
    from airflow.api_fastapi import app as airflow_app

    passwords = tmp_path_factory.mktemp("auth") / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({name: f"{name}-pw" for name in USERS}) + "\n", encoding="utf-8")
    previous = airflow_app._AuthManagerState.instance
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", "dashboard_auth.PerDagAuthManager")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{n}:{r}" for n, r in USERS.items()))
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        env.setenv("AUTOPO_TEST_DAG_LIMITS", "po_reader=po_snapshots")
        env.setenv("AUTOPO_TEST_NO_RUNS", "dag_only")
        server = FastAPI()
        manager = airflow_app.init_auth_manager(server)
        assert type(manager).__name__ == "PerDagAuthManager"
        # Mounted as Airflow's init_plugins mounts a plugin's fastapi_apps entry.
        server.mount(PREFIX, dashboard.create_app())
        try:
            yield server
        finally:
            airflow_app._AuthManagerState.instance = previous


@pytest.fixture(scope="module")
def client(airflow_auth: FastAPI) -> Iterator[TestClient]:
    with TestClient(airflow_auth, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, str]:
    """A JWT per user, from the auth manager's own login route (POST /auth/token with the password)."""
    found = {}
    for name in USERS:
        answer = client.post("/auth/token", json={"username": name, "password": f"{name}-pw"})
        assert answer.status_code == 201, answer.text
        found[name] = answer.json()["access_token"]
    assert client.post("/auth/token", json={"username": "admin", "password": "wrong"}).status_code == 401
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str) -> dict[str, str]:
    """The Airflow UI's login, as the browser sends it with a page request."""
    return {"Cookie": f"_token={token}"}


# --- the warehouse ---------------------------------------------------------------------------------


@pytest.fixture
def warehouse(clean_tables: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session's PostgreSQL as the connection autopo_db, and the app's reader starting afresh."""
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", clean_tables)
    dashboard.reader.close()
    yield clean_tables
    dashboard.reader.close()


@pytest.fixture
def rows(warehouse: str) -> dict[str, int]:
    """Two pipelines' runs and files; the ids of the file jobs the tests ask about."""
    with psycopg.connect(warehouse, autocommit=True) as conn:
        stock = add_run(
            conn, "stock_health", D4, status="failed", total_files=3, failed_files=1, missing_stores=["STORE-009"],
            dag_run_id=RUN, started_at=at(D4, 0, 5), completed_at=at(D4, 0, 30),
        )  # fmt: skip
        failed = add_file(conn, stock, "STORE-002_stock_20241204.xlsx", "STORE-002", "failed", map_index=1,
                          dag_run_id=RUN, error="the file is damaged or incomplete")  # fmt: skip
        done = add_file(conn, stock, "STORE-001_stock_20241204.xlsx", "STORE-001", "completed", map_index=0,
                        dag_run_id=RUN, rows_in=10, rows_out=10)  # fmt: skip
        add_run(conn, "stock_health", D3, status="completed", dag_run_id="run-d3")
        po = add_run(conn, "po_snapshots", D4, status="failed", dag_run_id="po-run")
        po_failed = add_file(conn, po, "po_export_2024-12-04.xlsx", None, "failed", map_index=0, dag_run_id="po-run")
    return {"stock_failed": failed, "stock_done": done, "po_failed": po_failed}


# --- no login --------------------------------------------------------------------------------------


def test_every_api_route_is_a_get(client: TestClient) -> None:
    # Nothing here changes state (a retry is Airflow's clearTaskInstances): a new method is a new kind of
    # endpoint that the tests below would have to learn about.
    assert API_ROUTES and all(route.methods == {"GET"} for route in API_ROUTES)


@pytest.mark.parametrize("route", API_ROUTES, ids=[route.path for route in API_ROUTES])
def test_every_api_endpoint_answers_401_without_a_login_before_it_reads_the_warehouse(
    client: TestClient, tokens: dict[str, str], route: APIRoute, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No warehouse connection at all: a 401 (not a 503) shows that the login is checked first.
    monkeypatch.delenv("AIRFLOW_CONN_AUTOPO_DB", raising=False)
    dashboard.reader.close()
    url = PREFIX + concrete(route.path)
    answer = client.get(url)
    assert (answer.status_code, answer.json()) == (401, {"detail": "Not authenticated"}), url
    # A token Airflow did not sign (or has been tampered with) is refused as Airflow refuses it: 403.
    forged = tokens["admin"][:-4] + ("AAAA" if not tokens["admin"].endswith("AAAA") else "BBBB")
    answer = client.get(url, headers=bearer(forged))
    assert (answer.status_code, answer.json()) == (403, {"detail": "Invalid JWT token"}), url
    answer = client.get(url, headers=bearer("not-a-jwt"))
    assert answer.status_code == 403, url
    # A cookie is a login too, but only a valid one.
    assert client.get(url, headers=cookie("not-a-jwt")).status_code == 403, url


def test_an_expired_token_is_401(client: TestClient) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    expired = get_auth_manager().generate_jwt(
        SimpleAuthManagerUser(username="admin", role="admin"), expiration_time_in_seconds=-3600
    )
    answer = client.get(f"{PREFIX}/api/v1/runs", headers=bearer(expired))
    assert (answer.status_code, answer.json()) == (401, {"detail": "Token Expired"})
    # A page with it goes to the login page (below).
    assert client.get(f"{PREFIX}/", headers=cookie(expired)).status_code == 303


def test_the_pages_are_the_five_views() -> None:
    assert sorted(PAGES) == ["/", "/failed", "/grid", "/history", "/metrics"]


@pytest.mark.parametrize("page", PAGES)
def test_a_page_without_a_login_sends_the_browser_to_airflows_login_page(
    client: TestClient, tokens: dict[str, str], page: str
) -> None:
    answer = client.get(PREFIX + page + "?days=7")
    assert answer.status_code == 303
    # Back to the page asked for once signed in (in the UI's frame when the login there expired): our own
    # path, so the login cannot send the browser anywhere else.
    back = quote(f"{PREFIX}{page}?days=7", safe="")
    assert answer.headers["location"] == f"/auth/login?next={back}"
    # As Airflow's UI does, a token Airflow does not accept (signed with another secret, say) goes there too.
    stale = client.get(PREFIX + page + "?days=7", headers=cookie(tokens["viewer"] + "x"))
    assert (stale.status_code, stale.headers["location"]) == (303, f"/auth/login?next={back}")


def test_the_openapi_document_lists_every_endpoint_and_no_page(client: TestClient) -> None:
    answer = client.get(f"{PREFIX}/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert documented == {(route.path, method) for route in API_ROUTES for method in route.methods}
    # Every endpoint says it needs Airflow's login.
    assert all(item["get"].get("security") for item in document["paths"].values())
    # The paths are relative to where the app is mounted.
    assert document.get("servers") == [{"url": PREFIX}]
    # No Swagger page: it would load its scripts from a CDN (the dashboard works offline).
    assert client.get(f"{PREFIX}/api/v1/docs").status_code in (401, 404)


# --- with a login ----------------------------------------------------------------------------------


def test_runs_lists_the_inserted_runs(client: TestClient, tokens: dict[str, str], rows: dict[str, int]) -> None:
    answer = client.get(f"{PREFIX}/api/v1/runs", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == 3
    assert [(r["pipeline"], r["date"], r["status"], r["dag_run_id"]) for r in page["runs"]] == [
        ("po_snapshots", "2024-12-04", "failed", "po-run"),
        ("stock_health", "2024-12-04", "failed", RUN),
        ("stock_health", "2024-12-03", "completed", "run-d3"),
    ]
    assert page["runs"][1]["missing_stores"] == ["STORE-009"]
    filtered = client.get(
        f"{PREFIX}/api/v1/runs",
        params={"pipeline": "stock_health", "status": "failed"},
        headers=bearer(tokens["viewer"]),
    ).json()
    assert [(r["pipeline"], r["date"]) for r in filtered["runs"]] == [("stock_health", "2024-12-04")]
    # The UI's cookie is a login for the API too (the pages' script calls it so).
    assert client.get(f"{PREFIX}/api/v1/runs", headers=cookie(tokens["viewer"])).json() == page
    # A status that is not one is refused, and an unknown pipeline is 404.
    assert client.get(f"{PREFIX}/api/v1/runs?status=done", headers=bearer(tokens["viewer"])).status_code == 422
    unknown = client.get(f"{PREFIX}/api/v1/runs?pipeline=nope", headers=bearer(tokens["viewer"]))
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "no pipeline 'nope'"})

    detail = client.get(f"{PREFIX}/api/v1/runs/stock_health/2024-12-04", headers=bearer(tokens["viewer"])).json()
    assert sorted(f["file_name"] for f in detail["file_jobs"]) == [
        "STORE-001_stock_20241204.xlsx",
        "STORE-002_stock_20241204.xlsx",
    ]
    assert (
        client.get(f"{PREFIX}/api/v1/runs/stock_health/2024-11-01", headers=bearer(tokens["viewer"])).status_code == 404
    )


def test_a_user_limited_to_one_dag_sees_none_of_the_others_rows(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int]
) -> None:
    auth = bearer(tokens["po_reader"])

    def get(path: str, **params: Any) -> Any:
        return client.get(PREFIX + path, params=params, headers=auth)

    assert [p["name"] for p in get("/api/v1/pipelines").json()] == ["po_snapshots"]
    assert [t["pipeline"] for t in get("/api/v1/today").json()["pipelines"]] == ["po_snapshots"]
    runs = get("/api/v1/runs").json()
    assert (runs["total"], {r["pipeline"] for r in runs["runs"]}) == (1, {"po_snapshots"})
    failed = get("/api/v1/failed-jobs").json()
    assert [j["id"] for j in failed["file_jobs"]] == [rows["po_failed"]]
    assert get("/api/v1/grid").json()["pipeline"] == "po_snapshots"
    assert get("/api/v1/metrics").json()["pipeline"] == "po_snapshots"
    assert get(f"/api/v1/file-jobs/{rows['po_failed']}").status_code == 200
    # Asking for the other pipeline by name: 403; for one of its files: as if it did not exist.
    for path in ("/api/v1/runs", "/api/v1/grid", "/api/v1/metrics", "/api/v1/failed-jobs"):
        answer = get(path, pipeline="stock_health")
        assert (answer.status_code, answer.json()) == (403, {"detail": "you may not read the DAG 'stock_health'"}), path
    assert get("/api/v1/runs/stock_health/2024-12-04").status_code == 403
    for job in (rows["stock_failed"], rows["stock_done"]):
        assert get(f"/api/v1/file-jobs/{job}").status_code == 404
        assert get(f"/api/v1/file-jobs/{job}/retry-plan").status_code == 404
    # The pages show the same limits.
    history = client.get(f"{PREFIX}/history", headers=cookie(tokens["po_reader"]))
    assert history.status_code == 200
    assert "po_snapshots" in history.text and "stock_health" not in history.text
    assert client.get(f"{PREFIX}/grid?pipeline=stock_health", headers=cookie(tokens["po_reader"])).status_code == 403
    # Another user with the same role reads both.
    both = client.get(f"{PREFIX}/api/v1/runs", headers=bearer(tokens["user"])).json()
    assert {r["pipeline"] for r in both["runs"]} == {"po_snapshots", "stock_health"}


def test_a_viewer_may_read_but_gets_no_retry(client: TestClient, tokens: dict[str, str], rows: dict[str, int]) -> None:
    auth = bearer(tokens["viewer"])
    assert {p["name"]: p["can_retry"] for p in client.get(f"{PREFIX}/api/v1/pipelines", headers=auth).json()} == {
        "po_snapshots": False,
        "stock_health": False,
    }
    job = client.get(f"{PREFIX}/api/v1/file-jobs/{rows['stock_failed']}", headers=auth)
    assert job.status_code == 200 and job.json()["status"] == "failed"
    plan = client.get(f"{PREFIX}/api/v1/file-jobs/{rows['stock_failed']}/retry-plan", headers=auth)
    assert (plan.status_code, plan.json()) == (
        403, {"detail": "you may not clear task instances of stock_health"},
    )  # fmt: skip
    for page in ("/failed", "/grid?pipeline=stock_health&end=2024-12-04&days=3"):
        answer = client.get(PREFIX + page, headers=cookie(tokens["viewer"]))
        assert answer.status_code == 200, page
        assert 'data-retryable=""' in answer.text, page
        assert "data-retry=" not in answer.text, page
    failed_page = client.get(f"{PREFIX}/failed", headers=cookie(tokens["viewer"])).text
    assert "STORE-002_stock_20241204.xlsx" in failed_page and "the file is damaged or incomplete" in failed_page


@pytest.mark.parametrize("name", ["user", "admin"])
def test_a_user_who_may_clear_gets_the_retry_plan(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int], name: str
) -> None:
    auth = bearer(tokens[name])
    answer = client.get(f"{PREFIX}/api/v1/file-jobs/{rows['stock_failed']}/retry-plan", headers=auth)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["body"] == {
        "dag_run_id": RUN,
        "task_ids": [["transform_file", 1]],
        "only_failed": True,
        "include_downstream": True,
        "dry_run": True,
    }
    assert (plan["dag_id"], plan["clear_path"]) == ("stock_health", "api/v2/dags/stock_health/clearTaskInstances")
    assert plan["files_in_task"] == ["STORE-002_stock_20241204.xlsx"]
    assert plan["file_job"]["id"] == rows["stock_failed"]
    # A file that is not failed: 409, with why.
    done = client.get(f"{PREFIX}/api/v1/file-jobs/{rows['stock_done']}/retry-plan", headers=auth)
    assert done.status_code == 409 and "not failed" in done.json()["detail"]
    assert client.get(f"{PREFIX}/api/v1/file-jobs/999999/retry-plan", headers=auth).status_code == 404
    # The pages offer the retry: the script knows which pipelines, the failed page has the buttons.
    failed_page = client.get(f"{PREFIX}/failed", headers=cookie(tokens[name])).text
    assert 'data-retryable="po_snapshots stock_health"' in failed_page
    assert f'data-retry="{rows["stock_failed"]}"' in failed_page
    assert f'data-retry="{rows["po_failed"]}"' in failed_page


def test_the_pages_render_with_the_mount_point_and_airflows_base(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int]
) -> None:
    today = client.get(f"{PREFIX}/", headers=cookie(tokens["viewer"]))
    assert today.status_code == 200 and today.headers["content-type"].startswith("text/html")
    assert 'data-base="/autopo" data-airflow-base=""' in today.text
    assert '<link rel="stylesheet" href="/autopo/static/dashboard.css">' in today.text
    assert 'data-pipeline="po_snapshots"' in today.text and 'data-pipeline="stock_health"' in today.text
    assert client.get(f"{PREFIX}/static/dashboard.js").status_code == 200
    grid = client.get(f"{PREFIX}/grid?pipeline=stock_health&end=2024-12-04&days=2", headers=cookie(tokens["viewer"]))
    assert grid.status_code == 200
    assert f'data-file-job="{rows["stock_failed"]}"' in grid.text
    # The columns are 12-03 and 12-04; STORE-009 sent nothing on the 4th: its second cell is missing, as
    # a symbol and a letter besides the colour.
    assert '<th scope="col" class="date" data-date="2024-12-04">' in grid.text
    row = re.search(r'<tr data-store="STORE-009">(.*?)</tr>', grid.text, re.S)
    assert row is not None, grid.text
    missing = '<span class="cell cell-missing" aria-label="missing">\u25cbM</span>'
    assert re.findall(r"<td>(.*?)</td>", row.group(1))[1] == missing

    metrics = client.get(
        f"{PREFIX}/metrics?pipeline=stock_health&end=2024-12-04&days=3", headers=cookie(tokens["viewer"])
    )
    assert metrics.status_code == 200 and "<svg" in metrics.text
    # A bearer token serves a page too (a script, or the system test).
    assert client.get(f"{PREFIX}/history", headers=bearer(tokens["viewer"])).status_code == 200


def test_the_pages_own_forms_and_pager_links_lead_to_pages(
    client: TestClient, tokens: dict[str, str], warehouse: str
) -> None:
    with psycopg.connect(warehouse, autocommit=True) as conn:
        for n in range(55):
            add_run(conn, "stock_health", D4 - dt.timedelta(days=n), status="failed" if n % 2 else "completed")
    auth = cookie(tokens["viewer"])
    history = client.get(f"{PREFIX}/history", headers=auth)
    assert history.status_code == 200 and "55 runs, 1–50 shown" in history.text
    # The filter form as a browser submits it: every field, the dates left empty.
    fields = dict(re.findall(r'<input type="date" name="(\w+)" value="([^"]*)"', history.text))
    assert fields == {"date_from": "", "date_to": ""}
    filtered = client.get(f"{PREFIX}/history", params={"pipeline": "", "status": "failed", **fields}, headers=auth)
    assert filtered.status_code == 200, filtered.text
    assert "27 runs, 1–27 shown" in filtered.text
    # The pager's link to the older runs carries the (empty) filters along.
    (older,) = re.findall(r'<a href="\?([^"]*)" rel="next">', history.text)
    following = client.get(f"{PREFIX}/history?{older.replace('&amp;', '&')}", headers=auth)
    assert following.status_code == 200, following.text
    assert "55 runs, 51–55 shown" in following.text
    # The grid's and the metrics' forms with the date cleared: up to today.
    for page in ("grid", "metrics"):
        answer = client.get(f"{PREFIX}/{page}", params={"pipeline": "stock_health", "end": "", "days": 7}, headers=auth)
        assert answer.status_code == 200, (page, answer.text)


def test_no_get_endpoint_changes_the_database(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int], warehouse: str
) -> None:
    before = table_contents(warehouse, TABLES)
    auth = bearer(tokens["admin"])
    urls = [PREFIX + concrete(route.path) for route in API_ROUTES]
    urls += [f"{PREFIX}/api/v1/file-jobs/{job}{tail}" for job in rows.values() for tail in ("", "/retry-plan")]
    urls += [PREFIX + page for page in PAGES]
    answered = {url: client.get(url, headers=auth).status_code for url in urls}
    assert all(status in (200, 404, 409) for status in answered.values()), answered
    assert table_contents(warehouse, TABLES) == before
    # The dashboard's connections cannot write even by mistake: they are read-only sessions.
    with dashboard.reader.connection() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM pipeline_runs")


def test_a_warehouse_that_cannot_be_reached_is_503_with_the_reason(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AUTOPO_DB", raising=False)
    dashboard.reader.close()
    answer = client.get(f"{PREFIX}/api/v1/runs", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 503
    assert "the warehouse connection 'autopo_db' is not defined" in answer.json()["detail"]


def test_a_warehouse_that_refuses_the_login_is_503_without_its_details(
    client: TestClient, tokens: dict[str, str], warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = psycopg.conninfo.conninfo_to_dict(warehouse)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AUTOPO_DB",
        f"postgresql://{wrong['user']}:not-the-password@{wrong['host']}:{wrong['port']}/{wrong['dbname']}",
    )
    dashboard.reader.close()
    answer = client.get(f"{PREFIX}/api/v1/runs", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail == "the warehouse cannot be read now; the API server's log says why"
    assert str(wrong["port"]) not in answer.text and "password" not in answer.text


def test_answers_are_not_kept_by_caches_and_times_are_utc(
    client: TestClient, tokens: dict[str, str], warehouse: str, rows: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = bearer(tokens["admin"])
    for url in (f"{PREFIX}/api/v1/runs", f"{PREFIX}/", f"{PREFIX}/grid?pipeline=stock_health"):
        assert client.get(url, headers=auth).headers["cache-control"] == "no-store", url
    assert client.get(f"{PREFIX}/static/dashboard.css").headers.get("cache-control") != "no-store"
    # A warehouse session in another time zone still gives UTC (the page labels its times UTC).
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", warehouse + "?options=-c%20TimeZone%3DAsia%2FJakarta")
    dashboard.reader.close()
    run = client.get(f"{PREFIX}/api/v1/runs/stock_health/{D4}", headers=auth).json()
    assert run["started_at"] == "2024-12-04T00:05:00Z", run["started_at"]
    history = client.get(f"{PREFIX}/history?pipeline=stock_health", headers=auth).text
    assert "2024-12-04 00:05:00 UTC" in history


@pytest.mark.parametrize("path", ["/api/v1/grid", "/api/v1/metrics", "/grid", "/metrics"])
def test_an_end_date_out_of_range_is_422_not_a_crash(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int], path: str
) -> None:
    answer = client.get(f"{PREFIX}{path}?pipeline=stock_health&end=0001-01-01", headers=bearer(tokens["admin"]))
    assert answer.status_code == 422


def test_a_user_who_may_read_a_dag_but_not_its_runs_sees_none_of_its_rows(
    client: TestClient, tokens: dict[str, str], rows: dict[str, int]
) -> None:
    # The dashboard shows runs, files' errors and their tasks' logs: DAG-level read is not enough.
    auth = bearer(tokens["dag_only"])
    assert client.get(f"{PREFIX}/api/v1/pipelines", headers=auth).json() == []
    assert client.get(f"{PREFIX}/api/v1/runs", headers=auth).json()["total"] == 0
    assert client.get(f"{PREFIX}/api/v1/runs?pipeline=stock_health", headers=auth).status_code == 403
    assert client.get(f"{PREFIX}/api/v1/file-jobs/{rows['stock_failed']}", headers=auth).status_code == 404
