"""A local folder as a source: the embedded default.

Only regular files are read. A symbolic link in the folder (to a file anywhere on the host, or to
another upload) and a special file (a FIFO, a socket, a device) are listed, so the day's tracking
shows them, but never opened: fetching one fails with an InputFileError that says why. The check is
made again when the file is opened (``O_NOFOLLOW``, then ``fstat`` of what was opened), so a file
replaced by a link or a FIFO between the listing and the fetch is refused as well.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from autopo_pipelines.errors import InputFileError
from autopo_pipelines.sources import FetchedFile, SourceFile, is_candidate_name
from autopo_pipelines.sources.download import HashingWriter, local_copy_name, write_copy

__all__ = ["LocalFolderSource", "NotARegularFileError", "local_copy_name", "sha256_of"]

_CHUNK = 1 << 20
# No link followed in the last component; a FIFO or device opened without waiting for a writer (or
# whatever a device does on a blocking open): the opened file is checked before anything is read.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


class NotARegularFileError(FileNotFoundError):
    """A name in the folder that is not a regular file (a symbolic link, a FIFO, a socket, a device): not read.

    A FileNotFoundError, "no file to read by that name", so a caller that skips files gone since the
    listing skips this one too (its transform then fails with the reason, as an InputFileError).
    """

    def __init__(self, path: str, what: str) -> None:
        self.what = what
        super().__init__(f"{path}: {what}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


_LINK = "it is a symbolic link, not a file put in the folder, and is not read (nor is what it points to)"


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return _LINK
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file, and is not read"
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    return f"it is a special file ({kind}), not a regular file, and is not read"


def _open_regular(path: str) -> BinaryIO:
    """The regular file at ``path`` opened for reading; never a link's target nor a special file.

    NotARegularFileError for those; FileNotFoundError when nothing is there any more.
    """
    # Checked before opening, so a device is not even opened; and on what was opened, for the race.
    why = _not_regular(os.lstat(path).st_mode)
    if why is not None:
        raise NotARegularFileError(path, why)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise NotARegularFileError(path, _LINK) from exc
        raise
    try:
        why = _not_regular(os.fstat(fd).st_mode)
        if why is not None:
            raise NotARegularFileError(path, why)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class LocalFolderSource:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return str(self.folder)

    def list_files(self) -> list[SourceFile]:
        """Every entry but folders, by name; a link or a special file too (its fetch says why it is not read).

        Sizes and times are the entry's own (``lstat``): a link's target is not looked at.
        """
        if not self.folder.is_dir():
            return []
        files = []
        for path in sorted(self.folder.iterdir()):
            if not is_candidate_name(path.name):
                continue
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # gone since the folder was read
            if stat.S_ISDIR(info.st_mode):
                continue
            files.append(SourceFile(path.name, str(path), info.st_size, info.st_mtime))
        return files

    def checksum(self, file: SourceFile) -> str:
        """The content's checksum; NotARegularFileError (a FileNotFoundError) for a link or a special file."""
        digest = hashlib.sha256()
        with _open_regular(file.location) as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    def fetch(self, file: SourceFile, directory: Path) -> FetchedFile:
        """Copy and hash in one pass: the copy is exactly what the checksum describes,
        even if the store replaces the file while it is being read.

        A link or a special file fails with an InputFileError naming it: it is not read.
        """
        try:
            source = _open_regular(file.location)
        except NotARegularFileError as exc:
            raise InputFileError(file.name, exc.what) from exc
        digest = hashlib.sha256()

        def copy(out: BinaryIO) -> None:
            writer = HashingWriter(out, digest)
            while chunk := source.read(_CHUNK):
                writer.write(chunk)

        with source:
            return FetchedFile(path=write_copy(directory, file.name, copy), checksum="sha256:" + digest.hexdigest())
