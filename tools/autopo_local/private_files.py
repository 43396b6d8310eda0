"""Files that hold secrets (passwords, keys): private from their first byte."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write a file that holds secrets: mode 0600 from its first byte, replaced whole.

    The content goes to a new temporary file beside ``path``, created by this call (``O_EXCL``: never a
    file or a link already at that name) with mode 0600 (the umask can only remove bits), then renamed
    over ``path``; a reader sees the old file or the new one, and no one else can read either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
