"""A stock_health day full of bad files, through the real DAG (dag.test) into PostgreSQL.

Two good store files and one file per kind of bad input, each named as a store file
of the date. Each bad file must fail its own transform_file map index with an error
a helpdesk can act on (the file, and the sheet, row and column where they apply);
the good files are loaded; only check_day fails the run; nothing crashes, hangs or
runs out of memory. Also: a 200,000-row store file loads whole.

The corpus files (from tafia/calamine, MIT, Copyright Johann Tuffe, and Apache POI
test-data, Apache-2.0; see the corpus README) are read from $AUTOPO_CORPUS_DIR or
shared/corpus/xlsx beside the checkout.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from dag_runs import query, run_day, task_states
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout
from xlsx_samples import LAUGHS, SHEET_HEAD, SHEET_TAIL, bomb_file, corpus_dir, shared_strings_bomb, sheet_bomb

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
HEADER = ["SKU", "Product Name", "Stock On Hand", "Sales Qty", "Store ID"]
SALES_ALIASES = "sales_qty, sales_30d, sales_qty_30d, qty_sold, penjualan_30_hari"


def store_file(store: int) -> str:
    return f"STORE-{store:03d}_stock_{DATE:%Y%m%d}.xlsx"


def xlsx_bytes(rows: list[list[object]], *, title: str = "Stock") -> bytes:
    workbook = Workbook()
    workbook.active.title = title
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_zip(content: bytes, change: dict[str, bytes | None]) -> bytes:
    """The same workbook with some parts replaced (None: removed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename not in change:
                dst.writestr(item, src.read(item))
            elif change[item.filename] is not None:
                dst.writestr(item, change[item.filename])  # type: ignore[arg-type]
    return out.getvalue()


def write_suppliers(layout: DataLayout) -> None:
    layout.reference().mkdir(parents=True)
    with (layout.reference() / "suppliers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"])
        writer.writerow(["A-1", "SUP-1", "PT Sumber Makmur", 7, 0, 6])


