"""Unit tests for the PO snapshot transform (spec: docs/po_snapshots.md).

Header detection, skipped rows, numbers, rejects and file-level failure work
as in docs/stock_health.md, so those rules are tested here too, with PO
files. Expected values are worked out by hand from the spec for the business
date D = 2024-12-04 (Excel serial 45630); days overdue are plain date arithmetic.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from pydantic import ValidationError

from autopo_pipelines.aggregate import Part, write_day_outputs, write_part
from autopo_pipelines.config import DateFormat, FileOverride, PipelineConfig, load_config_file, transform_settings
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.pipelines import po_snapshots as po
from autopo_pipelines.pipelines.po_snapshots import PoSnapshotSettings, derive, merge_lines
from autopo_pipelines.routing import route_files
from autopo_pipelines.sources import SourceFile
from autopo_pipelines.transform import FileOutcome, transform_file
from po_spec import SPEC_OUTPUT_COLUMNS

REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "po_snapshots.yaml"
DAY = dt.date(2024, 12, 4)
STORE_FILE = "STORE-012_po_20241204.xlsx"
EXPORT_FILE = "po_snapshot_20241204.xlsx"

SPEC_REJECT_COLUMNS = ["source_file", "sheet", "row_number", "reason", "raw_values"]

# The spec's default aliases, per canonical column (written out from the spec's table).
SPEC_ALIASES: dict[str, list[str]] = {
    "po_number": ["po_number", "po_no", "po", "no_po", "purchase_order"],
    "sku": ["sku", "item_code", "kode_barang", "plu", "article", "barcode"],
    "qty_ordered": ["qty_ordered", "order_qty", "qty_order", "qty_po"],
    "qty_received": ["qty_received", "received_qty", "qty_receive", "qty_terima"],
    "store_id": ["store_id", "store", "store_code", "toko", "kode_toko"],
    "supplier_id": ["supplier_id", "supplier_code", "vendor_code", "kode_supplier"],
    "supplier_name": ["supplier_name", "supplier", "vendor", "nama_supplier"],
    "po_date": ["po_date", "order_date", "tanggal_po"],
    "expected_date": ["expected_date", "eta", "delivery_date", "tanggal_kirim"],
    "status": ["status", "po_status"],
}
ALIAS_SETS = max(len(aliases) for aliases in SPEC_ALIASES.values())

# A typical export's header, not normalised: every cell differs from its canonical name.
HEADER = [
    "PO No.",
    "Kode Barang",
    "Qty PO",
    "Qty Terima",
    "Kode Toko",
    "Kode Supplier",
    "Nama Supplier",
    "Tanggal PO",
    "Tanggal Kirim",
    "Status",
]
TITLE_ROWS: tuple[tuple[object, ...], ...] = (
    ("Laporan PO Outstanding",),
    ("Exported:", "2024-12-04 07:00"),
    (),
)
FIRST_DATA_ROW = len(TITLE_ROWS) + 2  # title rows, then the header, then the data


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_config_file(REAL_CONFIG)


@pytest.fixture(scope="module")
def lenient(config: PipelineConfig) -> PipelineConfig:
    """The real config, but a file never fails for its reject ratio (for tests about single rejects)."""
    return config.model_copy(update={"max_reject_ratio": 1.0})


@pytest.fixture(scope="module")
def settings(config: PipelineConfig) -> PoSnapshotSettings:
    return transform_settings(config)


# --- helpers ----------------------------------------------------------------------------


def line(
    po_number: object,
    sku: object,
    ordered: object,
    received: object = None,
    *,
    store: object = None,
    supplier_id: object = None,
    supplier_name: object = None,
    po_date: object = None,
    expected: object = None,
    status: object = None,
) -> list[object]:
    """One sheet row in HEADER's column order."""
    return [po_number, sku, ordered, received, store, supplier_id, supplier_name, po_date, expected, status]


def write_xlsx(
    path: Path,
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    title_rows: Sequence[Sequence[object]] = TITLE_ROWS,
    sheet: str = "PO",
) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for title in title_rows:
        ws.append(list(title))
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def run_file(
    tmp_path: Path,
    rows: Sequence[Sequence[object]],
    *,
    config: PipelineConfig,
    settings: PoSnapshotSettings,
    header: Sequence[object] = HEADER,
    name: str = STORE_FILE,
    store_id: str | None = "STORE-012",
    title_rows: Sequence[Sequence[object]] = TITLE_ROWS,
) -> FileOutcome:
    path = write_xlsx(tmp_path / name, header, rows, title_rows=title_rows)
    return transform_file(
        path,
        config=config,
        definition=po.TRANSFORM,
        settings=settings,
        day_inputs=None,
        date=DAY,
        store_id=store_id,
    )


