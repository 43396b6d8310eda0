"""Loading a day's CSV into a PostgreSQL table, atomically per date.

The contract for the snapshot tables: after a load the table holds exactly the
CSV's rows for that date, and a failed load leaves the previous rows of that
date untouched. Everything therefore happens in one transaction, so readers
see the old rows or the new rows, never a mix, and never an empty gap.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import functools
import io
import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import pandas as pd
import psycopg
from psycopg import sql

from autopo_pipelines import storage
from autopo_pipelines.storage import StoragePath

# Large enough to keep round trips few, small enough that memory stays flat
# whatever the file size.
COPY_CHUNK_BYTES = 1 << 20
_STAGE = "_autopo_stage"
_STAGE_LINE = "_autopo_line"
_T = TypeVar("_T")
# The day's CSVs guard text that a spreadsheet would run as a formula with a leading quote, and add
# one to text that starts with a quote (aggregate.csv_bytes): a text field that starts with a quote
# has exactly one taken off after COPY, so the table holds the text as the store's file had it.
GUARD = "'"
# Where a guarded field shows in the CSV's bytes: after a comma or a line break, unquoted or inside
# an opening double quote. A CSV without any of these has no guarded field and the load skips the
# restoring UPDATE (a scan of the whole stage); one inside a quoted field only costs that scan.
_GUARDED_FIELD_STARTS = (b",'", b"\n'", b",\"'", b"\n\"'")

log = logging.getLogger(__name__)


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


def _read_header(handle: BinaryIO, csv_path: StoragePath) -> list[str]:
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
    csv_path: StoragePath,
    columns: Sequence[str],
) -> int:
    """Replace ``table``'s rows for ``date`` by the rows of ``csv_path``; return rows loaded.

    The CSV has a header row equal to ``columns`` (same names, same order);
    empty fields are NULL; a field of a text column that starts with a quote
    (``'``) loses that one quote (``GUARD``, the day's CSVs' guard against
    spreadsheet formulas). Every row must carry ``date`` in ``date_column``.
    A table partitioned by list of ``date_column`` gets the date's partition
    swapped for a new one (see ``_swap_in_partition``); any other table has the
    date's rows deleted and inserted in one transaction.
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
    target = _table_ident(table)

    with storage.open_for_reading(csv_path) as handle:
        header = _read_header(handle, csv_path)
    if header != columns:
        # Loading by position with a different header would put values
        # into the wrong columns without any type error to stop it.
        raise LoadError(f"{csv_path}: header {header} does not match the expected columns {columns}")

    load = _Load(conninfo, table, target, date_column, date, csv_path, columns)
    with _connected(load) as conn:
        partitioned = _date_partitioned(conn, target, date_column)
        return _swap_in_partition(conn, load, partitioned) if partitioned else _replace_in_place(conn, load)


@contextlib.contextmanager
def _connected(load: _Load) -> Iterator[psycopg.Connection[Any]]:
    """A connection for the load; the database's errors become LoadConnectionError when it could not be
    reached or went away (saying whether anything may have changed), the others pass through."""
    conn: psycopg.Connection[Any] | None = None
    day = load.date.isoformat()
    try:
        with psycopg.connect(load.conninfo, autocommit=True, connect_timeout=30) as conn:
            load.phase = "load"
            yield conn
    except psycopg.Error as exc:
        if load.phase == "connect" or conn is None:
            raise LoadConnectionError(
                f"cannot connect to the database to load {load.table} for {day}: {_reason(exc)}; "
                "nothing was changed, the date keeps its previous rows; "
                "retry the load when the database is reachable"
            ) from exc
        if not _connection_lost(conn, exc):
            raise
        if load.phase == "commit":
            raise LoadConnectionError(
                f"the database connection was lost while committing the load of {load.table} for {day} "
                f"from {load.csv_path}: {_reason(exc)}; the load may or may not have been committed "
                "(snapshot_loads says which load the date holds); "
                "retrying it is safe, it replaces the date's rows again"
            ) from exc
        raise _lost_while_loading(load, exc) from exc


