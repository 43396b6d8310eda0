"""What the tracking tables should say after each Airflow event: pure functions.

Each function turns one event (a task of the day finished, a file's transform
started, a run ended) plus the day's state on disk into row changes for
``pipeline_runs`` and ``pipeline_file_jobs`` (docs/tracking.md).
The plugin's listeners call them and its hook writes the result; nothing
here touches Airflow or the database.

Every change carries the full state it knows rather than a delta where it
can, so a write lost while the database was down is healed by the next one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from autopo_pipelines.day.state import FileTask, Listing

RUN_STATUSES = ("pending", "processing", "completed", "completed_with_errors", "failed")
FINAL_RUN_STATUSES = ("completed", "completed_with_errors", "failed")


@dataclass(frozen=True)
class RunChange:
    pipeline_name: str
    date: dt.date
    fields: dict[str, Any] = field(default_factory=dict)
    # A new dag_run_id on the date's row counts one more attempt at the date.
    dag_run_id: str | None = None
    # Written only when the row is created (an event healing a row whose first write was lost).
    insert_only: dict[str, Any] = field(default_factory=dict)
    # Events that start a run's work may take the date's row over from an earlier run;
    # any other event of an older run (a late retry, a cleared task) leaves a newer run's row alone.
    takes_over: bool = False


@dataclass(frozen=True)
class FileJobChange:
    file_path: str
    file_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    dag_run_id: str | None = None
    # "<dag run>#<try>" of an attempt that did real work (transformed or failed); retry_count
    # follows these, each counted once however often its write is repeated.
    attempt_key: str | None = None
    # A listing's reset of a row: only when an earlier run left it, never this run's progress.
    only_older: bool = False


@dataclass(frozen=True)
class Changes:
    run: RunChange
    files: list[FileJobChange] = field(default_factory=list)
    # Apply only to the date's row of this DAG run, and only while it is not final.
    only_if_unfinished: bool = False
    # The files are the whole listing: rows of files no longer at the source are retired.
    complete_listing: bool = False


def files_listed(pipeline: str, date: dt.date, listing: Listing, dag_run_id: str, now: dt.datetime) -> Changes:
    """list_files succeeded: the run is processing its routed files; the rest are unrouted."""
    run = RunChange(
        pipeline,
        date,
        {
            "status": "processing",
            "total_files": len(listing.routed),
            "processed_files": 0,
            "failed_files": 0,
            "skipped_files": 0,
            "total_rows": 0,
            "rejected_rows": 0,
            # Unknown until the day is loaded (NULL, so the accounting check holds meanwhile).
            "rows_in": None,
            "skipped_rows": None,
            "merged_rows": None,
            "missing_stores": listing.missing_stores,
            "notes": list(listing.inputs.notes),
            "started_at": now,
            "completed_at": None,
            "error": None,
        },
        dag_run_id=dag_run_id,
        takes_over=True,
    )
    files = [
        FileJobChange(
            routed.location,
            routed.name,
            {
                "store_id": routed.store_id,
                "size_bytes": routed.size_bytes,
                "status": "queued",
                "map_index": index,
                "error": None,
                "started_at": None,
                "completed_at": None,
            },
            dag_run_id=dag_run_id,
            only_older=True,
        )
        for index, routed in listing.files_by_map_index()
    ]
    files += [
        FileJobChange(
            other.location,
            other.name,
            {"status": "unrouted", "error": other.reason, "map_index": None},
            dag_run_id=dag_run_id,
        )
        for other in [*listing.unrouted, *listing.superseded]
    ]
    return Changes(run, files, complete_listing=True)


def listing_failed(pipeline: str, date: dt.date, dag_run_id: str, error: str, now: dt.datetime) -> Changes:
    fields = {"status": "failed", "error": error, "completed_at": now}
    return Changes(RunChange(pipeline, date, fields, dag_run_id=dag_run_id, takes_over=True))


def _file_event(pipeline: str, date: dt.date, dag_run_id: str, job: FileJobChange) -> Changes:
    """A file's outcome: creates its run's row if that write was lost, but never changes the
    run's status (check_day may already have judged the day)."""
    run = RunChange(pipeline, date, {}, dag_run_id=dag_run_id, insert_only={"status": "processing"})
    return Changes(run, [job])


