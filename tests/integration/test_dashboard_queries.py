"""The dashboard's reads (autopo_tracking.dashboard.queries) against the real PostgreSQL, migrated with the
project's migrations: tracking rows written as the tracking hook writes them, read back view by view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from autopo_pipelines.config import PipelineConfig, default_config_dir, load_config_file
from autopo_tracking.dashboard import queries
from dashboard_rows import add_file, add_run, at

pytestmark = pytest.mark.integration

D1, D2, D3, D4, D5 = (dt.date(2024, 12, day) for day in range(1, 6))
BOTH = ["po_snapshots", "stock_health"]
RUN = "manual__2024-12-04T03:00:00+00:00"


@pytest.fixture
def conn(clean_tables: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(clean_tables, autocommit=True) as connection:
        yield connection


def config(name: str, **update: Any) -> PipelineConfig:
    """The checkout's config of the pipeline (dags/configs), with ``update`` applied."""
    loaded = load_config_file(default_config_dir() / f"{name}.yaml")
    return loaded.model_copy(update=update)


def listed(page: Any) -> list[tuple[str, dt.date]]:
    return [(run.pipeline, run.date) for run in page.runs]


# --- runs_page ------------------------------------------------------------------------------------


def test_runs_page_filters_by_pipeline_status_and_dates_and_pages_with_a_total(
    conn: psycopg.Connection[Any],
) -> None:
    statuses = {D1: "completed", D2: "failed", D3: "completed_with_errors", D4: "failed", D5: "processing"}
    for date, status in statuses.items():
        add_run(conn, "stock_health", date, status=status, total_files=4, dag_run_id=f"run-{date}")
    add_run(conn, "po_snapshots", D3, status="completed")
    add_run(conn, "po_snapshots", D4, status="failed")

    everything = queries.runs_page(conn, BOTH)
    assert everything.total == 7
    # Newest date first; one date's pipelines by name.
    assert listed(everything) == [
        ("stock_health", D5),
        ("po_snapshots", D4),
        ("stock_health", D4),
        ("po_snapshots", D3),
        ("stock_health", D3),
        ("stock_health", D2),
        ("stock_health", D1),
    ]
    first = everything.runs[0]
    assert (first.status, first.total_files, first.dag_run_id) == ("processing", 4, f"run-{D5}")

    assert listed(queries.runs_page(conn, ["po_snapshots"])) == [("po_snapshots", D4), ("po_snapshots", D3)]
    failed = queries.runs_page(conn, BOTH, status="failed")
    assert (failed.total, listed(failed)) == (3, [("po_snapshots", D4), ("stock_health", D4), ("stock_health", D2)])
    ranged = queries.runs_page(conn, BOTH, date_from=D2, date_to=D3)
    assert (ranged.total, listed(ranged)) == (3, [("po_snapshots", D3), ("stock_health", D3), ("stock_health", D2)])
    assert listed(queries.runs_page(conn, ["stock_health"], status="failed", date_from=D3)) == [("stock_health", D4)]

    # Pages: the total is every matching run, whichever page is asked for.
    page = queries.runs_page(conn, BOTH, limit=2, offset=2)
    assert (page.total, page.limit, page.offset) == (7, 2, 2)
    assert listed(page) == [("stock_health", D4), ("po_snapshots", D3)]
    last = queries.runs_page(conn, BOTH, limit=5, offset=5)
    assert (last.total, listed(last)) == (7, [("stock_health", D2), ("stock_health", D1)])
    past_the_end = queries.runs_page(conn, BOTH, limit=5, offset=50)
    assert (past_the_end.total, past_the_end.runs) == (7, [])
    assert queries.runs_page(conn, BOTH, status="failed", offset=50).total == 3
    # No pipeline the caller may read: nothing, whatever is in the table.
    nothing = queries.runs_page(conn, [])
    assert (nothing.total, nothing.runs) == (0, [])


