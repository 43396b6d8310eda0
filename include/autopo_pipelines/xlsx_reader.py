"""Reading one worksheet of an XLSX file into a table, robustly and fast.

CONTRACT (implemented by the reader helper; the rest of the package relies on it):

    class WorkbookError(Exception):
        file: str          # file name (not full path)
        sheet: str | None  # sheet name when known
        message: str       # what is wrong / what was expected, for a store helpdesk
        str(err) -> f"{file}, sheet '{sheet}': {message}" (sheet part omitted when None; one
                    line: InputFileError.describe)

    @dataclass(frozen=True)
    class SheetTable:
        sheet: str                 # the sheet that was read
        header_row: int            # 1-based sheet row number of the header row
        header: list[str]          # header cells as text ('' for empty), one per column
        data: pandas.DataFrame     # one column per header cell, positional names 0..n-1,
                                   # one row per sheet row below the header (empty rows kept)
        row_numbers: numpy.ndarray # int64, 1-based sheet row number of each data row

    def read_sheet_table(path, *, sheet=None, header_search_rows=20,
                         is_header=lambda cells: bool, file_name=None,
                         max_uncompressed_bytes=DEFAULT_MAX_UNCOMPRESSED_BYTES) -> SheetTable

    - sheet=None: the first *visible* worksheet; a named sheet that does not exist
      is a WorkbookError naming the sheets that do exist.
    - the header row is the first of the first `header_search_rows` sheet rows for which
      is_header(cells_as_text) is True, the cells given from column A (padded with '' when
      the used range starts further right); none -> HeaderNotFoundError("no header row
      found in the first 20 rows ...") carrying the searched rows and the workbook's sheets.
    - SheetTable.first_column: the sheet column of data's first column (0-based).
    - cell values in `data`: numeric cells as float (or int), text cells as str (not
      stripped), empty as None/NaN, date cells as datetime; booleans as bool. Per-cell
      types must survive in mixed columns (a text "00123" stays a str, a numeric 12345
      stays a number).
    - not a zip / not XLSX / encrypted / truncated / Strict OOXML it cannot read /
      zero sheets / no visible sheet -> WorkbookError with a clear message.
    - the parts read (the workbook-level parts and the sheet) unzipping to more than
      max_uncompressed_bytes in all, or a part unzipping to other than the size the zip
      declares for it -> WorkbookError, before anything is parsed.

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
    - Zip bombs: before calamine opens the workbook, and again before it parses the sheet,
      the declared sizes of the parts it reads are held to max_uncompressed_bytes; a part
      compressed more than 100:1 (store exports measure 5-20:1) or declaring fewer bytes
      than it takes compressed is unpacked in 1 MB chunks to check it holds what it
      declares, stopping one byte past that. (calamine's zip crate also refuses a part
      larger than declared; the check here comes first and says so clearly.) A 2 GB sheet
      or shared-strings part packed into 6 MB is refused in milliseconds.
    - XML entities: calamine's XML parser (quick-xml) never expands DTD entities, so a
      "billion laughs" part is not expanded: its entity references are an error, which is
      reported as a damaged or crafted file. Nothing here parses workbooks with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import gc
import operator
import os
import re
import struct
import zipfile
import zlib
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

__all__ = [
    "DEFAULT_MAX_UNCOMPRESSED_BYTES",
    "HeaderNotFoundError",
    "HeaderPredicate",
    "SheetInfo",
    "SheetTable",
    "WorkbookError",
    "read_sheet_table",
]

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
# A 200,000-row, 10-column report unzips to ~100 MB of XML; the pipeline config's
# max_uncompressed_bytes (same default) overrides it per pipeline.
DEFAULT_MAX_UNCOMPRESSED_BYTES = 1_000_000_000


class WorkbookError(InputFileError):
    """A file that cannot be read as the expected workbook; the message is for a helpdesk."""

    def __init__(self, file: str, sheet: str | None, message: str) -> None:
        super().__init__(file, message, sheet=sheet)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields so the exception survives pickling between processes.
        return (type(self), (self.file, self.sheet, self.message))


@dataclass(frozen=True)
class SheetInfo:
    name: str
    visible: bool
    worksheet: bool  # False: a chart sheet


class HeaderNotFoundError(WorkbookError):
    """No row in the searched rows is a header: often a header with a required column missing.

    Carries what a caller needs to say what it looked for and what it found instead: the
    searched rows (sheet row number, cells as text) and every sheet of the workbook.
    """

    def __init__(
        self,
        file: str,
        sheet: str | None,
        message: str,
        searched: Sequence[tuple[int, list[str]]] = (),
        sheets: Sequence[SheetInfo] = (),
        empty_sheet: bool = False,
    ) -> None:
        super().__init__(file, sheet, message)
        self.searched = list(searched)
        self.sheets = list(sheets)
        # No cell at all (the searched rows can be empty above a table further down).
        self.empty_sheet = empty_sheet

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.sheet, self.message, self.searched, self.sheets, self.empty_sheet))


@dataclass(frozen=True)
class SheetTable:
    sheet: str
    header_row: int
    header: list[str]
    data: pd.DataFrame
    row_numbers: np.ndarray
    # The sheet column (0-based: A is 0) of data's first column: a table may start in column C.
    first_column: int = 0


def _any_non_empty(cells: list[str]) -> bool:
    return any(c.strip() for c in cells)


def read_sheet_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    header_search_rows: int = 20,
    is_header: HeaderPredicate = _any_non_empty,
    file_name: str | None = None,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
) -> SheetTable:
    """Read one worksheet: find its header row, return the rows below it (see CONTRACT).

    ``file_name`` is the name errors give the file (the name it was uploaded under,
    when ``path`` is a local copy); default: the path's own name.
    ``max_uncompressed_bytes`` bounds what the parts read may unzip to (zip bombs).
    """
    file = file_name or os.path.basename(os.fspath(path))
    workbook = _open_workbook(os.fspath(path), file, max_uncompressed_bytes)
    try:
        name = _choose_sheet(workbook.sheets_metadata, sheet, file)
        _check_sheet_part(os.fspath(path), file, name, max_uncompressed_bytes)
        with _gc_paused():
            try:
                cal_sheet = workbook.get_sheet_by_name(name)
                rows: list[list[Cell]] = cal_sheet.to_python(skip_empty_area=True)
                start = cal_sheet.start
            except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException
                _reraise_if_not_reader_failure(exc)
                raise WorkbookError(file, name, _could_not_read("the sheet", exc)) from exc
            # to_python drops the empty rows/columns above/left of the used range; `start`
            # is where that range begins, which is what makes row numbers true sheet rows.
            first_row, first_column = start if start is not None else (0, 0)
            try:
                return _build_table(file, name, rows, first_row, first_column, header_search_rows, is_header)
            except HeaderNotFoundError as exc:
                exc.sheets = _sheet_infos(workbook.sheets_metadata)
                raise
    finally:
        workbook.close()


def _sheet_infos(metadata: Sequence[pc.SheetMetadata]) -> list[SheetInfo]:
    return [
        SheetInfo(
            name=meta.name,
            visible=meta.visible == pc.SheetVisibleEnum.Visible,
            worksheet=meta.typ == pc.SheetTypeEnum.WorkSheet,
        )
        for meta in metadata
    ]


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


def _open_workbook(path: str, file: str, max_uncompressed_bytes: int) -> pc.CalamineWorkbook:
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
    if head.startswith(b"PK"):
        # calamine reads the shared strings and styles whole when it opens the workbook.
        _check_package_parts(path, file, max_uncompressed_bytes)
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
    return _could_not_read("the workbook", exc)


def _could_not_read(what: str, exc: BaseException) -> str:
    detail = _short(exc)
    if "unrecognized entity" in detail:
        # quick-xml does not expand DTD entities; a reference to one is how a "billion
        # laughs" part (or an external-entity probe) shows up. Excel never writes them.
        return (
            f"{what} uses XML entities that Excel never writes ({detail}): the file is damaged "
            f"or was crafted; {_HELPDESK_RESEND}"
        )
    return f"{what} could not be read ({detail}); {_HELPDESK_RESEND}"


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
    first_column: int,
    header_search_rows: int,
    is_header: HeaderPredicate,
) -> SheetTable:
    # rows[0] is sheet row first_row + 1, so fewer list rows than sheet rows are searched
    searchable = min(max(header_search_rows - first_row, 0), len(rows))
    # is_header sees the cells where the sheet has them: padded on the left to column A.
    padding = [""] * first_column
    searched: list[tuple[int, list[str]]] = []
    for i in range(searchable):
        texts = padding + [_as_text(v) for v in rows[i]]
        if is_header(texts):
            break
        searched.append((first_row + i + 1, texts))
    else:
        message = _no_header_message(rows, searchable, header_search_rows)
        raise HeaderNotFoundError(file, sheet, message, searched, empty_sheet=not rows)
    index, cells = i, texts[first_column:]
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
        first_column=first_column,
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
        # Only a column with other types too may turn out to be numbers or dates.
        if not kinds <= {str, type(None)} and operator.countOf(map(type, values), str) == int(empty.sum()):
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


def _check_sheet_part(path: str, file: str, sheet: str, max_uncompressed_bytes: int) -> None:
    """Raise WorkbookError when the sheet's part is a zip bomb or its used range is too big to hold."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception:  # noqa: BLE001 - not a zip (calamine opened it all the same): nothing to check here
        return
    with zf:
        parts = zf.infolist()
        package = [info for info in parts if _is_package_part(info)]
        try:
            part = _worksheet_part(zf, sheet)
        except Exception:  # noqa: BLE001 - damaged workbook XML: calamine has read it and says what is wrong
            part = None
        if part is None:
            # calamine found the sheet where this lookup cannot: hold every part it might read to the limit.
            sheet_parts = [info for info in parts if not _is_package_part(info)]
        else:
            sheet_parts = [info for info in parts if _part_name(info.filename) == part]
        counted = package + [info for info in sheet_parts if not _is_package_part(info)]
        _refuse_unzipping_beyond(path, file, sheet, counted, sheet_parts, max_uncompressed_bytes)
        if part is not None and sheet_parts:
            _refuse_huge_sheet(zf, sheet_parts[-1], file, sheet)


