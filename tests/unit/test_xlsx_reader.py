"""Unit tests for autopo_pipelines.xlsx_reader (the SheetTable contract).

The corpus tests read /work/shared/corpus/xlsx (files from tafia/calamine, MIT, Copyright
Johann Tuffe, and Apache POI test-data, Apache-2.0; see the corpus README).
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest

from autopo_pipelines.xlsx_reader import HeaderNotFoundError, SheetTable, WorkbookError, read_sheet_table
from xlsx_samples import corpus_dir

CORPUS = corpus_dir()
if CORPUS is None:
    raise RuntimeError("corpus not found: set AUTOPO_CORPUS_DIR to shared/corpus/xlsx")
CORPUS_FILES = sorted(CORPUS.glob("*/*.xlsx"))


def any_non_empty(cells: list[str]) -> bool:
    return any(c.strip() for c in cells)


def first_cell_is(text: str) -> Callable[[list[str]], bool]:
    """The row's first filled cell reads ``text`` (is_header sees the cells from column A)."""
    return lambda cells: next((cell for cell in cells if cell), None) == text


def is_empty(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def save(wb: openpyxl.Workbook, path: Path) -> Path:
    wb.save(path)
    return path


@pytest.fixture
def offset_workbook(tmp_path: Path) -> Path:
    """Rows 1-3 and columns A-B empty, header at C4, data rows 5-10 with 7 and 8 empty."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stock"
    for col, name in enumerate(["SKU", "Qty", "Name", "Counted", "Active"], start=3):
        ws.cell(4, col, name)
    rows = {
        5: ["00123", 4, "blue cup", dt.datetime(2024, 1, 2), True],
        6: [12345, 2.5, " spaced ", dt.datetime(2024, 1, 3, 13, 5), False],
        9: [678.0, "7", None, "2024-01-04", 1],
        10: ["000", None, "last", None, None],
    }
    for row, values in rows.items():
        for col, value in enumerate(values, start=3):
            if value is not None:
                ws.cell(row, col, value)
    return save(wb, tmp_path / "offset.xlsx")


# ---- rows, columns and values -----------------------------------------------------------


def test_row_numbers_are_true_sheet_rows(offset_workbook: Path) -> None:
    table = read_sheet_table(offset_workbook, is_header=first_cell_is("SKU"))
    assert table.sheet == "Stock"
    assert table.header_row == 4
    assert table.header == ["SKU", "Qty", "Name", "Counted", "Active"]
    assert table.first_column == 2  # the table starts in column C
    assert table.row_numbers.dtype == np.int64
    assert table.row_numbers.tolist() == [5, 6, 7, 8, 9, 10]
    assert list(table.data.columns) == [0, 1, 2, 3, 4]
    assert table.data.shape == (6, 5)
    # the two empty rows inside the data are kept (the caller counts them as skipped)
    for position in (2, 3):
        assert all(is_empty(v) for v in table.data.iloc[position])


def test_columns_follow_the_used_range(offset_workbook: Path, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(offset_workbook)
    wb["Stock"]["B1"] = "Store 042 stock report"  # widens the used range to column B
    path = save(wb, tmp_path / "titled.xlsx")
    table = read_sheet_table(path, is_header=lambda cells: "SKU" in cells)
    assert table.header_row == 4
    assert table.header == ["", "SKU", "Qty", "Name", "Counted", "Active"]
    assert table.first_column == 1
    assert table.row_numbers.tolist() == [5, 6, 7, 8, 9, 10]
    assert table.data[1].tolist()[0] == "00123"
    assert all(is_empty(v) for v in table.data[0])


def test_is_header_sees_the_cells_from_column_a_and_a_miss_carries_the_searched_rows(
    offset_workbook: Path,
) -> None:
    seen: list[list[str]] = []

    def is_header(cells: list[str]) -> bool:
        seen.append(cells)
        return cells[2:3] == ["SKU"]  # column C

    assert read_sheet_table(offset_workbook, is_header=is_header).header_row == 4
    assert seen[-1][:3] == ["", "", "SKU"]
    with pytest.raises(HeaderNotFoundError) as info:
        read_sheet_table(offset_workbook, is_header=lambda cells: False, header_search_rows=5)
    assert [row for row, _ in info.value.searched] == [4, 5]  # rows 1 to 3 are empty
    assert info.value.searched[0][1][:3] == ["", "", "SKU"]
    assert [sheet.name for sheet in info.value.sheets] == ["Stock"]


def test_per_cell_types_survive_in_mixed_columns(offset_workbook: Path) -> None:
    data = read_sheet_table(offset_workbook, is_header=first_cell_is("SKU")).data
    sku, qty, name, counted, active = (data[c].tolist() for c in range(5))
    assert sku[0] == "00123" and type(sku[0]) is str
    assert sku[1] == 12345 and isinstance(sku[1], float)
    assert sku[4] == 678.0 and isinstance(sku[4], float)
    assert sku[5] == "000"
    assert qty[0] == 4 and isinstance(qty[0], float)
    assert qty[4] == "7" and type(qty[4]) is str  # a number stored as text stays text
    assert is_empty(qty[5])
    assert name[1] == " spaced "  # text is not stripped
    assert counted[0] == dt.datetime(2024, 1, 2) and isinstance(counted[0], dt.datetime)
    assert counted[1] == dt.datetime(2024, 1, 3, 13, 5)
    assert counted[4] == "2024-01-04"
    assert active[0] is True and active[1] is False
    assert active[4] == 1 and not isinstance(active[4], bool)


def test_homogeneous_columns(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Price", "Date", "Dept"])
    ws.append(["A1", 1.5, dt.datetime(2024, 5, 1), "FOOD"])
    ws.append([])
    ws.append(["A2", 3, dt.date(2024, 5, 2), "HOME"])
    data = read_sheet_table(save(wb, tmp_path / "h.xlsx")).data
    assert data[1].dtype == np.float64
    assert data[1].tolist()[0::2] == [1.5, 3.0]
    assert data[2].tolist()[0::2] == [pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-02")]
    assert data[3].tolist() == ["FOOD", None, "HOME"]


def test_empty_cells_do_not_decide_a_column_type(tmp_path: Path) -> None:
    # calamine reads an empty cell as ''; only the other cells say what the column holds.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Qty", "Counted", "Note", "Blank", "Flag"])
    ws.append(["A1", 4, dt.datetime(2024, 5, 1), "x", None, True])
    ws.append(["A2", None, None, None, None, None])
    ws.append([None, 2.5, dt.datetime(2024, 5, 3), "y", None, 1])
    data = read_sheet_table(save(wb, tmp_path / "e.xlsx")).data
    assert data[0].tolist() == ["A1", "A2", None]
    assert data[1].dtype == np.float64 and data[1].tolist()[0::2] == [4.0, 2.5]
    assert data[2].dtype == "datetime64[us]" and data[2].isna().tolist() == [False, True, False]
    assert data[3].tolist() == ["x", None, "y"]
    assert data[4].dtype == object and data[4].tolist() == [None, None, None]
    assert data[5].tolist() == [True, None, 1.0] and type(data[5][2]) is float


def test_is_header_sees_cells_as_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Report"])
    ws.append(["SKU", None, 2024, 1.5, True])
    ws.append(["x"])
    seen: list[list[str]] = []

    def spy(cells: list[str]) -> bool:
        seen.append(cells)
        return cells[0] == "SKU"

    table = read_sheet_table(save(wb, tmp_path / "t.xlsx"), is_header=spy)
    assert seen == [["Report", "", "", "", ""], ["SKU", "", "2024", "1.5", "TRUE"]]
    assert table.header == ["SKU", "", "2024", "1.5", "TRUE"]
    assert table.data.shape == (1, 5)


def test_header_as_last_row_gives_empty_table(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["SKU", "Qty"])
    table = read_sheet_table(save(wb, tmp_path / "only_header.xlsx"))
    assert table.header == ["SKU", "Qty"]
    assert table.data.shape == (0, 2)
    assert table.row_numbers.tolist() == []


def test_header_not_found_in_first_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Store 042"
    ws["A21"] = "SKU"
    ws["A22"] = "001"
    path = save(wb, tmp_path / "deep.xlsx")
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(path, is_header=first_cell_is("SKU"))
    assert info.value.sheet == "Sheet"
    assert "no header row found in the first 20 rows" in str(info.value)
    assert "Store 042" in str(info.value)  # shows the helpdesk what the file holds
    table = read_sheet_table(path, header_search_rows=21, is_header=first_cell_is("SKU"))
    assert table.header_row == 21 and table.row_numbers.tolist() == [22]


def test_header_search_counts_sheet_rows_not_used_range_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A15"] = "SKU"
    path = save(wb, tmp_path / "late.xlsx")
    with pytest.raises(WorkbookError, match="first 10 rows"):
        read_sheet_table(path, header_search_rows=10)
    assert read_sheet_table(path, header_search_rows=15).header_row == 15


# ---- sheets -----------------------------------------------------------------------------


def test_first_visible_sheet_skips_hidden_ones(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    hidden = wb.active
    hidden.title = "Lookup"
    hidden["A1"] = "secret"
    hidden.sheet_state = "hidden"
    very = wb.create_sheet("Macros")
    very["A1"] = "code"
    very.sheet_state = "veryHidden"
    wb.create_sheet("Stock")["A1"] = "SKU"
    path = save(wb, tmp_path / "hidden_first.xlsx")
    assert read_sheet_table(path).sheet == "Stock"
    # naming a hidden sheet explicitly still reads it
    assert read_sheet_table(path, sheet="Lookup").header == ["secret"]


def test_only_sheet_hidden(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "SKU"
    visible = save(wb, tmp_path / "visible.xlsx")
    # openpyxl refuses to save a workbook whose only sheet is hidden; Excel does not
    path = tmp_path / "all_hidden.xlsx"
    with zipfile.ZipFile(visible) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/workbook.xml":
                content = content.replace(b'state="visible"', b'state="hidden"')
                assert b'state="hidden"' in content
            dst.writestr(item, content)
    with pytest.raises(WorkbookError, match="no visible sheet") as info:
        read_sheet_table(path)
    assert info.value.file == "all_hidden.xlsx"


def test_named_sheet_missing_lists_existing_sheets(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Stock"
    wb.create_sheet("Notes")
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(save(wb, tmp_path / "named.xlsx"), sheet="Inventory")
    err = info.value
    assert err.sheet == "Inventory"
    assert "'Stock'" in err.message and "'Notes'" in err.message
    assert str(err).startswith("named.xlsx, sheet 'Inventory': ")


# ---- WorkbookError ----------------------------------------------------------------------


def test_workbook_error_format_and_pickling() -> None:
    err = WorkbookError("a.xlsx", "Stock", "broken")
    assert (err.file, err.sheet, err.message) == ("a.xlsx", "Stock", "broken")
    assert str(err) == "a.xlsx, sheet 'Stock': broken"
    assert str(WorkbookError("a.xlsx", None, "broken")) == "a.xlsx: broken"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.file, copy.sheet, copy.message, str(copy)) == (err.file, err.sheet, err.message, str(err))


# ---- files that are not workbooks -------------------------------------------------------


def _zip_not_xlsx(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")


BAD_FILES: dict[str, tuple[Callable[[Path], Any], str]] = {
    "renamed_csv.xlsx": (lambda p: p.write_text("SKU,Qty\n00123,4\n"), "text/CSV"),
    "renamed_pdf.xlsx": (lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "PDF"),
    "empty.xlsx": (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    "not_a_workbook.xlsx": (_zip_not_xlsx, "zip archive but not an Excel workbook"),
    "old_format.xlsx": (
        lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600),
        "old-format Excel (.xls)",
    ),
    "~$Stock.xlsx": (lambda p: p.write_bytes(b"\x05Store" + b" " * 50), "lock file"),
    "truncated.xlsx": (None, "damaged or incomplete"),  # filled in by the test
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_files_that_are_not_workbooks(tmp_path: Path, offset_workbook: Path, name: str) -> None:
    path = tmp_path / name
    make, expected = BAD_FILES[name]
    if make is None:
        path.write_bytes(offset_workbook.read_bytes()[:3000])
    else:
        make(path)
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(path)
    assert info.value.file == name
    assert info.value.sheet is None
    assert expected in info.value.message
    assert str(tmp_path) not in str(info.value)  # the name, never the full path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkbookError, match="cannot be opened"):
        read_sheet_table(tmp_path / "nope.xlsx")


def test_stray_cell_in_far_corner_is_refused_not_fatal(tmp_path: Path) -> None:
    # calamine would allocate 1,048,576 x 16,384 cells and abort the whole process
    wb = openpyxl.Workbook()
    wb.active["A1"] = "SKU"
    wb.active["XFD1048576"] = "x"
    started = time.perf_counter()
    with pytest.raises(WorkbookError, match="far too large"):
        read_sheet_table(save(wb, tmp_path / "far.xlsx"))
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "damage",
    [
        (b'r="B2"', b'r="B100000000000000000002"'),  # found by fuzzing
        (b'<row r="2"><c r="A2"', b'<row r="100000000000000000002"><c'),  # cell without r
    ],
)
def test_damaged_reference_far_beyond_declared_size(tmp_path: Path, damage: tuple[bytes, bytes]) -> None:
    # calamine would try to allocate ~10^20 rows and abort the process
    wb = openpyxl.Workbook()
    wb.active.append(["SKU", "Qty"])
    wb.active.append(["001", 2])
    source = save(wb, tmp_path / "source.xlsx")
    path = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b'ref="A1:B2"' in content and damage[0] in content
                content = content.replace(*damage)
            dst.writestr(item, content)
    with pytest.raises(WorkbookError, match="far too large"):
        read_sheet_table(path)


# ---- the corpus of odd and broken files -------------------------------------------------


@pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not present at {CORPUS}")
@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_file_gives_table_or_workbook_error(path: Path) -> None:
    started = time.perf_counter()
    try:
        outcome: SheetTable | WorkbookError = read_sheet_table(path, is_header=any_non_empty)
    except WorkbookError as exc:
        outcome = exc
        assert exc.file == path.name and exc.message
    assert time.perf_counter() - started < 3
    if isinstance(outcome, SheetTable):
        assert outcome.data.shape[1] == len(outcome.header)
        assert len(outcome.row_numbers) == len(outcome.data)


def corpus(name: str) -> Path:
    path = next((p for p in CORPUS_FILES if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} not in corpus")
    return path


def corpus_error(name: str) -> WorkbookError:
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(corpus(name), is_header=any_non_empty)
    return info.value


def test_corpus_truncated_zip() -> None:
    err = corpus_error("poi__clusterfuzz-XLSX2CSVFuzzer-5636439151607808.xlsx")
    assert "damaged or incomplete" in err.message


def test_corpus_encrypted() -> None:
    assert "password-protected" in corpus_error("poi__protected_passtika.xlsx").message


def test_corpus_lock_file() -> None:
    assert "lock file" in corpus_error("~$tableStyle.xlsx").message


def test_corpus_empty_sheet() -> None:
    err = corpus_error("calamine__empty_sheet.xlsx")
    assert err.sheet == "Sheet1" and "the sheet is empty" in err.message


def test_corpus_strict_ooxml_is_read() -> None:
    # openpyxl sees no sheets in Strict OOXML; calamine reads it
    table = read_sheet_table(corpus("poi__SimpleStrict.xlsx"), is_header=any_non_empty)
    assert table.sheet == "Sheet1"
    assert table.header == ["test", "", "1"]
    assert table.data[0].tolist()[0] == "test 2"
    assert table.data[2].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert table.row_numbers.tolist() == [2, 3, 4, 5, 6]
    second = read_sheet_table(corpus("poi__SimpleStrict.xlsx"), sheet="Sheet Number 2")
    assert second.header[0] == "This is sheet 2"


def test_corpus_declares_a_million_rows_holds_two() -> None:
    started = time.perf_counter()
    table = read_sheet_table(corpus("calamine__issue_174.xlsx"), is_header=any_non_empty)
    assert time.perf_counter() - started < 1
    assert table.header[:2] == ["Your Ref #", "Contact Name"]
    assert table.data.shape == (1, 11)
    assert table.data[0].tolist() == [123.0]


def test_corpus_1904_date_system() -> None:
    table = read_sheet_table(corpus("calamine__date_1904.xlsx"), is_header=any_non_empty)
    assert table.header == ["2021-01-01", "15"]  # the first date, as the header text
    first, second = table.data[0].tolist()
    assert first == dt.datetime(2021, 1, 2) and isinstance(first, dt.datetime)
    assert isinstance(second, dt.timedelta)  # a duration-formatted cell
    assert table.data[1].tolist() == [16.0, 17.0]


def test_corpus_hidden_very_hidden_and_chart_sheets() -> None:
    path = corpus("calamine__any_sheets.xlsx")
    table = read_sheet_table(path, is_header=any_non_empty)
    assert table.sheet == "Visible"
    assert table.header == ["1", "2"] and table.data.shape == (4, 2)
    with pytest.raises(WorkbookError, match="chart sheet"):
        read_sheet_table(path, sheet="Chart")


def test_corpus_backslash_part_names_and_chinese_sheet_name() -> None:
    table = read_sheet_table(corpus("calamine__issue_530.xlsx"), is_header=any_non_empty)
    assert table.sheet == "出勤分类组织汇总表"
    assert table.header[:2] == ["报表导出人：", "于国栋"]


def test_corpus_wide_merged_and_undersized_dimension() -> None:
    wide = read_sheet_table(corpus("poi__58896.xlsx"), is_header=any_non_empty)
    assert wide.data.shape[1] == 353
    report = read_sheet_table(corpus("poi__craftonhills_goalpriorityreport.xlsx"), is_header=any_non_empty)
    assert len(report.header) == 9  # more than the declared A1:G1
    assert report.data.shape == (3, 9)


# ---- the zip-bomb guard leaves real files alone (bombs: test_reader_limits.py) ----------


@pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not present at {CORPUS}")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_file_is_not_mistaken_for_a_zip_bomb(path: Path) -> None:
    # Backslash part names, Strict OOXML, a million declared rows: none of it is a bomb,
    # even held to a limit 100x tighter than the default.
    try:
        read_sheet_table(path, is_header=any_non_empty, max_uncompressed_bytes=10_000_000)
    except WorkbookError as exc:
        assert "expands to more than" not in exc.message
        assert "its part" not in exc.message
