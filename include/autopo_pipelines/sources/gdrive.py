"""A Google Drive folder (in My Drive or a shared drive) as a source.

Credentials come only from the Airflow connection (``gcp_conn_id``) through the
Google provider's ``GoogleDriveHook``; nothing here reads or logs a secret. The
connection needs the Drive scope in its ``scope`` extra (for example
``https://www.googleapis.com/auth/drive.readonly``; the default cloud-platform
scope does not reach Drive), and the folder must be shared with its account.

Connection extra ``drive_api_endpoint`` (optional): the root URL of the Drive
API, default Google's ``https://www.googleapis.com/``; the client appends
``drive/v3/``. It exists so the tests can point the client at a local fake; the
hook's own ``get_conn`` cannot be given an endpoint, so the service is built
here from the hook's public pieces: its credentials (``get_credentials``) and
its client options (``get_client_options``). The connection's OAuth token goes with
every request, so another endpoint than Google's is used only on this machine
(localhost, 127.0.0.0/8, ::1), or over https when the connection also has the
extra ``allow_custom_endpoint: true`` (a proxy of one's own); anything else is a
DriveEndpointError before any request.

The files are those directly in the folder (not in subfolders, not trashed).
An ordinary file's checksum is the md5 Drive keeps ("md5:<hex>"), checked
against the downloaded bytes. A Google Sheets file has no bytes of its own: it
is listed as "<name>.xlsx", fetched as an XLSX export and its checksum is
"sheets:<modifiedTime>:<version>" (an export is not byte-stable, its version
is), with the modified time as Drive gives it (to the millisecond) and the
file's size and md5 appended where Drive gives them, so ``checksum`` needs no
download and ``fetch`` returns the same value for the same content. Every edit
is a new version: two edits within one minute are two checksums.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from autopo_pipelines.loopback import is_loopback_host
from autopo_pipelines.sources import FetchedFile, SourceError, SourceFile, is_candidate_name
from autopo_pipelines.sources.download import ChecksumMismatchError, HashingWriter, check_download, write_copy

if TYPE_CHECKING:
    # Only in google-api-python-client-stubs (a dev requirement): the Drive v3 resources and schemas.
    from googleapiclient._apis.drive.v3 import DriveResource, File

SCHEME = "gdrive://"
ENDPOINT_EXTRA = "drive_api_endpoint"
ALLOW_CUSTOM_ENDPOINT_EXTRA = "allow_custom_endpoint"
DEFAULT_ROOT = "https://www.googleapis.com/"
GOOGLE_API_HOST = "www.googleapis.com"
SERVICE_PATH = "drive/v3/"
FOLDER_MIME = "application/vnd.google-apps.folder"
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_FIELDS = "id, name, mimeType, size, md5Checksum, modifiedTime, version, trashed"
# The largest page Drive gives; it may return fewer, so paging never relies on it.
PAGE_SIZE = 1000
# Rate limits (429, 403 rateLimitExceeded/userRateLimitExceeded) and 5xx answers are
# retried by googleapiclient itself, with exponential backoff, this many times per request.
NUM_RETRIES = 5
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024

__all__ = ["ChecksumMismatchError", "DriveEndpointError", "DriveFolderError", "GdriveSource"]


class DriveFolderError(SourceError):
    """The configured folder does not exist, is not a folder, or is not shared with the connection."""


class DriveEndpointError(SourceError):
    """The connection's ``drive_api_endpoint`` would send its token somewhere it must not go."""


