"""The project-managed PostgreSQL cluster, with system and pgserver-bundled binaries."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from autopo_local.embedded_pg import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    bundled_pg_bin,
    find_pg_bin,
    pg_major_version,
)

pytestmark = pytest.mark.integration

INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"


def _query(url: str, query: str) -> tuple[object, ...]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def server(pg_base_dir: Path, request: pytest.FixtureRequest) -> Iterator[EmbeddedPostgres]:
    """A cluster of its own for tests that start/stop (the session cluster must stay up)."""
    srv = EmbeddedPostgres(pg_base_dir / f"own-{request.node.name}", durable=False)
    try:
        yield srv
    finally:
        srv.stop()


def test_find_pg_bin_has_server_binaries() -> None:
    pg_bin = find_pg_bin()
    for name in ("initdb", "pg_ctl", "postgres"):
        assert os.access(pg_bin / name, os.X_OK), name


def test_find_pg_bin_honours_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundled = bundled_pg_bin()
    if bundled is not None:
        monkeypatch.setenv("AUTOPO_PG_BIN", "pgserver")
        assert find_pg_bin() == bundled
        monkeypatch.setenv("AUTOPO_PG_BIN", str(bundled))
        assert find_pg_bin() == bundled
    monkeypatch.setenv("AUTOPO_PG_BIN", str(tmp_path))
    with pytest.raises(EmbeddedPostgresError, match="does not contain"):
        find_pg_bin()


def test_without_system_postgres_falls_back_to_pgserver(monkeypatch: pytest.MonkeyPatch) -> None:
    from autopo_local import embedded_pg

    bundled = bundled_pg_bin()
    if bundled is None:
        pytest.skip("pgserver is not installed")
    monkeypatch.delenv("AUTOPO_PG_BIN", raising=False)
    # A fresh user machine: no pg_config, no /usr/lib/postgresql, nothing on PATH.
    monkeypatch.setattr(embedded_pg, "_system_pg_bin", lambda: None)
    assert find_pg_bin() == bundled


def test_session_cluster_accepts_connections(pg_server: EmbeddedPostgres) -> None:
    assert pg_server.is_running()
    assert pg_server.url.startswith("postgresql://autopo@127.0.0.1:")
    assert pg_server.url.endswith("/autopo")
    user, db, collation = _query(
        pg_server.url,
        "SELECT current_user, current_database(), datcollate FROM pg_database WHERE datname = current_database()",
    )
    assert (user, db, collation) == ("autopo", "autopo", "C")


def test_server_listens_on_loopback_only(pg_server: EmbeddedPostgres) -> None:
    (listen,) = _query(pg_server.url, "SHOW listen_addresses")
    assert listen == "127.0.0.1"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a service account")
def test_postgres_does_not_run_as_root(pg_server: EmbeddedPostgres) -> None:
    postmaster_pid = int((pg_server.pgdata / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{postmaster_pid}").st_uid != 0
    assert pg_server.data_dir.stat().st_uid != 0


def test_start_is_idempotent_and_port_is_remembered(server: EmbeddedPostgres) -> None:
    assert not server.is_running()
    started = time.monotonic()
    server.start()
    first_start = time.monotonic() - started
    url = server.url
    assert server.is_running()
    assert _query(url, "SELECT 1") == (1,)

    started = time.monotonic()
    server.start()  # already running: must just return
    assert time.monotonic() - started < 2
    assert server.url == url

    server.stop()
    assert not server.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    server.stop()  # stopping a stopped server is a no-op

    # A new object on the same directory finds the remembered port.
    again = EmbeddedPostgres(server.data_dir, durable=False)
    again.start()
    assert again.url == url
    assert _query(url, "SELECT current_database()") == ("autopo",)
    # Start of a fresh cluster (initdb included) stays in seconds.
    assert first_start < 30


def test_explicit_port(server: EmbeddedPostgres, pg_base_dir: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = EmbeddedPostgres(server.data_dir, port=port, durable=False)
    srv.start()
    try:
        assert srv.url == f"postgresql://autopo@127.0.0.1:{port}/autopo"
        assert _query(srv.url, "SELECT 1") == (1,)
        with pytest.raises(EmbeddedPostgresError, match="already running on port"):
            EmbeddedPostgres(server.data_dir, port=port + 1).start()
    finally:
        srv.stop()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(filter(None, [str(INCLUDE_DIR), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "PYTHONPATH": pythonpath, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "autopo_local.embedded_pg", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_cli(pg_base_dir: Path) -> None:
    data_dir = pg_base_dir / "cli"
    try:
        status = _cli("status", "--data-dir", str(data_dir))
        assert status.returncode == 3, status

        url = _cli("url", "--data-dir", str(data_dir))  # starts the server when needed
        assert url.returncode == 0, url.stderr
        assert url.stdout.count("\n") == 1
        uri = url.stdout.strip()
        assert uri.startswith("postgresql://autopo@127.0.0.1:")
        assert _query(uri, "SELECT 1") == (1,)

        status = _cli("status", "--data-dir", str(data_dir))
        assert status.returncode == 0 and uri in status.stdout

        # AUTOPO_PG_DIR is the default data dir.
        assert _cli("url", env={"AUTOPO_PG_DIR": str(data_dir)}).stdout.strip() == uri
        assert _cli("start", "--data-dir", str(data_dir)).returncode == 0

        stop = _cli("stop", "--data-dir", str(data_dir))
        assert stop.returncode == 0, stop.stderr
        assert _cli("status", "--data-dir", str(data_dir)).returncode == 3
    finally:
        EmbeddedPostgres(data_dir).stop()


def test_version_mismatch_is_a_clear_error(server: EmbeddedPostgres) -> None:
    bundled = bundled_pg_bin()
    if bundled is None or pg_major_version(bundled) == pg_major_version(server.pg_bin):
        pytest.skip("needs two PostgreSQL major versions (system and pgserver's)")
    server.start()
    server.stop()
    other = EmbeddedPostgres(server.data_dir, pg_bin=bundled)
    with pytest.raises(EmbeddedPostgresError, match="was created by PostgreSQL"):
        other.start()


def test_pgserver_bundled_binaries_work(pg_base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without system PostgreSQL falls back to pgserver's binaries: they must run here."""
    bundled = bundled_pg_bin()
    if bundled is None:
        pytest.skip("pgserver is not installed, so there are no bundled binaries to test")
    # Force the fallback the way a user would, through the environment.
    monkeypatch.setenv("AUTOPO_PG_BIN", str(bundled))
    srv = EmbeddedPostgres(pg_base_dir / "bundled", durable=False)
    assert srv.pg_bin == bundled
    try:
        srv.start()
        (version,) = _query(srv.url, "SHOW server_version")
        assert str(version).split(".")[0] == pg_major_version(bundled)
        # The postmaster, not a backend: a backend exits with its connection.
        postmaster_pid = int((srv.pgdata / "postmaster.pid").read_text().split()[0])
        exe = os.readlink(f"/proc/{postmaster_pid}/exe")
        assert Path(exe).resolve().parent == bundled.resolve()
        # The bundled server is complete enough for the project's schema.
        from autopo_pipelines.migrations import apply_migrations

        names = apply_migrations(srv.url, Path(__file__).resolve().parents[2] / "migrations")
        assert names and names[0].startswith("0001_")
    finally:
        srv.stop()
    assert not srv.is_running()


