"""Loading a day's CSV into a PostgreSQL table, atomically per date.

The contract for the snapshot tables: after a load the table holds exactly the
CSV's rows for that date, and a failed load leaves the previous rows of that
date untouched. Everything therefore happens in one transaction, so readers
see the old rows or the new rows, never a mix, and never an empty gap.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import psycopg
from psycopg import sql

# Large enough to keep round trips few, small enough that memory stays flat
# whatever the file size.
COPY_CHUNK_BYTES = 1 << 20
_STAGE = "_autopo_stage"
_STAGE_LINE = "_autopo_line"


class LoadError(RuntimeError):
    """The CSV could not be loaded; the table was left as it was."""


class LoadConnectionError(LoadError):
    """The database could not be reached, or the connection to it was lost, during a load.

    Unlike bad data, this is worth retrying as it is. When the connection was
    lost while committing, the message says so: the load may then have been
    committed, and a retry is still safe (it replaces the date's rows again).
    """


def _reason(exc: BaseException) -> str:
    # libpq's messages run over several tab-indented lines; one line reads better in a task log.
    return " ".join(str(exc).split()).rstrip(".")


def _connection_lost(conn: psycopg.Connection[Any], exc: psycopg.Error) -> bool:
    """Whether ``exc`` means the server went away, rather than that it refused the data."""
    if conn.closed:
        return True
    # 08: connection exceptions; 57P: the server is shutting down, crashed or is starting up.
    # Both can arrive as an error message before libpq notices the closed socket.
    return (exc.sqlstate or "").startswith(("08", "57P"))


def _table_ident(table: str) -> sql.Identifier:
    # "schema.table" names a table in a schema; quoting it whole would look
    # for a table literally called "schema.table".
    parts = table.split(".")
    if not all(parts) or len(parts) > 2:
        raise ValueError(f"invalid table name {table!r}")
    return sql.Identifier(*parts)


def _read_header(handle: BinaryIO, csv_path: Path) -> list[str]:
    """Parse the header line and rewind ``handle`` to the start of the file."""
    first = handle.readline()
    # COPY skips the header itself (HEADER true), so its error messages count
    # lines as the file does, like the date check below.
    handle.seek(0)
    if not first:
        raise LoadError(f"{csv_path}: empty file, a header row is required")
    # utf-8-sig: tolerate a BOM written by spreadsheet tools.
    text = first.decode("utf-8-sig")
    return next(csv.reader([text]), [])


def replace_date_rows(
    conninfo: str,
    *,
    table: str,
    date_column: str,
    date: datetime.date,
    csv_path: Path,
    columns: Sequence[str],
) -> int:
    """Replace ``table``'s rows for ``date`` by the rows of ``csv_path``; return rows loaded.

    The CSV has a header row equal to ``columns`` (same names, same order);
    empty fields are NULL. Every row must carry ``date`` in ``date_column``.
    Raises LoadError when the table refuses the data, and its subclass
    LoadConnectionError when the database cannot be reached or goes away.
    """
    columns = list(columns)
    if date_column not in columns:
        raise ValueError(f"date column {date_column!r} is not among the columns {columns}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate column names in {columns}")
    if _STAGE_LINE in columns:
        raise ValueError(f"column name {_STAGE_LINE!r} is reserved")
    csv_path = Path(csv_path)
    target = _table_ident(table)
    stage = sql.Identifier(_STAGE)
    line = sql.Identifier(_STAGE_LINE)
    date_col = sql.Identifier(date_column)
    col_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)

    with open(csv_path, "rb") as handle:
        header = _read_header(handle, csv_path)
        if header != columns:
            # Loading by position with a different header would put values
            # into the wrong columns without any type error to stop it.
            raise LoadError(f"{csv_path}: header {header} does not match the expected columns {columns}")

        day = date.isoformat()
        # How far the load got, for the message when the server goes away: before the
        # COMMIT is sent nothing can have changed; during it, the outcome is unknown.
        phase = "connect"
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
                phase = "load"
                with conn.transaction():
                    # Serialise loads of the same (table, date); other dates load in parallel.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s), %s::int4)",
                        (f"replace_date_rows:{table}", date.toordinal()),
                    )
                    # Stage first: the date of every row is checked before the
                    # live rows are touched, with the offending CSV lines named.
                    # Only column types are copied, so NOT NULL/CHECK/key errors
                    # surface on the final INSERT against the real table.
                    conn.execute(
                        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                            stage, col_list, target
                        )
                    )
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint GENERATED ALWAYS AS IDENTITY").format(stage, line)
                    )
                    copy_sql = sql.SQL(
                        "COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '', ENCODING 'UTF8')"
                    ).format(stage, col_list)
                    try:
                        with conn.cursor() as cur:
                            with cur.copy(copy_sql) as copy:
                                while chunk := handle.read(COPY_CHUNK_BYTES):
                                    copy.write(chunk)
                    except psycopg.Error as exc:
                        if _connection_lost(conn, exc):
                            raise
                        context = exc.diag.context or ""
                        raise LoadError(
                            f"{csv_path}: loading into {table} for {date.isoformat()} failed: "
                            f"{exc.diag.message_primary or exc} [{context.strip()}]"
                        ) from exc

                    wrong = conn.execute(
                        sql.SQL(
                            # + 1: file line numbers, the header being line 1.
                            "SELECT {line} + 1, {col}::text FROM {stage} "
                            "WHERE {col} IS DISTINCT FROM %s ORDER BY {line} LIMIT 5"
                        ).format(line=line, col=date_col, stage=stage),
                        (date,),
                    ).fetchall()
                    if wrong:
                        shown = ", ".join(f"line {n}: {d or 'blank'}" for n, d in wrong)
                        raise LoadError(
                            f"{csv_path}: rows for a date other than {date.isoformat()} in "
                            f"{date_column} ({shown}); nothing loaded"
                        )

                    try:
                        conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, date_col), (date,))
                        cur = conn.execute(
                            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, col_list, col_list, stage)
                        )
                    except psycopg.Error as exc:
                        if _connection_lost(conn, exc):
                            raise
                        raise LoadError(
                            f"{csv_path}: loading into {table} for {date.isoformat()} failed: "
                            f"{exc.diag.message_primary or exc}"
                            + (f" ({exc.diag.message_detail})" if exc.diag.message_detail else "")
                        ) from exc
                    rows = cur.rowcount
                    # In the same transaction: the record says which load the date's rows are, never another's.
                    conn.execute(
                        "INSERT INTO snapshot_loads (table_name, snapshot_date, rows, loaded_at) "
                        "VALUES (%s, %s, %s, now()) ON CONFLICT (table_name, snapshot_date) "
                        "DO UPDATE SET rows = EXCLUDED.rows, loaded_at = EXCLUDED.loaded_at",
                        (table, date, rows),
                    )
                    # Leaving the block commits: a connection lost from here on leaves the outcome unknown.
                    phase = "commit"
        except psycopg.Error as exc:
            if phase == "connect":
                raise LoadConnectionError(
                    f"cannot connect to the database to load {table} for {day}: {_reason(exc)}; "
                    "nothing was changed, the date keeps its previous rows; "
                    "retry the load when the database is reachable"
                ) from exc
            if not _connection_lost(conn, exc):
                raise
            if phase == "commit":
                raise LoadConnectionError(
                    f"the database connection was lost while committing the load of {table} for {day} "
                    f"from {csv_path}: {_reason(exc)}; the load may or may not have been committed "
                    "(snapshot_loads says which load the date holds); "
                    "retrying it is safe, it replaces the date's rows again"
                ) from exc
            raise LoadConnectionError(
                f"the database connection was lost while loading {table} for {day} from {csv_path}: "
                f"{_reason(exc)}; nothing was committed, so the date keeps its previous rows, "
                "and the load can be retried"
            ) from exc
    return rows


@dataclass(frozen=True)
class LoadedSnapshot:
    """A date's rows of a snapshot table as its latest load left them."""

    table: str
    date: datetime.date
    loaded_at: datetime.datetime
    rows: pd.DataFrame


def read_loaded_snapshot(
    conninfo: str, *, table: str, date_column: str, date: datetime.date, columns: Sequence[str]
) -> LoadedSnapshot | None:
    """The date's rows of ``table``, or None when no load of the date was ever recorded.

    An empty frame means the date was loaded with no rows, which is not the same as never loaded.
    """
    ident = _table_ident(table)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
        # One snapshot of the database for both reads: a load committing in between is seen whole or not at all.
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            load = conn.execute(
                "SELECT loaded_at FROM snapshot_loads WHERE table_name = %s AND snapshot_date = %s", (table, date)
            ).fetchone()
            if load is None:
                return None
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
                        sql.SQL(", ").join(sql.Identifier(c) for c in columns), ident, sql.Identifier(date_column)
                    ),
                    (date,),
                )
                records = cur.fetchall()
    return LoadedSnapshot(table, date, load[0], pd.DataFrame.from_records(records, columns=list(columns)))


def create_table_if_missing(conninfo: str, table: str, ddl: str) -> bool:
    """Run a pipeline's own CREATE TABLE when its table does not exist yet; True when it did."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"create_table:{table}",))
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if exists and exists[0]:
                return False
            conn.execute(ddl.encode())
            return True


def count_rows(conninfo: str, table: str, date_column: str, date: datetime.date) -> int:
    """Rows of ``table`` whose ``date_column`` equals ``date``."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(_table_ident(table), sql.Identifier(date_column)),
            (date,),
        ).fetchone()
    return int(row[0]) if row else 0
