"""From an Airflow event to tracking rows: find the pipeline, its date and the day's state.

The listeners call these; each returns quietly for DAGs that are not pipelines.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from autopo_pipelines import day_run, tracking
from autopo_pipelines.config import ConfigError, PipelineConfig, default_config_dir, load_config_file
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.dag_factory import business_date_of
from autopo_tracking.hooks.tracking import TrackingHook

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pipeline_config(dag_id: str) -> PipelineConfig | None:
    path = default_config_dir() / f"{dag_id}.yaml"
    if not path.exists():
        return None
    try:
        return load_config_file(path)
    except ConfigError:
        return None


def _date_of(config: PipelineConfig, dag_run: Any) -> dt.date:
    conf = getattr(dag_run, "conf", None) or {}
    return business_date_of(config, conf.get("date"), getattr(dag_run, "logical_date", None), dag_run.run_after)


def _dag_run_of(task_instance: Any) -> Any:
    # In the task process the instance carries its context; in the API server (a state set by hand) the ORM row.
    if hasattr(task_instance, "get_template_context"):
        return task_instance.get_template_context()["dag_run"]
    return task_instance.dag_run


def task_event(task_instance: Any, state: str, error: object = None, marked_by_hand: bool = False) -> None:
    """A task of a pipeline DAG started ("running"), succeeded ("success") or failed ("failed")."""
    config = pipeline_config(task_instance.dag_id)
    if config is None:
        return
    dag_run = _dag_run_of(task_instance)
    date = _date_of(config, dag_run)
    run_id = task_instance.run_id
    layout = DataLayout.from_env()
    changes = changes_for_task(config, layout, date, run_id, task_instance, state, error, marked_by_hand)
    if changes is not None:
        TrackingHook().record(changes)


def _will_retry(task_instance: Any, error: object, marked_by_hand: bool) -> bool:
    from airflow.sdk.exceptions import AirflowFailException

    if marked_by_hand or isinstance(error, AirflowFailException):
        return False
    return int(task_instance.try_number or 0) <= int(task_instance.max_tries or 0)


def changes_for_task(
    config: PipelineConfig,
    layout: DataLayout,
    date: dt.date,
    run_id: str,
    task_instance: Any,
    state: str,
    error: object,
    marked_by_hand: bool = False,
) -> tracking.Changes | None:
    name, task_id = config.name, task_instance.task_id
    listing = day_run.current_listing(config, layout, date, run_id)
    if task_id == "list_files":
        if state == "success" and listing is not None:
            return tracking.files_listed(name, date, listing, run_id, _now())
        if state == "failed" and not _will_retry(task_instance, error, marked_by_hand):
            return tracking.listing_failed(name, date, run_id, str(error), _now())
        return None
    if task_id == "transform_file":
        if listing is None or not 0 <= task_instance.map_index < len(listing["routed"]):
            return None
        file = listing["routed"][task_instance.map_index]
        if state == "running":
            return tracking.file_started(name, date, file, task_instance.map_index, run_id, _now())
        if state == "success":
            result = day_run.file_result(config, layout, date, file["name"])
            if result is None:
                return None
            return tracking.file_finished(name, date, file, task_instance.map_index, result, run_id, _now())
        if state == "failed":
            will_retry = _will_retry(task_instance, error, marked_by_hand)
            return tracking.file_failed(
                name, date, file, task_instance.map_index, str(error), will_retry, run_id, _now()
            )
        return None
    if task_id == "load_snapshot" and state == "success":
        loaded = day_run.read_json(layout.intermediate(name, date) / day_run.LOAD)
        aggregate = day_run.read_json(layout.intermediate(name, date) / day_run.AGGREGATE) or {}
        if loaded is None:
            return None
        rejected = int((aggregate.get("outputs") or {}).get("rows_rejected", 0))
        return tracking.snapshot_loaded(name, date, int(loaded["rows"]), rejected, run_id)
    if task_id == "check_day" and state in ("success", "failed"):
        if state == "failed" and _will_retry(task_instance, error, marked_by_hand):
            return None
        return judge_day(config, layout, date, run_id)
    return None


def judge_day(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str) -> tracking.Changes:
    listing = day_run.current_listing(config, layout, date, run_id)
    statuses: dict[str, int] = {}
    if listing is not None:
        parts = day_run.collect_parts(config, layout, date, listing)
        for part in parts.parts:
            statuses[part.meta["status"]] = statuses.get(part.meta["status"], 0) + 1
        statuses["failed"] = len(parts.failed)
    load = day_run.read_json(layout.intermediate(config.name, date) / day_run.LOAD)
    aggregate = day_run.read_json(layout.intermediate(config.name, date) / day_run.AGGREGATE) or {}
    loaded = load is not None and load.get("run_id") == run_id
    rows = (int(load["rows"]), int((aggregate.get("outputs") or {}).get("rows_rejected", 0))) if loaded else None
    return tracking.day_judged(
        config.name,
        date,
        statuses=statuses,
        problems=day_run.day_problems(config, layout, date, run_id),
        loaded=loaded,
        dag_run_id=run_id,
        now=_now(),
        rows=rows,
    )


def dag_run_event(dag_run: Any, succeeded: bool, message: str) -> None:
    """A pipeline's DAG run ended; closes its row if check_day never judged the day."""
    config = pipeline_config(dag_run.dag_id)
    if config is None:
        return
    date = _date_of(config, dag_run)
    TrackingHook().record(
        tracking.run_ended_without_judgement(config.name, date, succeeded, message, dag_run.run_id, _now())
    )