@dataclass
class _Load:
    """One load's parameters, and how far it got (for the message when the server goes away)."""

    conninfo: str
    table: str
    target: sql.Identifier
    date_column: str
    date: datetime.date
    # A local file or an object (storage.StoragePath): read in ranges, streamed into COPY.
    csv_path: StoragePath
    columns: list[str]
    # connect: nothing can have changed; load: nothing committed to the table; commit: outcome unknown.
    phase: str = "connect"

    @property
    def column_list(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)

    def failed(self, exc: psycopg.Error, *, where: str = "", line_offset: int = 0) -> LoadError:
        """The table refused the data: the message names the file and, from COPY's context, its line."""
        context = (exc.diag.context or "").strip()
        if line_offset:
            context = re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + line_offset}", context)
        if where:
            context = context.replace(where, self.table)
        detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail and not context else ""
        return LoadError(
            f"{self.csv_path}: loading into {self.table} for {self.date.isoformat()} failed: "
            f"{exc.diag.message_primary or exc}{detail}" + (f" [{context}]" if context else "")
        )


def _lost_while_loading(load: _Load, exc: BaseException) -> LoadConnectionError:
    return LoadConnectionError(
        f"the database connection was lost while loading {load.table} for {load.date.isoformat()} from "
        f"{load.csv_path}: {_reason(exc)}; nothing was committed, so the date keeps its previous rows, "
        "and the load can be retried"
    )


def _other_date_error(load: _Load, wrong: Sequence[tuple[int, str | None]]) -> LoadError:
    shown = ", ".join(f"line {n}: {d or 'blank'}" for n, d in wrong)
    return LoadError(
        f"{load.csv_path}: rows for a date other than {load.date.isoformat()} in "
        f"{load.date_column} ({shown}); nothing loaded"
    )


class _GuardWatch:
    """Whether the CSV bytes fed to it, a chunk at a time, hold a field that starts with GUARD."""

    def __init__(self) -> None:
        self.seen = False
        # A slice starts at a line start, like the file.
        self._tail = b"\n"

    def feed(self, chunk: bytes) -> None:
        if self.seen or not chunk:
            return
        self.seen = any(mark in chunk for mark in _GUARDED_FIELD_STARTS) or any(
            mark in self._tail + chunk[:2] for mark in _GUARDED_FIELD_STARTS
        )
        self._tail = (self._tail + chunk[-2:])[-2:]


