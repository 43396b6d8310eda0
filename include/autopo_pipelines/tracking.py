"""What the tracking tables should say after each Airflow event: pure functions.

Each function turns one event (a task of the day finished, a file's transform
started, a run ended) plus the day's state on disk into row changes for
``pipeline_runs`` and ``pipeline_file_jobs`` (../shared/spec/tracking.md).
The plugin's listeners call them and its hook writes the result; nothing
here touches Airflow or the database.

Every change carries the full state it knows rather than a delta where it
can, so a write lost while the database was down is healed by the next one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

RUN_STATUSES = ("pending", "processing", "completed", "completed_with_errors", "failed")
FINAL_RUN_STATUSES = ("completed", "completed_with_errors", "failed")


@dataclass(frozen=True)
class RunChange:
    pipeline_name: str
    date: dt.date
    fields: dict[str, Any] = field(default_factory=dict)
    # Set by the first event of a DAG run: a new dag_run_id counts one more attempt at the date.
    dag_run_id: str | None = None


@dataclass(frozen=True)
class FileJobChange:
    file_path: str
    file_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    # True for an attempt that did real work (transformed or failed): retry_count follows these.
    counts_attempt: bool = False


@dataclass(frozen=True)
class Changes:
    run: RunChange
    files: list[FileJobChange] = field(default_factory=list)
    # Apply only to the date's row of this DAG run, and only while it is not final.
    only_if_unfinished: bool = False


def files_listed(pipeline: str, date: dt.date, listing: dict[str, Any], dag_run_id: str, now: dt.datetime) -> Changes:
    """list_files succeeded: the run is processing its routed files; the rest are unrouted."""
    run = RunChange(
        pipeline,
        date,
        {
            "status": "processing",
            "total_files": len(listing["routed"]),
            "processed_files": 0,
            "failed_files": 0,
            "skipped_files": 0,
            "total_rows": 0,
            "rejected_rows": 0,
            "missing_stores": listing.get("missing_stores"),
            "started_at": now,
            "completed_at": None,
            "error": None,
        },
        dag_run_id=dag_run_id,
    )
    files = [
        FileJobChange(
            routed["location"],
            routed["name"],
            {
                "store_id": routed["store_id"],
                "size_bytes": routed["size_bytes"],
                "status": "queued",
                "map_index": index,
                "error": None,
                "started_at": None,
                "completed_at": None,
            },
        )
        for index, routed in enumerate(listing["routed"])
    ]
    files += [
        FileJobChange(
            other.get("location", other["name"]),
            other["name"],
            {"status": "unrouted", "error": other["reason"], "map_index": None},
        )
        for other in [*listing.get("unrouted", []), *listing.get("superseded", [])]
    ]
    return Changes(run, files)


def listing_failed(pipeline: str, date: dt.date, dag_run_id: str, error: str, now: dt.datetime) -> Changes:
    return Changes(
        RunChange(pipeline, date, {"status": "failed", "error": error, "completed_at": now}, dag_run_id=dag_run_id)
    )


def _while_processing(pipeline: str, date: dt.date, dag_run_id: str, file: FileJobChange) -> Changes:
    """A file's event, which also says (or heals) that its run is processing."""
    return Changes(RunChange(pipeline, date, {"status": "processing"}, dag_run_id=dag_run_id), [file])


def file_started(
    pipeline: str, date: dt.date, file: dict[str, Any], map_index: int, dag_run_id: str, now: dt.datetime
) -> Changes:
    return _while_processing(
        pipeline,
        date,
        dag_run_id,
        FileJobChange(
            file["location"],
            file["name"],
            {"status": "processing", "map_index": map_index, "started_at": now, "completed_at": None},
        ),
    )


def file_finished(
    pipeline: str,
    date: dt.date,
    file: dict[str, Any],
    map_index: int,
    result: dict[str, Any],
    dag_run_id: str,
    now: dt.datetime,
) -> Changes:
    """The file's transform succeeded: ``result`` is what run_file returned (its part's meta and status)."""
    return _while_processing(
        pipeline,
        date,
        dag_run_id,
        FileJobChange(
            file["location"],
            file["name"],
            {
                "store_id": file["store_id"],
                "size_bytes": file["size_bytes"],
                "status": result["status"],
                "checksum": result["checksum"],
                "rows_in": result["rows_in"],
                "rows_out": result["rows_out"],
                "rows_rejected": result["rows_rejected"],
                "intermediate_path": result.get("part_directory"),
                "map_index": map_index,
                "error": None,
                "completed_at": now,
            },
            counts_attempt=result["status"] != "skipped",
        ),
    )


def file_failed(
    pipeline: str,
    date: dt.date,
    file: dict[str, Any],
    map_index: int,
    error: str,
    will_retry: bool,
    dag_run_id: str,
    now: dt.datetime,
) -> Changes:
    """A failed attempt: the file waits for its retry (queued) or has failed for this run."""
    fields: dict[str, Any] = {"status": "queued" if will_retry else "failed", "error": error, "map_index": map_index}
    if not will_retry:
        fields["completed_at"] = now
    return _while_processing(
        pipeline, date, dag_run_id, FileJobChange(file["location"], file["name"], fields, counts_attempt=True)
    )


def snapshot_loaded(pipeline: str, date: dt.date, rows: int, rejected: int, dag_run_id: str) -> Changes:
    return Changes(RunChange(pipeline, date, {"total_rows": rows, "rejected_rows": rejected}, dag_run_id=dag_run_id))


def day_judged(
    pipeline: str,
    date: dt.date,
    *,
    statuses: dict[str, int],
    problems: list[str],
    loaded: bool,
    dag_run_id: str,
    now: dt.datetime,
    rows: tuple[int, int] | None = None,
) -> Changes:
    """check_day ran: the run's final status and counts.

    completed: every file loaded; completed_with_errors: the good files were
    loaded but some failed; failed: nothing of the day was loaded.
    """
    if not problems:
        status = "completed"
    elif loaded:
        status = "completed_with_errors"
    else:
        status = "failed"
    return Changes(
        RunChange(
            pipeline,
            date,
            {
                "status": status,
                "processed_files": statuses.get("completed", 0),
                "skipped_files": statuses.get("skipped", 0),
                "failed_files": statuses.get("failed", 0),
                "error": "; ".join(problems) or None,
                "completed_at": now,
                # Rows loaded and rejected, when known: check_day may have reloaded the day itself.
                **({"total_rows": rows[0], "rejected_rows": rows[1]} if rows is not None else {}),
            },
            dag_run_id=dag_run_id,
        )
    )


def run_ended_without_judgement(
    pipeline: str, date: dt.date, succeeded: bool, message: str, dag_run_id: str, now: dt.datetime
) -> Changes:
    """A DAG run ended (or was marked by hand) without check_day saying how the day went.

    The hook applies it only while the row is still unfinished for this DAG run.
    """
    fields: dict[str, Any] = {"status": "completed" if succeeded else "failed", "completed_at": now}
    if not succeeded:
        fields["error"] = message or "the run failed before the day was judged"
    return Changes(RunChange(pipeline, date, fields, dag_run_id=dag_run_id), only_if_unfinished=True)
