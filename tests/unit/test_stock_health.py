"""Unit tests for the stock health transform (spec: docs/stock_health.md).

Expected numbers are worked out by hand from the spec's formulas, with the
defaults sales_window_days 30, safety_days 7, review_days 7, overstock_days 90,
default_lead_time_days 14. So with lead time 14: reorder_point = avg * 21 and
target_stock = avg * 28; sales_qty 30 gives avg_daily_sales 1.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest

from autopo_pipelines.config import PipelineConfig, load_config_file
from autopo_pipelines.errors import InputFileError, ReferenceDataError
from autopo_pipelines.pipelines import stock_health as sh
from autopo_pipelines.pipelines.stock_health import (
    OUTPUT_COLUMNS,
    EmergencyList,
    PurchasingSummary,
    StockDayInputs,
    StockHealthSettings,
    compute_metrics,
    read_supplier_master,
)
from autopo_pipelines.tabular import RejectCollector, SkippedRows
from autopo_pipelines.transform import CleanRows, DayContext, FileContext, FileOutcome, transform_file

REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"
DAY = dt.date(2024, 12, 4)
FILE = "STORE-012_stock_20241204.xlsx"
SUPPLIER_HEADER = "sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n"


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_config_file(REAL_CONFIG)


@pytest.fixture
def settings() -> StockHealthSettings:
    return StockHealthSettings()


def blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- compute_metrics --------------------------------------------------------------


def metric_input(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as compute_metrics receives them (after the supplier and on-order join)."""
    defaults = {"lead_time_days": 14.0, "on_order_qty": 0.0, "pack_size": 1.0, "moq": 0.0, "unit_cost": np.nan}
    return pd.DataFrame([{**defaults, **row} for row in rows])


def one_metric_row(settings: StockHealthSettings, **row: Any) -> pd.Series:
    return compute_metrics(metric_input([row]), settings).iloc[0]


@pytest.mark.parametrize(
    ("stock", "sales", "lead", "expected_status"),
    [
        (0, 30, 14, "out_of_stock"),  # stock <= 0 and sales
        (-4, 30, 14, "out_of_stock"),
        (0, 0, 14, "inactive"),  # stock <= 0 and no sales
        (-2, 0, 14, "inactive"),
        (10, 0, 14, "no_sales"),  # stock but no movement
        (10, 30, 14, "critical"),  # cover 10 < lead 14
        (13.9, 30, 14, "critical"),
        (20, 30, 30, "critical"),  # cover 20 < supplier lead 30 (and would be low too)
        (14, 30, 14, "low"),  # cover 14 = lead: not critical; 14 < reorder point 21
        (20, 30, 14, "low"),
        (21, 30, 14, "healthy"),  # stock = reorder point 21: not low
        (50, 30, 14, "healthy"),
        (90, 30, 14, "healthy"),  # cover 90 is not > 90
        (91, 30, 14, "overstock"),
        (1000, 3, 14, "overstock"),  # avg 0.1, cover 10000
        (100, 30, 120, "critical"),  # cover 100 > 90, but 100 < lead 120 and critical comes first
    ],
)
def test_status_rules_in_order(
    settings: StockHealthSettings, stock: float, sales: float, lead: float, expected_status: str
) -> None:
    row = one_metric_row(settings, stock_on_hand=float(stock), sales_qty=float(sales), lead_time_days=float(lead))
    assert row["status"] == expected_status
    assert bool(row["emergency"]) is (expected_status in ("out_of_stock", "critical"))


def test_metrics_of_a_critical_row(settings: StockHealthSettings) -> None:
    row = one_metric_row(settings, stock_on_hand=10.0, sales_qty=30.0, unit_cost=2500.0)
    assert row["avg_daily_sales"] == pytest.approx(1.0)
    assert row["days_of_cover"] == pytest.approx(10.0)
    assert row["reorder_point"] == pytest.approx(21.0)  # 1 * (14 + 7)
    assert row["target_stock"] == pytest.approx(28.0)  # 1 * (14 + 7 + 7)
    assert row["suggested_order_qty"] == 18.0  # 28 - 10
    assert row["stock_value"] == 25000.0
    assert row["status"] == "critical"
    assert bool(row["emergency"]) is True


def test_metrics_with_fractional_average(settings: StockHealthSettings) -> None:
    # sales 45 -> avg 1.5; lead 10 -> reorder 1.5*17 = 25.5, target 1.5*24 = 36; cover 30/1.5 = 20
    row = one_metric_row(settings, stock_on_hand=30.0, sales_qty=45.0, lead_time_days=10.0)
    assert row["avg_daily_sales"] == pytest.approx(1.5)
    assert row["days_of_cover"] == pytest.approx(20.0)
    assert row["reorder_point"] == pytest.approx(25.5)
    assert row["target_stock"] == pytest.approx(36.0)
    assert row["suggested_order_qty"] == 6.0
    assert row["status"] == "healthy"