def test_run_of_and_its_files(conn: psycopg.Connection[Any]) -> None:
    run_id = add_run(conn, "stock_health", D4, missing_stores=["S9"], notes=["ran without PO data"])
    add_file(conn, run_id, "S2_stock_20241204.xlsx", "S2", "completed")
    add_file(conn, run_id, "S1_stock_20241204.xlsx", "S1", "failed", error="bad header")
    add_file(conn, run_id, "odd.xlsx", None, "unrouted")

    run = queries.run_of(conn, "stock_health", D4)
    assert run is not None
    assert (run.id, run.missing_stores, run.notes) == (run_id, ["S9"], ["ran without PO data"])
    assert queries.run_of(conn, "po_snapshots", D4) is None
    # Stores in order, the unrouted file (no store) last.
    assert [(f.file_name, f.status) for f in queries.files_of_run(conn, run_id)] == [
        ("S1_stock_20241204.xlsx", "failed"),
        ("S2_stock_20241204.xlsx", "completed"),
        ("odd.xlsx", "unrouted"),
    ]


# --- grid -----------------------------------------------------------------------------------------


def test_grid_rows_are_the_stores_of_files_expected_and_missing_and_a_cell_shows_its_most_urgent_file(
    conn: psycopg.Connection[Any],
) -> None:
    stock = config("stock_health", expected_stores=["S1", "S2", "S3"])
    first = add_run(conn, "stock_health", D2, missing_stores=["S3"])
    s1_d2 = add_file(conn, first, "S1_stock_20241202.xlsx", "S1", "completed")
    s2_d2 = add_file(conn, first, "S2_stock_20241202.xlsx", "S2", "skipped")
    second = add_run(conn, "stock_health", D3, status="failed", missing_stores=["S3", "S4"])
    # S1 sent the date twice (say a file under another name): the failed one is what the cell shows.
    s1_good = add_file(conn, second, "S1_stock_20241203.xlsx", "S1", "completed")
    s1_bad = add_file(conn, second, "S1 stock health 2024-12-03.xlsx", "S1", "failed")
    s2_d3 = add_file(conn, second, "S2_stock_20241203.xlsx", "S2", "processing")
    odd = add_file(conn, second, "weird.xlsx", None, "unrouted")
    # Another pipeline's files and a date outside the window are not in the grid.
    other = add_run(conn, "po_snapshots", D3, status="failed")
    add_file(conn, other, "S5_po_20241203.xlsx", "S5", "failed")
    outside = add_run(conn, "stock_health", D1)
    add_file(conn, outside, "S6_stock_20241201.xlsx", "S6", "completed")

    grid = queries.grid(conn, stock, end=D4, days=3, latest=D5)
    assert (grid.pipeline, grid.dates, grid.end, grid.days) == ("stock_health", [D2, D3, D4], D4, 3)
    assert (grid.previous_end, grid.next_end) == (D1, D5)
    cells = {
        row.store: list(zip(grid.dates, row.statuses, row.file_job_ids, row.file_counts, strict=True))
        for row in grid.rows
    }
    # Expected stores (S3 sent nothing), a missing store the config does not expect (S4), and a file without
    # a store (its name is its row), sorted.
    assert list(cells) == ["S1", "S2", "S3", "S4", "weird.xlsx"]
    assert cells["S1"] == [(D2, "completed", s1_d2, 1), (D3, "failed", s1_bad, 2), (D4, "none", None, 0)]
    assert s1_good < s1_bad  # shown for its status, not its order
    assert cells["S2"] == [(D2, "skipped", s2_d2, 1), (D3, "processing", s2_d3, 1), (D4, "none", None, 0)]
    assert cells["S3"] == [(D2, "missing", None, 0), (D3, "missing", None, 0), (D4, "none", None, 0)]
    assert cells["S4"] == [(D2, "none", None, 0), (D3, "missing", None, 0), (D4, "none", None, 0)]
    assert cells["weird.xlsx"] == [(D2, "none", None, 0), (D3, "unrouted", odd, 1), (D4, "none", None, 0)]
    assert grid.letters["failed"] == "F" and grid.letters["missing"] == "M" and grid.letters["none"] == ""

    # The page that ends today has no later page; one further back has a later one, up to today.
    assert queries.grid(conn, stock, end=D5, days=3, latest=D5).next_end is None
    earlier = queries.grid(conn, stock, end=D1, days=2, latest=D5)
    assert (earlier.dates, earlier.previous_end, earlier.next_end) == (
        [dt.date(2024, 11, 30), D1],
        dt.date(2024, 11, 29),
        D3,
    )
    assert [row.store for row in earlier.rows] == ["S1", "S2", "S3", "S6"]
    # Without runs in the window, the rows are the expected stores, every cell empty.
    empty = queries.grid(conn, stock, end=dt.date(2024, 11, 1), days=2, latest=D5)
    assert [(row.store, row.statuses) for row in empty.rows] == [
        ("S1", ["none", "none"]),
        ("S2", ["none", "none"]),
        ("S3", ["none", "none"]),
    ]