def _refuse_huge_sheet(zf: zipfile.ZipFile, part: zipfile.ZipInfo, file: str, sheet: str) -> None:
    """Raise WorkbookError when the sheet's used range is too big to hold in memory.

    The <dimension> a file declares cannot be trusted either way (gnumeric declares
    1,048,576 rows for two; a damaged file can declare A1:MO103 and hold a cell in row
    10^20), so the references themselves are checked: one regex search over the sheet
    XML for ordinary sheets (~30 ms per 50k rows), a count only when that finds far ones.
    """
    if part.file_size > _MAX_SHEET_XML_BYTES:
        # Too big to even scan: ~10 million cells, the most a sheet may span, fit in less.
        raise WorkbookError(
            file,
            sheet,
            f"the sheet unzips to {part.file_size:,} bytes of XML, more than the {_MAX_SHEET_XML_BYTES:,} a "
            "report can take (usually a stray entry far below or to the right of the data); delete those "
            "cells, save, and re-send the file",
        )
    try:
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
    """The sheet's part name as _part_name spells it, or None when the workbook does not say."""
    # Part names may use backslashes or another case (seen in the wild); calamine accepts both.
    names = {_part_name(n): n for n in zf.namelist()}
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
            part = _part_name(os.path.normpath(full))
            return part if part in names else None
    return None


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number