def test_days_of_cover_is_blank_when_average_is_zero(settings: StockHealthSettings) -> None:
    frame = compute_metrics(
        metric_input([{"stock_on_hand": 10.0, "sales_qty": 0.0}, {"stock_on_hand": 0.0, "sales_qty": 0.0}]), settings
    )
    assert blank(frame.loc[0, "days_of_cover"])
    assert blank(frame.loc[1, "days_of_cover"])
    assert frame["suggested_order_qty"].tolist() == [0.0, 0.0]


def test_stock_value_is_blank_without_unit_cost(settings: StockHealthSettings) -> None:
    row = one_metric_row(settings, stock_on_hand=10.0, sales_qty=30.0)
    assert blank(row["stock_value"])


def test_negative_stock_is_kept_and_counts_as_zero_in_need(settings: StockHealthSettings) -> None:
    # avg 0.5: target 0.5*28 = 14; need = 14 - max(-3, 0) = 14 (not 17)
    row = one_metric_row(settings, stock_on_hand=-3.0, sales_qty=15.0, unit_cost=100.0)
    assert row["stock_on_hand"] == -3.0
    assert row["suggested_order_qty"] == 14.0
    assert row["days_of_cover"] == pytest.approx(-6.0)
    assert row["stock_value"] == -300.0
    assert row["status"] == "out_of_stock"
    assert bool(row["emergency"]) is True


@pytest.mark.parametrize(
    ("stock", "on_order", "pack", "moq", "expected"),
    [
        (15.0, 0.0, 1.0, 0.0, 13.0),  # need 28 - 15 = 13
        (15.0, 0.0, 6.0, 0.0, 18.0),  # need 13, pack 6 -> 3 packs
        (16.0, 0.0, 6.0, 0.0, 12.0),  # need 12, pack 6 -> exactly 2 packs
        (23.0, 0.0, 10.0, 24.0, 30.0),  # need 5 -> 10 < moq 24 -> ceil(24/10)*10 = 30
        (23.0, 0.0, 1.0, 4.0, 5.0),  # need 5 >= moq 4
        (23.0, 0.0, 1.0, 24.0, 24.0),  # need 5 -> moq 24
        (23.0, 0.0, 12.0, 24.0, 24.0),  # need 5 -> 12 < 24 -> 24
        (10.0, 8.0, 1.0, 0.0, 10.0),  # on order reduces need: 28 - 10 - 8
        (28.0, 0.0, 6.0, 24.0, 0.0),  # need 0 -> 0 even with moq
        (40.0, 0.0, 1.0, 24.0, 0.0),  # need < 0 -> 0
        (10.0, 30.0, 1.0, 24.0, 0.0),  # enough on order -> 0
    ],
)
def test_suggested_order_qty(
    settings: StockHealthSettings, stock: float, on_order: float, pack: float, moq: float, expected: float
) -> None:
    row = one_metric_row(settings, stock_on_hand=stock, sales_qty=30.0, on_order_qty=on_order, pack_size=pack, moq=moq)
    assert row["suggested_order_qty"] == expected


def test_suggested_order_qty_ignores_float_noise(settings: StockHealthSettings) -> None:
    # sales 31, lead 16: target = 31/30 * 30 = 31 exactly, but 31/30*30 is 31.000000000000004 in floats.
    row = one_metric_row(settings, stock_on_hand=0.0, sales_qty=31.0, lead_time_days=16.0)
    assert row["suggested_order_qty"] == 31.0


def test_settings_change_the_metrics() -> None:
    custom = StockHealthSettings(sales_window_days=10, safety_days=0, review_days=10, overstock_days=5)
    # avg 3; lead 2: reorder 6, target 36; cover 8/3 = 2.67 -> not < 2; 8 >= 6; cover not > 5: healthy
    row = one_metric_row(custom, stock_on_hand=8.0, sales_qty=30.0, lead_time_days=2.0)
    assert row["avg_daily_sales"] == pytest.approx(3.0)
    assert row["reorder_point"] == pytest.approx(6.0)
    assert row["target_stock"] == pytest.approx(36.0)
    assert row["suggested_order_qty"] == 28.0
    assert row["status"] == "healthy"
    row = one_metric_row(custom, stock_on_hand=18.0, sales_qty=30.0, lead_time_days=2.0)
    assert row["status"] == "overstock"  # cover 6 > 5


