"""Unit tests for autopo_pipelines.tabular: header normalisation, column selection,
skipped rows, number and text parsing, and rejects (spec: docs/stock_health.md)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autopo_pipelines.config import ColumnSpec, NumberFormat, load_config_file
from autopo_pipelines.errors import InputFileError, one_line, quote
from autopo_pipelines.tabular import (
    REJECT_COLUMNS,
    HeaderRule,
    RejectCollector,
    SelectedColumns,
    normalise_header,
    parse_dates,
    parse_numbers,
    select_columns,
    skip_rows,
    text_column,
    text_strings,
    text_value,
)
from autopo_pipelines.xlsx_reader import HeaderNotFoundError

REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"


@pytest.fixture(scope="module")
def columns() -> dict[str, ColumnSpec]:
    """The real config's column aliases (the spec's table)."""
    return dict(load_config_file(REAL_CONFIG).columns)


def object_series(values: Sequence[object]) -> pd.Series:
    return pd.Series(list(values), dtype=object)


# --- normalise_header ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Stock On-Hand (pcs) ", "stock_on_hand_pcs"),
        ("SKU", "sku"),
        ("Kode Barang", "kode_barang"),
        ("Penjualan 30 Hari", "penjualan_30_hari"),
        ("Qty.Sold", "qty_sold"),
        ("__Item   Code__", "item_code"),
        ("Sales Qty (30d)", "sales_qty_30d"),
        ("HPP/Unit", "hpp_unit"),
        ("", ""),
        ("  ", ""),
        (None, ""),
        (float("nan"), ""),
        (2024, "2024"),
    ],
)
def test_normalise_header(raw: object, expected: str) -> None:
    assert normalise_header(raw) == expected


def test_normalise_header_keeps_non_ascii_letters() -> None:
    assert normalise_header("Catégorie") == "catégorie"


# --- HeaderRule.is_header ------------------------------------------------------------


def test_header_rule_accepts_a_row_covering_every_required_column(columns: dict[str, ColumnSpec]) -> None:
    is_header = HeaderRule(columns).is_header
    assert is_header(["SKU", "Product Name", "Stock On Hand", "Sales Qty"])
    assert is_header(["Kode Barang", "Nama Barang", "Stok", "Penjualan 30 Hari", "HPP"])
    assert is_header(["", " PLU ", "Qty On Hand", "QTY SOLD", ""])


def test_header_rule_refuses_rows_missing_a_required_column(columns: dict[str, ColumnSpec]) -> None:
    is_header = HeaderRule(columns).is_header
    assert not is_header(["SKU", "Product Name", "Stock On Hand"])  # no sales
    assert not is_header(["Product Name", "Stock", "Sales Qty"])  # no sku
    assert not is_header(["Stock report for STORE-012", "", ""])  # a title row
    assert not is_header([])


def test_header_rule_normalises_the_config_aliases_too() -> None:
    cols = {
        "sku": ColumnSpec(required=True, aliases=["Item Code"]),
        "qty": ColumnSpec(required=True, aliases=["Qty-On-Hand"]),
        "note": ColumnSpec(required=False, aliases=["note"]),
    }
    assert HeaderRule(cols).is_header(["ITEM  CODE", "qty on hand"])


# --- select_columns ------------------------------------------------------------


def test_select_columns_maps_aliases_to_canonical_names(columns: dict[str, ColumnSpec]) -> None:
    header = ["Kode Barang", "Nama Barang", "Kategori", "Stok", "Penjualan 30 Hari", "HPP", "Kode Toko", "Extra"]
    data = pd.DataFrame([["001", "Teh", "Bev", 5, 10, 2500, "S1", "x"]], dtype=object)
    selected = select_columns(
        header, data, np.array([7]), HeaderRule(columns), file="f.xlsx", sheet="Stock", header_row=6
    )
    assert set(selected.frame.columns) == {
        "sku",
        "product_name",
        "category",
        "stock_on_hand",
        "sales_qty",
        "unit_cost",
        "store_id",
    }
    assert selected.frame.loc[0, "sku"] == "001"
    assert selected.frame.loc[0, "stock_on_hand"] == 5
    assert selected.frame.loc[0, "unit_cost"] == 2500
    assert selected.headers["stock_on_hand"] == "Stok"
    assert selected.headers["store_id"] == "Kode Toko"
    assert selected.row_numbers.tolist() == [7]


def test_select_columns_the_alias_listed_first_wins_wherever_its_column_stands(columns: dict[str, ColumnSpec]) -> None:
    # "Stock" and "SOH" are both stock_on_hand aliases; soh stands before stock in the list.
    header = ["SKU", "Stock", "SOH", "Qty Sold"]
    data = pd.DataFrame([["A", 1, 2, 3]], dtype=object)
    selected = select_columns(header, data, np.array([2]), HeaderRule(columns), file="f.xlsx", sheet="S", header_row=1)
    assert selected.frame.loc[0, "stock_on_hand"] == 2
    assert selected.headers["stock_on_hand"] == "SOH"
    # A Barcode column before the SKU column: sku is listed before barcode, so SKU is used.
    header = ["Barcode", "SKU", "SOH", "Qty Sold"]
    data = pd.DataFrame([["8991234567890", "SKU-1", 2, 3]], dtype=object)
    selected = select_columns(header, data, np.array([2]), HeaderRule(columns), file="f.xlsx", sheet="S", header_row=1)
    assert selected.frame.loc[0, "sku"] == "SKU-1"


def test_select_columns_two_columns_with_the_winning_heading_are_an_error_naming_both(
    columns: dict[str, ColumnSpec],
) -> None:
    header = ["SKU", "Description", "SOH", "Sku ", "Qty Sold"]
    data = pd.DataFrame([["A", "x", 1, "B", 3]], dtype=object)
    with pytest.raises(InputFileError) as info:
        select_columns(
            header, data, np.array([3]), HeaderRule(columns), file="f.xlsx", sheet="S", header_row=2, first_column=1
        )
    assert str(info.value) == (
        "f.xlsx, sheet 'S', row 2: columns B ('SKU') and E ('Sku') are both headed 'sku', an alias of sku, so "
        "which one is sku is not known; rename one, or pin sku to its column for this store in the pipeline "
        "config (overrides, columns)"
    )


def test_select_columns_headings_are_trimmed_however_the_cell_stored_them(columns: dict[str, ColumnSpec]) -> None:
    header = ["SKU ", "  SOH  ", "Qty Sold"]
    data = pd.DataFrame([["A", 1, 3]], dtype=object)
    selected = select_columns(header, data, np.array([2]), HeaderRule(columns), file="f.xlsx", sheet="S", header_row=1)
    assert selected.headers == {"sku": "SKU", "stock_on_hand": "SOH", "sales_qty": "Qty Sold"}


def test_no_header_in_the_searched_rows_of_a_sheet_with_a_table_further_down(columns: dict[str, ColumnSpec]) -> None:
    below = HeaderNotFoundError("f.xlsx", "S", "reader's message", searched=[], empty_sheet=False)
    assert str(HeaderRule(columns).no_header(below, search_rows=3)).startswith(
        "f.xlsx, sheet 'S': no header row in the first 3 rows: no row names sku (a heading one of: sku, "
    )
    assert str(HeaderRule(columns).no_header(below, search_rows=3)).endswith(
        "; rows 1 to 3 are empty; the column headings must be near the top; the workbook has no other sheet"
    )
    empty = HeaderNotFoundError("f.xlsx", "S", "reader's message", searched=[], empty_sheet=True)
    assert "; the sheet is empty; " in str(HeaderRule(columns).no_header(empty, search_rows=3))


def test_select_columns_a_pinned_column_is_the_field_whatever_its_heading(columns: dict[str, ColumnSpec]) -> None:
    cols = {**columns, "sku": ColumnSpec(required=True, aliases=["sku", "item"])}
    header = ["Item #", "Item", "SOH", "Qty Sold"]
    data = pd.DataFrame([[1, "SKU-9", 1, 3]], dtype=object)
    rule = HeaderRule(cols, {"sku": 1})
    assert rule.is_header(header)
    selected = select_columns(header, data, np.array([3]), rule, file="f.xlsx", sheet="S", header_row=2)
    assert selected.frame.loc[0, "sku"] == "SKU-9"
    with pytest.raises(InputFileError, match="sku is pinned to column H, but the table spans columns A to D"):
        select_columns(
            header, data, np.array([3]), HeaderRule(cols, {"sku": 7}), file="f.xlsx", sheet="S", header_row=2
        )


def test_select_columns_leaves_out_optional_columns_that_are_absent(columns: dict[str, ColumnSpec]) -> None:
    header = ["SKU", "Stock", "Qty Sold"]
    data = pd.DataFrame([["A", 1, 3]], dtype=object)
    selected = select_columns(header, data, np.array([2]), HeaderRule(columns), file="f.xlsx", sheet="S", header_row=1)
    assert list(selected.frame.columns) == ["sku", "stock_on_hand", "sales_qty"]


def test_select_columns_missing_required_column_names_file_sheet_and_aliases(
    columns: dict[str, ColumnSpec],
) -> None:
    header = ["SKU", "Product Name", "Stock On Hand"]
    data = pd.DataFrame([["A", "x", 1]], dtype=object)
    with pytest.raises(InputFileError) as info:
        select_columns(
            header,
            data,
            np.array([5]),
            HeaderRule(columns),
            file="STORE-012_stock_20241204.xlsx",
            sheet="Stock",
            header_row=4,
        )
    error = info.value
    assert error.file == "STORE-012_stock_20241204.xlsx"
    assert error.sheet == "Stock"
    text = str(error)
    assert "STORE-012_stock_20241204.xlsx" in text
    assert "Stock" in text
    assert "sales_qty" in text
    for alias in ["sales_qty", "sales_30d", "sales_qty_30d", "qty_sold", "penjualan_30_hari"]:
        assert alias in text
    # Present columns are not reported as missing.
    assert "kode_barang" not in text


# --- parse_numbers -------------------------------------------------------------


DEFAULT_FORMAT = NumberFormat()


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (5, 5.0),
        (2.5, 2.5),
        (np.int64(7), 7.0),
        (np.float64(-1.25), -1.25),
        ("1,234", 1234.0),
        ("1,234.50", 1234.5),
        ("12,345,678", 12345678.0),
        ("-3", -3.0),
        (" 12 ", 12.0),
        ("0.75", 0.75),
        ("+4", 4.0),
        # Forms with one clear reading (autopo_pipelines.number_text has them all).
        ("Rp 100", 100.0),
        ("(1,284.000)", -1284.0),
        ("1284-", -1284.0),
        ("1,10,218.81", 110218.81),
        ("12\u00a0345", 12345.0),
        ("12,500 IDR", 12500.0),
    ],
)
def test_parse_numbers_good_values(cell: object, expected: float) -> None:
    # A neighbouring text cell keeps the column mixed, as a real sheet column is.
    parsed = parse_numbers(object_series([cell, "x"]), DEFAULT_FORMAT)
    assert parsed.values.iloc[0] == expected
    assert not parsed.blank.iloc[0]
    assert not parsed.bad.iloc[0]


@pytest.mark.parametrize("cell", ["", "   ", None, float("nan")])
def test_parse_numbers_blank_values(cell: object) -> None:
    parsed = parse_numbers(object_series([cell, "1"]), DEFAULT_FORMAT)
    assert math.isnan(parsed.values.iloc[0])
    assert parsed.blank.iloc[0]
    assert not parsed.bad.iloc[0]


@pytest.mark.parametrize(
    "cell",
    ["abc", "1,5", "1,2345", "12-3", "1.2.3", "12 pcs", "1.2E+3", "(-5)", "0,123", True, False, np.bool_(True)],
)
def test_parse_numbers_bad_values(cell: object) -> None:
    parsed = parse_numbers(object_series([cell, "1"]), DEFAULT_FORMAT)
    assert math.isnan(parsed.values.iloc[0])
    assert parsed.bad.iloc[0]
    assert not parsed.blank.iloc[0]
    # The good neighbour is unaffected.
    assert parsed.values.iloc[1] == 1.0
    assert not parsed.bad.iloc[1]


def test_parse_numbers_whole_column_of_booleans_is_bad() -> None:
    parsed = parse_numbers(pd.Series([True, False]), DEFAULT_FORMAT)
    assert parsed.bad.tolist() == [True, True]


def test_parse_numbers_numeric_column_is_taken_as_is() -> None:
    parsed = parse_numbers(pd.Series([1.5, np.nan, -2.0]), DEFAULT_FORMAT)
    assert parsed.values.iloc[0] == 1.5
    assert math.isnan(parsed.values.iloc[1])
    assert parsed.values.iloc[2] == -2.0
    assert parsed.blank.tolist() == [False, True, False]
    assert parsed.bad.tolist() == [False, False, False]


def test_parse_numbers_decimal_comma_format() -> None:
    fmt = NumberFormat(decimal=",", thousands=".")
    parsed = parse_numbers(object_series(["1.234,5", "1,5", "1.234", "1,234.5", 7]), fmt)
    assert parsed.values.iloc[0] == 1234.5
    assert parsed.values.iloc[1] == 1.5
    assert parsed.values.iloc[2] == 1234.0
    assert math.isnan(parsed.values.iloc[3])
    assert parsed.bad.tolist() == [False, False, False, True, False]
    assert parsed.values.iloc[4] == 7.0


def test_parse_numbers_space_thousands_format() -> None:
    fmt = NumberFormat(decimal=",", thousands=" ")
    parsed = parse_numbers(object_series(["1 234 567,25", "12,5"]), fmt)
    assert parsed.values.tolist() == [1234567.25, 12.5]
    assert parsed.bad.tolist() == [False, False]


@pytest.mark.parametrize("dtype", [object, "str"])
def test_parse_numbers_column_of_text_numbers_with_thousands_separators(dtype: object) -> None:
    parsed = parse_numbers(
        pd.Series(["1,234", " 12,345.5 ", "", "  ", None, "1,2345", "12"], dtype=dtype), DEFAULT_FORMAT
    )
    assert parsed.values.iloc[[0, 1, 6]].tolist() == [1234.0, 12345.5, 12.0]
    assert parsed.values.iloc[2:6].isna().all()
    assert parsed.blank.tolist() == [False, False, True, True, True, False, False]
    assert parsed.bad.tolist() == [False, False, False, False, False, True, False]


def test_parse_numbers_object_column_of_numbers_and_gaps_matches_a_mixed_column() -> None:
    # Numbers with empty cells only take a shortcut; a text cell sends the column the general way.
    cells = [5, 2.5, None, float("nan"), -0.0, 8992761111111.0]
    quick = parse_numbers(object_series(cells), DEFAULT_FORMAT)
    general = parse_numbers(object_series([*cells, "x"]), DEFAULT_FORMAT)
    pd.testing.assert_series_equal(quick.values, general.values.iloc[:-1])
    pd.testing.assert_series_equal(quick.blank, general.blank.iloc[:-1])
    pd.testing.assert_series_equal(quick.bad, general.bad.iloc[:-1])
    assert quick.blank.tolist() == [False, False, True, True, False, False]
    assert not quick.bad.any()


def test_parse_numbers_bool_cells_among_numbers_are_bad() -> None:
    parsed = parse_numbers(object_series([True, 1.0, np.bool_(False), None, 3]), DEFAULT_FORMAT)
    assert parsed.bad.tolist() == [True, False, True, False, False]
    assert parsed.blank.tolist() == [False, False, False, True, False]
    assert parsed.values.iloc[[1, 4]].tolist() == [1.0, 3.0]


def test_parse_numbers_non_ascii_digits_do_not_crash() -> None:
    parsed = parse_numbers(object_series(["１２", "1"]), DEFAULT_FORMAT)
    assert parsed.bad.iloc[0] or parsed.values.iloc[0] == 12.0
    assert parsed.values.iloc[1] == 1.0


# --- text_value ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (12345.0, "12345"),
        (np.float64(12345.0), "12345"),
        (12345, "12345"),
        (8992761111111.0, "8992761111111"),  # an EAN barcode stored as a number
        ("00123", "00123"),
        ("  00123  ", "00123"),
        (123.5, "123.5"),
        ("", None),
        ("   ", None),
        (None, None),
        (float("nan"), None),
        (np.nan, None),
    ],
)
def test_text_value(cell: object, expected: str | None) -> None:
    assert text_value(cell) == expected


# --- text_column / text_strings ----------------------------------------------------
# A column of text (and empties) takes a vectorised path; any other cell sends the
# column through text_value cell by cell. Both must read every cell as text_value does.

WHITESPACE = ["", " ", "\t", "\xa0", "\u3000", " \u2003 "]


def as_texts(column: pd.Series) -> list[str | None]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in column]


@pytest.mark.parametrize("dtype", [object, "str"])
def test_text_column_of_text_cells_is_text_value_of_each(dtype: object) -> None:
    cells = ["  00123 ", "Teh Botol", None, *WHITESPACE, "a\xa0b", "\u3000x\u3000"]
    texts = text_column(pd.Series(cells, dtype=dtype))
    assert texts.dtype == object
    assert as_texts(texts) == [text_value(cell) for cell in cells]


def test_text_column_of_mixed_cells_is_text_value_of_each() -> None:
    cells = [" 00123 ", 12345.0, 12.5, 7, True, None, float("nan"), dt.date(2024, 12, 4), "   ", "\xa0"]
    texts = text_column(object_series(cells))
    assert as_texts(texts) == [text_value(cell) for cell in cells]


@pytest.mark.parametrize(
    "cells",
    [
        ["A1", None, "  ", "B2"],  # text only
        ["A1", None, "  ", 12.0],  # mixed
    ],
)
def test_text_column_blank_is_nan_when_some_cell_has_text(cells: list[object]) -> None:
    # What Series.map(text_value) made of it: pandas infers its str dtype for text with blanks.
    texts = text_column(pd.Series(cells, dtype=object, index=[10, 11, 12, 13], name="sku"))
    assert texts.index.tolist() == [10, 11, 12, 13]
    assert texts.name == "sku"
    assert math.isnan(texts.iloc[1]) and math.isnan(texts.iloc[2])


@pytest.mark.parametrize("dtype", [object, "str"])
def test_text_column_of_blank_cells_is_none(dtype: object) -> None:
    texts = text_column(pd.Series([None, " ", "\xa0"], dtype=dtype))
    assert texts.dtype == object
    assert texts.tolist() == [None, None, None]


def test_text_column_of_no_cells_is_an_empty_object_column() -> None:
    texts = text_column(pd.Series([], dtype=object))
    assert texts.dtype == object
    assert texts.empty


@pytest.mark.parametrize("cells", [[" a ", None, " "], [" a ", 5.0, None, " "]])
def test_text_strings_is_text_column_in_the_str_dtype(cells: list[object]) -> None:
    series = object_series(cells)
    strings = text_strings(series)
    assert strings.dtype == "str"
    pd.testing.assert_series_equal(strings.astype(object), text_column(series))


# --- skip_rows -------------------------------------------------------------------


def make_selected(
    rows: list[list[object]], columns: list[str], first_row: int = 5
) -> tuple[SelectedColumns, pd.DataFrame]:
    all_cells = pd.DataFrame(rows, dtype=object)
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    selected = SelectedColumns(
        frame=frame,
        headers={c: c.upper() for c in columns},
        row_numbers=np.arange(first_row, first_row + len(rows), dtype=np.int64),
    )
    return selected, all_cells


def test_skip_rows_counts_each_kind() -> None:
    rows: list[list[object]] = [
        ["A1", "Apple", 5, 10],  # 5 kept
        [None, None, None, None],  # 6 blank
        ["  ", "", "  ", None],  # 7 blank (whitespace only)
        [None, "orphan", 1, 1],  # 8 no sku
        ["", "orphan 2", 1, 1],  # 9 no sku (empty text)
        ["TOTAL", None, 100, 200],  # 10 total (sku)
        [None, "Grand Total", 100, 200],  # 11 total (product_name, no sku)
        ["x", "grand total:", 1, 1],  # 12 total (product_name)
        ["GrandTotal", None, 1, 1],  # 13 total (\s* allows no space)
        ["T1", "Totally Awesome", 1, 1],  # 14 kept: "Totally" is not "total\b"
        ["T2", "Subtotal", 1, 1],  # 15 kept: must start with total
        ["B2", "Banana", 0, 0],  # 16 kept
    ]
    selected, all_cells = make_selected(rows, ["sku", "product_name", "stock_on_hand", "sales_qty"])
    kept, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    assert skipped.blank == 2
    assert skipped.no_key == 2
    assert skipped.total == 4
    assert skipped.count == 8
    assert skipped.as_dict() == {"blank": 2, "no_key": 2, "total": 4, "header_repeat": 0}
    assert kept.frame["sku"].tolist() == ["A1", "T1", "T2", "B2"]
    assert kept.row_numbers.tolist() == [5, 14, 15, 16]
    assert list(kept.frame.index) == [0, 1, 2, 3]


def test_skip_rows_a_row_repeating_the_header_is_skipped_and_counted() -> None:
    rows: list[list[object]] = [
        ["A1", "Apple", 5, 10],  # 5 kept
        ["SKU", "Product Name", "Stock", "Sales Qty"],  # 6 the header again (a new printed page)
        [" sku ", "PRODUCT-NAME", "stock", "sales qty"],  # 7 the same headings, written differently
        ["SKU", "Product Name", 3, 4],  # 8 not a repeat: numbers where the headings were
        ["B2", "Banana", 0, 0],  # 9 kept
    ]
    selected, all_cells = make_selected(rows, ["sku", "product_name", "stock_on_hand", "sales_qty"])
    selected = SelectedColumns(
        frame=selected.frame,
        headers={"sku": "SKU", "product_name": "Product Name", "stock_on_hand": "Stock", "sales_qty": "Sales Qty"},
        row_numbers=selected.row_numbers,
    )
    kept, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    assert skipped.as_dict() == {"blank": 0, "no_key": 0, "total": 0, "header_repeat": 2}
    assert kept.row_numbers.tolist() == [5, 8, 9]


@pytest.mark.parametrize(
    "label", ["TOTAL", "Total", "total", "Grand Total", "grand total:", "GRAND  TOTAL", "Total Toko"]
)
def test_skip_rows_total_labels(label: str) -> None:
    selected, all_cells = make_selected([["A", label, 1, 1]], ["sku", "product_name", "stock_on_hand", "sales_qty"])
    kept, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    assert skipped.total == 1
    assert len(kept.frame) == 0


@pytest.mark.parametrize("label", ["Totally Awesome", "Totals", "Subtotal", "Grand Totality", "Not total"])
def test_skip_rows_not_total_labels(label: str) -> None:
    selected, all_cells = make_selected([["A", label, 1, 1]], ["sku", "product_name", "stock_on_hand", "sales_qty"])
    kept, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    assert skipped.total == 0
    assert kept.frame["product_name"].tolist() == [label]


def test_skip_rows_blank_means_blank_across_the_whole_sheet_row() -> None:
    # Selected columns are empty, but an unselected column holds a note: not a blank row, a row without sku.
    rows: list[list[object]] = [[None, None, None, "note"]]
    all_cells = pd.DataFrame(rows, dtype=object)
    selected = SelectedColumns(
        frame=pd.DataFrame({"sku": [None], "stock_on_hand": [None], "sales_qty": [None]}, dtype=object),
        headers={},
        row_numbers=np.array([3], dtype=np.int64),
    )
    _, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    assert skipped.as_dict() == {"blank": 0, "no_key": 1, "total": 0, "header_repeat": 0}


def test_skip_rows_blank_is_none_or_whitespace_in_every_sheet_column() -> None:
    # The sheet's own columns as the reader gives them: text, numbers and dates side by side.
    all_cells = pd.DataFrame(
        {
            0: pd.Series(["A1", None, "\xa0", None, None, " ", None], dtype=object),
            1: pd.Series(["x", "\u3000", "\t", None, None, None, None], dtype=object),
            2: pd.Series([1.0, np.nan, np.nan, 0.0, np.nan, np.nan, np.nan]),
            3: pd.Series(pd.to_datetime(["2024-12-04", None, None, None, None, None, "2024-12-05"])),
            4: pd.Series([None, None, None, None, False, None, None], dtype=object),
        }
    )
    selected = SelectedColumns(
        frame=pd.DataFrame({"sku": all_cells[0], "product_name": all_cells[1]}, dtype=object),
        headers={},
        row_numbers=np.arange(2, 9, dtype=np.int64),
    )
    kept, skipped = skip_rows(selected, key="sku", label_columns=("product_name",), all_cells=all_cells)
    # Rows 3, 4 and 7 are blank; 0.0, False and a date are values: rows 5, 6 and 8 have no sku.
    assert skipped.as_dict() == {"blank": 3, "no_key": 3, "total": 0, "header_repeat": 0}
    assert kept.row_numbers.tolist() == [2]


# --- RejectCollector ---------------------------------------------------------------


def make_collector() -> RejectCollector:
    frame = pd.DataFrame(
        {
            "sku": ["A", "B", 123.0, "D"],
            "stock_on_hand": ["abc", 5, None, 2.5],
            "sales_qty": ["-1", "x", 3, 4],
        },
        dtype=object,
    )
    return RejectCollector(
        file="STORE-1_stock_20241204.xlsx",
        sheet="Stock",
        frame=frame,
        row_numbers=np.array([5, 6, 9, 10], dtype=np.int64),
        headers={"sku": "Kode Barang", "stock_on_hand": "Stok", "sales_qty": "Penjualan"},
    )


def test_reject_collector_first_reason_wins_and_row_numbers_are_sheet_rows() -> None:
    collector = make_collector()
    collector.reject(pd.Series([True, False, True, False]), "first problem")
    collector.reject(pd.Series([True, True, False, False]), lambda position: f"second problem at {position}")
    assert collector.reasons == {0: "first problem", 1: "second problem at 1", 2: "first problem"}
    assert collector.mask.tolist() == [True, True, True, False]
    rejects = collector.to_frame()
    assert list(rejects.columns) == REJECT_COLUMNS
    assert rejects["row_number"].tolist() == [5, 6, 9]
    assert rejects["reason"].tolist() == ["first problem", "second problem at 1", "first problem"]
    assert set(rejects["source_file"]) == {"STORE-1_stock_20241204.xlsx"}
    assert set(rejects["sheet"]) == {"Stock"}
    assert rejects["row_number"].dtype == np.int64


def test_reject_collector_raw_values_are_json_keyed_by_the_store_headers() -> None:
    collector = make_collector()
    collector.reject(pd.Series([False, False, True, True]), "bad")
    rejects = collector.to_frame()
    assert json.loads(rejects.loc[0, "raw_values"]) == {"Kode Barang": "123", "Stok": "", "Penjualan": "3"}
    assert json.loads(rejects.loc[1, "raw_values"]) == {"Kode Barang": "D", "Stok": "2.5", "Penjualan": "4"}


def test_reject_collector_column_reason_names_the_header_and_the_value() -> None:
    collector = make_collector()
    collector.reject(pd.Series([True, False, False, False]), collector.column_reason("stock_on_hand", "not a number"))
    collector.reject(pd.Series([False, False, True, False]), collector.column_reason("stock_on_hand", "is blank"))
    reasons = collector.to_frame()["reason"].tolist()
    assert "Stok" in reasons[0] and "not a number" in reasons[0] and "abc" in reasons[0]
    assert "Stok" in reasons[1] and "is blank" in reasons[1]


def test_reject_collector_with_no_rejects_is_an_empty_frame() -> None:
    collector = make_collector()
    rejects = collector.to_frame()
    assert rejects.empty
    assert list(rejects.columns) == REJECT_COLUMNS


# --- parse_dates (spec: docs/po_snapshots.md, "Dates") -------------------------------------------

# The PO pipeline's setting: numeric day and month written day first.
DATE_ORDER = "day_first"
DEC_4 = dt.date(2024, 12, 4)  # Excel serial 45630 in the 1900 date system


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (dt.date(2024, 12, 4), DEC_4),  # a date cell
        (dt.datetime(2024, 12, 4, 15, 30), DEC_4),  # a date-time cell: the time of day is dropped
        (pd.Timestamp("2024-12-04 08:00"), DEC_4),
        (45630, DEC_4),  # Excel serial numbers as plain numbers
        (45630.0, DEC_4),
        (45630.75, DEC_4),  # a serial with a time of day
        (np.int64(45630), DEC_4),
        (np.float64(45630.0), DEC_4),
        (45631, dt.date(2024, 12, 5)),
        (61, dt.date(1900, 3, 1)),  # after Excel's phantom 29 Feb 1900
        (2958465, dt.date(9999, 12, 31)),  # Excel's last day
        ("2024-12-04", DEC_4),
        ("04/12/2024", DEC_4),
        ("04-12-2024", DEC_4),
        ("  04/12/2024  ", DEC_4),  # trimmed
        ("05/12/2024", dt.date(2024, 12, 5)),  # day first: 5 December, not 12 May
        ("12/01/2024", dt.date(2024, 1, 12)),
        ("29/02/2024", dt.date(2024, 2, 29)),
        ("31-12-2024", dt.date(2024, 12, 31)),
        ("04.12.2024", DEC_4),
        ("2024/12/04", DEC_4),  # year first is never ambiguous
        ("2024-12-04 10:00", DEC_4),
        ("20241204", DEC_4),
        ("45630", DEC_4),  # a serial number stored as text
        ("4 Dec 2024", DEC_4),
        ("Dec 4, 2024", DEC_4),
        ("4 Desember 2024", DEC_4),
    ],
)
def test_parse_dates_accepted_forms(cell: object, expected: dt.date) -> None:
    parsed = parse_dates(object_series([cell]), DATE_ORDER)
    assert parsed.values.iloc[0] == expected
    assert type(parsed.values.iloc[0]) is dt.date  # never a datetime or Timestamp
    assert parsed.blank.tolist() == [False]
    assert parsed.bad.tolist() == [False]


@pytest.mark.parametrize("cell", [None, np.nan, float("nan"), "", "   ", "\t", pd.NaT])
def test_parse_dates_blank_values(cell: object) -> None:
    parsed = parse_dates(object_series([cell]), DATE_ORDER)
    assert parsed.values.iloc[0] is None
    assert parsed.blank.tolist() == [True]
    assert parsed.bad.tolist() == [False]


@pytest.mark.parametrize(
    "cell",
    [
        "12/31/2024",  # US month first: there is no month 31
        "tomorrow",
        "31/02/2024",  # no 31 February
        "29/02/2023",  # not a leap year
        "2024-13-01",
        "04/12/24",  # a two-digit year
        "2024-12",
        "12 pcs",
        True,  # booleans are not dates (nor serial numbers 1 and 0)
        False,
        np.bool_(True),
        0,  # serial 0 is before Excel's first day
        0.0,
        -1,
        -45630,
        2958466,  # after 9999-12-31
        1e12,
        float("inf"),
        dt.time(8, 30),
    ],
)
def test_parse_dates_bad_values(cell: object) -> None:
    parsed = parse_dates(object_series([cell]), DATE_ORDER)
    assert parsed.values.iloc[0] is None
    assert parsed.blank.tolist() == [False]
    assert parsed.bad.tolist() == [True]


def test_parse_dates_mixed_column_keeps_its_index() -> None:
    cells = [dt.datetime(2024, 12, 1), 45630, "2024-12-03", "04/12/2024", None, "12/31/2024", "", True, "05-12-2024"]
    values = pd.Series(cells, index=list(range(10, 19)), dtype=object)
    parsed = parse_dates(values, DATE_ORDER)
    expected = [
        dt.date(2024, 12, 1),
        DEC_4,
        dt.date(2024, 12, 3),
        DEC_4,
        None,
        None,
        None,
        None,
        dt.date(2024, 12, 5),
    ]
    assert parsed.values.tolist() == expected
    assert parsed.blank.tolist() == [False, False, False, False, True, False, True, False, False]
    assert parsed.bad.tolist() == [False, False, False, False, False, True, False, True, False]
    for series in (parsed.values, parsed.blank, parsed.bad):
        assert list(series.index) == list(range(10, 19))
    assert parsed.values.dtype == object
    assert parsed.blank.dtype == bool and parsed.bad.dtype == bool


def test_parse_dates_datetime64_column() -> None:
    values = pd.Series([pd.Timestamp("2024-12-04 13:45"), pd.NaT, pd.Timestamp("2024-01-31")])
    assert pd.api.types.is_datetime64_any_dtype(values)
    parsed = parse_dates(values, DATE_ORDER)
    assert parsed.values.tolist() == [DEC_4, None, dt.date(2024, 1, 31)]
    assert all(v is None or type(v) is dt.date for v in parsed.values)
    assert parsed.blank.tolist() == [False, True, False]
    assert parsed.bad.tolist() == [False, False, False]


def test_parse_dates_float_column_of_serials() -> None:
    parsed = parse_dates(pd.Series([45630.0, np.nan, 45600.0, 0.0]), DATE_ORDER)
    assert parsed.values.tolist() == [DEC_4, None, dt.date(2024, 11, 4), None]
    assert parsed.blank.tolist() == [False, True, False, False]
    assert parsed.bad.tolist() == [False, False, False, True]


def test_parse_dates_whole_column_of_booleans_is_bad() -> None:
    parsed = parse_dates(pd.Series([True, False]), DATE_ORDER)
    assert parsed.bad.tolist() == [True, True]
    assert parsed.blank.tolist() == [False, False]
    assert parsed.values.tolist() == [None, None]


def test_parse_dates_empty_column() -> None:
    parsed = parse_dates(pd.Series([], dtype=object), DATE_ORDER)
    assert parsed.values.empty and parsed.blank.empty and parsed.bad.empty


def test_parse_dates_reads_numeric_day_and_month_only_in_the_configured_order() -> None:
    cells = object_series(["04/12/2024", "12/31/2024", "2024-12-04", 45630])
    month_first = parse_dates(cells, "month_first")
    assert month_first.values.tolist() == [dt.date(2024, 4, 12), dt.date(2024, 12, 31), DEC_4, DEC_4]
    day_first = parse_dates(cells, "day_first")
    assert day_first.values.tolist() == [DEC_4, None, DEC_4, DEC_4]
    # No order configured: 04/12/2024 is a different day in each, so it is not a date.
    unset = parse_dates(cells, None)
    assert unset.values.tolist() == [None, None, DEC_4, DEC_4]
    assert unset.bad.tolist() == [True, True, False, False]


@pytest.mark.parametrize("dtype", ["string", "Int64"])
def test_parse_dates_nullable_missing_value_is_blank(dtype: str) -> None:
    values = pd.Series(["2024-12-04" if dtype == "string" else 45630, None], dtype=dtype)
    parsed = parse_dates(values, DATE_ORDER)
    assert parsed.values.tolist() == [DEC_4, None]
    assert parsed.blank.tolist() == [False, True]
    assert parsed.bad.tolist() == [False, False]


# --- messages: one line, values quoted and cut ---------------------------------------------------


def test_one_line_escapes_control_and_format_characters() -> None:
    assert one_line("a\nb\tc\rd\x07e\u2028f\u202eg\u200bh") == "a\\nb\\tc\\rd\\x07e\\u2028f\\u202eg\\u200bh"
    assert one_line("Toko Sejahtera – Stok") == "Toko Sejahtera – Stok"  # printable text is left alone


def test_quote_cuts_a_long_value_with_an_ellipsis() -> None:
    assert quote("x" * 60) == "'" + "x" * 60 + "'"
    assert quote("x" * 61) == "'" + "x" * 59 + "\u2026'"
    assert quote("a\nb") == "'a\\nb'"


def test_a_file_error_is_one_line_naming_the_file_once() -> None:
    error = InputFileError("f.xlsx", "bad value 'x\ny'", sheet="Stock\t1", row=3, column="Kode Toko\t\t" + "k" * 80)
    assert str(error) == (
        "f.xlsx, sheet 'Stock\\t1', row 3, column 'Kode Toko\\t\\t" + "k" * 46 + "\u2026': bad value 'x\\ny'"
    )
