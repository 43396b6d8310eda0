"""Shared cleaning of a store/PO sheet: header normalisation and aliases,
column selection, skipped rows, text and number parsing, and rejects.

Every pipeline uses these pieces; only what a pipeline computes from the
clean rows lives in its own transform module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from autopo_pipelines.config import ColumnSpec, NumberFormat
from autopo_pipelines.date_text import DateOrder, parse_date_text, serial_date
from autopo_pipelines.errors import InputFileError, quote
from autopo_pipelines.headings import column_letters, normalise_header
from autopo_pipelines.number_text import parse_number_texts
from autopo_pipelines.xlsx_reader import HeaderNotFoundError

REJECT_COLUMNS = ["source_file", "sheet", "row_number", "reason", "raw_values"]
TOTAL_ROW = re.compile(r"^(grand\s*)?total\b", re.IGNORECASE)


class HeaderRule:
    """Which sheet row is the header, and which column is each field (docs/stock_health.md, "Headings").

    A field's aliases are in priority order: of the columns whose heading (normalised) is one of
    them, the one whose alias stands first wins. Two columns with that same heading are an error
    naming both, unless the field is pinned to a column by its letter (``pins``: field -> 0-based
    sheet column), which is then the field whatever its heading.
    """

    def __init__(self, columns: Mapping[str, ColumnSpec], pins: Mapping[str, int] | None = None) -> None:
        self.columns = dict(columns)
        self.pins = dict(pins or {})
        self.aliases = {
            name: list(dict.fromkeys(normalise_header(alias) for alias in spec.aliases))
            for name, spec in self.columns.items()
        }
        self.required = [name for name, spec in self.columns.items() if spec.required]
        self._alias_sets = {name: set(aliases) for name, aliases in self.aliases.items()}

    def found(self, cells: Sequence[str]) -> list[str]:
        """The required fields a row names (``cells`` from column A): its heading is an alias,
        or the field is pinned to a column the row has a heading in."""
        present = {normalise_header(cell) for cell in cells}
        named = []
        for name in self.required:
            pin = self.pins.get(name)
            if pin is not None:
                if pin < len(cells) and cells[pin].strip():
                    named.append(name)
            elif present & self._alias_sets[name]:
                named.append(name)
        return named

    def is_header(self, cells: Sequence[str]) -> bool:
        return len(self.found(cells)) == len(self.required)

    def expected(self, name: str) -> str:
        """What a field's column is headed, for a message."""
        pin = self.pins.get(name)
        if pin is not None:
            return f"{name} (pinned to column {column_letters(pin)})"
        return f"{name} (a heading one of: {', '.join(self.columns[name].aliases)})"

    def no_header(self, error: HeaderNotFoundError, *, search_rows: int) -> InputFileError:
        """What a helpdesk needs when no row names every required field: what was looked for,
        the row closest to it and what that row lacks, and the workbook's other sheets."""
        others = _other_sheets(error)
        scored = [(self.found(cells), row, cells) for row, cells in error.searched]
        # max keeps the first of equals: the topmost of the rows naming the most required fields.
        best = max(scored, key=lambda item: len(item[0]), default=None)
        if best is not None and best[0]:
            named, row, cells = best
            lacking = [name for name in self.required if name not in named]
            message = (
                f"no column for {_and(self.expected(name) for name in lacking)} in the row most like a header "
                f"in the first {search_rows} rows, which reads {_preview(cells)} ({_and(named)} found there); {others}"
            )
            return InputFileError(error.file, message, sheet=error.sheet, row=row)
        looked_for = f"no row names {_or(self.expected(name) for name in self.required)}"
        filled = [(row, cells) for row, cells in error.searched if any(cell.strip() for cell in cells)]
        if not filled:
            found = (
                "the sheet is empty"
                if error.empty_sheet
                else f"rows 1 to {search_rows} are empty; the column headings must be near the top"
            )
        else:
            row, cells = max(filled, key=lambda item: sum(1 for cell in item[1] if cell.strip()))
            found = f"the fullest row, {row}, reads {_preview(cells)}"
        message = f"no header row in the first {search_rows} rows: {looked_for}; {found}; {others}"
        return InputFileError(error.file, message, sheet=error.sheet)


