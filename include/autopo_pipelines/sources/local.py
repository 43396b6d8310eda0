"""A local folder as a source: the embedded default."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from autopo_pipelines.sources import FetchedFile, SourceFile, is_candidate_name
from autopo_pipelines.sources.download import HashingWriter, local_copy_name, write_copy

__all__ = ["LocalFolderSource", "local_copy_name", "sha256_of"]

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


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
        digest = hashlib.sha256()

        def copy(out: BinaryIO) -> None:
            with Path(file.location).open("rb") as source:
                writer = HashingWriter(out, digest)
                while chunk := source.read(_CHUNK):
                    writer.write(chunk)

        return FetchedFile(path=write_copy(directory, file.name, copy), checksum="sha256:" + digest.hexdigest())