# --- file_job, failed_jobs ------------------------------------------------------------------------


def test_file_job_is_hidden_unless_its_pipeline_is_allowed_and_links_to_its_task_log(
    conn: psycopg.Connection[Any],
) -> None:
    run_id = add_run(conn, "stock_health", D4, dag_run_id=RUN)
    job_id = add_file(conn, run_id, "S1_stock_20241204.xlsx", "S1", "failed", map_index=3, dag_run_id=RUN)
    unrouted = add_file(conn, run_id, "odd.xlsx", None, "unrouted", dag_run_id=RUN)

    assert queries.file_job(conn, job_id, ["po_snapshots"]) is None
    assert queries.file_job(conn, job_id, []) is None
    assert queries.file_job(conn, job_id + 1000, BOTH) is None
    job = queries.file_job(conn, job_id, ["stock_health"])
    assert job is not None
    assert (job.pipeline, job.date, job.file_name, job.status, job.map_index) == (
        "stock_health", D4, "S1_stock_20241204.xlsx", "failed", 3,
    )  # fmt: skip
    assert job.log is not None
    assert job.log.url == (
        "dags/stock_health/runs/manual__2024-12-04T03%3A00%3A00%2B00%3A00/tasks/transform_file/mapped/3"
    )
    never_given_to_a_task = queries.file_job(conn, unrouted, ["stock_health"])
    assert never_given_to_a_task is not None and never_given_to_a_task.log is None


def test_failed_jobs_newest_date_first_with_a_total(conn: psycopg.Connection[Any]) -> None:
    older = add_run(conn, "stock_health", D2, status="failed")
    add_file(conn, older, "S2_stock_20241202.xlsx", "S2", "failed")
    add_file(conn, older, "S1_stock_20241202.xlsx", "S1", "completed")
    newer = add_run(conn, "stock_health", D4, status="failed")
    add_file(conn, newer, "S3_stock_20241204.xlsx", "S3", "failed")
    add_file(conn, newer, "S1_stock_20241204.xlsx", "S1", "failed")
    add_file(conn, newer, "S2_stock_20241204.xlsx", "S2", "retained")
    po = add_run(conn, "po_snapshots", D4, status="failed")
    add_file(conn, po, "po_20241204.xlsx", None, "failed")

    page = queries.failed_jobs(conn, BOTH)
    assert page.total == 4
    assert [(j.date, j.pipeline, j.file_name) for j in page.file_jobs] == [
        (D4, "po_snapshots", "po_20241204.xlsx"),
        (D4, "stock_health", "S1_stock_20241204.xlsx"),
        (D4, "stock_health", "S3_stock_20241204.xlsx"),
        (D2, "stock_health", "S2_stock_20241202.xlsx"),
    ]
    assert all(j.status == "failed" for j in page.file_jobs)
    second = queries.failed_jobs(conn, BOTH, limit=2, offset=2)
    assert (second.total, [j.file_name for j in second.file_jobs]) == (
        4, ["S3_stock_20241204.xlsx", "S2_stock_20241202.xlsx"],
    )  # fmt: skip
    past_the_end = queries.failed_jobs(conn, BOTH, offset=10)
    assert (past_the_end.total, past_the_end.file_jobs) == (4, [])
    assert queries.failed_jobs(conn, ["stock_health"], since=D3).total == 2
    assert queries.failed_jobs(conn, ["stock_health"], since=D3, offset=5).total == 2
    assert queries.failed_jobs(conn, ["po_snapshots"]).total == 1
    assert queries.failed_jobs(conn, []).total == 0


