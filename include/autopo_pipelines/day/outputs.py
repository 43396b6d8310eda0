"""The day's outputs: aggregate_and_flush writes the CSV files from the parts, load_snapshot
replaces the date's rows in the warehouse, and the row accounting both report."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from autopo_pipelines import storage
from autopo_pipelines.aggregate import Part, PartialOutput, write_day_outputs
from autopo_pipelines.day.core import Day
from autopo_pipelines.day.parts import baseline, collect_parts
from autopo_pipelines.day.state import AggregateRecord, LoadedParts, LoadRecord, now_iso
from autopo_pipelines.layout import date_stamp
from autopo_pipelines.warehouse import StaleBaseError, replace_date_partitions, replace_date_rows

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
    plan = partial_load_plan(day, parts.parts)
    partial_csv = day.state.partial_load_csv()
    storage.remove(partial_csv)
    outputs = write_day_outputs(
        parts.parts,
        seeds_dir=day.seeds,
        date=day.date,
        definition=day.definition,
        settings=day.settings,
        aggregation=day.config.aggregation,
        partial=PartialOutput(partial_csv, frozenset(plan.partitions)) if plan is not None else None,
    )
    if plan is not None:
        plan = dataclasses.replace(plan, csv=str(partial_csv))
        log.info(
            "%s: %d of %d partition(s) changed since the last load (%d rows): the load swaps in those alone",
            day.describe(),
            len(plan.partitions),
            len({part.partition for part in parts.parts}),
            outputs.partial_rows,
        )
    record = AggregateRecord(
        run_id=day.run_id,
        failed=parts.failed,
        outputs=asdict(outputs),
        aggregate_id=uuid.uuid4().hex,
        parts=parts.directories,
        files=[{**p.meta, "part": str(p.directory)} for p in parts.parts],
        snapshot_csv=outputs.files[f"{date_stamp(day.date)}.csv"],
        partial_load=plan.to_json() if plan is not None else None,
    )
    day.state.save_aggregate(record)
    return {"snapshot_csv": record.snapshot_csv, "rows_out": outputs.rows_out, "failed_files": len(parts.failed)}


def _load_partially(day: Day, aggregate: AggregateRecord) -> int | None:
    """The changed partitions' rows swapped in; None when the date no longer holds the load the
    aggregate's partial rows were made against (the whole date is loaded instead)."""
    assert aggregate.partial_load is not None and day.conninfo is not None
    plan = PartialLoad.from_json(aggregate.partial_load)
    loaded = day.state.loaded_parts()
    table = day.definition.snapshot
    if plan.csv is None or table.partition is None or loaded is None or loaded.aggregate_id != plan.base_aggregate_id:
        return None
    try:
        return replace_date_partitions(
            day.conninfo,
            table=table.name,
            date_column=table.date_column,
            date=day.date,
            partition_column=table.partition,
            partitions=plan.partitions,
            csv_path=day.layout.locate(plan.csv),
            columns=table.columns,
            rows_before=plan.rows_before,
        )
    except StaleBaseError as exc:
        log.warning("%s: %s; loading the whole date", day.describe(), exc)
        return None


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


# Above this share of a day's partitions changed, the whole date is loaded (stage and swap): deleting and
# inserting most of a date's rows in place costs more than building it anew, and leaves dead rows.
PARTIAL_LOAD_MAX_SHARE = 0.5


@dataclass(frozen=True)
class PartialLoad:
    """The partitions (stores) whose parts differ from the date's last load, and that load: what a
    load of only those partitions' rows is made against (warehouse.replace_date_partitions)."""

    partitions: list[str]
    base_aggregate_id: str
    rows_before: int
    csv: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PartialLoad:
        return cls(list(raw["partitions"]), raw["base_aggregate_id"], int(raw["rows_before"]), raw.get("csv"))


def partial_load_plan(day: Day, parts: list[Part]) -> PartialLoad | None:
    """What changed since the date's last load, partition by partition, when a load of those partitions
    alone can stand for the whole date's: the snapshot has a partition column, every part (then and now)
    is of one partition, the last load's rows are known, and at most PARTIAL_LOAD_MAX_SHARE changed."""
    loaded = day.state.loaded_parts()
    if day.definition.snapshot.partition is None or loaded is None or loaded.rows is None:
        return None
    # A part is its directory (the file and its checksum) and the inputs it was made with: a part made
    # again with other reference data keeps its directory.
    then = _parts_by_partition(
        [(str(meta.get("partition") or ""), f"{meta.get('part')} {meta.get('inputs')}") for meta in loaded.files]
    )
    now = _parts_by_partition([(part.partition, f"{part.directory} {part.meta.get('inputs')}") for part in parts])
    if then is None or now is None:
        return None
    changed = sorted(p for p in set(then) | set(now) if then.get(p) != now.get(p))
    if len(changed) > PARTIAL_LOAD_MAX_SHARE * max(len(now), 1):
        return None
    return PartialLoad(changed, loaded.aggregate_id, loaded.rows)


def _parts_by_partition(parts: list[tuple[str, str]]) -> dict[str, list[str]] | None:
    """Partition -> its parts' identities; None when a part is of no one partition."""
    grouped: dict[str, list[str]] = {}
    for partition, directory in parts:
        if not partition:
            return None
        grouped.setdefault(partition, []).append(directory)
    return {partition: sorted(directories) for partition, directories in grouped.items()}


def load_day(day: Day) -> int:
    """Replace the date's rows in the warehouse with this run's aggregate: only the changed partitions'
    rows where the aggregate wrote them against the load the date holds, else the whole date."""
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
    rows = _load_partially(day, aggregate) if aggregate.partial_load else None
    if rows is None:
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
            rows=rows,
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
