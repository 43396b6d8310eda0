"""Per-pipeline metrics, sent through Airflow's own metrics client (docs/metrics.md).

The task SDK's ``stats`` (``airflow.sdk.observability.stats``) is what every task process
initialises from ``[metrics]`` when it starts (``task_runner.main``): StatsD when ``statsd_on``,
DogStatsD when ``statsd_datadog_enabled``, OpenTelemetry when ``otel_on``, else a client that does
nothing. So these functions cost nothing when metrics are off, and reach the team's existing
metrics setup, with its prefix and allow/block lists, when they are on.

Names: ``autopo.<pipeline>.<metric>`` (after Airflow's prefix). A metric is never worth a task:
any error sending one is logged and the task carries on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from airflow.sdk.observability import stats

log = logging.getLogger(__name__)

FILES_PROCESSED = "files_processed"
FILES_FAILED = "files_failed"
ROWS_LOADED = "rows_loaded"
ROWS_REJECTED = "rows_rejected"
FILE_SECONDS = "file_seconds"
DAY_SECONDS = "day_seconds"
LAST_LOADED_TIMESTAMP = "last_loaded_timestamp"


def metric_name(pipeline: str, metric: str) -> str:
    """The name sent, before Airflow's prefix: ``autopo.<pipeline>.<metric>``."""
    return f"autopo.{pipeline}.{metric}"


def files_done(pipeline: str, *, processed: int, failed: int, transform_seconds: Sequence[float] = ()) -> None:
    """A transform task's files: how many were transformed or reused, how many were refused (both sent,
    zero included, so a counter exists before its first increase), and each new transform's seconds."""
    with reporting(pipeline, "files"):
        stats.incr(metric_name(pipeline, FILES_PROCESSED), processed)
        stats.incr(metric_name(pipeline, FILES_FAILED), failed)
        for seconds in transform_seconds:
            stats.timing(metric_name(pipeline, FILE_SECONDS), dt.timedelta(seconds=seconds))


def day_loaded(pipeline: str, *, rows: int, rejected: int, at: float) -> None:
    """A successful load: the date's rows now in the table, the rows the day's files had refused, and
    when (unix seconds)."""
    with reporting(pipeline, "load"):
        stats.incr(metric_name(pipeline, ROWS_LOADED), rows)
        stats.incr(metric_name(pipeline, ROWS_REJECTED), rejected)
        stats.gauge(metric_name(pipeline, LAST_LOADED_TIMESTAMP), int(at))


def day_judged(pipeline: str, seconds: float) -> None:
    """The day's verdict (completed or failed), ``seconds`` after its run started."""
    with reporting(pipeline, "verdict"):
        stats.timing(metric_name(pipeline, DAY_SECONDS), dt.timedelta(seconds=seconds))


@contextmanager
def reporting(pipeline: str, what: str) -> Iterator[None]:
    """A block that only reports metrics (or reads what only a metric needs): an error in it is
    logged, never raised. A metric is never worth failing, or retrying, a task."""
    try:
        yield
    except Exception as exc:
        log.warning("%s: %s metrics not sent: %s", pipeline, what, exc, exc_info=exc)
