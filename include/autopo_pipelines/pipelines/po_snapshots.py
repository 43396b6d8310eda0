"""PO snapshots: purchase-order exports to one snapshot of every PO line and its open quantity.

The contract is docs/po_snapshots.md. Reading, header detection, numbers,
dates and rejects are the common ones (autopo_pipelines.tabular); this module
says what a PO line is.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import cast

import numpy as np
import pandas as pd
from pydantic import field_validator

from autopo_pipelines.config import StrictModel
from autopo_pipelines.date_text import accepted_forms
from autopo_pipelines.routing import normalise_store
from autopo_pipelines.tabular import parse_dates, parse_numbers, text_column
from autopo_pipelines.transform import CleanRows, FileContext, RowRules, SnapshotTable, TransformDefinition

KEY = ("po_number", "store_id", "sku")
STATUSES = ("open", "partial", "closed", "cancelled")
# A line's own values, as the export states them (after merging duplicates).
STATED = (*KEY, "supplier_id", "supplier_name", "po_date", "expected_date", "qty_ordered", "qty_received")
OUTPUT_COLUMNS = ("snapshot_date", *STATED, "qty_open", "status_norm", "days_overdue", "is_overdue", "source_file")
# What the day's merge needs of a line: derived columns are worked out again from these.
LINE_COLUMNS = (*STATED, "status", "source_file")
LATEST_COLUMNS = ("supplier_id", "supplier_name", "po_date", "expected_date", "status")
SOURCE_SEPARATOR = "; "
# Quantities are compared and subtracted at this precision (far below any unit people order in).
QUANTITY_DECIMALS = 9


class PoSnapshotSettings(StrictModel):
    # Searched case-insensitively in the export's status text.
    cancelled_status: str = "cancel|batal|void"
    closed_status: str = "closed|complete|selesai"

    @field_validator("cancelled_status", "closed_status")
    @classmethod
    def _is_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


# --- one file ----------------------------------------------------------------------


def _store_ids(clean: CleanRows, context: FileContext) -> pd.Series:
    """The store column where the row has one, else the file name's store; None when neither."""
    from_name = normalise_store(context.store_id) if context.store_id else None
    if "store_id" not in clean.frame.columns:
        return pd.Series([from_name] * len(clean.frame), dtype=object)
    stated = text_column(clean.frame["store_id"]).map(normalise_store, na_action="ignore")
    return stated.where(stated.notna(), from_name).astype(object)


def _parse_lines(clean: CleanRows, context: FileContext, settings: PoSnapshotSettings) -> pd.DataFrame:
    """The file's lines with typed values; unparseable lines go to the rejects, leftmost problem first."""
    frame, rejects, fmt = clean.frame, clean.rejects, context.number_format
    lines = pd.DataFrame({"po_number": text_column(frame["po_number"])})
    lines["sku"] = text_column(frame["sku"])
    rejects.reject(lines["sku"].isna(), rejects.column_reason("sku", "is blank"))
    ordered = parse_numbers(frame["qty_ordered"], fmt)
    rejects.reject(ordered.bad, rejects.column_reason("qty_ordered", "not a number"))
    rejects.reject(ordered.blank, rejects.column_reason("qty_ordered", "is blank"))
    rejects.reject(ordered.values < 0, rejects.column_reason("qty_ordered", "is negative"))
    lines["qty_ordered"] = ordered.values
    if "qty_received" in frame:
        received = parse_numbers(frame["qty_received"], fmt)
        rejects.reject(received.bad, rejects.column_reason("qty_received", "not a number"))
        rejects.reject(received.values < 0, rejects.column_reason("qty_received", "is negative"))
        lines["qty_received"] = received.values.fillna(0.0)
    else:
        lines["qty_received"] = 0.0
    lines["store_id"] = _store_ids(clean, context)
    reason = "no store: the row's store column is blank and the file name carries none"
    rejects.reject(lines["store_id"].isna(), reason)
    for column in ("supplier_id", "supplier_name", "status"):
        lines[column] = text_column(frame[column]) if column in frame else None
    order = context.date_format.order
    for column in ("po_date", "expected_date"):
        if column not in frame:
            lines[column] = None
            continue
        dates = parse_dates(frame[column], order)
        rejects.reject(dates.bad, rejects.column_reason(column, f"not a date (expected {accepted_forms(order)})"))
        lines[column] = dates.values
    lines["source_file"] = context.file_name
    return lines.loc[~rejects.mask, list(LINE_COLUMNS)].reset_index(drop=True)


