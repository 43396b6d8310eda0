"""The steps of one pipeline day, as plain functions the DAG's tasks call.

Each step reads and writes only the date's intermediate folder, the seeds
folder and the warehouse, so a step can be rerun (a retry, a cleared task)
and finds what the others left: the state of the day is on disk, not in
XComs that a cleared upstream would lose.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autopo_pipelines.aggregate import Part, part_directory, read_part_meta, write_day_outputs, write_part
from autopo_pipelines.config import PipelineConfig, load_transform, transform_settings
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.layout import DataLayout, date_stamp
from autopo_pipelines.pipeline import DayContext, transform_file
from autopo_pipelines.routing import RoutedFile, route_files
from autopo_pipelines.sources import Source, SourceFile
from autopo_pipelines.sources.local import LocalFolderSource, sha256_of
from autopo_pipelines.warehouse import replace_date_rows

LISTING = "listing.json"
AGGREGATE = "aggregate.json"
LOAD = "load.json"
FAILURES = "failures"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_json(path: Path, payload: Any) -> None:
    """Write-then-rename so a reader never sees half a state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def source_for(config: PipelineConfig, layout: DataLayout) -> Source:
    return LocalFolderSource(layout.resolve(config.source.path, layout.inbox(config.name)))


def source_description(config: PipelineConfig, layout: DataLayout) -> str:
    return str(layout.resolve(config.source.path, layout.inbox(config.name)))


def day_context(config: PipelineConfig, layout: DataLayout, date: dt.date, conninfo: str | None) -> DayContext:
    return DayContext(pipeline=config.name, date=date, data_root=layout.root, warehouse_conninfo=conninfo)


# --- sensing and listing -------------------------------------------------------


def files_present(config: PipelineConfig, layout: DataLayout, date: dt.date) -> list[str]:
    """Names of the date's routable files, without reading their content."""
    source = source_for(config, layout)
    names = source.names() if isinstance(source, LocalFolderSource) else [f.name for f in source.list_files()]
    stub = [SourceFile(name=n, location=n, size_bytes=0, modified=0.0, checksum="") for n in names]
    return [r.file.name for r in route_files(stub, config.compiled_pattern, date).routed]


@dataclass(frozen=True)
class FileTask:
    """What one mapped transform needs: small enough for an XCom."""

    name: str
    location: str
    size_bytes: int
    modified: float
    checksum: str
    store_id: str | None
    conflict: str | None

    @classmethod
    def from_routed(cls, routed: RoutedFile) -> FileTask:
        f = routed.file
        return cls(f.name, f.location, f.size_bytes, f.modified, f.checksum, routed.store_id, routed.conflict)

    def source_file(self) -> SourceFile:
        return SourceFile(self.name, self.location, self.size_bytes, self.modified, self.checksum)


def list_day_files(
    config: PipelineConfig, layout: DataLayout, date: dt.date, conninfo: str | None = None
) -> list[FileTask]:
    """List and route the date's files; check the day's reference data before any transform."""
    definition = load_transform(config.transform)
    # Malformed reference data must stop the day before any file is transformed.
    definition.load_day_inputs(day_context(config, layout, date, conninfo), transform_settings(config))
    intermediate = layout.intermediate(config.name, date)
    # A new listing starts a new attempt at the day: earlier outcomes must not be mistaken for its own.
    for stale in (LISTING, AGGREGATE, LOAD):
        (intermediate / stale).unlink(missing_ok=True)
    source = source_for(config, layout)
    files = source.list_files()
    routing = route_files(files, config.compiled_pattern, date, duplicates=config.duplicate_store_files)
    tasks = [FileTask.from_routed(r) for r in routing.routed]
    write_json(
        intermediate / LISTING,
        {
            "date": date.isoformat(),
            "files_seen": len(files),
            "routed": [asdict(t) for t in tasks],
            "unrouted": [{"name": u.file.name, "reason": u.reason} for u in routing.unrouted],
            "superseded": [{"name": u.file.name, "reason": u.reason} for u in routing.superseded],
            "other_dates": routing.other_dates,
        },
    )
    return tasks


# --- one file --------------------------------------------------------------------


def _failure_path(intermediate: Path, name: str) -> Path:
    return intermediate / FAILURES / f"{_UNSAFE.sub('_', name)}.json"


def run_file(
    config: PipelineConfig, layout: DataLayout, date: dt.date, task: FileTask, conninfo: str | None = None
) -> dict[str, Any]:
    """Transform one file into its part; record a failure where the day's summary finds it."""
    intermediate = layout.intermediate(config.name, date)
    failure = _failure_path(intermediate, task.name)
    try:
        if task.conflict:
            raise InputFileError(task.name, task.conflict)
        source = source_for(config, layout)
        local = source.fetch(task.source_file(), intermediate / "downloads")
        # The content read is what the part is keyed on, even if the file changed since listing.
        checksum = sha256_of(local) if isinstance(source, LocalFolderSource) else task.checksum
        definition = load_transform(config.transform)
        settings = transform_settings(config)
        day_inputs = definition.load_day_inputs(day_context(config, layout, date, conninfo), settings)
        outcome = transform_file(
            local,
            config=config,
            definition=definition,
            settings=settings,
            day_inputs=day_inputs,
            date=date,
            store_id=task.store_id,
            file_name=task.name,
        )
    except InputFileError as exc:
        write_json(failure, {"file_name": task.name, "checksum": task.checksum, "error": str(exc)})
        raise
    meta = write_part(
        part_directory(intermediate, task.name, checksum),
        outcome,
        {
            "file_name": task.name,
            "file_path": task.location,
            "checksum": checksum,
            "size_bytes": task.size_bytes,
            "store_id": task.store_id,
            "partition": task.store_id if definition.partition_column == "store_id" else None,
        },
    )
    failure.unlink(missing_ok=True)
    return meta