def file_started(
    pipeline: str, date: dt.date, file: FileTask, map_index: int, dag_run_id: str, now: dt.datetime
) -> Changes:
    job = FileJobChange(
        file.location,
        file.name,
        {"status": "processing", "map_index": map_index, "started_at": now, "completed_at": None},
        dag_run_id=dag_run_id,
    )
    return Changes(RunChange(pipeline, date, {"status": "processing"}, dag_run_id=dag_run_id, takes_over=True), [job])


def file_finished(
    pipeline: str,
    date: dt.date,
    file: FileTask,
    map_index: int,
    result: dict[str, Any],
    dag_run_id: str,
    now: dt.datetime,
    attempt_key: str | None,
) -> Changes:
    """The file's transform succeeded: ``result`` is its recorded outcome with its part's counts.

    attempt_key is None for a reused, unchanged file: that is not an attempt."""
    job = FileJobChange(
        file.location,
        file.name,
        {
            "store_id": file.store_id,
            "size_bytes": file.size_bytes,
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
        dag_run_id=dag_run_id,
        attempt_key=attempt_key if result["status"] != "skipped" else None,
    )
    return _file_event(pipeline, date, dag_run_id, job)


def file_failed(
    pipeline: str,
    date: dt.date,
    file: FileTask,
    map_index: int,
    failure: dict[str, Any],
    dag_run_id: str,
    now: dt.datetime,
) -> Changes:
    """A failed attempt: the file waits for its retry (queued) or has failed for this run.

    ``failure``: error, will_retry, checksum (of the content read, if any) and
    attempt_key (None when the task never started: not an attempt of the file)."""
    fields: dict[str, Any] = {
        "status": "queued" if failure["will_retry"] else "failed",
        "error": failure["error"],
        "map_index": map_index,
        # The outcome of an earlier content must not be shown beside this failure.
        "checksum": failure.get("checksum"),
        "rows_in": 0,
        "rows_out": 0,
        "rows_rejected": 0,
        "intermediate_path": None,
    }
    if not failure["will_retry"]:
        fields["completed_at"] = now
    job = FileJobChange(file.location, file.name, fields, dag_run_id=dag_run_id, attempt_key=failure.get("attempt_key"))
    return _file_event(pipeline, date, dag_run_id, job)


def file_kept_or_dropped(
    pipeline: str,
    date: dt.date,
    location: str,
    kept: dict[str, Any],
    part: dict[str, Any] | None,
    dag_run_id: str,
    now: dt.datetime,
) -> FileJobChange:
    """A file of the date's last loaded snapshot that this run has no good version of: ``retained``
    when its last good version's rows stay (``part`` is that version), else ``unrouted`` with why its
    rows were left out. ``kept``: its name and the reason (day.parts.DayParts.retained / dropped)."""
    fields: dict[str, Any] = {"error": kept["reason"], "map_index": None, "completed_at": now}
    if part is None:
        fields["status"] = "unrouted"
    else:
        fields.update(
            {
                "status": "retained",
                "store_id": part.get("store_id"),
                "checksum": part.get("checksum"),
                "rows_in": part.get("rows_in", 0),
                "rows_out": part.get("rows_out", 0),
                "rows_rejected": part.get("rows_rejected", 0),
                "intermediate_path": part.get("part"),
            }
        )
    return FileJobChange(location, kept["file_name"], fields, dag_run_id=dag_run_id)


def row_counts(loaded_rows: int, rows_in: int, rejected: int, skipped: int, merged: int) -> dict[str, int]:
    """The run row's accounting: rows_in = total_rows + merged_rows + skipped_rows + rejected_rows."""
    return {
        "total_rows": loaded_rows,
        "rejected_rows": rejected,
        "rows_in": rows_in,
        "skipped_rows": skipped,
        "merged_rows": merged,
    }


def snapshot_loaded(pipeline: str, date: dt.date, counts: dict[str, int], dag_run_id: str) -> Changes:
    return Changes(RunChange(pipeline, date, dict(counts), dag_run_id=dag_run_id))


def day_judged(
    pipeline: str,
    date: dt.date,
    *,
    statuses: dict[str, int],
    problems: list[str],
    loaded: bool,
    dag_run_id: str,
    now: dt.datetime,
    rows: dict[str, int] | None = None,
    listing: Listing | None = None,
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
                # The row accounting, when known: check_day may have reloaded the day itself.
                **(rows or {}),
                # Repeated from the listing, in case its own write was lost.
                **(
                    {
                        "total_files": len(listing.routed),
                        "missing_stores": listing.missing_stores,
                        "notes": list(listing.inputs.notes),
                    }
                    if listing is not None
                    else {}
                ),
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
