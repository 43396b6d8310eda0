"""Reading one worksheet of an XLSX file into a table, robustly and fast.

CONTRACT (implemented by the reader helper; the rest of the package relies on it):

    class WorkbookError(Exception):
        file: str          # file name (not full path)
        sheet: str | None  # sheet name when known
        message: str       # what is wrong / what was expected, for a store helpdesk
        str(err) -> f"{file}: sheet '{sheet}': {message}" (sheet part omitted when None)

    @dataclass(frozen=True)
    class SheetTable:
        sheet: str                 # the sheet that was read
        header_row: int            # 1-based sheet row number of the header row
        header: list[str]          # header cells as text ('' for empty), one per column
        data: pandas.DataFrame     # one column per header cell, positional names 0..n-1,
                                   # one row per sheet row below the header (empty rows kept)
        row_numbers: numpy.ndarray # int64, 1-based sheet row number of each data row

    def read_sheet_table(path, *, sheet=None, header_search_rows=20,
                         is_header=lambda cells: bool) -> SheetTable

    - sheet=None: the first *visible* worksheet; a named sheet that does not exist
      is a WorkbookError naming the sheets that do exist.
    - the header row is the first of the first `header_search_rows` sheet rows for which
      is_header(cells_as_text) is True; none -> WorkbookError("no header row found in
      the first 20 rows ...").
    - cell values in `data`: numeric cells as float (or int), text cells as str (not
      stripped), empty as None/NaN, date cells as datetime; booleans as bool. Per-cell
      types must survive in mixed columns (a text "00123" stays a str, a numeric 12345
      stays a number).
    - not a zip / not XLSX / encrypted / truncated / Strict OOXML it cannot read /
      zero sheets / no visible sheet -> WorkbookError with a clear message.

IMPLEMENTATION NOTES (measured with benchmarks/reader_choice.py, 50k rows x 9 columns,
2 cores; all figures to this contract):

    - python-calamine (one parse, per-cell Python values) is the reader: ~90k rows/s.
      fastexcel parses faster, but it re-parses the sheet on every load_sheet call (one
      parse to find the header, one for the body), and its column dtype cannot tell a
      pure column from a mixed one (text+number coerces to string, bool+number to float).
      "fastexcel strict, calamine when a column is mixed" measured ~135k rows/s on a file
      without mixed columns but ~53k rows/s on one with a text/number SKU column;
      pandas.read_excel(engine="calamine") ~80k; openpyxl read-only ~7k.
    - Columns cover the sheet's used range: leading empty columns (data starting at
      column C) are not represented; row_numbers are true sheet rows.
    - Cells with an Excel error value (#N/A, #DIV/0!) and empty strings read as empty.
    - Date cells come back as datetime (1900 and 1904 date systems); time-only cells
      as datetime.time and duration cells as datetime.timedelta. A column holding only
      numbers is float64, only dates datetime64; anything else is object with per-cell
      Python values (str, float, bool, datetime, None).
    - Before calamine parses a sheet its XML is scanned for far-away cell references
      (~15% of the read time): calamine allocates the whole used rectangle up front and a
      single value in XFD1048576 (or a damaged reference) aborts the process.
"""

from __future__ import annotations

import datetime as dt
import gc
import operator
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import python_calamine as pc
from defusedxml import ElementTree

from autopo_pipelines.errors import InputFileError

__all__ = ["HeaderPredicate", "SheetTable", "WorkbookError", "read_sheet_table"]

HeaderPredicate: TypeAlias = Callable[[list[str]], bool]
Cell: TypeAlias = Any  # int | float | str | bool | date | datetime | time | timedelta

# calamine allocates rows x columns for the used range before anything else, so one
# stray value in cell XFD1048576 asks for ~17 billion cells and aborts the whole
# process (not an exception). Refuse such sheets before calamine parses them. 10M cells
# (20x a 50k-row report) still reads in ~3 s; a stray value in row 1,048,576 of a
# 10-column sheet is over it and is better reported than read as a million empty rows.
_MAX_CELLS = 10_000_000
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NUMBER: frozenset[type] = frozenset({float, int})
_DATE: frozenset[type] = frozenset({dt.date, dt.datetime})
_HELPDESK_RESEND = "ask the store to export the report again and re-send it"