# --- transform ------------------------------------------------------------------------


def make_clean(
    rows: list[dict[str, object]], *, first_row: int = 5, file: str = FILE, sheet: str = "Stock"
) -> CleanRows:
    """CleanRows as transform_file hands them over: canonical columns, raw cell values."""
    frame = pd.DataFrame(rows, dtype=object)
    row_numbers = np.arange(first_row, first_row + len(rows), dtype=np.int64)
    headers = {
        "sku": "Kode Barang",
        "product_name": "Nama Barang",
        "category": "Kategori",
        "stock_on_hand": "Stok",
        "sales_qty": "Penjualan 30 Hari",
        "unit_cost": "HPP",
        "store_id": "Kode Toko",
    }
    headers = {k: v for k, v in headers.items() if k in frame.columns}
    return CleanRows(
        frame=frame,
        row_numbers=row_numbers,
        rejects=RejectCollector(file=file, sheet=sheet, frame=frame, row_numbers=row_numbers, headers=headers),
        rows_in=len(rows),
        skipped=SkippedRows(),
    )


def make_context(clean: CleanRows, *, store_id: str | None = "STORE-012", config: PipelineConfig) -> FileContext:
    return FileContext(
        file_name=clean.rejects.file,
        sheet=clean.rejects.sheet,
        store_id=store_id,
        headers=dict(clean.rejects.headers),
        date=DAY,
        number_format=config.numbers,
    )


def make_day(
    suppliers: list[dict[str, object]] | None = None, on_order: list[dict[str, object]] | None = None
) -> StockDayInputs:
    supplier_frame = pd.DataFrame(
        suppliers or [],
        columns=["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"],
    )
    supplier_frame = supplier_frame.astype(
        {
            "sku": object,
            "supplier_id": object,
            "supplier_name": object,
            "lead_time_days": float,
            "moq": float,
            "pack_size": float,
        }
    )
    order_frame = pd.DataFrame(on_order or [], columns=["store_id", "sku", "on_order_qty"]).astype(
        {"store_id": object, "sku": object, "on_order_qty": float}
    )
    return StockDayInputs(suppliers=supplier_frame, on_order=order_frame)


def row(sku: object, stock: object, sales: object, **extra: object) -> dict[str, object]:
    return {
        "sku": sku,
        "product_name": extra.get("name"),
        "category": extra.get("category"),
        "stock_on_hand": stock,
        "sales_qty": sales,
        "unit_cost": extra.get("cost"),
        **({"store_id": extra["store"]} if "store" in extra else {}),
    }


@pytest.fixture
def transformed(config: PipelineConfig, settings: StockHealthSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        row("A1", 5, 30, category="Bev"),  # 5
        row("B1", "abc", 10, name="Bad stock"),  # 6 rejected: stock not a number
        row("A1", "3", "6", name="Teh Botol", category="Snack", cost=2500),  # 7
        row("C1", 4, "-2", name="Neg sales"),  # 8 rejected: negative sales
        row("D1", "", 5, name="Blank stock"),  # 9 rejected: stock blank
        row("E1", 4, None, name="No sales"),  # 10 blank sales -> 0
        row("A1", -1, None, name="Teh Botol 2", cost="3,000"),  # 11
        row("F1", -3, "15", name="Negative stock", cost=100),  # 12
        row("G1", 2, 30, name="On order"),  # 13
        row(12345.0, "1,234", 0, name="Numeric sku"),  # 14
        row(" 00123 ", 10, 30),  # 15
        row("a9", 50, 30, cost="x"),  # 16 rejected: bad unit cost
        row("H1", 10, "1.5.0"),  # 17 rejected: bad sales
    ]
    clean = make_clean(rows)
    day = make_day(
        suppliers=[
            {
                "sku": "A1",
                "supplier_id": "SUP-01",
                "supplier_name": "PT Sumber",
                "lead_time_days": 10,
                "moq": 24,
                "pack_size": 6,
            },
            {
                "sku": "ZZ",
                "supplier_id": "SUP-09",
                "supplier_name": "Unused",
                "lead_time_days": 1,
                "moq": 1,
                "pack_size": 1,
            },
        ],
        on_order=[
            {"store_id": "STORE-012", "sku": "G1", "on_order_qty": 10},
            {"store_id": "STORE-099", "sku": "E1", "on_order_qty": 500},  # another store: ignored
        ],
    )
    out = sh.transform(clean, make_context(clean, config=config), settings, day)
    return out, clean.rejects.to_frame()


