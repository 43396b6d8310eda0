"""A quirky day through the real stock_health DAG (dag.test) into the real PostgreSQL.

The expected outputs are computed here, row by row in plain Python straight
from the spec, not with the package's code, and compared with the exact CSV
text and the table's rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import psycopg
import pytest
from dag_runs import fmt, pipeline_dag, query, read_csv, task_states
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout
from autopo_pipelines.warehouse import partition_name

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
SUPPLIERS = {
    # sku: (supplier_id, supplier_name, lead_time_days, moq, pack_size)
    "12345": ("SUP-1", "PT Sumber Makmur", 7, 0, 6),
    "00123": ("SUP-2", "CV Jaya, Abadi", 21, 24, 12),
    "A-100": ("SUP-1", "PT Sumber Makmur", 3, 10, 1),
    "B-200": ("SUP-3", "PT Segar", 14, 0, 24),
}
SETTINGS = {"window": 30, "safety": 7, "review": 7, "overstock": 90, "lead": 14}


@dataclass
class Row:
    sku: str
    name: str | None
    category: str | None
    stock: float
    sales: float
    cost: float | None


def expected_row(store: str, row: Row, source_file: str) -> dict[str, object]:
    supplier = SUPPLIERS.get(row.sku)
    lead = supplier[2] if supplier else SETTINGS["lead"]
    moq = supplier[3] if supplier else 0
    pack = supplier[4] if supplier else 1
    # Exact rational arithmetic: the spec's formulas without float noise, so the
    # expected order quantity is ceil(need / pack) * pack exactly as written.
    sales, stock = Fraction(row.sales), Fraction(row.stock)
    avg = sales / SETTINGS["window"]
    cover = stock / avg if avg > 0 else None
    reorder = avg * (lead + SETTINGS["safety"])
    target = avg * (lead + SETTINGS["safety"] + SETTINGS["review"])
    need = target - max(stock, 0) - 0
    if need <= 0:
        suggested = Fraction(0)
    else:
        suggested = math.ceil(need / pack) * pack
        if suggested < moq:
            suggested = math.ceil(Fraction(moq, pack)) * pack
    if row.stock <= 0 and avg > 0:
        status = "out_of_stock"
    elif row.stock <= 0:
        status = "inactive"
    elif avg == 0:
        status = "no_sales"
    elif cover is not None and cover < lead:
        status = "critical"
    elif row.stock < reorder:
        status = "low"
    elif cover is not None and cover > SETTINGS["overstock"]:
        status = "overstock"
    else:
        status = "healthy"
    return {
        "snapshot_date": DATE.isoformat(),
        "store_id": store,
        "sku": row.sku,
        "product_name": row.name,
        "category": row.category,
        "supplier_id": supplier[0] if supplier else None,
        "supplier_name": supplier[1] if supplier else None,
        "stock_on_hand": row.stock,
        "sales_qty": row.sales,
        "avg_daily_sales": avg,
        "days_of_cover": cover,
        "lead_time_days": lead,
        "reorder_point": reorder,
        "target_stock": target,
        "on_order_qty": 0,
        "suggested_order_qty": suggested,
        "status": status,
        "emergency": status in ("out_of_stock", "critical"),
        "unit_cost": row.cost,
        "stock_value": row.stock * row.cost if row.cost is not None else None,
        "source_file": source_file,
    }


def write_xlsx(path: Path, rows: list[list[object]], *, hidden_first: bool = False) -> None:
    workbook = Workbook()
    sheet = workbook.active
    if hidden_first:
        sheet.title = "Notes"
        sheet.append(["SKU", "Stock On Hand", "Sales Qty"])
        sheet.append(["WRONG-1", 999, 999])
        sheet.sheet_state = "hidden"
        sheet = workbook.create_sheet("Data")
    else:
        sheet.title = "Stock"
    for row in rows:
        sheet.append(row)
    workbook.save(path)


@dataclass
class QuirkyDay:
    expected_rows: list[dict[str, object]]
    expected_rejects: list[tuple[str, str, int, str]]
    failed_files: dict[str, str]


def build_quirky_day(layout: DataLayout) -> QuirkyDay:
    inbox = layout.inbox("stock_health")
    inbox.mkdir(parents=True)
    reference = layout.reference()
    reference.mkdir(parents=True)
    with (reference / "suppliers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"])
        for sku, values in SUPPLIERS.items():
            writer.writerow([sku, *values])
    expected: list[dict[str, object]] = []
    rejects: list[tuple[str, str, int, str]] = []

    # 1. Title rows above the header, float SKUs, a duplicate SKU, a blank row, a total row.
    name = "STORE-001_stock_20241204.xlsx"
    write_xlsx(
        inbox / name,
        [
            ["Laporan Stok Harian"],
            ["Exported 2024-12-04 06:00"],
            [],
            ["SKU", "Product Name", "Category", "Stock On Hand", "Sales Qty", "Unit Cost", "Store ID"],
            [12345.0, "Teh Botol", "Beverages", 10, 60, 3500, "STORE-001"],
            ["A-100", None, "Snacks", 0, 15, 1200.5, "store-001"],
            [],
            [12345.0, None, None, 5, 30, None, "STORE-001"],
            ["Z-9", "Slow mover", "Household", 500, 3, None, None],
            [None, "TOTAL", None, 515, 108, None, None],
        ],
    )
    for row in [
        Row("12345", "Teh Botol", "Beverages", 15, 90, 3500),
        Row("A-100", None, "Snacks", 0, 15, 1200.5),
        Row("Z-9", "Slow mover", "Household", 500, 3, None),
    ]:
        expected.append(expected_row("STORE-001", row, name))

    # 2. Indonesian headers, text numbers with thousands separators, leading zeros, store in lower case.
    name = "Toko 7 stock health 2024-12-04.xlsx"
    write_xlsx(
        inbox / name,
        [
            ["Kode Barang", "Nama Barang", "Kategori", "Stok", "Penjualan 30 Hari", "HPP", "Kode Toko"],
            ["00123", "Beras 5kg", "Rice", "1,234", "2,400", "65,000", "toko 7"],
            ["B-200", "Susu UHT", "Dairy", -3, "45", "12,500.75", "Toko 7"],
            ["C-300", "Sabun", "Personal Care", " 40 ", 0, None, None],
        ],
    )
    for row in [
        Row("00123", "Beras 5kg", "Rice", 1234, 2400, 65000),
        Row("B-200", "Susu UHT", "Dairy", -3, 45, 12500.75),
        Row("C-300", "Sabun", "Personal Care", 40, 0, None),
    ]:
        expected.append(expected_row("TOKO 7", row, name))

    # 3. Hidden first sheet; third alias set; one rejected row out of 25 (ratio 0.04, allowed).
    name = "STORE-003_stock_20241204.xlsx"
    rows: list[list[object]] = [["Item Code", "Item Name", "Dept", "SOH", "Sales 30D", "Cost", "Store"]]
    for n in range(24):
        rows.append([f"D-{n:02d}", f"Item {n}", "Frozen", n * 3, n * 2, 1000 + n, "STORE-003"])
        expected.append(
            expected_row("STORE-003", Row(f"D-{n:02d}", f"Item {n}", "Frozen", n * 3, n * 2, 1000 + n), name)
        )
    rows.append(["D-99", "Broken", "Frozen", 5, "abc", 10, "STORE-003"])
    rejects.append((name, "Data", 26, "sales_qty"))
    write_xlsx(inbox / name, rows, hidden_first=True)

    # 4. The remaining aliases: article / plu / barcode, stock, qty_sold, sales_qty_30d, store_code, toko.
    name = "STORE-004_stock_20241204.xlsx"
    write_xlsx(
        inbox / name,
        [
            ["Article", "Description", "Department", "Stock", "Sales Qty 30D", "Unit Cost", "Store Code"],
            ["E-1", "Kopi", "Beverages", 100, 30, 2000, "STORE-004"],
        ],
    )
    expected.append(expected_row("STORE-004", Row("E-1", "Kopi", "Beverages", 100, 30, 2000), name))
    name = "STORE-008_stock_20241204.xlsx"
    write_xlsx(
        inbox / name,
        [
            ["PLU", "Item Name", "Kategori", "Qty On Hand", "Qty Sold", "HPP", "Toko"],
            ["F-1", "Roti", "Bakery", 4, 30, 9000, "STORE-008"],
        ],
    )
    expected.append(expected_row("STORE-008", Row("F-1", "Roti", "Bakery", 4, 30, 9000), name))
    name = "STORE-009_stock_20241204.xlsx"
    write_xlsx(
        inbox / name,
        [
            ["Barcode", "Nama Barang", "Category", "Stok", "Sales 30D", "Cost", "Kode Toko"],
            [8991234567890.0, "Air", "Beverages", 60, 30, 3000, "STORE-009"],
        ],
    )
    expected.append(expected_row("STORE-009", Row("8991234567890", "Air", "Beverages", 60, 30, 3000), name))

    # 5. A corrupt file and one missing a required column: each fails alone.
    (inbox / "STORE-005_stock_20241204.xlsx").write_bytes(b"this is not a workbook at all")
    write_xlsx(
        inbox / "STORE-006_stock_20241204.xlsx",
        [["SKU", "Product Name", "Stock On Hand"], ["G-1", "Gula", 5]],
    )
    failed = {
        "STORE-005_stock_20241204.xlsx": "STORE-005_stock_20241204.xlsx",
        "STORE-006_stock_20241204.xlsx": "no column for sales_qty",
    }

    # 6. Not for this pipeline or not for this date: never failed, never deleted.
    (inbox / "notes from the manager.txt").write_text("hello", encoding="utf-8")
    write_xlsx(inbox / "STORE-001_stock_20241203.xlsx", [["SKU", "Stock On Hand", "Sales Qty"], ["X", 1, 1]])
    (inbox / "~$STORE-001_stock_20241204.xlsx").write_bytes(b"lock")

    expected.sort(key=lambda r: (str(r["store_id"]), str(r["sku"])))
    return QuirkyDay(expected_rows=expected, expected_rejects=rejects, failed_files=failed)


COLUMNS = [
    "snapshot_date",
    "store_id",
    "sku",
    "product_name",
    "category",
    "supplier_id",
    "supplier_name",
    "stock_on_hand",
    "sales_qty",
    "avg_daily_sales",
    "days_of_cover",
    "lead_time_days",
    "reorder_point",
    "target_stock",
    "on_order_qty",
    "suggested_order_qty",
    "status",
    "emergency",
    "unit_cost",
    "stock_value",
    "source_file",
]


def test_quirky_day_end_to_end(
    tmp_path: Path, clean_tables: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    pg_url = clean_tables
    layout = DataLayout(tmp_path / "data")
    day = build_quirky_day(layout)
    monkeypatch.setenv("AUTOPO_DATA_DIR", str(layout.root))
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # A row from an earlier load of the date must be replaced, not kept. The table has a partition
        # per date (migration 0007), which a load creates; this one is made by hand as a load would.
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {partition_name('stock_health_snapshots', DATE)} "
            f"PARTITION OF stock_health_snapshots FOR VALUES IN ('{DATE.isoformat()}')"
        )
        conn.execute(
            "INSERT INTO stock_health_snapshots (snapshot_date, store_id, sku, stock_on_hand, sales_qty, "
            "avg_daily_sales, lead_time_days, reorder_point, target_stock, on_order_qty, suggested_order_qty, "
            "status, emergency) VALUES (%s, 'OLD', 'OLD', 1, 0, 0, 14, 0, 0, 0, 0, 'no_sales', false)",
            (DATE,),
        )

    run = pipeline_dag("stock_health").test(run_conf={"date": DATE.isoformat()})

    # The day fails (two bad files) but only after the good files were loaded.
    assert run.state == DagRunState.FAILED
    states = task_states(run)
    assert states[("load_snapshot", -1)] == TaskInstanceState.SUCCESS
    assert states[("check_day", -1)] == TaskInstanceState.FAILED
    assert states[("transform_file", "STORE-005_stock_20241204.xlsx")] == TaskInstanceState.FAILED
    assert states[("transform_file", "STORE-006_stock_20241204.xlsx")] == TaskInstanceState.FAILED
    assert states[("transform_file", "Toko 7 stock health 2024-12-04.xlsx")] == TaskInstanceState.SUCCESS
    assert sum(1 for (task_id, _), _s in states.items() if task_id == "transform_file") == 8

    seeds = layout.seeds("stock_health")
    lines = (seeds / "20241204.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    got = read_csv(seeds / "20241204.csv")
    want = [{k: fmt(v) for k, v in row.items()} for row in day.expected_rows]
    assert got == want

    rejects = read_csv(seeds / "20241204_rejects.csv")
    assert [(r["source_file"], r["sheet"], int(r["row_number"])) for r in rejects] == [
        (f, s, n) for f, s, n, _ in day.expected_rejects
    ]
    assert "sales_qty" in rejects[0]["reason"] and "abc" in rejects[0]["reason"]
    assert json.loads(rejects[0]["raw_values"])["Sales 30D"] == "abc"

    emergency = read_csv(seeds / "20241204_emergency.csv")
    rank = {"out_of_stock": 0, "critical": 1}
    want_emergency = sorted(
        (r for r in day.expected_rows if r["emergency"]),
        key=lambda r: (
            rank[str(r["status"])],
            r["days_of_cover"] is not None,
            r["days_of_cover"] or 0,
            -float(r["avg_daily_sales"]),  # type: ignore[arg-type]
            r["store_id"],
            r["sku"],
        ),
    )
    assert [(r["store_id"], r["sku"]) for r in emergency] == [(r["store_id"], r["sku"]) for r in want_emergency]

    want_m2 = []
    for sku in sorted({str(r["sku"]) for r in day.expected_rows}):
        rows = [r for r in day.expected_rows if r["sku"] == sku]  # already in store order
        avg = sum(Fraction(r["avg_daily_sales"]) for r in rows)  # type: ignore[arg-type]
        stock = sum(Fraction(r["stock_on_hand"]) for r in rows)  # type: ignore[arg-type]
        values = [Fraction(r["stock_value"]) for r in rows if r["stock_value"] is not None]  # type: ignore[arg-type]

        def first(column: str, rows: list[dict[str, object]] = rows) -> object:
            return next((r[column] for r in rows if r[column] is not None), None)

        want_m2.append(
            {
                "snapshot_date": DATE.isoformat(),
                "sku": sku,
                "product_name": first("product_name"),
                "supplier_id": first("supplier_id"),
                "supplier_name": first("supplier_name"),
                "stores_count": len(rows),
                "total_stock": stock,
                "total_sales_qty": sum(Fraction(r["sales_qty"]) for r in rows),  # type: ignore[arg-type]
                "avg_daily_sales": avg,
                "days_of_cover": stock / avg if avg > 0 else None,
                "stores_out_of_stock": sum(r["status"] == "out_of_stock" for r in rows),
                "stores_critical": sum(r["status"] == "critical" for r in rows),
                "total_on_order_qty": 0,
                "total_suggested_order_qty": sum(Fraction(r["suggested_order_qty"]) for r in rows),  # type: ignore[arg-type]
                "total_stock_value": sum(values) if values else None,
            }
        )
    assert read_csv(seeds / "20241204_m2.csv") == [{k: fmt(v) for k, v in row.items()} for row in want_m2]

    with psycopg.connect(pg_url) as conn:
        table = conn.execute(
            "SELECT store_id, sku, status, emergency, stock_on_hand::text, suggested_order_qty::text, "
            "coalesce(days_of_cover::text, '') FROM stock_health_snapshots WHERE snapshot_date = %s "
            'ORDER BY store_id COLLATE "C", sku COLLATE "C"',
            (DATE,),
        ).fetchall()
    assert table == [
        (
            r["store_id"],
            r["sku"],
            r["status"],
            r["emergency"],
            fmt(r["stock_on_hand"]),
            fmt(r["suggested_order_qty"]),
            fmt(r["days_of_cover"]),
        )
        for r in day.expected_rows
    ]

    results = [
        json.loads(p.read_text()) for p in (layout.intermediate("stock_health", DATE) / "results").glob("*.json")
    ]
    failures = {r["file_name"]: r["error"] for r in results if r["status"] == "failed"}
    assert len(failures) == 2
    for file_name, fragment in day.failed_files.items():
        error = failures[file_name]
        assert error.startswith(file_name) and fragment in error
    # Unrouted and other-date files are still where they were.
    assert (layout.inbox("stock_health") / "notes from the manager.txt").exists()
    listing = json.loads((layout.intermediate("stock_health", DATE) / "listing.json").read_text())
    assert [u["name"] for u in listing["unrouted"]] == ["notes from the manager.txt"]
    assert listing["other_dates"] == 1

    # The tracking tables, kept by the plugin's listeners, say the same.
    assert query(
        pg_url,
        "SELECT status, total_files, processed_files, failed_files, skipped_files, total_rows, rejected_rows, "
        "missing_stores, attempt, dag_run_id = '" + run.run_id + "' FROM pipeline_runs",
    ) == [("completed_with_errors", 8, 6, 2, 0, len(day.expected_rows), 1, [], 1, True)]
    # Every row of the loaded files is accounted for: 37 sheet rows below the headers = 33 in the
    # snapshot + 1 duplicate SKU merged + 2 skipped (a blank and a total row) + 1 rejected.
    ((rows_in, total, merged, skipped, rejected),) = query(
        pg_url, "SELECT rows_in, total_rows, merged_rows, skipped_rows, rejected_rows FROM pipeline_runs"
    )
    assert (rows_in, total, merged, skipped, rejected) == (37, len(day.expected_rows), 1, 2, 1)
    assert rows_in == total + merged + skipped + rejected
    assert query(pg_url, "SELECT sum(rows_in)::int FROM pipeline_file_jobs WHERE status = 'completed'") == [(rows_in,)]
    (error,) = query(pg_url, "SELECT error FROM pipeline_runs")[0]
    assert "STORE-005_stock_20241204.xlsx" in error and "no column for sales_qty" in error
    jobs = {
        row[0]: row[1:]
        for row in query(
            pg_url,
            "SELECT file_name, store_id, status, retry_count, rows_in, rows_out, rows_rejected, map_index, "
            "checksum IS NOT NULL, error IS NOT NULL FROM pipeline_file_jobs",
        )
    }
    assert jobs["STORE-003_stock_20241204.xlsx"] == ("STORE-003", "completed", 0, 25, 24, 1, 1, True, False)
    assert jobs["STORE-001_stock_20241204.xlsx"] == ("STORE-001", "completed", 0, 6, 3, 0, 0, True, False)
    assert jobs["STORE-005_stock_20241204.xlsx"][1:3] == ("failed", 0)
    assert jobs["STORE-005_stock_20241204.xlsx"][-1] is True
    assert jobs["notes from the manager.txt"][:2] == (None, "unrouted")
    assert len(jobs) == 9


def test_reruns_skip_unchanged_files_and_pick_up_fixed_changed_and_late_ones(
    tmp_path: Path, clean_tables: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    layout = DataLayout(tmp_path / "data")
    build_quirky_day(layout)
    monkeypatch.setenv("AUTOPO_DATA_DIR", str(layout.root))
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", clean_tables)
    dag = pipeline_dag("stock_health")
    assert dag.test(run_conf={"date": DATE.isoformat()}).state == DagRunState.FAILED
    snapshot = f"SELECT {', '.join(COLUMNS)} FROM stock_health_snapshots ORDER BY store_id, sku"
    table_before = query(clean_tables, snapshot)

    # Nothing changed: every good file is reused, the broken ones fail again, the table is the same.
    assert dag.test(run_conf={"date": DATE.isoformat()}).state == DagRunState.FAILED
    statuses = dict(query(clean_tables, "SELECT file_name, status FROM pipeline_file_jobs WHERE status <> 'unrouted'"))
    assert sorted(set(statuses.values())) == ["failed", "skipped"]
    assert sorted(k for k, v in statuses.items() if v == "failed") == [
        "STORE-005_stock_20241204.xlsx",
        "STORE-006_stock_20241204.xlsx",
    ]
    assert query(clean_tables, snapshot) == table_before
    assert query(clean_tables, "SELECT attempt, skipped_files, processed_files FROM pipeline_runs") == [(2, 6, 0)]

    # The broken files are fixed, one good file changes, and a late store sends its file.
    inbox = layout.inbox("stock_health")
    header = ["SKU", "Stock On Hand", "Sales Qty"]
    write_xlsx(inbox / "STORE-005_stock_20241204.xlsx", [header, ["H-1", 1, 30]])
    write_xlsx(inbox / "STORE-006_stock_20241204.xlsx", [header, ["G-1", 5, 0]])
    write_xlsx(inbox / "STORE-004_stock_20241204.xlsx", [header, ["E-1", 7, 30]])
    write_xlsx(inbox / "STORE-010_stock_20241204.xlsx", [header, ["L-1", 2, 3]])
    assert dag.test(run_conf={"date": DATE.isoformat()}).state == DagRunState.SUCCESS
    jobs = dict(query(clean_tables, "SELECT file_name, status FROM pipeline_file_jobs WHERE status <> 'unrouted'"))
    assert {k for k, v in jobs.items() if v == "completed"} == {
        "STORE-004_stock_20241204.xlsx",
        "STORE-005_stock_20241204.xlsx",
        "STORE-006_stock_20241204.xlsx",
        "STORE-010_stock_20241204.xlsx",
    }
    assert {v for k, v in jobs.items() if k not in ("STORE-004_stock_20241204.xlsx",)} - {"completed"} == {"skipped"}
    assert query(
        clean_tables,
        "SELECT store_id, sku, stock_on_hand::text FROM stock_health_snapshots WHERE store_id IN "
        "('STORE-004', 'STORE-005', 'STORE-010') ORDER BY 1, 2",
    ) == [("STORE-004", "E-1", "7"), ("STORE-005", "H-1", "1"), ("STORE-010", "L-1", "2")]
    assert query(clean_tables, "SELECT status, attempt, failed_files, total_files FROM pipeline_runs") == [
        ("completed", 3, 0, 9)
    ]
    # retry_count counts real attempts: the once-broken file was transformed three times.
    assert query(
        clean_tables, "SELECT retry_count FROM pipeline_file_jobs WHERE file_name = 'STORE-005_stock_20241204.xlsx'"
    ) == [(2,)]
