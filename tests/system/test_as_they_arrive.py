"""Stores processed as they arrive, through Airflow's real scheduler (see conftest): ``stock_arrivals`` is
stock_health with ``processing: as_they_arrive`` on the README's schedule (every 15 minutes, 05:00-09:45
Asia/Jakarta).

Three runs of one business date, at the 05:00, 05:15 and 05:30 slots, find 10, then 25, then 40 stores'
files. After each, the table holds exactly the stores that have arrived, every earlier store's rows as
they were, and the date's one tracking row counts the new files as processed and the earlier ones as
reused (skipped). A backfill of the 05:45 slot, with nothing new, is skipped and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pendulum
import psycopg
import pytest
from airflow_stack import AirflowStack, report

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout
from conftest import ARRIVALS, SLA_TZ

pytestmark = pytest.mark.system

DATE = dt.date(2024, 11, 20)
RUN_TIMEOUT_S = 240


def slot(hour: int, minute: int) -> str:
    return pendulum.datetime(DATE.year, DATE.month, DATE.day, hour, minute, tz=SLA_TZ).in_timezone("UTC").isoformat()


def rows_per_store(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY 1", (DATE,)
        ).fetchall()
    return {str(store): int(count) for store, count in rows}


def date_row(pg_url: str) -> dict[str, Any]:
    with psycopg.connect(pg_url) as conn:
        cursor = conn.execute(
            "SELECT status, dag_run_id, total_files, processed_files, skipped_files, failed_files, total_rows "
            "FROM pipeline_runs WHERE pipeline_name = %s AND date = %s",
            (ARRIVALS, DATE),
        )
        rows = cursor.fetchall()
        names = [column.name for column in cursor.description or []]
    assert len(rows) == 1, rows  # one tracking row per business date, whatever the number of runs
    return dict(zip(names, rows[0], strict=True))


def test_three_runs_of_a_date_load_the_stores_as_they_arrive_and_a_run_with_nothing_new_is_skipped(
    airflow_stack: AirflowStack, pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    client = airflow_stack.client
    day = generate_sample_day(DataLayout(tmp_path / "generated"), DATE, stores=40, skus=12)
    data = DataLayout(airflow_stack.data_root)
    data.reference().mkdir(parents=True, exist_ok=True)
    (data.reference() / "suppliers.csv").write_bytes(day.supplier_master.read_bytes())
    inbox = data.inbox(ARRIVALS)
    inbox.mkdir(parents=True, exist_ok=True)

    timings = []
    before: dict[str, int] = {}
    arrived = 0
    for stores, (hour, minute) in ((10, (5, 0)), (25, (5, 15)), (40, (5, 30))):
        for path in day.files[arrived:stores]:
            (inbox / path.name).write_bytes(path.read_bytes())
        started = time.monotonic()
        run_id = client.trigger(ARRIVALS, logical_date=slot(hour, minute))
        assert client.wait_for_run(ARRIVALS, run_id, timeout=RUN_TIMEOUT_S) == "success"
        timings.append(time.monotonic() - started)

        loaded = rows_per_store(pg_url)
        assert sorted(loaded) == day.stores[:stores], sorted(loaded)
        assert {store: loaded[store] for store in before} == before  # earlier stores' rows as they were
        row = date_row(pg_url)
        assert row["status"] == "completed", row
        assert row["dag_run_id"] == run_id
        assert (row["total_files"], row["processed_files"], row["skipped_files"], row["failed_files"]) == (
            stores,
            stores - arrived,
            arrived,
            0,
        ), row
        assert row["total_rows"] == sum(loaded.values())
        before, arrived = loaded, stores

    # The next slot finds nothing new: its tasks are skipped, the date stays as the 05:30 run left it.
    last = date_row(pg_url)
    backfill = client.create_backfill(ARRIVALS, slot(5, 40), slot(5, 50))
    client.wait_for_backfill(backfill, timeout=RUN_TIMEOUT_S)
    (idle,) = [run for run in client.dag_runs(ARRIVALS) if run["run_type"] == "backfill"]
    assert idle["state"] == "success", idle
    assert pendulum.parse(idle["logical_date"]) == pendulum.parse(slot(5, 45))
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(ARRIVALS, idle["dag_run_id"])}
    assert states["wait_for_files"] == "skipped", states
    assert states["list_files"] == "skipped", states
    assert states["check_day"] == "skipped", states
    assert rows_per_store(pg_url) == before
    assert date_row(pg_url) == last
    report(
        request.config,
        "\nas they arrive: 10, 25, 40 stores in " + ", ".join(f"{seconds:.1f}s" for seconds in timings),
    )
