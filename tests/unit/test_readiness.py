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


# --- processing: as_they_arrive -----------------------------------------------------------------------


def finished_run(layout: DataLayout, config: PipelineConfig, run_id: str, loaded: bool = True) -> None:
    """The state a run leaves when it has listed the date's files, aggregated them and (or not) loaded them."""
    from autopo_pipelines.day.listing import list_day_files
    from autopo_pipelines.day.state import AggregateRecord, LoadRecord

    day = Day(config, layout, DATE, run_id)
    list_day_files(day)
    day.state.save_aggregate(AggregateRecord(run_id=run_id, failed=[], outputs={"rows_out": 1}, aggregate_id="a1"))
    if loaded:
        day.state.save_load(LoadRecord(run_id=run_id, aggregate_id="a1", table="t", rows=1, loaded_at="now"))


def test_arrivals_are_the_files_new_changed_or_gone_since_the_last_finished_run(layout: DataLayout) -> None:
    import os

    from autopo_pipelines.day.listing import arrivals

    config = config_with(processing="as_they_arrive")
    (layout.reference()).mkdir(parents=True)
    (layout.reference() / "suppliers.csv").write_text("sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n")
    day = Day(config, layout, DATE)
    assert arrivals(day).files == [] and arrivals(day).anything_new  # nothing yet, and no run has finished
    upload(layout, "S1")
    upload(layout, "S2")
    first = arrivals(day)
    assert first.new == ["S1_stock_20241204.xlsx", "S2_stock_20241204.xlsx"] and first.handled_by is None

    finished_run(layout, config, "run-1", loaded=False)
    assert arrivals(day).anything_new  # listed and aggregated but not loaded: the date is not finished
    finished_run(layout, config, "run-1")
    assert not arrivals(day).anything_new and arrivals(day).handled_by == "run-1"

    upload(layout, "S3")
    changed = layout.inbox("stock_health") / "S1_stock_20241204.xlsx"
    os.utime(changed, (1_700_000_000, 1_700_000_000))
    (layout.inbox("stock_health") / "S2_stock_20241204.xlsx").unlink()
    later = arrivals(day)
    assert later.new == ["S1_stock_20241204.xlsx", "S3_stock_20241204.xlsx"]
    assert later.gone == ["S2_stock_20241204.xlsx"]
    assert later.anything_new


def test_as_they_arrive_needs_a_schedule_of_daily_times_and_a_run_at_or_after_the_deadline(tmp_path: Path) -> None:
    import yaml

    from autopo_pipelines.config import ConfigError

    raw = yaml.safe_load((default_config_dir() / "stock_health.yaml").read_text(encoding="utf-8"))
    raw["processing"] = "as_they_arrive"
    raw["airflow"]["schedule"] = "*/15 5-9 * * *"
    path = tmp_path / "stock_health.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config_file(path)
    assert config.schedule_start() == (5, 0)
    assert len(config.schedule_times()) == 20 and config.schedule_times()[-1] == dt.time(9, 45)
    # The 09:00 deadline is measured from the day's first run, as the dashboard and the alert read it.
    from autopo_pipelines.dates import deadline_moment

    assert deadline_moment(config, DATE) == dt.datetime(2024, 12, 4, 2, 0, tzinfo=dt.UTC)

    raw["airflow"]["schedule"] = "*/15 5-8 * * *"  # last run 08:45: nobody would check the 09:00 deadline
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="must start a run at or after the deadline"):
        load_config_file(path)
    raw["airflow"]["schedule"] = "0 7 * * 1-5"  # weekdays only: not the same times every day
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="same times every day"):
        load_config_file(path)