# --- the day ----------------------------------------------------------------------


@dataclass(frozen=True)
class DayParts:
    parts: list[Part]
    failed: list[dict[str, Any]]


def collect_parts(config: PipelineConfig, layout: DataLayout, date: dt.date) -> DayParts:
    """The parts of the files routed for the date; a routed file without one failed."""
    intermediate = layout.intermediate(config.name, date)
    listing = read_json(intermediate / LISTING)
    if listing is None:
        raise RuntimeError(f"no file listing for {config.name} {date}: run list_files first")
    parts: list[Part] = []
    failed: list[dict[str, Any]] = []
    for routed in listing["routed"]:
        directory = part_directory(intermediate, routed["name"], routed["checksum"])
        meta = read_part_meta(directory)
        if meta is None:
            # A local file replaced after listing is keyed on the content the transform read.
            meta, directory = _latest_part(intermediate, routed["name"])
        if meta is not None:
            parts.append(Part(directory=directory, meta=meta))
            continue
        record = read_json(_failure_path(intermediate, routed["name"])) or {
            "file_name": routed["name"],
            "error": "not transformed (its task did not finish)",
        }
        failed.append(record)
    return DayParts(parts=parts, failed=failed)


def _latest_part(intermediate: Path, name: str) -> tuple[dict[str, Any] | None, Path]:
    prefix = f"{_UNSAFE.sub('_', name)}."
    candidates = sorted(
        (p for p in (intermediate / "parts").glob(f"{prefix}*") if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for directory in candidates:
        meta = read_part_meta(directory)
        if meta is not None and meta.get("file_name") == name:
            return meta, directory
    return None, intermediate


def aggregate_day(config: PipelineConfig, layout: DataLayout, date: dt.date) -> dict[str, Any] | None:
    """Write the day's outputs from the parts; None when no file succeeded."""
    day = collect_parts(config, layout, date)
    intermediate = layout.intermediate(config.name, date)
    (intermediate / LOAD).unlink(missing_ok=True)
    if not day.parts:
        write_json(intermediate / AGGREGATE, {"outputs": None, "failed": day.failed})
        return None
    definition = load_transform(config.transform)
    outputs = write_day_outputs(
        day.parts,
        seeds_dir=layout.seeds(config.name),
        date=date,
        definition=definition,
        settings=transform_settings(config),
        aggregation=config.aggregation,
    )
    summary = {
        "outputs": asdict(outputs),
        "failed": day.failed,
        "files": [p.meta for p in day.parts],
        "snapshot_csv": outputs.files[f"{date_stamp(date)}.csv"],
    }
    write_json(intermediate / AGGREGATE, summary)
    return {"snapshot_csv": summary["snapshot_csv"], "rows_out": outputs.rows_out, "failed_files": len(day.failed)}


def load_day(config: PipelineConfig, layout: DataLayout, date: dt.date, conninfo: str) -> int:
    definition = load_transform(config.transform)
    aggregate = read_json(layout.intermediate(config.name, date) / AGGREGATE)
    if not aggregate or not aggregate.get("outputs"):
        raise RuntimeError(f"nothing aggregated for {config.name} {date}: run aggregate_and_flush first")
    rows = replace_date_rows(
        conninfo,
        table=definition.table,
        date_column=definition.date_column,
        date=date,
        csv_path=Path(aggregate["snapshot_csv"]),
        columns=definition.output_columns,
    )
    write_json(
        layout.intermediate(config.name, date) / LOAD,
        {"table": definition.table, "rows": rows, "loaded_at": dt.datetime.now(dt.UTC).isoformat()},
    )
    return rows


def day_problems(config: PipelineConfig, layout: DataLayout, date: dt.date) -> list[str]:
    """Why the day is not complete, in words for the run's log; empty when it is."""
    intermediate = layout.intermediate(config.name, date)
    listing = read_json(intermediate / LISTING)
    if listing is None:
        if not files_present(config, layout, date):
            return [f"no {config.name} files for {date.isoformat()} at {source_description(config, layout)}"]
        return ["the day's files were not listed (see the list_files task)"]
    if not listing["routed"]:
        return [f"no file for {date.isoformat()} matched the pipeline's file pattern"]
    problems = [str(failure["error"]) for failure in collect_parts(config, layout, date).failed]
    aggregate = read_json(intermediate / AGGREGATE)
    if aggregate is None:
        problems.append("the day's outputs were not written (see the aggregate_and_flush task)")
    elif aggregate.get("outputs") and read_json(intermediate / LOAD) is None:
        problems.append("the snapshot was not loaded into the warehouse (see the load_snapshot task)")
    return problems
