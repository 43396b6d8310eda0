"""The few operations the day's state needs, on a local folder or on an object store.

The data root is a local folder (the embedded default) or an object-store location such as
``gs://bucket/prefix``, opened by the orchestration layer as Airflow's ``ObjectStoragePath`` with
the provider's connection. This module is the one place that knows the two differ:

- a local folder keeps its POSIX guarantees: a file is written under a temporary name and
  renamed into place;
- an object store has no rename and no folders, but an object appears whole or not at all when
  its upload completes. A file is therefore made on the worker's own disk (a temporary file) and
  uploaded in one request; a folder of several objects is complete when its marker object,
  uploaded last, is there (``aggregate.write_part``).

Everything else (``/``, ``name``, ``exists``, ``open``, ``stat``) is the path API both share.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeAlias

import pandas as pd
from upath import UPath

# A local path, or an object-store path (Airflow's ObjectStoragePath, a virtual UPath).
StoragePath: TypeAlias = Path | UPath

LOCAL_PREFIX = "file://"


def is_local(path: StoragePath) -> bool:
    """True for a folder on this machine's disk (a UPath of a local file is a pathlib.Path too)."""
    return isinstance(path, Path)


def is_url(text: str) -> bool:
    """A location written as a URL (``gs://…``, ``s3://…``), not a local path."""
    return "://" in text and not text.startswith(LOCAL_PREFIX)


def local_path(text: str) -> Path:
    """A local location, written as a path or as a ``file://`` URL."""
    return Path(text.removeprefix(LOCAL_PREFIX)).expanduser().resolve()


def read_bytes(path: StoragePath) -> bytes | None:
    """The file's content; None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_bytes(path: StoragePath, data: bytes) -> None:
    """Write a whole file so that no reader ever sees part of it."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        return
    path.write_bytes(data)  # one upload: the object appears whole when it completes


def remove(path: StoragePath) -> None:
    """Remove a file if it is there."""
    try:
        path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass  # an object store may say so even with missing_ok


def remove_tree(path: StoragePath) -> None:
    """Remove a folder and everything under it, if it is there."""
    if isinstance(path, Path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        path.fs.rm(path.path, recursive=True)


def upload(local: Path, target: StoragePath) -> None:
    """Put a finished local file at ``target``, replacing what is there in one step; ``local`` is
    gone afterwards. For a local target, ``local`` is a temporary beside it (a rename never
    crosses file systems)."""
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)
        return
    target.fs.put_file(str(local), target.path)
    local.unlink(missing_ok=True)


def replace_folder(local: Path, target: StoragePath) -> None:
    """Make ``target`` hold exactly the files of the local folder ``local``, which is gone afterwards.
    For a local target, ``local`` is a temporary beside it."""
    if isinstance(target, Path):
        if target.exists():
            retired = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.replace(target, retired)
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(local, target)
        return
    remove_tree(target)
    for file in sorted(local.rglob("*")):
        if file.is_file():
            upload(file, target.joinpath(*file.relative_to(local).parts))
    shutil.rmtree(local, ignore_errors=True)


def download_folder(source: StoragePath, local: Path) -> Path:
    """A local copy of a folder's files, subfolders included (an empty folder when there is none: an
    object store keeps no empty folders); the folder itself when it is local."""
    if isinstance(source, Path):
        return source
    local.mkdir(parents=True, exist_ok=True)
    prefix = source.path.rstrip("/") + "/"
    for name in source.fs.find(source.path):
        relative = str(name)[len(prefix) :] if str(name).startswith(prefix) else ""
        if relative:
            target = local.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            source.fs.get_file(name, str(target))
    return local


@contextlib.contextmanager
def local_copy(path: StoragePath) -> Iterator[Path]:
    """The file as a local path for readers that need one (openpyxl, the xlsx reader): the file
    itself when it is local, else a temporary download removed afterwards."""
    if isinstance(path, Path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="autopo-") as folder:
        copy = Path(folder) / path.name
        path.fs.get_file(path.path, str(copy))
        yield copy


def open_for_reading(path: StoragePath) -> BinaryIO:
    """The file opened for binary reading, seekable (ranges of an object are read as needed)."""
    handle: BinaryIO = path.open("rb")
    return handle


def read_parquet(path: StoragePath) -> pd.DataFrame:
    """A Parquet file as a frame; an object is fetched whole in one request (a part is small)."""
    if isinstance(path, Path):
        return pd.read_parquet(path)
    return pd.read_parquet(io.BytesIO(path.read_bytes()))


def file_size(path: StoragePath) -> int:
    return int(path.stat().st_size)
