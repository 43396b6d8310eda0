"""The dashboard and admin API on years of history: p50/p95 per endpoint (``make bench-dashboard``).

1. A fresh database ``autopo_bench_dashboard`` in the project's PostgreSQL (never the warehouse's
   ``autopo``), with the project's migrations; ``--drop-index`` drops indexes after them, to measure
   the queries without one.
2. The history, made with set-based SQL (generate_series), for the shipped configs
   (dags/configs: stock_health and po_snapshots) over ``--years`` years up to today's business date:
   stock_health one file a store a day (``--stores``, named after the config's expected_stores, else
   STORE-001...), some stores missing each day (``pipeline_runs.missing_stores``), about 1.5 % of files
   failed with an error text, reused (skipped) files, a few retained and unrouted ones, a rerun now
   and then (attempt 2), a day that never got its files; po_snapshots three exports a day. The run
   rows agree with their files (counts, rows, times, dag_run_id; file jobs carry their map index, in
   batches of ``--files-per-task``); today's stock_health run is still processing. VACUUM ANALYZE.
3. Every JSON endpoint under ``/autopo/api/v1/`` and every page, in-process: the dashboard app as the
   plugin hands it to Airflow's API server (``fastapi_apps``), mounted at ``/autopo`` as the API
   server mounts it, called through
   FastAPI's TestClient, one request at a time, ``--warmup`` requests each, then ``--requests`` timed
   ones: p50, p95 and max per endpoint, and whether p95 is under 200 ms. ``--explain`` then prints
   EXPLAIN (ANALYZE, BUFFERS) of every statement each endpoint runs (docs/performance.md,
   "Dashboard and admin API").

The auth manager is not in the figures: Airflow's ``get_user`` is overridden (an admin
SimpleAuthManagerUser), ``access.readable`` returns every pipeline and ``access.can_retry`` True, so
no Airflow metadata database is asked (in Airflow's API server each request also decodes its JWT,
asks the auth manager for the readable DAGs, and once per pipeline whether the user may clear).
The warehouse reader is the app's own (the tracking hook's connection, ``AIRFLOW_CONN_AUTOPO_DB``,
set here to the bench database before the app is imported).

The last line is for scripts::

    dashboard: endpoints=<n> over_200ms=<n> worst_p95_ms=<ms> (<endpoint>)

Run it::

    make bench-dashboard                                      # 120 stores, 3 years, 50 requests each
    make bench-dashboard BENCH_ARGS='--stores 20 --years 1 --requests 10'   # a quick look
    make bench-dashboard BENCH_ARGS='--explain --drop-index pipeline_file_jobs_run_idx'   # plans without 0010's index
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from day_benchmark import bench_database, cluster_admin_url, machine_line
from psycopg import sql

from autopo_pipelines.config import PipelineConfig, default_config_dir, load_configs
from autopo_pipelines.dates import business_date_at
from autopo_pipelines.orchestration.connections import WAREHOUSE_CONN_ENV

BENCH_DB = "autopo_bench_dashboard"
PIPELINES = ("stock_health", "po_snapshots")
TARGET_MS = 200.0
PREFIX = "/autopo"
DATA = "/opt/airflow/data"

# Shares of the history, per 10,000 (a store-day, a file, a pipeline-day).
MISSING = 80  # a store sends nothing: about one store of 120 a day
FAILED = 150  # a file fails (1.5 %)
RETAINED = 20  # a store's file is gone from the source; its last good version's rows stay
SKIPPED = 300  # a file's part reused: an earlier try of its batch transformed it
RERUN_SKIPPED = 9000  # a rerun of the date reuses the unchanged files
FAILED_DAY = 30  # nothing arrived before the sensor's timeout: the run failed, no files
RERUN_DAY = 430  # the date was run twice (attempt 2): below this, above FAILED_DAY
LATE_DAY = 630  # the files came late: the run started hours after its schedule
UNROUTED_DAY = 600  # a stock_health day with a file whose name the pipeline does not recognise

FILE_ERRORS = [
    "the file is damaged or incomplete (broken zip archive: Bad magic number for central directory); "
    "ask the store to export the report again and re-send it",
    "sheet 'Sheet1': no header row in the first 20 rows: no row names sku (a heading one of: sku, item_code, "
    "kode_barang, plu, article, barcode); the fullest row, 4, reads 'Tanggal | Toko | Penjualan'",
    "sheet 'Stock': 14 of 212 rows rejected (6.6%), more than max_reject_ratio 5%: see the rejects file",
    "the file is a PDF document, not an Excel workbook; export the report from Excel as an .xlsx workbook",
    "the run ended before this file was transformed",
]


# --- the history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    first: dt.date
    last: dt.date
    stores: list[str]
    files_per_task: int


def history_sql() -> list[tuple[str, str]]:
    """The statements that make the history, each named (parameters: make_history's)."""
    u = "pg_temp.u"
    days = f"""
        CREATE TEMP TABLE bench_days AS
        WITH d AS (
            SELECT p.pipeline, p.local_start, p.tz, p.offset_days, day::date AS date,
                   (day::date - %(first)s::date) AS n, {u}(p.pipeline || day::date || 'day') AS ud
            FROM unnest(%(pipelines)s::text[], %(starts)s::time[], %(tzs)s::text[], %(offsets)s::int[])
                     AS p(pipeline, local_start, tz, offset_days),
                 generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS day
        ), k AS (
            SELECT d.*,
                   CASE WHEN date = %(last)s::date THEN 'today'
                        WHEN ud < {FAILED_DAY} THEN 'failed'
                        WHEN ud < {RERUN_DAY} THEN 'rerun'
                        WHEN ud < {LATE_DAY} THEN 'late'
                        ELSE 'normal' END AS kind,
                   ((date + offset_days) + local_start) AT TIME ZONE tz AS scheduled
            FROM d
        )
        SELECT k.*,
               CASE WHEN kind = 'rerun'
                    THEN 'manual__' || to_char((scheduled + interval '3 hours 12 minutes') AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS') || '.418203+00:00'
                    ELSE 'scheduled__' || to_char(scheduled AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
               END AS dag_run_id,
               scheduled + CASE kind WHEN 'rerun' THEN interval '3 hours 12 minutes 40 seconds'
                                     WHEN 'late' THEN interval '2 hours 41 minutes'
                                     ELSE interval '35 seconds' END
                         + make_interval(secs => mod(ud, 20)) AS started_at,
               CASE kind WHEN 'rerun' THEN 2 ELSE 1 END AS attempt
        FROM k"""
    missing = f"""
        CREATE TEMP TABLE bench_missing AS
        SELECT d.pipeline, d.date, s.name AS store_id
        FROM bench_days d CROSS JOIN unnest(%(stores)s::text[]) WITH ORDINALITY AS s(name, i)
        WHERE d.pipeline = 'stock_health' AND d.kind <> 'failed'
          AND {u}(d.date || s.name || 'missing') < {MISSING}"""
    # One row per file a source held: stock_health's stores, then po_snapshots' three exports.
    listed = f"""
        CREATE TEMP TABLE bench_listed AS
        SELECT d.pipeline, d.date, d.n, d.kind, d.started_at AS run_started, d.dag_run_id, s.i AS ord,
               s.name AS store_id, s.name || '_stock_' || to_char(d.date, 'YYYYMMDD') || '.xlsx' AS file_name,
               false AS unrouted
        FROM bench_days d CROSS JOIN unnest(%(stores)s::text[]) WITH ORDINALITY AS s(name, i)
        WHERE d.pipeline = 'stock_health' AND d.kind <> 'failed'
          AND {u}(d.date || s.name || 'missing') >= {MISSING}
        UNION ALL
        SELECT d.pipeline, d.date, d.n, d.kind, d.started_at, d.dag_run_id, 100000,
               NULL,
               CASE WHEN mod(d.n, 2) = 0 THEN 'stock report ' || to_char(d.date, 'DD-MM-YYYY') || '.xlsx'
                    ELSE (%(stores)s::text[])[1 + mod(d.n * 13, cardinality(%(stores)s::text[]))]
                         || '_stock_' || to_char(d.date, 'YYYYMMDD') || ' (1).xlsx' END,
               true
        FROM bench_days d
        WHERE d.pipeline = 'stock_health' AND d.kind <> 'failed'
          AND {u}(d.date || 'unrouted') < {UNROUTED_DAY}
        UNION ALL
        SELECT d.pipeline, d.date, d.n, d.kind, d.started_at, d.dag_run_id, e.i,
               CASE WHEN e.i = 3 THEN (%(stores)s::text[])[1 + mod(d.n * 7, cardinality(%(stores)s::text[]))] END,
               CASE e.i WHEN 1 THEN 'po_snapshot_' || to_char(d.date, 'YYYYMMDD') || '.xlsx'
                        WHEN 2 THEN 'po_export_SUP-0' || (1 + mod(d.n, 5)) || '_' || to_char(d.date, 'YYYY-MM-DD')
                                    || '.xlsx'
                        ELSE (%(stores)s::text[])[1 + mod(d.n * 7, cardinality(%(stores)s::text[]))]
                             || '_po_' || to_char(d.date, 'YYYYMMDD') || '.xlsx' END,
               false
        FROM bench_days d CROSS JOIN generate_series(1, 3) AS e(i)
        WHERE d.pipeline = 'po_snapshots' AND d.kind <> 'failed'"""
    statuses = f"""
        CREATE TEMP TABLE bench_status AS
        SELECT l.*, {u}(l.date || l.file_name || 'status') AS us, {u}(l.date || l.file_name || 'rows') AS ur,
               CASE WHEN l.unrouted THEN 'unrouted'
                    WHEN {u}(l.date || l.file_name || 'status') < {FAILED} THEN 'failed'
                    WHEN l.pipeline = 'stock_health' AND {u}(l.date || l.file_name || 'status') < {FAILED + RETAINED}
                         THEN 'retained'
                    WHEN l.kind = 'rerun' AND {u}(l.date || l.file_name || 'status') < {RERUN_SKIPPED} THEN 'skipped'
                    WHEN l.kind <> 'rerun' AND {u}(l.date || l.file_name || 'status') < {FAILED + SKIPPED}
                         THEN 'skipped'
                    ELSE 'completed' END AS status0
        FROM bench_listed l"""
    # Routed files numbered in the listing's order; batches of files_per_task share a map index.
    batched = """
        CREATE TEMP TABLE bench_batched AS
        WITH n AS (
            SELECT s.*,
                   CASE WHEN s.status0 NOT IN ('unrouted', 'retained')
                        THEN (row_number() OVER (PARTITION BY s.pipeline, s.date,
                                                              s.status0 NOT IN ('unrouted', 'retained')
                                                 ORDER BY s.ord) - 1)::int END AS rn,
                   CASE s.pipeline WHEN 'stock_health' THEN %(fpt)s ELSE 1 END AS fpt,
                   CASE s.pipeline WHEN 'stock_health' THEN %(sh_pool)s ELSE %(po_pool)s END AS pool
            FROM bench_status s
        )
        SELECT n.*, n.rn / n.fpt AS map_index FROM n"""
    jobs = """
        CREATE TEMP TABLE bench_jobs AS
        WITH b AS (
            SELECT b.*, max(b.map_index) OVER (PARTITION BY b.pipeline, b.date) + 1 AS batches
            FROM bench_batched b
        ), t AS (
            -- today's stock_health run is still going: its last third of batches processing or queued
            SELECT b.*,
                   CASE WHEN b.kind = 'today' AND b.pipeline = 'stock_health' AND b.map_index IS NOT NULL
                             AND b.map_index >= (b.batches * 2) / 3 + b.pool THEN 'queued'
                        WHEN b.kind = 'today' AND b.pipeline = 'stock_health' AND b.map_index IS NOT NULL
                             AND b.map_index >= (b.batches * 2) / 3 THEN 'processing'
                        ELSE b.status0 END AS status,
                   b.run_started + interval '9 seconds'
                       + make_interval(secs => (b.map_index / b.pool) * (b.fpt * 1.7 + 2.5)
                                               + mod(b.rn, b.fpt) * 1.7) AS file_started
            FROM b
        )
        SELECT t.pipeline, t.date, t.kind, t.ord, t.map_index, t.dag_run_id, t.status, t.us, t.ur,
               t.file_name, t.store_id,
               CASE WHEN t.status IN ('completed', 'skipped', 'retained')
                    THEN CASE t.pipeline WHEN 'stock_health' THEN 180 + mod(t.ur, 170) ELSE 90 + mod(t.ur, 60) END
                    ELSE 0 END AS rows_out,
               CASE WHEN t.status IN ('completed', 'skipped', 'retained') AND mod(t.ur, 7) = 0
                    THEN 1 + mod(t.ur, 4) ELSE 0 END AS rows_rejected,
               -- a TOTAL line under a store's report
               CASE WHEN t.status IN ('completed', 'skipped', 'retained') AND t.pipeline = 'stock_health'
                    THEN 1 ELSE 0 END AS rows_skipped,
               CASE WHEN t.status = 'failed' THEN (%(errors)s::text[])[1 + mod(t.ur, %(n_errors)s)]
                    WHEN t.status = 'retained'
                         THEN 'no longer at the source: the rows of its last good version stay in the snapshot'
                    WHEN t.status = 'unrouted' AND t.file_name LIKE '%%(1).xlsx'
                         THEN 'a copy of another upload of the same store and date: superseded'
                    WHEN t.status = 'unrouted' THEN 'the name does not match the pipeline''s file_pattern' END AS error,
               CASE WHEN t.status IN ('completed', 'failed', 'processing', 'skipped') THEN t.file_started END
                   AS started_at,
               CASE WHEN t.status IN ('completed', 'failed')
                    THEN t.file_started + make_interval(secs => 1.0 + t.ur / 8000.0)
                    WHEN t.status = 'skipped' THEN t.file_started + interval '0.06 seconds'
                    WHEN t.status = 'retained' THEN t.run_started + interval '4 minutes' END AS completed_at,
               CASE WHEN t.status = 'completed' AND mod(t.ur, 50) = 0 THEN 2
                    WHEN t.status IN ('completed', 'skipped', 'failed') THEN 1 ELSE 0 END AS attempts
        FROM t"""
    runs = """
        INSERT INTO pipeline_runs (pipeline_name, date, status, total_files, processed_files, failed_files,
                                   skipped_files, total_rows, rejected_rows, rows_in, skipped_rows, merged_rows,
                                   missing_stores, notes, dag_run_id, attempt, started_at, completed_at, error)
        SELECT d.pipeline, d.date,
               CASE WHEN d.kind = 'failed' THEN 'failed'
                    WHEN d.kind = 'today' AND d.pipeline = 'stock_health' THEN 'processing'
                    WHEN a.failed > 0 THEN 'completed_with_errors'
                    ELSE 'completed' END,
               COALESCE(a.routed, 0),
               CASE WHEN d.kind = 'today' AND d.pipeline = 'stock_health' THEN 0 ELSE COALESCE(a.completed, 0) END,
               CASE WHEN d.kind = 'today' AND d.pipeline = 'stock_health' THEN 0 ELSE COALESCE(a.failed, 0) END,
               CASE WHEN d.kind = 'today' AND d.pipeline = 'stock_health' THEN 0 ELSE COALESCE(a.skipped, 0) END,
               CASE WHEN a.done THEN a.rows_out - a.merged ELSE 0 END,
               CASE WHEN a.done THEN a.rejected ELSE 0 END,
               CASE WHEN a.done THEN a.rows_out + a.rows_skipped + a.rejected END,
               CASE WHEN a.done THEN a.rows_skipped END,
               CASE WHEN a.done THEN a.merged END,
               CASE WHEN d.kind = 'failed' THEN NULL ELSE COALESCE(m.stores, '{}') END,
               CASE WHEN d.kind = 'failed' THEN NULL
                    WHEN d.pipeline = 'stock_health'
                    THEN ARRAY['on_order_qty from po_snapshots for ' || d.date || ' as loaded at '
                               || to_char((d.scheduled - interval '25 minutes') AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
                               || ': ' || (280 + mod(d.ud, 60)) || ' PO lines, ' || (150 + mod(d.ud, 50))
                               || ' (store, sku) with open quantity']
                    ELSE '{}' END,
               d.dag_run_id, d.attempt,
               CASE WHEN d.kind <> 'failed' THEN d.started_at END,
               CASE WHEN d.kind = 'failed' THEN d.scheduled + interval '6 hours'
                    WHEN a.done THEN a.last_file + interval '41 seconds' END,
               CASE WHEN d.kind = 'failed'
                    THEN 'wait_for_files: no file of ' || d.date || ' arrived in 21600 s (the sensor timed out)'
                    WHEN a.failed > 0 THEN a.errors END
        FROM bench_days d
        LEFT JOIN (
            SELECT pipeline, date,
                   count(*) FILTER (WHERE map_index IS NOT NULL) AS routed,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'skipped') AS skipped,
                   sum(rows_out) AS rows_out, sum(rows_rejected) AS rejected, sum(rows_skipped) AS rows_skipped,
                   CASE pipeline WHEN 'po_snapshots' THEN sum(rows_out) / 20 ELSE 0 END AS merged,
                   bool_and(status NOT IN ('queued', 'processing')) AS done,
                   max(completed_at) AS last_file,
                   string_agg(file_name || ': ' || error, '; ' ORDER BY file_name)
                       FILTER (WHERE status = 'failed') AS errors
            FROM bench_jobs GROUP BY pipeline, date
        ) a USING (pipeline, date)
        LEFT JOIN (
            SELECT pipeline, date, array_agg(store_id ORDER BY store_id) AS stores
            FROM bench_missing GROUP BY pipeline, date
        ) m USING (pipeline, date)
        ORDER BY d.scheduled, d.pipeline"""
    files = f"""
        INSERT INTO pipeline_file_jobs (pipeline_run_id, file_path, file_name, store_id, checksum, size_bytes,
                                        status, retry_count, rows_in, rows_out, rows_rejected, error,
                                        intermediate_path, map_index, started_at, completed_at, attempts,
                                        last_attempt, dag_run_id)
        SELECT r.id, '{DATA}/inbox/' || j.pipeline || '/' || j.file_name, j.file_name, j.store_id,
               CASE WHEN j.status NOT IN ('unrouted', 'queued', 'processing')
                    THEN 'sha256:' || md5(j.file_name || 'a') || md5(j.file_name || 'b') END,
               30000 + j.rows_out * 110 + mod(j.ur, 997),
               j.status, GREATEST(j.attempts - 1, 0), j.rows_out + j.rows_rejected + j.rows_skipped, j.rows_out,
               j.rows_rejected, j.error,
               CASE WHEN j.status IN ('completed', 'skipped', 'retained')
                    THEN '{DATA}/intermediate/' || j.pipeline || '/' || to_char(j.date, 'YYYYMMDD') || '/parts/'
                         || regexp_replace(j.file_name, '\\.xlsx$', '') END,
               j.map_index, j.started_at, j.completed_at, j.attempts,
               CASE WHEN j.attempts > 0 THEN j.dag_run_id || '#' || j.attempts END, j.dag_run_id
        FROM bench_jobs j JOIN pipeline_runs r ON r.pipeline_name = j.pipeline AND r.date = j.date
        ORDER BY r.id, j.map_index NULLS LAST, j.ord"""
    return [
        ("days", days),
        ("missing stores", missing),
        ("files", listed),
        ("statuses", statuses),
        ("batches", batched),
        ("file jobs", jobs),
        ("pipeline_runs", runs),
        ("pipeline_file_jobs", files),
    ]


def make_history(url: str, configs: dict[str, PipelineConfig], history: History) -> float:
    """The history in the bench database; the seconds it took (VACUUM ANALYZE included)."""
    started = time.perf_counter()
    chosen = [configs[name] for name in PIPELINES]
    params: dict[str, Any] = {
        "first": history.first,
        "last": history.last,
        "stores": history.stores,
        "fpt": history.files_per_task,
        "pipelines": list(PIPELINES),
        "starts": [dt.time(*config.schedule_start()) for config in chosen],
        "tzs": [config.timezone for config in chosen],
        "offsets": [config.business_date_offset_days for config in chosen],
        "sh_pool": configs["stock_health"].airflow.pool_size,
        "po_pool": configs["po_snapshots"].airflow.pool_size,
        "errors": FILE_ERRORS,
        "n_errors": len(FILE_ERRORS),
    }
    with psycopg.connect(url) as conn:
        conn.execute(
            """CREATE FUNCTION pg_temp.u(t text) RETURNS integer LANGUAGE sql IMMUTABLE
               AS $$ SELECT mod(mod(hashtextextended(t, 20241204), 10000) + 10000, 10000)::integer $$"""
        )
        for _, statement in history_sql():
            conn.execute(statement, params)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) pipeline_runs, pipeline_file_jobs")
    return time.perf_counter() - started


