"""The project-managed PostgreSQL cluster, with system and pgserver-bundled binaries."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest

from autopo_local.embedded_pg import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    bundled_pg_bin,
    find_pg_bin,
    free_port,
    pg_major_version,
)

pytestmark = pytest.mark.integration

PSQL = shutil.which("psql") or ("/usr/bin/psql" if os.access("/usr/bin/psql", os.X_OK) else None)
# postgresql://autopo:PASSWORD@127.0.0.1:PORT/autopo, the password URL-encoded.
URL_FORM = re.compile(r"postgresql://autopo:([^@/:]+)@127\.0\.0\.1:(\d+)/autopo")


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
    assert URL_FORM.fullmatch(pg_server.url), pg_server.url
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
        assert srv.url == f"postgresql://autopo:{quote(srv.password, safe='')}@127.0.0.1:{port}/autopo"
        assert _query(srv.url, "SELECT 1") == (1,)
        with pytest.raises(EmbeddedPostgresError, match="already running on port"):
            EmbeddedPostgres(server.data_dir, port=port + 1).start()
    finally:
        srv.stop()


def _psql(uri: str, query: str) -> str:
    """``psql URI -c QUERY`` with no password from anywhere but the URI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(
        [str(PSQL), uri, "-X", "-A", "-t", "-c", query],
        capture_output=True,
        text=True,
        env={**env, "PGPASSFILE": os.devnull, "PGCONNECT_TIMEOUT": "5"},
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
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
        assert URL_FORM.fullmatch(uri), uri
        # Usable as it is, by psycopg and by psql (what `make db-url` is for), with no other password source.
        assert _query(uri, "SELECT 1") == (1,)
        if PSQL is not None:
            assert _psql(uri, "SELECT current_user") == "autopo"

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
        # pgserver's own binaries, or (as root, when the service user cannot reach the venv: a clone below a
        # 0700 folder) their copy outside it.
        assert Path(exe).resolve().parent == srv.pg_bin.resolve()
        if srv.pg_bin != bundled:
            assert srv.pg_bin.parts[-3:] == ("pgserver", "pginstall", "bin") and os.geteuid() == 0
        # The bundled server is complete enough for the project's schema.
        from autopo_pipelines.migrations import apply_migrations

        names = apply_migrations(srv.url, Path(__file__).resolve().parents[2] / "migrations")
        assert names and names[0].startswith("0001_")
    finally:
        srv.stop()
    assert not srv.is_running()


# --------------------------------------------------------------------------- let no one in


@pytest.fixture
def no_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq finds no password but the one a test passes (no PGPASSWORD, no ~/.pgpass)."""
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGUSER", "PGHOST", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)


def _refused(**params: object) -> str:
    """The error of a connection to the cluster that must be refused."""
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(connect_timeout=5, passfile=os.devnull, **params).close()  # type: ignore[arg-type]
    return str(raised.value)


def _hba_methods(server: EmbeddedPostgres) -> list[str]:
    lines = (server.pgdata / "pg_hba.conf").read_text(encoding="utf-8").splitlines()
    rules = [line.split("#", 1)[0].split() for line in lines]
    return [rule[3] if rule[0] == "local" else rule[4] for rule in rules if rule]


@pytest.mark.usefixtures("no_password_sources")
def test_no_connection_without_the_password(server: EmbeddedPostgres, tmp_path: Path) -> None:
    server.start()
    port = server.port
    tcp = {"host": "127.0.0.1", "port": port, "dbname": "autopo"}
    # The superuser: no password, a wrong one.
    assert "password" in _refused(**tcp, user="autopo")
    assert "password authentication failed" in _refused(**tcp, user="autopo", password="wrong")
    # Any other role, with a password or without one.
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE ROLE loader LOGIN PASSWORD 'loader-secret'")
        conn.execute("CREATE ROLE nopassword LOGIN")
        (encryption,) = conn.execute("SHOW password_encryption").fetchone() or ("",)
    assert encryption == "scram-sha-256"
    assert "password" in _refused(**tcp, user="loader")
    assert "password authentication failed" in _refused(**tcp, user="loader", password="wrong")
    assert "password" in _refused(**tcp, user="nopassword")
    assert "password authentication failed" in _refused(**tcp, user="nopassword", password="anything")
    with psycopg.connect(**tcp, user="loader", password="loader-secret", connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("loader",)
    # So a passwordless local user cannot reach the superuser's COPY ... TO PROGRAM.
    marker = tmp_path / "ran"
    with pytest.raises(psycopg.OperationalError):
        with psycopg.connect(**tcp, user="autopo", passfile=os.devnull, connect_timeout=5) as conn:
            conn.execute(f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'")
    assert not marker.exists()
    # Every rule of pg_hba.conf asks for the password; no Unix socket at all, and TCP on loopback only.
    assert _hba_methods(server) and set(_hba_methods(server)) == {"scram-sha-256"}
    assert _query(server.url, "SHOW unix_socket_directories") == ("",)
    assert _query(server.url, "SHOW listen_addresses") == ("127.0.0.1",)
    for folder in ("/tmp", "/var/run/postgresql", "/run/postgresql", str(server.pgdata), str(server.cluster_dir)):
        assert not Path(folder, f".s.PGSQL.{port}").exists(), folder


def test_the_password_file_is_private_and_owned_by_the_invoking_user(server: EmbeddedPostgres) -> None:
    server.start()
    path = server.data_dir / "superuser-password"
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()
    password = path.read_text(encoding="utf-8").strip()
    assert len(password) >= 32
    assert server.password == password
    assert unquote(urlsplit(server.url).password or "") == password
    # initdb's copy of the password (--pwfile) is gone: the cluster's folder holds the cluster and its log.
    assert sorted(p.name for p in server.cluster_dir.iterdir() if not p.name.startswith(".lock")) == [
        "pgdata",
        "postgres.log",
        "superuser-password",
    ]
    # Restarted, by another object: the same password, still private.
    server.stop()
    again = EmbeddedPostgres(server.data_dir, durable=False)
    again.start()
    assert again.url == server.url
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


@pytest.mark.usefixtures("no_password_sources")
def test_a_password_that_needs_encoding_works_in_every_url(
    server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way the project uses ``server.url``: psycopg, psql, the admin URL cut from it, Airflow's
    SQLAlchemy metadata URL (stack.py) and the warehouse connection Airflow parses (AIRFLOW_CONN_AUTOPO_DB)."""
    import sqlalchemy

    from autopo_pipelines.orchestration.connections import warehouse_conninfo

    password = "p@ss:w/rd%?#&=+ 1"
    server.data_dir.mkdir(parents=True)
    fd = os.open(server.data_dir / "superuser-password", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    server.start()
    url = server.url
    assert quote(password, safe="") in url and password not in url
    assert _query(url, "SELECT current_user") == ("autopo",)
    if PSQL is not None:
        assert _psql(url, "SELECT current_database()") == "autopo"
    admin = url.rsplit("/", 1)[0] + "/postgres"  # tests/conftest.py, stack.py, the benchmark
    assert _query(admin, "SELECT current_database()") == ("postgres",)
    metadata = url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1) + "/postgres"
    assert sqlalchemy.engine.make_url(metadata).password == password
    # As Airflow reads it from the environment stack.py sets: as it is, no % interpolation.
    from airflow.configuration import conf

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", metadata)
    assert conf.get("database", "sql_alchemy_conn") == metadata
    engine = sqlalchemy.create_engine(metadata)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_user")).scalar() == "autopo"
    finally:
        engine.dispose()
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", url)
    assert _query(warehouse_conninfo(), "SELECT current_user") == ("autopo",)


def _old_trust_cluster(srv: EmbeddedPostgres, *, running: bool) -> None:
    """A cluster as this module made it before it used passwords: initdb --auth=trust, no password file."""
    srv._prepare_data_dir()
    srv._run(
        [
            str(srv.pg_bin / "initdb"),
            "-D",
            str(srv.pgdata),
            "-U",
            "autopo",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    with open(srv.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\ninclude_if_exists = 'autopo.conf'\n")
    port = free_port()
    (srv.pgdata / "autopo.conf").write_text(
        f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n", encoding="utf-8"
    )
    if srv.account.uid is not None:
        os.chown(srv.pgdata / "autopo.conf", srv.account.uid, srv.account.gid)
    srv._pg_ctl("start", "-w", "-l", str(srv.log_file))
    trust = f"postgresql://autopo@127.0.0.1:{port}"
    with psycopg.connect(f"{trust}/postgres", autocommit=True, passfile=os.devnull) as conn:
        conn.execute("CREATE DATABASE autopo")
    with psycopg.connect(f"{trust}/autopo", autocommit=True, passfile=os.devnull) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    if not running:
        srv._pg_ctl("stop", "-w", "-m", "fast")


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
@pytest.mark.usefixtures("no_password_sources")
def test_an_old_trust_cluster_is_upgraded_to_passwords(server: EmbeddedPostgres, running: bool) -> None:
    _old_trust_cluster(server, running=running)
    assert not (server.data_dir / "superuser-password").exists()
    assert "trust" in _hba_methods(server)

    upgraded = EmbeddedPostgres(server.data_dir, durable=False)
    upgraded.start()
    # Its data kept; a password now, private; passwordless connections refused.
    assert _query(upgraded.url, "SELECT answer FROM kept") == (42,)
    path = server.data_dir / "superuser-password"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600 and os.lstat(path).st_uid == os.geteuid()
    assert set(_hba_methods(upgraded)) == {"scram-sha-256"}
    assert "password" in _refused(host="127.0.0.1", port=upgraded.port, user="autopo", dbname="autopo")
    assert any("password" in notice for notice in upgraded.notices)
    # And it stays so across restarts.
    upgraded.stop()
    again = EmbeddedPostgres(server.data_dir, durable=False)
    again.start()
    assert again.url == upgraded.url and again.notices == []
    assert _query(again.url, "SELECT answer FROM kept") == (42,)
    assert "password" in _refused(host="127.0.0.1", port=again.port, user="autopo", dbname="autopo")


def test_a_lost_password_file_is_a_clear_error(server: EmbeddedPostgres) -> None:
    server.start()
    server.stop()
    (server.data_dir / "superuser-password").unlink()
    with pytest.raises(EmbeddedPostgresError) as raised:
        EmbeddedPostgres(server.data_dir, durable=False).start()
    message = str(raised.value)
    assert "\n" not in message and "superuser-password" in message and "make clean" in message


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
        # The superuser's password in the user's folder, the user's own; none left in the service user's.
        password_file = os.lstat(data_dir / "superuser-password")
        assert stat.S_IMODE(password_file.st_mode) == 0o600 and password_file.st_uid == os.geteuid() == 0
        assert sorted(p.name for p in srv.cluster_dir.iterdir()) == ["pgdata", "postgres.log"]
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
