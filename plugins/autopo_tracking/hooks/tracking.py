"""The only code that writes ``pipeline_runs`` and ``pipeline_file_jobs``."""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from autopo_pipelines.orchestration.connections import WAREHOUSE_CONN_ID
from autopo_pipelines.tracking import FINAL_RUN_STATUSES, Changes, FileJobChange, RunChange

log = logging.getLogger(__name__)

RUN_COLUMNS = frozenset(
    {
        "status", "total_files", "processed_files", "failed_files", "skipped_files", "total_rows",
        "rejected_rows", "missing_stores", "started_at", "completed_at", "error",
    }
)  # fmt: skip
FILE_COLUMNS = frozenset(
    {
        "store_id", "checksum", "size_bytes", "status", "rows_in", "rows_out", "rows_rejected", "error",
        "intermediate_path", "map_index", "started_at", "completed_at",
    }
)  # fmt: skip


class TrackingHook(PostgresHook):
    """Writes tracking rows to the warehouse; a failed write is retried, logged, never raised."""

    conn_name_attr = "tracking_conn_id"
    default_conn_name = WAREHOUSE_CONN_ID
    conn_type = "postgres"
    hook_name = "autopo tracking"

    #: seconds to wait before each retry of a failed write
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)

    def record(self, changes: Changes) -> bool:
        """Apply the changes in one transaction; False (and a log line) when the database stays down."""
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            time.sleep(delay)
            try:
                with self.get_conn() as conn:
                    if changes.only_if_unfinished:
                        self._close_unfinished_run(conn, changes.run)
                        return True
                    run_id = self._upsert_run(conn, changes.run)
                    for change in changes.files:
                        self._upsert_file_job(conn, run_id, change)
                return True
            except Exception:  # any driver or network error: tracking must never fail the task
                log.warning(
                    "tracking write for %s %s failed (attempt %d)",
                    changes.run.pipeline_name,
                    changes.run.date,
                    attempt + 1,
                    exc_info=True,
                )
        log.error(
            "tracking write for %s %s given up; the next event heals it", changes.run.pipeline_name, changes.run.date
        )
        return False

    @staticmethod
    def _upsert_run(conn: Any, change: RunChange) -> int:
        fields = {k: v for k, v in change.fields.items() if k in RUN_COLUMNS}
        columns = ["pipeline_name", "date", "dag_run_id", *fields]
        values = [change.pipeline_name, change.date, change.dag_run_id, *fields.values()]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in fields)
        sql = f"""
            INSERT INTO pipeline_runs ({", ".join(columns)}, attempt)
            VALUES ({", ".join(["%s"] * len(columns))}, 1)
            ON CONFLICT (pipeline_name, date) DO UPDATE SET
                attempt = pipeline_runs.attempt
                    + CASE WHEN pipeline_runs.dag_run_id IS DISTINCT FROM EXCLUDED.dag_run_id THEN 1 ELSE 0 END,
                dag_run_id = EXCLUDED.dag_run_id
                {", " + updates if updates else ""}
            RETURNING id
        """  # noqa: S608 - column names come from the fixed sets above
        row = conn.execute(sql, values).fetchone()
        return int(row[0])

    @staticmethod
    def _close_unfinished_run(conn: Any, change: RunChange) -> None:
        """End the date's row for this DAG run, unless check_day already judged it or a newer run owns it."""
        fields = {k: v for k, v in change.fields.items() if k in RUN_COLUMNS}
        assignments = ", ".join(f"{c} = %s" for c in fields)
        conn.execute(
            f"""UPDATE pipeline_runs SET {assignments}
                WHERE pipeline_name = %s AND date = %s AND dag_run_id = %s
                  AND status NOT IN ({", ".join(["%s"] * len(FINAL_RUN_STATUSES))})""",  # noqa: S608
            [*fields.values(), change.pipeline_name, change.date, change.dag_run_id, *FINAL_RUN_STATUSES],
        )

    @staticmethod
    def _upsert_file_job(conn: Any, run_id: int, change: FileJobChange) -> None:
        fields = {k: v for k, v in change.fields.items() if k in FILE_COLUMNS}
        columns = ["pipeline_run_id", "file_path", "file_name", *fields]
        values = [run_id, change.file_path, change.file_name, *fields.values()]
        updates = [f"{c} = EXCLUDED.{c}" for c in fields]
        if change.counts_attempt:
            updates.append("attempts = pipeline_file_jobs.attempts + 1")
            updates.append("retry_count = GREATEST(pipeline_file_jobs.attempts, 0)")
        assignments = ", ".join(updates) or "file_name = EXCLUDED.file_name"
        sql = f"""
            INSERT INTO pipeline_file_jobs ({", ".join(columns)}, attempts)
            VALUES ({", ".join(["%s"] * len(columns))}, {1 if change.counts_attempt else 0})
            ON CONFLICT (pipeline_run_id, file_path) DO UPDATE SET {assignments}
        """  # noqa: S608 - column names come from the fixed sets above
        conn.execute(sql, values)
