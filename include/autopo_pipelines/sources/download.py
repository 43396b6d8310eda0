"""Local copies of source files: written under a temporary name, hashed as they are written,
and renamed into place only when complete and checked, so a copy is whole or absent."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from autopo_pipelines.layout import safe_file_name

# A file name may be 255 bytes; the copy's temporary name adds a dot, a separator and 8 random characters.
_MAX_COPY_NAME = 120


def local_copy_name(name: str) -> str:
    """A safe local name that no other upload maps to ("A B.xlsx" and "A_B.xlsx" differ), short enough
    for any file system whatever the upload's name, keeping its extension (readers go by it)."""
    safe = safe_file_name(name)
    if safe == name and len(safe) <= _MAX_COPY_NAME:
        return safe
    stem, dot, suffix = safe.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = safe, ""
    tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[: _MAX_COPY_NAME - 26]}.{tag}" + (f".{suffix}" if suffix else "")


class ChecksumMismatchError(IOError):
    """A download whose content is not what the source says the file holds (corrupted in transit)."""


def check_download(name: str, location: str, actual: str, expected: str, *, whose: str, problem: str) -> None:
    """Raise ChecksumMismatchError when the copy's checksum is not the one its source keeps."""
    if actual != expected:
        raise ChecksumMismatchError(
            f"{name}: the download from {location} is {problem} (its {actual} differs from {whose} {expected}); "
            "retry the file"
        )


class HashingWriter:
    """Writes to a file and hashes what it writes, so the copy is exactly what is checked."""

    def __init__(self, out: BinaryIO, hasher: Any) -> None:
        self._out = out
        self._hasher = hasher
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        written = self._out.write(data)
        self.bytes_written += len(data)
        return written if written is not None else len(data)

    def flush(self) -> None:
        self._out.flush()


def write_copy(directory: Path, file_name: str, write: Callable[[BinaryIO], None]) -> Path:
    """``write(out)`` fills a temporary file beside the copy (and raises if what it wrote fails its
    check); the copy appears under its name only after that, and nothing is left on failure."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / local_copy_name(file_name)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
