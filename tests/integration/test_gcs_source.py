"""The GCS source against a real storage emulator on loopback, through the Google
provider's GCSHook and an Airflow connection with anonymous credentials."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gcp_storage_emulator.server import Server
from google.cloud import storage

from autopo_pipelines.config import GcsSourceConfig, PipelineConfig
from autopo_pipelines.day import Day
from autopo_pipelines.day.core import source_for
from autopo_pipelines.day.listing import readiness
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.sources import SourceError, SourceFile
from autopo_pipelines.sources.gcs import ChecksumMismatchError, GcsSource
from gcs_emulator import gcs_emulator

pytestmark = pytest.mark.integration

BUCKET = "autopo-uploads"
PREFIX = "stores/po"
PROJECT = "autopo-test"
FIRST = b"PK\x03\x04 first workbook " + bytes(range(256)) * 40
SECOND = b"PK\x03\x04 second workbook " + bytes(range(255, -1, -1)) * 30


@dataclass
class Emulator:
    client: storage.Client
    bucket: storage.Bucket
    server: Server

    def upload(self, name: str, content: bytes) -> None:
        self.bucket.blob(name).upload_from_string(content, content_type="application/octet-stream")

    def read_stored(self, name: str) -> bytes:
        return self.server._storage.get_file(BUCKET, name)

    def overwrite_stored(self, name: str, content: bytes) -> None:
        """Replace the blob's bytes in the emulator's store, leaving its metadata (size, md5,
        crc32c) as it was: what a corruption between the store and the client looks like.
        The emulator has no public way to do this; its storage object is private."""
        self.server._storage._store.write_bytes(f"{BUCKET}/{name}", content)


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with gcs_emulator(tmp_path / "gcs", monkeypatch) as (client, server):
        bucket = client.create_bucket(BUCKET)
        emulator = Emulator(client, bucket, server)
        emulator.upload(f"{PREFIX}/S001_po_20240305.xlsx", FIRST)
        emulator.upload(f"{PREFIX}/S002 po 20240305.xlsx", SECOND)
        emulator.upload(f"{PREFIX}/archive/S003_po_20240304.xlsx", FIRST)
        emulator.upload(f"{PREFIX}/~$S001_po_20240305.xlsx", b"lock")
        emulator.upload(f"{PREFIX}/", b"")
        emulator.upload("elsewhere/S004_po_20240305.xlsx", SECOND)
        yield emulator


def md5_of(content: bytes) -> str:
    return "md5:" + hashlib.md5(content).hexdigest()


def by_name(source: GcsSource) -> dict[str, SourceFile]:
    return {file.name: file for file in source.list_files()}


def test_lists_only_the_candidate_files_directly_under_the_prefix(emulator: Emulator) -> None:
    source = GcsSource(BUCKET, PREFIX)
    files = source.list_files()
    assert [f.name for f in files] == ["S001_po_20240305.xlsx", "S002 po 20240305.xlsx"]
    first, second = files
    assert first.location == f"gs://{BUCKET}/{PREFIX}/S001_po_20240305.xlsx"
    assert (first.size_bytes, second.size_bytes) == (len(FIRST), len(SECOND))
    blob = emulator.bucket.get_blob(f"{PREFIX}/S001_po_20240305.xlsx")
    assert first.modified == pytest.approx(blob.updated.timestamp())
    assert source.describe() == f"gs://{BUCKET}/{PREFIX}/"
    # A trailing slash in the config is the same folder.
    assert GcsSource(BUCKET, PREFIX + "/").list_files() == files


def test_checksum_is_the_stores_and_matches_the_fetched_copy(emulator: Emulator, tmp_path: Path) -> None:
    source = GcsSource(BUCKET, PREFIX)
    files = by_name(source)
    downloads = tmp_path / "downloads"
    for name, content in [("S001_po_20240305.xlsx", FIRST), ("S002 po 20240305.xlsx", SECOND)]:
        checksum = source.checksum(files[name])
        assert checksum == md5_of(content)
        fetched = source.fetch(files[name], downloads)
        assert fetched.checksum == checksum
        assert fetched.path.parent == downloads
        assert fetched.path.read_bytes() == content
    # The name with spaces gets a safe local name of its own; no temporary files are left.
    assert sorted(p.name for p in downloads.iterdir()) == sorted(
        fetched.path.name for fetched in [source.fetch(f, downloads) for f in files.values()]
    )
    assert " " not in "".join(p.name for p in downloads.iterdir())


def test_refetching_unchanged_content_gives_the_same_checksum(emulator: Emulator, tmp_path: Path) -> None:
    source = GcsSource(BUCKET, PREFIX)
    file = by_name(source)["S001_po_20240305.xlsx"]
    first = source.fetch(file, tmp_path / "one")
    # Uploaded again with the same bytes: a new generation, the same content.
    emulator.upload(f"{PREFIX}/S001_po_20240305.xlsx", FIRST)
    again = GcsSource(BUCKET, PREFIX)
    second = again.fetch(by_name(again)["S001_po_20240305.xlsx"], tmp_path / "two")
    assert second.checksum == first.checksum == again.checksum(file)
    # Changed content is a changed checksum.
    emulator.upload(f"{PREFIX}/S001_po_20240305.xlsx", FIRST + b"more rows")
    third = again.fetch(file, tmp_path / "three")
    assert third.checksum == md5_of(FIRST + b"more rows") != first.checksum


def test_a_blob_deleted_since_the_listing_is_file_not_found(emulator: Emulator, tmp_path: Path) -> None:
    source = GcsSource(BUCKET, PREFIX)
    file = by_name(source)["S002 po 20240305.xlsx"]
    emulator.bucket.blob(f"{PREFIX}/S002 po 20240305.xlsx").delete()
    with pytest.raises(FileNotFoundError):
        source.checksum(file)
    with pytest.raises(FileNotFoundError):
        source.fetch(file, tmp_path / "downloads")
    assert not (tmp_path / "downloads").exists() or not any((tmp_path / "downloads").iterdir())


def test_a_corrupted_download_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    source = GcsSource(BUCKET, PREFIX)
    file = by_name(source)["S001_po_20240305.xlsx"]
    # Flip one byte of the stored content behind the emulator's back: it still reports the
    # original md5 and crc32c, and serves bytes that do not match them.
    name = f"{PREFIX}/S001_po_20240305.xlsx"
    content = bytearray(emulator.read_stored(name))
    assert bytes(content) == FIRST
    content[100] ^= 0xFF
    emulator.overwrite_stored(name, bytes(content))
    blob = emulator.bucket.get_blob(f"{PREFIX}/S001_po_20240305.xlsx")
    assert base64.b64decode(blob.md5_hash).hex() == hashlib.md5(FIRST).hexdigest()

    downloads = tmp_path / "downloads"
    with pytest.raises(ChecksumMismatchError, match="S001_po_20240305.xlsx"):
        source.fetch(file, downloads)
    assert list(downloads.iterdir()) == []  # neither the copy nor its temporary file


def test_the_day_uses_the_gcs_source_for_a_gcs_config(emulator: Emulator, tmp_path: Path) -> None:
    config = PipelineConfig.model_validate(
        {
            "name": "po_gcs",
            "transform": "autopo_pipelines.pipelines.po_snapshots",
            "file_pattern": r"^(?P<store>S\d+)_po_(?P<date>\d{8})\.xlsx$",
            "columns": {"sku": {"required": True, "aliases": ["SKU"]}},
            "source": {"kind": "gcs", "bucket": BUCKET, "prefix": PREFIX},
        }
    )
    assert config.source == GcsSourceConfig(kind="gcs", bucket=BUCKET, prefix=PREFIX)
    source = source_for(config, DataLayout(tmp_path))
    assert isinstance(Day(config, DataLayout(tmp_path), dt.date(2024, 3, 5)).source(), GcsSource)
    assert isinstance(source, GcsSource)
    assert [f.name for f in source.list_files()] == ["S001_po_20240305.xlsx", "S002 po 20240305.xlsx"]


def test_a_missing_bucket_is_a_clear_source_error(emulator: Emulator) -> None:
    with pytest.raises(SourceError, match="bucket 'no-such-bucket' does not exist; check source.bucket in the config"):
        GcsSource("no-such-bucket", PREFIX).list_files()


def test_the_sensor_sees_files_arrive_in_the_bucket_and_honours_expected_stores_and_cutoff(
    emulator: Emulator, tmp_path: Path
) -> None:
    """readiness() is what the reschedule-mode sensor asks at each poke; here the files arrive over time."""
    from autopo_pipelines.config import default_config_dir, load_config_file

    base = load_config_file(default_config_dir() / "stock_health.yaml")
    config = base.model_copy(
        update={
            "source": GcsSourceConfig(kind="gcs", bucket=BUCKET, prefix="stock"),
            "expected_stores": ["S1", "S2"],
            "cutoff": dt.time(10, 0),
        }
    )
    layout = DataLayout(tmp_path / "data")
    day = Day(config, layout, dt.date(2024, 3, 5))
    early = dt.datetime(2024, 3, 5, 1, 0, tzinfo=dt.UTC)  # 08:00 Asia/Jakarta, before the 10:00 cutoff
    assert readiness(day, early).reason == "no file yet"
    emulator.upload("stock/S1_stock_20240305.xlsx", FIRST)
    waiting = readiness(day, early)
    assert (waiting.ready, waiting.missing_stores) == (False, ["S2"])
    late = dt.datetime(2024, 3, 5, 3, 30, tzinfo=dt.UTC)  # 10:30 local: the cutoff has passed
    assert readiness(day, late).ready
    emulator.upload("stock/S2_stock_20240305.xlsx", SECOND)
    complete = readiness(day, early)
    assert (complete.ready, complete.files) == (True, ["S1_stock_20240305.xlsx", "S2_stock_20240305.xlsx"])
