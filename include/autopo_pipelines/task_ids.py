"""The ids of a pipeline DAG's tasks: the DAG factory names its tasks with them, and the tracking
plugin tells the events apart by them."""

from __future__ import annotations

from enum import StrEnum


class TaskId(StrEnum):
    WAIT_FOR_FILES = "wait_for_files"
    LIST_FILES = "list_files"
    TRANSFORM_FILE = "transform_file"
    AGGREGATE_AND_FLUSH = "aggregate_and_flush"
    LOAD_SNAPSHOT = "load_snapshot"
    CHECK_DAY = "check_day"
