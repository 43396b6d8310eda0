"""A small, strict SQL migration runner.

Migrations are files ``NNNN_description.sql`` in one directory, applied in
numeric order, each in its own transaction, and recorded in
``schema_migrations`` (version, name, checksum, applied_at). Running again
applies only new files. Editing a file that was already applied is an error
naming it: a schema change is a new migration, never an edit, otherwise
databases that applied the old text would silently differ from new ones.

A session advisory lock serialises concurrent runners (two schedulers or
workers starting at once), so the second waits and then finds nothing to do.

Files must not contain their own BEGIN/COMMIT, nor statements that cannot run
in a transaction (CREATE INDEX CONCURRENTLY, VACUUM).

CLI::

    python -m autopo_pipelines.migrations --url URL [--dir migrations]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
# Arbitrary constant identifying "autopo schema migrations" among advisory
# locks of this database (the ASCII of "autopomg").
_LOCK_KEY = 0x6175746F706F6D67
_FILE_RE = re.compile(r"^(?P<version>\d+)_(?P<label>[A-Za-z0-9_\-]+)\.sql$")


class MigrationError(RuntimeError):
    """The migrations directory or the recorded history is inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # file stem, e.g. "0001_stock_health_snapshots"
    path: Path
    checksum: str  # sha256 of the file's text with newlines normalised

    def read_sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(migrations_dir: Path) -> list[Migration]:
    """Migrations of ``migrations_dir`` in the order they apply."""
    directory = Path(migrations_dir)
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            # A typo'd name would otherwise be skipped without anyone noticing.
            raise MigrationError(f"{path.name}: migration files must be named NNNN_description.sql")
        version = int(match.group("version"))
        if version in found:
            raise MigrationError(f"{path.name} and {found[version].path.name} share migration version {version}")
        found[version] = Migration(
            version=version,
            name=path.stem,
            path=path,
            # A checkout with CRLF line endings is not a change to the migration.
            checksum=hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest(),
        )
    return [found[v] for v in sorted(found)]


def _ensure_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {} (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        ).format(sql.Identifier(MIGRATIONS_TABLE))
    )


def _applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, tuple[str, str]]:
    rows = conn.execute(
        sql.SQL("SELECT version, name, checksum FROM {}").format(sql.Identifier(MIGRATIONS_TABLE))
    ).fetchall()
    return {int(str(v)): (str(n), str(c)) for v, n, c in rows}


def _check_history(migrations: Sequence[Migration], applied: dict[int, tuple[str, str]]) -> None:
    by_version = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            # Tolerated: a database may be ahead of an old checkout; nothing to redo.
            log.warning("migration %s is recorded as applied but its file is missing", name)
            continue
        if migration.name != name:
            raise MigrationError(
                f"{migration.path.name}: version {version} was applied as {name!r}; "
                "applied migrations must not be renamed"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.path.name} was changed after it was applied "
                f"(checksum {checksum[:12]} recorded, {migration.checksum[:12]} now); "
                "write a new migration instead of editing an applied one"
            )


def apply_migrations(conninfo: str, migrations_dir: Path) -> list[str]:
    """Apply the pending migrations of ``migrations_dir``; return their names in order."""
    migrations = discover(migrations_dir)
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
        # Session-level lock, taken before touching schema_migrations: even
        # CREATE TABLE IF NOT EXISTS races between two sessions.
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            _ensure_table(conn)
            applied = _applied(conn)
            # Validate the whole history before applying anything, so a bad
            # edit stops the run before the schema moves further.
            _check_history(migrations, applied)
            for migration in migrations:
                if migration.version in applied:
                    continue
                log.info("applying migration %s", migration.name)
                with conn.transaction():
                    try:
                        conn.execute(migration.read_sql())
                    except psycopg.Error as exc:
                        raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
                    conn.execute(
                        sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                            sql.Identifier(MIGRATIONS_TABLE)
                        ),
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autopo_pipelines.migrations",
        description="Apply the project's SQL migrations to a PostgreSQL database.",
    )
    parser.add_argument("--url", required=True, help="PostgreSQL connection URI or conninfo")
    parser.add_argument(
        "--dir", type=Path, default=Path("migrations"), help="directory of NNNN_name.sql files (default: ./migrations)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        names = apply_migrations(args.url, args.dir)
    except (MigrationError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(names)} migration(s)" + (": " + ", ".join(names) if names else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
