"""What the admin API answers: the JSON shapes, which also make its OpenAPI document (``/autopo/api/v1/openapi.json``).

Times are UTC, dates are business dates (the pipeline's own timezone), counts are rows of the source
files as the tracking tables record them (docs/tracking.md).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class Pipeline(BaseModel):
    name: str = Field(description="the pipeline's name, which is also its DAG id")
    description: str
    timezone: str
    expected_stores: list[str]
    deadline: str | None = Field(description="alerts.deadline, local time HH:MM; null: no deadline")
    business_date: dt.date = Field(description="the business date it is now in the pipeline's timezone")
    can_retry: bool = Field(description="whether this user may clear the pipeline's task instances")


class Run(BaseModel):
    id: int
    pipeline: str
    date: dt.date
    status: str
    total_files: int
    processed_files: int
    failed_files: int
    skipped_files: int
    total_rows: int = Field(description="rows in the snapshot")
    rejected_rows: int
    rows_in: int | None
    missing_stores: list[str] | None = Field(description="null: not known yet (files not listed)")
    notes: list[str] | None
    dag_run_id: str | None
    attempt: int
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    error: str | None


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    runs: list[Run]


class TodayRun(BaseModel):
    pipeline: str
    business_date: dt.date
    run: Run | None = Field(description="null: no run of the date has started")
    files_done: int = Field(description="files listed whose outcome is known: completed, reused or failed")
    files_expected: int = Field(description="files listed, or expected stores when more")
    missing_stores: list[str]
    deadline_at: dt.datetime | None
    deadline_state: str = Field(description="none, met, on_track, at_risk, missed")
    last_update: dt.datetime | None


class Today(BaseModel):
    now: dt.datetime
    pipelines: list[TodayRun]


class GridRow(BaseModel):
    store: str = Field(description="the store id; a file whose name yields no store is a row of its own")
    statuses: list[str] = Field(
        description="a cell per date (as in dates): the most urgent status of the store's files, or missing / none"
    )
    file_job_ids: list[int | None] = Field(
        description="a cell per date: the file job whose status the cell shows; null: no file"
    )
    file_counts: list[int] = Field(description="a cell per date: how many files the store sent for the date")


class Grid(BaseModel):
    pipeline: str
    dates: list[dt.date] = Field(description="oldest first")
    end: dt.date
    days: int
    previous_end: dt.date
    next_end: dt.date | None
    letters: dict[str, str] = Field(description="the letter the page shows for each status")
    rows: list[GridRow]


class LogLink(BaseModel):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    url: str = Field(description="the task instance's log in Airflow's UI, relative to Airflow's base URL")


class FileJob(BaseModel):
    id: int
    pipeline: str
    date: dt.date
    file_name: str
    file_path: str
    store_id: str | None
    status: str
    checksum: str | None
    size_bytes: int | None
    rows_in: int
    rows_out: int
    rows_rejected: int
    error: str | None
    attempts: int
    retry_count: int
    map_index: int | None
    dag_run_id: str | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    log: LogLink | None = Field(description="null: the file was never given to a task (unrouted)")


class FileJobPage(BaseModel):
    total: int
    limit: int
    offset: int
    file_jobs: list[FileJob]


class ClearRequest(BaseModel):
    """The body of Airflow's ``POST /api/v2/dags/{dag_id}/clearTaskInstances`` that retries the file."""

    dag_run_id: str
    task_ids: list[tuple[str, int]]
    only_failed: bool = True
    include_downstream: bool = True
    dry_run: bool = True


class RetryPlan(BaseModel):
    file_job: FileJob
    dag_id: str
    clear_path: str = Field(description="Airflow's endpoint, relative to Airflow's base URL")
    body: ClearRequest = Field(description="dry_run true: send it as is to preview, then with false to clear")
    files_in_task: list[str] = Field(
        description="every file the task instance holds: with batches a retry transforms them all again"
    )


class DayMetrics(BaseModel):
    date: dt.date
    run_status: str | None
    files_processed: int = Field(description="files completed, reused or retained")
    files_failed: int
    rows_in: int = Field(description="rows read from the files that were processed")
    rows_loaded: int = Field(description="rows in the date's snapshot")
    rows_rejected: int
    avg_file_seconds: float | None = Field(description="mean time of the files transformed (not reused) on the date")
    run_seconds: float | None = Field(description="from the run's start to its end")
    last_processed_at: dt.datetime | None = Field(description="when the last file of the date was processed or reused")


class Metrics(BaseModel):
    pipeline: str
    end: dt.date
    days: list[DayMetrics] = Field(description="oldest first")
    files_processed: int
    files_failed: int
    rows_loaded: int
    rows_rejected: int
    avg_file_seconds: float | None
    last_processed_at: dt.datetime | None
