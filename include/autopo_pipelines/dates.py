"""The business-date rule, in one place: which day a run, a moment or a run's conf stands for.

The DAG's tasks, the tracking listeners, the failure and deadline callbacks and the local tools all
ask here; nothing here imports Airflow (a DAG run is read by its fields, as an object or as the
API's JSON).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pendulum

from autopo_pipelines.config import PipelineConfig


class BusinessDateError(ValueError):
    """A run conf date that is not a date: the run cannot say which day it is for."""


def business_date_at(config: PipelineConfig, moment: dt.datetime) -> dt.date:
    """The business date of a moment: its local date in the pipeline's timezone, less the offset
    (``business_date_offset_days``: 1 for a 07:00 run that reports on yesterday's closing stock)."""
    local = pendulum.instance(moment).in_timezone(config.timezone)
    return local.date() - dt.timedelta(days=config.business_date_offset_days)


def cutoff_moment(config: PipelineConfig, date: dt.date) -> dt.datetime | None:
    """When the wait for the date's missing stores ends (``cutoff``, local time), in UTC."""
    if config.cutoff is None:
        return None
    day = date + dt.timedelta(days=config.business_date_offset_days)
    local = pendulum.datetime(
        day.year, day.month, day.day, config.cutoff.hour, config.cutoff.minute, tz=config.timezone
    )
    return local.in_timezone("UTC")


def deadline_moment(config: PipelineConfig, date: dt.date) -> dt.datetime | None:
    """When the date's snapshot must be loaded (``alerts.deadline``), in UTC: the scheduled run of the
    date starts at the schedule's local time on the run's day (the date plus the offset), and the
    deadline falls ``deadline_after_start`` later, as the DAG's Deadline Alert measures it."""
    if config.alerts.deadline is None:
        return None
    hour, minute = config.schedule_start()
    day = date + dt.timedelta(days=config.business_date_offset_days)
    start = pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=config.timezone)
    return (start + config.deadline_after_start()).in_timezone("UTC")


def business_date_of(
    config: PipelineConfig, requested: object, logical_date: dt.datetime | None, run_after: dt.datetime
) -> dt.date:
    """Run conf ``{"date": "YYYY-MM-DD"}`` wins; else the logical date (or, for a run without one,
    when it was due) in the pipeline's timezone."""
    if requested:
        try:
            return dt.date.fromisoformat(str(requested))
        except ValueError as exc:
            raise BusinessDateError(f"run conf date {requested!r} is not YYYY-MM-DD") from exc
    return business_date_at(config, logical_date or run_after)


def business_date_of_run(config: PipelineConfig, dag_run: Any) -> dt.date:
    """The business date of a DAG run given as Airflow's object (listeners, failure callbacks) or as the
    API's JSON (a Deadline Alert callback's context), whose times are ISO strings."""

    def field(name: str) -> Any:
        return dag_run.get(name) if isinstance(dag_run, Mapping) else getattr(dag_run, name, None)

    def moment(value: Any) -> Any:
        return pendulum.parse(value) if isinstance(value, str) else value

    conf = field("conf") or {}
    return business_date_of(config, conf.get("date"), moment(field("logical_date")), moment(field("run_after")))
