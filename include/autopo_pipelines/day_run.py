"""The steps of one pipeline day, as plain functions the DAG's tasks call.

The state of a day lives on disk in its intermediate folder, stamped with the
Airflow run that wrote it, so any step can be retried or cleared and rerun
and still tell its own run's results from an earlier run's:

- ``listing.json``: the files routed for the date, written by ``list_files``,
  with the notes and fingerprint of the day's reference data, and the files'
  batches: batch ``i`` is what the ``transform_file`` task of map index ``i`` runs;
- ``inputs/``: that reference data (a supplier master, open PO quantities),
  read once per run so every file of the run is transformed with the same;
- ``results/<key>.json``: each file's outcome in this run (completed,
  skipped because unchanged, or failed with its error) and its part;
- ``parts/<key>.<checksum>/``: a transformed file (see ``aggregate``);
- ``downloads/<key>/``: the local copy of a file fetched from its source.

A file's ``<key>`` is its identity at the source (``layout.file_key``: its path, gs://
URI or Drive id), never its display name, which two files may share.
- ``aggregate.json`` and ``load.json``: which parts the day's outputs were
  built from, and which aggregate the warehouse holds;
- ``loaded_parts.json``: the parts of the snapshot last loaded, which a later run of
  the date keeps for a file that has since gone from the source or whose new version
  failed (``collect_parts``): a rerun never drops a file's rows silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from autopo_pipelines.aggregate import Part, part_directory, read_part_meta, write_day_outputs, write_part
from autopo_pipelines.config import PipelineConfig, files_per_task_for, load_transform, transform_settings
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.layout import DataLayout, date_stamp, file_key
from autopo_pipelines.pipeline import DayContext, TransformDefinition, transform_file
from autopo_pipelines.routing import RoutedFile, UnroutedFile, normalise_store, route_files, separate_identical
from autopo_pipelines.sources import Source, SourceFile
from autopo_pipelines.sources.local import LocalFolderSource, sha256_of
from autopo_pipelines.warehouse import create_table_if_missing, replace_date_rows

LISTING = "listing.json"
AGGREGATE = "aggregate.json"
LOAD = "load.json"
# The parts of the snapshot the warehouse holds for the date: each file's latest good version.
LOADED_PARTS = "loaded_parts.json"
INPUTS = "inputs"
RESULTS = "results"

log = logging.getLogger(__name__)


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
    if config.source.kind == "gcs":
        from autopo_pipelines.sources.gcs import GcsSource  # the Google provider only when used

        return GcsSource(config.source.bucket, config.source.prefix, config.source.gcp_conn_id)
    if config.source.kind == "gdrive":
        from autopo_pipelines.sources.gdrive import GdriveSource  # the Google provider only when used

        return GdriveSource(config.source.folder_id, config.source.drive_id, config.source.gcp_conn_id)
    return LocalFolderSource(layout.resolve(config.source.path, layout.inbox(config.name)))


def seeds_dir(config: PipelineConfig, layout: DataLayout) -> Path:
    return layout.resolve(config.output_dir, layout.seeds(config.name))


def day_context(config: PipelineConfig, layout: DataLayout, date: dt.date, conninfo: str | None) -> DayContext:
    return DayContext(pipeline=config.name, date=date, data_root=layout.root, warehouse_conninfo=conninfo)


# --- sensing and listing -------------------------------------------------------


def files_present(config: PipelineConfig, layout: DataLayout, date: dt.date) -> list[str]:
    """Names of the date's routable files, from the source's cheap listing."""
    return [r.file.name for r in _routed(config, layout, date)]


def _routed(config: PipelineConfig, layout: DataLayout, date: dt.date) -> list[RoutedFile]:
    return route_files(source_for(config, layout).list_files(), config.compiled_pattern, date).routed


def missing_stores(config: PipelineConfig, stores: set[str | None]) -> list[str]:
    return sorted({normalise_store(s) for s in config.expected_stores} - stores)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    files: list[str]
    missing_stores: list[str]
    reason: str


def readiness(config: PipelineConfig, layout: DataLayout, date: dt.date, now: dt.datetime) -> Readiness:
    """Whether the day can start: every expected store has sent a file, or the cutoff has passed
    with at least one file; with no expected stores, as soon as one file is there."""
    routed = _routed(config, layout, date)
    names = [r.file.name for r in routed]
    missing = missing_stores(config, {r.store_id for r in routed})
    if not routed:
        return Readiness(False, names, missing, "no file yet")
    if not config.expected_stores or not missing:
        return Readiness(True, names, missing, "every expected store has sent a file")
    cutoff = config.cutoff_moment(date)
    if cutoff is not None and now >= cutoff:
        return Readiness(True, names, missing, f"cutoff {cutoff.isoformat()} passed; going on without {missing}")
    until = f" until {cutoff.isoformat()}" if cutoff else ""
    return Readiness(False, names, missing, f"waiting for {missing}{until}")


@dataclass(frozen=True)
class FileTask:
    """What one mapped transform needs: small enough for an XCom."""

    name: str
    location: str
    size_bytes: int
    modified: float
    store_id: str | None
    conflict: str | None

    @classmethod
    def from_routed(cls, routed: RoutedFile) -> FileTask:
        f = routed.file
        return cls(f.name, f.location, f.size_bytes, f.modified, routed.store_id, routed.conflict)

    def source_file(self) -> SourceFile:
        return SourceFile(self.name, self.location, self.size_bytes, self.modified)

    @property
    def key(self) -> str:
        return file_key(self.location, self.name)


# Airflow's own default for [core] max_map_length, for callers outside a running task.
DEFAULT_MAX_MAP_LENGTH = 1024


def batch_size(files: int, files_per_task: int, max_map_length: int) -> int:
    """Files per mapped task: the configured number, or more when that would need more tasks than
    Airflow maps (it fails the listing task's XCom push past max_map_length)."""
    if files_per_task < 1 or max_map_length < 1:
        raise ValueError(f"files_per_task ({files_per_task}) and max_map_length ({max_map_length}) must be >= 1")
    return max(files_per_task, math.ceil(files / max_map_length))


def batch_files(tasks: list[FileTask], files_per_task: int, max_map_length: int) -> list[list[FileTask]]:
    """The files in consecutive batches, in listing order: at most max_map_length batches."""
    size = batch_size(len(tasks), files_per_task, max_map_length)
    return [tasks[start : start + size] for start in range(0, len(tasks), size)]


def list_day_files(
    config: PipelineConfig,
    layout: DataLayout,
    date: dt.date,
    run_id: str,
    conninfo: str | None = None,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
) -> list[FileTask]:
    """List and route the date's files for this run, in listing order (see list_day_batches)."""
    batches = list_day_batches(config, layout, date, run_id, conninfo, max_map_length)
    return [task for batch in batches for task in batch]


def list_day_batches(
    config: PipelineConfig,
    layout: DataLayout,
    date: dt.date,
    run_id: str,
    conninfo: str | None = None,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    *,
    drop_missing: bool = False,
) -> list[list[FileTask]]:
    """List and route the date's files for this run; check the reference data before any transform.

    Returns the files in the batches the mapped transform tasks run, one batch per map index.
    ``drop_missing`` (run conf): the files no longer at the source lose their rows in this run's
    snapshot, instead of keeping their last good version's.
    """
    intermediate = layout.intermediate(config.name, date)
    # A new listing starts a new attempt at the day: clear the previous attempt's
    # state first, so nothing downstream can mistake it for this run's.
    for stale in (LISTING, AGGREGATE, LOAD):
        (intermediate / stale).unlink(missing_ok=True)
    inputs = prepare_day_inputs(config, layout, date, conninfo)
    for note in inputs["notes"]:
        # Warning level: the run's log shows it among the few lines people read.
        log.warning("%s %s: %s", config.name, date, note)
    source = source_for(config, layout)
    files = source.list_files()
    routing = route_files(files, config.compiled_pattern, date, duplicates=config.duplicate_store_files)
    routing.routed, copies = separate_identical(routing.routed, _checksums_of_same_sized(source, routing.routed))
    routing.superseded.extend(copies)
    for skipped in [*routing.unrouted, *routing.superseded]:
        log.warning("not processed: %s: %s", skipped.file.name, skipped.reason)
    log.info(
        "%s %s: %d file(s) at %s, %d for the date, %d unrouted, %d superseded, %d for other dates",
        config.name,
        date,
        len(files),
        source.describe(),
        len(routing.routed),
        len(routing.unrouted),
        len(routing.superseded),
        routing.other_dates,
    )
    tasks = [FileTask.from_routed(r) for r in routing.routed]
    wanted = files_per_task_for(config.airflow, len(tasks))
    size = batch_size(len(tasks), wanted, max_map_length)
    if size > wanted:
        log.warning(
            "%s %s: %d files at %d per task would need more mapped tasks than Airflow's [core] max_map_length "
            "(%d): %d files per task instead",
            config.name,
            date,
            len(tasks),
            wanted,
            max_map_length,
            size,
        )
    elif size > 1:
        log.info("%s %s: %d files in batches of %d per transform_file task", config.name, date, len(tasks), size)
    batches = batch_files(tasks, size, max_map_length)
    missing = missing_stores(config, {r.store_id for r in routing.routed})
    if missing:
        log.warning("%s %s: no file from the expected store(s) %s", config.name, date, ", ".join(missing))
    write_json(
        intermediate / LISTING,
        {
            "run_id": run_id,
            "date": date.isoformat(),
            "source": source.describe(),
            "files_seen": len(files),
            "routed": [asdict(t) for t in tasks],
            # Map index i of transform_file runs batches[i]: the tracking plugin finds a task's files here.
            "files_per_task": size,
            "batches": [[t.name for t in batch] for batch in batches],
            "unrouted": [_not_routed(u) for u in routing.unrouted],
            "superseded": [_not_routed(u) for u in routing.superseded],
            "missing_stores": missing,
            "other_dates": routing.other_dates,
            "inputs": inputs,
            "drop_missing": drop_missing,
        },
    )
    return batches


def prepare_day_inputs(
    config: PipelineConfig, layout: DataLayout, date: dt.date, conninfo: str | None
) -> dict[str, Any]:
    """Read the day's reference data once into ``inputs/``: every file of the run uses this copy.

    Returns the folder, a fingerprint of its content (a part made from other
    reference data is not reused) and the transform's notes.
    """
    intermediate = layout.intermediate(config.name, date)
    intermediate.mkdir(parents=True, exist_ok=True)
    definition = load_transform(config.transform)
    staging = Path(tempfile.mkdtemp(prefix=f".{INPUTS}.", dir=intermediate))
    try:
        notes = definition.prepare_day_inputs(
            day_context(config, layout, date, conninfo), transform_settings(config), staging
        )
        digest = hashlib.sha256()
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(staging).as_posix().encode() + b"\0" + sha256_of(path).encode())
        folder = intermediate / INPUTS
        if folder.exists():
            retired = intermediate / f".{INPUTS}.old.{os.getpid()}"
            os.replace(folder, retired)
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"folder": str(folder), "fingerprint": "sha256:" + digest.hexdigest(), "notes": list(notes)}


