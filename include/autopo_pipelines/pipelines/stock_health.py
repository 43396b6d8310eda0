"""Stock health: a store's stock report to per-SKU cover, reorder and status.

The contract is docs/stock_health.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from autopo_pipelines.config import ColumnSpec, NumberFormat, StrictModel
from autopo_pipelines.errors import InputFileError, ReferenceDataError, quote
from autopo_pipelines.headings import column_letters, normalise_header
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.routing import normalise_store
from autopo_pipelines.storage import StoragePath, local_copy
from autopo_pipelines.tabular import HeaderRule, display_value, parse_numbers, text_column, text_strings
from autopo_pipelines.transform import CleanRows, DayContext, FileContext, RowRules, SnapshotTable, TransformDefinition
from autopo_pipelines.warehouse import read_loaded_snapshot
from autopo_pipelines.xlsx_reader import HeaderNotFoundError, WorkbookError, read_sheet_table

STATUSES = ("out_of_stock", "inactive", "no_sales", "critical", "low", "overstock", "healthy")
EMERGENCY_STATUSES = ("out_of_stock", "critical")

OUTPUT_COLUMNS = (
    "snapshot_date",
    "store_id",
    "sku",
    "product_name",
    "category",
    "supplier_id",
    "supplier_name",
    "stock_on_hand",
    "sales_qty",
    "avg_daily_sales",
    "days_of_cover",
    "lead_time_days",
    "reorder_point",
    "target_stock",
    "on_order_qty",
    "suggested_order_qty",
    "status",
    "emergency",
    "unit_cost",
    "stock_value",
    "source_file",
)

M2_COLUMNS = (
    "snapshot_date",
    "sku",
    "product_name",
    "supplier_id",
    "supplier_name",
    "stores_count",
    "total_stock",
    "total_sales_qty",
    "avg_daily_sales",
    "days_of_cover",
    "stores_out_of_stock",
    "stores_critical",
    "total_on_order_qty",
    "total_suggested_order_qty",
    "total_stock_value",
)

SUPPLIER_COLUMNS = ("sku", "supplier_id", "supplier_name", "lead_time_days", "moq", "pack_size")


class StockHealthSettings(StrictModel):
    sales_window_days: float = Field(default=30, gt=0)
    safety_days: float = Field(default=7, ge=0)
    review_days: float = Field(default=7, ge=0)
    overstock_days: float = Field(default=90, gt=0)
    default_lead_time_days: float = Field(default=14, ge=0)
    # Relative to the data root; CSV or XLSX.
    supplier_master: str = "reference/suppliers.csv"
    # Where on_order_qty comes from (the PO pipeline's table); null: nothing is ever on order.
    on_order_table: str | None = "po_snapshots"


# --- supplier master -------------------------------------------------------


def _supplier_path(root: StoragePath, configured: str) -> StoragePath:
    layout = DataLayout(root)
    path = layout.resolve(configured, layout.reference() / "suppliers.csv")
    if path.suffix.lower() == ".csv" and not path.exists():
        alternative = path.with_suffix(".xlsx")
        if alternative.exists():
            return alternative
    return path


def _refuse_ambiguous_headings(file: str, headings: list[str]) -> None:
    """Two columns of the supplier master that are one column once normalised ('SKU' and 'sku'):
    which one is meant is not known, so the master is refused naming both."""
    seen: dict[str, int] = {}
    for index, heading in enumerate(headings):
        name = normalise_header(heading)
        if name not in SUPPLIER_COLUMNS:
            continue
        if name in seen:
            first = seen[name]
            raise ReferenceDataError(
                f"supplier master {file}: columns {column_letters(first)} ({quote(str(headings[first]).strip())}) "
                f"and {column_letters(index)} ({quote(str(heading).strip())}) are both {name}; keep one"
            )
        seen[name] = index


def read_supplier_master(path: Path) -> pd.DataFrame:
    """The validated supplier master, one row per sku; malformed -> ReferenceDataError."""
    if not path.exists():
        raise ReferenceDataError(f"supplier master not found: {path} (expected CSV or XLSX)")
    columns = {name: ColumnSpec(required=True, aliases=[name]) for name in SUPPLIER_COLUMNS}
    if path.suffix.lower() == ".xlsx":
        rule = HeaderRule(columns)
        try:
            table = read_sheet_table(path, is_header=rule.is_header)
        except HeaderNotFoundError as exc:
            raise ReferenceDataError(f"supplier master {rule.no_header(exc, search_rows=20)}") from exc
        except WorkbookError as exc:
            # describe(): the file named once, then the sheet, then what is wrong.
            raise ReferenceDataError(f"supplier master {exc.describe()}") from exc
        raw = pd.DataFrame(table.data.to_numpy(dtype=object), columns=[normalise_header(h) for h in table.header])
        _refuse_ambiguous_headings(path.name, table.header)
        first_row = table.header_row + 1
    else:
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise ReferenceDataError(f"supplier master {path.name}: not a readable CSV: {exc}") from exc
        _refuse_ambiguous_headings(path.name, list(raw.columns))
        raw.columns = [normalise_header(c) for c in raw.columns]
        first_row = 2
    missing = [c for c in SUPPLIER_COLUMNS if c not in raw.columns]
    if missing:
        raise ReferenceDataError(f"supplier master {path.name}: missing columns {missing}")
    suppliers = pd.DataFrame({"sku": text_column(raw["sku"])})
    suppliers["supplier_id"] = text_column(raw["supplier_id"])
    suppliers["supplier_name"] = text_column(raw["supplier_name"])
    fmt = NumberFormat()
    for column, minimum in (("lead_time_days", 0.0), ("moq", 0.0), ("pack_size", 0.0)):
        parsed = parse_numbers(raw[column], fmt)
        invalid = parsed.bad | (parsed.values < minimum) | ((column == "pack_size") & (parsed.values == 0))
        if invalid.any():
            position = int(np.flatnonzero(invalid.to_numpy())[0])
            raise ReferenceDataError(
                f"supplier master {path.name}, row {first_row + position}: {column} "
                f"{quote(display_value(raw[column].iat[position]))} is not a valid number"
            )
        suppliers[column] = parsed.values
    suppliers = suppliers[suppliers["sku"].notna()]
    duplicated = suppliers["sku"].duplicated(keep=False)
    if duplicated.any():
        skus = sorted(suppliers.loc[duplicated, "sku"].unique())[:5]
        raise ReferenceDataError(f"supplier master {path.name}: sku listed more than once: {skus}")
    return suppliers.reset_index(drop=True)


# --- open purchase orders --------------------------------------------------

ON_ORDER_COLUMNS = ("store_id", "sku", "on_order_qty")


@dataclass(frozen=True)
class OnOrder:
    quantities: pd.DataFrame  # store_id, sku, on_order_qty
    note: str


def _no_on_order() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_id": pd.Series(dtype=object),
            "sku": pd.Series(dtype=object),
            "on_order_qty": pd.Series(dtype="float64"),
        }
    )


def open_po_quantities(context: DayContext, settings: StockHealthSettings) -> OnOrder:
    """Open PO quantity per (store_id, sku) for the day, from the PO pipeline's table.

    When the PO pipeline has not loaded the date, nothing is on order and the note
    says so; the day goes on either way (docs/stock_health.md: never wait for or fail on PO).
    """
    table = settings.on_order_table
    day = context.date.isoformat()
    if table is None:
        return OnOrder(_no_on_order(), "on_order_qty is 0: the link to PO data is off (settings.on_order_table)")
    if context.warehouse_conninfo is None:
        return OnOrder(
            _no_on_order(), f"ran without PO data for {day}: no warehouse to read {table} from; on_order_qty is 0"
        )
    try:
        loaded = read_loaded_snapshot(
            context.warehouse_conninfo,
            table=table,
            date_column="snapshot_date",
            date=context.date,
            columns=("store_id", "sku", "qty_open"),
        )
    except psycopg.errors.UndefinedTable:
        loaded = None
    if loaded is None:
        return OnOrder(
            _no_on_order(), f"ran without PO data for {day}: {table} has no load for the date; on_order_qty is 0"
        )
    lines = loaded.rows
    quantities = (
        lines.assign(on_order_qty=pd.to_numeric(lines["qty_open"]).astype("float64"))
        .groupby(["store_id", "sku"], sort=True)["on_order_qty"]
        .sum()
        .reset_index()
    )
    quantities = quantities.loc[quantities["on_order_qty"] > 0].reset_index(drop=True)
    note = (
        f"on_order_qty from {table} for {day} as loaded at {loaded.loaded_at.isoformat(timespec='seconds')}: "
        f"{len(lines)} PO lines, {len(quantities)} (store, sku) with open quantity"
    )
    return OnOrder(quantities, note)


class StockDayInputs:
    def __init__(self, suppliers: pd.DataFrame, on_order: pd.DataFrame) -> None:
        self.suppliers = suppliers
        self.on_order = on_order


SUPPLIERS_FILE = "suppliers.parquet"
ON_ORDER_FILE = "on_order.parquet"


def prepare_day_inputs(context: DayContext, settings: StockHealthSettings, folder: Path) -> list[str]:
    path = _supplier_path(context.data_root, settings.supplier_master)
    if not path.exists():
        raise ReferenceDataError(f"supplier master not found: {path} (expected CSV or XLSX)")
    with local_copy(path) as master:  # the readers need a file on this machine
        suppliers = read_supplier_master(master)
    on_order = open_po_quantities(context, settings)
    suppliers.to_parquet(folder / SUPPLIERS_FILE, index=False)
    on_order.quantities.to_parquet(folder / ON_ORDER_FILE, index=False)
    return [on_order.note]


def load_day_inputs(context: DayContext, settings: StockHealthSettings, folder: Path) -> StockDayInputs:
    return StockDayInputs(
        suppliers=pd.read_parquet(folder / SUPPLIERS_FILE), on_order=pd.read_parquet(folder / ON_ORDER_FILE)
    )


# --- the per-file transform ------------------------------------------------


def _check_store_column(clean: CleanRows, context: FileContext) -> str:
    if context.store_id is None:
        raise InputFileError(context.file_name, "the file name carries no store; rename it as the pattern expects")
    store = normalise_store(context.store_id)
    if "store_id" in clean.frame.columns:
        stated = text_strings(clean.frame["store_id"])
        # Each distinct text once: a report repeats its one store on every row.
        others = [text for text in stated.dropna().unique() if normalise_store(text) != store]
        if others:
            position = int(np.flatnonzero(stated.isin(others).to_numpy())[0])
            stated_store = normalise_store(cast(str, stated.iat[position]))
            raise InputFileError(
                context.file_name,
                f"store {quote(stated_store)} in the file disagrees with store {quote(store)} in the file name",
                sheet=context.sheet,
                row=int(clean.row_numbers[position]),
                column=context.headers["store_id"],
            )
    return store


def _parse_quantities(clean: CleanRows, fmt: NumberFormat) -> pd.DataFrame:
    frame, rejects = clean.frame, clean.rejects
    # In pandas' str dtype, which the merged sku column has either way: grouping by it sorts
    # in Arrow, in half the time Python strings take.
    sku = text_strings(frame["sku"])
    stock = parse_numbers(frame["stock_on_hand"], fmt)
    rejects.reject(stock.bad, rejects.column_reason("stock_on_hand", "not a number"))
    rejects.reject(stock.blank, rejects.column_reason("stock_on_hand", "is blank"))
    sales = parse_numbers(frame["sales_qty"], fmt)
    rejects.reject(sales.bad, rejects.column_reason("sales_qty", "not a number"))
    sales_values = sales.values.fillna(0.0)
    rejects.reject(sales_values < 0, rejects.column_reason("sales_qty", "is negative"))
    parsed = pd.DataFrame(
        {
            "sku": sku,
            "product_name": text_column(frame["product_name"]) if "product_name" in frame else None,
            "category": text_column(frame["category"]) if "category" in frame else None,
            "stock_on_hand": stock.values,
            "sales_qty": sales_values,
        }
    )
    if "unit_cost" in frame:
        cost = parse_numbers(frame["unit_cost"], fmt)
        rejects.reject(cost.bad, rejects.column_reason("unit_cost", "not a number"))
        parsed["unit_cost"] = cost.values
    else:
        parsed["unit_cost"] = np.nan
    return parsed.loc[~rejects.mask]


def _merge_duplicate_skus(parsed: pd.DataFrame) -> pd.DataFrame:
    grouped = parsed.groupby("sku", sort=True)
    # groupby.first skips missing values: the first non-blank name/category/cost.
    merged = grouped[["product_name", "category", "unit_cost"]].first()
    merged[["stock_on_hand", "sales_qty"]] = grouped[["stock_on_hand", "sales_qty"]].sum()
    return merged.reset_index()


def compute_metrics(rows: pd.DataFrame, settings: StockHealthSettings) -> pd.DataFrame:
    """Add the contract's metrics to rows that carry stock, sales, supplier terms and on-order."""
    out = rows.copy()
    stock = out["stock_on_hand"].to_numpy(dtype=float)
    avg = out["sales_qty"].to_numpy(dtype=float) / settings.sales_window_days
    lead = out["lead_time_days"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(avg > 0, stock / avg, np.nan)
    reorder_point = avg * (lead + settings.safety_days)
    target = avg * (lead + settings.safety_days + settings.review_days)
    on_order = out["on_order_qty"].to_numpy(dtype=float)
    need = target - np.maximum(stock, 0) - on_order
    pack = out["pack_size"].to_numpy(dtype=float)
    moq = out["moq"].to_numpy(dtype=float)
    # Rounding before ceil keeps float noise (14.000000000002 packs) from adding a pack.
    # At least one pack for any positive need, however small.
    packs = np.maximum(np.ceil(np.round(np.where(need > 0, need, 0) / pack, 9)), np.where(need > 0, 1.0, 0.0))
    quantity = packs * pack
    moq_quantity = np.ceil(np.round(moq / pack, 9)) * pack
    suggested = np.where(need <= 0, 0.0, np.where(quantity < moq, moq_quantity, quantity))
    conditions = [
        (stock <= 0) & (avg > 0),
        (stock <= 0) & (avg == 0),
        avg == 0,
        cover < lead,
        stock < reorder_point,
        cover > settings.overstock_days,
    ]
    status = np.select(conditions, list(STATUSES[:-1]), default=STATUSES[-1])
    out["avg_daily_sales"] = avg
    out["days_of_cover"] = cover
    out["reorder_point"] = reorder_point
    out["target_stock"] = target
    out["suggested_order_qty"] = suggested
    out["status"] = status
    out["emergency"] = np.isin(status, EMERGENCY_STATUSES)
    out["stock_value"] = out["stock_on_hand"] * out["unit_cost"]
    return out


def _merge_one_to_one(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """left.merge(right, on="sku", how="left", validate="one_to_one")."""
    # pandas' validation costs more than the merge (it builds a MultiIndex of each side's
    # keys); it runs, to raise its MergeError, only when a sku repeats on either side.
    unique = left["sku"].is_unique and right["sku"].is_unique
    return left.merge(right, on="sku", how="left", validate=None if unique else "one_to_one")


def join_reference(rows: pd.DataFrame, store: str, day: StockDayInputs, settings: StockHealthSettings) -> pd.DataFrame:
    joined = _merge_one_to_one(rows, day.suppliers)
    joined["lead_time_days"] = joined["lead_time_days"].fillna(settings.default_lead_time_days)
    joined["moq"] = joined["moq"].fillna(0.0)
    joined["pack_size"] = joined["pack_size"].fillna(1.0)
    on_order = day.on_order.loc[day.on_order["store_id"] == store, ["sku", "on_order_qty"]]
    joined = _merge_one_to_one(joined, on_order)
    joined["on_order_qty"] = joined["on_order_qty"].fillna(0.0)
    return joined


def transform(
    clean: CleanRows, context: FileContext, settings: StockHealthSettings, day: StockDayInputs
) -> pd.DataFrame:
    store = _check_store_column(clean, context)
    parsed = _parse_quantities(clean, context.number_format)
    merged = _merge_duplicate_skus(parsed)
    rows = compute_metrics(join_reference(merged, store, day, settings), settings)
    rows["snapshot_date"] = context.date
    rows["store_id"] = store
    rows["source_file"] = context.file_name
    return rows.loc[:, list(OUTPUT_COLUMNS)].sort_values("sku", kind="stable").reset_index(drop=True)


# --- day outputs beyond the snapshot ----------------------------------------


class PurchasingSummary:
    """D_m2.csv: one row per sku across stores, built batch by batch in O(#sku) memory."""

    suffix = "_m2"

    def __init__(self) -> None:
        self._partial: pd.DataFrame | None = None
        self._date: dt.date | None = None

    @staticmethod
    def _summarise(rows: pd.DataFrame) -> pd.DataFrame:
        grouped = rows.groupby("sku", sort=False)
        summary = grouped[["product_name", "supplier_id", "supplier_name"]].first()
        summary["stores_count"] = grouped["store_id"].count()
        sums = {
            "total_stock": "stock_on_hand",
            "total_sales_qty": "sales_qty",
            "avg_daily_sales": "avg_daily_sales",
            "stores_out_of_stock": "is_out_of_stock",
            "stores_critical": "is_critical",
            "total_on_order_qty": "on_order_qty",
            "total_suggested_order_qty": "suggested_order_qty",
        }
        for target, source in sums.items():
            summary[target] = grouped[source].sum()
        summary["total_stock_value"] = grouped["stock_value"].sum(min_count=1)
        return summary

    def update(self, batch: pd.DataFrame) -> None:
        if batch.empty:
            return
        self._date = cast(dt.date, batch["snapshot_date"].iat[0])
        rows = batch.assign(
            is_out_of_stock=(batch["status"] == "out_of_stock").astype("int64"),
            is_critical=(batch["status"] == "critical").astype("int64"),
        )
        part = self._summarise(rows)
        if self._partial is None:
            self._partial = part
            return
        both = pd.concat([self._partial, part])
        grouped = both.groupby(level=0, sort=False)
        combined = grouped[["product_name", "supplier_id", "supplier_name"]].first()
        for column in part.columns.difference(combined.columns):
            combined[column] = grouped[column].sum(min_count=1 if column == "total_stock_value" else 0)
        self._partial = combined[part.columns]

    def frames(self) -> Iterator[pd.DataFrame]:
        yield self.result()

    def result(self) -> pd.DataFrame:
        if self._partial is None:
            return pd.DataFrame(columns=list(M2_COLUMNS))
        summary = self._partial.sort_index().reset_index()
        summary = summary.sort_values("sku", kind="stable")
        avg = summary["avg_daily_sales"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            summary["days_of_cover"] = np.where(avg > 0, summary["total_stock"].to_numpy(dtype=float) / avg, np.nan)
        summary["snapshot_date"] = self._date
        for column in ("stores_count", "stores_out_of_stock", "stores_critical"):
            summary[column] = summary[column].astype("int64")
        return summary.loc[:, list(M2_COLUMNS)].reset_index(drop=True)


class EmergencyList:
    """D_emergency.csv: the emergency rows, most urgent first.

    They are sorted as a whole, so they are kept until the end: as Arrow tables (a few times smaller
    than the frames they come from, and sorted by index in Arrow without copies of every column), so the
    aggregate's memory stays close to its batches' whatever the number of stores.
    """

    suffix = "_emergency"

    # Most urgent first; blank cover first (an out-of-stock item with sales has no cover at all); nulls
    # (blank cover, blank sales) first in every key, as pandas' na_position="first".
    _ORDER = (
        ("_status_rank", "ascending", "at_start"),
        ("_cover_known", "ascending", "at_start"),
        ("days_of_cover", "ascending", "at_start"),
        ("avg_daily_sales", "descending", "at_start"),
        ("store_id", "ascending", "at_start"),
        ("sku", "ascending", "at_start"),
    )
    # Rows of the sorted list made into one frame at a time when it is written.
    ROWS_PER_FRAME = 50_000

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []

    def update(self, batch: pd.DataFrame) -> None:
        urgent = batch.loc[batch["emergency"].astype(bool), list(OUTPUT_COLUMNS)]
        if not urgent.empty:
            self._parts.append(pa.Table.from_pandas(urgent, preserve_index=False))

    def result(self) -> pd.DataFrame:
        return pd.concat(list(self.frames()), ignore_index=True)

    def frames(self) -> Iterator[pd.DataFrame]:
        """The sorted rows, a frame of ROWS_PER_FRAME at a time: never the whole list as a frame."""
        if not self._parts:
            yield pd.DataFrame(columns=list(OUTPUT_COLUMNS))
            return
        # A column with no value in one batch is of null type there: the others' type wins.
        rows = pa.concat_tables(self._parts, promote_options="permissive")
        self._parts = []
        keys = pa.table(
            {
                "_status_rank": pc.index_in(rows["status"].cast(pa.string()), value_set=pa.array(EMERGENCY_STATUSES)),
                "_cover_known": pc.is_valid(rows["days_of_cover"]),
                "days_of_cover": rows["days_of_cover"],
                "avg_daily_sales": rows["avg_daily_sales"],
                "store_id": rows["store_id"],
                "sku": rows["sku"],
            }
        )
        order = pc.sort_indices(keys, sort_keys=list(self._ORDER))
        for start in range(0, len(order), self.ROWS_PER_FRAME):
            frame: pd.DataFrame = rows.take(order[start : start + self.ROWS_PER_FRAME]).to_pandas()
            yield frame


def derived_outputs(settings: Any) -> list[Any]:
    return [PurchasingSummary(), EmergencyList()]


TRANSFORM = TransformDefinition(
    settings_model=StockHealthSettings,
    rows=RowRules(required=("sku", "stock_on_hand", "sales_qty"), key="sku", labels=("product_name",)),
    snapshot=SnapshotTable(
        "stock_health_snapshots", OUTPUT_COLUMNS, sort=("store_id", "sku"), partition="store_id", status_column="status"
    ),
    transform=transform,
    # The supplier master and the day's open PO quantities, read once per run.
    prepare_day_inputs=prepare_day_inputs,
    load_day_inputs=load_day_inputs,
    derived_outputs=derived_outputs,
    pattern_groups=("store",),
)
