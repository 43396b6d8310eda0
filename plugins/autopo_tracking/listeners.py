"""Airflow listeners: thin wrappers over ``autopo_tracking.events``.

Tracking must never fail or hold up a task or the scheduler, so every
wrapper logs and swallows what goes wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow.listeners import hookimpl

from autopo_tracking import events

log = logging.getLogger(__name__)


def _safely(handler: Callable[..., None], *args: Any) -> None:
    try:
        handler(*args)
    except Exception:
        log.exception("tracking: %s failed; the pipeline goes on", handler.__name__)


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _safely(events.task_event, task_instance, "running")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _safely(events.task_event, task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    # No previous state: a person marked it failed in the UI/API; nothing will retry it.
    _safely(events.task_event, task_instance, "failed", error, previous_state is None)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _safely(events.dag_run_event, dag_run, True, msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _safely(events.dag_run_event, dag_run, False, msg)
