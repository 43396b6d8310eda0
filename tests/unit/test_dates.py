"""The business-date rule (autopo_pipelines.dates): one owner, asked by tasks, listeners and callbacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest

from autopo_pipelines.config import PipelineConfig, load_config_file
from autopo_pipelines.dates import (
    BusinessDateError,
    business_date_at,
    business_date_of,
    business_date_of_run,
    cutoff_moment,
    deadline_moment,
)

REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_config_file(REAL_CONFIG)  # Asia/Jakarta, offset 0


def test_a_moment_is_its_local_date_less_the_offset(config: PipelineConfig) -> None:
    moment = dt.datetime(2024, 12, 3, 17, 30, tzinfo=dt.UTC)  # 00:30 on the 4th in Jakarta
    assert business_date_at(config, moment) == dt.date(2024, 12, 4)
    yesterday = config.model_copy(update={"business_date_offset_days": 1})
    assert business_date_at(yesterday, moment) == dt.date(2024, 12, 3)


def test_the_run_conf_date_wins_and_a_wrong_one_is_an_error(config: PipelineConfig) -> None:
    after = dt.datetime(2024, 12, 4, 0, 0, tzinfo=dt.UTC)
    assert business_date_of(config, "2024-11-30", None, after) == dt.date(2024, 11, 30)
    assert business_date_of(config, None, None, after) == dt.date(2024, 12, 4)
    with pytest.raises(BusinessDateError, match="run conf date '30/11/2024' is not YYYY-MM-DD"):
        business_date_of(config, "30/11/2024", None, after)


def test_a_dag_run_as_an_object_or_as_the_apis_json_gives_the_same_date(config: PipelineConfig) -> None:
    logical = dt.datetime(2024, 12, 4, 0, 0, tzinfo=dt.UTC)
    as_object = SimpleNamespace(conf={}, logical_date=logical, run_after=logical)
    as_json = {"conf": {}, "logical_date": "2024-12-04T00:00:00+00:00", "run_after": "2024-12-04T00:00:00+00:00"}
    assert business_date_of_run(config, as_object) == business_date_of_run(config, as_json) == dt.date(2024, 12, 4)
    assert business_date_of_run(config, {**as_json, "conf": {"date": "2024-12-01"}}) == dt.date(2024, 12, 1)


def test_the_cutoff_is_local_time_on_the_runs_day(config: PipelineConfig) -> None:
    assert cutoff_moment(config, dt.date(2024, 12, 4)) is None
    with_cutoff = config.model_copy(update={"cutoff": dt.time(8, 0)})
    assert cutoff_moment(with_cutoff, dt.date(2024, 12, 4)) == dt.datetime(2024, 12, 4, 1, 0, tzinfo=dt.UTC)


def test_the_deadline_falls_on_the_scheduled_runs_day_in_local_time(config: PipelineConfig) -> None:
    # stock_health: daily at 07:00 Asia/Jakarta (UTC+7), deadline 09:00 local.
    assert (config.airflow.schedule, config.alerts.deadline) == ("0 7 * * *", dt.time(9, 0))
    assert deadline_moment(config, dt.date(2024, 12, 4)) == dt.datetime(2024, 12, 4, 2, 0, tzinfo=dt.UTC)
    # A run that reports on yesterday (offset 1) runs the next morning: its deadline is then.
    yesterday = config.model_copy(update={"business_date_offset_days": 1})
    assert deadline_moment(yesterday, dt.date(2024, 12, 4)) == dt.datetime(2024, 12, 5, 2, 0, tzinfo=dt.UTC)
    # A deadline earlier in the day than the start is the next day's (as the Deadline Alert measures it).
    overnight = config.model_copy(update={"alerts": config.alerts.model_copy(update={"deadline": dt.time(6, 30)})})
    assert deadline_moment(overnight, dt.date(2024, 12, 4)) == dt.datetime(2024, 12, 4, 23, 30, tzinfo=dt.UTC)
    no_deadline = config.model_copy(update={"alerts": config.alerts.model_copy(update={"deadline": None})})
    assert deadline_moment(no_deadline, dt.date(2024, 12, 4)) is None
