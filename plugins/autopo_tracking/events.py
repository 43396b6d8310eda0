"""From an Airflow event to tracking rows: find the pipeline, its date and the day's state.

The listeners call these; each returns quietly for DAGs that are not pipelines.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from contextlib import closing
from typing import Any

from autopo_pipelines import tracking_rows
from autopo_pipelines.config import PipelineConfig, config_for
from autopo_pipelines.dates import business_date_of_run
from autopo_pipelines.day import Day
from autopo_pipelines.day.checks import day_problems
from autopo_pipelines.day.file_run import file_result
from autopo_pipelines.day.outputs import row_accounting
from autopo_pipelines.day.parts import DayParts, collect_parts
from autopo_pipelines.day.state import AggregateRecord, Listing
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.data_root import data_layout
from autopo_pipelines.task_ids import TaskId
from autopo_tracking.hooks.tracking import TrackingHook

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pipeline_config(dag_id: str) -> PipelineConfig | None:
    """The pipeline's config; None for a DAG that is not a pipeline (listeners see every DAG's events)."""
    return config_for(dag_id)


def _in_task_process(task_instance: Any) -> bool:
    # The worker hands a RuntimeTaskInstance; the scheduler (a killed task) and the API server
    # (a state set by hand) hand the ORM row, where a write must not wait on retries.
    return hasattr(task_instance, "get_template_context")


def _dag_run_of(task_instance: Any) -> Any:
    if _in_task_process(task_instance):
        return task_instance.get_template_context()["dag_run"]
    return task_instance.dag_run


def task_event(task_instance: Any, state: str, error: object = None, marked_by_hand: bool = False) -> None:
    """A task of a pipeline DAG started ("running"), succeeded ("success") or failed ("failed")."""
    config = pipeline_config(task_instance.dag_id)
    if config is None:
        return
    in_task_process = _in_task_process(task_instance)
    try:
        date = business_date_of_run(config, _dag_run_of(task_instance))
        event = TaskEvent(task_instance, state, error, marked_by_hand)
        changes = changes_for_task(config, data_layout(), date, task_instance.run_id, event)
        if changes is None:
            return
        if in_task_process:
            task_hook(task_instance).record(changes)
        else:
            with closing(TrackingHook(retry_delays=())) as hook:
                hook.record(changes)
    finally:
        if in_task_process and state != "running":
            release_task_hook()  # the attempt's last event: nothing more to write from this process


# The task attempt's hook in this process, with the key it was made for (see task_hook).
_task_hook: tuple[tuple[object, ...], TrackingHook] | None = None


def task_hook(task_instance: Any) -> TrackingHook:
    """The hook of a task attempt's writes in its process: made at its first write and kept, with its
    connection, for the next (a transform's start and end), until release_task_hook. Only in the task
    process; the scheduler and API server write with a hook of their own each time."""
    global _task_hook
    ti = task_instance
    key = (os.getpid(), ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)
    if _task_hook is not None and _task_hook[0] == key:
        return _task_hook[1]
    release_task_hook()  # another attempt's, left by an event that never came (dag.test runs them in one process)
    hook = TrackingHook(retry_delays=TrackingHook.DEFAULT_RETRY_DELAYS)
    _task_hook = (key, hook)
    return hook


def release_task_hook() -> None:
    """Forget the kept task hook and close its connection; one inherited from the process this one
    was forked from is only forgotten: its socket is that process's."""
    global _task_hook
    kept, _task_hook = _task_hook, None
    if kept is not None and kept[0][0] == os.getpid():
        kept[1].close()


class TaskEvent:
    """What a listener learnt about a task instance, in the terms the tracking rows need."""

    def __init__(self, task_instance: Any, state: str, error: object, marked_by_hand: bool) -> None:
        self.task_id: str = task_instance.task_id
        self.map_index: int = task_instance.map_index
        self.state = state
        self.error_text = str(error) if error else "the task failed; see its log"
        self.marked_by_hand = marked_by_hand
        # Airflow has already decided by the time the listener runs: the instance waits for a retry or not.
        state_now = getattr(task_instance, "state", None)
        self.will_retry = not marked_by_hand and getattr(state_now, "value", state_now) == "up_for_retry"
        started = getattr(task_instance, "start_date", None) is not None
        # A task killed before it started, or a state set by hand, is no attempt at the file.
        self.attempt_key = (
            f"{task_instance.run_id}#{task_instance.try_number}" if started and not marked_by_hand else None
        )


def changes_for_task(
    config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str, event: TaskEvent
) -> tracking_rows.Changes | None:
    name = config.name
    day = Day(config, layout, date, run_id)
    listing = day.listing()
    if event.task_id == TaskId.WAIT_FOR_FILES:
        # No files for a past date, or the wait timed out: the date's row says so, in the sensor's words.
        if event.state == "failed" and not event.will_retry:
            return tracking_rows.listing_failed(name, date, run_id, event.error_text, _now())
        return None
    if event.task_id == TaskId.LIST_FILES:
        if event.state == "success" and listing is not None:
            return tracking_rows.files_listed(name, date, listing, run_id, _now())
        if event.state == "failed" and not event.will_retry:
            return tracking_rows.listing_failed(name, date, run_id, event.error_text, _now())
        return None
    if listing is None:
        # Not this run's listing: another run owns the date's state, or list_files failed.
        return None
    if event.task_id == TaskId.TRANSFORM_FILE:
        return _file_changes(day, listing, event)
    if event.task_id == TaskId.LOAD_SNAPSHOT and event.state == "success":
        loaded = day.state.load()
        if loaded is None or loaded.run_id != run_id:
            return None
        return tracking_rows.snapshot_loaded(name, date, _row_counts(loaded.rows, day.state.aggregate()), run_id)
    if event.task_id == TaskId.CHECK_DAY and event.state in ("success", "failed") and not event.will_retry:
        return judge_day(config, layout, date, run_id)
    return None


def _file_changes(day: Day, listing: Listing, event: TaskEvent) -> tracking_rows.Changes | None:
    """A transform_file map index stands for its batch of files: each gets its own row change."""
    batches = listing.file_batches()
    if not 0 <= event.map_index < len(batches):
        return None
    name, date, run_id = day.pipeline, day.date, str(day.run_id)
    index = event.map_index
    if event.state == "running":
        return _together([tracking_rows.file_started(name, date, f, index, run_id, _now()) for f in batches[index]])
    changes = []
    for file in batches[index]:
        result = file_result(day, file)
        if result is not None and result.get("run_id") != run_id:
            result = None  # an earlier run's outcome says nothing about this attempt
        if result is not None and result["status"] != "failed":
            # Done in this run, also when the task failed over another file of its batch.
            changes.append(
                tracking_rows.file_finished(name, date, file, index, result, run_id, _now(), event.attempt_key)
            )
        elif event.state == "failed":
            failure = {
                # The file's own error when it was bad; else the task's (it never got to the file).
                "error": (result or {}).get("error") or event.error_text,
                "will_retry": event.will_retry,
                "checksum": (result or {}).get("checksum"),
                "attempt_key": event.attempt_key,
            }
            changes.append(tracking_rows.file_failed(name, date, file, index, failure, run_id, _now()))
        # A success without a result of this run was marked by hand: there is no outcome to record.
    return _together(changes)


def _together(changes: list[tracking_rows.Changes]) -> tracking_rows.Changes | None:
    """One write for a batch's files: their changes share the run's."""
    if not changes:
        return None
    return tracking_rows.Changes(changes[0].run, [job for change in changes for job in change.files])


def judge_day(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str) -> tracking_rows.Changes:
    """The day's verdict, with every file's outcome written again: whatever earlier write was lost is healed."""
    day = Day(config, layout, date, run_id)
    listing = day.listing()
    statuses: dict[str, int] = {}
    files: list[tracking_rows.FileJobChange] = []
    parts = None
    if listing is not None:
        parts = collect_parts(day, listing)
        for part in parts.parts:
            statuses[part.meta["status"]] = statuses.get(part.meta["status"], 0) + 1
        statuses["failed"] = len(parts.failed)
        files = _file_outcomes(day, listing, parts)
    load = day.state.load()
    loaded = load is not None and load.run_id == run_id
    rows = _row_counts(load.rows, day.state.aggregate()) if load is not None and loaded else None
    judged = tracking_rows.day_judged(
        config.name,
        date,
        statuses=statuses,
        problems=day_problems(day, parts),
        loaded=loaded,
        dag_run_id=run_id,
        now=_now(),
        rows=rows,
        listing=listing,
    )
    return tracking_rows.Changes(judged.run, files)


def _row_counts(loaded_rows: int, aggregate: AggregateRecord | None) -> dict[str, int]:
    counts = row_accounting(aggregate)
    return tracking_rows.row_counts(
        loaded_rows, counts.rows_in, counts.rows_rejected, counts.skipped, counts.rows_merged
    )


def _file_outcomes(day: Day, listing: Listing, parts: DayParts) -> list[tracking_rows.FileJobChange]:
    """Each routed file's recorded outcome in this run, as rows (attempts are not counted again), and
    the files of the last loaded snapshot this run kept or left out, each saying so."""
    changes = []
    now = _now()
    name, date, run_id = day.pipeline, day.date, str(day.run_id)
    errors = {str(record["file_path"]): str(record["error"]) for record in parts.failed}
    for index, file in listing.files_by_map_index():
        result = file_result(day, file)
        if result is None or result.get("run_id") != run_id:
            failure = {"error": f"{file.name}: not transformed in this run", "will_retry": False}
            changes += tracking_rows.file_failed(name, date, file, index, failure, run_id, now).files
        elif result["status"] == "failed":
            # The day's own words: they say when the file's previous version stays in the snapshot.
            error = errors.get(file.location, result["error"])
            failure = {"error": error, "will_retry": False, "checksum": result.get("checksum")}
            changes += tracking_rows.file_failed(name, date, file, index, failure, run_id, now).files
        else:
            changes += tracking_rows.file_finished(name, date, file, index, result, run_id, now, None).files
    routed = {file.location for file in listing.routed}
    kept_parts = {str(p.meta.get("file_path")): {**p.meta, "part": str(p.directory)} for p in parts.parts}
    for location, kept in parts.retained.items():
        if location not in routed:  # a routed file's row is its failure, above
            changes.append(
                tracking_rows.file_kept_or_dropped(name, date, location, kept, kept_parts[location], run_id, now)
            )
    for location, kept in parts.dropped.items():
        changes.append(tracking_rows.file_kept_or_dropped(name, date, location, kept, None, run_id, now))
    for record in parts.failed:
        if record["file_path"] not in routed:  # a kept version whose part is gone
            fields = {"status": "failed", "error": record["error"], "map_index": None, "completed_at": now}
            changes.append(
                tracking_rows.FileJobChange(record["file_path"], record["file_name"], fields, dag_run_id=run_id)
            )
    return changes


def dag_run_event(dag_run: Any, succeeded: bool, message: str) -> None:
    """A pipeline's DAG run ended; closes its row if check_day never judged the day."""
    config = pipeline_config(dag_run.dag_id)
    if config is None:
        return
    date = business_date_of_run(config, dag_run)
    changes = run_ended(config, data_layout(), date, dag_run.run_id, succeeded, message)
    # In the scheduler's loop (or an API request): tried once, as every write outside a task process.
    with closing(TrackingHook(retry_delays=())) as hook:
        hook.record(changes)


def run_ended(
    config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str, succeeded: bool, message: str
) -> tracking_rows.Changes:
    """What a DAG run's end says about its date's row.

    Airflow 3.3 reports a task's success before it runs that task's success listeners, so a run can end
    (and this event come) before check_day's own listener has written the day's verdict. A run that
    succeeded is therefore judged here from the day's state as well, counts included (the same write as
    check_day's, so whichever comes second changes nothing): the row never says ``completed`` without
    its files and rows. A run that failed, or one marked successful by hand before the day was complete,
    only closes a row still open for it.
    """
    if succeeded:
        judged = judge_day(config, layout, date, run_id)
        if judged.run.fields.get("status") == "completed":
            return judged
    return tracking_rows.run_ended_without_judgement(config.name, date, succeeded, message, run_id, _now())
