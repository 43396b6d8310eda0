"""stock_health's on_order_qty comes from the PO snapshot of the same date, in either order of runs.

PO first: the open quantities reach the stock snapshot. Stock first: on_order_qty
is 0 and the run says it ran without PO data; a later PO load does not change
the stock snapshot, rerunning stock_health does.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest
from dag_runs import query, run_day
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
# sku: (lead_time_days, moq, pack_size)
SUPPLIERS = {"A-1": (7, 0, 6), "B-2": (14, 0, 1)}
STOCK = {
    # (store, sku): (stock_on_hand, sales_qty)
    ("STORE-001", "A-1"): (10, 90),
    ("STORE-001", "B-2"): (50, 30),
    ("STORE-002", "A-1"): (0, 60),
}
# What the PO export below leaves open per (store, sku); B-2's only line is closed.
OPEN = {("STORE-001", "A-1"): 15.0, ("STORE-002", "A-1"): 18.0}
SNAPSHOT = (
    "SELECT store_id, sku, on_order_qty::float8, suggested_order_qty::float8 FROM stock_health_snapshots ORDER BY 1, 2"
)


def write_sheet(path: Path, rows: list[list[object]]) -> None:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)


def write_day(layout: DataLayout) -> None:
    layout.reference().mkdir(parents=True)
    with (layout.reference() / "suppliers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"])
        for sku, terms in SUPPLIERS.items():
            writer.writerow([sku, "SUP-1", "PT Sumber Makmur", *terms])
    stock_inbox = layout.inbox("stock_health")
    stock_inbox.mkdir(parents=True)
    for store in ("STORE-001", "STORE-002"):
        rows: list[list[object]] = [["SKU", "Stock On Hand", "Sales Qty"]]
        rows += [[sku, *values] for (s, sku), values in STOCK.items() if s == store]
        write_sheet(stock_inbox / f"{store}_stock_{DATE:%Y%m%d}.xlsx", rows)


def write_po_export(layout: DataLayout) -> None:
    inbox = layout.inbox("po_snapshots")
    inbox.mkdir(parents=True)
    write_sheet(
        inbox / f"po_snapshot_{DATE:%Y%m%d}.xlsx",
        [
            ["PO No", "Store", "SKU", "Qty PO", "Qty Terima", "Status"],
            ["PO-1", "STORE-001", "A-1", 10, None, "Open"],
            ["PO-2", "STORE-001", "A-1", 5, 0, "Open"],
            ["PO-2", "STORE-001", "B-2", 20, 20, "Open"],
            ["PO-3", "STORE-002", "A-1", 24, 6, "Partial"],
            ["PO-3", "STORE-002", "B-2", 12, 0, "Batal"],
            # A store that sent no stock report: its open PO has no stock row to reach.
            ["PO-4", "STORE-009", "A-1", 7, 0, "Open"],
        ],
    )


def suggested(store: str, sku: str, on_order: float) -> float:
    """The spec's suggested_order_qty for the rows above (moq 0)."""
    stock, sales = STOCK[(store, sku)]
    lead, _moq, pack = SUPPLIERS[sku]
    need = sales / 30 * (lead + 7 + 7) - max(stock, 0) - on_order
    return 0.0 if need <= 0 else math.ceil(round(need / pack, 9)) * pack


def expected_snapshot(with_po: bool) -> list[tuple[object, ...]]:
    rows = []
    for store, sku in sorted(STOCK):
        on_order = OPEN.get((store, sku), 0.0) if with_po else 0.0
        rows.append((store, sku, on_order, float(suggested(store, sku, on_order))))
    return rows


def notes(url: str) -> list[str]:
    ((value,),) = query(url, "SELECT notes FROM pipeline_runs WHERE pipeline_name = 'stock_health'")
    return list(value)


@pytest.fixture
def day(data_layout: DataLayout) -> DataLayout:
    write_day(data_layout)
    return data_layout


def test_po_loaded_first_reaches_on_order(day: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    write_po_export(day)
    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS

    assert query(clean_tables, SNAPSHOT) == expected_snapshot(with_po=True)
    # The open quantity lowers what is suggested: STORE-002 has no stock and 18 on order.
    assert expected_snapshot(with_po=True) != expected_snapshot(with_po=False)
    (note,) = notes(clean_tables)
    assert note.startswith("on_order_qty from po_snapshots for 2024-12-04 as loaded at ")
    assert note.endswith(": 6 PO lines, 3 (store, sku) with open quantity")


def test_stock_first_runs_without_po_and_only_a_rerun_takes_it_in(day: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    without = "ran without PO data for 2024-12-04: po_snapshots has no load for the date; on_order_qty is 0"
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    assert query(clean_tables, SNAPSHOT) == expected_snapshot(with_po=False)
    assert notes(clean_tables) == [without]
    assert query(clean_tables, "SELECT status FROM pipeline_runs WHERE pipeline_name = 'stock_health'") == [
        ("completed",)
    ]

    # The PO day arrives later: the stock snapshot does not change behind anyone's back.
    write_po_export(day)
    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS
    assert query(clean_tables, SNAPSHOT) == expected_snapshot(with_po=False)

    # Rerunning stock_health for the date transforms the unchanged store files again with the PO data.
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    assert query(clean_tables, SNAPSHOT) == expected_snapshot(with_po=True)
    assert query(
        clean_tables,
        "SELECT attempt, processed_files, skipped_files FROM pipeline_runs WHERE pipeline_name = 'stock_health'",
    ) == [(2, 2, 0)]
    assert notes(clean_tables)[0].startswith("on_order_qty from po_snapshots")

    # Nothing changed since: the next run reuses every file.
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    assert query(
        clean_tables,
        "SELECT attempt, processed_files, skipped_files FROM pipeline_runs WHERE pipeline_name = 'stock_health'",
    ) == [(3, 0, 2)]
    assert query(clean_tables, SNAPSHOT) == expected_snapshot(with_po=True)
