"""A third pipeline, defined only here: each store's shelf price list to a daily price snapshot.

Nothing outside this module, its config and its table's migration (both written
by the test) knows of it: the factory, reading, rejects, aggregation, loading and
tracking are shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autopo_pipelines.config import StrictModel
from autopo_pipelines.routing import normalise_store
from autopo_pipelines.tabular import parse_numbers, text_column
from autopo_pipelines.transform import CleanRows, FileContext, RowRules, SnapshotTable, TransformDefinition

OUTPUT_COLUMNS = ("snapshot_date", "store_id", "sku", "price", "promo_price", "discount_pct", "source_file")


class StorePriceSettings(StrictModel):
    # A promotion deeper than this is a typo in the export, not a price.
    max_discount_pct: float = 90.0


def transform(clean: CleanRows, context: FileContext, settings: StorePriceSettings, day: None) -> pd.DataFrame:
    frame, rejects = clean.frame, clean.rejects
    price = parse_numbers(frame["price"], context.number_format)
    rejects.reject(price.bad | price.blank, rejects.column_reason("price", "not a price"))
    rejects.reject(price.values <= 0, rejects.column_reason("price", "must be positive"))
    promo = parse_numbers(frame["promo_price"], context.number_format) if "promo_price" in frame else None
    rows = pd.DataFrame({"sku": text_column(frame["sku"]), "price": price.values})
    rows["promo_price"] = promo.values if promo is not None else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rows["discount_pct"] = (1 - rows["promo_price"] / rows["price"]) * 100
    rejects.reject(rows["discount_pct"] > settings.max_discount_pct, rejects.column_reason("promo_price", "too deep"))
    rows = rows.loc[~rejects.mask].drop_duplicates("sku", keep="last")
    rows["snapshot_date"] = context.date
    rows["store_id"] = normalise_store(context.store_id or "")
    rows["source_file"] = context.file_name
    return rows.loc[:, list(OUTPUT_COLUMNS)].sort_values("sku").reset_index(drop=True)


TRANSFORM = TransformDefinition(
    settings_model=StorePriceSettings,
    rows=RowRules(required=("sku", "price"), key="sku"),
    # Its table is a migration, like every table: the test adds it to a copy of migrations/.
    snapshot=SnapshotTable("store_prices", OUTPUT_COLUMNS, sort=("store_id", "sku"), partition="store_id"),
    transform=transform,
    pattern_groups=("store",),
)