def by_key(rows: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Output rows keyed by (po_number, store_id, sku); a key twice fails the test."""
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in rows.to_dict("records"):
        key = (record["po_number"], record["store_id"], record["sku"])
        assert key not in keyed, f"duplicate output key {key}"
        keyed[key] = record
    return keyed


def blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def rejects_by_row(outcome: FileOutcome) -> dict[int, dict[str, Any]]:
    return {int(r["row_number"]): r for r in outcome.rejects.to_dict("records")}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


# --- config --------------------------------------------------------------------------------


def test_config_declares_the_spec_columns_and_aliases(config: PipelineConfig) -> None:
    assert {name: list(spec.aliases) for name, spec in config.columns.items()} == SPEC_ALIASES
    required = sorted(name for name, spec in config.columns.items() if spec.required)
    assert required == ["po_number", "qty_ordered", "sku"]
    assert config.max_reject_ratio == 0.05
    assert config.header_search_rows == 20
    assert (config.numbers.decimal, config.numbers.thousands) == (".", ",")


def test_config_settings_are_the_spec_defaults(settings: PoSnapshotSettings) -> None:
    assert settings == PoSnapshotSettings()
    assert settings.cancelled_status == "cancel|batal|void"
    assert settings.closed_status == "closed|complete|selesai"


def test_status_settings_must_be_regular_expressions() -> None:
    with pytest.raises(ValidationError, match="regular expression"):
        PoSnapshotSettings(cancelled_status="cancel(")
    with pytest.raises(ValidationError):
        PoSnapshotSettings(unknown_setting=1)  # type: ignore[call-arg]


# --- 1. header detection ------------------------------------------------------------------------


def test_header_below_title_rows_with_store_written_headings(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        line(
            "PO-1",
            "A1",
            10,
            4,
            store="store-7",
            supplier_id="SUP-1",
            supplier_name="PT Sumber",
            po_date="2024-11-20",
            expected="2024-12-01",
            status="Open",
        )
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert outcome.sheet == "PO"
    assert outcome.rows_in == 1
    assert outcome.rejects.empty
    (row,) = outcome.rows.to_dict("records")
    assert row["po_number"] == "PO-1"
    assert row["sku"] == "A1"
    assert row["store_id"] == "STORE-7"
    assert row["qty_ordered"] == 10.0
    assert row["qty_received"] == 4.0
    assert row["supplier_id"] == "SUP-1"
    assert row["supplier_name"] == "PT Sumber"
    assert row["po_date"] == dt.date(2024, 11, 20)
    assert row["expected_date"] == dt.date(2024, 12, 1)
    assert row["snapshot_date"] == DAY
    assert row["source_file"] == STORE_FILE


def test_header_found_on_the_first_row_without_titles(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    outcome = run_file(tmp_path, [line("PO-1", "A1", 3)], config=config, settings=settings, title_rows=())
    assert len(outcome.rows) == 1
    assert outcome.rows.loc[0, "qty_ordered"] == 3.0


def display_heading(alias: str) -> str:
    """An alias as an export might write it: 'qty_terima' -> 'Qty Terima'."""
    return " ".join(word.capitalize() for word in alias.split("_"))


@pytest.mark.parametrize("written", ["as_alias", "as_heading"])
@pytest.mark.parametrize("alias_set", range(ALIAS_SETS))
def test_every_default_alias_of_every_column_is_recognised(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings, alias_set: int, written: str
) -> None:
    # Alias set i uses each column's i-th alias (its last one once a column has fewer), so the
    # sets together use every default alias of every column.
    columns = list(SPEC_ALIASES)
    header = []
    for name in columns:
        alias = SPEC_ALIASES[name][min(alias_set, len(SPEC_ALIASES[name]) - 1)]
        header.append(alias if written == "as_alias" else display_heading(alias))
    values = {
        "po_number": "PO-9",
        "sku": "SKU-9",
        "qty_ordered": 10,
        "qty_received": 4,
        "store_id": " toko 3 ",
        "supplier_id": "SUP-9",
        "supplier_name": "CV Jaya",
        "po_date": "20/11/2024",
        "expected_date": "2024-12-01",
        "status": "Open",
    }
    outcome = run_file(
        tmp_path,
        [[values[name] for name in columns]],
        header=header,
        config=config,
        settings=settings,
        name=EXPORT_FILE,
        store_id=None,
    )
    assert outcome.rejects.empty
    (row,) = outcome.rows.to_dict("records")
    assert row["po_number"] == "PO-9"
    assert row["sku"] == "SKU-9"
    assert row["qty_ordered"] == 10.0
    assert row["qty_received"] == 4.0
    assert row["store_id"] == "TOKO 3"
    assert row["supplier_id"] == "SUP-9"
    assert row["supplier_name"] == "CV Jaya"
    assert row["po_date"] == dt.date(2024, 11, 20)
    assert row["expected_date"] == dt.date(2024, 12, 1)
    assert row["status_norm"] == "partial"  # 0 < 4 < 10 and "Open" matches neither status word
    assert row["qty_open"] == 6.0
    assert row["days_overdue"] == 3  # 2024-12-04 - 2024-12-01


def test_optional_columns_may_all_be_absent(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    outcome = run_file(
        tmp_path, [["PO-1", "A1", 5]], header=["PO", "SKU", "Qty Ordered"], config=config, settings=settings
    )
    (row,) = outcome.rows.to_dict("records")
    assert row["qty_received"] == 0.0
    assert row["store_id"] == "STORE-012"
    assert row["status_norm"] == "open"
    assert row["qty_open"] == 5.0
    for column in ("supplier_id", "supplier_name", "po_date", "expected_date"):
        assert blank(row[column]), column
    assert row["days_overdue"] == 0
    assert not row["is_overdue"]


# --- 2. dates ----------------------------------------------------------------------------------


def test_dates_in_every_accepted_form_in_one_mixed_column(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        # po_date and expected_date: real date cells (a datetime's time of day is dropped)
        line("PO-01", "A", 10, po_date=dt.date(2024, 11, 20), expected=dt.datetime(2024, 12, 1, 15, 30)),
        # Excel serial numbers as plain numbers: 45630 is 2024-12-04, 45620 ten days earlier
        line("PO-02", "A", 10, po_date=45630, expected=45620),
        # ISO text
        line("PO-03", "A", 10, po_date="2024-12-04", expected="2024-12-03"),
        # day first with slashes: 05/12/2024 is 5 December, not 12 May
        line("PO-04", "A", 10, po_date="04/12/2024", expected="05/12/2024"),
        # day first with dashes
        line("PO-05", "A", 10, po_date="04-12-2024", expected="30-11-2024"),
        # day first, and the day is the small number: 12 January 2024
        line("PO-06", "A", 10, po_date=" 12/01/2024 ", expected="12/01/2024"),
        # blank dates are allowed
        line("PO-07", "A", 10, po_date=None, expected="   "),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert outcome.rejects.empty
    got = {
        r["po_number"]: (r["po_date"], r["expected_date"], r["days_overdue"]) for r in outcome.rows.to_dict("records")
    }
    assert got["PO-01"] == (dt.date(2024, 11, 20), dt.date(2024, 12, 1), 3)
    assert got["PO-02"] == (dt.date(2024, 12, 4), dt.date(2024, 11, 24), 10)
    assert got["PO-03"] == (dt.date(2024, 12, 4), dt.date(2024, 12, 3), 1)
    assert got["PO-04"] == (dt.date(2024, 12, 4), dt.date(2024, 12, 5), 0)
    assert got["PO-05"] == (dt.date(2024, 12, 4), dt.date(2024, 11, 30), 4)
    assert got["PO-06"] == (dt.date(2024, 1, 12), dt.date(2024, 1, 12), (DAY - dt.date(2024, 1, 12)).days)
    assert got["PO-06"][2] == 327
    po_07 = outcome.rows.set_index("po_number").loc["PO-07"]
    assert blank(po_07["po_date"]) and blank(po_07["expected_date"])
    assert po_07["days_overdue"] == 0
    for value in outcome.rows["po_date"].tolist() + outcome.rows["expected_date"].tolist():
        assert value is None or type(value) is dt.date  # dates, never datetimes or Timestamps


def test_a_column_of_only_date_cells_and_one_of_only_serials(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    # The reader gives a datetime64 column for pure date cells and float64 for pure numbers.
    rows = [
        line("PO-1", "A", 1, po_date=45600, expected=dt.date(2024, 12, 2)),
        line("PO-2", "A", 1, po_date=45630.0, expected=None),
        line("PO-3", "A", 1, po_date=None, expected=dt.datetime(2024, 12, 10, 8, 0)),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert outcome.rejects.empty
    rows_out = outcome.rows.set_index("po_number")
    assert rows_out.loc["PO-1", "po_date"] == dt.date(2024, 11, 4)  # 30 days before 45630
    assert rows_out.loc["PO-2", "po_date"] == dt.date(2024, 12, 4)
    assert blank(rows_out.loc["PO-3", "po_date"])
    assert rows_out.loc["PO-1", "expected_date"] == dt.date(2024, 12, 2)
    assert blank(rows_out.loc["PO-2", "expected_date"])
    assert rows_out.loc["PO-3", "expected_date"] == dt.date(2024, 12, 10)
    assert rows_out["days_overdue"].tolist() == [2, 0, 0]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("12/31/2024", "12/31/2024"),  # US month first: no month 31
        ("2024-02-30", "2024-02-30"),  # no 30 February
        ("04/12/24", "04/12/24"),  # a two-digit year
        ("tomorrow", "tomorrow"),
        ("31/02/2024", "31/02/2024"),  # no 31 February
        ("4 Dec", "4 Dec"),
        (True, "true"),  # a boolean cell is not a date
    ],
)
@pytest.mark.parametrize(("column", "heading"), [(7, "Tanggal PO"), (8, "Tanggal Kirim")])
def test_invalid_dates_are_rejected_rows_naming_the_heading_and_the_value(
    tmp_path: Path,
    lenient: PipelineConfig,
    settings: PoSnapshotSettings,
    value: object,
    shown: str,
    column: int,
    heading: str,
) -> None:
    good = line("PO-1", "A", 1, po_date="2024-12-01", expected="2024-12-02")
    bad = line("PO-2", "B", 1, po_date="2024-12-01", expected="2024-12-02")
    bad[column] = value
    outcome = run_file(tmp_path, [good, bad], config=lenient, settings=settings)
    assert outcome.rows["po_number"].tolist() == ["PO-1"]
    rejects = rejects_by_row(outcome)
    assert list(rejects) == [FIRST_DATA_ROW + 1]
    reason = rejects[FIRST_DATA_ROW + 1]["reason"]
    assert heading in reason
    assert shown in reason
    assert "date" in reason
    raw = json.loads(rejects[FIRST_DATA_ROW + 1]["raw_values"])
    assert raw[heading] == shown
    assert raw["PO No."] == "PO-2"


# --- 3. numbers and rejects ----------------------------------------------------------------------


def test_quantities_text_numbers_blanks_and_rejects(
    tmp_path: Path, lenient: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        line("PO-01", "A", "1,200", None),  # row 5: text with thousands separator; received blank -> 0
        line("PO-02", "A", 10, "-1"),  # row 6: rejected, negative received
        line("PO-03", "A", -5, 0),  # row 7: rejected, negative ordered
        line("PO-04", "A", "12a", 0),  # row 8: rejected, ordered not a number
        line("PO-05", "A", 10, "abc"),  # row 9: rejected, received not a number
        line("PO-06", "A", " 7 ", "2.5"),  # row 10: trimmed text numbers
        line("PO-07", "A", 2.5, ""),  # row 11: decimal cell; empty received -> 0
        line("PO-08", "A", "1,234.5", "1,000"),  # row 12
        line("PO-09", "A", "1.2.3", 0),  # row 13: rejected
        line("PO-10", "A", 0, 0),  # row 14: zero is not negative
    ]
    outcome = run_file(tmp_path, rows, config=lenient, settings=settings)
    got = {r["po_number"]: (r["qty_ordered"], r["qty_received"]) for r in outcome.rows.to_dict("records")}
    assert got == {
        "PO-01": (1200.0, 0.0),
        "PO-06": (7.0, 2.5),
        "PO-07": (2.5, 0.0),
        "PO-08": (1234.5, 1000.0),
        "PO-10": (0.0, 0.0),
    }
    first = FIRST_DATA_ROW
    rejects = rejects_by_row(outcome)
    assert sorted(rejects) == [first + 1, first + 2, first + 3, first + 4, first + 8]
    expected_reasons = {
        first + 1: ("Qty Terima", "negative", "-1"),
        first + 2: ("Qty PO", "negative", "-5"),
        first + 3: ("Qty PO", "not a number", "12a"),
        first + 4: ("Qty Terima", "not a number", "abc"),
        first + 8: ("Qty PO", "not a number", "1.2.3"),
    }
    for row_number, words in expected_reasons.items():
        reason = rejects[row_number]["reason"]
        assert all(word in reason for word in words), (row_number, reason)
    for record in rejects.values():
        assert record["source_file"] == STORE_FILE
        assert record["sheet"] == "PO"
    raw = json.loads(rejects[first + 3]["raw_values"])
    assert raw["PO No."] == "PO-04"
    assert raw["Kode Barang"] == "A"
    assert raw["Qty PO"] == "12a"
    assert raw["Qty Terima"] == "0"
    assert list(outcome.rejects.columns) == SPEC_REJECT_COLUMNS


def test_po_number_and_sku_are_trimmed_text(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [line(12345.0, " 00123 ", 1), line(" PO-2 ", 8992761111111, 1)]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    keys = sorted((r["po_number"], r["sku"]) for r in outcome.rows.to_dict("records"))
    assert keys == [("12345", "00123"), ("PO-2", "8992761111111")]


# --- 4. store_id ------------------------------------------------------------------------------


def test_store_from_the_column_else_from_the_file_name(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        line("PO-1", "A", 1, store=" store-7 "),  # trimmed, upper-cased
        line("PO-2", "A", 1, store=None),  # blank: the file name's store
        line("PO-3", "A", 1, store="   "),
        line("PO-4", "A", 1, store="STORE-012"),
        line("PO-5", "A", 1, store="toko melati"),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings, store_id="STORE-012")
    got = dict(zip(outcome.rows["po_number"], outcome.rows["store_id"], strict=True))
    assert got == {
        "PO-1": "STORE-7",
        "PO-2": "STORE-012",
        "PO-3": "STORE-012",
        "PO-4": "STORE-012",
        "PO-5": "TOKO MELATI",
    }


def test_store_from_the_file_name_without_a_store_column(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    outcome = run_file(
        tmp_path,
        [["PO-1", "A", 1], ["PO-2", "B", 2]],
        header=["PO", "SKU", "Qty PO"],
        config=config,
        settings=settings,
        store_id=" store-012 ",
    )
    assert outcome.rows["store_id"].tolist() == ["STORE-012", "STORE-012"]


def test_line_without_any_store_is_rejected(
    tmp_path: Path, lenient: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [line("PO-1", "A", 1, store="S1"), line("PO-2", "A", 1, store=None), line("PO-3", "A", 1, store="s2")]
    outcome = run_file(tmp_path, rows, config=lenient, settings=settings, name=EXPORT_FILE, store_id=None)
    assert sorted(zip(outcome.rows["po_number"], outcome.rows["store_id"], strict=True)) == [
        ("PO-1", "S1"),
        ("PO-3", "S2"),
    ]
    rejects = rejects_by_row(outcome)
    assert list(rejects) == [FIRST_DATA_ROW + 1]
    assert "store" in rejects[FIRST_DATA_ROW + 1]["reason"]
    assert rejects[FIRST_DATA_ROW + 1]["source_file"] == EXPORT_FILE


def test_consolidated_export_without_store_column_or_store_in_name_fails(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    with pytest.raises(InputFileError) as info:
        run_file(
            tmp_path,
            [["PO-1", "A", 1], ["PO-2", "B", 2]],
            header=["PO", "SKU", "Qty PO"],
            config=config,
            settings=settings,
            name=EXPORT_FILE,
            store_id=None,
        )
    assert info.value.file == EXPORT_FILE
    assert "2 of 2" in str(info.value)
    assert "store" in str(info.value)


# --- 5/6. status_norm, qty_open, days_overdue ----------------------------------------------------------


def lines_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """PO lines as derive receives them: typed values, one row per (po_number, store_id, sku)."""
    defaults: dict[str, Any] = {
        "po_number": "PO-1",
        "store_id": "S1",
        "sku": "A",
        "supplier_id": None,
        "supplier_name": None,
        "po_date": None,
        "expected_date": None,
        "qty_ordered": 10.0,
        "qty_received": 0.0,
        "status": None,
        "source_file": STORE_FILE,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    return frame.astype({"qty_ordered": "float64", "qty_received": "float64"})


@pytest.mark.parametrize(
    ("ordered", "received", "status", "expected_status", "expected_open"),
    [
        (10, 0, "Cancelled", "cancelled", 0),
        (10, 0, "BATAL", "cancelled", 0),
        (10, 0, "void", "cancelled", 0),
        (10, 4, "Dibatalkan", "cancelled", 0),  # partly received, then cancelled
        (10, 10, "cancel", "cancelled", 0),  # cancelled wins over fully received
        (10, 0, "Closed", "closed", 0),
        (10, 3, "complete", "closed", 0),  # closed by its status although 7 are missing
        (10, 0, "Selesai", "closed", 0),
        (10, 0, "COMPLETED", "closed", 0),
        (10, 0, "Closed - Cancelled", "cancelled", 0),  # both words: cancelled wins
        (10, 0, "Selesai (Batal)", "cancelled", 0),
        (10, 10, None, "closed", 0),  # received == ordered, any status
        (10, 12, "Open", "closed", 0),  # over-received
        (10, 10, "Partial", "closed", 0),
        (10, 10, "Dibuka", "closed", 0),
        (10, 4, None, "partial", 6),
        (10, 4, "Open", "partial", 6),
        (10, 9.5, "Partial", "partial", 0.5),
        (10, 0, "Partial", "open", 10),  # the word alone does not make a line partial
        (10, 0, "Dibuka", "open", 10),
        (10, 0, "Open", "open", 10),
        (10, 0, None, "open", 10),
        (10, 0, "", "open", 10),
        (10, 0, "Pending approval", "open", 10),
        (0, 0, None, "closed", 0),  # the spec's rule as written: 0 >= 0
    ],
)
def test_status_norm_and_qty_open(
    settings: PoSnapshotSettings,
    ordered: float,
    received: float,
    status: str | None,
    expected_status: str,
    expected_open: float,
) -> None:
    out = derive(lines_frame([{"qty_ordered": ordered, "qty_received": received, "status": status}]), DAY, settings)
    assert out.loc[0, "status_norm"] == expected_status
    assert out.loc[0, "qty_open"] == pytest.approx(expected_open)
    assert out.loc[0, "qty_ordered"] == ordered
    assert out.loc[0, "qty_received"] == received


@pytest.mark.parametrize(
    ("expected_date", "received", "status", "expected_days"),
    [
        (dt.date(2024, 12, 1), 0, None, 3),
        (dt.date(2024, 12, 3), 0, None, 1),
        (dt.date(2024, 11, 4), 4, None, 30),  # partial lines are overdue too
        (dt.date(2023, 12, 4), 0, "Open", 366),  # a year that holds 29 February 2024
        (DAY, 0, None, 0),  # due today: not overdue
        (dt.date(2024, 12, 5), 0, None, 0),  # due tomorrow
        (None, 0, None, 0),  # no expected date
        (dt.date(2024, 12, 1), 10, None, 0),  # closed by quantity, past its ETA
        (dt.date(2024, 12, 1), 0, "Closed", 0),  # closed by status
        (dt.date(2024, 12, 1), 0, "Cancelled", 0),
    ],
)
def test_days_overdue_and_is_overdue(
    settings: PoSnapshotSettings,
    expected_date: dt.date | None,
    received: float,
    status: str | None,
    expected_days: int,
) -> None:
    frame = lines_frame([{"expected_date": expected_date, "qty_received": received, "status": status}])
    out = derive(frame, DAY, settings)
    if expected_date is not None and expected_days:
        assert expected_days == (DAY - expected_date).days  # the spec's formula, by hand
    assert out.loc[0, "days_overdue"] == expected_days
    assert bool(out.loc[0, "is_overdue"]) is (expected_days > 0)
    assert out.loc[0, "snapshot_date"] == DAY


def test_derive_output_columns_and_types(settings: PoSnapshotSettings) -> None:
    frame = lines_frame(
        [
            {"po_number": "PO-1", "expected_date": dt.date(2024, 12, 1)},
            {"po_number": "PO-2", "qty_received": 10.0},
        ]
    )
    out = derive(frame, DAY, settings)
    assert list(out.columns)[: len(SPEC_OUTPUT_COLUMNS)] == SPEC_OUTPUT_COLUMNS
    assert out["days_overdue"].tolist() == [3, 0]
    assert pd.api.types.is_integer_dtype(out["days_overdue"])
    assert pd.api.types.is_bool_dtype(out["is_overdue"])
    assert out["is_overdue"].tolist() == [True, False]
    assert len(frame) == 2 and "status_norm" not in frame.columns  # the input is not changed


def test_status_words_are_settings(settings: PoSnapshotSettings) -> None:
    custom = PoSnapshotSettings(cancelled_status="^annul", closed_status="^done$")
    frame = lines_frame(
        [
            {"po_number": "PO-1", "status": "BATAL"},
            {"po_number": "PO-2", "status": "Annulled"},
            {"po_number": "PO-3", "status": "DONE"},
            {"po_number": "PO-4", "status": "Selesai"},
        ]
    )
    assert derive(frame, DAY, custom)["status_norm"].tolist() == ["open", "cancelled", "closed", "open"]
    assert derive(frame, DAY, settings)["status_norm"].tolist() == ["cancelled", "open", "open", "closed"]


def test_the_date_order_is_a_setting_per_pipeline_and_per_store(
    tmp_path: Path, lenient: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [line("PO-1", "A", 1, expected="12/01/2024"), line("PO-2", "A", 1, expected="2024-12-01")]
    day_first = run_file(tmp_path, rows, config=lenient, settings=settings)
    assert day_first.rows["expected_date"].tolist() == [dt.date(2024, 1, 12), dt.date(2024, 12, 1)]
    us = lenient.model_copy(update={"dates": DateFormat(order="month_first")})
    assert run_file(tmp_path, rows, config=us, settings=settings).rows["expected_date"].tolist() == [
        dt.date(2024, 12, 1),
        dt.date(2024, 12, 1),
    ]
    unset = lenient.model_copy(update={"dates": DateFormat()})
    outcome = run_file(tmp_path, rows, config=unset, settings=settings)
    assert outcome.rows["expected_date"].tolist() == [dt.date(2024, 12, 1)]
    assert list(rejects_by_row(outcome)) == [FIRST_DATA_ROW]
    # One store's exports month first, the rest day first: an override for that store.
    override = FileOverride(stores=["STORE-012"], dates=DateFormat(order="month_first"))
    per_store = lenient.model_copy(update={"overrides": [override]})
    assert run_file(tmp_path, rows, config=per_store, settings=settings).rows["expected_date"].tolist() == [
        dt.date(2024, 12, 1),
        dt.date(2024, 12, 1),
    ]
    other = run_file(tmp_path, rows, config=per_store, settings=settings, store_id="STORE-013")
    assert other.rows["expected_date"].tolist() == [dt.date(2024, 1, 12), dt.date(2024, 12, 1)]


def test_statuses_through_a_file(tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings) -> None:
    rows = [
        line("PO-1", "A", 10, 0, expected="2024-12-01", status="BATAL"),
        line("PO-2", "A", 10, 10, expected="2024-12-01", status="Dibuka"),
        line("PO-3", "A", 10, 4, expected="2024-12-01", status="Dibuka"),
        line("PO-4", "A", 10, None, expected="2024-12-01", status="Partial"),
        line("PO-5", "A", 10, 1, expected="2024-12-04", status=None),
        line("PO-6", "A", 10, 0, expected="2024-12-01", status="Selesai"),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    got = {
        r["po_number"]: (r["status_norm"], r["qty_open"], r["days_overdue"], bool(r["is_overdue"]))
        for r in outcome.rows.to_dict("records")
    }
    assert got == {
        "PO-1": ("cancelled", 0.0, 0, False),
        "PO-2": ("closed", 0.0, 0, False),
        "PO-3": ("partial", 6.0, 3, True),
        "PO-4": ("open", 10.0, 3, True),
        "PO-5": ("partial", 9.0, 0, False),
        "PO-6": ("closed", 0.0, 0, False),
    }


# --- 7. duplicates within one file ------------------------------------------------------------------


def test_duplicate_lines_in_one_file_are_merged(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        # PO-1/A three times: the sums are 16 ordered and 6 received
        line("PO-1", "A", 10, 0, supplier_id="SUP-1", supplier_name="Old", po_date="2024-11-01", expected="2024-11-25"),
        line("PO-2", "B", 3, 3, status="Closed"),
        # alone, this row would be closed (6 >= 5); merged, the line is partial
        line("PO-1", "A", 5, 6, supplier_id=None, supplier_name=None, po_date=None, expected="2024-12-01"),
        line("PO-1", "A", 1, None, supplier_name="New", po_date="2024-11-02", expected=None, status="Partial"),
        # PO-3/C: the latest non-blank status ("Open") beats an earlier "Cancelled"
        line("PO-3", "C", 4, 0, status="Cancelled"),
        line("PO-3", "C", 4, 0, status="Open"),
        # PO-4/D: a later blank status keeps the earlier "Cancelled"
        line("PO-4", "D", 4, 0, status="Cancelled", expected="2024-11-01"),
        line("PO-4", "D", 4, 0, status=None),
        # the same PO and sku for another store is another line
        line("PO-1", "A", 2, 0, store="STORE-099"),
        # PO-5/E: 2 + 3 ordered, 5 received in total -> closed by the sums
        line("PO-5", "E", 2, 0, expected="2024-12-01"),
        line("PO-5", "E", 3, 5),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert outcome.rejects.empty
    out = by_key(outcome.rows)
    assert set(out) == {
        ("PO-1", "STORE-012", "A"),
        ("PO-1", "STORE-099", "A"),
        ("PO-2", "STORE-012", "B"),
        ("PO-3", "STORE-012", "C"),
        ("PO-4", "STORE-012", "D"),
        ("PO-5", "STORE-012", "E"),
    }
    po1 = out[("PO-1", "STORE-012", "A")]
    assert po1["qty_ordered"] == 16.0
    assert po1["qty_received"] == 6.0
    assert po1["status_norm"] == "partial"
    assert po1["qty_open"] == 10.0
    assert po1["supplier_id"] == "SUP-1"  # the only non-blank one
    assert po1["supplier_name"] == "New"  # the latest non-blank one
    assert po1["po_date"] == dt.date(2024, 11, 2)
    assert po1["expected_date"] == dt.date(2024, 12, 1)
    assert po1["days_overdue"] == 3
    assert bool(po1["is_overdue"]) is True
    assert po1["source_file"] == STORE_FILE  # one file, named once
    assert out[("PO-1", "STORE-099", "A")]["qty_ordered"] == 2.0
    assert out[("PO-3", "STORE-012", "C")]["status_norm"] == "open"
    assert out[("PO-3", "STORE-012", "C")]["qty_ordered"] == 8.0
    po4 = out[("PO-4", "STORE-012", "D")]
    assert (po4["status_norm"], po4["qty_open"], po4["days_overdue"]) == ("cancelled", 0.0, 0)
    assert po4["expected_date"] == dt.date(2024, 11, 1)
    po5 = out[("PO-5", "STORE-012", "E")]
    assert (po5["qty_ordered"], po5["qty_received"], po5["status_norm"], po5["qty_open"]) == (5.0, 5.0, "closed", 0.0)
    assert po5["days_overdue"] == 0
    # transform's rows are sorted by the key
    keys = list(zip(outcome.rows["po_number"], outcome.rows["store_id"], outcome.rows["sku"], strict=True))
    assert keys == sorted(keys)


def test_merge_lines_without_duplicates_keeps_the_lines() -> None:
    frame = lines_frame([{"po_number": "PO-1"}, {"po_number": "PO-2"}, {"po_number": "PO-1", "sku": "B"}])
    merged = merge_lines(frame)
    assert merged[["po_number", "sku"]].values.tolist() == [["PO-1", "A"], ["PO-2", "A"], ["PO-1", "B"]]


def test_summed_fractional_quantities_that_are_fully_received_are_closed(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    # Two lines of one PO and sku (e.g. kilograms): 0.1 + 0.2 = 0.3 ordered, 0 + 0.3 = 0.3 received.
    rows = [
        line("PO-1", "A", "0.1", 0, expected="2024-12-01"),
        line("PO-1", "A", "0.2", "0.3"),
        line("PO-2", "B", "1.1", 0),
        line("PO-2", "B", "2.2", "3.3"),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    out = by_key(outcome.rows)
    for key in (("PO-1", "STORE-012", "A"), ("PO-2", "STORE-012", "B")):
        row = out[key]
        assert row["status_norm"] == "closed", key
        assert row["qty_open"] == 0.0, key
        assert row["days_overdue"] == 0, key
        assert bool(row["is_overdue"]) is False, key


# --- 8. duplicates across the day's files -------------------------------------------------------------


def make_part(root: Path, outcome: FileOutcome, name: str, modified: float) -> Part:
    directory = root / "parts" / f"{name}.0123456789abcdef"
    meta = write_part(directory, outcome, {"file_name": name, "modified": modified})
    return Part(directory=directory, meta=meta)


def run_day(root: Path, parts: list[Part], config: PipelineConfig, settings: PoSnapshotSettings) -> Path:
    seeds = root / "seeds" / "po_snapshots"
    write_day_outputs(
        parts, seeds_dir=seeds, date=DAY, definition=po.TRANSFORM, settings=settings, aggregation=config.aggregation
    )
    return seeds


OLDER_ROWS = [
    line(
        "PO-1",
        "A",
        10,
        2,
        store="S1",
        supplier_id="SUP-OLD",
        supplier_name="Old Name",
        po_date="2024-11-01",
        expected="2024-11-20",
        status="Batal",
    ),
    line("PO-2", "B", 5, 0, store="S1", supplier_id="SUP-X", expected="2024-12-01"),
    line("PO-10", "A", 1, 0, store="S1"),
    line("PO-3", "C", "x", 0, store="S1"),  # rejected: not a number
]
NEWER_ROWS = [
    line(
        "PO-1", "A", 5, 3, store="s1", supplier_id="SUP-NEW", supplier_name=None, expected="2024-12-02", status="Open"
    ),
    line("PO-2", "B", 3, 0, store="S1", expected=None, status="Selesai"),
    line("PO-1", "A", 7, 0, store="S0", po_date=dt.date(2024, 11, 28)),
]


@pytest.mark.parametrize(
    ("older_name", "newer_name"),
    [
        ("po_export_SUP-01_2024-12-04.xlsx", "po_export_SUP-02_2024-12-04.xlsx"),
        ("po_export_SUP-02_2024-12-04.xlsx", "po_export_SUP-01_2024-12-04.xlsx"),  # the newer name sorts first
    ],
)
def test_lines_in_several_files_of_the_day_are_merged_into_the_csv(
    tmp_path: Path,
    lenient: PipelineConfig,
    settings: PoSnapshotSettings,
    older_name: str,
    newer_name: str,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    older = run_file(inbox, OLDER_ROWS, config=lenient, settings=settings, name=older_name, store_id=None)
    newer = run_file(inbox, NEWER_ROWS, config=lenient, settings=settings, name=newer_name, store_id=None)
    parts = [make_part(tmp_path, newer, newer_name, 2_000.0), make_part(tmp_path, older, older_name, 1_000.0)]
    seeds = run_day(tmp_path, parts, lenient, settings)

    assert sorted(p.name for p in seeds.iterdir()) == ["20241204.csv", "20241204_rejects.csv"]
    header, rows = read_csv(seeds / "20241204.csv")
    assert header == SPEC_OUTPUT_COLUMNS  # exactly the spec's columns: no internal "status"
    # sorted by po_number, store_id, sku in character-code order: "PO-1" < "PO-10" < "PO-2"
    assert [(r["po_number"], r["store_id"], r["sku"]) for r in rows] == [
        ("PO-1", "S0", "A"),
        ("PO-1", "S1", "A"),
        ("PO-10", "S1", "A"),
        ("PO-2", "S1", "B"),
    ]
    assert {r["snapshot_date"] for r in rows} == {"2024-12-04"}
    s0, s1, po10, po2 = rows

    # PO-1/S1/A in both files: 10 + 5 ordered, 2 + 3 received; the newer file's non-blank values win
    assert float(s1["qty_ordered"]) == 15.0
    assert float(s1["qty_received"]) == 5.0
    assert s1["supplier_id"] == "SUP-NEW"
    assert s1["supplier_name"] == "Old Name"  # blank in the newer file
    assert s1["po_date"] == "2024-11-01"  # blank in the newer file
    assert s1["expected_date"] == "2024-12-02"
    assert s1["status_norm"] == "partial"  # newer status "Open" replaces "Batal"; 0 < 5 < 15
    assert float(s1["qty_open"]) == 10.0
    assert s1["days_overdue"] == "2"
    assert s1["is_overdue"] == "true"
    assert s1["source_file"] == f"{older_name}; {newer_name}"  # oldest first

    # PO-2/S1/B: newer status "Selesai" closes it; the older file's expected date is kept
    assert float(po2["qty_ordered"]) == 8.0
    assert float(po2["qty_received"]) == 0.0
    assert po2["status_norm"] == "closed"
    assert float(po2["qty_open"]) == 0.0
    assert po2["expected_date"] == "2024-12-01"
    assert po2["supplier_id"] == "SUP-X"
    assert po2["days_overdue"] == "0"
    assert po2["is_overdue"] == "false"
    assert po2["source_file"] == f"{older_name}; {newer_name}"

    # lines in one file only are as they were
    assert (po10["source_file"], float(po10["qty_open"]), po10["status_norm"]) == (older_name, 1.0, "open")
    assert (s0["source_file"], float(s0["qty_ordered"]), s0["po_date"]) == (newer_name, 7.0, "2024-11-28")
    assert s0["expected_date"] == "" and s0["supplier_id"] == "" and s0["supplier_name"] == ""
    assert s0["is_overdue"] == "false"

    reject_header, rejects = read_csv(seeds / "20241204_rejects.csv")
    assert reject_header == SPEC_REJECT_COLUMNS
    assert len(rejects) == 1
    (reject,) = rejects
    assert reject["source_file"] == older_name
    assert reject["sheet"] == "PO"
    assert reject["row_number"] == str(FIRST_DATA_ROW + 3)
    assert "Qty PO" in reject["reason"] and "'x'" in reject["reason"]
    assert json.loads(reject["raw_values"])["PO No."] == "PO-3"


def test_day_without_shared_lines_and_without_rejects(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a = run_file(inbox, [line("PO-2", "A", 1)], config=config, settings=settings, name="S2_po_20241204.xlsx")
    b = run_file(inbox, [line("PO-1", "B", 4, 1)], config=config, settings=settings, name="S1_po_20241204.xlsx")
    empty = run_file(inbox, [], config=config, settings=settings, name="S3_po_20241204.xlsx")
    assert empty.rows.empty
    parts = [
        make_part(tmp_path, a, "S2_po_20241204.xlsx", 1.0),
        make_part(tmp_path, b, "S1_po_20241204.xlsx", 2.0),
        make_part(tmp_path, empty, "S3_po_20241204.xlsx", 3.0),
    ]
    seeds = run_day(tmp_path, parts, config, settings)
    header, rows = read_csv(seeds / "20241204.csv")
    assert header == SPEC_OUTPUT_COLUMNS
    assert [(r["po_number"], r["sku"], r["status_norm"]) for r in rows] == [
        ("PO-1", "B", "partial"),
        ("PO-2", "A", "open"),
    ]
    assert (seeds / "20241204_rejects.csv").read_text(encoding="utf-8") == ",".join(SPEC_REJECT_COLUMNS) + "\n"


# --- 9. skipped rows ---------------------------------------------------------------------------------


def test_blank_keyless_and_total_rows_are_skipped_not_rejected(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    rows = [
        line("PO-1", "A", 1),
        line(None, None, None),  # fully blank
        line(None, "B", 5, 1),  # no po_number
        line("  ", "C", 5, 1),  # po_number only spaces
        line("Total", None, 100, 50),  # total row
        line(None, "Grand Total", 100, 50),  # total row labelled in the sku column
        line("GRAND TOTAL", None, 100, 50),
        line("PO-2", "D", 2),
    ]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert outcome.rows["po_number"].tolist() == ["PO-1", "PO-2"]
    assert outcome.rejects.empty
    assert outcome.skipped.as_dict() == {"blank": 1, "no_key": 2, "total": 3, "header_repeat": 0}
    assert outcome.skipped.count == 6
    assert outcome.rows_in == len(rows)


def test_line_with_po_number_but_no_sku_does_not_reach_the_snapshot(
    tmp_path: Path, lenient: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    # The spec does not say whether this is a skipped or a rejected row; it must be one of them.
    outcome = run_file(tmp_path, [line("PO-1", "A", 1), line("PO-2", None, 3)], config=lenient, settings=settings)
    assert outcome.rows["po_number"].tolist() == ["PO-1"]
    assert outcome.skipped.count + len(outcome.rejects) == 1


# --- 10. whole-file failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (["PO No.", "Kode Barang", "Qty Terima"], "qty_ordered"),
        (["PO No.", "Qty PO", "Qty Terima"], "sku"),
        (["Kode Barang", "Qty PO", "Status"], "po_number"),
    ],
)
def test_required_column_missing_fails_the_file_naming_it(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings, header: list[str], missing: str
) -> None:
    with pytest.raises(InputFileError) as info:
        run_file(tmp_path, [["x", "y", 1]], header=header, config=config, settings=settings)
    error = info.value
    assert error.file == STORE_FILE
    assert error.sheet == "PO"
    assert missing in str(error)
    assert STORE_FILE in str(error)


def test_file_with_no_header_row_fails(tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings) -> None:
    with pytest.raises(InputFileError) as info:
        run_file(tmp_path, [["a", "b"]], header=["Name", "Note"], config=config, settings=settings)
    assert info.value.file == STORE_FILE
    assert "header" in str(info.value)


def ratio_rows(bad: int, good: int) -> list[list[object]]:
    return [line(f"BAD-{i}", "A", "n/a") for i in range(bad)] + [line(f"OK-{i:02d}", "A", 1) for i in range(good)]


@pytest.mark.parametrize(("bad", "good"), [(1, 19), (2, 38), (0, 5)])
def test_reject_ratio_up_to_five_percent_keeps_the_file(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings, bad: int, good: int
) -> None:
    rows = ratio_rows(bad, good) + [line("Total", None, 999)]
    outcome = run_file(tmp_path, rows, config=config, settings=settings)
    assert len(outcome.rows) == good
    assert outcome.rejects["row_number"].tolist() == [FIRST_DATA_ROW + i for i in range(bad)]
    assert outcome.skipped.total == 1  # the total row does not count as a data row


@pytest.mark.parametrize(("bad", "good", "text"), [(2, 18, "2 of 20"), (3, 38, "3 of 41"), (1, 0, "1 of 1")])
def test_reject_ratio_over_five_percent_fails_the_file(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings, bad: int, good: int, text: str
) -> None:
    with pytest.raises(InputFileError) as info:
        run_file(tmp_path, ratio_rows(bad, good), config=config, settings=settings)
    assert info.value.file == STORE_FILE
    assert info.value.sheet == "PO"
    assert text in str(info.value)


def test_file_with_a_header_and_no_lines_is_empty_not_failed(
    tmp_path: Path, config: PipelineConfig, settings: PoSnapshotSettings
) -> None:
    outcome = run_file(tmp_path, [], config=config, settings=settings)
    assert outcome.rows.empty
    assert outcome.rejects.empty
    assert list(outcome.rows.columns)[: len(SPEC_OUTPUT_COLUMNS)] == SPEC_OUTPUT_COLUMNS


# --- 11. routing ----------------------------------------------------------------------------------------


def source_file(name: str, modified: float = 1_733_270_400.0) -> SourceFile:
    return SourceFile(name=name, location=f"/inbox/po_snapshots/{name}", size_bytes=100, modified=modified)


def test_routing_of_po_file_names(config: PipelineConfig) -> None:
    files = [
        source_file("po_snapshot_20241204.xlsx"),
        source_file("PO export 2024-12-04.xlsx"),
        source_file("STORE-012_po_20241204.xlsx", modified=1_000.0),
        source_file("store-012 PO 2024-12-04.xlsx", modified=2_000.0),  # the same store again, newer
        source_file("po_export_SUP-01_2024-12-04.xlsx"),
        source_file("po_export_SUP-02_2024-12-04.xlsx"),
        source_file("STORE-012_stock_20241204.xlsx"),  # a stock file
        source_file("po_snapshot_20241203.xlsx"),  # another date
    ]
    routing = route_files(files, config.compiled_pattern, DAY, duplicates=config.duplicate_store_files)
    routed = {r.file.name: r for r in routing.routed}
    assert set(routed) == {
        "po_snapshot_20241204.xlsx",
        "PO export 2024-12-04.xlsx",
        "store-012 PO 2024-12-04.xlsx",
        "po_export_SUP-01_2024-12-04.xlsx",
        "po_export_SUP-02_2024-12-04.xlsx",
    }
    assert routed["store-012 PO 2024-12-04.xlsx"].store_id == "STORE-012"
    for name in (
        "po_snapshot_20241204.xlsx",
        "PO export 2024-12-04.xlsx",
        "po_export_SUP-01_2024-12-04.xlsx",
        "po_export_SUP-02_2024-12-04.xlsx",
    ):
        assert routed[name].store_id is None, name
    assert all(r.file_date == DAY and r.conflict is None for r in routing.routed)
    assert [s.file.name for s in routing.superseded] == ["STORE-012_po_20241204.xlsx"]
    assert "store-012 PO 2024-12-04.xlsx" in routing.superseded[0].reason
    assert [u.file.name for u in routing.unrouted] == ["STORE-012_stock_20241204.xlsx"]
    assert routing.other_dates == 1


@pytest.mark.parametrize(
    ("name", "store_id"),
    [
        ("po_snapshot_20241204.xlsx", None),
        ("po_snapshots_2024-12-04.xlsx", None),
        ("PO export 2024-12-04.xlsx", None),
        ("STORE-012_po_20241204.xlsx", "STORE-012"),
        ("Toko 7 PO 2024-12-04.xlsx", "TOKO 7"),
        ("po_export_SUP-01_2024-12-04.xlsx", None),
    ],
)
def test_each_po_file_name_is_routed(config: PipelineConfig, name: str, store_id: str | None) -> None:
    routing = route_files([source_file(name)], config.compiled_pattern, DAY, duplicates=config.duplicate_store_files)
    assert [(r.file.name, r.store_id, r.file_date) for r in routing.routed] == [(name, store_id, DAY)]
    assert routing.unrouted == [] and routing.superseded == []


def test_consolidated_exports_are_never_duplicates_of_each_other(config: PipelineConfig) -> None:
    files = [
        source_file("po_snapshot_20241204.xlsx", modified=1.0),
        source_file("PO export 2024-12-04.xlsx", modified=2.0),
        source_file("po outstanding 20241204.xlsx", modified=3.0),
    ]
    routing = route_files(files, config.compiled_pattern, DAY, duplicates="fail")
    assert sorted(r.file.name for r in routing.routed) == sorted(f.name for f in files)
    assert all(r.conflict is None and r.store_id is None for r in routing.routed)
    assert routing.superseded == []


def test_the_same_supplier_export_twice_keeps_the_newest(config: PipelineConfig) -> None:
    older = source_file("po_export_SUP-01_2024-12-04.xlsx", modified=1.0)
    newer = source_file("po export sup-01 20241204.xlsx", modified=2.0)
    routing = route_files([newer, older], config.compiled_pattern, DAY, duplicates="newest")
    assert [r.file.name for r in routing.routed] == [newer.name]
    assert [s.file.name for s in routing.superseded] == [older.name]


# --- misc --------------------------------------------------------------------------------------------


def test_transform_definition_matches_the_spec() -> None:
    definition = po.TRANSFORM
    assert list(definition.snapshot.columns) == SPEC_OUTPUT_COLUMNS
    assert list(definition.snapshot.sort) == ["po_number", "store_id", "sku"]
    assert sorted(definition.rows.required) == ["po_number", "qty_ordered", "sku"]
    assert definition.snapshot.name == "po_snapshots"
    assert definition.snapshot.date_column == "snapshot_date"
    assert definition.merge_day_rows is not None
    assert definition.snapshot.partition is None  # the whole day in one batch, so files can merge


def test_parse_dates_values_are_python_dates_for_derive(settings: PoSnapshotSettings) -> None:
    # derive compares expected_date with the business date: a numpy/pandas date would not do.
    frame = lines_frame([{"expected_date": dt.date(2024, 12, 1)}, {"po_number": "PO-2", "expected_date": np.nan}])
    out = derive(frame, DAY, settings)
    assert out["days_overdue"].tolist() == [3, 0]
