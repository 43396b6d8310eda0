"""A bad store file fails only its own map index; fixing it and clearing that index completes the day.

Runs through Airflow's real machinery: a run triggered over the REST API,
scheduled by the scheduler, executed by LocalExecutor workers through the
execution API, and one map index cleared with the same REST call as the UI's
Clear dialog.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import AirflowStack, report

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.system

DAG_ID = "stock_health"
DATE = dt.date(2024, 12, 4)
RUN_TIMEOUT_S = 150


def stores_in_table(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY store_id",
            (DATE,),
        ).fetchall()
    return {store: count for store, count in rows}


def by_task(tis: list[dict[str, Any]]) -> dict[tuple[str, str | int], dict[str, Any]]:
    """Task instances keyed by (task_id, file name) for mapped ones, (task_id, -1) for the others."""
    return {(ti["task_id"], ti["rendered_map_index"] or ti["map_index"]): ti for ti in tis}


def keys(tis: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(ti["task_id"], ti["map_index"]) for ti in tis}


def describe(tis: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {ti['task_id']}[{ti['map_index']}] {ti['rendered_map_index']!r}: {ti['state']} try {ti['try_number']}"
        for ti in tis
    )


def test_clear_failed_file_reruns_only_that_file(
    airflow_stack: AirflowStack,
    pg_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    webhook_posts: tuple[str, list[dict[str, Any]]],
) -> None:
    client = airflow_stack.client
    started = time.monotonic()
    timings: dict[str, float] = {}

    layout = DataLayout(airflow_stack.data_root)
    day = generate_sample_day(layout, DATE, stores=3, skus=20)
    bad = day.files[1]
    good = [f for f in day.files if f != bad]
    assert bad.name == "STORE-002_stock_20241204.xlsx"
    bad.write_bytes(b"PK\x03\x04 definitely not a workbook \x00\xff" * 8)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM stock_health_snapshots WHERE snapshot_date = %s", (DATE,))
        conn.execute("DELETE FROM pipeline_runs WHERE pipeline_name = %s AND date = %s", (DAG_ID, DATE))

    # 1. The day runs: the bad file fails alone, the good ones are loaded, the run fails.
    run_id = client.trigger(DAG_ID, {"date": DATE.isoformat()})
    t0 = time.monotonic()
    state = client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    timings["first run"] = time.monotonic() - t0
    tis = client.task_instances(DAG_ID, run_id)
    assert state == "failed", describe(tis)
    ti = by_task(tis)
    transforms = [t for t in tis if t["task_id"] == "transform_file"]
    assert sorted(t["rendered_map_index"] for t in transforms) == sorted(f.name for f in day.files), describe(tis)
    assert [t["rendered_map_index"] for t in transforms if t["state"] == "failed"] == [bad.name], describe(tis)
    for path in good:
        assert ti[("transform_file", path.name)]["state"] == "success", describe(tis)
    assert ti[("aggregate_and_flush", -1)]["state"] == "success", describe(tis)
    assert ti[("load_snapshot", -1)]["state"] == "success", describe(tis)
    assert ti[("check_day", -1)]["state"] == "failed", describe(tis)
    failed_index = ti[("transform_file", bad.name)]["map_index"]
    good_attempts = {p.name: ti[("transform_file", p.name)]["start_date"] for p in good}
    log = client.task_log(DAG_ID, run_id, "transform_file", 1, failed_index)
    assert bad.name in log, log

    first_load = stores_in_table(pg_url)
    assert set(first_load) == {"STORE-001", "STORE-003"}, first_load

    # The failure reached the team's webhook (the DAG processor runs the DAG's failure callback),
    # naming the failed file and its error.
    posts = webhook_posts[1]
    t0 = time.monotonic()
    while not posts and time.monotonic() - t0 < 60:
        time.sleep(0.5)
    timings["failure webhook"] = time.monotonic() - t0
    assert len(posts) == 1, posts
    text = posts[0]["json"]["text"]
    assert text.startswith(f"autopo: {DAG_ID} {DATE.isoformat()} failed\n"), text
    assert f"{bad.name}: the file is damaged or incomplete" in text, text
    assert run_id in text, text
    assert all(count > 0 for count in first_load.values())

    # 2. The store sends a valid file; clear only the failed map index, with its downstream tasks.
    pristine = generate_sample_day(DataLayout(tmp_path / "pristine"), DATE, stores=3, skus=20)
    shutil.copyfile(pristine.files[1], bad)
    target = [("transform_file", failed_index)]

    # As `airflow tasks clear --only-failed --downstream` does. "Only failed" also filters
    # the downstream tasks, so aggregate_and_flush and load_snapshot (which succeeded) are
    # not cleared: check_day sees the newer file result and rewrites and reloads the day.
    cleared = client.clear_task_instances(DAG_ID, run_id, target, only_failed=True, include_downstream=True)
    assert keys(cleared) == {("transform_file", failed_index), ("check_day", -1)}, describe(cleared)
    t0 = time.monotonic()
    state = client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    timings["rerun after clear"] = time.monotonic() - t0
    tis = client.task_instances(DAG_ID, run_id)
    assert state == "success", describe(tis)
    ti = by_task(tis)

    # The other files were not transformed again; the cleared one ran a second time.
    assert ti[("transform_file", bad.name)]["try_number"] == 2, describe(tis)
    assert ti[("transform_file", bad.name)]["state"] == "success", describe(tis)
    for path in good:
        assert ti[("transform_file", path.name)]["try_number"] == 1, describe(tis)
        assert ti[("transform_file", path.name)]["state"] == "success", describe(tis)
        assert ti[("transform_file", path.name)]["start_date"] == good_attempts[path.name], describe(tis)

    second_load = stores_in_table(pg_url)
    assert set(second_load) == {"STORE-001", "STORE-002", "STORE-003"}, second_load
    assert {s: second_load[s] for s in first_load} == first_load

    # The tracking tables agree: one run of the date, completed; only the cleared file retried.
    # The worker's listener writes after the task reports its state: give it a moment.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(pg_url) as conn:
            judged = conn.execute(
                "SELECT completed_at IS NOT NULL AND status = 'completed' FROM pipeline_runs "
                "WHERE pipeline_name = %s AND date = %s",
                (DAG_ID, DATE),
            ).fetchone()
        if judged and judged[0]:
            break
        time.sleep(0.5)
    with psycopg.connect(pg_url) as conn:
        run_row = conn.execute(
            "SELECT status, attempt, dag_run_id, total_files, processed_files, failed_files, total_rows, error "
            "FROM pipeline_runs WHERE pipeline_name = %s AND date = %s",
            (DAG_ID, DATE),
        ).fetchall()
        jobs = dict(
            (name, (status, retry_count))
            for name, status, retry_count in conn.execute(
                "SELECT f.file_name, f.status, f.retry_count FROM pipeline_file_jobs f "
                "JOIN pipeline_runs r ON r.id = f.pipeline_run_id WHERE r.pipeline_name = %s AND r.date = %s",
                (DAG_ID, DATE),
            )
        )
    assert run_row == [("completed", 1, run_id, 3, 3, 0, sum(second_load.values()), None)], run_row
    assert jobs == {
        bad.name: ("completed", 1),
        **{path.name: ("completed", 0) for path in good},
    }, jobs

    # A run that ends well sends nothing more.
    assert len(posts) == 1, posts
    timings["test total"] = time.monotonic() - started
    report(request.config, "\nsystem test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
