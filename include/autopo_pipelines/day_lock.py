"""One run of a pipeline's business date at a time: the lock, in the warehouse (table ``day_locks``).

Two runs of one date (a manual trigger during a backfill's run of it) must never interleave their
files, aggregates and loads. The lock is a row per (pipeline, date) naming the run that holds it; it
spans the run's tasks, which may run in different processes on different hosts, so it is a row, not a
session's advisory lock. Taking over a lock whose run has ended is one compare-and-swap statement:
of two runs that try at the same moment, exactly one gets it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

# Rounds of look-then-swap before giving up when other runs keep changing the holder.
_ATTEMPTS = 5


class DayBusyError(RuntimeError):
    """Another run of the pipeline is processing the same business date."""


def holder(conninfo: str, pipeline: str, date: dt.date) -> str | None:
    """The run that holds the date (from its listing until check_day), if any."""
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT run_id FROM day_locks WHERE pipeline_name = %s AND date = %s", (pipeline, date)
        ).fetchone()
    return None if row is None else str(row[0])


def busy_with(conninfo: str, pipeline: str, date: dt.date, run_id: str, is_live: Callable[[str], bool]) -> str | None:
    """The other, still running, run that holds the date; None when this run may go on."""
    current = holder(conninfo, pipeline, date)
    if current is None or current == run_id or not is_live(current):
        return None
    return current


def acquire(conninfo: str, pipeline: str, date: dt.date, run_id: str, is_live: Callable[[str], bool]) -> None:
    """Take the date for this run; raises DayBusyError while another live run holds it."""
    for _ in range(_ATTEMPTS):
        current = holder(conninfo, pipeline, date)
        if current == run_id:
            return
        if current is not None and is_live(current):
            raise DayBusyError(
                f"{pipeline} {date.isoformat()} is being processed by run {current}; this run does not "
                "start on the same date until that one ends (retry this task, or clear it after that run)"
            )
        if _swap(conninfo, pipeline, date, expected=current, run_id=run_id):
            if current is not None:
                log.warning("%s %s: taking the date over from run %s, which has ended", pipeline, date, current)
            return
        # Another run changed the holder between the look and the swap: look again.
    raise DayBusyError(f"{pipeline} {date.isoformat()}: other runs keep taking the date; retry this task")


def _swap(conninfo: str, pipeline: str, date: dt.date, *, expected: str | None, run_id: str) -> bool:
    """Make ``run_id`` the holder if the holder is still ``expected`` (None: no row yet), atomically."""
    with psycopg.connect(conninfo, connect_timeout=10, autocommit=True) as conn:
        row = conn.execute(
            """INSERT INTO day_locks (pipeline_name, date, run_id) VALUES (%s, %s, %s)
               ON CONFLICT (pipeline_name, date) DO UPDATE SET run_id = EXCLUDED.run_id, since = now()
               WHERE day_locks.run_id = %s
               RETURNING run_id""",
            (pipeline, date, run_id, expected),
        ).fetchone()
    return row is not None


def release(conninfo: str, pipeline: str, date: dt.date, run_id: str) -> None:
    """Give the date up, if this run holds it."""
    with psycopg.connect(conninfo, connect_timeout=10, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM day_locks WHERE pipeline_name = %s AND date = %s AND run_id = %s", (pipeline, date, run_id)
        )
