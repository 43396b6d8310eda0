"""A quirky PO day through the real po_snapshots DAG (dag.test) into the real PostgreSQL.

The expected lines are worked out here from the spec with plain Python, and
compared with the exact CSV text, the table, the rejects and the tracking rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from dag_runs import fmt, query, read_csv, run_day, task_states
from openpyxl import Workbook

from autopo_pipelines import day_lock
from autopo_pipelines.layout import DataLayout
from po_spec import SPEC_OUTPUT_COLUMNS

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
COLUMNS = SPEC_OUTPUT_COLUMNS
CONSOLIDATED = "po_snapshot_20241204.xlsx"
STORE_FILE = "STORE-003 PO 2024-12-04.xlsx"
SUPPLIER_FILE = "po_export_SUP-1_2024-12-04.xlsx"
BROKEN = "PO export 2024-12-04.xlsx"


@dataclass
class Line:
    po: str
    store: str
    sku: str
    supplier: tuple[str | None, str | None]
    po_date: dt.date | None
    expected: dt.date | None
    ordered: float
    received: float
    status: str | None
    files: tuple[str, ...]


def expected_line(line: Line) -> dict[str, object]:
    """The spec's derived columns, rule by rule."""
    status = (line.status or "").lower()
    if any(word in status for word in ("cancel", "batal", "void")):
        norm = "cancelled"
    elif line.received >= line.ordered or any(word in status for word in ("closed", "complete", "selesai")):
        norm = "closed"
    elif 0 < line.received < line.ordered:
        norm = "partial"
    else:
        norm = "open"
    qty_open = 0 if norm in ("cancelled", "closed") else line.ordered - line.received
    overdue = (DATE - line.expected).days if line.expected and line.expected < DATE and qty_open > 0 else 0
    return {
        "snapshot_date": DATE,
        "po_number": line.po,
        "store_id": line.store,
        "sku": line.sku,
        "supplier_id": line.supplier[0],
        "supplier_name": line.supplier[1],
        "po_date": line.po_date,
        "expected_date": line.expected,
        "qty_ordered": line.ordered,
        "qty_received": line.received,
        "qty_open": qty_open,
        "status_norm": norm,
        "days_overdue": overdue,
        "is_overdue": overdue > 0,
        "source_file": "; ".join(line.files),
    }


def write_xlsx(path: Path, rows: list[list[object]], modified: float) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "PO"
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    os.utime(path, (modified, modified))


def serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


@dataclass
class PoDay:
    lines: list[Line]
    rejects: list[tuple[str, int, str]]
    rows_in: int
    skipped: int


