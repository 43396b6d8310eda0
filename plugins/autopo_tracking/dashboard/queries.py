"""The dashboard's reads of ``pipeline_runs`` and ``pipeline_file_jobs``: plain SQL over a psycopg
connection, one function per view, each limited to the pipelines the caller may see.

Every query is bounded by an index (migrations 0002 and 0010): a date range of one pipeline
(``pipeline_runs (pipeline_name, date)``), a run's files (``pipeline_file_jobs (pipeline_run_id)``)
or the failed files (a partial index), so a query's time follows the days it asks for, not the years of
history (``make bench-dashboard``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from autopo_pipelines.config import PipelineConfig
from autopo_pipelines.dates import business_date_at, deadline_moment
from autopo_pipelines.task_ids import TaskId
from autopo_tracking.dashboard import cells
from autopo_tracking.dashboard.models import (
    ClearRequest,
    DayMetrics,
    FileJob,
    FileJobPage,
    Grid,
    GridRow,
    LogLink,
    Metrics,
    RetryPlan,
    Run,
    RunPage,
    TodayRun,
)

Connection = psycopg.Connection[Any]

# A file's outcome is known: its rows are in the snapshot (completed, reused, retained) or it failed.
DONE_FILE_STATUSES = ("completed", "skipped", "retained", "failed")
# Of the files the run listed (total_files): retained ones are no longer at the source, so not among them.
LISTED_DONE_STATUSES = ("completed", "skipped", "failed")
PROCESSED_FILE_STATUSES = ("completed", "skipped", "retained")
FINISHED_RUN_STATUSES = ("completed", "completed_with_errors")
# How long before its deadline an unfinished day is shown at risk.
AT_RISK_BEFORE_DEADLINE = dt.timedelta(hours=1)

_RUN_COLUMNS = """r.id, r.pipeline_name AS pipeline, r.date, r.status, r.total_files, r.processed_files,
    r.failed_files, r.skipped_files, r.total_rows, r.rejected_rows, r.rows_in, r.missing_stores, r.notes,
    r.dag_run_id, r.attempt, r.started_at, r.completed_at, r.error"""
_FILE_COLUMNS = """f.id, r.pipeline_name AS pipeline, r.date, f.file_name, f.file_path, f.store_id, f.status,
    f.checksum, f.size_bytes, f.rows_in, f.rows_out, f.rows_rejected, f.error, f.attempts, f.retry_count,
    f.map_index, f.dag_run_id, f.started_at, f.completed_at"""


def _cursor(conn: Connection) -> psycopg.Cursor[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row)


def _run(row: dict[str, Any]) -> Run:
    return Run(**{key: row[key] for key in Run.model_fields})


def log_link(dag_id: str, run_id: str | None, map_index: int | None) -> LogLink | None:
    """Where Airflow's UI shows the transform's log for a file (its task instance page)."""
    if run_id is None or map_index is None:
        return None
    task = f"tasks/{TaskId.TRANSFORM_FILE}/mapped/{map_index}"
    url = f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/{task}"
    return LogLink(dag_id=dag_id, run_id=run_id, task_id=TaskId.TRANSFORM_FILE, map_index=map_index, url=url)


def _file_job(row: dict[str, Any]) -> FileJob:
    fields = {key: row[key] for key in FileJob.model_fields if key != "log"}
    return FileJob(**fields, log=log_link(row["pipeline"], row["dag_run_id"], row["map_index"]))


_RUNS_MATCHING = """
    FROM pipeline_runs r
    WHERE r.pipeline_name = ANY(%(pipelines)s)
      AND (%(status)s::text IS NULL OR r.status = %(status)s)
      AND (%(date_from)s::date IS NULL OR r.date >= %(date_from)s)
      AND (%(date_to)s::date IS NULL OR r.date <= %(date_to)s)"""
_FAILED_MATCHING = """
    FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
    WHERE f.status = 'failed' AND r.pipeline_name = ANY(%(pipelines)s)
      AND (%(since)s::date IS NULL OR r.date >= %(since)s)"""


def _paged(
    conn: Connection, columns: str, matching: str, order: str, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """A page of rows (``params`` has limit and offset) and how many match in all: counted by a window
    with the rows, or, for a page past the end that has no row to carry it, by a count of the same
    ``FROM ... WHERE``."""
    sql = f"SELECT {columns}, count(*) OVER () AS total {matching} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    rows = _cursor(conn).execute(sql, params).fetchall()
    if rows:
        return rows, int(rows[0]["total"])
    counted = conn.execute(f"SELECT count(*) {matching}", params).fetchone()
    return rows, int(counted[0]) if counted else 0


def runs_page(
    conn: Connection,
    pipelines: Sequence[str],
    *,
    status: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Runs newest date first, filtered by pipeline, status and date range."""
    params = {
        "pipelines": list(pipelines),
        "status": status,
        "date_from": date_from,
        "date_to": date_to,
        "limit": limit,
        "offset": offset,
    }
    rows, total = _paged(conn, _RUN_COLUMNS, _RUNS_MATCHING, "r.date DESC, r.pipeline_name", params)
    return RunPage(total=total, limit=limit, offset=offset, runs=[_run(row) for row in rows])