def _checksums_of_same_sized(source: Source, routed: list[RoutedFile]) -> dict[str, str]:
    """Checksums of the files that could be identical to another: only files of equal size can be."""
    sizes = Counter(r.file.size_bytes for r in routed)
    checksums = {}
    for file in routed:
        if sizes[file.file.size_bytes] > 1:
            try:
                checksums[file.file.location] = source.checksum(file.file)
            except FileNotFoundError:
                continue  # gone since the listing: its transform says so
    return checksums


def _not_routed(file: UnroutedFile) -> dict[str, str]:
    return {"name": file.file.name, "location": file.file.location, "reason": file.reason}


# --- one file --------------------------------------------------------------------


def _result_path(intermediate: Path, location: str, name: str) -> Path:
    return intermediate / RESULTS / f"{file_key(location, name)}.json"


def _package_version() -> str:
    try:
        return version("autopo-pipelines")
    except PackageNotFoundError:
        return "unknown"


def inputs_fingerprint(config: PipelineConfig, day_inputs: str) -> str:
    """What besides the file decides its rows: config, code version, the day's reference data.

    A part made with other inputs is not reused, so a changed supplier master, PO
    data loaded since, or a changed setting transforms the day's files again.
    """
    digest = hashlib.sha256()
    digest.update(config.model_dump_json().encode())
    digest.update(_package_version().encode())
    digest.update(day_inputs.encode())
    return "sha256:" + digest.hexdigest()


