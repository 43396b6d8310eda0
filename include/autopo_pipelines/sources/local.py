"""A local folder as a source: the embedded default."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from autopo_pipelines.layout import safe_file_name
from autopo_pipelines.sources import FetchedFile, SourceFile, is_candidate_name

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def local_copy_name(name: str) -> str:
    """A safe local name that no other upload maps to ("A B.xlsx" and "A_B.xlsx" differ)."""
    safe = safe_file_name(name)
    if safe == name:
        return safe
    stem, dot, suffix = safe.rpartition(".")
    tag = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{stem}.{tag}.{suffix}" if dot else f"{safe}.{tag}"


class LocalFolderSource:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return str(self.folder)

    def list_files(self) -> list[SourceFile]:
        if not self.folder.is_dir():
            return []
        files = []
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or not is_candidate_name(path.name):
                continue
            stat = path.stat()
            files.append(SourceFile(path.name, str(path), stat.st_size, stat.st_mtime))
        return files

    def checksum(self, file: SourceFile) -> str:
        return sha256_of(Path(file.location))

    def fetch(self, file: SourceFile, directory: Path) -> FetchedFile:
        """Copy and hash in one pass: the copy is exactly what the checksum describes,
        even if the store replaces the file while it is being read."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / local_copy_name(file.name)
        digest = hashlib.sha256()
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out, Path(file.location).open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return FetchedFile(path=target, checksum="sha256:" + digest.hexdigest())