def _text_columns(conn: psycopg.Connection[Any], load: _Load) -> list[str]:
    """The load's columns that the table holds as text (text, varchar, char: PostgreSQL's string category)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped AND t.typcategory = 'S'",
        (load.target.as_string(conn),),
    ).fetchall()
    text = {str(r[0]) for r in rows}
    return [c for c in load.columns if c in text]


def _restore_guarded_text(conn: psycopg.Connection[Any], load: _Load, stage: sql.Identifier) -> None:
    """Take the CSV's GUARD off the stage's text values that start with it: one UPDATE of those rows only."""
    columns = [sql.Identifier(c) for c in _text_columns(conn, load)]
    if not columns:
        return
    # ascii(c) is the code of c's first character (0 for '', NULL for NULL): the cheapest test of a
    # first character PostgreSQL has, a third faster than left(c, 1) = <quote> over 400,000 rows.
    guard = sql.Literal(ord(GUARD))
    conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE {}").format(
            stage,
            sql.SQL(", ").join(
                sql.SQL("{c} = CASE WHEN ascii({c}) = {g} THEN substr({c}, 2) ELSE {c} END").format(c=c, g=guard)
                for c in columns
            ),
            sql.SQL(" OR ").join(sql.SQL("ascii({}) = {}").format(c, guard) for c in columns),
        )
    )


def _stage_csv(conn: psycopg.Connection[Any], load: _Load) -> sql.Identifier:
    """The CSV's rows in a temporary table of the target's column types (dropped at commit), every row's
    date checked, with the offending CSV lines named. Only column types are copied, so NOT NULL/CHECK/key
    errors surface on the final INSERT against the real table. Call inside the load's transaction."""
    stage = sql.Identifier(_STAGE)
    line = sql.Identifier(_STAGE_LINE)
    date_col = sql.Identifier(load.date_column)
    col_list = load.column_list
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            stage, col_list, load.target
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint GENERATED ALWAYS AS IDENTITY").format(stage, line))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '', ENCODING 'UTF8')").format(
        stage, col_list
    )
    watch = _GuardWatch()
    try:
        with conn.cursor() as cur, storage.open_for_reading(load.csv_path) as handle:
            with cur.copy(copy_sql) as copy:
                while chunk := handle.read(COPY_CHUNK_BYTES):
                    watch.feed(chunk)
                    copy.write(chunk)
        if watch.seen:
            _restore_guarded_text(conn, load, stage)
    except psycopg.Error as exc:
        if _connection_lost(conn, exc):
            raise
        raise load.failed(exc) from exc

    wrong = conn.execute(
        sql.SQL(
            # + 1: file line numbers, the header being line 1.
            "SELECT {line} + 1, {col}::text FROM {stage} WHERE {col} IS DISTINCT FROM %s ORDER BY {line} LIMIT 5"
        ).format(line=line, col=date_col, stage=stage),
        (load.date,),
    ).fetchall()
    if wrong:
        raise _other_date_error(load, wrong)
    return stage


def _replace_in_place(conn: psycopg.Connection[Any], load: _Load) -> int:
    """DELETE and INSERT in one transaction: readers see the old rows or the new, never a mix or a gap."""
    date_col = sql.Identifier(load.date_column)
    col_list = load.column_list
    with conn.transaction():
        # Serialise loads of the same (table, date); other dates load in parallel.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s::int4)", _lock_key(load))
        stage = _stage_csv(conn, load)
        try:
            conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(load.target, date_col), (load.date,))
            cur = conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(load.target, col_list, col_list, stage)
            )
        except psycopg.Error as exc:
            if _connection_lost(conn, exc):
                raise
            raise load.failed(exc) from exc
        rows = cur.rowcount
        _record_load(conn, load, rows)
        # Leaving the block commits: a connection lost from here on leaves the outcome unknown.
        load.phase = "commit"
    return rows


class StaleBaseError(LoadError):
    """The date does not hold the load a partial replacement was made against: load the whole date."""