def test_transform_output_columns_order_and_sku_sort(transformed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    out, _ = transformed
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    # Plain character-code order: digits < upper case < lower case.
    assert out["sku"].tolist() == ["00123", "12345", "A1", "E1", "F1", "G1"]
    assert set(out["store_id"]) == {"STORE-012"}
    assert set(out["snapshot_date"]) == {DAY}
    assert set(out["source_file"]) == {FILE}


def test_transform_rejects_with_sheet_row_numbers(transformed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, rejects = transformed
    assert rejects["row_number"].tolist() == [6, 8, 9, 16, 17]
    reasons = dict(zip(rejects["row_number"], rejects["reason"], strict=True))
    assert "Stok" in reasons[6] and "not a number" in reasons[6]
    assert "Penjualan 30 Hari" in reasons[8] and "negative" in reasons[8]
    assert "Stok" in reasons[9] and "blank" in reasons[9]
    assert "HPP" in reasons[16] and "not a number" in reasons[16]
    assert "Penjualan 30 Hari" in reasons[17] and "not a number" in reasons[17]
    assert set(rejects["source_file"]) == {FILE}
    assert set(rejects["sheet"]) == {"Stock"}
    raw = json.loads(rejects.loc[0, "raw_values"])
    assert raw["Kode Barang"] == "B1"
    assert raw["Stok"] == "abc"


def test_transform_duplicate_skus_are_summed_keeping_first_non_blank_labels(
    transformed: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    out, _ = transformed
    a1 = out.set_index("sku").loc["A1"]
    # stock 5 + 3 - 1 = 7, sales 30 + 6 + 0 = 36; name from row 7, category from row 5, cost from row 7
    assert a1["stock_on_hand"] == 7.0
    assert a1["sales_qty"] == 36.0
    assert a1["product_name"] == "Teh Botol"
    assert a1["category"] == "Bev"
    assert a1["unit_cost"] == 2500.0
    assert a1["stock_value"] == 17500.0
    # supplier A1: lead 10, moq 24, pack 6. avg 1.2; reorder 1.2*17 = 20.4; target 1.2*24 = 28.8
    assert a1["supplier_id"] == "SUP-01"
    assert a1["supplier_name"] == "PT Sumber"
    assert a1["lead_time_days"] == 10.0
    assert a1["avg_daily_sales"] == pytest.approx(1.2)
    assert a1["days_of_cover"] == pytest.approx(7 / 1.2)
    assert a1["reorder_point"] == pytest.approx(20.4)
    assert a1["target_stock"] == pytest.approx(28.8)
    assert a1["on_order_qty"] == 0.0
    # need 21.8 -> 4 packs of 6 = 24 (= moq)
    assert a1["suggested_order_qty"] == 24.0
    assert a1["status"] == "critical"
    assert bool(a1["emergency"]) is True


def test_transform_defaults_for_a_sku_without_supplier(transformed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    out, _ = transformed
    e1 = out.set_index("sku").loc["E1"]
    assert blank(e1["supplier_id"])
    assert blank(e1["supplier_name"])
    assert e1["lead_time_days"] == 14.0
    assert e1["sales_qty"] == 0.0  # blank sales -> 0
    assert e1["on_order_qty"] == 0.0  # other store's open PO is not this store's
    assert blank(e1["days_of_cover"])
    assert e1["status"] == "no_sales"
    assert bool(e1["emergency"]) is False
    assert blank(e1["unit_cost"]) and blank(e1["stock_value"])
    # moq 0 and pack 1 by default: avg 1, need 28 - 10 = 18 exactly
    sku_00123 = out.set_index("sku").loc["00123"]
    assert sku_00123["lead_time_days"] == 14.0
    assert sku_00123["suggested_order_qty"] == 18.0


def test_transform_keeps_negative_stock_and_uses_on_order(transformed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    out, _ = transformed
    by_sku = out.set_index("sku")
    f1 = by_sku.loc["F1"]
    assert f1["stock_on_hand"] == -3.0
    assert f1["status"] == "out_of_stock"
    assert f1["suggested_order_qty"] == 14.0  # 0.5 * 28 - max(-3, 0)
    assert f1["stock_value"] == -300.0
    g1 = by_sku.loc["G1"]
    assert g1["on_order_qty"] == 10.0
    assert g1["suggested_order_qty"] == 16.0  # 28 - 2 - 10
    assert g1["status"] == "critical"
    numeric_sku = by_sku.loc["12345"]
    assert numeric_sku["stock_on_hand"] == 1234.0
    assert numeric_sku["status"] == "no_sales"


def test_transform_default_lead_time_comes_from_settings(config: PipelineConfig) -> None:
    clean = make_clean([row("X", 10, 30)])
    settings = StockHealthSettings(default_lead_time_days=21)
    out = sh.transform(clean, make_context(clean, config=config), settings, make_day())
    assert out.loc[0, "lead_time_days"] == 21.0
    assert out.loc[0, "target_stock"] == pytest.approx(35.0)  # 1 * (21 + 7 + 7)
    assert out.loc[0, "status"] == "critical"  # cover 10 < 21


def test_transform_store_column_agreeing_after_trim_and_case_is_fine(
    config: PipelineConfig, settings: StockHealthSettings
) -> None:
    clean = make_clean(
        [row("A", 1, 1, store=" store-012 "), row("B", 1, 1, store=None), row("C", 1, 1, store="STORE-012")]
    )
    out = sh.transform(clean, make_context(clean, config=config), settings, make_day())
    assert set(out["store_id"]) == {"STORE-012"}
    assert len(out) == 3


def test_transform_store_column_disagreeing_with_file_name_fails_the_file(
    config: PipelineConfig, settings: StockHealthSettings
) -> None:
    clean = make_clean(
        [row("A", 1, 1, store="STORE-012"), row("B", 1, 1, store="STORE-012"), row("C", 1, 1, store="STORE-013")],
        first_row=8,
    )
    with pytest.raises(InputFileError) as info:
        sh.transform(clean, make_context(clean, config=config), settings, make_day())
    error = info.value
    assert error.file == FILE
    assert error.sheet == "Stock"
    assert error.row == 10
    assert error.column == "Kode Toko"
    text = str(error)
    assert FILE in text and "Stock" in text and "10" in text and "Kode Toko" in text
    assert "STORE-013" in text and "STORE-012" in text


def test_transform_without_store_in_file_name_fails(config: PipelineConfig, settings: StockHealthSettings) -> None:
    clean = make_clean([row("A", 1, 1)])
    with pytest.raises(InputFileError) as info:
        sh.transform(clean, make_context(clean, store_id=None, config=config), settings, make_day())
    assert info.value.file == FILE


def test_transform_of_no_rows_is_an_empty_frame_with_the_output_columns(
    config: PipelineConfig, settings: StockHealthSettings
) -> None:
    clean = make_clean([row("A", "?", 1)])
    out = sh.transform(clean, make_context(clean, config=config), settings, make_day())
    assert out.empty
    assert list(out.columns) == list(OUTPUT_COLUMNS)


def test_transform_reads_decimal_comma_numbers_with_the_configured_format(
    config: PipelineConfig, settings: StockHealthSettings
) -> None:
    clean = make_clean([row("A", "1.234,5", "30", cost="2,5")])
    context = FileContext(
        file_name=FILE,
        sheet="Stock",
        store_id="S1",
        headers=dict(clean.rejects.headers),
        date=DAY,
        number_format=config.numbers.model_copy(update={"decimal": ",", "thousands": "."}),
    )
    out = sh.transform(clean, context, settings, make_day())
    assert out.loc[0, "stock_on_hand"] == 1234.5
    assert out.loc[0, "unit_cost"] == 2.5


# --- transform_file: the reject ratio ----------------------------------------------------


def write_store_file(path: Path, bad_rows: int, good_rows: int) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stock"
    ws.append(["Stock report STORE-012"])
    ws.append([])
    ws.append(["SKU", "Product Name", "Stock On Hand", "Sales Qty"])  # header on row 3
    for i in range(bad_rows):
        ws.append([f"BAD{i}", "bad", "n/a", 1])
    for i in range(good_rows):
        ws.append([f"OK{i:02d}", "ok", 10, 30])
    ws.append([None, "TOTAL", 999, 999])
    wb.save(path)
    return path


def transform_store_file(path: Path, config: PipelineConfig, settings: StockHealthSettings) -> FileOutcome:
    """STORE-012's file of DAY through the shared per-file step, with the test's day inputs."""
    return transform_file(
        path,
        config=config,
        definition=sh.TRANSFORM,
        settings=settings,
        day_inputs=make_day(),
        date=DAY,
        store_id="STORE-012",
    )


def test_transform_file_within_reject_ratio_keeps_the_good_rows(
    tmp_path: Path, config: PipelineConfig, settings: StockHealthSettings
) -> None:
    # 1 rejected of 20 data rows = 0.05: not more than max_reject_ratio 0.05.
    path = write_store_file(tmp_path / FILE, bad_rows=1, good_rows=19)
    outcome = transform_store_file(path, config, settings)
    assert len(outcome.rows) == 19
    assert outcome.rejects["row_number"].tolist() == [4]
    assert outcome.skipped.total == 1
    assert outcome.sheet == "Stock"


def test_transform_file_over_reject_ratio_fails_the_file(
    tmp_path: Path, config: PipelineConfig, settings: StockHealthSettings
) -> None:
    # 2 rejected of 20 data rows = 0.10 > 0.05.
    path = write_store_file(tmp_path / FILE, bad_rows=2, good_rows=18)
    with pytest.raises(InputFileError) as info:
        transform_store_file(path, config, settings)
    assert info.value.file == FILE
    assert info.value.sheet == "Stock"
    assert "2 of 20" in str(info.value)


# --- supplier master ----------------------------------------------------------------------


def write_csv(tmp_path: Path, body: str, header: str = SUPPLIER_HEADER) -> Path:
    path = tmp_path / "suppliers.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_supplier_master_csv_keeps_leading_zeros(tmp_path: Path) -> None:
    path = write_csv(tmp_path, '00123,SUP-01,PT Sumber,10,24,6\n456,SUP-02,"CV Jaya, Abadi",7,0,1\n')
    master = read_supplier_master(path)
    assert master["sku"].tolist() == ["00123", "456"]
    assert master["supplier_id"].tolist() == ["SUP-01", "SUP-02"]
    assert master["supplier_name"].tolist() == ["PT Sumber", "CV Jaya, Abadi"]
    assert master["lead_time_days"].tolist() == [10.0, 7.0]
    assert master["moq"].tolist() == [24.0, 0.0]
    assert master["pack_size"].tolist() == [6.0, 1.0]


def test_supplier_master_csv_with_byte_order_mark_and_spaced_header(tmp_path: Path) -> None:
    path = tmp_path / "suppliers.csv"
    path.write_bytes(
        "\ufeffSKU, Supplier_ID ,supplier_name,lead_time_days,moq,pack_size\n1,S,N,3,0,1\n".encode("utf-8")
    )
    master = read_supplier_master(path)
    assert master["sku"].tolist() == ["1"]
    assert master["supplier_id"].tolist() == ["S"]


def test_supplier_master_missing_column_is_reference_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "1,S,N,3,0\n", header="sku,supplier_id,supplier_name,lead_time_days,moq\n")
    with pytest.raises(ReferenceDataError, match="pack_size"):
        read_supplier_master(path)


def test_supplier_master_duplicate_sku_is_reference_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "1,S,N,3,0,1\n2,S,N,3,0,1\n 1 ,T,M,4,0,1\n")
    with pytest.raises(ReferenceDataError, match="more than once") as info:
        read_supplier_master(path)
    assert "'1'" in str(info.value)


def test_supplier_master_with_one_column_twice_is_refused_naming_both(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, "9,1,S,N,3,0,1\n", header="SKU,sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n"
    )
    with pytest.raises(ReferenceDataError) as info:
        read_supplier_master(path)
    assert str(info.value) == "supplier master suppliers.csv: columns A ('SKU') and B ('sku') are both sku; keep one"


def test_supplier_master_non_numeric_lead_time_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "1,S,N,3,0,1\n2,S,N,3,0,1\n3,S,N,ten,0,1\n")
    with pytest.raises(ReferenceDataError) as info:
        read_supplier_master(path)
    text = str(info.value)
    assert "row 4" in text  # header is row 1, so the third data row is row 4
    assert "lead_time_days" in text
    assert "ten" in text
    assert "suppliers.csv" in text


@pytest.mark.parametrize(("column", "body"), [("pack_size", "1,S,N,3,0,0\n"), ("moq", "1,S,N,3,-1,1\n")])
def test_supplier_master_invalid_terms_are_reference_errors(tmp_path: Path, column: str, body: str) -> None:
    path = write_csv(tmp_path, body)
    with pytest.raises(ReferenceDataError, match=column):
        read_supplier_master(path)


def test_supplier_master_missing_file_is_reference_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="not found"):
        read_supplier_master(tmp_path / "suppliers.csv")


def test_supplier_master_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "suppliers.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Supplier master, exported 2024-12-01"])
    ws.append([])
    ws.append(["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"])
    ws.append(["00123", "SUP-01", "PT Sumber", 10, 24, 6])
    ws.append([12345, "SUP-02", "CV Jaya", 7.0, 0, 1])
    ws.append([None, None, None, None, None, None])
    wb.save(path)
    master = read_supplier_master(path)
    assert master["sku"].tolist() == ["00123", "12345"]
    assert master["supplier_id"].tolist() == ["SUP-01", "SUP-02"]
    assert master["lead_time_days"].tolist() == [10.0, 7.0]
    assert master["moq"].tolist() == [24.0, 0.0]
    assert master["pack_size"].tolist() == [6.0, 1.0]