def build_po_day(layout: DataLayout) -> PoDay:
    inbox = layout.inbox("po_snapshots")
    inbox.mkdir(parents=True)
    base = dt.datetime(2024, 12, 4, 6, 0).timestamp()
    sup1, sup2 = ("SUP-1", "PT Sumber Makmur"), ("SUP-2", "CV Jaya, Abadi")
    d = dt.date

    # 1. The consolidated export: title rows, Indonesian headers, every date form, a duplicate
    #    line, a total row, a blank row, a line without store and a US date (both rejected).
    rows: list[list[object]] = [
        ["Outstanding PO per 04/12/2024"],
        [],
        ["PO No.", "Toko", "Kode Barang", "Kode Supplier", "Nama Supplier", "Tanggal PO", "ETA", "Qty PO",
         "Qty Terima", "Status"],
        ["PO-1", "store-001", "A-1", *sup1, d(2024, 11, 1), "2024-11-20", 10, None, "Open"],
        ["PO-1", " STORE-001 ", 12345.0, *sup1, serial(d(2024, 11, 4)), serial(d(2024, 12, 14)), "1,200", 200,
         "Partial"],
        ["PO-2", "STORE-002", "00123", *sup2, "01/11/2024", "03-12-2024", 24, 24, "Open"],
        ["PO-3", "STORE-002", "B-2", *sup2, "2024-11-02", "2024-12-04", 5, 0, "BATAL"],
        ["PO-4", "STORE-001", "C-3", *sup1, None, "30/11/2024", 8, 3, "Selesai"],
        ["PO-5", "STORE-003", "D-4", *sup2, "2024-11-03", "2024-12-01", 6, 2, "Dibuka"],
        [],
        ["PO-5", "STORE-003", "D-4", None, None, None, "2024-12-02", 4, None, None],
        ["PO-6", None, "E-5", *sup1, None, None, 1, 0, "Open"],
        ["PO-7", "STORE-001", "E-6", *sup1, None, "12/31/2024", 1, 0, "Open"],
    ]  # fmt: skip
    lines = [
        Line("PO-1", "STORE-001", "12345", sup1, d(2024, 11, 4), d(2024, 12, 14), 1200, 200, "Partial",
             (CONSOLIDATED,)),
        Line("PO-2", "STORE-002", "00123", sup2, d(2024, 11, 1), d(2024, 12, 3), 24, 24, "Open", (CONSOLIDATED,)),
        Line("PO-3", "STORE-002", "B-2", sup2, d(2024, 11, 2), d(2024, 12, 4), 5, 0, "BATAL", (CONSOLIDATED,)),
        Line("PO-4", "STORE-001", "C-3", sup1, None, d(2024, 11, 30), 8, 3, "Selesai", (CONSOLIDATED,)),
        # Duplicate within the file: quantities summed, the latest non-blank ETA, the only status.
        Line("PO-5", "STORE-003", "D-4", sup2, d(2024, 11, 3), d(2024, 12, 2), 10, 2, "Dibuka", (CONSOLIDATED,)),
    ]  # fmt: skip
    for n in range(40):
        rows.append([f"PO-8{n:02d}", "STORE-004", f"F-{n:02d}", *sup2, "2024-11-10", "2024-11-28", n + 1, n % 3, None])
        lines.append(
            Line(f"PO-8{n:02d}", "STORE-004", f"F-{n:02d}", sup2, d(2024, 11, 10), d(2024, 11, 28), n + 1, n % 3,
                 None, (CONSOLIDATED,))
        )  # fmt: skip
    rows.append(["Total", None, None, None, None, None, None, 999, None, None])
    write_xlsx(inbox / CONSOLIDATED, rows, base)
    rejects = [
        (CONSOLIDATED, 12, "no store"),
        (CONSOLIDATED, 13, "column 'ETA' (expected_date): not a date"),
    ]
    rows_in = len(rows) - 3
    skipped = 2  # the blank row and the total row

    # 2. A store's own export: the store is in the file name only; other header aliases.
    store_rows: list[list[object]] = [
        ["No PO", "PLU", "Vendor Code", "Vendor", "Order Date", "Delivery Date", "Order Qty", "Received Qty",
         "PO Status"],
        ["PO-9", "F-6", *sup1, d(2024, 11, 1), d(2024, 11, 25), 12, 0, "void"],
        ["PO-10", "G-7", *sup1, "2024-11-01", "25/11/2024", 7, None, ""],
    ]  # fmt: skip
    write_xlsx(inbox / STORE_FILE, store_rows, base + 10)
    lines += [
        Line("PO-9", "STORE-003", "F-6", sup1, d(2024, 11, 1), d(2024, 11, 25), 12, 0, "void", (STORE_FILE,)),
        Line("PO-10", "STORE-003", "G-7", sup1, d(2024, 11, 1), d(2024, 11, 25), 7, 0, None, (STORE_FILE,)),
    ]
    rows_in += 2

    # 3. A supplier's export, newer than the consolidated one: its PO-1/A-1 line is summed with
    #    the consolidated line, and its status and ETA win because it is the latest.
    supplier_rows: list[list[object]] = [
        ["Purchase Order", "Store Code", "SKU", "Supplier ID", "Supplier", "Order Date", "Delivery Date",
         "Qty Ordered", "Qty Received", "Status"],
        ["PO-1", "STORE-001", "A-1", None, None, None, "2024-11-25", 5, 5, "Closed"],
        ["PO-11", "STORE-002", "H-8", *sup1, None, None, 3, None, None],
    ]  # fmt: skip
    write_xlsx(inbox / SUPPLIER_FILE, supplier_rows, base + 60)
    lines += [
        Line("PO-1", "STORE-001", "A-1", sup1, d(2024, 11, 1), d(2024, 11, 25), 15, 5, "Closed",
             (CONSOLIDATED, SUPPLIER_FILE)),
        Line("PO-11", "STORE-002", "H-8", sup1, None, None, 3, 0, None, (SUPPLIER_FILE,)),
    ]  # fmt: skip
    rows_in += 2

    # 4. A PDF saved as .xlsx fails alone; another date's export and a stray file are left alone.
    (inbox / BROKEN).write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    write_xlsx(inbox / "po_snapshot_20241203.xlsx", [["PO", "SKU", "Qty PO"], ["X", "Y", 1]], base)
    (inbox / "notes.txt").write_text("call the supplier", encoding="utf-8")
    return PoDay(lines=lines, rejects=rejects, rows_in=rows_in, skipped=skipped)