class WorkbookError(InputFileError):
    """A file that cannot be read as the expected workbook; the message is for a helpdesk."""

    def __init__(self, file: str, sheet: str | None, message: str) -> None:
        super().__init__(file, message, sheet=sheet)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields so the exception survives pickling between processes.
        return (type(self), (self.file, self.sheet, self.message))

    def __str__(self) -> str:
        if self.sheet is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}: sheet '{self.sheet}': {self.message}"


class HeaderNotFoundError(WorkbookError):
    """No row in the searched rows is a header: often a header with a required column missing."""


@dataclass(frozen=True)
class SheetTable:
    sheet: str
    header_row: int
    header: list[str]
    data: pd.DataFrame
    row_numbers: np.ndarray


def _any_non_empty(cells: list[str]) -> bool:
    return any(c.strip() for c in cells)


def read_sheet_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    header_search_rows: int = 20,
    is_header: HeaderPredicate = _any_non_empty,
    file_name: str | None = None,
) -> SheetTable:
    """Read one worksheet: find its header row, return the rows below it (see CONTRACT).

    ``file_name`` is the name errors give the file (the name it was uploaded under,
    when ``path`` is a local copy); default: the path's own name.
    """
    file = file_name or os.path.basename(os.fspath(path))
    workbook = _open_workbook(os.fspath(path), file)
    try:
        name = _choose_sheet(workbook.sheets_metadata, sheet, file)
        _refuse_huge_sheet(os.fspath(path), file, name)
        with _gc_paused():
            try:
                cal_sheet = workbook.get_sheet_by_name(name)
                rows: list[list[Cell]] = cal_sheet.to_python(skip_empty_area=True)
                start = cal_sheet.start
            except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException
                _reraise_if_not_reader_failure(exc)
                raise WorkbookError(
                    file, name, f"the sheet could not be read ({_short(exc)}); {_HELPDESK_RESEND}"
                ) from exc
            # to_python drops the empty rows/columns above/left of the used range; `start`
            # is where that range begins, which is what makes row numbers true sheet rows.
            first_row = start[0] if start is not None else 0
            return _build_table(file, name, rows, first_row, header_search_rows, is_header)
    finally:
        workbook.close()


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Building ~50k row lists triggers repeated cyclic-GC passes over objects that cannot
    # be garbage; pausing it saved 30-100 ms per 50k-row file in benchmarks/reader_choice.py.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _open_workbook(path: str, file: str) -> pc.CalamineWorkbook:
    if file.startswith("~$"):
        raise WorkbookError(
            file,
            None,
            "this is an Excel lock file (left next to a workbook while it is "
            "open in Excel), not a report; send the workbook itself",
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise WorkbookError(file, None, f"the file cannot be opened ({exc.strerror})") from exc
    if not head:
        raise WorkbookError(file, None, f"the file is empty (0 bytes); {_HELPDESK_RESEND}")
    if not head.startswith((b"PK", _OLE2_MAGIC)):
        raise WorkbookError(file, None, _describe_foreign_bytes(head))
    try:
        return pc.CalamineWorkbook.from_path(path)
    except pc.PasswordError as exc:
        raise WorkbookError(
            file,
            None,
            "the workbook is password-protected (encrypted); ask the store to "
            "save it without a password and re-send it",
        ) from exc
    except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException
        _reraise_if_not_reader_failure(exc)
        raise WorkbookError(file, None, _describe_unreadable(path, head, exc)) from exc


def _describe_foreign_bytes(head: bytes) -> str:
    if head.startswith(b"%PDF"):
        kind = "a PDF document, not an Excel workbook"
    elif head.lstrip().startswith(b"<"):
        kind = "an HTML/XML file (some systems export those with an .xlsx name)"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")) or all(
        b >= 32 or b in b"\t\r\n"
        for b in head  # no control bytes: text in any 8-bit encoding
    ):
        kind = "a text/CSV file renamed to .xlsx"
    else:
        kind = "not an Excel workbook (unrecognised content)"
    return f"the file is {kind}; export the report from Excel as an .xlsx workbook"