def test_supplier_master_xlsx_bad_number_names_the_sheet_row(tmp_path: Path) -> None:
    path = tmp_path / "suppliers.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size"])
    ws.append(["1", "S", "N", 3, 0, 1])
    ws.append(["2", "S", "N", "soon", 0, 1])
    wb.save(path)
    with pytest.raises(ReferenceDataError) as info:
        read_supplier_master(path)
    assert str(info.value) == "supplier master suppliers.xlsx, row 3: lead_time_days 'soon' is not a valid number"


def test_supplier_master_that_is_not_a_workbook_is_reference_error(tmp_path: Path) -> None:
    path = tmp_path / "suppliers.xlsx"
    path.write_text("sku,supplier_id\n1,2\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError):
        read_supplier_master(path)


def test_day_inputs_read_the_supplier_master_from_the_data_root(tmp_path: Path, config: PipelineConfig) -> None:
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "suppliers.csv").write_text(SUPPLIER_HEADER + "007,S,N,3,0,1\n", encoding="utf-8")
    context = DayContext(pipeline="stock_health", date=DAY, data_root=tmp_path)
    folder = tmp_path / "inputs"
    folder.mkdir()
    notes = sh.prepare_day_inputs(context, StockHealthSettings(), folder)
    day = sh.load_day_inputs(context, StockHealthSettings(), folder)
    assert day.suppliers["sku"].tolist() == ["007"]
    # No warehouse to read PO data from: nothing on order, and the run says so.
    assert day.on_order.empty
    assert notes == ["ran without PO data for 2024-12-04: no warehouse to read po_snapshots from; on_order_qty is 0"]