def replace_date_partitions(
    conninfo: str,
    *,
    table: str,
    date_column: str,
    date: datetime.date,
    partition_column: str,
    partitions: Sequence[str],
    csv_path: StoragePath,
    columns: Sequence[str],
    rows_before: int,
) -> int:
    """Replace the rows of ``partitions`` (values of ``partition_column``, e.g. stores) of ``date`` by the
    rows of ``csv_path``, and leave the date's other rows as they are; return the date's rows after.

    For a rerun that changed a few stores of a loaded date: one transaction (readers see the date before
    or after, never a mix), a DELETE and INSERT of those stores' rows only, instead of the whole date.
    ``rows_before``: the rows of the load this replacement was made against (``snapshot_loads``); when the
    date holds another load, StaleBaseError and nothing changes. Every CSV row must be of ``date`` and of
    one of ``partitions``. Errors as replace_date_rows'.
    """
    columns = list(columns)
    if partition_column not in columns or date_column not in columns:
        raise ValueError(f"{partition_column!r} and {date_column!r} must be among the columns {columns}")
    with storage.open_for_reading(csv_path) as handle:
        header = _read_header(handle, csv_path)
    if header != columns:
        raise LoadError(f"{csv_path}: header {header} does not match the expected columns {columns}")
    load = _Load(conninfo, table, _table_ident(table), date_column, date, csv_path, columns)
    date_col, part_col, col_list = sql.Identifier(date_column), sql.Identifier(partition_column), load.column_list
    with _connected(load) as conn:
        with conn.transaction():
            # The same lock as a whole-date load: the two never interleave.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s::int4)", _lock_key(load))
            recorded = conn.execute(
                "SELECT rows FROM snapshot_loads WHERE table_name = %s AND snapshot_date = %s", (table, date)
            ).fetchone()
            if recorded is None or int(recorded[0]) != rows_before:
                raise StaleBaseError(
                    f"{table} {date.isoformat()} holds "
                    + (f"a load of {recorded[0]} rows" if recorded else "no recorded load")
                    + f", not the {rows_before} rows this replacement of {len(partitions)} partition(s) "
                    "was made against; nothing was changed"
                )
            stage = _stage_csv(conn, load)
            strays = conn.execute(
                sql.SQL("SELECT DISTINCT {col}::text FROM {stage} WHERE {col} <> ALL(%s) LIMIT 5").format(
                    col=part_col, stage=stage
                ),
                (list(partitions),),
            ).fetchall()
            if strays:
                raise LoadError(
                    f"{csv_path}: rows of {partition_column} {[row[0] for row in strays]}, which this load "
                    f"does not replace ({len(partitions)} partition(s)); nothing was changed"
                )
            try:
                deleted = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = %s AND {} = ANY(%s)").format(load.target, date_col, part_col),
                    (date, list(partitions)),
                ).rowcount
                inserted = conn.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(load.target, col_list, col_list, stage)
                ).rowcount
            except psycopg.Error as exc:
                if _connection_lost(conn, exc):
                    raise
                raise load.failed(exc) from exc
            rows = rows_before - deleted + inserted
            _record_load(conn, load, rows)
            load.phase = "commit"
        _analyse_date_partition(conn, load, deleted + inserted)
    log.info(
        "%s %s: %d partition(s) replaced in place (%d rows out, %d in); the date holds %d rows",
        table,
        date.isoformat(),
        len(partitions),
        deleted,
        inserted,
        rows,
    )
    return rows


# As autovacuum's own rule (autovacuum_analyze_scale_factor): statistics are taken again once this share
# of a table's rows has changed since they were last taken.
ANALYZE_AFTER_CHANGED_SHARE = 0.1


def _analyse_date_partition(conn: psycopg.Connection[Any], load: _Load, changed: int) -> None:
    """Fresh statistics for the date's partition once enough of it changed, as autovacuum would take them: a
    partition swapped in has autovacuum off (its rows were not meant to change after the swap), so nothing
    else would. ``changed``: the rows this load deleted and inserted (its own counts are not in the
    statistics views yet). Dead rows go when the next whole-date load replaces the partition."""
    if _date_partitioned(conn, load.target, load.date_column) is None:
        return  # autovacuum looks after a table of its own
    held = conn.execute(
        sql.SQL(
            "SELECT t.tableoid::regclass::text, c.reltuples, coalesce(s.n_mod_since_analyze, 0) "
            "FROM (SELECT tableoid FROM {} WHERE {} = %s LIMIT 1) t "
            "JOIN pg_class c ON c.oid = t.tableoid LEFT JOIN pg_stat_user_tables s ON s.relid = t.tableoid"
        ).format(load.target, sql.Identifier(load.date_column)),
        (load.date,),
    ).fetchone()
    if held is None:
        return
    partition, estimated_rows, changed_before = str(held[0]), float(held[1]), int(held[2])
    if changed + changed_before > ANALYZE_AFTER_CHANGED_SHARE * max(estimated_rows, 0.0):
        # regclass prints the partition's name quoted as SQL needs it.
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(partition)))


