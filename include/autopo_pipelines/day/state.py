"""The state of one pipeline day: its records, their layout, how they are read and written.

Every step of the day, the tracking plugin, the alerts and the local summary read the day through
this module; none of them builds a path of its own. The state lives in the day's intermediate
folder under the data root (a local folder or an object store, see ``storage``), so every worker,
the DAG processor and the triggerer reach the same state. Each record is stamped with the Airflow
run that wrote it, so any step can be retried or cleared and rerun and still tell its own run's
results from an earlier run's:

- ``listing.json`` (:class:`Listing`): the files routed for the date by ``list_files``, their
  batches (batch ``i`` is what ``transform_file``'s map index ``i`` runs), the files not used and
  why, and the day's reference data (``inputs/``: its folder, fingerprint and notes);
- ``results/<key>.json`` (:class:`FileResult`): each file's outcome in this run and its part;
- ``parts/<key>.<checksum>/``: a transformed file (``aggregate.write_part``);
- ``downloads/<key>/``: the local copy of a file fetched from its source, when the data root is a
  local folder (with an object-store root the copy is in the worker's temporary folder);
- ``aggregate.json`` (:class:`AggregateRecord`) and ``load.json`` (:class:`LoadRecord`): which
  parts the day's outputs were built from, and which aggregate the warehouse holds;
- ``loaded_parts.json`` (:class:`LoadedParts`): the parts of the snapshot last loaded, which a
  later run of the date keeps for a file that has gone from the source or whose new version failed;
- ``partial_load.csv``: the rows of the stores that changed since the last load, when only some did
  (written by aggregate_and_flush, swapped in by load_snapshot instead of the whole date);
- ``deadline_notice.json`` (:class:`DeadlineNotice`): the lateness email a run of an
  ``as_they_arrive`` pipeline sent for the date (one per business date).

A file's ``<key>`` is its identity at the source (``layout.file_key``: path, gs:// URI or Drive
id), never its display name, which two files may share. The JSON is what earlier versions wrote:
a day listed before an upgrade still reads.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from autopo_pipelines import storage
from autopo_pipelines.layout import file_key
from autopo_pipelines.sources import SourceFile
from autopo_pipelines.storage import StoragePath

LISTING = "listing.json"
AGGREGATE = "aggregate.json"
LOAD = "load.json"
LOADED_PARTS = "loaded_parts.json"
DEADLINE_NOTICE = "deadline_notice.json"
INPUTS = "inputs"
RESULTS = "results"
PARTIAL_LOAD_CSV = "partial_load.csv"
DOWNLOADS = "downloads"

# A part's meta (aggregate.write_part): the file, its checksum, counts and where it came from.
PartMeta = dict[str, Any]


def write_json(path: StoragePath, payload: Any) -> None:
    """Written whole (storage.write_bytes) so a reader never sees half a state file."""
    storage.write_bytes(path, json.dumps(payload, indent=2, default=str).encode("utf-8"))


def read_json(path: StoragePath) -> Any | None:
    raw = storage.read_bytes(path)
    return None if raw is None else json.loads(raw.decode("utf-8"))


@dataclass(frozen=True)
class FileTask:
    """A routed file, as one mapped transform needs it: small enough for an XCom."""

    name: str
    location: str
    size_bytes: int
    modified: float
    store_id: str | None
    conflict: str | None

    def source_file(self) -> SourceFile:
        return SourceFile(self.name, self.location, self.size_bytes, self.modified)

    @property
    def key(self) -> str:
        return file_key(self.location, self.name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NotUsed:
    """A file of the source the day does not use (unrouted or superseded), and why."""

    name: str
    location: str
    reason: str


@dataclass(frozen=True)
class DayInputs:
    """The day's reference data, read once per run: where it is, its fingerprint, its notes."""

    folder: str
    fingerprint: str
    notes: list[str]