# ---- guard against zip bombs ----------------------------------------------------------

# Parts a reader opens with the workbook, whichever sheet it reads: those at the package's
# root and directly in xl/, and their relationships (workbook, shared strings, styles).
_PACKAGE_PART = re.compile(r"(?:xl/)?(?:_rels/)?[^/]+")
# Store exports compress 5-20:1 (the corpus, the sample day); deflate tops out near 1032:1.
_SUSPICIOUS_RATIO = 100
_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s22xHH")


def _part_name(name: str) -> str:
    # calamine looks parts up ignoring case, and some producers write backslashes.
    return name.replace("\\", "/").lstrip("/").lower()


def _is_package_part(info: zipfile.ZipInfo) -> bool:
    return _PACKAGE_PART.fullmatch(_part_name(info.filename)) is not None


def _check_package_parts(path: str, file: str, max_uncompressed_bytes: int) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # noqa: BLE001 - whatever stops zipfile listing it, the archive is broken
        # Only what could be checked is read: calamine never sees an archive that zipfile cannot list.
        raise WorkbookError(
            file, None, f"the file is damaged or incomplete (broken zip archive: {_short(exc)}); {_HELPDESK_RESEND}"
        ) from exc
    with zf:
        package = [info for info in zf.infolist() if _is_package_part(info)]
        _refuse_unzipping_beyond(path, file, None, package, package, max_uncompressed_bytes)