def run_file(
    config: PipelineConfig,
    layout: DataLayout,
    date: dt.date,
    task: FileTask,
    run_id: str,
    conninfo: str | None = None,
) -> dict[str, Any]:
    """Transform one file into its part, or reuse the part of identical content and inputs.

    The outcome is recorded for the day (``results/``) whether it succeeds or
    fails with an InputFileError; any other error leaves no record for this run,
    so the day counts the file as not transformed.
    """
    intermediate = layout.intermediate(config.name, date)
    record_path = _result_path(intermediate, task.location, task.name)
    checksum: str | None = None
    try:
        listing = current_listing(config, layout, date, run_id)
        if listing is None:
            raise LookupError(f"{config.name} {date}: the files were not listed in this run; rerun list_files")
        if task.conflict:
            raise InputFileError(task.name, task.conflict)
        try:
            # A folder per file: two files of one name (a Drive folder allows it) never share a copy.
            fetched = source_for(config, layout).fetch(task.source_file(), intermediate / "downloads" / task.key)
        except FileNotFoundError as exc:
            # Deleted or renamed at the source since the listing: retrying cannot bring it back.
            raise InputFileError(
                task.name,
                "the file is no longer at the source (deleted or renamed since the day was listed); rerun the date",
            ) from exc
        checksum = fetched.checksum
        definition = load_transform(config.transform)
        settings = transform_settings(config)
        context = day_context(config, layout, date, conninfo)
        inputs = inputs_fingerprint(config, listing["inputs"]["fingerprint"])
        directory = part_directory(intermediate, task.key, checksum)
        meta = read_part_meta(directory)
        if meta is not None and meta.get("inputs") == inputs:
            status = "skipped"
            log.info("%s unchanged since its last transform: reusing %s", task.name, directory)
        else:
            outcome = transform_file(
                fetched.path,
                config=config,
                definition=definition,
                settings=settings,
                day_inputs=definition.load_day_inputs(context, settings, Path(listing["inputs"]["folder"])),
                date=date,
                store_id=task.store_id,
                file_name=task.name,
            )
            meta = write_part(
                directory,
                outcome,
                {
                    "file_name": task.name,
                    "file_path": task.location,
                    "checksum": checksum,
                    "size_bytes": task.size_bytes,
                    "store_id": task.store_id,
                    "partition": _partition_of(outcome.rows, definition),
                    "inputs": inputs,
                },
            )
            status = "completed"
    except InputFileError as exc:
        write_json(
            record_path,
            {"file_name": task.name, "run_id": run_id, "status": "failed", "checksum": checksum, "error": str(exc)},
        )
        raise
    write_json(
        record_path,
        {"file_name": task.name, "run_id": run_id, "status": status, "checksum": checksum, "part": str(directory)},
    )
    return {**meta, "status": status}


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch's files: the results of those that succeeded, the bad ones' errors."""

    results: list[dict[str, Any]]
    # File name -> its InputFileError's message, in batch order.
    failed: dict[str, str]


def run_batch(
    config: PipelineConfig,
    layout: DataLayout,
    date: dt.date,
    tasks: list[FileTask],
    run_id: str,
    conninfo: str | None = None,
) -> BatchOutcome:
    """Run each file of a mapped task's batch in turn (run_file); one file's failure stops no other.

    A bad file (InputFileError) is recorded by run_file and reported in the outcome. Any other
    error (the source or the disk away) is raised once every file has had its turn, so the task is
    retried; the retry reuses the parts already made, as it would a rerun's.
    """
    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    transient: list[tuple[str, Exception]] = []
    for task in tasks:
        try:
            results.append(run_file(config, layout, date, task, run_id, conninfo))
        except InputFileError as exc:
            log.error("%s", exc)
            failed[task.name] = str(exc)
        except Exception as exc:
            log.exception("%s: not transformed; the task will be retried after the batch's other files", task.name)
            transient.append((task.name, exc))
    if transient:
        first = transient[0][1]
        if len(transient) > 1:
            first.add_note(f"also not transformed: {', '.join(name for name, _ in transient[1:])} (see the log)")
        raise first
    return BatchOutcome(results, failed)


def file_result(
    config: PipelineConfig, layout: DataLayout, date: dt.date, file: dict[str, Any]
) -> dict[str, Any] | None:
    """A listed file's latest recorded outcome with its part's counts, for the tracking tables."""
    record = read_json(_result_path(layout.intermediate(config.name, date), file["location"], file["name"]))
    if record is None or record["status"] == "failed":
        return record
    meta = read_part_meta(Path(record["part"])) or {}
    return {**meta, **record, "part_directory": record["part"]}


def _partition_of(rows: Any, definition: TransformDefinition) -> str | None:
    column = definition.snapshot.partition
    if column is None or rows.empty:
        return None
    values = rows[column].unique()
    return str(values[0]) if len(values) == 1 else None


# --- the day ----------------------------------------------------------------------


@dataclass(frozen=True)
class DayParts:
    parts: list[Part]
    failed: list[dict[str, Any]]
    # Files whose last good version stays in the snapshot although this run has no good part of
    # them: location -> why (``RETAINED_GONE`` or ``RETAINED_FAILED``), with their name.
    retained: dict[str, dict[str, str]] = field(default_factory=dict)
    # Files of the last loaded snapshot that this run leaves out: location -> why.
    dropped: dict[str, dict[str, str]] = field(default_factory=dict)


RETAINED_GONE = "retained (source gone): its last good version's rows stay in the snapshot"
RETAINED_FAILED = "its previous good version's rows stay in the snapshot"
RETAINED_NEWER_FAILED = "retained: no good newer file of its store replaces it; its rows stay in the snapshot"
DROPPED_ON_REQUEST = "no longer at the source: its rows were dropped on request (drop_missing)"


def current_listing(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str | None) -> Any | None:
    """The date's listing if it was written by this run (any run when run_id is None)."""
    listing = read_json(layout.intermediate(config.name, date) / LISTING)
    if listing is None or (run_id is not None and listing.get("run_id") != run_id):
        return None
    return listing


