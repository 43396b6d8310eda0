"""Measure candidate XLSX readers all the way to the SheetTable contract.

Generates (once, cached in benchmarks/.cache/) stock-report-like workbooks with openpyxl
write_only: title rows above the header, then ~50k rows of 9 columns. Two variants:

    mixed  the realistic one: SKU column of text with leading zeros + integer + float
           SKUs, an "On hand" column with some text-number cells, empty rows inside
    clean  the same without mixed columns (text SKUs only, numeric On hand): the best
           case for a reader that types whole columns

Every candidate returns (header_row, header, data, row_numbers) and is checked cell by
cell against what the generator wrote (a text "00123" must stay a str, a number a
number, dates datetimes, empties None/NaN, row numbers true sheet rows). A candidate
that breaks the contract is reported as such, with its speed for reference.
"python-calamine (xlsx_reader)" is the production read_sheet_table, guard scan included.

    .venv/bin/python benchmarks/reader_choice.py [--rows 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import openpyxl
import pandas as pd

from autopo_pipelines.xlsx_reader import read_sheet_table

CACHE = Path(__file__).resolve().parent / ".cache"
HEADER = ["SKU", "Description", "EAN", "On hand", "On order", "Price", "Last sale", "Dept", "Supplier code"]
TITLE_ROWS: list[list[Any]] = [["Store 042 - daily stock report"], ["Generated", dt.datetime(2024, 5, 1, 6, 0)], []]
HEADER_ROW = len(TITLE_ROWS) + 1
Result = tuple[int, list[str], pd.DataFrame, np.ndarray]


def is_header(cells: list[str]) -> bool:
    return bool(cells) and cells[0].strip() == "SKU"


def data_rows(n: int, mixed: bool, seed: int = 42) -> Iterator[list[Any]]:
    rnd = random.Random(seed)
    for i in range(n):
        if i % 10_000 == 5_000:
            yield []  # an empty row inside the data: must be kept, with its row number
            continue
        k = rnd.random()
        if not mixed or k < 0.6:
            sku: Any = f"{rnd.randrange(10**6):07d}"  # text, leading zeros
        elif k < 0.9:
            sku = rnd.randrange(10**5, 10**6)  # numeric SKU
        else:
            sku = float(rnd.randrange(10**5, 10**6))  # "float" SKU
        on_hand: Any = rnd.randrange(200)
        if mixed and rnd.random() < 0.1:
            on_hand = str(on_hand)  # number stored as text
        yield [
            sku,
            f"Item {i} blue",
            str(rnd.randrange(10**12, 10**13)),
            on_hand,
            rnd.randrange(50),
            round(rnd.uniform(0.5, 99), 2),
            dt.datetime(2024, 1, 1) + dt.timedelta(days=rnd.randrange(120)),
            rnd.choice(["FOOD", "HOME", "TOYS"]),
            f"S{rnd.randrange(999):03d}",
        ]


def workbook(n: int, mixed: bool) -> Path:
    path = CACHE / f"stock_{n}_{'mixed' if mixed else 'clean'}.xlsx"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("Stock")
        for row in TITLE_ROWS + [HEADER] + list(data_rows(n, mixed)):
            ws.append(row)
        wb.save(path)
    return path


# ---- candidates ------------------------------------------------------------------------


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _find_header(rows: list[list[Any]]) -> int:
    return next(i for i, r in enumerate(rows[:20]) if is_header([_text(v) for v in r]))


def openpyxl_read_only(path: Path) -> Result:
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    h = _find_header(rows)
    body = rows[h + 1 :]
    width = len(rows[h])
    body = [r + [None] * (width - len(r)) for r in body]  # read-only rows can be ragged
    data = pd.DataFrame(np.array(body, dtype=object) if body else None)
    return h + 1, [_text(v) for v in rows[h]], data, np.arange(h + 2, h + 2 + len(body))


def pandas_calamine(path: Path) -> Result:
    frame = pd.read_excel(path, engine="calamine", header=None, sheet_name=0)
    rows = frame.head(20).values.tolist()
    h = _find_header(rows)
    data = frame.iloc[h + 1 :].reset_index(drop=True)
    data.columns = range(data.shape[1])
    return h + 1, [_text(v) for v in rows[h]], data, np.arange(h + 2, h + 2 + len(data))


def calamine_module(path: Path) -> Result:
    t = read_sheet_table(path, is_header=is_header)
    return t.header_row, t.header, t.data, t.row_numbers


def _fastexcel_preview(reader: Any) -> tuple[int, list[str]]:
    # header_row=None + skip_rows=0 starts at sheet row 1 (skip_rows=None would drop
    # leading empty rows and shift every row number).
    preview = reader.load_sheet(0, header_row=None, skip_rows=0, n_rows=20, dtypes="string")
    rows = preview.to_arrow().to_pandas().values.tolist()
    h = _find_header(rows)
    return h, [_text(v) for v in rows[h]]


def fastexcel_strict_else_calamine(path: Path) -> Result:
    """fastexcel for homogeneous sheets; any mixed column sends the file to calamine."""
    reader = fastexcel.read_excel(str(path))
    h, header = _fastexcel_preview(reader)
    try:
        body = reader.load_sheet(0, header_row=None, skip_rows=h + 1, schema_sample_rows=None, dtype_coercion="strict")
        data = body.to_arrow().to_pandas()
    except fastexcel.UnsupportedColumnTypeCombinationError:
        return calamine_module(path)
    data.columns = range(data.shape[1])
    return h + 1, header, data, np.arange(h + 2, h + 2 + len(data))


def fastexcel_coerce_only(path: Path) -> Result:
    """fastexcel's own column typing: the speed ceiling, NOT contract-safe on mixed data."""
    reader = fastexcel.read_excel(str(path))
    h, header = _fastexcel_preview(reader)
    body = reader.load_sheet(0, header_row=None, skip_rows=h + 1, schema_sample_rows=None)
    data = body.to_arrow().to_pandas()
    data.columns = range(data.shape[1])
    return h + 1, header, data, np.arange(h + 2, h + 2 + len(data))


