"""Files that hold secrets (keys, passwords) are private from their first byte: never readable by
another user, not even for a moment, whatever the umask and whatever is already at their names."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autopo_local.embedded_pg import free_port
from autopo_local.private_files import write_private


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file created with the default 0o666 would be world-readable (and writable)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def created_modes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(path, mode) of every file os.open creates, as it is the moment it appears (fstat of the new fd)."""
    seen: list[tuple[str, int]] = []
    real_open: Callable[..., int] = os.open

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        existed = os.path.lexists(path) if not kwargs.get("dir_fd") else True
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT and not existed:
            seen.append((os.fspath(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    return seen


def assert_private(path: Path) -> None:
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode), f"{path} is not a regular file"
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == os.geteuid()


@pytest.mark.usefixtures("permissive_umask")
def test_write_private_is_0600_from_the_first_byte_even_with_umask_0(
    tmp_path: Path, created_modes: list[tuple[str, int]]
) -> None:
    path = tmp_path / "home" / "local-stack.json"
    write_private(path, '{"password": "s3cret"}\n')
    assert path.read_text(encoding="utf-8") == '{"password": "s3cret"}\n'
    assert_private(path)
    # Every file it created was 0600 the moment it existed (before a byte was written).
    assert created_modes, "write_private created no file through os.open"
    assert all(mode == 0o600 for _, mode in created_modes), created_modes
    # Replacing a file that was world-readable leaves it private too.
    path.chmod(0o644)
    write_private(path, "again\n")
    assert_private(path)
    assert path.read_text(encoding="utf-8") == "again\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "a temporary file was left behind"


@pytest.mark.usefixtures("permissive_umask")
def test_write_private_ignores_a_stale_or_planted_temporary(tmp_path: Path) -> None:
    """What is already at the temporary name (a crashed run's file, a link someone put there) is not reused."""
    path = tmp_path / "simple_auth_manager_passwords.json"
    stale = tmp_path / f".{path.name}.{os.getpid()}"
    stale.write_text("left by a crash\n", encoding="utf-8")
    stale.chmod(0o644)
    write_private(path, '{"admin": "s3cret"}\n')
    assert_private(path)

    victim = tmp_path / "elsewhere.txt"
    victim.write_text("not yours\n", encoding="utf-8")
    stale.unlink(missing_ok=True)
    stale.symlink_to(victim)
    write_private(path, '{"admin": "other"}\n')
    assert_private(path)
    assert path.read_text(encoding="utf-8") == '{"admin": "other"}\n'
    assert victim.read_text(encoding="utf-8") == "not yours\n", "the secret was written through the link"


def test_the_system_tests_stack_writes_its_password_file_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system tests' stack (also the benchmark's scheduler stage) writes the admin's password."""
    from autopo_local import throwaway_stack as airflow_stack

    previous = os.umask(0o022)  # the usual one: a plain write_text is world-readable
    try:
        home = tmp_path / "airflow-home"
        down = f"postgresql://nobody@127.0.0.1:{free_port()}/postgres"  # fails right after the password is written
        with pytest.raises(Exception, match=r"connect|refused|Connection"):
            airflow_stack.start_airflow_stack(
                home=home,
                admin_db_url=down,
                cluster_url_base=down.rsplit("/", 1)[0],
                data_root=tmp_path / "data",
                warehouse_url=down,
            )
    finally:
        os.umask(previous)
    password_file = home / "simple_auth_manager_passwords.json"
    assert_private(password_file)
    assert list(json.loads(password_file.read_text(encoding="utf-8"))) == [airflow_stack.ADMIN_USER]