# --- retry_plan -----------------------------------------------------------------------------------


def test_retry_plan_clears_the_files_map_index_in_its_dag_run_and_names_every_file_it_holds(
    conn: psycopg.Connection[Any],
) -> None:
    from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody

    run_id = add_run(conn, "stock_health", D4, status="failed", dag_run_id=RUN)
    # A batch: map index 2 of RUN transformed three files; one failed.
    failed = add_file(conn, run_id, "S2_stock_20241204.xlsx", "S2", "failed", map_index=2, dag_run_id=RUN)
    add_file(conn, run_id, "S5_stock_20241204.xlsx", "S5", "completed", map_index=2, dag_run_id=RUN)
    add_file(conn, run_id, "S4_stock_20241204.xlsx", "S4", "completed", map_index=2, dag_run_id=RUN)
    # Not in that task instance: another map index, the same index of an earlier DAG run, another date.
    add_file(conn, run_id, "S1_stock_20241204.xlsx", "S1", "completed", map_index=1, dag_run_id=RUN)
    add_file(conn, run_id, "S3_stock_20241204.xlsx", "S3", "completed", map_index=2, dag_run_id="earlier-run")
    other_date = add_run(conn, "stock_health", D3, dag_run_id=RUN)
    add_file(conn, other_date, "S6_stock_20241203.xlsx", "S6", "completed", map_index=2, dag_run_id=RUN)

    job = queries.file_job(conn, failed, ["stock_health"])
    assert job is not None
    plan = queries.retry_plan(conn, job)
    assert (plan.dag_id, plan.clear_path) == ("stock_health", "api/v2/dags/stock_health/clearTaskInstances")
    assert plan.file_job == job
    assert plan.files_in_task == ["S2_stock_20241204.xlsx", "S4_stock_20241204.xlsx", "S5_stock_20241204.xlsx"]
    body = plan.body.model_dump(mode="json")
    assert body == {
        "dag_run_id": RUN,
        "task_ids": [["transform_file", 2]],
        "only_failed": True,
        "include_downstream": True,
        "dry_run": True,
    }
    # Airflow's own request model of clearTaskInstances takes it as it is (it forbids unknown fields).
    clear = ClearTaskInstancesBody.model_validate(body)
    assert (clear.dag_run_id, clear.task_ids, clear.dry_run) == (RUN, [("transform_file", 2)], True)
    assert (clear.only_failed, clear.include_downstream, clear.include_upstream) == (True, True, False)


