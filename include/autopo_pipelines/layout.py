"""Where a pipeline's files live under the data root (``AUTOPO_DATA_DIR``): a local folder, or an
object-store location (``gs://bucket/prefix``) that the orchestration layer opens with Airflow's
connection (``orchestration.data_root``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from autopo_pipelines.storage import StoragePath, is_url, local_path

DATA_DIR_ENV = "AUTOPO_DATA_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """A store's file name as a name for our own files: no spaces, slashes or odd characters."""
    return _UNSAFE.sub("_", name)


# Enough of the name to recognise the file in a listing of our folders; the rest is the identity.
_READABLE_CHARS = 48


def file_key(location: str, name: str) -> str:
    """A source file's key for our own files (its result, its part, its download): one per file at the
    source (its path, gs:// URI or Drive id), never shared by two files whose display names sanitise
    alike ("PO export.xlsx" and "PO_export.xlsx", two Drive files of one name), and short whatever
    the name's length. The name's start keeps it readable."""
    digest = hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return f"{safe_file_name(name)[:_READABLE_CHARS]}.{digest}"


def data_root() -> Path:
    """The local data root from the environment (default ``./data``)."""
    configured = os.environ.get(DATA_DIR_ENV, "data")
    if is_url(configured):
        raise ValueError(
            f"{DATA_DIR_ENV}={configured} is an object-store location: it is opened with Airflow's connection "
            "(autopo_pipelines.orchestration.data_root), not as a local folder"
        )
    return local_path(configured)


def date_stamp(date: dt.date) -> str:
    return date.strftime("%Y%m%d")


@dataclass(frozen=True)
class DataLayout:
    root: StoragePath

    @classmethod
    def from_env(cls) -> DataLayout:
        """The layout of a local data root; an object-store root needs Airflow's connection
        (``orchestration.data_root.data_layout``)."""
        return cls(data_root())

    def inbox(self, pipeline: str) -> StoragePath:
        return self.root / "inbox" / pipeline

    def intermediate(self, pipeline: str, date: dt.date) -> StoragePath:
        return self.root / "intermediate" / pipeline / date_stamp(date)

    def seeds(self, pipeline: str) -> StoragePath:
        return self.root / "seeds" / pipeline

    def reference(self) -> StoragePath:
        return self.root / "reference"

    def resolve(self, configured: str | None, default: StoragePath) -> StoragePath:
        """A configured path, taken relative to the data root unless absolute.

        Under an object-store root, an absolute local path would be one worker's disk, which the
        others do not see: refused, as is a URL (a path under the root is written relative to it).
        """
        if configured is None:
            return default
        if is_url(configured):
            raise ValueError(f"{configured}: write a path relative to the data root ({self.root}), not a URL")
        path = Path(configured).expanduser()
        if not path.is_absolute():
            return self.root.joinpath(*path.parts)
        if not isinstance(self.root, Path):
            raise ValueError(
                f"{configured} is a folder on one machine, and the data root {self.root} is shared by every "
                "worker: write it relative to the data root"
            )
        return path

    def locate(self, recorded: str) -> StoragePath:
        """A path the day's state recorded (a part, an output) as a path again: under an
        object-store root it is that store's, with its connection; anything else is local."""
        if isinstance(self.root, Path) or not is_url(recorded):
            return Path(recorded)
        # Compared without the connection an object-store path names in its URL (gs://conn@bucket/…):
        # what a run recorded is found again after the deployment renamed the connection.
        # A bucket's root prints with a slash (gs://bucket/), a prefix without one (gs://bucket/prefix).
        root, wanted = _without_connection(str(self.root)).rstrip("/"), _without_connection(recorded)
        if not wanted.startswith(root + "/"):
            raise ValueError(f"{recorded} is not under the data root {self.root}")
        return self.root.joinpath(*wanted[len(root) + 1 :].split("/"))


def _without_connection(url: str) -> str:
    scheme, _, rest = url.partition("://")
    location, slash, path = rest.partition("/")
    return f"{scheme}://{location.rpartition('@')[2]}{slash}{path}"
