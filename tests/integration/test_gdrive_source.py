"""The Google Drive source against a fake Drive v3 API on loopback, through the Google
provider's GoogleDriveHook and an Airflow connection with anonymous credentials whose
``drive_api_endpoint`` extra points at the fake."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autopo_pipelines.aggregate import part_directory
from autopo_pipelines.config import GdriveSourceConfig, PipelineConfig
from autopo_pipelines.day import Day
from autopo_pipelines.day.core import source_for
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.sources import SourceError, SourceFile
from autopo_pipelines.sources.gdrive import (
    ChecksumMismatchError,
    DriveEndpointError,
    DriveFolderError,
    GdriveSource,
)
from drive_server import FakeDrive, drive_connection, drive_server

pytestmark = pytest.mark.integration

FIRST = b"PK\x03\x04 first workbook " + bytes(range(256)) * 40
SECOND = b"PK\x03\x04 second workbook " + bytes(range(255, -1, -1)) * 30
EXPORT = b"PK\x03\x04 the sheet as xlsx " + bytes(range(256)) * 10
STORES = [f"S{n:03}_po_20240305.xlsx" for n in range(1, 8)]  # more than one page (the fake gives 3)


@dataclass
class Drive:
    fake: FakeDrive
    folder: str
    ids: dict[str, str]


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[Drive]:
    fake = FakeDrive(max_page_size=3)
    folder = fake.add_folder("po uploads")
    ids = {name: fake.add_file(folder, name, FIRST + name.encode()) for name in STORES}
    ids["S010 po 20240305.xlsx"] = fake.add_file(folder, "S010 po 20240305.xlsx", SECOND)
    ids["sheet"] = fake.add_sheet(folder, "S020_po_20240305", EXPORT)
    ids["lock"] = fake.add_file(folder, "~$S001_po_20240305.xlsx", b"lock")
    ids["archive"] = fake.add_folder("archive", folder)
    fake.add_file(ids["archive"], "S030_po_20240304.xlsx", FIRST)
    other = fake.add_folder("elsewhere")
    fake.add_file(other, "S040_po_20240305.xlsx", SECOND)
    with drive_server(fake) as root:
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", drive_connection(root))
        yield Drive(fake, folder, ids)


def md5_of(content: bytes) -> str:
    return "md5:" + hashlib.md5(content).hexdigest()


def by_name(source: GdriveSource) -> dict[str, SourceFile]:
    return {file.name: file for file in source.list_files()}


def test_lists_the_candidate_files_in_the_folder_across_pages(drive: Drive) -> None:
    source = GdriveSource(drive.folder)
    files = source.list_files()
    assert [f.name for f in files] == [*STORES, "S010 po 20240305.xlsx", "S020_po_20240305.xlsx"]
    lists = drive.fake.list_requests()
    assert len(lists) > 1  # 10 entries, 3 to a page: paging was followed
    assert lists[0]["q"] == [f"'{drive.folder}' in parents and trashed = false"]
    assert lists[0]["supportsAllDrives"] == lists[0]["includeItemsFromAllDrives"] == ["true"]
    assert "pageToken" not in lists[0] and "pageToken" in lists[1]
    first = by_name(source)[STORES[0]]
    assert first.location == f"gdrive://{drive.ids[STORES[0]]}"
    assert first.size_bytes == len(FIRST + STORES[0].encode())
    stored = drive.fake.files[drive.ids[STORES[0]]]
    assert first.modified == pytest.approx(stored.modified.timestamp())
    assert "archive" not in {f.name for f in files}  # the subfolder and what is in it
    assert source.describe() == f"Google Drive folder {drive.folder}"


def test_a_shared_drive_is_listed_with_its_corpus(drive: Drive) -> None:
    files = GdriveSource(drive.folder, drive_id="0AsharedDrive").list_files()
    assert len(files) == len(STORES) + 2
    query = drive.fake.list_requests()[0]
    assert query["corpora"] == ["drive"] and query["driveId"] == ["0AsharedDrive"]


def test_checksum_is_drives_md5_and_matches_the_fetched_copy(drive: Drive, tmp_path: Path) -> None:
    # A small chunk size: the download takes several ranged requests.
    source = GdriveSource(drive.folder, chunk_size=1000)
    files = by_name(source)
    downloads = tmp_path / "downloads"
    for name, content in [(STORES[0], FIRST + STORES[0].encode()), ("S010 po 20240305.xlsx", SECOND)]:
        checksum = source.checksum(files[name])
        assert checksum == md5_of(content)
        fetched = source.fetch(files[name], downloads)
        assert fetched.checksum == checksum
        assert fetched.path.parent == downloads
        assert fetched.path.read_bytes() == content
    media = [q for path, q in drive.fake.requests if q.get("alt") == ["media"]]
    assert len(media) > 2
    # The name with spaces gets a safe local name; no temporary files are left.
    assert len(list(downloads.iterdir())) == 2
    assert " " not in "".join(p.name for p in downloads.iterdir())


def test_a_google_sheet_is_exported_as_xlsx_and_checksummed_by_its_version(drive: Drive, tmp_path: Path) -> None:
    source = GdriveSource(drive.folder)
    sheet = by_name(source)["S020_po_20240305.xlsx"]
    assert sheet.location == f"gdrive://{drive.ids['sheet']}"
    stored = drive.fake.files[drive.ids["sheet"]]
    expected = f"sheets:{stored.metadata()['modifiedTime']}:{stored.version}"
    assert source.checksum(sheet) == expected
    fetched = source.fetch(sheet, tmp_path / "one")
    assert fetched.checksum == expected
    assert fetched.path.read_bytes() == EXPORT
    assert any(path.endswith("/export") for path, _ in drive.fake.requests)
    # Unchanged: the same checksum on a rerun. Edited: a new version, a new checksum.
    assert source.fetch(sheet, tmp_path / "two").checksum == expected
    drive.fake.update(drive.ids["sheet"], EXPORT + b"a new row")
    changed = source.checksum(sheet)
    assert changed != expected and changed.startswith("sheets:")
    assert source.fetch(sheet, tmp_path / "three").checksum == changed


def test_a_sheet_already_named_xlsx_keeps_its_name(drive: Drive) -> None:
    drive.fake.add_sheet(drive.folder, "S021_po_20240305.XLSX", EXPORT)
    assert "S021_po_20240305.XLSX" in by_name(GdriveSource(drive.folder))


def test_refetching_unchanged_content_gives_the_same_checksum(drive: Drive, tmp_path: Path) -> None:
    source = GdriveSource(drive.folder)
    file = by_name(source)[STORES[1]]
    content = FIRST + STORES[1].encode()
    first = source.fetch(file, tmp_path / "one")
    # Uploaded again with the same bytes: a new revision, the same content.
    drive.fake.update(drive.ids[STORES[1]], content)
    again = GdriveSource(drive.folder)
    second = again.fetch(by_name(again)[STORES[1]], tmp_path / "two")
    assert second.checksum == first.checksum == again.checksum(file)
    # Changed content is a changed checksum.
    drive.fake.update(drive.ids[STORES[1]], content + b"more rows")
    third = again.fetch(file, tmp_path / "three")
    assert third.checksum == md5_of(content + b"more rows") != first.checksum


def test_a_file_deleted_since_the_listing_is_file_not_found(drive: Drive, tmp_path: Path) -> None:
    source = GdriveSource(drive.folder)
    files = by_name(source)
    drive.fake.delete(drive.ids["S010 po 20240305.xlsx"])
    drive.fake.delete(drive.ids["sheet"])
    downloads = tmp_path / "downloads"
    for name in ["S010 po 20240305.xlsx", "S020_po_20240305.xlsx"]:
        with pytest.raises(FileNotFoundError, match="no longer at the source"):
            source.checksum(files[name])
        with pytest.raises(FileNotFoundError):
            source.fetch(files[name], downloads)
    # Trashed is gone too.
    drive.fake.files[drive.ids[STORES[0]]].trashed = True
    with pytest.raises(FileNotFoundError, match="trash"):
        source.fetch(files[STORES[0]], downloads)
    assert not downloads.exists() or not any(downloads.iterdir())


def test_a_corrupted_download_is_refused(drive: Drive, tmp_path: Path) -> None:
    source = GdriveSource(drive.folder)
    file = by_name(source)[STORES[0]]
    content = bytearray(FIRST + STORES[0].encode())
    content[100] ^= 0xFF
    drive.fake.corrupt(drive.ids[STORES[0]], bytes(content))
    downloads = tmp_path / "downloads"
    with pytest.raises(ChecksumMismatchError, match=STORES[0]):
        source.fetch(file, downloads)
    assert list(downloads.iterdir()) == []  # neither the copy nor its temporary file


def test_a_missing_folder_is_a_clear_source_error(drive: Drive) -> None:
    with pytest.raises(DriveFolderError, match="Google Drive folder 'no-such-folder' .*not found") as raised:
        GdriveSource("no-such-folder").list_files()
    assert isinstance(raised.value, SourceError)
    # A file's id given as the folder: Drive lists nothing, the source says why.
    with pytest.raises(DriveFolderError, match="not a folder"):
        GdriveSource(drive.ids[STORES[0]]).list_files()
    # An empty folder is just empty.
    assert GdriveSource(drive.fake.add_folder("empty")).list_files() == []


def test_the_day_uses_the_gdrive_source_for_a_gdrive_config(drive: Drive, tmp_path: Path) -> None:
    config = PipelineConfig.model_validate(
        {
            "name": "po_gdrive",
            "transform": "autopo_pipelines.pipelines.po_snapshots",
            "file_pattern": r"^(?P<store>S\d+)_po_(?P<date>\d{8})\.xlsx$",
            "columns": {"sku": {"required": True, "aliases": ["SKU"]}},
            "source": {"kind": "gdrive", "folder_id": drive.folder},
        }
    )
    assert config.source == GdriveSourceConfig(kind="gdrive", folder_id=drive.folder)
    source = source_for(config, DataLayout(tmp_path))
    assert isinstance(Day(config, DataLayout(tmp_path), dt.date(2024, 3, 5)).source(), GdriveSource)
    assert isinstance(source, GdriveSource)
    assert (source.folder_id, source.drive_id, source.gcp_conn_id) == (drive.folder, None, "google_cloud_default")
    assert len(source.list_files()) == len(STORES) + 2


def test_two_edits_of_a_sheet_within_one_minute_are_two_versions(drive: Drive, tmp_path: Path) -> None:
    source = GdriveSource(drive.folder)
    sheet = by_name(source)["S020_po_20240305.xlsx"]
    checksums = [source.checksum(sheet)]
    # Edited twice more within the same minute, the last time within the same second.
    for content, after in [(EXPORT + b"2", dt.timedelta(seconds=20)), (EXPORT + b"3", dt.timedelta(milliseconds=250))]:
        drive.fake.update(drive.ids["sheet"], content, after=after)
        checksums.append(source.checksum(sheet))
        assert source.fetch(sheet, tmp_path / str(len(checksums))).checksum == checksums[-1]
    stored = drive.fake.files[drive.ids["sheet"]]
    assert stored.metadata()["modifiedTime"] == "2024-03-05T06:00:20.250Z"
    assert len(set(checksums)) == 3
    # A part is reused by (file, checksum): each version must get its own, or a stale one is reused.
    parts = {part_directory(tmp_path / "intermediate", sheet.name, checksum) for checksum in checksums}
    assert len(parts) == 3


# --- where the connection's token may go ---------------------------------------------------------


def connection_with(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, **extra}}),
    )


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ({"drive_api_endpoint": "http://drive.example.com/"}, "only on this machine"),
        ({"drive_api_endpoint": "https://drive.example.com/"}, "only on this machine"),
        ({"drive_api_endpoint": "http://127.0.0.1@drive.example.com/"}, "user name or password"),
        ({"drive_api_endpoint": "http://drive.example.com/", "allow_custom_endpoint": True}, "needs https"),
        ({"drive_api_endpoint": "https://drive.example.com/", "allow_custom_endpoint": "no"}, "only on this machine"),
    ],
)
def test_a_drive_endpoint_elsewhere_is_refused_before_any_request(
    drive: Drive, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], refusal: str
) -> None:
    connection_with(monkeypatch, **extra)
    with pytest.raises(DriveEndpointError, match=refusal) as raised:
        GdriveSource(drive.folder).list_files()
    message = str(raised.value)
    assert "connection 'google_cloud_default'" in message and "drive_api_endpoint" in message
    assert isinstance(raised.value, SourceError)
    assert drive.fake.requests == []


@pytest.mark.parametrize(
    "extra",
    [
        {},  # Google's own
        {"drive_api_endpoint": "https://www.googleapis.com/"},
        {"drive_api_endpoint": "http://localhost:8080/"},
        {"drive_api_endpoint": "http://127.0.0.2:8080"},
        {"drive_api_endpoint": "http://[::1]:8080/"},
        {"drive_api_endpoint": "https://drive-proxy.example.com/", "allow_custom_endpoint": True},
        {"drive_api_endpoint": "https://drive-proxy.example.com/", "allow_custom_endpoint": "true"},
    ],
)
def test_the_drive_endpoint_is_googles_this_machines_or_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    connection_with(monkeypatch, **extra)
    source = GdriveSource("folder")
    source._files()  # builds the client, which sends nothing yet
    assert source._service is not None
    root = extra.get("drive_api_endpoint", "https://www.googleapis.com/").rstrip("/")
    assert source._service._baseUrl == f"{root}/drive/v3/"


def test_the_connections_own_credentials_and_scope_authorize_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service-account key (its token endpoint on loopback): the Drive requests carry the token the
    key got, asked for with the connection's scope only, as GoogleDriveHook's credentials make it."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    seen: list[tuple[str, str | None]] = []
    scopes: list[str] = []

    class Google(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the token endpoint
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            claims = form["assertion"][0].split(".")[1]
            scopes.append(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["scope"])
            self._json({"access_token": "token-of-the-key", "expires_in": 3600, "token_type": "Bearer"})

        def do_GET(self) -> None:  # noqa: N802 - the Drive API: an empty folder
            seen.append((self.path.split("?")[0], self.headers.get("Authorization")))
            if self.path.startswith("/drive/v3/files/"):
                self._json({"id": "folder", "mimeType": "application/vnd.google-apps.folder", "trashed": False})
            else:
                self._json({"files": []})

        def _json(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Google)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}/"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    keyfile = {
        "type": "service_account",
        "project_id": "autopo-test",
        "private_key_id": "k1",
        "private_key": pem.decode(),
        "client_email": "autopo@autopo-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{root}token",
    }
    extra = {
        "keyfile_dict": json.dumps(keyfile),
        "scope": "https://www.googleapis.com/auth/drive.readonly",
        "drive_api_endpoint": root,
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
    )
    try:
        assert GdriveSource("folder").list_files() == []
    finally:
        server.shutdown()
        server.server_close()
    assert scopes == ["https://www.googleapis.com/auth/drive.readonly"]
    assert seen == [
        ("/drive/v3/files", "Bearer token-of-the-key"),
        ("/drive/v3/files/folder", "Bearer token-of-the-key"),
    ]