def test_retry_plan_refuses_a_file_that_is_not_failed_or_was_never_given_to_a_task(
    conn: psycopg.Connection[Any],
) -> None:
    run_id = add_run(conn, "stock_health", D4, status="failed", dag_run_id=RUN)
    done = add_file(conn, run_id, "S1_stock_20241204.xlsx", "S1", "completed", map_index=0, dag_run_id=RUN)
    unrouted = add_file(conn, run_id, "odd.xlsx", None, "unrouted", dag_run_id=RUN)
    # Failed before any task had it (e.g. the run ended before it was transformed): no map index.
    orphan = add_file(conn, run_id, "S2_stock_20241204.xlsx", "S2", "failed", dag_run_id=RUN)
    for job_id, reason in ((done, "not failed"), (unrouted, "not failed"), (orphan, "never given to a transform")):
        job = queries.file_job(conn, job_id, ["stock_health"])
        assert job is not None
        with pytest.raises(queries.NotRetryable, match=reason):
            queries.retry_plan(conn, job)


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_per_day_with_days_without_a_run_a_weighted_file_time_and_the_last_processed_time(
    conn: psycopg.Connection[Any],
) -> None:
    day = add_run(
        conn, "stock_health", D3, status="completed_with_errors", total_rows=140, rejected_rows=3,
        started_at=at(D3, 1, 0), completed_at=at(D3, 1, 30),
    )  # fmt: skip
    add_file(conn, day, "S1.xlsx", "S1", "completed", rows_in=100, started_at=at(D3, 1, 1), completed_at=at(D3, 1, 2))
    add_file(conn, day, "S2.xlsx", "S2", "completed", rows_in=50, started_at=at(D3, 1, 1), completed_at=at(D3, 1, 3))
    add_file(conn, day, "S3.xlsx", "S3", "failed", rows_in=7, started_at=at(D3, 1, 4), completed_at=at(D3, 1, 4, 30))
    # Reused (unchanged): processed, its rows counted, but not transformed: no time.
    add_file(conn, day, "S4.xlsx", "S4", "skipped", rows_in=20)
    add_file(conn, day, "S5.xlsx", "S5", "queued")
    later = add_run(
        conn, "stock_health", D5, status="processing", total_rows=0, started_at=at(D5, 2, 0), completed_at=None
    )
    add_file(conn, later, "S1.xlsx", "S1", "completed", rows_in=9, started_at=at(D5, 2, 0), completed_at=at(D5, 2, 5))
    # Another pipeline's run of the same date counts for that pipeline only.
    po = add_run(conn, "po_snapshots", D3, total_rows=999, started_at=at(D3, 0), completed_at=at(D3, 3))
    add_file(conn, po, "po.xlsx", None, "completed", rows_in=999, started_at=at(D3, 0), completed_at=at(D3, 2))

    found = queries.metrics(conn, "stock_health", end=D5, days=4)
    assert (found.pipeline, found.end, [d.date for d in found.days]) == ("stock_health", D5, [D2, D3, D4, D5])
    by_date = {d.date: d for d in found.days}
    for empty in (D2, D4):
        assert by_date[empty].model_dump() == {
            "date": empty, "run_status": None, "files_processed": 0, "files_failed": 0, "rows_in": 0,
            "rows_loaded": 0, "rows_rejected": 0, "avg_file_seconds": None, "run_seconds": None,
            "last_processed_at": None,
        }  # fmt: skip
    d3 = by_date[D3]
    assert (d3.run_status, d3.files_processed, d3.files_failed, d3.rows_in) == ("completed_with_errors", 3, 1, 170)
    assert (d3.rows_loaded, d3.rows_rejected, d3.run_seconds) == (140, 3, 1800.0)
    assert d3.avg_file_seconds == pytest.approx((60 + 120 + 30) / 3)
    assert d3.last_processed_at == at(D3, 1, 4, 30)
    d5 = by_date[D5]
    assert (d5.run_status, d5.files_processed, d5.rows_in, d5.run_seconds) == ("processing", 1, 9, None)
    assert d5.avg_file_seconds == pytest.approx(300.0)

    assert (found.files_processed, found.files_failed, found.rows_loaded, found.rows_rejected) == (4, 1, 140, 3)
    # The mean of every timed file (3 on D3, 1 on D5), not the mean of the two days' means (185 s).
    assert found.avg_file_seconds == pytest.approx((60 + 120 + 30 + 300) / 4)
    assert found.last_processed_at == at(D5, 2, 5)

    nothing = queries.metrics(conn, "stock_health", end=D1, days=1)
    assert (nothing.files_processed, nothing.avg_file_seconds, nothing.last_processed_at) == (0, None, None)


# --- today and deadlines --------------------------------------------------------------------------

# stock_health: runs 07:00 Asia/Jakarta (UTC+7), deadline 09:00 local: 02:00 UTC on the business date.
# po_snapshots: runs 06:30, deadline 08:30 local: 01:30 UTC.
STOCK_DEADLINE = at(D4, 2, 0)
PO_DEADLINE = at(D4, 1, 30)


def run_row(conn: psycopg.Connection[Any], pipeline: str, date: dt.date, **columns: Any) -> Any:
    add_run(conn, pipeline, date, **columns)
    return queries.run_of(conn, pipeline, date)