def test_on_order_link_can_be_turned_off(tmp_path: Path) -> None:
    context = DayContext(pipeline="stock_health", date=DAY, data_root=tmp_path, warehouse_conninfo="postgresql://x")
    on_order = sh.open_po_quantities(context, StockHealthSettings(on_order_table=None))
    assert on_order.quantities.empty
    assert "link to PO data is off" in on_order.note


# --- PurchasingSummary (D_m2) ------------------------------------------------------------------


def snapshot_row(
    store: str,
    sku: str,
    *,
    stock: float,
    sales: float,
    status: str,
    cover: float = np.nan,
    cost: float = np.nan,
    name: str | None = None,
    supplier: str | None = None,
    on_order: float = 0.0,
    suggested: float = 0.0,
) -> dict[str, object]:
    """A finished snapshot row; only the fields the summaries read need to be realistic."""
    return {
        "snapshot_date": DAY,
        "store_id": store,
        "sku": sku,
        "product_name": name,
        "category": None,
        "supplier_id": supplier,
        "supplier_name": None if supplier is None else f"{supplier} name",
        "stock_on_hand": stock,
        "sales_qty": sales,
        "avg_daily_sales": sales / 30,
        "days_of_cover": cover,
        "lead_time_days": 14.0,
        "reorder_point": 0.0,
        "target_stock": 0.0,
        "on_order_qty": on_order,
        "suggested_order_qty": suggested,
        "status": status,
        "emergency": status in ("out_of_stock", "critical"),
        "unit_cost": cost,
        "stock_value": stock * cost,
        "source_file": f"{store}_stock_20241204.xlsx",
    }


