"""Where a pipeline's files come from, behind one small interface.

A source lists the files it holds (cheaply: names, sizes, times) and fetches
one into a local folder, returning the copy and its content checksum; the
sensor, the router and the transforms know nothing else.
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


@dataclass(frozen=True)
class FetchedFile:
    path: Path  # a local copy that nothing else writes to
    checksum: str  # content hash of that copy, prefixed by its algorithm ("sha256:...")


class Source(Protocol):
    def describe(self) -> str:
        """Where the source is, for messages."""
        ...

    def list_files(self) -> list[SourceFile]: ...

    def fetch(self, file: SourceFile, directory: Path) -> FetchedFile: ...

    def checksum(self, file: SourceFile) -> str:
        """The file's content checksum without keeping a copy (to find the same file under two names)."""
        ...


class SourceError(RuntimeError):
    """The source itself cannot be read (a missing bucket or folder, no access): waiting will not help."""


def is_candidate_name(name: str) -> bool:
    """Excel lock files and hidden files are not uploads: never listed, never failed."""
    return not (name.startswith("~$") or name.startswith("."))
