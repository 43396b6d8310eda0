"""Shared fixtures: a real, throwaway PostgreSQL cluster for the whole session.

The cluster is started once per session (a second or so), migrated, and
stopped at the end; tests that need a pristine schema create their own
database in it (``fresh_db_url``) instead of starting another cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import airflow_env  # noqa: F401  (sets the Airflow home before anything imports Airflow)
from autopo_local.embedded_pg import EmbeddedPostgres
from autopo_pipelines.migrations import apply_migrations

REPO_ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
# Tables the migrations create; truncated together, so the foreign key needs no ordering.
DATA_TABLES = (
    "stock_health_snapshots",
    "po_snapshots",
    "snapshot_loads",
    "pipeline_file_jobs",
    "pipeline_runs",
    "day_locks",
)


def _stop_leftover_clusters(base: Path) -> None:
    # A test that failed between start() and stop() must not leave a server
    # running on a directory that is about to be deleted.
    for child in base.iterdir() if base.exists() else []:
        if (child / "pgdata").is_dir():
            with contextlib.suppress(Exception):
                EmbeddedPostgres(child).stop()


@pytest.fixture(scope="session")
def pg_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory for clusters that the PostgreSQL server process can reach."""
    if os.geteuid() != 0:
        base = tmp_path_factory.mktemp("pg")
        try:
            yield base
        finally:
            _stop_leftover_clusters(base)
        return
    # As root, postgres runs as an unprivileged service account that must be
    # able to traverse to its data dir. pytest's temp root is 0700 and every
    # pytest session that starts (other suites running concurrently included)
    # resets it to 0700, so clusters cannot live there: use a private dir
    # that others may traverse but not list.
    base = Path(tempfile.mkdtemp(prefix="autopo-pg-tests-"))
    base.chmod(stat.S_IRWXU | stat.S_IXGRP | stat.S_IXOTH)
    try:
        yield base
    finally:
        _stop_leftover_clusters(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(pg_base_dir: Path) -> Iterator[EmbeddedPostgres]:
    # durable=False: no fsync for a cluster that is deleted after the session.
    server = EmbeddedPostgres(pg_base_dir / "session", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: EmbeddedPostgres) -> str:
    """URL of the session cluster's ``autopo`` database, migrated to the latest schema."""
    apply_migrations(pg_server.url, MIGRATIONS_DIR)
    return pg_server.url


@pytest.fixture
def clean_tables(pg_url: str) -> str:
    """``pg_url`` with the data tables emptied, for tests that count rows."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in DATA_TABLES)
            )
        )
    return pg_url


@pytest.fixture
def fresh_db_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """URL of a new, empty database in the session cluster, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin_url = pg_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
