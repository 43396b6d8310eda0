"""The tracking hook against the real PostgreSQL: upserts, attempts, outages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from autopo_pipelines import tracking_rows
from autopo_pipelines.day.state import DayInputs, FileTask, Listing

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
NOW = dt.datetime(2024, 12, 4, 8, 0, tzinfo=dt.UTC)
FILE = FileTask("S1_stock_20241204.xlsx", "/in/S1_stock_20241204.xlsx", 10, 0.0, "S1", None)


def listing_of(*routed: FileTask, run_id: str = "run-1") -> Listing:
    """The date's listing as list_files writes it: one file per transform_file map index."""
    return Listing(
        run_id=run_id,
        date=DATE.isoformat(),
        source="/in",
        files_seen=len(routed),
        routed=list(routed),
        files_per_task=1,
        batches=[[file.name] for file in routed],
        unrouted=[],
        superseded=[],
        missing_stores=["S9", "TOKO 7"],
        other_dates=0,
        inputs=DayInputs(folder="/data/inputs", fingerprint="sha256:00", notes=[]),
    )


LISTING = listing_of(FILE)
RESULT = {"status": "completed", "checksum": "sha256:ab", "rows_in": 5, "rows_out": 4, "rows_rejected": 1}


@pytest.fixture
def hook(clean_tables: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from autopo_tracking.hooks.tracking import TrackingHook

    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", clean_tables)
    hook = TrackingHook(retry_delays=(0.05, 0.05))
    yield hook
    hook.close()


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_a_date_keeps_one_row_and_counts_its_runs(hook: object, clean_tables: str) -> None:
    assert hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    assert hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"))
    assert hook.record(tracking_rows.files_listed("stock_health", DATE, listing_of(FILE, run_id="run-2"), "run-2", NOW))
    assert hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-2", NOW, "run-2#1"))
    assert rows(
        clean_tables, "SELECT pipeline_name, date, attempt, dag_run_id, status, missing_stores FROM pipeline_runs"
    ) == [("stock_health", DATE, 2, "run-2", "processing", ["S9", "TOKO 7"])]
    assert rows(clean_tables, "SELECT file_name, status, attempts, retry_count, rows_out FROM pipeline_file_jobs") == [
        ("S1_stock_20241204.xlsx", "completed", 2, 1, 4)
    ]


def test_a_run_ended_by_hand_does_not_overwrite_a_judged_day(hook: object, clean_tables: str) -> None:
    hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    judged = tracking_rows.day_judged(
        "stock_health", DATE, statuses={"completed": 1}, problems=[], loaded=True, dag_run_id="run-1", now=NOW
    )
    hook.record(judged)
    hook.record(tracking_rows.run_ended_without_judgement("stock_health", DATE, False, "marked", "run-1", NOW))
    assert rows(clean_tables, "SELECT status, error FROM pipeline_runs") == [("completed", None)]
    # A run that never got judged is closed by its end.
    hook.record(tracking_rows.files_listed("stock_health", DATE, listing_of(FILE, run_id="run-2"), "run-2", NOW))
    hook.record(tracking_rows.run_ended_without_judgement("stock_health", DATE, False, "marked failed", "run-2", NOW))
    assert rows(clean_tables, "SELECT status, error FROM pipeline_runs") == [("failed", "marked failed")]
    # Its files that never ran end with it instead of staying queued.
    assert rows(clean_tables, "SELECT status, error FROM pipeline_file_jobs") == [
        ("failed", "the run ended before this file was transformed")
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_database_outage_is_logged_not_raised_and_the_next_event_heals_the_row(
    hook: object, clean_tables: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from autopo_tracking.hooks.tracking import TrackingHook

    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DOWN", f"postgresql://autopo@127.0.0.1:{free_port()}/autopo")
    down = TrackingHook(tracking_conn_id="autopo_down", retry_delays=(0.05, 0.05))
    with caplog.at_level(logging.WARNING):
        assert down.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW)) is False
    down.close()
    assert "given up" in caplog.text
    assert rows(clean_tables, "SELECT count(*) FROM pipeline_runs") == [(0,)]
    # The database is back: the file's next event creates the run row it needs and its own.
    assert hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"))
    assert rows(clean_tables, "SELECT dag_run_id, attempt FROM pipeline_runs") == [("run-1", 1)]
    assert rows(clean_tables, "SELECT status, rows_out FROM pipeline_file_jobs") == [("completed", 4)]


def test_an_attempt_counts_once_however_often_its_write_is_repeated(hook: object, clean_tables: str) -> None:
    hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    for _ in range(3):
        hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"))
    hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#2"))
    assert rows(clean_tables, "SELECT attempts, retry_count FROM pipeline_file_jobs") == [(2, 1)]


def test_a_late_event_of_an_older_run_leaves_the_newer_runs_row_alone(hook: object, clean_tables: str) -> None:
    hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    hook.record(tracking_rows.files_listed("stock_health", DATE, listing_of(FILE, run_id="run-2"), "run-2", NOW))
    judged = tracking_rows.day_judged(
        "stock_health", DATE, statuses={}, problems=["stale"], loaded=False, dag_run_id="run-1", now=NOW
    )
    hook.record(judged)
    hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#2"))
    assert rows(clean_tables, "SELECT dag_run_id, status, attempt FROM pipeline_runs") == [("run-2", "processing", 2)]
    assert rows(clean_tables, "SELECT status, attempts FROM pipeline_file_jobs") == [("queued", 0)]


def test_a_late_listing_does_not_reset_a_file_already_under_way(hook: object, clean_tables: str) -> None:
    hook.record(tracking_rows.file_started("stock_health", DATE, FILE, 0, "run-1", NOW))
    hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"))
    hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    assert rows(clean_tables, "SELECT status, rows_out FROM pipeline_file_jobs") == [("completed", 4)]
    assert rows(clean_tables, "SELECT total_files, missing_stores FROM pipeline_runs") == [(1, ["S9", "TOKO 7"])]


def test_a_file_gone_from_the_source_is_retired_by_the_next_listing(hook: object, clean_tables: str) -> None:
    other = dataclasses.replace(
        FILE, name="S2_stock_20241204.xlsx", location="/in/S2_stock_20241204.xlsx", store_id="S2"
    )
    hook.record(tracking_rows.files_listed("stock_health", DATE, listing_of(FILE, other), "run-1", NOW))
    hook.record(tracking_rows.files_listed("stock_health", DATE, listing_of(FILE, run_id="run-2"), "run-2", NOW))
    assert rows(clean_tables, "SELECT file_name, status, map_index, error FROM pipeline_file_jobs ORDER BY 1") == [
        ("S1_stock_20241204.xlsx", "queued", 0, None),
        ("S2_stock_20241204.xlsx", "unrouted", None, "no longer at the source"),
    ]


def test_a_run_that_ended_before_listing_leaves_a_failed_row_but_never_overwrites_another_runs(
    hook: object, clean_tables: str
) -> None:
    """The sensor failed (no files for a past date): the date still gets a row saying why."""
    error = "no stock_health files for 2024-12-04 at /inbox; not waiting for a past date"
    hook.record(tracking_rows.run_ended_without_judgement("stock_health", DATE, False, error, "run-1", NOW))
    assert rows(clean_tables, "SELECT dag_run_id, status, error, attempt FROM pipeline_runs") == [
        ("run-1", "failed", error, 1)
    ]
    # A date another run completed keeps that run's row.
    other = dt.date(2024, 12, 5)
    hook.record(tracking_rows.files_listed("stock_health", other, LISTING, "run-2", NOW))
    hook.record(
        tracking_rows.day_judged(
            "stock_health", other, statuses={}, problems=[], loaded=True, dag_run_id="run-2", now=NOW
        )
    )
    hook.record(tracking_rows.run_ended_without_judgement("stock_health", other, False, "late", "run-3", NOW))
    assert rows(clean_tables, f"SELECT dag_run_id, status FROM pipeline_runs WHERE date = '{other}'") == [
        ("run-2", "completed")
    ]


def test_a_name_or_error_with_a_nul_is_tracked_with_it_shown(hook: object, clean_tables: str) -> None:
    # PostgreSQL's text cannot hold NUL: the write used to fail, the failure was swallowed, the file untracked.
    odd = dataclasses.replace(FILE, name="S1\x00_stock_20241204.xlsx", location="gs://b/S1\x00_stock_20241204.xlsx")
    listing = listing_of(odd)
    assert hook.record(tracking_rows.files_listed("stock_health", DATE, listing, "run-1", NOW))
    failure = {"error": "S1\x00_stock_20241204.xlsx: not a workbook", "will_retry": False}
    assert hook.record(tracking_rows.file_failed("stock_health", DATE, odd, 0, failure, "run-1", NOW))
    assert rows(clean_tables, "SELECT file_name, file_path, status, error FROM pipeline_file_jobs") == [
        (
            "S1\\x00_stock_20241204.xlsx",
            "gs://b/S1\\x00_stock_20241204.xlsx",
            "failed",
            "S1\\x00_stock_20241204.xlsx: not a workbook",
        )
    ]


# --- the connection: PostgresHook's, extras and all, kept for the hook's writes ---------------------


def with_extras(url: str, **extra: object) -> str:
    """An AIRFLOW_CONN_* value for the database at ``url`` with these extras."""
    parts = urllib.parse.urlsplit(url)
    conn = {
        "conn_type": "postgres",
        "host": parts.hostname,
        "port": parts.port,
        "login": parts.username,
        "password": parts.password and urllib.parse.unquote(parts.password),
        "schema": parts.path.lstrip("/"),
        "extra": extra,
    }
    return json.dumps(conn)


def backends(url: str, application_name: str) -> list[tuple[object, ...]]:
    """The server's sessions with that application name: their pid and whether they use SSL."""
    return rows(
        url,
        "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
        f"WHERE a.application_name = '{application_name}' ORDER BY a.pid",
    )


def test_the_connections_extras_reach_the_server(
    clean_tables: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from autopo_tracking.hooks.tracking import TrackingHook

    extras = {"sslmode": "disable", "application_name": "autopo-extras", "options": "-c lock_timeout=1234"}
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_EXTRAS", with_extras(clean_tables, **extras))
    hook = TrackingHook(tracking_conn_id="autopo_extras", retry_delays=())
    try:
        assert hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
        # As the server sees the session: named by the extra, without SSL (sslmode=disable).
        assert backends(clean_tables, "autopo-extras") == [(hook.conn.info.backend_pid, False)]
        # The connection's own options, and the tracking write's limits after them.
        settings = {
            name: hook.conn.execute(f"SHOW {name}").fetchone()[0] for name in ("lock_timeout", "statement_timeout")
        }
        assert settings == {"lock_timeout": "1234ms", "statement_timeout": "5s"}
    finally:
        hook.close()

    # sslmode is honoured, not dropped: this server has no SSL, so a connection that requires it fails.
    assert rows(clean_tables, "SHOW ssl") == [("off",)]
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_SSL", with_extras(clean_tables, sslmode="require"))
    hook = TrackingHook(tracking_conn_id="autopo_ssl", retry_delays=())
    with caplog.at_level(logging.WARNING):
        assert hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-2", NOW)) is False
    hook.close()
    assert "could not reach the database" in caplog.text
    assert rows(clean_tables, "SELECT dag_run_id FROM pipeline_runs") == [("run-1",)]


def test_a_hooks_writes_share_one_connection_until_it_is_closed(
    clean_tables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autopo_tracking.hooks.tracking import TrackingHook

    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", with_extras(clean_tables, application_name="autopo-one-conn"))
    hook = TrackingHook(retry_delays=())
    pids = []
    for change in (
        tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW),
        tracking_rows.file_started("stock_health", DATE, FILE, 0, "run-1", NOW),
        tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"),
    ):
        assert hook.record(change)
        pids.append(hook.conn.info.backend_pid)
    assert len(set(pids)) == 1
    # One session on the server, idle between the writes (each committed on its own).
    assert rows(clean_tables, "SELECT pid, state FROM pg_stat_activity WHERE application_name = 'autopo-one-conn'") == [
        (pids[0], "idle")
    ]
    assert rows(clean_tables, "SELECT status, rows_out FROM pipeline_file_jobs") == [("completed", 4)]
    hook.close()
    assert hook.conn is None
    deadline = time.monotonic() + 5
    while backends(clean_tables, "autopo-one-conn") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(clean_tables, "autopo-one-conn") == []


def test_a_kept_connection_the_server_closed_is_replaced_at_once(
    hook: Any, clean_tables: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert hook.record(tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW))
    lost = hook.conn.info.backend_pid
    assert rows(clean_tables, f"SELECT pg_terminate_backend({lost})") == [(True,)]
    with caplog.at_level(logging.INFO):
        assert hook.record(tracking_rows.file_finished("stock_health", DATE, FILE, 0, RESULT, "run-1", NOW, "run-1#1"))
    assert hook.conn.info.backend_pid != lost
    assert "the kept database connection was lost; reconnecting" in caplog.text
    assert "could not reach the database" not in caplog.text  # no retry delay spent on it
    assert rows(clean_tables, "SELECT status, rows_out FROM pipeline_file_jobs") == [("completed", 4)]
