"""The day's first steps: is it ready (the sensor), which files are its (list_files), and the
reference data every file of the run is transformed with."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from autopo_pipelines import storage
from autopo_pipelines.aggregate import read_part_meta
from autopo_pipelines.config import PipelineConfig, files_per_task_for
from autopo_pipelines.dates import cutoff_moment
from autopo_pipelines.day.core import Day
from autopo_pipelines.day.file_run import inputs_fingerprint
from autopo_pipelines.day.state import INPUTS, DayInputs, FileTask, Listing, NotUsed
from autopo_pipelines.routing import RoutedFile, UnroutedFile, normalise_store, route_files, separate_identical
from autopo_pipelines.sources import Source
from autopo_pipelines.sources.local import sha256_of

log = logging.getLogger(__name__)

# Airflow's own default for [core] max_map_length, for callers outside a running task.
DEFAULT_MAX_MAP_LENGTH = 1024


def files_present(day: Day) -> list[str]:
    """Names of the date's routable files, from the source's cheap listing."""
    return [r.file.name for r in _routed(day)]


def _routed(day: Day) -> list[RoutedFile]:
    return route_files(day.source().list_files(), day.config.compiled_pattern, day.date).routed


def missing_stores(config: PipelineConfig, stores: set[str | None]) -> list[str]:
    return sorted({normalise_store(s) for s in config.expected_stores} - stores)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    files: list[str]
    missing_stores: list[str]
    reason: str


def readiness(day: Day, now: dt.datetime) -> Readiness:
    """Whether the day can start: every expected store has sent a file, or the cutoff has passed
    with at least one file; with no expected stores, as soon as one file is there."""
    config = day.config
    routed = _routed(day)
    names = [r.file.name for r in routed]
    missing = missing_stores(config, {r.store_id for r in routed})
    if not routed:
        return Readiness(False, names, missing, "no file yet")
    if not config.expected_stores or not missing:
        return Readiness(True, names, missing, "every expected store has sent a file")
    cutoff = cutoff_moment(config, day.date)
    if cutoff is not None and now >= cutoff:
        return Readiness(True, names, missing, f"cutoff {cutoff.isoformat()} passed; going on without {missing}")
    until = f" until {cutoff.isoformat()}" if cutoff else ""
    return Readiness(False, names, missing, f"waiting for {missing}{until}")


@dataclass(frozen=True)
class Arrivals:
    """What the source holds for the date now, against what the date's last run took
    (``processing: as_they_arrive``: a run with nothing new has nothing to do)."""

    files: list[str]
    # Files not in the last run's listing, or changed since (size or modification time).
    new: list[str]
    # Files of the last run's listing no longer at the source.
    gone: list[str]
    # The run whose listing the date's outputs came from, when it got as far as them: aggregated
    # and loaded, or found no good file to aggregate. None: no run has finished the date yet.
    handled_by: str | None

    @property
    def anything_new(self) -> bool:
        return self.handled_by is None or bool(self.new or self.gone)

    def describe(self) -> str:
        if self.handled_by is None:
            return f"{len(self.files)} file(s); no run has finished the date yet"
        return f"{len(self.new)} new or changed file(s), {len(self.gone)} gone since run {self.handled_by}"


def arrivals(day: Day) -> Arrivals:
    """The date's files at the source now, against the last run's listing of them."""
    routing = route_files(
        day.source().list_files(), day.config.compiled_pattern, day.date, duplicates=day.config.duplicate_store_files
    )
    present = {r.file.location: r.file for r in routing.routed} | {u.file.location: u.file for u in routing.superseded}
    names = sorted(file.name for file in present.values())
    latest = day.state.listing()
    if latest is None:
        return Arrivals(names, names, [], None)
    taken = {file.location: file for file in latest.routed}
    also_seen = {file.location for file in latest.superseded}
    new = sorted(
        file.name
        for location, file in present.items()
        if (location not in taken and location not in also_seen)
        or (
            location in taken
            and (file.size_bytes, file.modified) != (taken[location].size_bytes, taken[location].modified)
        )
    )
    gone = sorted(file.name for file in latest.routed if file.location not in present) + sorted(
        file.name for file in latest.superseded if file.location not in present
    )
    aggregate, load = day.state.aggregate(), day.state.load()
    finished = (
        aggregate is not None
        and aggregate.run_id == latest.run_id
        and (aggregate.outputs is None or (load is not None and load.aggregate_id == aggregate.aggregate_id))
    )
    return Arrivals(names, new, gone, latest.run_id if finished else None)


def file_task(routed: RoutedFile) -> FileTask:
    f = routed.file
    return FileTask(f.name, f.location, f.size_bytes, f.modified, routed.store_id, routed.conflict)


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


def list_day_files(day: Day, max_map_length: int = DEFAULT_MAX_MAP_LENGTH) -> list[FileTask]:
    """List and route the date's files for this run, in listing order (see list_day_batches)."""
    return [task for batch in list_day_batches(day, max_map_length) for task in batch]


