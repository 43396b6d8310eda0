"""Tracking writes that fail never fail the day; the next run's events heal the rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest
from dag_runs import pipeline_dag

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 11, 20)


def execute(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def test_the_day_completes_while_tracking_is_down_and_the_rows_heal_afterwards(
    tmp_path: Path,
    clean_tables: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.utils.state import DagRunState

    from autopo_tracking.hooks.tracking import TrackingHook

    layout = DataLayout(tmp_path / "data")
    generate_sample_day(layout, DATE, stores=2, skus=10)
    monkeypatch.setenv("AUTOPO_DATA_DIR", str(layout.root))
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", clean_tables)
    # Listeners run in this process under dag.test(): keep the retries short.
    monkeypatch.setattr(TrackingHook, "DEFAULT_RETRY_DELAYS", (0.01,))
    dag = pipeline_dag("stock_health")

    # The tracking tables are unreachable for the whole run (as when a write hits a dead database).
    execute(clean_tables, "ALTER TABLE pipeline_file_jobs RENAME TO pipeline_file_jobs_away")
    execute(clean_tables, "ALTER TABLE pipeline_runs RENAME TO pipeline_runs_away")
    try:
        assert dag.test(run_conf={"date": DATE.isoformat()}).state == DagRunState.SUCCESS
        loaded = execute(clean_tables, f"SELECT count(*) FROM stock_health_snapshots WHERE snapshot_date = '{DATE}'")
        assert loaded[0][0] > 0
        output = capfd.readouterr()
        # Every event's write failed, was logged (to the log capture or the console, depending on
        # how Airflow's logging was set up in this session), and the tasks went on.
        logged = output.out + output.err + caplog.text
        assert logged.count(f"tracking write for stock_health {DATE} failed") >= 6
    finally:
        execute(clean_tables, "ALTER TABLE pipeline_runs_away RENAME TO pipeline_runs")
        execute(clean_tables, "ALTER TABLE pipeline_file_jobs_away RENAME TO pipeline_file_jobs")

    # The database is back: the next run of the date writes the whole truth.
    run = dag.test(run_conf={"date": DATE.isoformat()})
    assert run.state == DagRunState.SUCCESS
    assert execute(
        clean_tables,
        "SELECT status, total_files, skipped_files, total_rows = (SELECT count(*) FROM "
        f"stock_health_snapshots WHERE snapshot_date = '{DATE}'), dag_run_id FROM pipeline_runs",
    ) == [("completed", 2, 2, True, run.run_id)]
    assert execute(clean_tables, "SELECT DISTINCT status FROM pipeline_file_jobs") == [("skipped",)]