def build_bad_day(layout: DataLayout) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """The inbox of the day: (bad file -> fragments its error must hold, corpus files, lock files)."""
    inbox = layout.inbox("stock_health")
    inbox.mkdir(parents=True)
    write_suppliers(layout)
    expected: dict[str, list[str]] = {}

    # The good files. STORE-002 has 1 rejected row in 20: exactly the 5% allowed.
    (inbox / store_file(1)).write_bytes(
        xlsx_bytes([HEADER, ["A-1", "Teh", 10, 60, "STORE-001"], ["B-2", "Kopi", 0, 15, None], ["C-3", None, 5, 0, ""]])
    )
    rows: list[list[object]] = [HEADER] + [[f"D-{n:02d}", "Roti", n, n * 2, "STORE-002"] for n in range(19)]
    rows.append(["D-99", "Broken", 5, "abc", "STORE-002"])
    (inbox / store_file(2)).write_bytes(xlsx_bytes(rows))

    def bad(store: int, content: bytes, *fragments: str) -> None:
        name = store_file(store)
        (inbox / name).write_bytes(content)
        expected[name] = [fragment.format(name=name) for fragment in fragments]

    # 2 GB of sheet rows, and of shared strings, in ~6 MB files each.
    name = store_file(101)
    bomb_file(inbox / name, "xl/worksheets/sheet1.xml", sheet_bomb(2 * 10**9))
    expected[name] = [
        f"{name}, sheet 'Stock': the workbook expands to more than 1,000,000,000 bytes when unzipped and is refused",
        "'xl/worksheets/sheet1.xml', declares 1,999,",
        "ask the store to export the report from Excel again",
    ]
    name = store_file(102)
    bomb_file(inbox / name, "xl/sharedStrings.xml", shared_strings_bomb(2 * 10**9))
    expected[name] = [f"{name}: the workbook expands to more than 1,000,000,000 bytes", "'xl/sharedStrings.xml'"]
    bad(103, b"SKU,Stock On Hand,Sales Qty\nA-1,1,2\n", "{name}: the file is a text/CSV file renamed to .xlsx")
    bad(104, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "{name}: the file is a PDF document")
    bad(105, b"", "{name}: the file is empty (0 bytes)")
    plain = xlsx_bytes([HEADER, ["A-1", "Teh", 1, 1, None]])
    with zipfile.ZipFile(io.BytesIO(plain)) as zf:
        workbook_xml = zf.read("xl/workbook.xml")
    start, end = workbook_xml.index(b"<sheets>"), workbook_xml.index(b"</sheets>") + len(b"</sheets>")
    no_sheets_xml = workbook_xml[:start] + b"<sheets/>" + workbook_xml[end:]
    no_sheets = rewrite_zip(plain, {"xl/workbook.xml": no_sheets_xml, "xl/worksheets/sheet1.xml": None})
    bad(106, no_sheets, "{name}: the workbook contains no sheets")
    hidden = rewrite_zip(plain, {"xl/workbook.xml": workbook_xml.replace(b'state="visible"', b'state="hidden"')})
    bad(107, hidden, "{name}: no visible sheet: every sheet is hidden or a chart ('Stock')")
    deep: list[list[object]] = [["Laporan Stok"]] + [[] for _ in range(23)] + [HEADER, ["A-1", "Teh", 1, 1, None]]
    bad(
        108,
        xlsx_bytes(deep),
        "{name}, sheet 'Stock': no header row in the first 20 rows: no row names sku (a heading one of: sku, "
        "item_code, kode_barang, plu, article, barcode), stock_on_hand (a heading one of: stock_on_hand, soh, "
        "stock, qty_on_hand, stok) or sales_qty (a heading one of: " + SALES_ALIASES + "); the fullest row, 1, "
        "reads 'Laporan Stok'; the workbook has no other sheet",
    )
    bad(
        109,
        xlsx_bytes([["SKU", "Product Name", "Stock On Hand"], ["A-1", "Teh", 1]]),
        "{name}, sheet 'Stock', row 1: no column for sales_qty (a heading one of: " + SALES_ALIASES + ") in the "
        "row most like a header in the first 20 rows, which reads 'SKU | Product Name | Stock On Hand' (sku and "
        "stock_on_hand found there); the workbook has no other sheet",
    )
    bad(
        110,
        xlsx_bytes([HEADER, ["A-1", "Teh", 1, 1, "store-110"], ["B-2", "Kopi", 1, 1, "STORE-999"]]),
        "{name}, sheet 'Stock', row 3, column 'Store ID': store 'STORE-999' in the file disagrees with "
        "store 'STORE-110' in the file name",
    )
    bad(
        111,
        xlsx_bytes([HEADER] + [[f"E-{n}", "Gula", 1, "abc", None] for n in range(4)]),
        "{name}, sheet 'Stock': 4 of 4 data rows rejected, more than the allowed 5%; first: row 2: "
        "column 'Sales Qty' (sales_qty): not a number (got 'abc')",
    )
    # 3 rejected of 59 rows is 5.08%: just over the 5% allowed. Data row n is sheet row n + 2.
    rows = [HEADER] + [[f"F-{n:02d}", "Susu", n, n, None] for n in range(59)]
    rows[9 + 1][2], rows[30 + 1][3], rows[58 + 1][2] = "abc", -5, "1,5"
    bad(
        112,
        xlsx_bytes(rows),
        "{name}, sheet 'Stock': 3 of 59 data rows rejected, more than the allowed 5%; first: row 11: "
        "column 'Stock On Hand' (stock_on_hand): not a number (got 'abc')",
    )
    with zipfile.ZipFile(io.BytesIO(plain)) as zf:
        sheet_xml = zf.read("xl/worksheets/sheet1.xml")
    laughing = LAUGHS + sheet_xml.replace(b"<t>Teh</t>", b"<t>&lol9;</t>")
    laughs = rewrite_zip(plain, {"xl/worksheets/sheet1.xml": laughing})
    bad(113, laughs, "{name}, sheet 'Stock': the sheet uses XML entities that Excel never writes")

    # Every odd and broken file of the corpus as a store's file; the lock file under its own name.
    corpus = corpus_dir()
    corpus_files: list[str] = []
    lock_files: list[str] = []
    if corpus is not None:
        for n, path in enumerate(sorted(corpus.glob("*/*.xlsx")), start=201):
            if path.name.startswith("~$"):
                shutil.copyfile(path, inbox / path.name)
                # and as Excel names it beside a store file of the date
                shutil.copyfile(path, inbox / f"~${store_file(1)}")
                lock_files += [path.name, f"~${store_file(1)}"]
            else:
                shutil.copyfile(path, inbox / store_file(n))
                corpus_files.append(store_file(n))
    return expected, corpus_files, lock_files


