"""A fake Google Drive v3 API on 127.0.0.1: only what the Drive source calls.

googleapiclient (static discovery, ``api_endpoint`` = "<root>/drive/v3/") sends:
  GET /drive/v3/files?q='<folder>' in parents and trashed = false&pageSize=&pageToken=...  (list)
  GET /drive/v3/files/<id>?fields=...                  (metadata)
  GET /drive/v3/files/<id>?alt=media                   (content; honours a Range header)
  GET /drive/v3/files/<id>/export?mimeType=...         (a Google Sheet as XLSX)
Errors are Drive's JSON shape: {"error": {"code", "message", "errors": [{"reason", ...}]}}.
Like Drive, a page may hold fewer files than asked for (``max_page_size``), and listing a
parent that does not exist answers 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from autopo_local.stack import free_port

FOLDER_MIME = "application/vnd.google-apps.folder"
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PARENT_QUERY = re.compile(r"^'((?:[^'\\]|\\.)*)' in parents and trashed = false$")
_EPOCH = dt.datetime(2024, 3, 5, 6, 0, tzinfo=dt.UTC)


@dataclass
class DriveFile:
    id: str
    name: str
    parent: str | None
    mime_type: str
    content: bytes = b""  # a stored file's bytes, or a Sheet's XLSX export
    md5: str | None = None  # what Drive reports: normally the md5 of content
    version: int = 1
    modified: dt.datetime = _EPOCH
    trashed: bool = False

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "modifiedTime": self.modified.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "version": str(self.version),
            "trashed": self.trashed,
        }
        if self.mime_type not in (FOLDER_MIME, SHEETS_MIME):
            meta["size"] = str(len(self.content))
            meta["md5Checksum"] = self.md5
        return meta


@dataclass
class FakeDrive:
    max_page_size: int = 3
    files: dict[str, DriveFile] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _touch(self, file: DriveFile, after: dt.timedelta) -> None:
        file.version += 1
        file.modified = file.modified + after

    def add_folder(self, name: str, parent: str | None = None) -> str:
        return self._add(DriveFile(f"folder{next(self._ids)}", name, parent, FOLDER_MIME)).id

    def add_file(self, parent: str, name: str, content: bytes, mime_type: str = "application/octet-stream") -> str:
        md5 = hashlib.md5(content).hexdigest()
        return self._add(DriveFile(f"file{next(self._ids)}", name, parent, mime_type, content, md5)).id

    def add_sheet(self, parent: str, name: str, export: bytes) -> str:
        return self._add(DriveFile(f"sheet{next(self._ids)}", name, parent, SHEETS_MIME, export)).id

    def _add(self, file: DriveFile) -> DriveFile:
        with self._lock:
            self.files[file.id] = file
        return file

    def update(self, file_id: str, content: bytes, after: dt.timedelta = dt.timedelta(minutes=1)) -> None:
        """New content (a new revision): new md5, version, and modifiedTime ``after`` the previous one
        (Drive gives it to the millisecond: two edits may fall in one minute, or one second)."""
        file = self.files[file_id]
        file.content = content
        if file.mime_type != SHEETS_MIME:
            file.md5 = hashlib.md5(content).hexdigest()
        self._touch(file, after)

    def corrupt(self, file_id: str, content: bytes) -> None:
        """Serve other bytes while Drive's metadata (md5, version) stays as it was."""
        self.files[file_id].content = content

    def delete(self, file_id: str) -> None:
        del self.files[file_id]

    def list_requests(self) -> list[dict[str, list[str]]]:
        return [query for path, query in self.requests if path == "/drive/v3/files"]


def _error(code: int, message: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }


class _DriveHandler(BaseHTTPRequestHandler):
    """The Drive v3 endpoints the pipelines call, answered from ``drive`` (set per server by _handler)."""

    drive: FakeDrive

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, file_id: str) -> None:
        self._json(404, _error(404, f"File not found: {file_id}.", "notFound"))

    def _bytes(self, content: bytes, mime_type: str) -> None:
        status, start, end = 200, 0, len(content) - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match and content:
            start = int(match[1])
            end = min(int(match[2]) if match[2] else end, len(content) - 1)
            if start >= len(content):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(content)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = content[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", mime_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        with self.drive._lock:
            self.drive.requests.append((url.path, query))
            if url.path == "/drive/v3/files":
                return self._list(query)
            match = re.fullmatch(r"/drive/v3/files/([^/]+)(/export)?", url.path)
            if match is None:
                return self._json(404, _error(404, f"no such path {url.path}", "notFound"))
            file_id = urllib.parse.unquote(match[1])
            file = self.drive.files.get(file_id)
            if file is None:
                return self._not_found(file_id)
            if match[2]:
                if file.mime_type != SHEETS_MIME:
                    message = "Export only supports Docs Editors files."
                    return self._json(403, _error(403, message, "fileNotExportable"))
                if query.get("mimeType") != [XLSX_MIME]:
                    return self._json(400, _error(400, "unsupported export mimeType", "badRequest"))
                return self._bytes(file.content, XLSX_MIME)
            if query.get("alt") == ["media"]:
                if file.mime_type in (FOLDER_MIME, SHEETS_MIME):
                    message = "Only files with binary content can be downloaded. Use Export with Docs Editors files."
                    return self._json(403, _error(403, message, "fileNotDownloadable"))
                return self._bytes(file.content, file.mime_type)
            return self._json(200, file.metadata())

    def _list(self, query: dict[str, list[str]]) -> None:
        match = _PARENT_QUERY.match(query.get("q", [""])[0])
        if match is None:
            return self._json(400, _error(400, "Invalid Value", "invalid"))
        parent = re.sub(r"\\(.)", r"\1", match[1])
        if parent not in self.drive.files:
            return self._not_found(parent)
        children = sorted(
            (f for f in self.drive.files.values() if f.parent == parent and not f.trashed), key=lambda f: f.id
        )
        size = min(int(query.get("pageSize", ["100"])[0]), self.drive.max_page_size)
        start = int(query.get("pageToken", ["0"])[0])
        page = children[start : start + size]
        body: dict[str, Any] = {"kind": "drive#fileList", "files": [f.metadata() for f in page]}
        if start + size < len(children):
            body["nextPageToken"] = str(start + size)
        self._json(200, body)

    def log_message(self, *args: Any) -> None:
        pass


def _handler(drive: FakeDrive) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_DriveHandler,), {"drive": drive})


@contextmanager
def drive_server(drive: FakeDrive) -> Iterator[str]:
    """Serve the fake; yields the API root URL ("http://127.0.0.1:<port>/")."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(drive))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def drive_connection(root: str, project: str = "autopo-test") -> str:
    """The AIRFLOW_CONN_* value: anonymous credentials, the Drive API at the fake."""
    extra = {"is_anonymous": True, "project": project, "drive_api_endpoint": root}
    return json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
