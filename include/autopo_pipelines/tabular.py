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
from autopo_pipelines.errors import InputFileError

REJECT_COLUMNS = ["source_file", "sheet", "row_number", "reason", "raw_values"]
TOTAL_ROW = re.compile(r"^(grand\s*)?total\b", re.IGNORECASE)
# Unicode-aware: "Catégorie" keeps its é; only runs of non-alphanumerics become "_".
_NON_ALNUM = re.compile(r"[\W_]+")


def normalise_header(value: object) -> str:
    """lower-case, trim, runs of non-alphanumerics become '_', no leading/trailing '_'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _NON_ALNUM.sub("_", str(value).strip().lower()).strip("_")


def _aliases(columns: Mapping[str, ColumnSpec]) -> dict[str, set[str]]:
    return {name: {normalise_header(a) for a in spec.aliases} for name, spec in columns.items()}


def header_matcher(columns: Mapping[str, ColumnSpec]) -> Callable[[Sequence[str]], bool]:
    """True for a row whose cells cover every required column."""
    required = [aliases for name, aliases in _aliases(columns).items() if columns[name].required]

    def is_header(cells: Sequence[str]) -> bool:
        present = {normalise_header(cell) for cell in cells}
        return all(present & aliases for aliases in required)

    return is_header


def partial_header_matcher(columns: Mapping[str, ColumnSpec]) -> Callable[[Sequence[str]], bool]:
    """True for a row covering at least half of the required columns (and at least one)."""
    required = [aliases for name, aliases in _aliases(columns).items() if columns[name].required]
    needed = max(1, (len(required) + 1) // 2)

    def looks_like_header(cells: Sequence[str]) -> bool:
        present = {normalise_header(cell) for cell in cells}
        return sum(1 for aliases in required if present & aliases) >= needed

    return looks_like_header


@dataclass(frozen=True)
class SelectedColumns:
    frame: pd.DataFrame  # canonical column names, raw cell values
    headers: dict[str, str]  # canonical -> header text as the store wrote it
    row_numbers: np.ndarray


def select_columns(
    header: Sequence[str],
    data: pd.DataFrame,
    row_numbers: np.ndarray,
    columns: Mapping[str, ColumnSpec],
    *,
    file: str,
    sheet: str,
    header_row: int,
) -> SelectedColumns:
    """Map the sheet's header cells to canonical columns (first match wins)."""
    normalised = [normalise_header(cell) for cell in header]
    positions: dict[str, int] = {}
    for name, aliases in _aliases(columns).items():
        for index, cell in enumerate(normalised):
            if cell in aliases:
                positions[name] = index
                break
    missing = [name for name, spec in columns.items() if spec.required and name not in positions]
    if missing:
        expected = "; ".join(f"{name} (one of: {', '.join(columns[name].aliases)})" for name in missing)
        raise InputFileError(
            file,
            f"required column missing: {expected}",
            sheet=sheet,
            row=header_row,
        )
    frame = pd.DataFrame({name: data.iloc[:, pos].to_numpy(dtype=object) for name, pos in positions.items()})
    headers = {name: str(header[pos]) for name, pos in positions.items()}
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
        integer = rf"(?:[0-9]{{1,3}}(?:{thousands}[0-9]{{3}})+|[0-9]+)"
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
    blank = cells.isna().astype(bool) | (is_number & numbers.isna())
    blank[text_blank[text_blank].index] = True
    bad = ~(is_number | is_text | blank)
    bad[well_formed[~well_formed].index] = True
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
            return f"column '{header}' ({column}): {problem}" + (f" (got {raw!r})" if raw else "")

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

    @property
    def count(self) -> int:
        return self.blank + self.no_key + self.total

    def as_dict(self) -> dict[str, int]:
        return {"blank": self.blank, "no_key": self.no_key, "total": self.total}


def skip_rows(
    selected: SelectedColumns, *, key: str, label_columns: Iterable[str], all_cells: pd.DataFrame
) -> tuple[SelectedColumns, SkippedRows]:
    """Drop fully empty rows, rows without a key, and total rows; count each kind."""
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
    # A total line usually has no SKU; it is still a total line, not a row missing its key.
    total &= ~fully_blank
    no_key = keys.isna().to_numpy(dtype=bool) & ~fully_blank & ~total
    keep = ~(fully_blank | no_key | total)
    kept = SelectedColumns(
        frame=frame.loc[keep].reset_index(drop=True),
        headers=selected.headers,
        row_numbers=selected.row_numbers[keep],
    )
    return kept, SkippedRows(blank=int(fully_blank.sum()), no_key=int(no_key.sum()), total=int(total.sum()))


# Excel's day 0 in the 1900 date system (its phantom 29 Feb 1900 folded in), and its last day.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2_958_465  # 9999-12-31


@dataclass(frozen=True)
class ParsedDates:
    values: pd.Series  # object: datetime.date, None where blank or bad
    blank: pd.Series  # bool
    bad: pd.Series  # bool: present but not a date in an accepted form


def _date_of(value: object, formats: Sequence[str]) -> dt.date | None | bool:
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
        if not 1 <= value <= _EXCEL_MAX_SERIAL:
            return False
        return _EXCEL_EPOCH + dt.timedelta(days=int(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for fmt in formats:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    return False


def parse_dates(values: pd.Series, formats: Sequence[str]) -> ParsedDates:
    """Date cells as they are, Excel serial numbers (1900 system), and text in one of ``formats``."""
    dates = [_date_of(value, formats) for value in values.astype(object)]
    index = values.index
    bad = pd.Series([d is False for d in dates], index=index, dtype=bool)
    blank = pd.Series([d is None for d in dates], index=index, dtype=bool)
    parsed = pd.Series([d if isinstance(d, dt.date) else None for d in dates], index=index, dtype=object)
    return ParsedDates(parsed, blank, bad)
