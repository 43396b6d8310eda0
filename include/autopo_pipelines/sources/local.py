"""A local folder as a source: the embedded default."""

from __future__ import annotations

import hashlib
from pathlib import Path

from autopo_pipelines.sources import SourceFile, is_candidate_name

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

    def list_files(self) -> list[SourceFile]:
        if not self.folder.is_dir():
            return []
        files = []
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or not is_candidate_name(path.name):
                continue
            stat = path.stat()
            files.append(
                SourceFile(
                    name=path.name,
                    location=str(path),
                    size_bytes=stat.st_size,
                    modified=stat.st_mtime,
                    checksum=sha256_of(path),
                )
            )
        return files

    def names(self) -> list[str]:
        """Cheap listing for the sensor: no checksums."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and is_candidate_name(p.name))

    def fetch(self, file: SourceFile, directory: Path) -> Path:
        return Path(file.location)