def summary_batches() -> list[pd.DataFrame]:
    store1 = [
        snapshot_row("S1", "A", stock=0, sales=30, status="out_of_stock", cover=0.0, suggested=28),
        snapshot_row("S1", "B", stock=5, sales=3, status="healthy", cover=50.0, cost=2.0),
        snapshot_row("S1", "C", stock=1, sales=0, status="no_sales"),
    ]
    store2 = [
        snapshot_row(
            "S2",
            "A",
            stock=4,
            sales=60,
            status="critical",
            cover=2.0,
            cost=1.5,
            name="Apple",
            supplier="SUP1",
            on_order=3,
            suggested=50,
        ),
        snapshot_row("S2", "B", stock=1, sales=3, status="low", cover=10.0, name="Banana"),
        snapshot_row("S2", "D", stock=2, sales=0, status="no_sales", cost=4.0),
    ]
    store3 = [
        snapshot_row(
            "S3",
            "A",
            stock=-2,
            sales=30,
            status="out_of_stock",
            cover=-2.0,
            name="Apple 3",
            supplier="SUP9",
            suggested=28,
        ),
    ]
    return [pd.DataFrame(rows) for rows in (store1, store2, store3)]


def test_purchasing_summary_values() -> None:
    summary = PurchasingSummary()
    for batch in summary_batches():
        summary.update(batch)
    result = summary.result().set_index("sku")
    assert list(result.index) == ["A", "B", "C", "D"]
    a = result.loc["A"]
    assert a["snapshot_date"] == DAY
    assert a["product_name"] == "Apple"  # first non-blank, in store order
    assert a["supplier_id"] == "SUP1"
    assert a["stores_count"] == 3
    assert a["total_stock"] == 2.0  # 0 + 4 - 2
    assert a["total_sales_qty"] == 120.0
    assert a["avg_daily_sales"] == pytest.approx(4.0)  # 1 + 2 + 1
    assert a["days_of_cover"] == pytest.approx(0.5)  # 2 / 4
    assert a["stores_out_of_stock"] == 2
    assert a["stores_critical"] == 1
    assert a["total_on_order_qty"] == 3.0
    assert a["total_suggested_order_qty"] == 106.0
    assert a["total_stock_value"] == 6.0  # only S2 has a cost
    b = result.loc["B"]
    assert b["stores_count"] == 2
    assert b["total_stock"] == 6.0
    assert b["avg_daily_sales"] == pytest.approx(0.2)
    assert b["days_of_cover"] == pytest.approx(30.0)
    assert b["product_name"] == "Banana"
    c = result.loc["C"]
    assert blank(c["days_of_cover"])  # no sales anywhere
    assert blank(c["total_stock_value"])  # no cost anywhere
    assert blank(c["product_name"])
    assert result.loc["D", "total_stock_value"] == 8.0