def run_of(conn: Connection, pipeline: str, date: dt.date) -> Run | None:
    sql = f"SELECT {_RUN_COLUMNS} FROM pipeline_runs r WHERE r.pipeline_name = %s AND r.date = %s"  # noqa: S608
    row = _cursor(conn).execute(sql, [pipeline, date]).fetchone()
    return _run(row) if row else None


def files_of_run(conn: Connection, run_id: int) -> list[FileJob]:
    rows = (
        _cursor(conn)
        .execute(
            f"""SELECT {_FILE_COLUMNS} FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
                WHERE f.pipeline_run_id = %s ORDER BY f.store_id NULLS LAST, f.file_name""",  # noqa: S608
            [run_id],
        )
        .fetchall()
    )
    return [_file_job(row) for row in rows]


def deadline_state(config: PipelineConfig, date: dt.date, run: Run | None, now: dt.datetime) -> str:
    """none (no deadline), met, missed, at_risk (unfinished and failed, or within an hour of it) or on_track."""
    deadline = deadline_moment(config, date)
    if deadline is None:
        return "none"
    if run is not None and run.status in FINISHED_RUN_STATUSES and run.completed_at is not None:
        return "met" if run.completed_at <= deadline else "missed"
    if now > deadline:
        return "missed"
    if (run is not None and run.status == "failed") or now > deadline - AT_RISK_BEFORE_DEADLINE:
        return "at_risk"
    return "on_track"


def today(conn: Connection, configs: Sequence[PipelineConfig], now: dt.datetime) -> list[TodayRun]:
    """Each pipeline's run of its current business date."""
    answers = []
    for config in configs:
        date = business_date_at(config, now)
        run = run_of(conn, config.name, date)
        done, last_file_update = 0, None
        if run is not None:
            row = conn.execute(
                """SELECT count(*) FILTER (WHERE status = ANY(%s)),
                          max(GREATEST(started_at, completed_at))
                   FROM pipeline_file_jobs WHERE pipeline_run_id = %s""",
                [list(LISTED_DONE_STATUSES), run.id],
            ).fetchone()
            if row is not None:
                done, last_file_update = int(row[0]), row[1]
        if run is not None and run.missing_stores is not None:
            missing = list(run.missing_stores)
        else:
            missing = list(config.expected_stores)  # nothing listed yet: every expected store is still to come
        listed = run.total_files if run is not None else 0
        updates = [t for t in (run and run.started_at, run and run.completed_at, last_file_update) if t]
        answers.append(
            TodayRun(
                pipeline=config.name,
                business_date=date,
                run=run,
                files_done=done,
                files_expected=max(listed, len(config.expected_stores)),
                missing_stores=missing,
                deadline_at=deadline_moment(config, date),
                deadline_state=deadline_state(config, date, run, now),
                last_update=max(updates) if updates else None,
            )
        )
    return answers


