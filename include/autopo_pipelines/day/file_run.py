"""transform_file: one file of the day into its part, or the part of identical content reused."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from autopo_pipelines import storage
from autopo_pipelines.aggregate import part_directory, read_part_meta, write_part
from autopo_pipelines.config import PipelineConfig
from autopo_pipelines.day.core import Day
from autopo_pipelines.day.state import FileResult, FileStatus, FileTask
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.sources import FetchedFile
from autopo_pipelines.storage import StoragePath
from autopo_pipelines.transform import TransformDefinition, transform_file

log = logging.getLogger(__name__)


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


class WorkerDisk:
    """Where a batch's files are copied and read on this machine.

    With a local data root, as always: each file's copy in the day's ``downloads/`` and the reference
    data read from the day's ``inputs/``. With an object-store root, a temporary folder of the
    worker's own, removed when the batch is done: the reference data downloaded once for the batch.
    """

    def __init__(self, day: Day) -> None:
        self._day = day
        self._inputs: Path | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> WorkerDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def download_folder(self, task: FileTask) -> Path:
        folder = self._day.state.download_folder(task)
        if isinstance(folder, Path):
            return folder
        return self._scratch_folder() / "downloads" / task.key

    def done_with(self, task: FileTask) -> None:
        """A temporary copy goes as soon as its file is done: a batch's copies never pile up."""
        if self._scratch is not None:
            shutil.rmtree(self.download_folder(task), ignore_errors=True)

    def inputs(self) -> Path:
        if self._inputs is None:
            folder = self._day.state.inputs_folder()
            local = folder if isinstance(folder, Path) else self._scratch_folder() / "inputs"
            self._inputs = storage.download_folder(folder, local)
        return self._inputs

    def _scratch_folder(self) -> Path:
        # Made when first needed: a local root never needs one.
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="autopo-batch-")
        return Path(self._scratch.name)


def run_file(day: Day, task: FileTask, disk: WorkerDisk | None = None) -> dict[str, Any]:
    """Transform one file into its part, or reuse the part of identical content and inputs.

    The outcome is recorded for the day (``results/``) whether it succeeds or
    fails with an InputFileError; any other error leaves no record for this run,
    so the day counts the file as not transformed. ``disk``: the batch's (run_batch), else the file's own.
    """
    if disk is None:
        with WorkerDisk(day) as own:
            return run_file(day, task, own)
    if day.run_id is None:
        raise ValueError(f"{day.describe()}: a file is transformed by a run")
    checksum: str | None = None
    try:
        listing = day.listing()
        if listing is None:
            raise LookupError(f"{day.describe()}: the files were not listed in this run; rerun list_files")
        if task.conflict:
            raise InputFileError(task.name, task.conflict)
        try:
            fetched = _fetch(day, task, disk.download_folder(task))
            checksum = fetched.checksum
            inputs = inputs_fingerprint(day.config, listing.inputs.fingerprint)
            directory = part_directory(day.state.folder, task.key, checksum)
            meta = read_part_meta(directory)
            status: FileStatus
            if meta is not None and meta.get("inputs") == inputs:
                status = "skipped"
                log.info("%s unchanged since its last transform: reusing %s", task.name, directory)
            else:
                meta = _transform(day, task, fetched.path, disk.inputs(), directory, checksum, inputs)
                status = "completed"
        finally:
            disk.done_with(task)
    except InputFileError as exc:
        failed = FileResult(task.name, day.run_id, "failed", checksum, error=str(exc))
        day.state.save_result(task.location, task.name, failed)
        raise
    day.state.save_result(task.location, task.name, FileResult(task.name, day.run_id, status, checksum, str(directory)))
    return {**meta, "status": status}


def _fetch(day: Day, task: FileTask, folder: Path) -> FetchedFile:
    try:
        return day.source().fetch(task.source_file(), folder)
    except FileNotFoundError as exc:
        # Deleted or renamed at the source since the listing: retrying cannot bring it back.
        raise InputFileError(
            task.name,
            "the file is no longer at the source (deleted or renamed since the day was listed); rerun the date",
        ) from exc


def _transform(
    day: Day, task: FileTask, path: Path, day_inputs: Path, directory: StoragePath, checksum: str, inputs: str
) -> dict[str, Any]:
    definition = day.definition
    outcome = transform_file(
        path,
        config=day.config,
        definition=definition,
        settings=day.settings,
        day_inputs=definition.load_day_inputs(day.context(), day.settings, day_inputs),
        date=day.date,
        store_id=task.store_id,
        file_name=task.name,
    )
    meta: dict[str, Any] = write_part(
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
        # The part also keeps its rows as the day's CSV lines: the aggregate then only appends them.
        definition=definition,
    )
    return meta


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch's files: the results of those that succeeded, the bad ones' errors."""

    results: list[dict[str, Any]]
    # File name -> its InputFileError's message, in batch order.
    failed: dict[str, str]
    # The seconds each file transformed into a new part took (fetch included), in batch order; a reused
    # part's file and a bad file have none (the per-file timer, orchestration.metrics).
    transform_seconds: list[float] = field(default_factory=list)


def run_batch(day: Day, tasks: list[FileTask]) -> BatchOutcome:
    """Run each file of a mapped task's batch in turn (run_file); one file's failure stops no other.

    A bad file (InputFileError) is recorded by run_file and reported in the outcome. Any other
    error (the source or the disk away) is raised once every file has had its turn, so the task is
    retried; the retry reuses the parts already made, as it would a rerun's.
    """
    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    transform_seconds: list[float] = []
    transient: list[tuple[str, Exception]] = []
    with WorkerDisk(day) as disk:
        for task in tasks:
            started = time.monotonic()
            try:
                result = run_file(day, task, disk)
                results.append(result)
                if result["status"] == "completed":
                    transform_seconds.append(time.monotonic() - started)
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
    return BatchOutcome(results, failed, transform_seconds)


def file_result(day: Day, file: FileTask) -> dict[str, Any] | None:
    """A listed file's latest recorded outcome with its part's counts, for the tracking tables."""
    record = day.state.result(file.location, file.name)
    if record is None:
        return None
    if record.status == "failed" or record.part is None:
        return record.to_json()
    meta = read_part_meta(day.layout.locate(record.part)) or {}
    return {**meta, **record.to_json(), "part_directory": record.part}


def _partition_of(rows: Any, definition: TransformDefinition) -> str | None:
    column = definition.snapshot.partition
    if column is None or rows.empty:
        return None
    values = rows[column].unique()
    return str(values[0]) if len(values) == 1 else None
