"""The day's outputs written from stock_health parts, as aggregate_and_flush writes them: what the aggregate's
tests share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from autopo_pipelines.aggregate import DayOutputs, Part, PartialOutput, write_day_outputs
from autopo_pipelines.config import AggregationConfig
from autopo_pipelines.pipelines import stock_health

DAY = dt.date(2024, 12, 4)


def write_stock_health_day(
    parts: Sequence[Part], seeds: Path, *, partial: frozenset[str] = frozenset(), **aggregation: int
) -> DayOutputs:
    """DAY's outputs into ``seeds`` (batched as ``aggregation`` says, the config's defaults otherwise); with
    ``partial``, also those stores' rows alone in ``seeds/partial.csv``."""
    return write_day_outputs(
        parts,
        seeds_dir=seeds,
        date=DAY,
        definition=stock_health.TRANSFORM,
        settings=stock_health.StockHealthSettings(),
        aggregation=AggregationConfig(**aggregation),
        partial=PartialOutput(seeds / "partial.csv", partial) if partial else None,
    )