def list_day_batches(
    day: Day, max_map_length: int = DEFAULT_MAX_MAP_LENGTH, *, drop_missing: bool = False
) -> list[list[FileTask]]:
    """List and route the date's files for this run; check the reference data before any transform.

    Returns the files in the batches the mapped transform tasks run, one batch per map index.
    ``drop_missing`` (run conf): the files no longer at the source lose their rows in this run's
    snapshot, instead of keeping their last good version's.
    """
    if day.run_id is None:
        raise ValueError(f"{day.describe()}: listing the files needs the run that lists them")
    config = day.config
    previous = day.state.listing()
    day.state.start_attempt()
    inputs = prepare_day_inputs(day)
    for note in inputs.notes:
        # Warning level: the run's log shows it among the few lines people read.
        log.warning("%s: %s", day.describe(), note)
    source = day.source()
    files = source.list_files()
    routing = route_files(files, config.compiled_pattern, day.date, duplicates=config.duplicate_store_files)
    routing.routed, copies = separate_identical(routing.routed, _checksums_of_same_sized(source, routing.routed))
    routing.superseded.extend(copies)
    for skipped in [*routing.unrouted, *routing.superseded]:
        log.warning("not processed: %s: %s", skipped.file.name, skipped.reason)
    log.info(
        "%s: %d file(s) at %s, %d for the date, %d unrouted, %d superseded, %d for other dates",
        day.describe(),
        len(files),
        source.describe(),
        len(routing.routed),
        len(routing.unrouted),
        len(routing.superseded),
        routing.other_dates,
    )
    tasks = [file_task(r) for r in routing.routed]
    reused = _reusable(day, previous, tasks, inputs) if config.airflow.files_per_task == "auto" else set()
    kept = [task for task in tasks if task.location in reused]
    kept_batches = [kept[start : start + REUSED_FILES_PER_TASK] for start in range(0, len(kept), REUSED_FILES_PER_TASK)]
    fresh = [task for task in tasks if task.location not in reused]
    room = max(1, max_map_length - len(kept_batches))
    size = _batch_size_logged(day, len(fresh), room)
    batches = batch_files(fresh, size, room) + kept_batches
    if kept:
        log.info(
            "%s: %d file(s) unchanged since run %s, their parts reused, in %d task(s)",
            day.describe(),
            len(kept),
            previous.run_id if previous else "?",
            len(kept_batches),
        )
    tasks = [task for batch in batches for task in batch]
    missing = missing_stores(config, {r.store_id for r in routing.routed})
    if missing:
        log.warning("%s: no file from the expected store(s) %s", day.describe(), ", ".join(missing))
    day.state.save_listing(
        Listing(
            run_id=day.run_id,
            date=day.date.isoformat(),
            source=source.describe(),
            files_seen=len(files),
            routed=tasks,
            files_per_task=size,
            batches=[[t.name for t in batch] for batch in batches],
            unrouted=[_not_used(u) for u in routing.unrouted],
            superseded=[_not_used(u) for u in routing.superseded],
            missing_stores=missing,
            other_dates=routing.other_dates,
            inputs=inputs,
            drop_missing=drop_missing,
        )
    )
    return batches


# With ``files_per_task: auto``, the files whose parts a rerun reuses (unchanged since the date's last
# listing, made with the same inputs) share tasks of this many: reusing a part takes a file's copy and
# checksum, not a transform, and each task costs Airflow a second or two to start (docs/performance.md).
REUSED_FILES_PER_TASK = 50


def _reusable(day: Day, previous: Listing | None, tasks: list[FileTask], inputs: DayInputs) -> set[str]:
    """The locations of the files whose part this run will reuse, as far as the listing can tell: the same
    size and modification time as in the date's previous listing, a good result with a part, and the part
    made with this run's inputs. The transform still checks each file's checksum: a wrong guess costs
    time (the file is transformed in the shared task), never rows."""
    if previous is None:
        return set()
    fingerprint = inputs_fingerprint(day.config, inputs.fingerprint)
    before = {task.location: task for task in previous.routed}
    reusable = set()
    for task in tasks:
        old = before.get(task.location)
        if old is None or task.conflict or (old.size_bytes, old.modified) != (task.size_bytes, task.modified):
            continue
        result = day.state.result(task.location, task.name)
        if result is None or result.status == "failed" or result.part is None:
            continue
        meta = read_part_meta(day.layout.locate(result.part))
        if meta is not None and meta.get("inputs") == fingerprint:
            reusable.add(task.location)
    return reusable


def _batch_size_logged(day: Day, files: int, max_map_length: int) -> int:
    wanted = files_per_task_for(day.config.airflow, files)
    size = batch_size(files, wanted, max_map_length)
    if size > wanted:
        log.warning(
            "%s: %d files at %d per task would need more mapped tasks than Airflow's [core] max_map_length "
            "(%d): %d files per task instead",
            day.describe(),
            files,
            wanted,
            max_map_length,
            size,
        )
    elif size > 1:
        log.info("%s: %d files in batches of %d per transform_file task", day.describe(), files, size)
    return size


def prepare_day_inputs(day: Day) -> DayInputs:
    """Read the day's reference data once into ``inputs/``: every file of the run uses this copy.

    Returns the folder, a fingerprint of its content (a part made from other
    reference data is not reused) and the transform's notes.
    """
    folder = day.state.inputs_folder()
    # Made on this machine: beside the folder when the data root is local (renamed into place),
    # else in a temporary folder whose files are uploaded.
    beside = folder.parent if isinstance(folder, Path) else None
    if beside is not None:
        beside.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{INPUTS}.", dir=beside))
    try:
        notes = day.definition.prepare_day_inputs(day.context(), day.settings, staging)
        digest = hashlib.sha256()
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(staging).as_posix().encode() + b"\0" + sha256_of(path).encode())
        storage.replace_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DayInputs(folder=str(folder), fingerprint="sha256:" + digest.hexdigest(), notes=list(notes))


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


def _not_used(file: UnroutedFile) -> NotUsed:
    return NotUsed(name=file.file.name, location=file.file.location, reason=file.reason)