def _describe_unreadable(path: str, head: bytes, exc: BaseException) -> str:
    if head.startswith(_OLE2_MAGIC):
        return (
            "the file is an old-format Excel (.xls) or other legacy Office file renamed "
            "to .xlsx; open it in Excel and use Save As > Excel Workbook (.xlsx)"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
        return f"the file is damaged or incomplete (broken zip archive: {_short(exc)}); {_HELPDESK_RESEND}"
    if b"opendocument" in mimetype:
        return "the file is an OpenDocument spreadsheet (.ods) renamed to .xlsx; save it as Excel Workbook (.xlsx)"
    if any(n.startswith("word/") for n in names):
        return "the file is a Word document, not an Excel workbook"
    if not any(n.replace("\\", "/").endswith("workbook.xml") for n in names):
        return "the file is a zip archive but not an Excel workbook (it has no workbook part)"
    return f"the workbook could not be read ({_short(exc)}); {_HELPDESK_RESEND}"


def _choose_sheet(metadata: Sequence[pc.SheetMetadata], wanted: str | None, file: str) -> str:
    if not metadata:
        raise WorkbookError(file, None, "the workbook contains no sheets")
    if wanted is None:
        for meta in metadata:
            if meta.typ == pc.SheetTypeEnum.WorkSheet and meta.visible == pc.SheetVisibleEnum.Visible:
                return meta.name
        listed = ", ".join(f"'{m.name}'" for m in metadata)
        raise WorkbookError(
            file,
            None,
            f"no visible sheet: every sheet is hidden or a chart ({listed}); "
            "unhide the report sheet in Excel and re-send the file",
        )
    for meta in metadata:
        if meta.name == wanted:
            if meta.typ != pc.SheetTypeEnum.WorkSheet:
                raise WorkbookError(file, wanted, "this is a chart sheet, not a sheet of cells")
            return meta.name
    listed = ", ".join(f"'{m.name}'" for m in metadata)
    raise WorkbookError(file, wanted, f"no sheet with this name; the workbook has: {listed}")


def _build_table(
    file: str,
    sheet: str,
    rows: list[list[Cell]],
    first_row: int,
    header_search_rows: int,
    is_header: HeaderPredicate,
) -> SheetTable:
    # rows[0] is sheet row first_row + 1, so fewer list rows than sheet rows are searched
    searchable = min(max(header_search_rows - first_row, 0), len(rows))
    found = next(((i, texts) for i in range(searchable) if is_header(texts := [_as_text(v) for v in rows[i]])), None)
    if found is None:
        raise HeaderNotFoundError(file, sheet, _no_header_message(rows, searchable, header_search_rows))
    index, cells = found
    body = rows[index + 1 :]
    columns = list(zip(*body, strict=True)) if body else [()] * len(cells)
    data = pd.DataFrame({j: _column(col) for j, col in enumerate(columns)})
    first_data_row = first_row + index + 2  # +1 to be 1-based, +1 to step over the header
    return SheetTable(
        sheet=sheet,
        header_row=first_row + index + 1,
        header=cells,
        data=data,
        row_numbers=np.arange(first_data_row, first_data_row + len(body), dtype=np.int64),
    )


def _no_header_message(rows: list[list[Cell]], searched: int, limit: int) -> str:
    message = f"no header row found in the first {limit} rows"
    if not rows:
        return f"{message}: the sheet is empty"
    first = next((r for r in rows[:searched] if any(v != "" for v in r)), None)
    if first is None:
        return f"{message}: they are all empty; the column headings must be near the top"
    preview = " | ".join(t for t in (_as_text(v) for v in first) if t)[:120]
    return f"{message}; is this the right report? The first filled row reads: '{preview}'"


def _column(values: tuple[Cell, ...]) -> pd.Series:
    """One column, keeping each cell's own type unless the whole column shares one."""
    kinds = set(map(type, values))
    if kinds and kinds <= _NUMBER:
        return pd.Series(np.asarray(values, dtype=np.float64))
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if str in kinds:
        # calamine reports empty cells as '' (indistinguishable from an empty text cell).
        empty = array == ""
        array[empty] = None
        if operator.countOf(map(type, values), str) == int(empty.sum()):
            kinds.discard(str)  # the only text was emptiness
    kinds.discard(type(None))
    if kinds and kinds <= _NUMBER:
        return pd.Series(array.astype(np.float64))  # None -> NaN
    if kinds and kinds <= _DATE:
        return pd.Series(pd.array(array, dtype="datetime64[us]"))  # None -> NaT
    if dt.date in kinds:
        # A midnight date cell arrives as datetime.date; the contract promises datetime.
        for i in np.flatnonzero([type(v) is dt.date for v in array]):
            day = array[i]
            array[i] = dt.datetime(day.year, day.month, day.day)
    # dtype=object stops pandas 3 from turning all-text columns into its str dtype
    # (which would make empties NaN in some columns and None in others).
    return pd.Series(array, dtype=object, copy=False)


def _as_text(value: Cell) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a heading typed as 2024 should read "2024", not "2024.0"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _reraise_if_not_reader_failure(exc: BaseException) -> None:
    # pyo3 turns a Rust panic into PanicException, which derives from BaseException.
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---- guard against sheets whose used range is absurdly large -------------------------

# Any reference beyond column Z or row 99,999 (row tags and cells alike); without one the
# sheet spans at most 26 x 99,999 cells and needs no closer look.
_FAR_REFERENCE = re.compile(rb'r="(?:[A-Z]{0,3}\d{6}|[A-Z]{2})')
_VALUE_CELL = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"([A-Z]+)(\d+)\"[^>]*?(?<!/)>")
_UNREFERENCED_CELL = re.compile(rb"<(?:\w+:)?c(?:\s(?:(?!\br=)[^>])*)?(?<!/)>")
_FILLED_ROW = re.compile(rb"<(?:\w+:)?row\s[^>]*?\br=\"(\d+)\"[^>]*?(?<!/)>")
_MAX_SHEET_XML_BYTES = 512 * 1024 * 1024