def _lock_key(load: _Load) -> tuple[str, int]:
    return (f"replace_date_rows:{load.table}", load.date.toordinal())


def _record_load(conn: psycopg.Connection[Any], load: _Load, rows: int) -> None:
    # In the load's transaction: the record says which load the date's rows are, never another's.
    conn.execute(
        "INSERT INTO snapshot_loads (table_name, snapshot_date, rows, loaded_at) "
        "VALUES (%s, %s, %s, now()) ON CONFLICT (table_name, snapshot_date) "
        "DO UPDATE SET rows = EXCLUDED.rows, loaded_at = EXCLUDED.loaded_at",
        (load.table, load.date, rows),
    )


# --- stage and swap, for tables partitioned by their date ------------------------------

# Connections that COPY slices of the CSV, and then build the indexes, side by side: parsing the
# rows and sorting them into indexes is the server's CPU work, and one backend uses one core.
LOAD_CONNECTIONS = 2
# Below this a CSV is copied on one connection: more would only add connection set-up.
PARALLEL_COPY_MIN_BYTES = 16 << 20
# Memory for each index build (a server setting per session; the default 64MB spills to disk).
INDEX_BUILD_MEMORY = "256MB"
# The swap waits this long for readers that are in the middle of a query of the table; longer
# would hold back every reader queued behind it. It then tries again, until SWAP_PATIENCE_S.
SWAP_LOCK_TIMEOUT_MS = 500
SWAP_PATIENCE_S = 120.0


@dataclass(frozen=True)
class _Parent:
    oid: int
    schema: str
    name: str


def _date_partitioned(conn: psycopg.Connection[Any], target: sql.Identifier, date_column: str) -> _Parent | None:
    """The table, when it is partitioned by list of ``date_column`` alone."""
    row = conn.execute(
        "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_partitioned_table p ON p.partrelid = c.oid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0] "
        "WHERE c.oid = to_regclass(%s) AND p.partstrat = 'l' AND p.partnatts = 1 AND a.attname = %s",
        (target.as_string(conn), date_column),
    ).fetchone()
    return None if row is None else _Parent(int(row[0]), str(row[1]), str(row[2]))


def _name(base: str, suffix: str) -> str:
    # PostgreSQL truncates names to 63 bytes; truncating the base keeps the distinguishing suffix.
    room = 63 - len(suffix.encode())
    return base.encode()[:room].decode(errors="ignore") + suffix


def partition_name(table_name: str, date: datetime.date) -> str:
    """The name a date's partition gets (also what migration 0007 named the partitions it made)."""
    return _name(table_name, f"_p{date:%Y%m%d}")


