"""Where a pipeline's files come from, behind one small interface.

A source lists the files it holds (with a content checksum) and fetches one
to a local path; the sensor, the router and the transforms know nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class SourceFile:
    name: str
    location: str  # where the file is at its source (a path or a URI)
    size_bytes: int
    modified: float  # seconds since the epoch, UTC
    checksum: str  # content hash as the source reports it, prefixed by its algorithm


class Source(Protocol):
    def list_files(self) -> list[SourceFile]: ...

    def fetch(self, file: SourceFile, directory: Path) -> Path:
        """A local path holding the file's content (may be the file itself)."""
        ...


def is_candidate_name(name: str) -> bool:
    """Excel lock files and hidden files are not uploads: never listed, never failed."""
    return not (name.startswith("~$") or name.startswith("."))