@dataclass(frozen=True)
class Listing:
    run_id: str
    date: str
    source: str
    files_seen: int
    routed: list[FileTask]
    # Map index i of transform_file runs batches[i] (file names): the tracking plugin finds a task's files here.
    files_per_task: int
    batches: list[list[str]]
    unrouted: list[NotUsed]
    superseded: list[NotUsed]
    missing_stores: list[str]
    other_dates: int
    inputs: DayInputs
    drop_missing: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Listing:
        routed = [FileTask(**file) for file in raw["routed"]]
        return cls(
            run_id=raw["run_id"],
            date=raw.get("date", ""),
            source=raw.get("source", ""),
            files_seen=int(raw.get("files_seen", len(routed))),
            routed=routed,
            files_per_task=int(raw.get("files_per_task", 1)),
            # A listing written before batches existed ran one file per map index.
            batches=raw.get("batches") or [[file.name] for file in routed],
            unrouted=[_not_used(file) for file in raw.get("unrouted", [])],
            superseded=[_not_used(file) for file in raw.get("superseded", [])],
            missing_stores=list(raw.get("missing_stores") or []),
            other_dates=int(raw.get("other_dates", 0)),
            # A listing written before the day's reference data was recorded had none.
            inputs=DayInputs(**raw["inputs"]) if raw.get("inputs") else DayInputs(folder="", fingerprint="", notes=[]),
            drop_missing=bool(raw.get("drop_missing", False)),
        )

    def file_batches(self) -> list[list[FileTask]]:
        """The routed files of each map index, in listing order."""
        sizes = [len(batch) for batch in self.batches]
        out, start = [], 0
        for size in sizes:
            out.append(self.routed[start : start + size])
            start += size
        return out

    def files_by_map_index(self) -> list[tuple[int, FileTask]]:
        return [(index, file) for index, batch in enumerate(self.file_batches()) for file in batch]


def _not_used(raw: dict[str, Any]) -> NotUsed:
    # Listings written before files had a location at the source named them only.
    return NotUsed(name=raw["name"], location=raw.get("location", raw["name"]), reason=raw["reason"])


FileStatus = Literal["completed", "skipped", "failed"]


@dataclass(frozen=True)
class FileResult:
    """One file's outcome in one run: its part, or its error."""

    file_name: str
    run_id: str
    status: FileStatus
    checksum: str | None
    part: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        return {key: value for key, value in payload.items() if value is not None or key == "checksum"}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileResult:
        return cls(
            file_name=raw["file_name"],
            run_id=raw["run_id"],
            status=raw["status"],
            checksum=raw.get("checksum"),
            part=raw.get("part"),
            error=raw.get("error"),
        )


@dataclass(frozen=True)
class AggregateRecord:
    """What aggregate_and_flush wrote: the parts the outputs came from, the outputs, the failures."""

    run_id: str
    failed: list[dict[str, Any]]
    # None when no file of the day succeeded: nothing was written.
    outputs: dict[str, Any] | None = None
    aggregate_id: str | None = None
    parts: list[str] = field(default_factory=list)
    files: list[PartMeta] = field(default_factory=list)
    snapshot_csv: str | None = None
    # Where only some partitions (stores) changed since the date's last load: their rows alone
    # (outputs.PartialLoad), which load_snapshot swaps in instead of the whole date.
    partial_load: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.outputs is None:
            # Nothing written: the record says only that, as it always has.
            return {"run_id": self.run_id, "outputs": None, "failed": self.failed}
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AggregateRecord:
        return cls(
            run_id=raw["run_id"],
            failed=list(raw.get("failed") or []),
            outputs=raw.get("outputs"),
            aggregate_id=raw.get("aggregate_id"),
            parts=list(raw.get("parts") or []),
            files=list(raw.get("files") or []),
            snapshot_csv=raw.get("snapshot_csv"),
            partial_load=raw.get("partial_load"),
        )


@dataclass(frozen=True)
class LoadRecord:
    """Which aggregate the warehouse holds for the date, and how many rows."""

    run_id: str
    aggregate_id: str
    table: str
    rows: int
    loaded_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoadRecord:
        return cls(**{key: raw[key] for key in ("run_id", "aggregate_id", "table", "rows", "loaded_at")})