def grid(conn: Connection, config: PipelineConfig, end: dt.date, days: int, latest: dt.date) -> Grid:
    """A row per store, a column per date (``days`` dates up to ``end``), each cell the store's file job
    status; ``latest`` (today's business date) bounds the page after this one.

    One row per run, its files in arrays (id order), rather than a row per file repeating the run: 120
    days of 120 stores are 120 rows, not 14,400. And a grid row is three lists (statuses, the shown file's
    id, the number of files), not an object per cell: every object that lives through a request is one
    more for Python's garbage collector, whose full collections over Airflow's own objects in the API
    server cost some 200 ms each (make bench-dashboard). The models are built without validation: the
    values are the database's."""
    start = end - dt.timedelta(days=days - 1)
    dates = [start + dt.timedelta(days=n) for n in range(days)]
    runs = conn.execute(
        """SELECT r.date, r.missing_stores,
                  array_agg(f.id ORDER BY f.id) FILTER (WHERE f.id IS NOT NULL),
                  array_agg(COALESCE(f.store_id, f.file_name) ORDER BY f.id) FILTER (WHERE f.id IS NOT NULL),
                  array_agg(f.status ORDER BY f.id) FILTER (WHERE f.id IS NOT NULL)
           FROM pipeline_runs r LEFT JOIN pipeline_file_jobs f ON f.pipeline_run_id = r.id
           WHERE r.pipeline_name = %s AND r.date BETWEEN %s AND %s
           GROUP BY r.id""",
        [config.name, start, end],
    ).fetchall()
    index = {date: n for n, date in enumerate(dates)}
    rows: dict[str, tuple[list[str], list[int | None], list[int]]] = {}

    def row_of(store: str) -> tuple[list[str], list[int | None], list[int]]:
        row = rows.get(store)
        if row is None:
            row = rows[store] = (["none"] * days, [None] * days, [0] * days)
        return row

    for store in config.expected_stores:
        row_of(store)
    missing: list[tuple[str, int]] = []
    for date, missing_stores, ids, names, statuses in runs:
        column = index[date]
        missing.extend((name, column) for name in missing_stores or ())
        for job_id, store, status in zip(ids or (), names or (), statuses or (), strict=True):
            cell_statuses, cell_ids, counts = row_of(store)
            counts[column] += 1
            # The cell shows its most urgent file; ids come in order, so the first of equals.
            if cell_ids[column] is None or cells.urgency(status) < cells.urgency(cell_statuses[column]):
                cell_statuses[column], cell_ids[column] = status, job_id
    for name, column in missing:
        cell_statuses, cell_ids, _ = row_of(name)
        if cell_ids[column] is None:
            cell_statuses[column] = "missing"
    return Grid.model_construct(
        pipeline=config.name,
        dates=dates,
        end=end,
        days=days,
        previous_end=start - dt.timedelta(days=1),
        next_end=min(end + dt.timedelta(days=days), latest) if end < latest else None,
        letters={look.status: look.letter for look in cells.LOOKS},
        rows=[
            GridRow.model_construct(store=store, statuses=row[0], file_job_ids=row[1], file_counts=row[2])
            for store, row in sorted(rows.items())
        ],
    )


def file_job(conn: Connection, job_id: int, pipelines: Sequence[str]) -> FileJob | None:
    """One file job, or None when there is none the caller may see."""
    row = (
        _cursor(conn)
        .execute(
            f"""SELECT {_FILE_COLUMNS} FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
                WHERE f.id = %s AND r.pipeline_name = ANY(%s)""",  # noqa: S608
            [job_id, list(pipelines)],
        )
        .fetchone()
    )
    return _file_job(row) if row else None


def failed_jobs(
    conn: Connection, pipelines: Sequence[str], *, limit: int = 50, offset: int = 0, since: dt.date | None = None
) -> FileJobPage:
    """The file jobs whose status is failed now (a rerun that mended a file changed its row), newest date first."""
    params = {"pipelines": list(pipelines), "since": since, "limit": limit, "offset": offset}
    order = "r.date DESC, r.pipeline_name, f.file_name, f.id"
    rows, total = _paged(conn, _FILE_COLUMNS, _FAILED_MATCHING, order, params)
    return FileJobPage(total=total, limit=limit, offset=offset, file_jobs=[_file_job(row) for row in rows])


class NotRetryable(ValueError):
    """The file job has no task instance to clear: why, for the person who asked."""


