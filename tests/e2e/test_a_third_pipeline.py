"""A new pipeline is one config file, one transform module and its table's migration: the
test-only store_prices pipeline runs through the shared factory, aggregation, load and tracking
into PostgreSQL."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from dag_runs import query, read_csv, run_day
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout
from autopo_pipelines.migrations import apply_migrations, discover
from autopo_pipelines.orchestration.dag_factory import build_dags

pytestmark = pytest.mark.integration

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
DATE = dt.date(2024, 12, 4)
CONFIG = """
name: store_prices
transform: example_pipelines.store_prices
timezone: Asia/Jakarta
file_pattern: '(?P<store>.+?)[ _-]+prices[ _-]+(?P<date>\\d{4}-?\\d{2}-?\\d{2})\\.xlsx'
columns:
  sku: {required: true, aliases: [sku, plu]}
  price: {required: true, aliases: [price, harga]}
  promo_price: {aliases: [promo_price, harga_promo]}
airflow: {pool: store_prices, retries: 0}
settings: {max_discount_pct: 60}
"""
# The pipeline's table, defined where every table is: a migration, never the module.
MIGRATION = """\
-- The snapshot table of the store_prices pipeline: each store's shelf prices, one row per date, store and SKU.
CREATE TABLE store_prices (
    snapshot_date date    NOT NULL,
    store_id      text    NOT NULL,
    sku           text    NOT NULL,
    price         numeric NOT NULL CHECK (price > 0),
    promo_price   numeric,
    discount_pct  numeric,
    source_file   text,
    PRIMARY KEY (snapshot_date, store_id, sku)
);
"""


def write_prices(path: Path, rows: list[list[object]]) -> None:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)


def add_migration(migrations: Path, label: str, text: str) -> Path:
    """A new migration in ``migrations``, numbered after the last one, as a new pipeline's author adds it."""
    version = max(m.version for m in discover(migrations)) + 1
    path = migrations / f"{version:04d}_{label}.sql"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_pipeline_defined_only_by_its_config_module_and_migration_runs_end_to_end(
    tmp_path: Path, data_layout: DataLayout, fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "store_prices.yaml").write_text(CONFIG, encoding="utf-8")
    layout = data_layout
    inbox = layout.inbox("store_prices")
    inbox.mkdir(parents=True)
    write_prices(inbox / "STORE-002_prices_20241204.xlsx", [["PLU", "Harga", "Harga Promo"], ["B", "12,500", None]])
    rows: list[list[object]] = [["Daftar Harga"], ["SKU", "Price", "Promo Price"]]
    rows += [[f"A-{n:02d}", 1000 + n, 900 + n if n % 2 else None] for n in range(20)]
    rows.append(["Z-1", 1000, 100])  # 90% off: rejected by the pipeline's own rule
    write_prices(inbox / "store-001 prices 2024-12-04.xlsx", rows)
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    # A warehouse at the project's schema, as deployed; the new pipeline adds its table as the next
    # migration of migrations/ (here a copy of it), and the runner of `make setup` and of a
    # deployment's migrate step applies just that one. The DAG's tasks load into this database.
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    warehouse = fresh_db_url
    assert apply_migrations(warehouse, migrations) == [m.name for m in discover(MIGRATIONS_DIR)]
    table = add_migration(migrations, "store_prices", MIGRATION)
    assert apply_migrations(warehouse, migrations) == [table.stem]
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", warehouse)

    assert list(build_dags(configs)) == ["store_prices"]
    assert run_day("store_prices", DATE, configs).state == DagRunState.SUCCESS

    snapshot = read_csv(layout.seeds("store_prices") / "20241204.csv")
    assert [(r["store_id"], r["sku"]) for r in snapshot] == [("STORE-001", f"A-{n:02d}") for n in range(20)] + [
        ("STORE-002", "B")
    ]
    assert snapshot[1] == {
        "snapshot_date": "2024-12-04",
        "store_id": "STORE-001",
        "sku": "A-01",
        "price": "1001",
        "promo_price": "901",
        "discount_pct": "9.99",
        "source_file": "store-001 prices 2024-12-04.xlsx",
    }
    (reject,) = read_csv(layout.seeds("store_prices") / "20241204_rejects.csv")
    assert (reject["row_number"], reject["reason"]) == (
        "23",
        "column 'Promo Price' (promo_price): too deep (got '100')",
    )
    # The table came from its migration, and was loaded like any other pipeline's.
    assert query(warehouse, "SELECT count(*), sum(price)::int FROM store_prices") == [
        (21, sum(1000 + n for n in range(20)) + 12500)
    ]
    assert query(
        warehouse,
        "SELECT status, total_files, processed_files, total_rows, rejected_rows FROM pipeline_runs "
        "WHERE pipeline_name = 'store_prices'",
    ) == [("completed", 2, 2, 21, 1)]