@dataclass(frozen=True)
class LoadedParts:
    """The parts of the snapshot last loaded; ``baseline``: what the date held before that run."""

    run_id: str
    aggregate_id: str
    files: list[PartMeta]
    baseline: list[PartMeta]
    # The rows the table held for the date after that load (None: recorded before this was kept).
    rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoadedParts:
        return cls(
            run_id=raw["run_id"],
            aggregate_id=raw.get("aggregate_id", ""),
            files=list(raw.get("files") or []),
            baseline=list(raw.get("baseline") or []),
            rows=raw.get("rows"),
        )

    def before(self, run_id: str) -> list[PartMeta]:
        """The parts the date held before ``run_id`` loaded anything: the same answer before and after
        that run's own load (which keeps it as ``baseline``), so a rerun's check_day judges as its
        aggregate did."""
        return list(self.baseline if self.run_id == run_id else self.files)


@dataclass(frozen=True)
class DeadlineNotice:
    """The date's deadline passed with the day incomplete, and a run said so: when, and what."""

    run_id: str
    sent_at: str
    subject: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeadlineNotice:
        return cls(run_id=raw["run_id"], sent_at=raw["sent_at"], subject=raw.get("subject", ""))


@dataclass(frozen=True)
class DayState:
    """The day's state folder: where each record and folder is, and reading and writing them."""

    folder: StoragePath

    def listing(self) -> Listing | None:
        """The day's listing; None when there is none, or it is in a form this code never wrote (a
        listing from before run ids were recorded): no run can take it for its own."""
        raw = read_json(self.folder / LISTING)
        if raw is None:
            return None
        try:
            return Listing.from_json(raw)
        except (KeyError, TypeError, ValueError):
            return None

    def save_listing(self, listing: Listing) -> None:
        write_json(self.folder / LISTING, listing.to_json())

    def start_attempt(self) -> None:
        """A new listing starts a new attempt at the day: the previous attempt's listing, aggregate
        and load go first, so nothing downstream can mistake them for this run's."""
        for stale in (LISTING, AGGREGATE, LOAD):
            storage.remove(self.folder / stale)

    def result(self, location: str, name: str) -> FileResult | None:
        """The file's recorded outcome; None when there is none or it is in a form this code never wrote."""
        raw = read_json(self._result_path(location, name))
        if raw is None:
            return None
        try:
            return FileResult.from_json(raw)
        except (KeyError, TypeError, ValueError):
            return None

    def save_result(self, location: str, name: str, result: FileResult) -> None:
        write_json(self._result_path(location, name), result.to_json())

    def _result_path(self, location: str, name: str) -> StoragePath:
        return self.folder / RESULTS / f"{file_key(location, name)}.json"

    def aggregate(self) -> AggregateRecord | None:
        raw = read_json(self.folder / AGGREGATE)
        return None if raw is None else AggregateRecord.from_json(raw)

    def save_aggregate(self, record: AggregateRecord) -> None:
        write_json(self.folder / AGGREGATE, record.to_json())

    def load(self) -> LoadRecord | None:
        raw = read_json(self.folder / LOAD)
        return None if raw is None else LoadRecord.from_json(raw)

    def save_load(self, record: LoadRecord) -> None:
        write_json(self.folder / LOAD, record.to_json())

    def forget_load(self) -> None:
        storage.remove(self.folder / LOAD)

    def loaded_parts(self) -> LoadedParts | None:
        raw = read_json(self.folder / LOADED_PARTS)
        return None if raw is None else LoadedParts.from_json(raw)

    def save_loaded_parts(self, record: LoadedParts) -> None:
        write_json(self.folder / LOADED_PARTS, record.to_json())

    def deadline_notice(self) -> DeadlineNotice | None:
        raw = read_json(self.folder / DEADLINE_NOTICE)
        return None if raw is None else DeadlineNotice.from_json(raw)

    def save_deadline_notice(self, record: DeadlineNotice) -> None:
        write_json(self.folder / DEADLINE_NOTICE, record.to_json())

    def partial_load_csv(self) -> StoragePath:
        return self.folder / PARTIAL_LOAD_CSV

    def inputs_folder(self) -> StoragePath:
        return self.folder / INPUTS

    def download_folder(self, task: FileTask) -> StoragePath:
        # A folder per file: two files of one name (a Drive folder allows it) never share a copy.
        return self.folder / DOWNLOADS / task.key


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
