"""The pipeline's metrics (orchestration.metrics): names Airflow's validators accept, and a metrics client
that fails never fails a task's step. The metrics a real day sends: tests/e2e/test_metrics_day.py."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from autopo_pipelines.config import PIPELINE_NAME, default_config_dir, load_configs
from autopo_pipelines.day.file_run import BatchOutcome
from autopo_pipelines.day.state import FileTask
from autopo_pipelines.orchestration import dag_factory, metrics

ALL_METRICS = (
    metrics.FILES_PROCESSED,
    metrics.FILES_FAILED,
    metrics.ROWS_LOADED,
    metrics.ROWS_REJECTED,
    metrics.FILE_SECONDS,
    metrics.DAY_SECONDS,
    metrics.LAST_LOADED_TIMESTAMP,
)


class BrokenClient:
    """A metrics backend whose every call raises, as a custom client or a broken exporter might."""

    calls = 0

    def _fail(self, *args: object, **kwargs: object) -> None:
        BrokenClient.calls += 1
        raise OSError("metrics backend down")

    incr = decr = gauge = timing = timer = _fail


@pytest.fixture
def broken_metrics() -> Iterator[None]:
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    BrokenClient.calls = 0
    stats.initialize(factory=BrokenClient, export_legacy_names=False)
    try:
        yield
    finally:
        stats.initialize(
            factory=stats_utils.get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
        )


def test_every_name_passes_airflows_statsd_and_otel_name_checks() -> None:
    from airflow.sdk._shared.observability.metrics.validators import (
        stat_name_default_handler,
        stat_name_otel_handler,
    )

    longest = "p" * 63
    assert PIPELINE_NAME.match(longest) and not PIPELINE_NAME.match(longest + "p")
    for pipeline in [longest, *load_configs(default_config_dir()).configs]:
        for metric in ALL_METRICS:
            name = metrics.metric_name(pipeline, metric)
            assert stat_name_default_handler(name) == name
            assert stat_name_otel_handler("airflow", name) == f"airflow.{name}"
    assert metrics.metric_name("stock_health", metrics.ROWS_LOADED) == "autopo.stock_health.rows_loaded"


def test_a_failing_client_is_logged_not_raised(broken_metrics: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=metrics.__name__):
        metrics.files_done("stock_health", processed=2, failed=1, transform_seconds=[1.5, 2.0])
        metrics.day_loaded("stock_health", rows=10, rejected=1, at=1733300000.5)
        metrics.day_judged("stock_health", 60.0)
    assert BrokenClient.calls == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"stock_health: {what} metrics not sent: metrics backend down" for what in ("files", "load", "verdict")
    ]


def fake_day(*, unreadable_aggregate: bool = False) -> Any:
    def aggregate() -> None:
        if unreadable_aggregate:
            raise OSError("aggregate.json unreadable")
        return None  # row_accounting(None): no rejected rows

    return SimpleNamespace(
        config=SimpleNamespace(name="stock_health"),
        date=dt.date(2024, 12, 4),
        run_id="run-1",
        conninfo="postgresql://nowhere",
        state=SimpleNamespace(aggregate=aggregate),
    )


def test_the_steps_succeed_when_their_metrics_fail(
    broken_metrics: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config: Any = SimpleNamespace(name="stock_health", as_they_arrive=False)
    context = {"dag_run": SimpleNamespace(start_date=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))}
    released: list[str] = []
    monkeypatch.setattr(dag_factory, "get_current_context", lambda: context)
    monkeypatch.setattr(dag_factory, "holding_the_day", lambda config: fake_day())
    monkeypatch.setattr(dag_factory, "run_day", lambda config, conninfo=None: fake_day())
    monkeypatch.setattr(dag_factory, "warehouse", lambda: "postgresql://nowhere")
    result = {"file_name": "S1_stock_20241204.xlsx", "status": "completed"}
    monkeypatch.setattr(dag_factory, "run_batch", lambda day, tasks: BatchOutcome([result], {}, [0.25]))
    monkeypatch.setattr(dag_factory, "load_day", lambda day: 42)
    monkeypatch.setattr(dag_factory, "outputs_are_stale", lambda day: False)
    monkeypatch.setattr(dag_factory, "day_problems", lambda day: [])
    monkeypatch.setattr(dag_factory.day_lock, "release", lambda *args: released.append(str(args[1])))
    file = FileTask("S1_stock_20241204.xlsx", "/in/S1_stock_20241204.xlsx", 1, 0.0, "S1", None).as_dict()

    with caplog.at_level(logging.WARNING, logger=metrics.__name__):
        assert dag_factory.transform_step(config, [file]) == [result]
        assert dag_factory.load_step(config) == 42
        assert dag_factory.check_step(config) == {"date": "2024-12-04", "status": "completed"}
        # The load's metrics need the aggregate's reject count: reading it is the metric's read, not the load's.
        monkeypatch.setattr(dag_factory, "holding_the_day", lambda config: fake_day(unreadable_aggregate=True))
        assert dag_factory.load_step(config) == 42
    assert released == ["stock_health"]
    assert [r.getMessage() for r in caplog.records] == [
        "stock_health: files metrics not sent: metrics backend down",
        "stock_health: load metrics not sent: metrics backend down",
        "stock_health: verdict metrics not sent: metrics backend down",
        "stock_health: load metrics not sent: aggregate.json unreadable",
    ]