def test_each_bad_file_fails_alone_with_a_clear_error(data_layout: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    started = time.perf_counter()
    expected, corpus_files, lock_files = build_bad_day(data_layout)
    built = time.perf_counter() - started
    started = time.perf_counter()
    run = run_day("stock_health", DATE)
    took = time.perf_counter() - started
    count = len(expected) + len(corpus_files) + 2
    print(f"built the inbox in {built:.1f} s; the DAG run of {count} files took {took:.1f} s")
    assert took < 60

    # Only check_day fails: the good files were aggregated and loaded first.
    assert run.state == DagRunState.FAILED
    states = task_states(run)
    for task_id in ("wait_for_files", "list_files", "aggregate_and_flush", "load_snapshot"):
        assert states[(task_id, -1)] == TaskInstanceState.SUCCESS, task_id
    assert states[("check_day", -1)] == TaskInstanceState.FAILED
    files = {index: state for (task_id, index), state in states.items() if task_id == "transform_file"}
    assert set(files) == {store_file(1), store_file(2), *expected, *corpus_files}
    assert files[store_file(1)] == files[store_file(2)] == TaskInstanceState.SUCCESS
    for name in expected:
        assert files[name] == TaskInstanceState.FAILED, name

    results = {
        record["file_name"]: record
        for record in (
            json.loads(p.read_text())
            for p in (data_layout.intermediate("stock_health", DATE) / "results").glob("*.json")
        )
    }
    for name, fragments in expected.items():
        error = results[name]["error"]
        assert results[name]["status"] == "failed"
        for fragment in fragments:
            assert fragment in error, f"{name}: {fragment!r} not in {error!r}"
        assert "Traceback" not in error and str(data_layout.root) not in error
    loaded_corpus = []
    for name in corpus_files:
        if files[name] == TaskInstanceState.SUCCESS:
            loaded_corpus.append(name)
            continue
        assert files[name] == TaskInstanceState.FAILED, name
        error = results[name]["error"]
        # A WorkbookError (or a row/column error) naming the file as uploaded, with a message.
        assert error.startswith((f"{name}: ", f"{name}, sheet ")), error
        assert len(error) > len(name) + 20, error
        print(f"corpus file failed as expected: {error}")

    # The good files' rows, and only theirs (a corpus file that yields rows would be loaded too).
    stores = dict(
        query(
            clean_tables,
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY 1",
            (DATE,),
        )
    )
    assert stores.pop("STORE-001") == 3 and stores.pop("STORE-002") == 19
    assert set(stores) == {name.split("_")[0] for name in loaded_corpus}
    rejects = (data_layout.seeds("stock_health") / f"{DATE:%Y%m%d}_rejects.csv").read_text(encoding="utf-8")
    assert store_file(2) in rejects and store_file(112) not in rejects and store_file(111) not in rejects

    # Lock files are not uploads: never listed, never failed, never tracked.
    listing = json.loads((data_layout.intermediate("stock_health", DATE) / "listing.json").read_text())
    assert not [name for name in lock_files if name in json.dumps(listing)]
    jobs = dict(query(clean_tables, "SELECT file_name, status FROM pipeline_file_jobs"))
    assert not set(lock_files) & set(jobs)
    assert {name for name, status in jobs.items() if status == "failed"} == (
        set(expected) | (set(corpus_files) - set(loaded_corpus))
    )
    errors = dict(query(clean_tables, "SELECT file_name, error FROM pipeline_file_jobs WHERE status = 'failed'"))
    for name, fragments in expected.items():
        assert fragments[0] in errors[name]
    assert query(clean_tables, "SELECT status, failed_files FROM pipeline_runs") == [
        ("completed_with_errors", len(expected) + len(corpus_files) - len(loaded_corpus))
    ]


def write_big_store_file(path: Path, rows: int) -> None:
    """A 10-column store report of ``rows`` rows, its sheet XML written straight into the zip."""
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes([["x"]]))) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != "xl/worksheets/sheet1.xml"}
    header = [*HEADER, "Category", "Unit Cost", "Supplier Ref", "Shelf", "Note"]

    def text(column: str, row: int, value: str) -> str:
        return f'<c r="{column}{row}" t="inlineStr"><is><t>{value}</t></is></c>'

    def number(column: str, row: int, value: float) -> str:
        return f'<c r="{column}{row}"><v>{value}</v></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        with zf.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(SHEET_HEAD)
            cells = "".join(text(chr(65 + i), 1, value) for i, value in enumerate(header))
            sheet.write(f'<row r="1">{cells}</row>'.encode())
            batch: list[str] = []
            for n in range(rows):
                r = n + 2
                batch.append(
                    f'<row r="{r}">{text("A", r, f"SKU-{n:06d}")}{text("B", r, f"Item {n}")}'
                    f"{number('C', r, n % 500)}{number('D', r, n % 90)}{text('E', r, 'STORE-300')}"
                    f"{text('F', r, 'Grocery')}{number('G', r, 1000 + n % 7 * 0.25)}{text('H', r, f'SR-{n % 97}')}"
                    f"{number('I', r, n % 40)}{text('J', r, 'ok')}</row>"
                )
                if len(batch) == 10_000:
                    sheet.write("".join(batch).encode())
                    batch.clear()
            sheet.write("".join(batch).encode())
            sheet.write(SHEET_TAIL)


def test_a_200000_row_store_file_loads_whole(data_layout: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    inbox = data_layout.inbox("stock_health")
    inbox.mkdir(parents=True)
    write_suppliers(data_layout)
    started = time.perf_counter()
    write_big_store_file(inbox / store_file(300), 200_000)
    written = time.perf_counter() - started
    started = time.perf_counter()
    run = run_day("stock_health", DATE)
    took = time.perf_counter() - started
    size = (inbox / store_file(300)).stat().st_size
    print(f"200,000-row file ({size / 1e6:.1f} MB) written in {written:.1f} s; the DAG run took {took:.1f} s")
    assert run.state == DagRunState.SUCCESS
    assert query(
        clean_tables,
        "SELECT count(*), count(DISTINCT sku), sum(stock_on_hand)::bigint FROM stock_health_snapshots "
        "WHERE snapshot_date = %s AND store_id = 'STORE-300'",
        (DATE,),
    ) == [(200_000, 200_000, sum(n % 500 for n in range(200_000)))]
