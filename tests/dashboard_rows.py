"""Tracking rows for the dashboard's tests, written straight into ``pipeline_runs`` and ``pipeline_file_jobs``
(the columns the tracking hook fills; every other column keeps its default)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

UTC = dt.UTC


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A UTC moment on ``day``."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def _insert(conn: psycopg.Connection[Any], table: str, values: dict[str, Any]) -> int:
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name in values),
        sql.SQL(", ").join(sql.Placeholder() for _ in values),
    )
    row = conn.execute(query, list(values.values())).fetchone()
    assert row is not None
    return int(row[0])


def add_run(conn: psycopg.Connection[Any], pipeline: str, date: dt.date, **columns: Any) -> int:
    """A ``pipeline_runs`` row (status completed unless given); its id."""
    return _insert(conn, "pipeline_runs", {"pipeline_name": pipeline, "date": date, "status": "completed", **columns})


def add_file(
    conn: psycopg.Connection[Any], run_id: int, file_name: str, store_id: str | None, status: str, **columns: Any
) -> int:
    """A ``pipeline_file_jobs`` row of the run; its id."""
    values = {
        "pipeline_run_id": run_id,
        "file_name": file_name,
        "file_path": f"/inbox/{file_name}",
        "store_id": store_id,
        "status": status,
        **columns,
    }
    return _insert(conn, "pipeline_file_jobs", values)


def table_contents(url: str, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each table, in a stable order: to show that something changed nothing."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall(), key=repr)
            for table in tables
        }
