"""Tracking writes of one task attempt share one database connection, released when the attempt ends.

A trigger notes the server process (``pg_backend_pid()``) of every write to ``pipeline_file_jobs``
while a day runs through the real DAG (``dag.test()``: the listeners run in this process, as in a
task's process).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import psycopg
import pytest
from dag_runs import run_day

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 11, 21)


def execute(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode())
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def noted_writes(clean_tables: str) -> Iterator[str]:
    """``tracking_writes``: one row per row written to pipeline_file_jobs, in order, with the writer's pid."""
    execute(
        clean_tables,
        """
        CREATE TABLE tracking_writes (id serial PRIMARY KEY, pid int, file_path text, status text);
        CREATE FUNCTION note_tracking_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO tracking_writes (pid, file_path, status) VALUES (pg_backend_pid(), NEW.file_path, NEW.status);
            RETURN NEW;
        END $$;
        CREATE TRIGGER note_tracking_write AFTER INSERT OR UPDATE ON pipeline_file_jobs
            FOR EACH ROW EXECUTE FUNCTION note_tracking_write();
        """,
    )
    try:
        yield clean_tables
    finally:
        execute(
            clean_tables,
            """
            DROP TRIGGER note_tracking_write ON pipeline_file_jobs;
            DROP FUNCTION note_tracking_write();
            DROP TABLE tracking_writes;
            """,
        )


def test_a_transforms_start_and_end_are_written_over_one_connection_closed_after_it(
    data_layout: DataLayout, noted_writes: str
) -> None:
    from airflow.utils.state import DagRunState

    generate_sample_day(data_layout, DATE, stores=3, skus=10)
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS

    writes = execute(noted_writes, "SELECT pid, file_path, status FROM tracking_writes ORDER BY id")
    by_file: dict[str, list[tuple[int, str]]] = {}
    for pid, path, status in writes:
        by_file.setdefault(str(path), []).append((int(str(pid)), str(status)))
    assert len(by_file) == 3
    transform_pids = set()
    for path, file_writes in by_file.items():
        statuses = [status for _, status in file_writes]
        # list_files queues it, its transform starts and ends it, check_day writes its outcome again, and
        # so does the run's end (events.run_ended: it may come before check_day's listener).
        assert statuses == ["queued", "processing", "completed", "completed", "completed"], path
        (listed, _), (started, _), (finished, _), (judged, _), _run_end = file_writes
        assert started == finished, f"{path}: its transform's two events wrote over two connections"
        assert len({listed, started, judged}) == 3, f"{path}: another task's connection was reused"
        transform_pids.add(started)
    assert len(transform_pids) == 3  # one connection per transform attempt

    # Each attempt closed its connection at its last event: none is left open on the server.
    pids = sorted({pid for pid, _, _ in writes}, key=str)
    left: list[tuple[object, ...]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = execute(noted_writes, f"SELECT pid FROM pg_stat_activity WHERE pid IN ({', '.join(map(str, pids))})")
        if not left:
            break
        time.sleep(0.05)
    assert left == []