def _swap_in_partition(conn: psycopg.Connection[Any], load: _Load, parent: _Parent) -> int:
    """Build the date's rows in a table of their own, then swap it in for the date's partition.

    COPY, index builds and ANALYZE happen where nobody reads, on LOAD_CONNECTIONS
    connections at once; readers of the table are held only by the swap itself
    (detach and drop the old partition, attach the new one: catalog changes,
    milliseconds). Statements see the old rows or the new, never a mix or a gap.
    Unlike the in-place path this is not MVCC-safe for a REPEATABLE READ
    transaction whose snapshot predates the new rows and that first reads the
    table after the swap: it sees the date empty (as with TRUNCATE). The
    product's own readers do not read this way; see docs/performance.md.
    """
    stage_base = _name(parent.name, f"_stage_{load.date:%Y%m%d}")
    stage = sql.Identifier(parent.schema, stage_base)
    timings = {"prepare": time.perf_counter()}
    # Session-level: the load spans several transactions and connections.
    conn.execute("SELECT pg_advisory_lock(hashtext(%s), %s::int4)", _lock_key(load))
    try:
        # A stage of a killed load of this date; the lock says no live load owns it.
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        # No autovacuum on a date's partition: the load analyses it, and its rows never change after
        # the swap. A vacuum that autovacuum starts on a freshly loaded partition runs for seconds and
        # holds back the next swap's lock (it was seen to: 9 s). PostgreSQL still runs the vacuum
        # against transaction-id wraparound when one is due.
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) "
                "WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
            ).format(stage, sql.Identifier(parent.schema, parent.name))
        )
        # The partition's bound as a constraint: every row is checked as it is copied, and
        # ATTACH needs no scan to know the rows fit the partition.
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({col} IS NOT NULL AND {col} = {day})").format(
                stage,
                sql.Identifier(_name(stage_base, "_date")),
                col=sql.Identifier(load.date_column),
                day=sql.Literal(load.date),
            )
        )
        try:
            timings["copy"] = time.perf_counter()
            rows, guarded = _copy_in_slices(load, stage, stage_base)
            if guarded:
                # Before the indexes are built: the UPDATE's new row versions need no index entries.
                timings["restore"] = time.perf_counter()
                _restore_guarded_text_of_stage(conn, load, stage, stage_base)
            timings["indexes"] = time.perf_counter()
            _build_indexes(conn, load, parent, stage, stage_base)
            timings["analyze"] = time.perf_counter()
            conn.execute(sql.SQL("ANALYZE {}").format(stage))
            timings["swap"] = time.perf_counter()
            _swap(conn, load, parent, stage, rows)
            timings["end"] = time.perf_counter()
            steps = list(timings)
            log.info(
                "%s %s: %d rows swapped in (%s)",
                load.table,
                load.date.isoformat(),
                rows,
                ", ".join(f"{step} {timings[after] - timings[step]:.2f}s" for step, after in itertools.pairwise(steps)),
            )
        except BaseException:
            if not conn.closed and not conn.broken:
                with contextlib.suppress(psycopg.Error):
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
            raise
    finally:
        if not conn.closed and not conn.broken:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s), %s::int4)", _lock_key(load))
    return rows


@dataclass(frozen=True)
class _Slice:
    start: int
    end: int
    # Lines of the file before the slice: what COPY's line numbers of the slice are offset by.
    lines_before: int


def csv_slices(path: StoragePath, parts: int, chunk_bytes: int = COPY_CHUNK_BYTES) -> list[_Slice]:
    """Cut a CSV into about ``parts`` byte ranges of whole records.

    A newline ends a record only outside quotes; RFC 4180 doubles quotes inside
    quoted fields, so a newline with an even number of quotes before it does.
    """
    size = storage.file_size(path)
    targets = [size * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int]] = [(0, 0)]
    quotes = lines = position = 0
    with storage.open_for_reading(path) as handle:
        while targets and (block := handle.read(chunk_bytes)):
            search = 0
            while targets and targets[0] < position + len(block):
                newline = block.find(b"\n", max(targets[0] - position, search))
                if newline < 0:
                    break
                if (quotes + block.count(b'"', 0, newline)) % 2 == 0:
                    cut = position + newline + 1
                    if cut > cuts[-1][0]:
                        cuts.append((cut, lines + block.count(b"\n", 0, newline + 1)))
                    targets.pop(0)
                search = newline + 1
            quotes += block.count(b'"')
            lines += block.count(b"\n")
            position += len(block)
    ends = [start for start, _ in cuts[1:]] + [size]
    return [_Slice(start, end, before) for (start, before), end in zip(cuts, ends, strict=True) if end > start]


def _restore_guarded_text_of_stage(
    conn: psycopg.Connection[Any], load: _Load, stage: sql.Identifier, stage_base: str
) -> None:
    try:
        _restore_guarded_text(conn, load, stage)
    except psycopg.Error as exc:
        if _connection_lost(conn, exc):
            raise
        raise load.failed(exc, where=stage_base) from exc