def fastexcel_body_only(path: Path) -> Result:
    """One fastexcel parse with the header row given: the raw figure usually quoted."""
    reader = fastexcel.read_excel(str(path))
    body = reader.load_sheet(0, header_row=None, skip_rows=HEADER_ROW, schema_sample_rows=None)
    data = body.to_arrow().to_pandas()
    data.columns = range(data.shape[1])
    return HEADER_ROW, list(HEADER), data, np.arange(HEADER_ROW + 1, HEADER_ROW + 1 + len(data))


CANDIDATES: dict[str, Callable[[Path], Result]] = {
    "openpyxl read-only": openpyxl_read_only,
    "pandas.read_excel(engine=calamine)": pandas_calamine,
    "python-calamine (xlsx_reader)": calamine_module,
    "fastexcel strict, else calamine": fastexcel_strict_else_calamine,
    "fastexcel coerce only (no check)": fastexcel_coerce_only,
    "fastexcel body, header row given": fastexcel_body_only,
}


# ---- contract check --------------------------------------------------------------------


def _same(expected: Any, got: Any) -> bool:
    if expected is None:
        return got is None or got is pd.NaT or (isinstance(got, float) and math.isnan(got))
    if isinstance(expected, str):
        return isinstance(got, str) and got == expected
    if isinstance(expected, dt.datetime):
        return isinstance(got, dt.datetime) and pd.Timestamp(got) == pd.Timestamp(expected)
    if isinstance(expected, (int, float)):
        return (
            isinstance(got, (int, float, np.integer, np.floating))
            and not isinstance(got, bool)
            and float(got) == float(expected)
        )
    return bool(got == expected)


def contract_violations(result: Result, n: int, mixed: bool) -> list[str]:
    header_row, header, data, row_numbers = result
    problems = []
    if header_row != HEADER_ROW or header != HEADER:
        problems.append(f"header {header_row} {header}")
    if data.shape != (n, len(HEADER)):
        problems.append(f"shape {data.shape}")
    if not np.array_equal(row_numbers, np.arange(HEADER_ROW + 1, HEADER_ROW + 1 + n)):
        problems.append("row numbers")
    if problems:
        return problems
    columns = [data[c].tolist() for c in data.columns]
    bad = 0
    for i, expected in enumerate(data_rows(n, mixed)):
        expected = expected or [None] * len(HEADER)
        for j, value in enumerate(expected):
            if not _same(value, columns[j][i]):
                if bad < 3:
                    problems.append(
                        f"row {HEADER_ROW + 1 + i} col {HEADER[j]}: wrote {value!r}, read {columns[j][i]!r}"
                    )
                bad += 1
    if bad > 3:
        problems.append(f"... {bad} cells in all")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N (openpyxl: 1)")
    args = parser.parse_args()
    calamine_version = importlib.metadata.version("python-calamine")
    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, fastexcel "
        f"{fastexcel.__version__}, python-calamine {calamine_version}, "
        f"openpyxl {openpyxl.__version__}"
    )
    for mixed in (True, False):
        path = workbook(args.rows, mixed)
        print(f"\n{path.name}: {args.rows:,} data rows x {len(HEADER)} columns, {path.stat().st_size / 1e6:.1f} MB")
        for label, read in CANDIDATES.items():
            repeat = 1 if read is openpyxl_read_only else args.repeat
            best = math.inf
            for _ in range(repeat):
                started = time.perf_counter()
                result = read(path)
                best = min(best, time.perf_counter() - started)
            problems = contract_violations(result, args.rows, mixed)
            verdict = "meets contract" if not problems else "BREAKS contract: " + "; ".join(problems)
            print(f"  {label:36s} {best:7.3f} s  {args.rows / best:>9,.0f} rows/s  {verdict}")


if __name__ == "__main__":
    main()