def collect_parts(config: PipelineConfig, layout: DataLayout, date: dt.date, listing: Any) -> DayParts:
    """This run's outcome for every routed file: its part, or why it has none.

    Each listed file contributes exactly its own part: a part whose record names another file at the
    source, or one part counted for two files, is an error here rather than rows lost or doubled.
    """
    intermediate = layout.intermediate(config.name, date)
    parts: list[Part] = []
    failed: list[dict[str, Any]] = []
    claimed: dict[Path, str] = {}
    for routed in listing["routed"]:
        name = routed["name"]
        location = routed["location"]
        record = read_json(_result_path(intermediate, location, name))
        if record is None or record.get("run_id") != listing["run_id"]:
            error = f"{name}: not transformed in this run (see its task's log)"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        if record["status"] == "failed":
            failed.append({**record, "file_path": location})
            continue
        directory = Path(record["part"])
        meta = read_part_meta(directory)
        if meta is None or meta.get("checksum") != record["checksum"]:
            error = f"{name}: its transformed part is missing; rerun its task"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        if meta.get("file_path") != location or directory in claimed:
            raise PartMismatchError(
                f"{name} ({location}): its part {directory} was made from "
                f"{claimed.get(directory) or meta.get('file_path')}; the day is not aggregated from it"
            )
        claimed[directory] = location
        # The source's modified time orders the files when rows of several are merged (latest wins).
        parts.append(
            Part(directory=directory, meta={**meta, "status": record["status"], "modified": routed["modified"]})
        )
    retained, dropped = _keep_last_good_versions(intermediate, listing, parts, failed)
    # A failed file whose previous version is kept says so, wherever its error is shown.
    failed = [
        {**record, "error": f"{record['error']}; {RETAINED_FAILED}"} if record["file_path"] in retained else record
        for record in failed
    ]
    return DayParts(parts=parts, failed=failed, retained=retained, dropped=dropped)


