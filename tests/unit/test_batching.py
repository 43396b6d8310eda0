"""Files in batches for the mapped transform tasks, and a map index back to its files: no Airflow run."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from autopo_pipelines import tracking_rows
from autopo_pipelines.config import load_config_file
from autopo_pipelines.day import Day, file_run
from autopo_pipelines.day.listing import batch_files, batch_size, list_day_batches
from autopo_pipelines.day.state import FileTask, Listing
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.layout import DataLayout

DATE = dt.date(2024, 12, 4)
NOW = dt.datetime(2024, 12, 4, 8, 0, tzinfo=dt.UTC)
REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"


def tasks(count: int) -> list[FileTask]:
    return [
        FileTask(f"S{i:02d}_stock_20241204.xlsx", f"/in/S{i:02d}", 10 + i, 0.0, f"S{i:02d}", None) for i in range(count)
    ]


def names(batches: list[list[FileTask]]) -> list[list[str]]:
    return [[t.name[:3] for t in batch] for batch in batches]


def test_one_file_per_task_by_default_under_the_limit() -> None:
    assert names(batch_files(tasks(3), 1, 1024)) == [["S00"], ["S01"], ["S02"]]
    # Exactly at the limit still fits one file per task.
    assert len(batch_files(tasks(4), 1, 4)) == 4


def test_configured_size_groups_consecutive_files_in_listing_order() -> None:
    assert names(batch_files(tasks(5), 2, 1024)) == [["S00", "S01"], ["S02", "S03"], ["S04"]]
    assert names(batch_files(tasks(2), 5, 1024)) == [["S00", "S01"]]


def test_size_is_enlarged_when_the_tasks_would_exceed_max_map_length() -> None:
    assert batch_size(10, 1, 4) == 3
    assert names(batch_files(tasks(10), 1, 4)) == [
        ["S00", "S01", "S02"],
        ["S03", "S04", "S05"],
        ["S06", "S07", "S08"],
        ["S09"],
    ]
    assert batch_size(10, 2, 4) == 3
    # A configured size already large enough is kept.
    assert batch_size(10, 5, 4) == 5
    assert batch_size(2500, 1, 1024) == 3


def test_no_files_no_batches() -> None:
    assert batch_files([], 1, 1024) == []
    assert batch_files([], 3, 1) == []


@pytest.mark.parametrize(("files_per_task", "max_map_length"), [(0, 1024), (1, 0)])
def test_sizes_below_one_are_refused(files_per_task: int, max_map_length: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        batch_files(tasks(3), files_per_task, max_map_length)


def test_every_file_in_one_batch_in_order_and_never_more_batches_than_airflow_maps() -> None:
    for count in range(0, 40):
        for files_per_task in (1, 2, 3, 7):
            for limit in (1, 2, 3, 4, 5, 10, 1024):
                files = tasks(count)
                batches = batch_files(files, files_per_task, limit)
                size = batch_size(count, files_per_task, limit)
                assert [t for batch in batches for t in batch] == files
                assert len(batches) <= limit
                assert all(1 <= len(batch) <= size for batch in batches)
                assert all(len(batch) == size for batch in batches[:-1])
                assert size >= files_per_task


def listing_of(batches: list[list[FileTask]] | None, files: list[FileTask]) -> Listing:
    # Read from its JSON, as the tracking plugin reads the day's listing.json.
    raw: dict[str, Any] = {
        "run_id": "run-1",
        "date": DATE.isoformat(),
        "routed": [t.as_dict() for t in files],
        "inputs": {"folder": "/nowhere", "fingerprint": "sha256:x", "notes": []},
    }
    if batches is not None:
        raw["batches"] = [[t.name for t in batch] for batch in batches]
    return Listing.from_json(raw)


def test_a_map_index_stands_for_its_batch_and_files_are_listed_under_it() -> None:
    files = tasks(5)
    listing = listing_of(batch_files(files, 2, 1024), files)
    assert [[f.name[:3] for f in batch] for batch in listing.file_batches()] == [
        ["S00", "S01"],
        ["S02", "S03"],
        ["S04"],
    ]
    queued = tracking_rows.files_listed("stock_health", DATE, listing, "run-1", NOW).files
    assert {c.file_name[:3]: c.fields["map_index"] for c in queued} == {
        "S00": 0,
        "S01": 0,
        "S02": 1,
        "S03": 1,
        "S04": 2,
    }


def test_a_listing_without_batches_had_one_file_per_map_index() -> None:
    files = tasks(3)
    listing = listing_of(None, files)
    assert [[f.name for f in batch] for batch in listing.file_batches()] == [[t.name] for t in files]


def test_two_files_of_one_name_keep_their_own_batches() -> None:
    # Drive folders may hold two files of one name: batches are matched by position, not name.
    same = [FileTask("S_stock_20241204.xlsx", f"drive:{i}", 1, 0.0, "S", None) for i in range(3)]
    listing = listing_of(batch_files(same, 2, 1024), same)
    assert [[f.location for f in batch] for batch in listing.file_batches()] == [
        ["drive:0", "drive:1"],
        ["drive:2"],
    ]


def test_listing_records_the_batches_and_warns_when_it_enlarges_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config_file(REAL_CONFIG)
    config = config.model_copy(
        update={
            "settings": {**config.settings, "on_order_table": None},
            "airflow": config.airflow.model_copy(update={"files_per_task": 1}),
        }
    )
    layout = DataLayout(tmp_path)
    inbox = layout.inbox(config.name)
    inbox.mkdir(parents=True)
    for i in range(10):
        (inbox / f"S{i:02d}_stock_20241204.xlsx").write_bytes(b"x" * (i + 1))
    reference = layout.resolve("reference/suppliers.csv", tmp_path)
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text("sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n", encoding="utf-8")

    day = Day(config, layout, DATE, "run-1")
    with caplog.at_level(logging.WARNING, logger="autopo_pipelines.day.listing"):
        batches = list_day_batches(day, max_map_length=4)
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    listing = day.listing()
    assert listing is not None
    assert listing.files_per_task == 3
    assert listing.batches == [[t.name for t in batch] for batch in batches]
    assert [r.name for r in listing.routed] == [t.name for batch in batches for t in batch]
    warning = next(r.getMessage() for r in caplog.records if "max_map_length" in r.getMessage())
    assert "10 files at 1 per task" in warning and "(4)" in warning and "3 files per task instead" in warning

    caplog.clear()
    rerun = day.for_run("run-2")
    with caplog.at_level(logging.WARNING, logger="autopo_pipelines.day.listing"):
        assert len(list_day_batches(rerun, max_map_length=1024)) == 10
    assert not any("max_map_length" in r.getMessage() for r in caplog.records)
    relisted = rerun.listing()
    assert relisted is not None and relisted.files_per_task == 1


def test_a_batch_runs_every_file_and_reports_its_bad_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def run_file(day: Day, task: FileTask, disk: object = None) -> dict[str, Any]:
        ran.append(task.name[:3])
        if task.name.startswith("S01"):
            raise InputFileError(task.name, "required column missing: sku")
        return {"file_name": task.name, "status": "completed"}

    monkeypatch.setattr(file_run, "run_file", run_file)
    outcome = file_run.run_batch(Day(None, None, DATE, "run-1"), tasks(3))  # type: ignore[arg-type]
    assert ran == ["S00", "S01", "S02"]
    assert [r["file_name"][:3] for r in outcome.results] == ["S00", "S02"]
    assert outcome.failed == {"S01_stock_20241204.xlsx": "S01_stock_20241204.xlsx: required column missing: sku"}


def test_an_error_not_of_the_file_is_raised_after_the_batchs_other_files(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def run_file(day: Day, task: FileTask, disk: object = None) -> dict[str, Any]:
        ran.append(task.name[:3])
        if task.name.startswith(("S01", "S03")):
            raise OSError(28, "No space left on device")
        if task.name.startswith("S02"):
            raise InputFileError(task.name, "not an xlsx file")
        return {"file_name": task.name, "status": "completed"}

    monkeypatch.setattr(file_run, "run_file", run_file)
    with pytest.raises(OSError, match="No space left") as raised:
        file_run.run_batch(Day(None, None, DATE, "run-1"), tasks(5))  # type: ignore[arg-type]
    # Every file had its turn before the task fails to be retried; the note names the other one.
    assert ran == ["S00", "S01", "S02", "S03", "S04"]
    assert raised.value.__notes__ == ["also not transformed: S03_stock_20241204.xlsx (see the log)"]


def test_a_map_index_is_named_after_its_file_or_its_first_file() -> None:
    from autopo_pipelines.orchestration.dag_factory import bad_files_message, batch_label

    files = [t.as_dict() for t in tasks(3)]
    assert batch_label(files[:1]) == "S00_stock_20241204.xlsx"
    assert batch_label(files) == "S00_stock_20241204.xlsx (+2 more)"
    assert bad_files_message({"a.xlsx": "a.xlsx: bad"}, 1) == "a.xlsx: bad"
    assert bad_files_message({"a.xlsx": "a.xlsx: bad", "c.xlsx": "c.xlsx: worse"}, 3) == (
        "2 of 3 files failed: a.xlsx: bad; c.xlsx: worse"
    )


def test_auto_batches_a_big_day_and_keeps_a_small_one_per_file(tmp_path: Path) -> None:
    """The shipped stock_health config (files_per_task: auto, pool_size 4): 8 files are 8 tasks, 40 are 8 of 5."""
    config = load_config_file(REAL_CONFIG)
    assert config.airflow.files_per_task == "auto" and config.airflow.pool_size == 4
    config = config.model_copy(update={"settings": {**config.settings, "on_order_table": None}})
    reference = DataLayout(tmp_path).resolve("reference/suppliers.csv", tmp_path)
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text("sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n", encoding="utf-8")
    for files, sizes in [(8, [1] * 8), (40, [5] * 8), (33, [5] * 6 + [3])]:
        layout = DataLayout(tmp_path / f"day{files}")
        layout.inbox(config.name).mkdir(parents=True)
        layout.reference().mkdir(parents=True)
        (layout.reference() / "suppliers.csv").write_text(reference.read_text(encoding="utf-8"), encoding="utf-8")
        for i in range(files):
            (layout.inbox(config.name) / f"S{i:02d}_stock_20241204.xlsx").write_bytes(b"x" * (i + 1))
        day = Day(config, layout, DATE, "run-1")
        batches = list_day_batches(day, max_map_length=1024)
        assert [len(b) for b in batches] == sizes
        listing = day.listing()
        assert listing is not None and listing.files_per_task == sizes[0]


def test_auto_gives_a_reruns_unchanged_files_tasks_of_their_own(tmp_path: Path) -> None:
    """A rerun with files_per_task: auto: the files whose parts are reused share one task; new and changed
    files are batched as a day of that many files would be. A file whose part was made with other inputs
    (here: another supplier master) is not counted as unchanged."""
    import os
    import random

    from autopo_local.sample_day import write_store_file, write_supplier_master

    config = load_config_file(REAL_CONFIG)
    config = config.model_copy(update={"settings": {**config.settings, "on_order_table": None}})
    layout = DataLayout(tmp_path)
    skus = [f"SKU-{i:03d}" for i in range(4)]
    master = write_supplier_master(layout.reference() / "suppliers.csv", skus, random.Random(1))
    inbox = layout.inbox(config.name)
    stores = [f"S{i:02d}" for i in range(12)]
    for store in stores:
        write_store_file(inbox / f"{store}_stock_20241204.xlsx", store, DATE, skus, random.Random(store), style=0)

    first = Day(config, layout, DATE, "run-1")
    assert [len(b) for b in list_day_batches(first)] == [2] * 6  # 12 files, auto: 2 x pool_size tasks
    listing = first.listing()
    assert listing is not None
    outcome = file_run.run_batch(first, listing.routed)
    assert not outcome.failed

    changed = inbox / "S03_stock_20241204.xlsx"
    write_store_file(changed, "S03", DATE, skus[:2], random.Random(9), style=0)
    os.utime(changed, (1_800_000_000, 1_800_000_000))
    write_store_file(inbox / "S99_stock_20241204.xlsx", "S99", DATE, skus, random.Random(99), style=0)
    rerun = Day(config, layout, DATE, "run-2")
    batches = list_day_batches(rerun)
    assert names(batches) == [["S03"], ["S99"], [store for store in stores if store != "S03"]]
    relisted = rerun.listing()
    assert relisted is not None
    assert [t.name for t in relisted.routed] == [t.name for batch in batches for t in batch]
    outcome = file_run.run_batch(rerun, batches[-1])
    assert {result["status"] for result in outcome.results} == {"skipped"}

    master.write_text(master.read_text(encoding="utf-8") + "SKU-999,SUP-9,Other,7,1,1\n", encoding="utf-8")
    other_inputs = Day(config, layout, DATE, "run-3")
    assert [len(b) for b in list_day_batches(other_inputs)] == [2] * 6 + [1]  # 13 files, nothing reused