def retry_plan(conn: Connection, job: FileJob) -> RetryPlan:
    """The clear that retries a failed file: its transform's map index in the DAG run that failed it,
    with the downstream tasks, only failed ones. With batches the map index holds several files: all
    of them are named, since all are transformed again."""
    if job.status != "failed":
        raise NotRetryable(f"{job.file_name} is {job.status}, not failed: there is nothing to retry")
    if job.map_index is None or job.dag_run_id is None:
        raise NotRetryable(f"{job.file_name} was never given to a transform task: there is no task to clear")
    names = [
        name
        for (name,) in conn.execute(
            """SELECT f.file_name FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
               WHERE r.pipeline_name = %s AND r.date = %s AND f.dag_run_id = %s AND f.map_index = %s
               ORDER BY f.file_name""",
            [job.pipeline, job.date, job.dag_run_id, job.map_index],
        )
    ]
    return RetryPlan(
        file_job=job,
        dag_id=job.pipeline,
        clear_path=f"api/v2/dags/{quote(job.pipeline, safe='')}/clearTaskInstances",
        body=ClearRequest(dag_run_id=job.dag_run_id, task_ids=[(TaskId.TRANSFORM_FILE.value, job.map_index)]),
        files_in_task=names or [job.file_name],
    )


def metrics(conn: Connection, pipeline: str, end: dt.date, days: int) -> Metrics:
    """Per business date: files and rows processed, errors, mean file time, last processed time."""
    start = end - dt.timedelta(days=days - 1)
    rows = (
        _cursor(conn)
        .execute(
            """SELECT r.date, r.status, r.total_rows, r.rejected_rows,
                      EXTRACT(EPOCH FROM r.completed_at - r.started_at)::float8 AS run_seconds,
                      count(f.id) FILTER (WHERE f.status = ANY(%(processed)s)) AS files_processed,
                      count(f.id) FILTER (WHERE f.status = 'failed') AS files_failed,
                      COALESCE(sum(f.rows_in) FILTER (WHERE f.status = ANY(%(processed)s)), 0) AS rows_in,
                      avg(EXTRACT(EPOCH FROM f.completed_at - f.started_at)::float8)
                          FILTER (WHERE f.status IN ('completed', 'failed')) AS avg_file_seconds,
                      count(f.completed_at - f.started_at)
                          FILTER (WHERE f.status IN ('completed', 'failed')) AS files_timed,
                      max(f.completed_at) FILTER (WHERE f.status = ANY(%(done)s)) AS last_processed_at
               FROM pipeline_runs r LEFT JOIN pipeline_file_jobs f ON f.pipeline_run_id = r.id
               WHERE r.pipeline_name = %(pipeline)s AND r.date BETWEEN %(start)s AND %(end)s
               GROUP BY r.id""",
            {
                "pipeline": pipeline,
                "start": start,
                "end": end,
                "processed": list(PROCESSED_FILE_STATUSES),
                "done": list(DONE_FILE_STATUSES),
            },
        )
        .fetchall()
    )
    by_date = {row["date"]: row for row in rows}
    day_metrics = []
    for n in range(days):
        date = start + dt.timedelta(days=n)
        row = by_date.get(date)
        if row is None:
            day_metrics.append(
                DayMetrics(
                    date=date, run_status=None, files_processed=0, files_failed=0, rows_in=0, rows_loaded=0,
                    rows_rejected=0, avg_file_seconds=None, run_seconds=None, last_processed_at=None,
                )
            )  # fmt: skip
            continue
        day_metrics.append(
            DayMetrics(
                date=date,
                run_status=row["status"],
                files_processed=row["files_processed"],
                files_failed=row["files_failed"],
                rows_in=row["rows_in"],
                rows_loaded=row["total_rows"],
                rows_rejected=row["rejected_rows"],
                avg_file_seconds=row["avg_file_seconds"],
                run_seconds=row["run_seconds"],
                last_processed_at=row["last_processed_at"],
            )
        )
    timed = [(row["avg_file_seconds"], row["files_timed"]) for row in rows if row["files_timed"]]
    weight = sum(n for _, n in timed)
    last = [d.last_processed_at for d in day_metrics if d.last_processed_at]
    return Metrics(
        pipeline=pipeline,
        end=end,
        days=day_metrics,
        files_processed=sum(d.files_processed for d in day_metrics),
        files_failed=sum(d.files_failed for d in day_metrics),
        rows_loaded=sum(d.rows_loaded for d in day_metrics),
        rows_rejected=sum(d.rows_rejected for d in day_metrics),
        avg_file_seconds=sum(s * n for s, n in timed) / weight if weight else None,
        last_processed_at=max(last) if last else None,
    )