def _other_sheets(error: HeaderNotFoundError) -> str:
    others = [info for info in error.sheets if info.name != error.sheet]
    if not others:
        return "the workbook has no other sheet"
    described = [
        quote(info.name) + ("" if info.worksheet else " (a chart)") + ("" if info.visible else " (hidden)")
        for info in others
    ]
    return f"the workbook's other sheets: {', '.join(described)}"


def _preview(cells: Sequence[str]) -> str:
    return quote(" | ".join(cell.strip() for cell in cells if cell.strip()), limit=100)


def _and(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"


def _or(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"


@dataclass(frozen=True)
class SelectedColumns:
    frame: pd.DataFrame  # canonical column names, raw cell values
    headers: dict[str, str]  # canonical -> header text as the store wrote it
    row_numbers: np.ndarray


def select_columns(
    header: Sequence[str],
    data: pd.DataFrame,
    row_numbers: np.ndarray,
    rule: HeaderRule,
    *,
    file: str,
    sheet: str,
    header_row: int,
    first_column: int = 0,
) -> SelectedColumns:
    """Map the sheet's header cells to canonical columns by the rule's pins and alias priority."""
    normalised = [normalise_header(cell) for cell in header]
    positions: dict[str, int] = {}

    def where(index: int) -> str:
        return f"{column_letters(first_column + index)} ({quote(header[index].strip())})"

    for name, pin in rule.pins.items():
        index = pin - first_column
        if not 0 <= index < len(header):
            span = f"{column_letters(first_column)} to {column_letters(first_column + len(header) - 1)}"
            raise InputFileError(
                file,
                f"{name} is pinned to column {column_letters(pin)}, but the table spans columns {span}",
                sheet=sheet,
                row=header_row,
            )
        positions[name] = index
    pinned = set(positions.values())
    for name, aliases in rule.aliases.items():
        if name in positions:
            continue
        for alias in aliases:
            matches = [index for index, cell in enumerate(normalised) if cell == alias and index not in pinned]
            if len(matches) > 1:
                raise InputFileError(
                    file,
                    f"columns {_and(where(index) for index in matches)} are {'both' if len(matches) == 2 else 'all'} "
                    f"headed {quote(alias)}, an alias of "
                    f"{name}, so which one is {name} is not known; rename one, or pin {name} to its column for this "
                    "store in the pipeline config (overrides, columns)",
                    sheet=sheet,
                    row=header_row,
                )
            if matches:
                positions[name] = matches[0]
                break
    missing = [name for name in rule.required if name not in positions]
    if missing:
        raise InputFileError(
            file,
            f"required column missing: {'; '.join(rule.expected(name) for name in missing)}",
            sheet=sheet,
            row=header_row,
        )
    frame = pd.DataFrame({name: data.iloc[:, pos].to_numpy(dtype=object) for name, pos in positions.items()})
    # Trimmed like every text (a heading stored as an inline string arrives trimmed by the
    # reader, as a shared string it does not): reasons and raw_values name it the same either way.
    headers = {name: str(header[pos]).strip() for name, pos in positions.items()}
    return SelectedColumns(frame=frame, headers=headers, row_numbers=np.asarray(row_numbers, dtype=np.int64))


_OTHER, _NUMBER, _TEXT = 0, 1, 2


def _number_or_text(kind: type) -> int:
    if issubclass(kind, str):
        return _TEXT
    if issubclass(kind, int | float | np.integer | np.floating) and not issubclass(kind, bool | np.bool_):
        return _NUMBER
    return _OTHER


def _kinds(cells: np.ndarray) -> np.ndarray:
    """_number_or_text of every cell's type (isinstance per cell, in effect).

    A column holds a handful of types: each is classified once, and the cells are looked
    up by their type with map() running in C rather than a Python call per cell.
    """
    types = list(map(type, cells))
    codes = {kind: _number_or_text(kind) for kind in set(types)}
    if len(set(codes.values())) == 1:
        return np.full(len(types), next(iter(codes.values())), dtype=np.int8)
    return np.fromiter(map(codes.__getitem__, types), dtype=np.int8, count=len(types))


def _blank(values: pd.Series) -> pd.Series:
    cells = values.astype(object).to_numpy()
    blank = pd.isna(cells)
    is_text = _kinds(cells) == _TEXT
    texts = cells[is_text]
    # not text.strip(), with the str methods run by map() in C.
    blank[is_text] |= (texts == "") | np.fromiter(map(str.isspace, texts), dtype=bool, count=len(texts))
    return pd.Series(blank, index=values.index, name=values.name)


def text_value(value: object) -> str | None:
    """A cell as trimmed text: a whole float (12345.0) becomes '12345'; blank is None."""
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip() or None


def text_strings(values: pd.Series) -> pd.Series:
    """text_value of every cell, in pandas' str dtype: NaN where blank."""
    if not _is_str_dtype(values.dtype):
        cells = values.astype(object)
        if not set(map(type, cells)) <= {str, type(None)}:
            # Numbers, dates or booleans among the cells: text_value for each.
            return cells.map(text_value, na_action=None).astype("str")
        values = cells.astype("str")
    # Every cell is text or missing: pandas' strip trims exactly what str.strip trims.
    stripped = values.str.strip()
    return stripped.mask(stripped == "")


def text_column(values: pd.Series) -> pd.Series:
    """text_value of every cell, as object: NaN where blank, or None when every cell is blank
    (what Series.map made of it, turning text with blanks into pandas' str dtype first)."""
    texts = text_strings(values)
    if texts.isna().all():
        return pd.Series(np.full(len(values), None), index=values.index, name=values.name, dtype=object)
    return texts.astype(object)


def _is_str_dtype(dtype: object) -> bool:
    # Only the NaN-missing variant ("str", pandas 3's default for text): a pd.NA cell is
    # not blank to text_value (it reads "<NA>"), so the "string" dtype takes the general path.
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA


def _number_pattern(fmt: NumberFormat) -> re.Pattern[str]:
    decimal = re.escape(fmt.decimal)
    if fmt.thousands:
        thousands = re.escape(fmt.thousands)
        # The first group of a grouped number does not start with 0 (number_text says why).
        integer = rf"(?:[1-9][0-9]{{0,2}}(?:{thousands}[0-9]{{3}})+|[0-9]+)"
    else:
        integer = r"[0-9]+"
    # ASCII digits only: "１２" (full-width) is a bad number to reject, not a crash in to_numeric.
    return re.compile(rf"^[+-]?(?:{integer}(?:{decimal}[0-9]*)?|{decimal}[0-9]+)$")


@dataclass(frozen=True)
class ParsedNumbers:
    values: pd.Series  # float64, NaN where blank or bad
    blank: pd.Series  # bool
    bad: pd.Series  # bool: present but not a number


def parse_numbers(values: pd.Series, fmt: NumberFormat) -> ParsedNumbers:
    """Numeric cells as they are; text numbers with the config's separators."""
    index = values.index
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        return ParsedNumbers(numbers, numbers.isna(), pd.Series(False, index=index))
    cells = values.astype(object)
    as_array = cells.to_numpy()
    if set(map(type, as_array)) <= {float, int, type(None)}:
        # Numbers with empty cells (a numeric column once a gap made it object): what the
        # general path below comes to, in one conversion.
        numbers = pd.Series(as_array.astype(np.float64), index=index)
        return ParsedNumbers(numbers, numbers.isna(), pd.Series(False, index=index))
    kinds = _kinds(as_array)
    is_number = pd.Series(kinds == _NUMBER, index=index, name=values.name)
    is_text = pd.Series(kinds == _TEXT, index=index, name=values.name)
    numbers = pd.Series(np.nan, index=index, dtype="float64")
    numbers[is_number] = cells[is_number].astype("float64")
    text = cells[is_text].astype(str).str.strip()
    text_blank = text == ""
    text = text[~text_blank]
    pattern = _number_pattern(fmt)
    well_formed = text.str.match(pattern)
    parsed = text[well_formed]
    if fmt.thousands:
        parsed = parsed.str.replace(fmt.thousands, "", regex=False)
    if fmt.decimal != ".":
        parsed = parsed.str.replace(fmt.decimal, ".", regex=False)
    numbers[parsed.index] = pd.to_numeric(parsed).astype("float64")
    # Other forms with one clear reading (accounting negatives, currency marks, Indian grouping,
    # no-break spaces; autopo_pipelines.number_text), cell by cell: rare next to plain numbers.
    other = text[~well_formed]
    read = pd.Series(
        parse_number_texts(other, decimal=fmt.decimal, thousands=fmt.thousands, currency_marks=fmt.currency_marks),
        index=other.index,
        dtype=object,
    )
    understood = read.notna()
    numbers[read.index[understood]] = read[understood].astype("float64")
    blank = cells.isna().astype(bool) | (is_number & numbers.isna())
    blank[text_blank[text_blank].index] = True
    bad = ~(is_number | is_text | blank)
    bad[read.index[~understood]] = True
    return ParsedNumbers(numbers, blank, bad)


def display_value(value: object) -> str:
    text = text_value(value)
    return "" if text is None else text


@dataclass
class RejectCollector:
    """Rows taken out of a file with their sheet row number and reason."""

    file: str
    sheet: str
    frame: pd.DataFrame
    row_numbers: np.ndarray
    headers: Mapping[str, str]
    reasons: dict[int, str] = field(default_factory=dict)

    def reject(self, mask: pd.Series, reason: Callable[[int], str] | str) -> None:
        """First reason wins: a row is reported once, for the first problem the transform checks
        (transforms check the columns in the order of their spec)."""
        for position in np.flatnonzero(mask.to_numpy(dtype=bool)):
            if position not in self.reasons:
                self.reasons[int(position)] = reason(int(position)) if callable(reason) else reason

    def column_reason(self, column: str, problem: str) -> Callable[[int], str]:
        header = self.headers.get(column, column)

        def describe(position: int) -> str:
            raw = display_value(self.frame[column].iat[position])
            return f"column {quote(header)} ({column}): {problem}" + (f" (got {quote(raw)})" if raw else "")

        return describe

    @property
    def mask(self) -> np.ndarray:
        mask = np.zeros(len(self.frame), dtype=bool)
        mask[list(self.reasons)] = True
        return mask

    def to_frame(self) -> pd.DataFrame:
        positions = sorted(self.reasons)
        records = []
        for position in positions:
            raw = {
                self.headers.get(col, col): display_value(self.frame[col].iat[position]) for col in self.frame.columns
            }
            records.append(
                {
                    "source_file": self.file,
                    "sheet": self.sheet,
                    "row_number": int(self.row_numbers[position]),
                    "reason": self.reasons[position],
                    "raw_values": json.dumps(raw, ensure_ascii=False),
                }
            )
        return pd.DataFrame.from_records(records, columns=REJECT_COLUMNS).astype({"row_number": "int64"})


@dataclass(frozen=True)
class SkippedRows:
    blank: int = 0
    no_key: int = 0
    total: int = 0
    # The header row again inside the data (report exports print it on every page).
    header_repeat: int = 0

    @property
    def count(self) -> int:
        return self.blank + self.no_key + self.total + self.header_repeat

    def as_dict(self) -> dict[str, int]:
        return {"blank": self.blank, "no_key": self.no_key, "total": self.total, "header_repeat": self.header_repeat}


def _header_repeats(selected: SelectedColumns, keys: pd.Series, key: str) -> np.ndarray:
    """Rows that repeat the header: every selected column holds its own heading again.

    Only rows whose key cell is the key's heading (one vectorised comparison) are looked at
    closely, so a 50,000-row file costs one string comparison per row.
    """
    heading = (text_value(selected.headers.get(key)) or "").lower()
    if not heading:
        return np.zeros(len(keys), dtype=bool)
    candidates = np.flatnonzero((keys.str.lower() == heading).fillna(False).to_numpy(dtype=bool))
    repeats = np.zeros(len(keys), dtype=bool)
    headings = {name: normalise_header(text) for name, text in selected.headers.items()}
    for position in candidates:
        repeats[position] = all(
            normalise_header(display_value(selected.frame[name].iat[int(position)])) == normalised
            for name, normalised in headings.items()
        )
    return repeats


def skip_rows(
    selected: SelectedColumns, *, key: str, label_columns: Iterable[str], all_cells: pd.DataFrame
) -> tuple[SelectedColumns, SkippedRows]:
    """Drop fully empty rows, repeats of the header, total rows and rows without a key; count each kind."""
    fully_blank = np.ones(len(all_cells), dtype=bool)
    for position in range(len(all_cells.columns)):
        # Each column is only looked at in the rows blank so far: the first column or two
        # settle nearly every row of a report.
        rows = np.flatnonzero(fully_blank)
        if not len(rows):
            break
        fully_blank[rows] = _blank(all_cells.iloc[rows, position]).to_numpy(dtype=bool)
    frame = selected.frame
    keys = text_strings(frame[key])
    total = np.zeros(len(frame), dtype=bool)
    for column in [key, *label_columns]:
        if column in frame.columns:
            labels = (keys if column == key else text_strings(frame[column])).fillna("").to_numpy(dtype=object)
            # labels.str.match(TOTAL_ROW), with the regex run by map() in C.
            total |= np.fromiter(map(bool, map(TOTAL_ROW.match, labels)), dtype=bool, count=len(labels))
    repeats = _header_repeats(selected, keys, key) & ~fully_blank
    # A total line usually has no SKU; it is still a total line, not a row missing its key.
    total &= ~fully_blank & ~repeats
    no_key = keys.isna().to_numpy(dtype=bool) & ~fully_blank & ~total & ~repeats
    keep = ~(fully_blank | no_key | total | repeats)
    kept = SelectedColumns(
        frame=frame.loc[keep].reset_index(drop=True),
        headers=selected.headers,
        row_numbers=selected.row_numbers[keep],
    )
    return kept, SkippedRows(
        blank=int(fully_blank.sum()),
        no_key=int(no_key.sum()),
        total=int(total.sum()),
        header_repeat=int(repeats.sum()),
    )


@dataclass(frozen=True)
class ParsedDates:
    values: pd.Series  # object: datetime.date, None where blank or bad
    blank: pd.Series  # bool
    bad: pd.Series  # bool: present but not a date in an accepted form


def _date_of(value: object, order: DateOrder | None) -> dt.date | None | bool:
    """A cell as a date; None when blank; False when it is not a date in an accepted form."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.integer | np.floating):
        # An Excel serial number: a date cell that lost its date format on the way.
        return serial_date(float(value)) or False
    if isinstance(value, str):
        if not value.strip():
            return None
        return parse_date_text(value, order) or False
    return False


def parse_dates(values: pd.Series, order: DateOrder | None) -> ParsedDates:
    """Date cells as they are, Excel serial numbers (1900 system), and text in a form
    autopo_pipelines.date_text reads (numeric day and month only in the configured ``order``)."""
    dates = [_date_of(value, order) for value in values.astype(object)]
    index = values.index
    bad = pd.Series([d is False for d in dates], index=index, dtype=bool)
    blank = pd.Series([d is None for d in dates], index=index, dtype=bool)
    parsed = pd.Series([d if isinstance(d, dt.date) else None for d in dates], index=index, dtype=object)
    return ParsedDates(parsed, blank, bad)