def _refuse_unzipping_beyond(
    path: str,
    file: str,
    sheet: str | None,
    counted: Sequence[zipfile.ZipInfo],
    verified: Sequence[zipfile.ZipInfo],
    limit: int,
) -> None:
    """Raise WorkbookError when ``counted`` declare more than ``limit`` bytes in all, or one
    of ``verified`` that looks packed beyond what deflate does for a report holds other
    than it declares (so the declared sizes, which both zip readers stop at, are the truth)."""
    total = sum(info.file_size for info in counted)
    if total > limit:
        largest = max(counted, key=lambda info: info.file_size)
        raise WorkbookError(
            file,
            sheet,
            f"the workbook expands to more than {limit:,} bytes when unzipped and is refused (its largest "
            f"part, '{largest.filename}', declares {largest.file_size:,} bytes): no store report is that "
            "large, so the file is damaged or built to exhaust memory (a zip bomb); ask the store to export "
            "the report from Excel again and re-send it (a genuine report this large needs a higher "
            "max_uncompressed_bytes in the pipeline config)",
        )
    for info in verified:
        if not _looks_inflated(info):
            continue
        try:
            real = _unzipped_size(path, info)
        except Exception as exc:  # noqa: BLE001 - zlib, zipfile and I/O errors alike: the part is unreadable
            raise WorkbookError(
                file,
                sheet,
                f"the file is damaged or incomplete (its part '{info.filename}' cannot be unzipped: "
                f"{_short(exc)}); {_HELPDESK_RESEND}",
            ) from exc
        if real != info.file_size:
            holds = (
                f"more than the {info.file_size:,}"
                if real > info.file_size
                else f"{real:,}, not the {info.file_size:,}"
            )
            raise WorkbookError(
                file,
                sheet,
                f"the file is damaged (its part '{info.filename}' unzips to {holds} bytes the archive "
                f"declares for it); {_HELPDESK_RESEND}",
            )


def _looks_inflated(info: zipfile.ZipInfo) -> bool:
    if info.compress_type == zipfile.ZIP_STORED:
        return True  # free to check: the stored bytes are the part
    packed_tightly = info.file_size > _SUSPICIOUS_RATIO * info.compress_size
    # Deflate adds at most 5 bytes per 64 KB to incompressible data: a part declaring fewer
    # bytes than it takes compressed is lying about its size.
    declared_too_small = info.compress_size > info.file_size + info.file_size // 1000 + 1024
    return packed_tightly or declared_too_small


def _unzipped_size(path: str, info: zipfile.ZipInfo) -> int:
    """The bytes ``info`` really unzips to, counted in bounded chunks and no further than
    one past its declared size."""
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    if info.compress_type != zipfile.ZIP_DEFLATED:
        # Rare in XLSX. zipfile stops at the declared size and checks the CRC; a method it
        # cannot unpack is calamine's to refuse.
        size = 0
        try:
            with zipfile.ZipFile(path) as zf, zf.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
        except NotImplementedError:
            return info.file_size
        return size
    stop = info.file_size + 1
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        raw.seek(name_length + extra_length, os.SEEK_CUR)
        # zipfile would stop at the declared size; a raw inflater sees what really is there.
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        size, left = 0, info.compress_size
        while left > 0 and size < stop and not inflater.eof:
            data = raw.read(min(left, _CHUNK))
            if not data:
                break
            left -= len(data)
            while True:
                out = inflater.decompress(data, _CHUNK)
                size += len(out)
                data = inflater.unconsumed_tail
                if size >= stop or (not data and len(out) < _CHUNK):
                    break
    if size < stop and not inflater.eof:
        raise zipfile.BadZipFile("the compressed data ends before the part does")
    return size