def describe_history(url: str) -> list[str]:
    """What was made, for the report."""
    lines = []
    with psycopg.connect(url) as conn:
        for pipeline in PIPELINES:
            runs = dict(
                conn.execute(
                    "SELECT status, count(*) FROM pipeline_runs WHERE pipeline_name = %s GROUP BY 1 ORDER BY 2 DESC",
                    [pipeline],
                ).fetchall()
            )
            files = dict(
                conn.execute(
                    """SELECT f.status, count(*)
                       FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
                       WHERE r.pipeline_name = %s GROUP BY 1 ORDER BY 2 DESC""",
                    [pipeline],
                ).fetchall()
            )
            row = conn.execute(
                """SELECT COALESCE(sum(cardinality(missing_stores)), 0), count(*) FILTER (WHERE attempt > 1),
                          min(date), max(date)
                   FROM pipeline_runs WHERE pipeline_name = %s""",
                [pipeline],
            ).fetchone()
            assert row is not None
            missing, reruns, first, last = row
            lines.append(
                f"  {pipeline}: {sum(runs.values()):,} runs {first}..{last} ({counted(runs)}; {reruns} reruns), "
                f"{sum(files.values()):,} file jobs ({counted(files)}), {missing:,} store-days missing"
            )
        sizes = conn.execute(
            """SELECT pg_size_pretty(pg_total_relation_size('pipeline_runs')),
                      pg_size_pretty(pg_total_relation_size('pipeline_file_jobs')),
                      (SELECT string_agg(indexrelname || ' ' || pg_size_pretty(pg_relation_size(indexrelid)), ', '
                                         ORDER BY indexrelname)
                       FROM pg_stat_user_indexes WHERE relname = 'pipeline_file_jobs')"""
        ).fetchone()
        assert sizes is not None
        lines.append(f"  on disk: pipeline_runs {sizes[0]}, pipeline_file_jobs {sizes[1]} with its indexes: {sizes[2]}")
    return lines


def counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n:,}" for status, n in counts.items())


# --- the requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    path: str


def cases(url: str, history: History) -> list[Case]:
    """Every endpoint, several ways: filters, deep pages, past dates, long ranges."""
    with psycopg.connect(url) as conn:

        def one(query: str, *params: Any) -> Any:
            row = conn.execute(query, params).fetchone()
            if row is None:
                raise RuntimeError(f"the generated history has nothing for {query!r} {params}")
            return row[0]

        runs_total = one("SELECT count(*) FROM pipeline_runs")
        failed_total = one("SELECT count(*) FROM pipeline_file_jobs WHERE status = 'failed'")
        year_ago = max(history.last - dt.timedelta(days=365), history.first + dt.timedelta(days=40))
        job = one(
            """SELECT f.id FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
               WHERE r.pipeline_name = 'stock_health' AND r.date = %s AND f.status = 'completed'
               ORDER BY f.id LIMIT 1""",
            year_ago,
        )
        failed = one(
            """SELECT f.id FROM pipeline_file_jobs f JOIN pipeline_runs r ON r.id = f.pipeline_run_id
               WHERE r.pipeline_name = 'stock_health' AND f.status = 'failed' AND f.map_index IS NOT NULL
                 AND r.date < %s
               ORDER BY r.date DESC, f.id LIMIT 1""",
            history.last - dt.timedelta(days=30),
        )
        run_date = one(
            "SELECT max(date) FROM pipeline_runs WHERE pipeline_name = 'stock_health' AND status <> 'failed' "
            "AND date <= %s",
            year_ago,
        )
    deep_runs = max(runs_total - 60, 0)
    deep_failed = max(failed_total - 50, 0)
    month_from, month_to = year_ago.replace(day=1), year_ago.replace(day=28)
    api = f"{PREFIX}/api/v1"
    return [
        Case("pipelines", f"{api}/pipelines"),
        Case("today", f"{api}/today"),
        Case("runs", f"{api}/runs"),
        Case("runs ?pipeline=stock_health", f"{api}/runs?pipeline=stock_health"),
        Case("runs ?status=completed_with_errors", f"{api}/runs?status=completed_with_errors"),
        Case("runs ?date_from&date_to (a month)", f"{api}/runs?date_from={month_from}&date_to={month_to}"),
        Case("runs ?limit=500", f"{api}/runs?limit=500"),
        Case(f"runs ?offset={deep_runs} (deep)", f"{api}/runs?offset={deep_runs}"),
        Case("runs ?offset past the end", f"{api}/runs?offset={runs_total + 100}"),
        Case("runs/stock_health/{date}", f"{api}/runs/stock_health/{run_date}"),
        Case("runs/po_snapshots/{date}", f"{api}/runs/po_snapshots/{run_date}"),
        Case("grid (po_snapshots, first by name; 30 days)", f"{api}/grid"),
        Case("grid ?pipeline=po_snapshots&days=120", f"{api}/grid?pipeline=po_snapshots&days=120"),
        Case("grid ?pipeline=stock_health (30 days)", f"{api}/grid?pipeline=stock_health"),
        Case("grid ?pipeline=stock_health&days=120", f"{api}/grid?pipeline=stock_health&days=120"),
        Case("grid ?pipeline=stock_health&end=a year ago", f"{api}/grid?pipeline=stock_health&end={year_ago}"),
        Case("file-jobs/{id}", f"{api}/file-jobs/{job}"),
        Case("failed-jobs", f"{api}/failed-jobs"),
        Case(f"failed-jobs ?offset={deep_failed} (deep)", f"{api}/failed-jobs?offset={deep_failed}"),
        Case("failed-jobs ?pipeline=po_snapshots", f"{api}/failed-jobs?pipeline=po_snapshots"),
        Case(
            "failed-jobs ?pipeline=stock_health&since",
            f"{api}/failed-jobs?pipeline=stock_health&since={history.last - dt.timedelta(days=90)}",
        ),
        Case("file-jobs/{id}/retry-plan", f"{api}/file-jobs/{failed}/retry-plan"),
        Case("metrics (po_snapshots, 30 days)", f"{api}/metrics"),
        Case("metrics ?pipeline=po_snapshots&days=120", f"{api}/metrics?pipeline=po_snapshots&days=120"),
        Case("metrics ?pipeline=stock_health (30 days)", f"{api}/metrics?pipeline=stock_health"),
        Case("metrics ?pipeline=stock_health&days=120", f"{api}/metrics?pipeline=stock_health&days=120"),
        Case("page /", f"{PREFIX}/"),
        Case("page /grid (po_snapshots, 30 days)", f"{PREFIX}/grid"),
        Case("page /grid?pipeline=stock_health", f"{PREFIX}/grid?pipeline=stock_health"),
        Case("page /grid?pipeline=stock_health&days=120", f"{PREFIX}/grid?pipeline=stock_health&days=120"),
        Case("page /history", f"{PREFIX}/history"),
        Case(f"page /history?offset={deep_runs}", f"{PREFIX}/history?offset={deep_runs}"),
        Case("page /failed", f"{PREFIX}/failed"),
        Case("page /metrics (po_snapshots, 30 days)", f"{PREFIX}/metrics"),
        Case("page /metrics?pipeline=stock_health&days=120", f"{PREFIX}/metrics?pipeline=stock_health&days=120"),
    ]


