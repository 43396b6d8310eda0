"""The only code that writes ``pipeline_runs`` and ``pipeline_file_jobs``."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook

from autopo_pipelines.orchestration.connections import WAREHOUSE_CONN_ID, WarehouseConnectionMissing
from autopo_pipelines.tracking_rows import FINAL_RUN_STATUSES, Changes, FileJobChange, RunChange

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

RUN_COLUMNS = frozenset(
    {
        "status", "total_files", "processed_files", "failed_files", "skipped_files", "total_rows",
        "rejected_rows", "rows_in", "skipped_rows", "merged_rows", "missing_stores", "notes", "started_at",
        "completed_at", "error",
    }
)  # fmt: skip
FILE_COLUMNS = frozenset(
    {
        "store_id", "checksum", "size_bytes", "status", "rows_in", "rows_out", "rows_rejected", "error",
        "intermediate_path", "map_index", "started_at", "completed_at",
    }
)  # fmt: skip
# Short limits: a tracking write must never hold a task, the scheduler or the API server.
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000


def _storable_value(value: Any) -> Any:
    """PostgreSQL's text cannot hold NUL: a file name or error that has one is stored with it shown as
    ``\\x00``, instead of the whole write failing and the file going untracked."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, list):
        return [_storable_value(item) for item in value]
    return value


def storable(changes: Changes) -> Changes:
    """The changes with every text fit for PostgreSQL (see _storable_value)."""

    def fields(values: dict[str, Any]) -> dict[str, Any]:
        return {key: _storable_value(value) for key, value in values.items()}

    run = dataclasses.replace(
        changes.run, fields=fields(changes.run.fields), insert_only=fields(changes.run.insert_only)
    )
    files = [
        dataclasses.replace(
            job,
            file_path=_storable_value(job.file_path),
            file_name=_storable_value(job.file_name),
            fields=fields(job.fields),
        )
        for job in changes.files
    ]
    return dataclasses.replace(changes, run=run, files=files)