def test_purchasing_summary_in_batches_equals_one_batch() -> None:
    batches = summary_batches()
    in_one = PurchasingSummary()
    in_one.update(pd.concat(batches, ignore_index=True))
    in_parts = PurchasingSummary()
    for batch in batches:
        in_parts.update(batch)
    in_parts.update(batches[0].iloc[0:0])  # an empty batch changes nothing
    pd.testing.assert_frame_equal(in_one.result(), in_parts.result())


def test_purchasing_summary_of_nothing_has_the_columns() -> None:
    result = PurchasingSummary().result()
    assert result.empty
    assert list(result.columns) == list(sh.M2_COLUMNS)


# --- EmergencyList ---------------------------------------------------------------------------


def test_emergency_list_order() -> None:
    rows = {
        "crit_z": snapshot_row("S1", "z", stock=3, sales=30, status="critical", cover=3.0),
        "oos_tie_s2": snapshot_row("S2", "a", stock=0, sales=15, status="out_of_stock", cover=0.0),
        "healthy": snapshot_row("S1", "h", stock=50, sales=30, status="healthy", cover=50.0),
        "oos_negative": snapshot_row("S1", "b", stock=-2, sales=30, status="out_of_stock", cover=-2.0),
        "oos_blank_cover": snapshot_row("S9", "c", stock=0, sales=60, status="out_of_stock", cover=np.nan),
        "oos_tie_s1": snapshot_row("S1", "d", stock=0, sales=15, status="out_of_stock", cover=0.0),
        "oos_faster": snapshot_row("S3", "e", stock=0, sales=27, status="out_of_stock", cover=0.0),
        "crit_y": snapshot_row("S1", "y", stock=3, sales=30, status="critical", cover=3.0),
        "crit_low_cover": snapshot_row("S0", "k", stock=1, sales=30, status="critical", cover=1.0),
        "crit_same_cover_faster": snapshot_row("S5", "Z", stock=6, sales=60, status="critical", cover=3.0),
    }
    emergency = EmergencyList()
    names = list(rows)
    emergency.update(pd.DataFrame([rows[n] for n in names[:5]]))
    emergency.update(pd.DataFrame([rows[n] for n in names[5:]]))
    result = emergency.result()
    assert list(result.columns) == list(OUTPUT_COLUMNS)
    assert list(zip(result["store_id"], result["sku"], strict=True)) == [
        ("S9", "c"),  # out_of_stock, blank cover first
        ("S1", "b"),  # cover -2
        ("S3", "e"),  # cover 0, avg 0.9
        ("S1", "d"),  # cover 0, avg 0.5, store S1
        ("S2", "a"),  # cover 0, avg 0.5, store S2
        ("S0", "k"),  # critical, cover 1
        ("S5", "Z"),  # cover 3, avg 2
        ("S1", "y"),  # cover 3, avg 1, S1, y < z
        ("S1", "z"),
    ]


def test_emergency_list_of_nothing_has_the_columns() -> None:
    emergency = EmergencyList()
    emergency.update(pd.DataFrame([snapshot_row("S1", "h", stock=50, sales=30, status="healthy", cover=50.0)]))
    result = emergency.result()
    assert result.empty
    assert list(result.columns) == list(OUTPUT_COLUMNS)