def test_deadline_state_met_missed_at_risk_on_track_and_none(conn: psycopg.Connection[Any]) -> None:
    stock = config("stock_health")
    from autopo_pipelines.dates import deadline_moment

    assert deadline_moment(stock, D4) == STOCK_DEADLINE
    early = run_row(conn, "stock_health", D1, status="completed", completed_at=at(D4, 1, 59))
    late = run_row(conn, "stock_health", D2, status="completed_with_errors", completed_at=at(D4, 2, 1))
    failed = run_row(conn, "stock_health", D3, status="failed", completed_at=at(D4, 0, 10))
    running = run_row(conn, "stock_health", D5, status="processing", started_at=at(D4, 0, 0))
    state = queries.deadline_state

    # Finished: met or missed by when it finished, whatever the time is now.
    assert state(stock, D4, early, now=at(D4, 12)) == "met"
    assert state(stock, D4, late, now=at(D4, 2, 30)) == "missed"
    # Not finished: missed once the deadline passed; at risk when it failed or within the hour before.
    assert state(stock, D4, None, now=at(D4, 2, 0, 1)) == "missed"
    assert state(stock, D4, running, now=at(D4, 2, 0, 1)) == "missed"
    assert state(stock, D4, running, now=at(D4, 1, 30)) == "at_risk"
    assert state(stock, D4, failed, now=at(D4, 0, 15)) == "at_risk"
    assert state(stock, D4, running, now=at(D4, 0, 30)) == "on_track"
    assert state(stock, D4, None, now=at(D4, 0, 59)) == "on_track"
    # No deadline configured.
    no_deadline = config("stock_health", alerts=stock.alerts.model_copy(update={"deadline": None}))
    assert state(no_deadline, D4, running, now=at(D4, 12)) == "none"


def test_today_is_each_pipelines_run_of_its_business_date(conn: psycopg.Connection[Any]) -> None:
    stock = config("stock_health", expected_stores=["S1", "S2", "S3"])
    po = config("po_snapshots", expected_stores=["S1", "S2"])
    # 00:40 UTC is 07:40 in Jakarta: business date D4 for both; po's deadline is within the hour.
    now = at(D4, 0, 40)
    run_id = add_run(
        conn, "stock_health", D4, status="processing", total_files=2, missing_stores=["S3"], started_at=at(D4, 0, 5)
    )
    add_file(conn, run_id, "S1.xlsx", "S1", "completed", started_at=at(D4, 0, 10), completed_at=at(D4, 0, 20))
    add_file(conn, run_id, "S2.xlsx", "S2", "processing", started_at=at(D4, 0, 21))
    # Yesterday's runs are not today's.
    add_run(conn, "po_snapshots", D3, status="completed", completed_at=at(D3, 0, 0))
    add_run(conn, "stock_health", D3, status="completed", completed_at=at(D3, 0, 0))

    stock_today, po_today = queries.today(conn, [stock, po], now)
    assert stock_today.pipeline == "stock_health"
    assert stock_today.run is not None and stock_today.run.id == run_id
    assert (stock_today.business_date, stock_today.files_done, stock_today.files_expected) == (D4, 1, 3)
    assert stock_today.missing_stores == ["S3"]
    assert (stock_today.deadline_at, stock_today.deadline_state) == (STOCK_DEADLINE, "on_track")
    assert stock_today.last_update == at(D4, 0, 21)

    assert (po_today.pipeline, po_today.business_date, po_today.run) == ("po_snapshots", D4, None)
    assert (po_today.files_done, po_today.files_expected, po_today.missing_stores) == (0, 2, ["S1", "S2"])
    assert (po_today.deadline_at, po_today.deadline_state, po_today.last_update) == (PO_DEADLINE, "at_risk", None)

    # 17:30 UTC on D3 is already 00:30 on D4 in Jakarta: the business date follows the pipeline's timezone.
    (early,) = queries.today(conn, [stock], at(D3, 17, 30))
    assert (early.business_date, early.run is not None, early.deadline_state) == (D4, True, "on_track")
    # 03:00 UTC: stock_health's deadline passed with the run unfinished.
    (late,) = queries.today(conn, [stock], at(D4, 3, 0))
    assert late.deadline_state == "missed"