class TrackingHook(PostgresHook):
    """Writes tracking rows to the warehouse; a failed write is retried, logged, never raised.

    The connection is PostgresHook's own (``get_conn``): host, login, database and every extra of
    the Airflow connection (``sslmode``, ``sslrootcert``, ``options``, ``application_name``, ...),
    with the tracking write's short limits added (``get_connection``). The hook keeps it open after
    a write (``self.conn``): the listeners hold one hook per task attempt, so its writes share one
    connection; ``close`` ends it.
    """

    conn_name_attr = "tracking_conn_id"
    default_conn_name = WAREHOUSE_CONN_ID
    conn_type = "postgres"
    hook_name = "autopo tracking"

    DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)

    def __init__(self, *args: Any, retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: seconds to wait before each retry of a write that could not reach the database
        self.retry_delays = retry_delays

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """The Airflow connection, extras and all, with the tracking write's limits: ``connect_timeout``
        when the connection sets none, and a statement timeout after the connection's own ``options``
        (a longer one there is meant for loads, not for tracking). A missing connection is
        WarehouseConnectionMissing, naming it and how to define it."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = super().get_connection(conn_id)
        except AirflowNotFoundException:
            raise WarehouseConnectionMissing(conn_id) from None
        extra = dict(conn.extra_dejson)
        extra.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        limit = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
        extra["options"] = f"{extra['options']} {limit}" if extra.get("options") else limit
        limited: Connection = copy.deepcopy(conn)
        limited.extra = json.dumps(extra)
        return limited

    def record(self, changes: Changes) -> bool:
        """Apply the changes in one transaction; False (and a log line) when that is not possible."""
        changes = storable(changes)
        where = f"{changes.run.pipeline_name} {changes.run.date}"
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            time.sleep(delay)
            try:
                self._write(changes)
                return True
            except WarehouseConnectionMissing as exc:  # a deployment's mistake: no retry mends it
                log.error("tracking write for %s not made: %s", where, exc)
                return False
            except psycopg.OperationalError:
                log.warning("tracking write for %s could not reach the database (attempt %d)", where, attempt + 1)
            except Exception:  # a bug or a constraint: retrying will not help, and the task must go on
                log.exception("tracking write for %s failed", where)
                return False
        log.error("tracking write for %s given up; the next event heals it", where)
        return False

    def close(self) -> None:
        """Close the kept connection, if any; the next write opens a new one."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("tracking: closing the connection failed", exc_info=True)

    def _write(self, changes: Changes) -> None:
        kept = self.conn
        if isinstance(kept, psycopg.Connection) and not kept.closed and not kept.broken:
            try:
                self._write_on(kept, changes)
                return
            except psycopg.OperationalError:
                if not kept.broken:  # a statement timeout, a deadlock: the retries deal with it
                    raise
                # Closed by the server or the network while the task worked (a restart, an idle
                # timeout): a lost connection, not a database that is down; a new one at once.
                log.info("tracking: the kept database connection was lost; reconnecting")
        self._write_on(self._connect(), changes)

    def _write_on(self, conn: psycopg.Connection[Any], changes: Changes) -> None:
        try:
            with conn.transaction():
                self._apply(conn, changes)
        finally:
            if conn.broken:
                self.close()

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection from PostgresHook.get_conn, kept as ``self.conn``."""
        self.close()
        conn = self.get_conn()
        if not isinstance(conn, psycopg.Connection):
            self.close()
            raise TypeError(
                "the tracking hook writes with psycopg 3, but PostgresHook made a psycopg2 connection "
                "(it does when SQLAlchemy is older than 2.0)"
            )
        conn.autocommit = True  # each write is its own transaction block; idle in between
        return conn

    def _apply(self, conn: psycopg.Connection[Any], changes: Changes) -> None:
        if changes.only_if_unfinished:
            self._close_unfinished_run(conn, changes.run)
            return
        run_id = self._upsert_run(conn, changes.run)
        if run_id is None:
            log.info(
                "tracking: %s now belongs to a newer run; event of %s ignored", changes.run.date, changes.run.dag_run_id
            )
            return
        for change in changes.files:
            self._upsert_file_job(conn, run_id, change)
        if changes.complete_listing:
            # A file deleted or renamed at the source since an earlier run of the date is no longer part of it.
            conn.execute(
                """UPDATE pipeline_file_jobs SET status = 'unrouted', error = 'no longer at the source',
                          map_index = NULL, dag_run_id = %s
                   WHERE pipeline_run_id = %s AND NOT (file_path = ANY(%s))""",
                [changes.run.dag_run_id, run_id, [c.file_path for c in changes.files]],
            )

    @staticmethod
    def _upsert_run(conn: psycopg.Connection[Any], change: RunChange) -> int | None:
        """The date's row, or None when it belongs to another run that this event may not take over."""
        fields = {k: v for k, v in change.fields.items() if k in RUN_COLUMNS}
        inserted = {**{k: v for k, v in change.insert_only.items() if k in RUN_COLUMNS}, **fields}
        columns = ["pipeline_name", "date", "dag_run_id", *inserted]
        values = [change.pipeline_name, change.date, change.dag_run_id, *inserted.values()]
        updates = "".join(f", {c} = EXCLUDED.{c}" for c in fields)
        sql = f"""
            INSERT INTO pipeline_runs ({", ".join(columns)}, attempt)
            VALUES ({", ".join(["%s"] * len(columns))}, 1)
            ON CONFLICT (pipeline_name, date) DO UPDATE SET
                attempt = pipeline_runs.attempt
                    + CASE WHEN pipeline_runs.dag_run_id IS DISTINCT FROM EXCLUDED.dag_run_id THEN 1 ELSE 0 END,
                dag_run_id = EXCLUDED.dag_run_id
                {updates}
            WHERE pipeline_runs.dag_run_id IS NOT DISTINCT FROM EXCLUDED.dag_run_id
               OR pipeline_runs.dag_run_id IS NULL
               OR %s
            RETURNING id
        """  # noqa: S608 - column names come from the fixed sets above
        row = conn.execute(sql, [*values, change.takes_over]).fetchone()
        return int(row[0]) if row else None

    @staticmethod
    def _close_unfinished_run(conn: psycopg.Connection[Any], change: RunChange) -> None:
        """End the date's row for this DAG run, unless check_day already judged it or a newer run owns it."""
        fields = {k: v for k, v in change.fields.items() if k in RUN_COLUMNS}
        assignments = ", ".join(f"{c} = %s" for c in fields)
        closed = conn.execute(
            f"""UPDATE pipeline_runs SET {assignments}
                WHERE pipeline_name = %s AND date = %s AND dag_run_id = %s
                  AND status NOT IN ({", ".join(["%s"] * len(FINAL_RUN_STATUSES))})
                RETURNING id""",  # noqa: S608
            [*fields.values(), change.pipeline_name, change.date, change.dag_run_id, *FINAL_RUN_STATUSES],
        ).fetchone()
        if closed is None:
            # A run that ended before it listed anything (its sensor failed: no files for a past
            # date, a timeout) still leaves the date a row saying so, unless another run owns it.
            columns = ["pipeline_name", "date", "dag_run_id", "attempt", *fields]
            conn.execute(
                f"""INSERT INTO pipeline_runs ({", ".join(columns)}) VALUES ({", ".join(["%s"] * len(columns))})
                    ON CONFLICT (pipeline_name, date) DO NOTHING""",  # noqa: S608
                [change.pipeline_name, change.date, change.dag_run_id, 1, *fields.values()],
            )
            return
        if fields.get("status") == "failed":
            # Files the ended run never got to (Airflow skips them without an event) end with it.
            conn.execute(
                """UPDATE pipeline_file_jobs SET status = 'failed', error = %s, completed_at = %s
                   WHERE pipeline_run_id = %s AND dag_run_id = %s AND status IN ('queued', 'processing')""",
                [
                    "the run ended before this file was transformed",
                    fields.get("completed_at"),
                    closed[0],
                    change.dag_run_id,
                ],
            )

    @staticmethod
    def _upsert_file_job(conn: psycopg.Connection[Any], run_id: int, change: FileJobChange) -> None:
        fields = {k: v for k, v in change.fields.items() if k in FILE_COLUMNS}
        columns = ["pipeline_run_id", "file_path", "file_name", "dag_run_id", *fields, "attempts", "last_attempt"]
        values = [run_id, change.file_path, change.file_name, change.dag_run_id, *fields.values()]
        values += [1 if change.attempt_key else 0, change.attempt_key]
        updates = ["dag_run_id = EXCLUDED.dag_run_id", *(f"{c} = EXCLUDED.{c}" for c in fields)]
        if change.attempt_key:
            # Counted once per (run, try): a write repeated after a lost acknowledgement does not count again.
            new_attempt = (
                "CASE WHEN pipeline_file_jobs.last_attempt IS DISTINCT FROM EXCLUDED.last_attempt THEN 1 ELSE 0 END"
            )
            updates += [
                f"attempts = pipeline_file_jobs.attempts + {new_attempt}",
                f"retry_count = GREATEST(pipeline_file_jobs.attempts + {new_attempt} - 1, 0)",
                "last_attempt = EXCLUDED.last_attempt",
            ]
        # A listing resets only rows an earlier run left: this run's transforms may already be under way.
        guard = "WHERE pipeline_file_jobs.dag_run_id IS DISTINCT FROM EXCLUDED.dag_run_id" if change.only_older else ""
        sql = f"""
            INSERT INTO pipeline_file_jobs ({", ".join(columns)})
            VALUES ({", ".join(["%s"] * len(columns))})
            ON CONFLICT (pipeline_run_id, file_path) DO UPDATE SET {", ".join(updates)}
            {guard}
        """  # noqa: S608 - column names come from the fixed sets above
        conn.execute(sql, values)
