"""When the sensor lets the day start: expected stores, the cutoff, and nothing expected."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from autopo_pipelines.config import PipelineConfig, default_config_dir, load_config_file
from autopo_pipelines.day import Day
from autopo_pipelines.day.listing import readiness
from autopo_pipelines.layout import DataLayout

DATE = dt.date(2024, 12, 4)
# 09:00 in Jakarta (UTC+7) on the business date is 02:00 UTC.
BEFORE_CUTOFF = dt.datetime(2024, 12, 4, 1, 59, tzinfo=dt.UTC)
AFTER_CUTOFF = dt.datetime(2024, 12, 4, 2, 0, tzinfo=dt.UTC)


def config_with(**changes: object) -> PipelineConfig:
    config = load_config_file(default_config_dir() / "stock_health.yaml")
    return config.model_copy(update=changes)


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    layout = DataLayout(tmp_path)
    layout.inbox("stock_health").mkdir(parents=True)
    return layout


def upload(layout: DataLayout, store: str) -> None:
    (layout.inbox("stock_health") / f"{store}_stock_20241204.xlsx").write_bytes(b"x")


def test_without_expected_stores_the_first_file_starts_the_day(layout: DataLayout) -> None:
    config = config_with()
    assert not readiness(Day(config, layout, DATE), BEFORE_CUTOFF).ready
    upload(layout, "S1")
    state = readiness(Day(config, layout, DATE), BEFORE_CUTOFF)
    assert state.ready and state.files == ["S1_stock_20241204.xlsx"] and state.missing_stores == []


def test_expected_stores_are_waited_for_until_the_cutoff(layout: DataLayout) -> None:
    config = config_with(expected_stores=["s1", "S2", "S3"], cutoff=dt.time(9, 0))
    upload(layout, "S1")
    waiting = readiness(Day(config, layout, DATE), BEFORE_CUTOFF)
    assert not waiting.ready
    assert waiting.missing_stores == ["S2", "S3"]
    assert "2024-12-04T02:00:00+00:00" in waiting.reason
    late = readiness(Day(config, layout, DATE), AFTER_CUTOFF)
    assert late.ready and late.missing_stores == ["S2", "S3"]
    upload(layout, "S2")
    upload(layout, "S3")
    assert readiness(Day(config, layout, DATE), BEFORE_CUTOFF).ready


def test_after_the_cutoff_an_empty_day_still_waits(layout: DataLayout) -> None:
    config = config_with(expected_stores=["S1"], cutoff=dt.time(9, 0))
    assert not readiness(Day(config, layout, DATE), AFTER_CUTOFF).ready


def test_without_a_cutoff_every_expected_store_is_awaited(layout: DataLayout) -> None:
    config = config_with(expected_stores=["S1", "S2"])
    upload(layout, "S1")
    assert not readiness(Day(config, layout, DATE), AFTER_CUTOFF + dt.timedelta(days=3)).ready


def test_the_cutoff_is_on_the_run_day_when_the_run_reports_on_yesterday(layout: DataLayout) -> None:
    config = config_with(expected_stores=["S1", "S2"], cutoff=dt.time(9, 0), business_date_offset_days=1)
    upload(layout, "S1")
    # Business date 2024-12-04 is reported on the 5th; its cutoff is 09:00 on the 5th.
    assert not readiness(Day(config, layout, DATE), AFTER_CUTOFF).ready
    assert readiness(Day(config, layout, DATE), AFTER_CUTOFF + dt.timedelta(days=1)).ready