def _keep_last_good_versions(
    intermediate: Path, listing: Any, parts: list[Part], failed: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Add to ``parts`` the last loaded version of every file this run has no good part of.

    The rule (docs/stock_health.md, "Reruns"): a date's snapshot holds, per source file, its latest
    good version. A file gone from the source keeps it (unless the run asked to drop missing files);
    a new version that fails keeps the previous one's rows. Where the pipeline has stores the unit is
    the store: a store's good file in this run replaces whatever was kept for it, so a re-upload
    under a new name never doubles a store.
    """
    baseline = _baseline(read_json(intermediate / LOADED_PARTS) or {}, listing["run_id"])
    good = {str(part.meta.get("file_path")) for part in parts}
    stores = {part.meta.get("store_id") for part in parts if part.meta.get("store_id") is not None}
    routed = {file["location"] for file in listing["routed"]}
    failed_locations = {record["file_path"] for record in failed}
    failed_stores = {
        file["store_id"]
        for file in listing["routed"]
        if file["location"] in failed_locations and file.get("store_id") is not None
    }
    retained: dict[str, dict[str, str]] = {}
    dropped: dict[str, dict[str, str]] = {}
    for kept in baseline:
        location, name = str(kept["file_path"]), str(kept["file_name"])
        if location in good or (kept.get("store_id") is not None and kept["store_id"] in stores):
            continue  # this run has a good version of the file, or of its store
        if location in routed:
            reason = RETAINED_FAILED
        elif listing.get("drop_missing"):
            dropped[location] = {"file_name": name, "reason": DROPPED_ON_REQUEST}
            continue
        elif kept.get("store_id") is not None and kept["store_id"] in failed_stores:
            reason = RETAINED_NEWER_FAILED
        else:
            reason = RETAINED_GONE
        directory = Path(kept["part"])
        meta = read_part_meta(directory)
        if meta is None or meta.get("checksum") != kept.get("checksum"):
            # Never silent: the day is not complete while a file's rows are missing from it.
            error = f"{name}: its last good version's part ({directory}) is gone, so its rows are not in the "
            error += "snapshot; send the file again (or run the date with drop_missing to leave it out)"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        parts.append(Part(directory=directory, meta={**meta, "status": "retained", "modified": kept["modified"]}))
        retained[location] = {"file_name": name, "reason": reason}
    return retained, dropped


def _baseline(loaded: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The parts the date held before ``run_id`` loaded anything: the same answer before and after
    that run's own load (which keeps it as ``baseline``), so a rerun's check_day judges as its aggregate did."""
    return list(loaded.get("baseline", []) if loaded.get("run_id") == run_id else loaded.get("files", []))


class PartMismatchError(RuntimeError):
    """A part that is not the listed file's own: a bug or a tampered state folder, never to be loaded."""


def aggregate_day(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str) -> dict[str, Any] | None:
    """Write the day's outputs from this run's parts; None when no file succeeded."""
    listing = current_listing(config, layout, date, run_id)
    if listing is None:
        raise LookupError(f"{config.name} {date}: the files were not listed in this run")
    day = collect_parts(config, layout, date, listing)
    intermediate = layout.intermediate(config.name, date)
    (intermediate / LOAD).unlink(missing_ok=True)
    if not day.parts:
        write_json(intermediate / AGGREGATE, {"run_id": run_id, "outputs": None, "failed": day.failed})
        return None
    outputs = write_day_outputs(
        day.parts,
        seeds_dir=seeds_dir(config, layout),
        date=date,
        definition=load_transform(config.transform),
        settings=transform_settings(config),
        aggregation=config.aggregation,
    )
    summary = {
        "run_id": run_id,
        "aggregate_id": uuid.uuid4().hex,
        "parts": sorted(str(p.directory) for p in day.parts),
        "outputs": asdict(outputs),
        "failed": day.failed,
        "files": [{**p.meta, "part": str(p.directory)} for p in day.parts],
        "snapshot_csv": outputs.files[f"{date_stamp(date)}.csv"],
    }
    write_json(intermediate / AGGREGATE, summary)
    return {"snapshot_csv": summary["snapshot_csv"], "rows_out": outputs.rows_out, "failed_files": len(day.failed)}


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


def row_accounting(aggregate: dict[str, Any]) -> RowAccounting:
    """The counts of an aggregate (``aggregate.json``): rows in = out + merged + skipped + rejected."""
    parts = aggregate.get("files") or []
    outputs = aggregate.get("outputs") or {}
    skipped: dict[str, int] = {}
    for part in parts:
        for kind, count in part["rows_skipped"].items():
            skipped[kind] = skipped.get(kind, 0) + int(count)
    rows_in = sum(int(p["rows_in"]) for p in parts)
    rows_out = int(outputs.get("rows_out", 0))
    rejected = int(outputs.get("rows_rejected", 0))
    return RowAccounting(rows_in, rows_out, rejected, skipped, rows_in - rows_out - rejected - sum(skipped.values()))


def load_day(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str, conninfo: str) -> int:
    intermediate = layout.intermediate(config.name, date)
    aggregate = read_json(intermediate / AGGREGATE)
    if not aggregate or aggregate.get("run_id") != run_id or not aggregate.get("outputs"):
        raise LookupError(f"{config.name} {date}: nothing aggregated in this run; run aggregate_and_flush first")
    definition = load_transform(config.transform)
    table = definition.snapshot
    if table.ddl and create_table_if_missing(conninfo, table.name, table.ddl):
        log.info("created table %s from the %s transform's own DDL", table.name, config.name)
    rows = replace_date_rows(
        conninfo,
        table=table.name,
        date_column=table.date_column,
        date=date,
        csv_path=Path(aggregate["snapshot_csv"]),
        columns=table.columns,
    )
    # What the warehouse now holds for the date, part by part: what a later run keeps of a file it has
    # no good version of.
    baseline = _baseline(read_json(intermediate / LOADED_PARTS) or {}, run_id)
    write_json(
        intermediate / LOADED_PARTS,
        {
            "run_id": run_id,
            "aggregate_id": aggregate["aggregate_id"],
            "files": aggregate["files"],
            "baseline": baseline,
        },
    )
    write_json(
        intermediate / LOAD,
        {
            "run_id": run_id,
            "aggregate_id": aggregate["aggregate_id"],
            "table": table.name,
            "rows": rows,
            "loaded_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    return rows


def outputs_are_stale(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str) -> bool:
    """True when a file's result changed after this run aggregated the day (a cleared file was redone)."""
    listing = current_listing(config, layout, date, run_id)
    aggregate = read_json(layout.intermediate(config.name, date) / AGGREGATE)
    if listing is None or aggregate is None or aggregate.get("run_id") != run_id:
        return False
    day = collect_parts(config, layout, date, listing)
    return bool(day.parts) and _built_from_other_parts(aggregate, day)


def _built_from_other_parts(aggregate: dict[str, Any], day: DayParts) -> bool:
    """The aggregate was written from other parts than the files' latest results."""
    return aggregate.get("parts", []) != sorted(str(p.directory) for p in day.parts)


def day_problems(config: PipelineConfig, layout: DataLayout, date: dt.date, run_id: str | None = None) -> list[str]:
    """Why the day is not complete, in words for the run's log; empty when it is.

    run_id None judges the latest attempt, whichever run made it.
    """
    intermediate = layout.intermediate(config.name, date)
    listing = current_listing(config, layout, date, run_id)
    if listing is None:
        if not files_present(config, layout, date):
            return [f"no {config.name} files for {date.isoformat()} at {source_for(config, layout).describe()}"]
        return ["the day's files were not listed in this run (see the list_files task)"]
    if not listing["routed"]:
        return [f"no file for {date.isoformat()} matched the pipeline's file pattern"]
    day = collect_parts(config, layout, date, listing)
    problems = [str(failure["error"]) for failure in day.failed]
    aggregate = read_json(intermediate / AGGREGATE)
    if aggregate is None or aggregate.get("run_id") != listing["run_id"]:
        problems.append("the day's outputs were not written in this run (see the aggregate_and_flush task)")
        return problems
    if aggregate.get("outputs") and _built_from_other_parts(aggregate, day):
        problems.append(
            "the day's outputs predate the latest file results: clear aggregate_and_flush with its downstream tasks"
        )
    load = read_json(intermediate / LOAD)
    if aggregate.get("outputs") and (load is None or load.get("aggregate_id") != aggregate.get("aggregate_id")):
        problems.append("the snapshot was not loaded into the warehouse (see the load_snapshot task)")
    return problems