def merge_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (po_number, store_id, sku): quantities summed, the latest non-blank dates,
    status and supplier kept. ``lines`` are in arrival order, latest last."""
    if not lines.duplicated(list(KEY)).any():
        return lines
    grouped = lines.groupby(list(KEY), sort=False)
    # Rounded: 0.1 + 0.2 ordered against 0.3 received is fully received, not 5.6e-17 open.
    merged = grouped[["qty_ordered", "qty_received"]].sum().round(QUANTITY_DECIMALS)
    # groupby.last skips missing values: the latest non-blank value of each column.
    merged[list(LATEST_COLUMNS)] = grouped[list(LATEST_COLUMNS)].last()
    merged["source_file"] = grouped["source_file"].agg(lambda names: SOURCE_SEPARATOR.join(dict.fromkeys(names)))
    return merged.reset_index().loc[:, list(LINE_COLUMNS)]


def derive(lines: pd.DataFrame, date: dt.date, settings: PoSnapshotSettings) -> pd.DataFrame:
    """The contract's status_norm, qty_open and overdue days for business date ``date``."""
    out = lines.copy()
    ordered = out["qty_ordered"].to_numpy(dtype=float)
    received = out["qty_received"].to_numpy(dtype=float)
    status = out["status"].fillna("").astype(str)
    cancelled = status.str.contains(settings.cancelled_status, case=False, regex=True).to_numpy(dtype=bool)
    said_closed = status.str.contains(settings.closed_status, case=False, regex=True).to_numpy(dtype=bool)
    closed = (received >= ordered) | said_closed
    partial = (received > 0) & (received < ordered)
    out["status_norm"] = np.select([cancelled, closed, partial], ["cancelled", "closed", "partial"], default="open")
    out["qty_open"] = np.where(cancelled | closed, 0.0, np.round(ordered - received, QUANTITY_DECIMALS))
    late = [
        (date - expected).days if isinstance(expected, dt.date) and expected < date and open_qty > 0 else 0
        for expected, open_qty in zip(out["expected_date"], out["qty_open"], strict=True)
    ]
    out["days_overdue"] = pd.Series(late, index=out.index, dtype="int64")
    out["is_overdue"] = out["days_overdue"] > 0
    out["snapshot_date"] = date
    # The export's own status text rides along (not written): a merge with another file derives again from it.
    return out.loc[:, [*OUTPUT_COLUMNS, "status"]]


def transform(clean: CleanRows, context: FileContext, settings: PoSnapshotSettings, day: None) -> pd.DataFrame:
    lines = merge_lines(_parse_lines(clean, context, settings))
    rows = derive(lines, context.date, settings)
    return rows.sort_values(list(KEY), kind="stable").reset_index(drop=True)


# --- the day -------------------------------------------------------------------------


def merge_day_rows(rows: pd.DataFrame, settings: PoSnapshotSettings) -> pd.DataFrame:
    """The same PO line in several of the day's files is one line: merged, then derived again."""
    if rows.empty or not rows.duplicated(list(KEY)).any():
        return rows
    date = cast(dt.date, rows["snapshot_date"].iat[0])
    return derive(merge_lines(rows.loc[:, list(LINE_COLUMNS)]), date, settings)


TRANSFORM = TransformDefinition(
    settings_model=PoSnapshotSettings,
    rows=RowRules(required=("po_number", "sku", "qty_ordered"), key="po_number", labels=("sku",)),
    # No partition: lines of one PO may sit in any of the day's files, so the day is merged whole.
    snapshot=SnapshotTable("po_snapshots", OUTPUT_COLUMNS, sort=KEY, status_column="status_norm"),
    transform=transform,
    merge_day_rows=merge_day_rows,
)
