"""Where a pipeline's files live under the data root (``AUTOPO_DATA_DIR``)."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "AUTOPO_DATA_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """A store's file name as a name for our own files: no spaces, slashes or odd characters."""
    return _UNSAFE.sub("_", name)


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
