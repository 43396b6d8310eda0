"""The SQL migrations and their runner, against a real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from autopo_pipelines.migrations import MigrationError, apply_migrations, discover
from autopo_pipelines.pipelines import po_snapshots

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
EXPECTED = [
    "0001_stock_health_snapshots",
    "0002_pipeline_tracking",
    "0003_file_job_attempts",
    "0004_po_snapshots",
    "0005_snapshot_loads_and_run_notes",
    "0006_run_row_accounting",
    "0007_stock_health_partitions",
    "0008_day_locks",
    "0009_retained_file_jobs",
    "0010_dashboard_indexes",
]

SNAPSHOT_COLUMNS = [
    ("snapshot_date", "date"),
    ("store_id", "text"),
    ("sku", "text"),
    ("product_name", "text"),
    ("category", "text"),
    ("supplier_id", "text"),
    ("supplier_name", "text"),
    ("stock_on_hand", "numeric"),
    ("sales_qty", "numeric"),
    ("avg_daily_sales", "numeric"),
    ("days_of_cover", "numeric"),
    ("lead_time_days", "numeric"),
    ("reorder_point", "numeric"),
    ("target_stock", "numeric"),
    ("on_order_qty", "numeric"),
    ("suggested_order_qty", "numeric"),
    ("status", "text"),
    ("emergency", "boolean"),
    ("unit_cost", "numeric"),
    ("stock_value", "numeric"),
    ("source_file", "text"),
    ("loaded_at", "timestamp with time zone"),
]
RUN_COLUMNS = [
    ("id", "bigint"),
    ("pipeline_name", "text"),
    ("date", "date"),
    ("status", "text"),
    ("total_files", "integer"),
    ("processed_files", "integer"),
    ("failed_files", "integer"),
    ("skipped_files", "integer"),
    ("total_rows", "integer"),
    ("rejected_rows", "integer"),
    ("missing_stores", "ARRAY"),
    ("dag_run_id", "text"),
    ("attempt", "integer"),
    ("started_at", "timestamp with time zone"),
    ("completed_at", "timestamp with time zone"),
    ("error", "text"),
    ("notes", "ARRAY"),
    ("rows_in", "integer"),
    ("skipped_rows", "integer"),
    ("merged_rows", "integer"),
]
FILE_JOB_COLUMNS = [
    ("id", "bigint"),
    ("pipeline_run_id", "bigint"),
    ("file_path", "text"),
    ("file_name", "text"),
    ("store_id", "text"),
    ("checksum", "text"),
    ("size_bytes", "bigint"),
    ("status", "text"),
    ("retry_count", "integer"),
    ("rows_in", "integer"),
    ("rows_out", "integer"),
    ("rows_rejected", "integer"),
    ("error", "text"),
    ("intermediate_path", "text"),
    ("map_index", "integer"),
    ("started_at", "timestamp with time zone"),
    ("completed_at", "timestamp with time zone"),
    ("attempts", "integer"),
    ("last_attempt", "text"),
    ("dag_run_id", "text"),
]


def _columns(url: str, table: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def test_discover_orders_numerically(tmp_path: Path) -> None:
    for name in ("0010_b.sql", "0002_a.sql", "0001_c.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    assert [m.name for m in discover(tmp_path)] == ["0001_c", "0002_a", "0010_b"]


@pytest.mark.parametrize(
    ("names", "message"),
    [(["0001_a.sql", "1_b.sql"], "share migration version 1"), (["initial.sql"], "must be named")],
)
def test_discover_rejects_bad_names(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


def test_apply_twice_applies_nothing_new(fresh_db_url: str) -> None:
    assert apply_migrations(fresh_db_url, MIGRATIONS_DIR) == EXPECTED
    assert apply_migrations(fresh_db_url, MIGRATIONS_DIR) == []
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute(
            "SELECT version, name, length(checksum), applied_at IS NOT NULL FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert rows == [(version, name, 64, True) for version, name in enumerate(EXPECTED, start=1)]


def test_tables_have_the_contract_columns(pg_url: str) -> None:
    assert _columns(pg_url, "stock_health_snapshots") == SNAPSHOT_COLUMNS
    assert _columns(pg_url, "pipeline_runs") == RUN_COLUMNS
    # The PO table holds exactly the spec's D.csv columns, in order, plus when they were loaded.
    po_columns = [name for name, _type in _columns(pg_url, "po_snapshots")]
    assert po_columns == [*po_snapshots.OUTPUT_COLUMNS, "loaded_at"]
    assert [name for name, _type in _columns(pg_url, "snapshot_loads")] == [
        "table_name",
        "snapshot_date",
        "rows",
        "loaded_at",
    ]
    assert _columns(pg_url, "pipeline_file_jobs") == FILE_JOB_COLUMNS


def test_snapshot_constraints(clean_tables: str) -> None:
    insert = (
        "INSERT INTO stock_health_snapshots (snapshot_date, store_id, sku, stock_on_hand, sales_qty, "
        "avg_daily_sales, lead_time_days, reorder_point, target_stock, on_order_qty, "
        "suggested_order_qty, status, emergency) VALUES ('2024-12-04', %s, 'A', 1, 0, 0, 14, 0, 0, 0, 0, %s, %s)"
    )
    with psycopg.connect(clean_tables, autocommit=True) as conn:
        # One partition per date (0007): a row needs its date's partition, which a load creates.
        conn.execute("DROP TABLE IF EXISTS stock_health_snapshots_p20241204")
        conn.execute(
            "CREATE TABLE stock_health_snapshots_p20241204 "
            "PARTITION OF stock_health_snapshots FOR VALUES IN ('2024-12-04')"
        )
        for i, status in enumerate(["out_of_stock", "inactive", "no_sales", "critical", "low", "overstock", "healthy"]):
            conn.execute(insert, (f"S{i}", status, status in ("out_of_stock", "critical")))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, ("S9", "unknown", False))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, ("S9", "healthy", True))  # emergency contradicts status
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("S0", "healthy", False))
        (pk,) = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'stock_health_snapshots_pkey'"
        ).fetchone() or ("",)
        assert pk == "PRIMARY KEY (snapshot_date, store_id, sku)"
        (loaded_at,) = conn.execute("SELECT min(loaded_at) FROM stock_health_snapshots").fetchone() or (None,)
        assert loaded_at is not None
        # Without a partition for the date the table refuses the row: only loads create partitions.
        with pytest.raises(psycopg.errors.CheckViolation, match="no partition"):
            conn.execute(insert.replace("2024-12-04", "1999-01-01"), ("S1", "healthy", False))
        conn.execute("DROP TABLE stock_health_snapshots_p20241204")


def test_tracking_constraints(clean_tables: str) -> None:
    with psycopg.connect(clean_tables, autocommit=True) as conn:
        run_id = conn.execute(
            "INSERT INTO pipeline_runs (pipeline_name, date) VALUES ('stock_health', '2024-12-04') RETURNING id"
        ).fetchone()
        assert run_id is not None
        row = conn.execute(
            "SELECT status, total_files, attempt, missing_stores FROM pipeline_runs WHERE id = %s", run_id
        ).fetchone()
        assert row == ("pending", 0, 0, None)
        conn.execute("UPDATE pipeline_runs SET missing_stores = %s WHERE id = %s", (["STORE-7"], run_id[0]))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO pipeline_runs (pipeline_name, date) VALUES ('stock_health', '2024-12-04')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE pipeline_runs SET status = 'done' WHERE id = %s", run_id)
        for status in ("processing", "completed", "completed_with_errors", "failed", "pending"):
            conn.execute("UPDATE pipeline_runs SET status = %s WHERE id = %s", (status, run_id[0]))

        job = (
            "INSERT INTO pipeline_file_jobs (pipeline_run_id, file_path, file_name, status) "
            "VALUES (%s, %s, 'f.xlsx', %s)"
        )
        for i, status in enumerate(["queued", "processing", "completed", "failed", "skipped", "unrouted"]):
            conn.execute(job, (run_id[0], f"/in/{i}.xlsx", status))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(job, (run_id[0], "/in/x.xlsx", "done"))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(job, (run_id[0], "/in/0.xlsx", "queued"))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(job, (run_id[0] + 1000, "/in/0.xlsx", "queued"))
        counters = conn.execute(
            "SELECT retry_count, rows_in, rows_out, rows_rejected FROM pipeline_file_jobs LIMIT 1"
        ).fetchone()
        assert counters == (0, 0, 0, 0)

        conn.execute("DELETE FROM pipeline_runs WHERE id = %s", run_id)
        assert conn.execute("SELECT count(*) FROM pipeline_file_jobs").fetchone() == (0,)


def test_changed_applied_file_is_an_error_naming_it(fresh_db_url: str, tmp_path: Path) -> None:
    migrations = _copy_migrations(tmp_path)
    apply_migrations(fresh_db_url, migrations)
    edited = migrations / "0001_stock_health_snapshots.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    (migrations / "0901_new.sql").write_text("CREATE TABLE should_not_exist (x int);")
    with pytest.raises(MigrationError, match="0001_stock_health_snapshots.sql was changed"):
        apply_migrations(fresh_db_url, migrations)
    # Nothing after the bad history was applied.
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT to_regclass('should_not_exist')").fetchone() == (None,)


def test_line_endings_are_not_a_change(fresh_db_url: str, tmp_path: Path) -> None:
    migrations = _copy_migrations(tmp_path)
    apply_migrations(fresh_db_url, migrations)
    for path in migrations.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert apply_migrations(fresh_db_url, migrations) == []


def test_failed_migration_is_rolled_back_and_not_recorded(fresh_db_url: str, tmp_path: Path) -> None:
    migrations = _copy_migrations(tmp_path)
    (migrations / "0901_broken.sql").write_text("CREATE TABLE half_done (x int);\nSELECT no_such_function();\n")
    with pytest.raises(MigrationError, match="0901_broken.sql failed"):
        apply_migrations(fresh_db_url, migrations)
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    # The earlier migrations, each in its own transaction, stay applied.
    assert versions == list(range(1, len(EXPECTED) + 1))
    (migrations / "0901_broken.sql").write_text("CREATE TABLE half_done (x int);\n")
    assert apply_migrations(fresh_db_url, migrations) == ["0901_broken"]


def test_concurrent_runners_do_not_collide(fresh_db_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(apply_migrations(fresh_db_url, MIGRATIONS_DIR))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results, key=len) == [[], [], [], EXPECTED]


def _cli_env() -> dict[str, str]:
    # The package is installed (editable) in the venv: no PYTHONPATH needed.
    return dict(os.environ)


def test_cli(fresh_db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autopo_pipelines.migrations", "--url", fresh_db_url, "--dir", str(MIGRATIONS_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert f"applied {len(EXPECTED)} migration(s)" in result.stderr
    again = subprocess.run(
        [sys.executable, "-m", "autopo_pipelines.migrations", "--url", fresh_db_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=_cli_env(),
    )
    assert again.returncode == 0, again.stderr
    assert "applied 0 migration(s)" in again.stderr


def test_partitioning_keeps_the_rows_already_loaded(fresh_db_url: str, tmp_path: Path) -> None:
    """0007 turns stock_health_snapshots into one partition per date without losing a loaded row."""
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql"))[:6]:
        shutil.copy(path, before / path.name)
    apply_migrations(fresh_db_url, before)
    insert = (
        "INSERT INTO stock_health_snapshots (snapshot_date, store_id, sku, stock_on_hand, sales_qty, "
        "avg_daily_sales, lead_time_days, reorder_point, target_stock, on_order_qty, "
        "suggested_order_qty, status, emergency) VALUES (%s, %s, 'A', 1, 0, 0, 14, 0, 0, 0, 0, 'healthy', false)"
    )
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        for day, store in [("2024-12-03", "S1"), ("2024-12-04", "S1"), ("2024-12-04", "S2")]:
            conn.execute(insert, (day, store))
        old = conn.execute("SELECT * FROM stock_health_snapshots ORDER BY 1, 2").fetchall()

    assert apply_migrations(fresh_db_url, MIGRATIONS_DIR)[0] == "0007_stock_health_partitions"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT * FROM stock_health_snapshots ORDER BY 1, 2").fetchall() == old
        partitions = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'stock_health_snapshots'::regclass "
            "AND c.relkind = 'r' ORDER BY 1"
        ).fetchall()
        assert partitions == [
            ("stock_health_snapshots_p20241203", "FOR VALUES IN ('2024-12-03')"),
            ("stock_health_snapshots_p20241204", "FOR VALUES IN ('2024-12-04')"),
        ]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("2024-12-04", "S2"))