def _copy_in_slices(load: _Load, stage: sql.Identifier, stage_base: str) -> tuple[int, bool]:
    """Rows copied, and whether any field of the CSV starts with GUARD."""
    size = storage.file_size(load.csv_path)
    parts = LOAD_CONNECTIONS if size >= PARALLEL_COPY_MIN_BYTES else 1
    # Never empty: a CSV without even a header line was refused before any connection.
    slices = csv_slices(load.csv_path, parts)
    counts = _side_by_side([functools.partial(_copy_slice, load, stage, stage_base, s) for s in slices])
    return sum(rows for rows, _ in counts), any(guarded for _, guarded in counts)


@contextlib.contextmanager
def _side_connection(load: _Load) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own for one part of a load (a slice's COPY, index builds). Not getting it,
    or losing it, is a LoadConnectionError; the table refusing data is for the caller to say."""
    try:
        with psycopg.connect(load.conninfo, autocommit=True, connect_timeout=30) as conn:
            yield conn
    except LoadError:
        raise
    except psycopg.Error as exc:
        raise _lost_while_loading(load, exc) from exc


def _copy_slice(load: _Load, stage: sql.Identifier, stage_base: str, part: _Slice) -> tuple[int, bool]:
    header = part.start == 0
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER {}, NULL '', ENCODING 'UTF8')").format(
        stage, load.column_list, sql.SQL("true" if header else "false")
    )
    with _side_connection(load) as conn:
        try:
            with conn.cursor() as cur, storage.open_for_reading(load.csv_path) as handle:
                handle.seek(part.start)
                left = part.end - part.start
                watch = _GuardWatch()
                with cur.copy(copy_sql) as copy:
                    while left > 0 and (chunk := handle.read(min(COPY_CHUNK_BYTES, left))):
                        watch.feed(chunk)
                        copy.write(chunk)
                        left -= len(chunk)
                return cur.rowcount, watch.seen
        except psycopg.Error as exc:
            if _connection_lost(conn, exc):
                raise
            if exc.diag.constraint_name == _name(stage_base, "_date"):
                raise _other_date_error(load, _rows_of_other_dates(load)) from exc
            raise load.failed(exc, where=stage_base, line_offset=part.lines_before) from exc


def _rows_of_other_dates(load: _Load, limit: int = 5) -> list[tuple[int, str | None]]:
    """The first CSV lines whose date is not the load's (a rare error: read the file again for it)."""
    wanted = load.date.isoformat()
    position = load.columns.index(load.date_column)
    found: list[tuple[int, str | None]] = []
    with io.TextIOWrapper(storage.open_for_reading(load.csv_path), encoding="utf-8-sig", newline="") as handle:
        for number, record in enumerate(csv.reader(handle), start=1):
            if number == 1:
                continue
            value = record[position] if position < len(record) else ""
            if value != wanted:
                found.append((number, value or None))
                if len(found) == limit:
                    break
    return found


def _build_indexes(
    conn: psycopg.Connection[Any], load: _Load, parent: _Parent, stage: sql.Identifier, stage_base: str
) -> None:
    """The parent's indexes, built on the stage, so ATTACH only links them (no build under its lock)."""
    indexes = conn.execute(
        "SELECT pg_get_indexdef(i.indexrelid), i.indisunique, c.contype FROM pg_index i "
        "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
        "WHERE i.indrelid = %s ORDER BY i.indisprimary DESC, i.indexrelid",
        (parent.oid,),
    ).fetchall()
    token = uuid.uuid4().hex[:8]
    builds: list[list[sql.Composed]] = [[] for _ in range(min(LOAD_CONNECTIONS, len(indexes)) or 1)]
    constraints: list[sql.Composed] = []
    for number, (definition, unique, contype) in enumerate(indexes):
        # "CREATE [UNIQUE] INDEX name ON ONLY parent USING method (keys) [INCLUDE ...] [WHERE ...]"
        method_and_keys = str(definition).split(" USING ", 1)[1]
        # Unique names: the previous partition's indexes keep theirs until the swap drops them.
        index = sql.Identifier(_name(partition_name(parent.name, load.date), f"_{token}_{number}"))
        builds[number % len(builds)].append(
            sql.SQL("CREATE {}INDEX {} ON {} USING {}").format(
                sql.SQL("UNIQUE " if unique else ""), index, stage, sql.SQL(method_and_keys)
            )
        )
        if contype in ("p", "u"):
            # A key constraint of the parent needs the same constraint on the partition, not only the index.
            kind = "PRIMARY KEY" if contype == "p" else "UNIQUE"
            constraints.append(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(stage, index, sql.SQL(kind), index)
            )

    def build(statements: list[sql.Composed]) -> None:
        with _side_connection(load) as builder:
            builder.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(INDEX_BUILD_MEMORY)))
            for statement in statements:
                try:
                    builder.execute(statement)
                except psycopg.Error as exc:
                    if _connection_lost(builder, exc):
                        raise
                    # Duplicate keys: the parent's primary key refuses the rows, as the table would.
                    raise load.failed(exc, where=stage_base) from exc

    _side_by_side([functools.partial(build, s) for s in builds if s])
    for statement in constraints:
        conn.execute(statement)


