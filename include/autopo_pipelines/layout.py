"""Where a pipeline's files live under the data root (``AUTOPO_DATA_DIR``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

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
    return Path(os.environ.get(DATA_DIR_ENV, "data")).expanduser().resolve()


def date_stamp(date: dt.date) -> str:
    return date.strftime("%Y%m%d")


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @classmethod
    def from_env(cls) -> DataLayout:
        return cls(data_root())

    def inbox(self, pipeline: str) -> Path:
        return self.root / "inbox" / pipeline

    def intermediate(self, pipeline: str, date: dt.date) -> Path:
        return self.root / "intermediate" / pipeline / date_stamp(date)

    def seeds(self, pipeline: str) -> Path:
        return self.root / "seeds" / pipeline

    def reference(self) -> Path:
        return self.root / "reference"

    def resolve(self, configured: str | None, default: Path) -> Path:
        """A configured path, taken relative to the data root unless absolute."""
        if configured is None:
            return default
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.root / path
