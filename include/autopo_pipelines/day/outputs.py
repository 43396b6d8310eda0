"""The day's outputs: aggregate_and_flush writes the CSV files from the parts, load_snapshot
replaces the date's rows in the warehouse, and the row accounting both report."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from autopo_pipelines.aggregate import write_day_outputs
from autopo_pipelines.day.core import Day
from autopo_pipelines.day.parts import baseline, collect_parts
from autopo_pipelines.day.state import AggregateRecord, LoadedParts, LoadRecord, now_iso
from autopo_pipelines.layout import date_stamp
from autopo_pipelines.warehouse import replace_date_rows

log = logging.getLogger(__name__)


def aggregate_day(day: Day) -> dict[str, Any] | None:
    """Write the day's outputs from this run's parts; None when no file succeeded."""
    listing = day.listing()
    if listing is None or day.run_id is None:
        raise LookupError(f"{day.describe()}: the files were not listed in this run")
    parts = collect_parts(day, listing)
    day.state.forget_load()
    if not parts.parts:
        day.state.save_aggregate(AggregateRecord(run_id=day.run_id, failed=parts.failed))
        return None
    outputs = write_day_outputs(
        parts.parts,
        seeds_dir=day.seeds,
        date=day.date,
        definition=day.definition,
        settings=day.settings,
        aggregation=day.config.aggregation,
    )
    record = AggregateRecord(
        run_id=day.run_id,
        failed=parts.failed,
        outputs=asdict(outputs),
        aggregate_id=uuid.uuid4().hex,
        parts=parts.directories,
        files=[{**p.meta, "part": str(p.directory)} for p in parts.parts],
        snapshot_csv=outputs.files[f"{date_stamp(day.date)}.csv"],
    )
    day.state.save_aggregate(record)
    return {"snapshot_csv": record.snapshot_csv, "rows_out": outputs.rows_out, "failed_files": len(parts.failed)}


@dataclass(frozen=True)
class RowAccounting:
    """Where every row of the day's transformed files went."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    rows_skipped: dict[str, int]
    # Duplicates folded into another row of the snapshot (the same SKU twice in a
    # store's file, the same PO line in two exports); what the other counts leave.
    rows_merged: int

    @property
    def skipped(self) -> int:
        return sum(self.rows_skipped.values())


def row_accounting(aggregate: AggregateRecord | None) -> RowAccounting:
    """The counts of an aggregate: rows in = out + merged + skipped + rejected."""
    parts = aggregate.files if aggregate is not None else []
    outputs = (aggregate.outputs if aggregate is not None else None) or {}
    skipped: dict[str, int] = {}
    for part in parts:
        for kind, count in part["rows_skipped"].items():
            skipped[kind] = skipped.get(kind, 0) + int(count)
    rows_in = sum(int(p["rows_in"]) for p in parts)
    rows_out = int(outputs.get("rows_out", 0))
    rejected = int(outputs.get("rows_rejected", 0))
    return RowAccounting(rows_in, rows_out, rejected, skipped, rows_in - rows_out - rejected - sum(skipped.values()))


def load_day(day: Day) -> int:
    """Replace the date's rows in the warehouse with this run's aggregate."""
    aggregate = day.state.aggregate()
    if (
        aggregate is None
        or aggregate.run_id != day.run_id
        or not aggregate.outputs
        or aggregate.snapshot_csv is None
        or aggregate.aggregate_id is None
    ):
        raise LookupError(f"{day.describe()}: nothing aggregated in this run; run aggregate_and_flush first")
    if day.conninfo is None:
        raise ValueError(f"{day.describe()}: loading needs the warehouse")
    table = day.definition.snapshot
    rows = replace_date_rows(
        day.conninfo,
        table=table.name,
        date_column=table.date_column,
        date=day.date,
        csv_path=day.layout.locate(aggregate.snapshot_csv),
        columns=table.columns,
    )
    # What the warehouse now holds for the date, part by part: what a later run keeps of a file it has
    # no good version of.
    day.state.save_loaded_parts(
        LoadedParts(
            run_id=aggregate.run_id,
            aggregate_id=aggregate.aggregate_id,
            files=aggregate.files,
            baseline=baseline(day),
        )
    )
    day.state.save_load(
        LoadRecord(
            run_id=aggregate.run_id,
            aggregate_id=aggregate.aggregate_id,
            table=table.name,
            rows=rows,
            loaded_at=now_iso(),
        )
    )
    return rows