@contextmanager
def dashboard_client(url: str) -> Iterator[Any]:
    """A TestClient on the dashboard app mounted at /autopo, reading the bench database, with the auth
    manager left out: Airflow's user is an admin, who may read and retry every pipeline."""
    os.environ[WAREHOUSE_CONN_ENV] = url  # before the app (and the tracking hook) is imported
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from autopo_tracking.dashboard import access
    from autopo_tracking.dashboard import app as dashboard

    for name in ("httpx", "httpx2"):  # TestClient's; a line per request otherwise (set after Airflow's config)
        logging.getLogger(name).setLevel(logging.WARNING)
    admin = SimpleAuthManagerUser(username="admin", role="admin")

    def everyone(user: Any, configs: dict[str, PipelineConfig]) -> list[PipelineConfig]:
        return [configs[name] for name in sorted(configs)]

    readable, can_retry = access.readable, access.can_retry
    access.readable = everyone
    access.can_retry = lambda user, dag_id: True
    from autopo_tracking.plugin import AutopoTrackingPlugin

    # The app as Airflow's API server gets it: through the plugin's fastapi_apps.
    [mounted] = AutopoTrackingPlugin.fastapi_apps
    app = mounted["app"]
    app.dependency_overrides[get_user] = lambda: admin
    app.dependency_overrides[dashboard._page_user] = lambda: admin
    server = FastAPI()
    server.mount(PREFIX, app)  # as Airflow's API server mounts a plugin's fastapi_apps
    try:
        with dashboard.reader.connection() as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        if row is None or row[0] != BENCH_DB:
            raise RuntimeError(f"the dashboard reads {row}, not {BENCH_DB}")
        with TestClient(server) as client:
            yield client
    finally:
        access.readable, access.can_retry = readable, can_retry
        dashboard.reader.close()