def _refuse_huge_sheet(path: str, file: str, sheet: str) -> None:
    """Raise WorkbookError when the sheet's used range is too big to hold in memory.

    The <dimension> a file declares cannot be trusted either way (gnumeric declares
    1,048,576 rows for two; a damaged file can declare A1:MO103 and hold a cell in row
    10^20), so the references themselves are checked: one regex search over the sheet
    XML for ordinary sheets (~30 ms per 50k rows), a count only when that finds far ones.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            part = _worksheet_part(zf, sheet)
            if part is None:
                return
            if zf.getinfo(part).file_size > _MAX_SHEET_XML_BYTES:
                cells = 1 << 34  # too big to even scan: certainly too big to load
            else:
                xml = zf.read(part)
                if _FAR_REFERENCE.search(xml) is None:
                    return
                cells = _span(xml)
    except Exception:  # noqa: BLE001 - a best-effort pre-check must never be the failure
        return  # calamine has opened this file already; it gives the clearer error if any
    if cells > _MAX_CELLS:
        raise WorkbookError(
            file,
            sheet,
            f"the sheet's used area spans {cells:,} cells, far too large to be a "
            "report (usually a stray entry far below or to the right of the data); delete "
            "those cells, save, and re-send the file",
        )


def _span(xml: bytes) -> int:
    """Cells in the rectangle calamine would allocate for the filled cells of `xml`."""
    cells = _VALUE_CELL.findall(xml)
    cols = [_column_number(col) for col, _ in cells]
    rows = [int(row) for _, row in cells]
    if _UNREFERENCED_CELL.search(xml):
        # Cells without an r attribute take their row from the enclosing <row r=...>. Only
        # then are row tags counted: gnumeric writes a million rows of empty styled cells.
        rows += [int(row) for row in _FILLED_ROW.findall(xml)]
        cols.append(1)
    if not rows or not cols:
        return 0
    return (max(cols) - min(cols) + 1) * (max(rows) - min(rows) + 1)


def _worksheet_part(zf: zipfile.ZipFile, sheet: str) -> str | None:
    # Part names may use backslashes (seen in the wild); map them to the zip's spelling.
    names = {n.replace("\\", "/").lstrip("/"): n for n in zf.namelist()}
    if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
        return None
    rel_id = None
    for el in ElementTree.fromstring(zf.read(names["xl/workbook.xml"])).iter():
        if el.tag.endswith("}sheet") and el.get("name") == sheet:
            rel_id = next((v for k, v in el.attrib.items() if k.endswith("}id")), None)
    for el in ElementTree.fromstring(zf.read(names["xl/_rels/workbook.xml.rels"])).iter():
        if el.tag.endswith("}Relationship") and el.get("Id") == rel_id:
            target = el.get("Target", "").replace("\\", "/")
            full = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            return names.get(os.path.normpath(full))
    return None


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number
