"""The day's state, parts and outputs in an object store, with fsspec's in-memory store standing in.

An object store has no rename and no folders: each write here must still leave a reader either the
whole new thing or the whole old thing, write the same bytes as a local folder, and leave nothing
behind on the worker's disk. (The real GCS emulator runs a whole day in
tests/e2e/test_object_store_root.py.)
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from test_aggregate import (
    EXPECTED_EMERGENCY,
    EXPECTED_M2,
    EXPECTED_REJECTS,
    EXPECTED_SNAPSHOT,
    outcome,
    run_day,
    snap,
    three_parts,
)
from upath import UPath

from autopo_pipelines import storage
from autopo_pipelines.aggregate import (
    PART_META,
    REJECTS_FILE,
    REJECTS_LINES_FILE,
    ROWS_FILE,
    SNAPSHOT_LINES_FILE,
    read_part_meta,
    write_part,
)
from autopo_pipelines.day.state import DayState, FileResult
from autopo_pipelines.layout import DataLayout, data_root
from autopo_pipelines.pipelines import stock_health as sh

DAY = dt.date(2024, 12, 4)


@pytest.fixture
def bucket() -> Iterator[UPath]:
    """A fresh prefix of the in-memory store (shared by the process, so each test gets its own)."""
    root = UPath(f"memory://bucket/{uuid.uuid4().hex}")
    yield root
    storage.remove_tree(root)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's temporary folder, to see that nothing is left in it."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_the_memory_store_is_not_taken_for_a_local_folder(bucket: UPath) -> None:
    assert not storage.is_local(bucket)
    assert storage.is_local(UPath("/tmp")) and storage.is_local(Path("/tmp"))


def test_state_records_round_trip_and_missing_ones_read_as_none(bucket: UPath, scratch: Path) -> None:
    state = DayState(bucket / "intermediate" / "stock_health" / "20241204")
    assert state.result("gs://b/S1.xlsx", "S1.xlsx") is None
    record = FileResult("S1.xlsx", "run-1", "completed", "md5:00ff", part=str(bucket / "parts" / "p"))
    state.save_result("gs://b/S1.xlsx", "S1.xlsx", record)
    assert state.result("gs://b/S1.xlsx", "S1.xlsx") == record
    state.forget_load()  # nothing to forget: no error
    state.start_attempt()
    assert list(scratch.iterdir()) == []


def test_a_part_in_the_store_reads_back_as_written_in_a_folder(bucket: UPath, tmp_path: Path, scratch: Path) -> None:
    result = outcome([snap("S1", "a", stock_on_hand=5.0)])
    local = write_part(tmp_path / "part", result, {"file_name": "S1.xlsx"})
    remote = write_part(bucket / "part", result, {"file_name": "S1.xlsx"})
    assert remote == local
    assert read_part_meta(bucket / "part") == local
    for name in (ROWS_FILE, REJECTS_FILE):
        assert storage.read_parquet(bucket / "part" / name).equals(storage.read_parquet(tmp_path / "part" / name))
    assert read_part_meta(bucket / "missing") is None
    assert list(scratch.iterdir()) == []


def test_a_part_replaced_in_the_store_never_shows_the_old_meta_with_the_new_rows(
    bucket: UPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = bucket / "part"
    write_part(directory, outcome([snap("S1", "old")]), {"file_name": "S1.xlsx", "version": 1})
    uploads = watch_uploads(monkeypatch, directory)
    write_part(directory, outcome([snap("S1", "new")]), {"file_name": "S1.xlsx", "version": 2})
    assert [name for name, _ in uploads] == [ROWS_FILE, REJECTS_FILE, PART_META]
    assert all(meta is None for _, meta in uploads)  # the old marker went first, the new one last
    meta = read_part_meta(directory)
    assert meta is not None and meta["version"] == 2
    assert storage.read_parquet(directory / ROWS_FILE)["sku"].tolist() == ["new"]


def test_a_part_with_ready_lines_is_uploaded_file_by_file_with_its_marker_last(
    bucket: UPath, tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = bucket / "part"
    write_part(directory, outcome([snap("S1", "old")]), {"file_name": "S1.xlsx", "partition": "S1"})
    uploads = watch_uploads(monkeypatch, directory)
    result = outcome([snap("S1", "b"), snap("S1", "a")])
    meta = write_part(directory, result, {"file_name": "S1.xlsx", "partition": "S1"}, definition=sh.TRANSFORM)
    assert [name for name, _ in uploads] == [
        ROWS_FILE,
        REJECTS_FILE,
        SNAPSHOT_LINES_FILE,
        REJECTS_LINES_FILE,
        PART_META,
    ]
    assert all(meta is None for _, meta in uploads)
    local = write_part(tmp_path / "part", result, {"file_name": "S1.xlsx", "partition": "S1"}, definition=sh.TRANSFORM)
    assert meta == local and read_part_meta(directory) == local
    for name in (SNAPSHOT_LINES_FILE, REJECTS_LINES_FILE):
        assert storage.read_bytes(directory / name) == (tmp_path / "part" / name).read_bytes()
    assert list(scratch.iterdir()) == []


def test_the_day_outputs_from_ready_lines_in_the_store_are_those_from_rows(bucket: UPath, scratch: Path) -> None:
    ready = run_day(three_parts(bucket / "ready"), bucket / "from_lines")
    earlier = run_day(three_parts(bucket / "earlier", ready=False), bucket / "from_rows")
    assert ready.rows_out == earlier.rows_out and ready.status_counts == earlier.status_counts
    for name in ("20241204.csv", "20241204_emergency.csv", "20241204_m2.csv", "20241204_rejects.csv"):
        assert (bucket / "from_lines" / name).read_bytes() == (bucket / "from_rows" / name).read_bytes(), name
    assert list(scratch.iterdir()) == []


def test_a_part_that_fails_half_way_leaves_no_part(bucket: UPath, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = bucket / "part"
    write_part(directory, outcome([snap("S1", "old")]), {"file_name": "S1.xlsx"})
    real_upload = storage.upload

    def failing(local: Path, target: UPath) -> None:
        if target.name == REJECTS_FILE:
            raise OSError("connection reset")
        real_upload(local, target)

    monkeypatch.setattr(storage, "upload", failing)
    with pytest.raises(OSError, match="connection reset"):
        write_part(directory, outcome([snap("S1", "new")]), {"file_name": "S1.xlsx"})
    assert read_part_meta(directory) is None  # transformed again next time, never a mix


def test_the_day_outputs_in_the_store_are_the_bytes_of_a_local_folder(
    bucket: UPath, tmp_path: Path, scratch: Path
) -> None:
    parts = three_parts(bucket / "intermediate")
    seeds = bucket / "seeds"
    result = run_day(parts, seeds)
    expected = {
        "20241204.csv": EXPECTED_SNAPSHOT,
        "20241204_emergency.csv": EXPECTED_EMERGENCY,
        "20241204_m2.csv": EXPECTED_M2,
        "20241204_rejects.csv": EXPECTED_REJECTS,
    }
    assert {p.name: p.read_text(encoding="utf-8") for p in seeds.iterdir()} == expected
    assert sorted(result.files) == sorted(expected)
    assert result.files["20241204.csv"] == str(seeds / "20241204.csv")
    assert list(scratch.iterdir()) == []


def test_day_outputs_failing_in_the_store_keep_the_previous_outputs(bucket: UPath, scratch: Path) -> None:
    parts = three_parts(bucket / "intermediate")
    seeds = bucket / "seeds"
    storage.write_bytes(seeds / "20241204.csv", b"previous complete file\n")
    (parts[1].directory / ROWS_FILE).unlink()  # a part that cannot be read
    with pytest.raises(FileNotFoundError):
        run_day(parts, seeds, files_per_batch=1)
    assert [p.name for p in seeds.iterdir()] == ["20241204.csv"]
    assert (seeds / "20241204.csv").read_bytes() == b"previous complete file\n"
    assert list(scratch.iterdir()) == []


def test_a_folder_replaced_in_the_store_holds_only_the_new_files(bucket: UPath, tmp_path: Path) -> None:
    target = bucket / "inputs"
    storage.write_bytes(target / "old.parquet", b"old")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "suppliers.parquet").write_bytes(b"new")
    storage.replace_folder(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["suppliers.parquet"]
    assert not staging.exists()
    copy = storage.download_folder(target, tmp_path / "copy")
    assert (copy / "suppliers.parquet").read_bytes() == b"new"


def test_a_recorded_path_is_found_again_under_its_root(bucket: UPath, tmp_path: Path) -> None:
    layout = DataLayout(bucket)
    part = layout.intermediate("stock_health", DAY) / "parts" / "S1.xlsx.0123"
    found = layout.locate(str(part))
    assert str(found) == str(part) and not storage.is_local(found)
    assert DataLayout(tmp_path).locate(str(tmp_path / "x")) == tmp_path / "x"


def test_a_url_data_root_is_not_read_as_a_local_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOPO_DATA_DIR", "gs://bucket/prefix")
    with pytest.raises(ValueError, match="object-store location"):
        data_root()
    monkeypatch.setenv("AUTOPO_DATA_DIR", f"file://{tmp_path}")
    assert data_root() == tmp_path


def test_a_recorded_url_is_found_again_whatever_connection_it_names(bucket: UPath) -> None:
    layout = DataLayout(bucket)
    root = str(bucket).removeprefix("memory://")
    assert str(layout.locate(f"memory://old_conn@{root}/seeds/x.csv")) == str(bucket / "seeds" / "x.csv")
    with pytest.raises(ValueError, match="not under the data root"):
        layout.locate("memory://other-bucket/seeds/x.csv")


def test_a_recorded_path_under_a_whole_bucket_is_found_again() -> None:
    """A bucket without a prefix prints with a trailing slash (gs://conn@bucket/); its paths do not."""
    from airflow.sdk import ObjectStoragePath

    # No connection: a path is only named here, and Airflow would keep a filesystem made for it.
    root = ObjectStoragePath("gs://autopo-data")
    layout = DataLayout(cast(UPath, root))
    part = layout.intermediate("stock_health", DAY) / "parts" / "S1.xlsx.0123"
    assert str(root) == "gs://autopo-data/"
    assert str(layout.locate(str(part))) == str(part)
    assert str(
        layout.locate(f"gs://google_cloud_default@autopo-data/{str(part).removeprefix('gs://autopo-data/')}")
    ) == str(part)


def test_configured_paths_under_a_bucket_root_are_relative_to_it(bucket: UPath, tmp_path: Path) -> None:
    layout = DataLayout(bucket)
    assert str(layout.resolve("exports/stock", layout.seeds("stock_health"))) == str(bucket / "exports" / "stock")
    with pytest.raises(ValueError, match="a folder on one machine"):
        layout.resolve(str(tmp_path / "out"), layout.seeds("stock_health"))
    with pytest.raises(ValueError, match="not a URL"):
        layout.resolve("gs://other/out", layout.seeds("stock_health"))
    assert DataLayout(tmp_path).resolve(str(tmp_path / "out"), tmp_path) == tmp_path / "out"


def test_a_folder_the_store_does_not_have_downloads_as_an_empty_one(bucket: UPath, tmp_path: Path) -> None:
    """A pipeline without reference data leaves inputs/ empty, and a bucket keeps no empty folder."""
    copy = storage.download_folder(bucket / "inputs", tmp_path / "copy")
    assert copy.is_dir() and list(copy.iterdir()) == []
    storage.write_bytes(bucket / "inputs" / "deeper" / "x.parquet", b"x")
    copy = storage.download_folder(bucket / "inputs", tmp_path / "again")
    assert (copy / "deeper" / "x.parquet").read_bytes() == b"x"


def watch_uploads(monkeypatch: pytest.MonkeyPatch, directory: UPath) -> list[tuple[str, object]]:
    """Each file uploaded from now on, with the part's meta a reader would find at that moment."""
    uploads: list[tuple[str, object]] = []
    real_upload = storage.upload

    def watched(local: Path, target: UPath) -> None:
        uploads.append((target.name, read_part_meta(directory)))
        real_upload(local, target)

    monkeypatch.setattr(storage, "upload", watched)
    return uploads