@dataclass
class Timing:
    case: Case
    ms: list[float]
    size: int

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]  # nearest rank


def measure(client: Any, case: Case, warmup: int, requests: int) -> Timing:
    ms, size = [], 0
    for n in range(warmup + requests):
        started = time.perf_counter()
        response = client.get(case.path)
        took = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{case.path}: {response.status_code} {response.text[:500]}")
        if n >= warmup:
            ms.append(took)
            size = len(response.content)
    return Timing(case, ms, size)


PLAN_NODE = re.compile(r"^\s*(?:->\s+)?(.+?)\s+\(cost=", re.M)


def explain(client: Any, url: str, case: Case) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS), best of 5, of each statement the app runs for one request of the case."""
    statements: list[tuple[str, Any]] = []
    execute = psycopg.Cursor.execute

    def recording(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, str) and query.strip() != "SELECT 1":  # the reader's check of an idle connection
            statements.append((query, params))
        return execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = recording  # type: ignore[method-assign]
    try:
        client.get(case.path)
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    lines = []
    with psycopg.connect(url) as conn:
        for query, params in statements:
            plans = []
            for _ in range(5):
                rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", params).fetchall()  # type: ignore[arg-type]
                plan = "\n".join(row[0] for row in rows)
                took = re.search(r"Execution Time: ([\d.]+) ms", plan)
                plans.append((float(took.group(1)) if took else math.nan, plan))
            took_ms, plan = min(plans)
            hit = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
            buffers = sum(int(n) for n in hit.groups() if n) if hit else 0
            nodes = "; ".join(PLAN_NODE.findall(plan))
            lines.append(f"  {case.name}: {took_ms:.2f} ms, {buffers:,} buffers: {nodes}")
            lines.append(f"      {' '.join(query.split())[:110]}")
    return lines


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=120)
    parser.add_argument("--years", type=int, default=3, help="of history, up to today's business date")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="requests per endpoint before the timed ones")
    parser.add_argument("--files-per-task", type=int, default=5, help="stock_health files per map index")
    parser.add_argument(
        "--drop-index", action="append", default=[], help="drop this index after the migrations (repeatable)"
    )
    parser.add_argument("--only", default="", help="time only the endpoints whose name contains this")
    parser.add_argument(
        "--explain", action="store_true", help="then EXPLAIN (ANALYZE, BUFFERS) every statement of every endpoint"
    )
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (for EXPLAIN)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configs = load_configs(default_config_dir()).configs
    stock_health = configs["stock_health"]
    last = business_date_at(stock_health, dt.datetime.now(dt.UTC))
    expected = stock_health.expected_stores
    stores = expected[: args.stores] if expected else [f"STORE-{n:03d}" for n in range(1, args.stores + 1)]
    history = History(last - dt.timedelta(days=365 * args.years - 1), last, stores, args.files_per_task)

    print(machine_line())
    admin_url = cluster_admin_url()
    url = bench_database(admin_url, BENCH_DB)
    timings: list[Timing] = []
    try:
        if args.drop_index:
            with psycopg.connect(url, autocommit=True) as conn:
                for name in args.drop_index:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        took = make_history(url, configs, history)
        print(
            f"warehouse: a fresh database {BENCH_DB} in the project's PostgreSQL, the project's migrations"
            + (f" less {', '.join(args.drop_index)}" if args.drop_index else "")
            + f"; {args.years} years of history ({history.first}..{history.last}) made in {took:.1f}s "
            "(set-based SQL, then VACUUM ANALYZE):"
        )
        for line in describe_history(url):
            print(line)
        print(
            f"stores: {stores[0]}..{stores[-1]} ("
            + ("the config's expected_stores" if expected else "stock_health's config lists no expected_stores")
            + f"); stock_health files in batches of {args.files_per_task} a map index"
        )
        print(
            "auth: NOT in these figures. Airflow's get_user is overridden (an admin SimpleAuthManagerUser); "
            "access.readable returns every pipeline and access.can_retry True: no JWT, no auth manager, "
            "no metadata database"
        )
        print(
            f"requests: in-process (FastAPI TestClient, the app mounted at {PREFIX}), one at a time, "
            f"{args.warmup} warm-up then {args.requests} timed per endpoint; the reader's connections are the app's"
        )
        print(f"load average at the start: {', '.join(f'{n:.2f}' for n in os.getloadavg())} (1, 5, 15 min)")
        print(flush=True)
        with dashboard_client(url) as client:
            for case in cases(url, history):
                if args.only and args.only not in case.name:
                    continue
                timings.append(measure(client, case, args.warmup, args.requests))
            print(f"load average at the end: {', '.join(f'{n:.2f}' for n in os.getloadavg())}")
            report(timings)
            if args.explain:
                print()
                print("EXPLAIN (ANALYZE, BUFFERS) of each statement, best of 5: time, buffers, plan nodes")
                for timing in timings:
                    for line in explain(client, url, timing.case):
                        print(line)
    finally:
        if not args.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        else:
            print(f"kept: {url.rsplit('@', 1)[-1]}")
    if timings:
        worst = max(timings, key=lambda t: t.p95)
        over = sum(t.p95 >= TARGET_MS for t in timings)
        print()
        print(f"dashboard: endpoints={len(timings)} over_200ms={over} worst_p95_ms={worst.p95:.1f} ({worst.case.name})")
    return 0


def report(timings: Sequence[Timing]) -> None:
    if not timings:
        print("no endpoint timed (--only matched none)")
        return
    print(f"  {'endpoint':<46} {'p50':>8} {'p95':>8} {'max':>8} {'KB':>7}  p95 < {TARGET_MS:.0f} ms")
    for t in timings:
        ok = "yes" if t.p95 < TARGET_MS else "NO"
        print(f"  {t.case.name:<46} {t.p50:>6.1f}ms {t.p95:>6.1f}ms {max(t.ms):>6.1f}ms {t.size / 1024:>7.1f}  {ok}")


if __name__ == "__main__":
    sys.exit(main())
