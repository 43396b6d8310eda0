"""The tracking plugin's rows for a transform_file map index that stands for a batch of files.

The day's state is written on disk as the tasks leave it (listing, result records,
parts); the listener's events are built from a stand-in task instance.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from autopo_pipelines.config import PipelineConfig, load_config_file
from autopo_pipelines.day import Day
from autopo_pipelines.day.listing import batch_files
from autopo_pipelines.day.state import (
    LISTING,
    RESULTS,
    DayInputs,
    FileResult,
    FileStatus,
    FileTask,
    Listing,
    write_json,
)
from autopo_pipelines.layout import DataLayout, file_key
from autopo_tracking import events

DATE = dt.date(2024, 12, 4)
RUN = "run-1"
REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"
FILES = [
    FileTask(f"S{i}_stock_20241204.xlsx", f"/in/S{i}_stock_20241204.xlsx", 10, 0.0, f"S{i}", None) for i in range(5)
]


@pytest.fixture
def day(tmp_path: Path) -> tuple[PipelineConfig, DataLayout]:
    config = load_config_file(REAL_CONFIG)
    layout = DataLayout(tmp_path)
    batches = batch_files(FILES, 3, 1024)  # [S0 S1 S2] [S3 S4]
    Day(config, layout, DATE, RUN).state.save_listing(
        Listing(
            run_id=RUN,
            date=DATE.isoformat(),
            source="",
            files_seen=len(FILES),
            routed=list(FILES),
            files_per_task=3,
            batches=[[t.name for t in batch] for batch in batches],
            unrouted=[],
            superseded=[],
            missing_stores=[],
            other_dates=0,
            inputs=DayInputs(folder="/nowhere", fingerprint="sha256:x", notes=[]),
        )
    )
    return config, layout


def record(config: PipelineConfig, layout: DataLayout, name: str, status: FileStatus, run_id: str = RUN) -> None:
    state = Day(config, layout, DATE).state
    task = next(t for t in FILES if t.name == name)
    checksum = f"sha256:{name}"
    if status == "failed":
        error = f"{name}: sheet 'Stock', row 1: required column missing: sku"
        result = FileResult(name, run_id, status, checksum, error=error)
    else:
        part = state.folder / "parts" / name
        part.mkdir(parents=True, exist_ok=True)
        meta = {
            "checksum": checksum,
            "file_path": task.location,
            "rows_in": 4,
            "rows_out": 3,
            "rows_rejected": 1,
        }
        (part / "part.json").write_text(json.dumps(meta), encoding="utf-8")
        result = FileResult(name, run_id, status, checksum, part=str(part))
    state.save_result(task.location, task.name, result)


def event(map_index: int, state: str, error: object = None, will_retry: bool = False) -> events.TaskEvent:
    ti = SimpleNamespace(
        task_id="transform_file",
        map_index=map_index,
        run_id=RUN,
        try_number=1,
        start_date=dt.datetime(2024, 12, 4, 1, tzinfo=dt.UTC),
        state="up_for_retry" if will_retry else state,
    )
    return events.TaskEvent(ti, state, error, marked_by_hand=False)


def jobs(config: PipelineConfig, layout: DataLayout, ev: events.TaskEvent) -> dict[str, dict[str, Any]]:
    changes = events.changes_for_task(config, layout, DATE, RUN, ev)
    assert changes is not None
    return {job.file_name[:2]: {**job.fields, "attempt_key": job.attempt_key} for job in changes.files}


def test_a_batch_task_starting_starts_each_of_its_files(day: tuple[PipelineConfig, DataLayout]) -> None:
    config, layout = day
    started = jobs(config, layout, event(1, "running"))
    assert set(started) == {"S3", "S4"}
    assert all(job["status"] == "processing" and job["map_index"] == 1 for job in started.values())


def test_a_batch_task_succeeding_finishes_each_file_with_its_own_result(
    day: tuple[PipelineConfig, DataLayout],
) -> None:
    config, layout = day
    record(config, layout, FILES[0].name, "completed")
    record(config, layout, FILES[1].name, "skipped")
    record(config, layout, FILES[2].name, "completed")
    finished = jobs(config, layout, event(0, "success"))
    assert {name: job["status"] for name, job in finished.items()} == {
        "S0": "completed",
        "S1": "skipped",
        "S2": "completed",
    }
    assert all(job["map_index"] == 0 and job["rows_out"] == 3 for job in finished.values())
    assert finished["S0"]["attempt_key"] == f"{RUN}#1" and finished["S1"]["attempt_key"] is None


def test_a_failed_batch_fails_its_bad_file_with_its_error_and_finishes_the_good_ones(
    day: tuple[PipelineConfig, DataLayout],
) -> None:
    config, layout = day
    record(config, layout, FILES[0].name, "completed")
    record(config, layout, FILES[1].name, "failed")
    record(config, layout, FILES[2].name, "completed", run_id="run-0")  # an earlier run's: not this attempt
    outcome = jobs(config, layout, event(0, "failed", "2 files failed: ..."))
    assert outcome["S0"]["status"] == "completed" and outcome["S0"]["map_index"] == 0
    assert outcome["S1"]["status"] == "failed"
    assert outcome["S1"]["error"] == f"{FILES[1].name}: sheet 'Stock', row 1: required column missing: sku"
    assert outcome["S2"]["status"] == "failed" and outcome["S2"]["error"] == "2 files failed: ..."
    assert {job["map_index"] for job in outcome.values()} == {0}


def test_a_batch_retried_over_one_file_queues_the_files_without_a_result(
    day: tuple[PipelineConfig, DataLayout],
) -> None:
    config, layout = day
    record(config, layout, FILES[3].name, "completed")
    outcome = jobs(config, layout, event(1, "failed", "disk full", will_retry=True))
    assert outcome["S3"]["status"] == "completed"
    assert (outcome["S4"]["status"], outcome["S4"]["error"]) == ("queued", "disk full")


def test_a_batch_marked_successful_by_hand_without_results_records_nothing(
    day: tuple[PipelineConfig, DataLayout],
) -> None:
    config, layout = day
    assert events.changes_for_task(config, layout, DATE, RUN, event(1, "success")) is None
    assert events.changes_for_task(config, layout, DATE, RUN, event(2, "running")) is None


def test_the_days_verdict_writes_each_file_under_its_batch(day: tuple[PipelineConfig, DataLayout]) -> None:
    config, layout = day
    for file in FILES:
        record(config, layout, file.name, "completed")
    judged = events.judge_day(config, layout, DATE, RUN)
    assert {job.file_name[:2]: job.fields["map_index"] for job in judged.files} == {
        "S0": 0,
        "S1": 0,
        "S2": 0,
        "S3": 1,
        "S4": 1,
    }


def test_state_in_a_form_this_code_never_wrote_is_no_runs_state(tmp_path: Path) -> None:
    # A listing from before run ids were recorded (its files carried a checksum): no run takes it
    # for its own, and the listeners and alerts that read it go on.
    day = Day(load_config_file(REAL_CONFIG), DataLayout(tmp_path), DATE, RUN)
    write_json(day.state.folder / LISTING, {"date": DATE.isoformat(), "routed": [{"name": "a", "checksum": "x"}]})
    assert day.listing() is None and day.for_run(None).listing() is None
    write_json(day.state.folder / RESULTS / f"{file_key('/in/a', 'a')}.json", {"status": "completed"})
    assert day.state.result("/in/a", "a") is None


def test_a_run_that_succeeds_before_check_days_listener_wrote_is_judged_with_its_counts(
    day: tuple[PipelineConfig, DataLayout],
) -> None:
    """Airflow reports check_day's success before running its listeners: the run's end may come first,
    and must not close the row as completed without its files."""
    from autopo_pipelines.day.state import AggregateRecord, LoadRecord

    config, layout = day
    for file in FILES:
        record(config, layout, file.name, "completed")
    state = Day(config, layout, DATE).state
    parts = sorted(str(state.folder / "parts" / file.name) for file in FILES)
    metas = [
        {"file_name": f.name, "rows_in": 4, "rows_skipped": {}, "part": p} for f, p in zip(FILES, parts, strict=True)
    ]
    state.save_aggregate(
        AggregateRecord(
            RUN, failed=[], outputs={"rows_out": 15, "rows_rejected": 5}, aggregate_id="a1", parts=parts, files=metas
        )
    )
    state.save_load(LoadRecord(RUN, "a1", "stock_health_snapshots", 15, "2024-12-04T08:00:00+00:00"))

    ended = events.run_ended(config, layout, DATE, RUN, True, "")
    assert ended.run.fields["status"] == "completed"
    assert ended.run.fields["processed_files"] == len(FILES)
    assert len(ended.files) == len(FILES) and not ended.only_if_unfinished

    # Marked successful by hand before the day was loaded: it only closes a row still open.
    state.forget_load()
    ended = events.run_ended(config, layout, DATE, RUN, True, "")
    assert ended.only_if_unfinished and ended.files == []
    assert ended.run.fields["status"] == "completed"
    failed = events.run_ended(config, layout, DATE, RUN, False, "boom")
    assert failed.only_if_unfinished and failed.run.fields["error"] == "boom"