# --------------------------------------------------------------------------- a clone below a 0700 folder


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A folder only its owner may enter, as home folders and `mktemp -d` are (pytest's temp root is too)."""
    folder = Path(tempfile.mkdtemp(prefix="autopo-0700-"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def system_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where root keeps clusters its service user cannot reach in place: a throwaway one, not /var/lib."""
    base = Path(tempfile.mkdtemp(prefix="autopo-pg-system-"))
    base.chmod(0o711)  # as /var/lib is: others may pass through
    target = base / "autopo-pg"
    monkeypatch.setenv("AUTOPO_PG_SYSTEM_DIR", str(target))
    try:
        yield target
    finally:
        for child in target.glob("*") if target.exists() else []:
            if (child / "pgdata").is_dir():
                with contextlib.suppress(Exception):
                    subprocess.run(
                        ["pg_ctl", "-D", str(child / "pgdata"), "stop", "-m", "immediate"], capture_output=True
                    )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_a_cluster_below_a_0700_folder_starts_outside_it_as_root(private_folder: Path, system_dir: Path) -> None:
    data_dir = private_folder / "clone" / ".pg"
    srv = EmbeddedPostgres(data_dir, durable=False)
    try:
        srv.start()
        assert _query(srv.url, "SELECT current_database()") == ("autopo",)
        # The user's folder keeps its permissions; the cluster lives in the system folder, owned by the service user.
        assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700
        assert srv.cluster_dir.parent == system_dir
        assert srv.pgdata.stat().st_uid == srv.account.uid != 0
        assert (data_dir / "cluster-dir").read_text(encoding="utf-8").strip() == str(srv.cluster_dir)
        # Said once, in one line, naming the folder that was not searchable and where the cluster is.
        assert len(srv.notices) == 1 and "\n" not in srv.notices[0]
        assert f"{private_folder} is not searchable by {srv.account.name!r}" in srv.notices[0]
        assert f"so the cluster lives in {srv.cluster_dir}" in srv.notices[0]

        # Another process (the next `make` target) finds the same cluster through the pointer, and says nothing.
        srv.stop()
        again = EmbeddedPostgres(data_dir, durable=False)
        again.start()
        assert again.url == srv.url and again.notices == []
        assert _query(again.url, "SELECT 1") == (1,)
    finally:
        cluster = srv.cluster_dir
        EmbeddedPostgres(data_dir).destroy()
    assert not cluster.exists() and not data_dir.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_pgserver_binaries_in_a_0700_clone_run_from_a_copy(
    private_folder: Path, system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without system PostgreSQL, the clone (and so its .venv) below a 0700 folder."""
    from autopo_local import embedded_pg

    bundled = bundled_pg_bin()
    if bundled is None:
        pytest.skip("pgserver is not installed, so there are no bundled binaries to test")
    # Laid out as pgserver's wheel is: the binaries find pgserver.libs beside the package.
    site = private_folder / "clone" / ".venv" / "site-packages"
    venv_install = site / "pgserver" / "pginstall"
    shutil.copytree(bundled.parent, venv_install, symlinks=True)
    shutil.copytree(bundled.parents[2] / "pgserver.libs", site / "pgserver.libs", symlinks=True)
    monkeypatch.setattr(embedded_pg, "bundled_pg_bin", lambda: venv_install / "bin")
    monkeypatch.setenv("AUTOPO_PG_BIN", str(venv_install / "bin"))
    srv = EmbeddedPostgres(private_folder / "clone" / ".pg", durable=False)
    try:
        srv.start()
        postmaster_pid = int((srv.pgdata / "postmaster.pid").read_text().split()[0])
        exe = Path(os.readlink(f"/proc/{postmaster_pid}/exe"))
        copy = exe.parents[3]
        assert copy.parent == system_dir and copy.name.startswith("pgserver-")
        assert "pgserver's binaries are run from a copy in" in srv.notices[0]
        (version,) = _query(srv.url, "SHOW server_version")
        assert str(version).split(".")[0] == pg_major_version(venv_install / "bin")
    finally:
        srv.destroy()
