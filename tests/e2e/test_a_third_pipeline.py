"""A new pipeline is one config file plus one transform module: the test-only store_prices
pipeline runs through the shared factory, aggregation, load and tracking into PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest
from dag_runs import query, read_csv, run_day
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.dag_factory import build_dags

pytestmark = pytest.mark.integration

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


def write_prices(path: Path, rows: list[list[object]]) -> None:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)


def test_a_pipeline_defined_only_by_its_config_and_module_runs_end_to_end(
    tmp_path: Path, data_layout: DataLayout, clean_tables: str, monkeypatch: pytest.MonkeyPatch
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
    with psycopg.connect(clean_tables, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS store_prices")

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
    # The table came from the module's own DDL, and was loaded like any other pipeline's.
    assert query(clean_tables, "SELECT count(*), sum(price)::int FROM store_prices") == [
        (21, sum(1000 + n for n in range(20)) + 12500)
    ]
    assert query(
        clean_tables,
        "SELECT status, total_files, processed_files, total_rows, rejected_rows FROM pipeline_runs "
        "WHERE pipeline_name = 'store_prices'",
    ) == [("completed", 2, 2, 21, 1)]