def _allowed(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def checked_endpoint_root(conn_id: str, root: str | None, allow_custom: Any = None) -> str:
    """The Drive API root to send the connection's token to: Google's (the default), one on this
    machine, or, with ``allow_custom_endpoint: true``, any over https; else DriveEndpointError."""
    if not root:
        return DEFAULT_ROOT
    parsed = urllib.parse.urlsplit(root)
    scheme, host = parsed.scheme.lower(), (parsed.hostname or "")
    what = f"the Google Drive connection {conn_id!r} (extra {ENDPOINT_EXTRA!r})"
    if parsed.username is not None or parsed.password is not None:
        raise DriveEndpointError(
            f"{what}: the endpoint carries a user name or password; give it as scheme://host[:port]/; "
            "nothing was requested"
        )
    if scheme == "https" and host == GOOGLE_API_HOST:
        return root
    if scheme in ("http", "https") and is_loopback_host(host):
        return root
    where = f"{scheme}://{host}" if scheme and host else repr(root)
    if not _allowed(allow_custom):
        raise DriveEndpointError(
            f"{what} points the Drive API, and the connection's token, at {where}: another endpoint than "
            "Google's is used only on this machine (localhost, 127.0.0.0/8, ::1), or over https with the "
            f"connection's extra {ALLOW_CUSTOM_ENDPOINT_EXTRA!r}: true; nothing was requested; remove the "
            "extra to use Google's API"
        )
    if scheme != "https" or not host:
        raise DriveEndpointError(
            f"{what} points the Drive API, and the connection's token, at {where}: "
            f"{ALLOW_CUSTOM_ENDPOINT_EXTRA!r} needs https (plain http only on this machine); nothing was requested"
        )
    return root


def _epoch(modified_time: str | None) -> float:
    if not modified_time:
        return 0.0
    return dt.datetime.fromisoformat(modified_time.replace("Z", "+00:00")).timestamp()


def _status(exc: Exception) -> int | None:
    resp = getattr(exc, "resp", None)
    status = getattr(resp, "status", None)
    return int(status) if status is not None else None


def _rate_limited(exc: Exception) -> bool:
    details = getattr(exc, "error_details", None)
    reasons = {d.get("reason") for d in details if isinstance(d, dict)} if isinstance(details, list) else set()
    return bool(reasons & {"rateLimitExceeded", "userRateLimitExceeded"})


def is_sheet(meta: Mapping[str, Any]) -> bool:
    return meta.get("mimeType") == SHEETS_MIME


def listed_name(meta: Mapping[str, Any]) -> str:
    """The name the pipeline sees: a Google Sheet is fetched as XLSX, so it is named as one."""
    name = str(meta["name"])
    if is_sheet(meta) and not name.lower().endswith(".xlsx"):
        return name + ".xlsx"
    return name


def file_checksum(meta: Mapping[str, Any]) -> str:
    """ "md5:<hex>" for a stored file; "sheets:<modifiedTime>:<version>[:<size>][:<md5>]" for a Google
    Sheet: the modified time as Drive gives it (milliseconds), and the version, which every edit raises."""
    if is_sheet(meta):
        extra = "".join(f":{meta[key]}" for key in ("size", "md5Checksum") if meta.get(key))
        return f"sheets:{meta.get('modifiedTime')}:{meta.get('version')}{extra}"
    md5 = meta.get("md5Checksum")
    if not md5:
        # Other Google-native files (Docs, Slides, ...) and shortcuts have no content to fetch.
        raise ValueError(f"{meta.get('name')} ({meta.get('mimeType')}): Drive keeps no md5 for it; not a file")
    return f"md5:{md5}"


class GdriveSource:
    def __init__(
        self,
        folder_id: str,
        drive_id: str | None = None,
        gcp_conn_id: str = "google_cloud_default",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.folder_id = folder_id
        self.drive_id = drive_id
        self.gcp_conn_id = gcp_conn_id
        self.chunk_size = chunk_size
        self._service: DriveResource | None = None

    def describe(self) -> str:
        where = f" in shared drive {self.drive_id}" if self.drive_id else ""
        return f"Google Drive folder {self.folder_id}{where}"

    def _files(self) -> DriveResource.FilesResource:
        if self._service is None:
            from airflow.providers.google.common.hooks.base_google import get_field
            from airflow.providers.google.suite.hooks.drive import GoogleDriveHook
            from googleapiclient.discovery import build

            hook = GoogleDriveHook(api_version="v3", gcp_conn_id=self.gcp_conn_id)
            root = checked_endpoint_root(
                self.gcp_conn_id,
                get_field(hook.extras, ENDPOINT_EXTRA),
                get_field(hook.extras, ALLOW_CUSTOM_ENDPOINT_EXTRA),
            )
            endpoint = urllib.parse.urljoin(root if root.endswith("/") else root + "/", SERVICE_PATH)
            self._service = build(
                "drive",
                "v3",
                # The connection's credentials (key, scopes, impersonation chain) as the hook makes them;
                # the client authorizes its requests with them, as the hook's own get_conn() does.
                credentials=hook.get_credentials(),
                cache_discovery=False,
                static_discovery=True,
                client_options=hook.get_client_options(api_endpoint_override=endpoint),
            )
        return self._service.files()

    def _file_id(self, file: SourceFile) -> str:
        if not file.location.startswith(SCHEME):
            raise ValueError(f"{file.name}: {file.location!r} is not a {SCHEME} location")
        return file.location[len(SCHEME) :]

    def _current(self, file: SourceFile) -> File:
        """The file's metadata now; FileNotFoundError when it is gone (or trashed) since the listing."""
        from googleapiclient.errors import HttpError

        try:
            meta = (
                self._files()
                .get(fileId=self._file_id(file), fields=FILE_FIELDS, supportsAllDrives=True)
                .execute(num_retries=NUM_RETRIES)
            )
        except HttpError as exc:
            if _status(exc) == 404:
                raise FileNotFoundError(f"{file.location} ({file.name}): no longer at the source") from exc
            raise
        if meta.get("trashed"):
            raise FileNotFoundError(f"{file.location} ({file.name}): moved to the trash")
        return meta

    def _folder_problem(self) -> str | None:
        """Why the folder cannot be listed, or None when it is a folder (an empty one)."""
        from googleapiclient.errors import HttpError

        try:
            meta = (
                self._files()
                .get(fileId=self.folder_id, fields="id, mimeType, trashed", supportsAllDrives=True)
                .execute(num_retries=NUM_RETRIES)
            )
        except HttpError as exc:
            if _status(exc) == 404:
                return "not found (or not shared with the connection's account)"
            raise
        if meta.get("mimeType") != FOLDER_MIME:
            return f"not a folder (it is a {meta.get('mimeType')})"
        if meta.get("trashed"):
            return "in the trash"
        return None

    def _missing_folder(self, problem: str) -> DriveFolderError:
        return DriveFolderError(f"Google Drive folder {self.folder_id!r} (connection {self.gcp_conn_id}): {problem}")

    def list_files(self) -> list[SourceFile]:
        from googleapiclient.errors import HttpError

        escaped = self.folder_id.replace("\\", "\\\\").replace("'", "\\'")
        query: dict[str, Any] = {
            "q": f"'{escaped}' in parents and trashed = false",
            "fields": f"nextPageToken, files({FILE_FIELDS})",
            "pageSize": PAGE_SIZE,
            "supportsAllDrives": True,
            "includeItemsFromAllDrives": True,
        }
        if self.drive_id:
            query.update(corpora="drive", driveId=self.drive_id)
        entries: list[File] = []
        token: str | None = None
        while True:
            try:
                page = self._files().list(pageToken=token, **query).execute(num_retries=NUM_RETRIES)
            except HttpError as exc:
                if _status(exc) == 404:
                    raise self._missing_folder("not found (or not shared with the connection's account)") from exc
                if _status(exc) == 403 and not _rate_limited(exc):
                    raise self._missing_folder(
                        "the connection may not list it: share the folder with its account and give the "
                        "connection a Drive scope (https://www.googleapis.com/auth/drive.readonly)"
                    ) from exc
                raise
            entries.extend(page.get("files", []))
            token = page.get("nextPageToken")
            if not token:
                break
        if not entries:
            # Drive lists nothing, rather than failing, for a parent that does not exist or that
            # the account cannot see: tell an empty folder from a wrong id.
            problem = self._folder_problem()
            if problem is not None:
                raise self._missing_folder(problem)
        files = []
        for meta in entries:
            if meta.get("mimeType") == FOLDER_MIME:
                continue
            name = listed_name(meta)
            if not is_candidate_name(name):
                continue  # a lock or hidden file
            if not is_sheet(meta) and not meta.get("md5Checksum"):
                continue  # a Doc, a Slides deck, a shortcut...: nothing that can be downloaded as it is
            files.append(
                SourceFile(
                    name=name,
                    location=f"{SCHEME}{meta['id']}",
                    # Drive gives no size for a Sheet (its export is made on demand).
                    size_bytes=int(meta.get("size") or 0),
                    modified=_epoch(meta.get("modifiedTime")),
                )
            )
        return sorted(files, key=lambda f: (f.name, f.location))

    def checksum(self, file: SourceFile) -> str:
        return file_checksum(self._current(file))

    def fetch(self, file: SourceFile, directory: Path) -> FetchedFile:
        """Stream the file (or a Sheet's XLSX export) to a temporary file, hashing as it is
        written, check a stored file's md5, and only then rename it into place."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import MediaIoBaseDownload

        meta = self._current(file)
        expected = file_checksum(meta)
        sheet = is_sheet(meta)
        if sheet:
            # An export is capped by Drive at 10 MB. A Sheet edited during the export is checksummed
            # as the version read before it: the next run then sees a new version and fetches again.
            request = self._files().export_media(fileId=meta["id"], mimeType=XLSX_MIME)
        else:
            request = self._files().get_media(fileId=meta["id"], supportsAllDrives=True)
        hasher = hashlib.md5(usedforsecurity=False)

        def download(out: BinaryIO) -> None:
            # MediaIoBaseDownload only calls write(); its stubs ask for an io.IOBase.
            writer = HashingWriter(out, hasher)
            media = MediaIoBaseDownload(writer, request, chunksize=self.chunk_size)  # type: ignore[arg-type]
            done = False
            try:
                while not done:
                    _, done = media.next_chunk(num_retries=NUM_RETRIES)
            except HttpError as exc:
                if _status(exc) == 404:
                    raise FileNotFoundError(f"{file.location} ({file.name}): no longer at the source") from exc
                raise
            if not sheet:
                problem = "corrupt or the file changed while it was read"
                check_download(
                    file.name, file.location, f"md5:{hasher.hexdigest()}", expected, whose="Drive's", problem=problem
                )

        return FetchedFile(path=write_copy(directory, file.name, download), checksum=expected)