def _swap(conn: psycopg.Connection[Any], load: _Load, parent: _Parent, stage: sql.Identifier, rows: int) -> None:
    parent_ident = sql.Identifier(parent.schema, parent.name)
    final = partition_name(parent.name, load.date)
    bound = f"FOR VALUES IN ('{load.date.isoformat()}')"
    give_up = time.monotonic() + SWAP_PATIENCE_S
    while True:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{SWAP_LOCK_TIMEOUT_MS}ms")))
                # First and explicitly: the wait for readers is bounded by lock_timeout, and nothing
                # else of the swap can wait once it is held.
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(parent_ident))
                old = conn.execute(
                    "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE i.inhparent = %s AND pg_get_expr(c.relpartbound, c.oid) = %s",
                    (parent.oid, bound),
                ).fetchone()
                if old is not None:
                    old_ident = sql.Identifier(str(old[0]), str(old[1]))
                    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent_ident, old_ident))
                    conn.execute(sql.SQL("DROP TABLE {}").format(old_ident))
                conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(stage, sql.Identifier(final)))
                try:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                            parent_ident, sql.Identifier(parent.schema, final), sql.Literal(load.date)
                        )
                    )
                except psycopg.Error as exc:
                    if _connection_lost(conn, exc):
                        raise
                    raise load.failed(exc) from exc
                _record_load(conn, load, rows)
                load.phase = "commit"
            return
        except psycopg.errors.LockNotAvailable as exc:
            if time.monotonic() > give_up:
                raise LoadConnectionError(
                    f"{load.table} for {load.date.isoformat()}: the new rows are ready but readers held the "
                    f"table for {SWAP_PATIENCE_S:.0f} s; nothing was changed, the date keeps its previous "
                    "rows; retry the load"
                ) from exc
            time.sleep(0.2)


def _side_by_side(steps: Sequence[Callable[[], _T]]) -> list[_T]:
    """Run the steps on threads (each on its own connection); the first error is raised after all end."""
    if len(steps) == 1:
        return [steps[0]()]
    results: list[Any] = [None] * len(steps)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = steps[index]()
        except BaseException as exc:  # noqa: BLE001 - raised in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"load-{i}") for i in range(len(steps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        # Data errors before connection errors: a refused row is the news, not its sibling's cancellation.
        errors.sort(key=lambda e: isinstance(e, LoadConnectionError))
        raise errors[0]
    return results


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


def count_rows(conninfo: str, table: str, date_column: str, date: datetime.date) -> int:
    """Rows of ``table`` whose ``date_column`` equals ``date``."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=30) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(_table_ident(table), sql.Identifier(date_column)),
            (date,),
        ).fetchone()
    return int(row[0]) if row else 0