def test_po_day_end_to_end(data_layout: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    layout = data_layout
    day = build_po_day(layout)
    with psycopg.connect(clean_tables, autocommit=True) as conn:
        # An earlier load of the date is replaced, not added to.
        conn.execute(
            "INSERT INTO po_snapshots (snapshot_date, po_number, store_id, sku, qty_ordered, qty_received, "
            "qty_open, status_norm, days_overdue, is_overdue) VALUES (%s, 'OLD', 'OLD', 'OLD', 1, 0, 1, 'open', 0, "
            "false)",
            (DATE,),
        )

    # A run of the date that ended without letting go of it (killed, marked failed) does not block the day.
    day_lock.acquire(clean_tables, "po_snapshots", DATE, "manual__gone", lambda run_id: True)

    run = run_day("po_snapshots", DATE)

    # The broken export fails its own map index; the other files are loaded.
    assert run.state == DagRunState.FAILED
    states = task_states(run)
    assert states[("transform_file", BROKEN)] == TaskInstanceState.FAILED
    for name in (CONSOLIDATED, STORE_FILE, SUPPLIER_FILE):
        assert states[("transform_file", name)] == TaskInstanceState.SUCCESS
    assert states[("load_snapshot", -1)] == TaskInstanceState.SUCCESS
    # check_day let go of the date: the next run of it may start.
    assert day_lock.holder(clean_tables, "po_snapshots", DATE) is None

    expected = sorted(
        (expected_line(line) for line in day.lines), key=lambda r: (r["po_number"], r["store_id"], r["sku"])
    )
    seeds = layout.seeds("po_snapshots")
    text = (seeds / "20241204.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    # Sorted by plain character code: "PO-10" before "PO-2".
    assert [line.split(",")[1] for line in lines[1:4]] == ["PO-1", "PO-1", "PO-10"]
    assert read_csv(seeds / "20241204.csv") == [{c: fmt(row[c]) for c in COLUMNS} for row in expected]

    rejects = read_csv(seeds / "20241204_rejects.csv")
    assert [(r["source_file"], int(r["row_number"])) for r in rejects] == [(f, n) for f, n, _ in day.rejects]
    for reject, (_file, _row, reason) in zip(rejects, day.rejects, strict=True):
        assert reason in reject["reason"]
        assert reject["sheet"] == "PO"
    assert json.loads(rejects[1]["raw_values"])["ETA"] == "12/31/2024"

    table = query(
        clean_tables,
        "SELECT po_number, store_id, sku, qty_open::float8, status_norm, days_overdue, is_overdue, expected_date "
        "FROM po_snapshots WHERE snapshot_date = %s "
        'ORDER BY po_number COLLATE "C", store_id COLLATE "C", sku COLLATE "C"',
        (DATE,),
    )
    assert table == [
        (r["po_number"], r["store_id"], r["sku"], float(r["qty_open"]), r["status_norm"], r["days_overdue"],
         r["is_overdue"], r["expected_date"])
        for r in expected
    ]  # fmt: skip
    assert query(clean_tables, "SELECT rows FROM snapshot_loads WHERE table_name = 'po_snapshots'") == [
        (len(expected),)
    ]

    (run_row,) = query(
        clean_tables,
        "SELECT status, total_files, processed_files, failed_files, total_rows, rejected_rows, error "
        "FROM pipeline_runs WHERE pipeline_name = 'po_snapshots'",
    )
    assert run_row[:6] == ("completed_with_errors", 4, 3, 1, len(expected), 2)
    assert BROKEN in run_row[6] and "PDF" in run_row[6]

    # Every row in is in the snapshot, merged into a row that is, skipped by rule, or rejected.
    from autopo_local.summary import day_summary

    summary = day_summary("po_snapshots", DATE, layout, clean_tables)
    assert summary["rows_in"] == day.rows_in
    assert summary["rows_skipped"] == {"blank": 1, "no_key": 0, "total": 1, "header_repeat": 0}
    # PO-5 twice in the consolidated export, PO-1/A-1 in two files.
    assert summary["rows_merged"] == 2
    assert summary["rows_in"] == len(expected) + summary["rows_merged"] + day.skipped + len(day.rejects)
    # The run's tracking row holds the same accounting.
    assert query(
        clean_tables,
        "SELECT rows_in, total_rows, merged_rows, skipped_rows, rejected_rows FROM pipeline_runs "
        "WHERE pipeline_name = 'po_snapshots'",
    ) == [(day.rows_in, len(expected), 2, day.skipped, len(day.rejects))]


def test_a_past_date_without_files_fails_at_once_and_the_tracking_row_says_why(
    data_layout: DataLayout, clean_tables: str
) -> None:
    from airflow.utils.state import DagRunState

    run = run_day("po_snapshots", DATE)
    assert run.state == DagRunState.FAILED
    ((status, error),) = query(clean_tables, "SELECT status, error FROM pipeline_runs")
    assert status == "failed"
    assert error.startswith("no po_snapshots files for 2024-12-04 at ")
    assert error.endswith("; not waiting for a past date")
