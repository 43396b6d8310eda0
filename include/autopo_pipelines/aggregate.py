"""Per-file intermediate outputs, and the day's CSV outputs built from them.

Each transformed file leaves a *part*: a directory holding its rows and
rejects as Parquet and a ``part.json`` written last, so a part either exists
whole or not at all. In a local folder the part is renamed into place in one
step (a transform killed half-way leaves only a hidden temporary directory
that nothing reads, and that a later write_part in the same folder removes
once its writer is gone); in an object store, where nothing can be renamed,
``part.json`` is the marker: it is removed first and uploaded last, and a
part without it is no part.

The day's outputs are streamed from the parts in bounded batches (files per
batch, bytes per batch) so memory follows the batch, not the number of stores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autopo_pipelines import storage
from autopo_pipelines.config import AggregationConfig
from autopo_pipelines.layout import date_stamp, safe_file_name
from autopo_pipelines.storage import StoragePath
from autopo_pipelines.tabular import REJECT_COLUMNS
from autopo_pipelines.transform import FileOutcome, TransformDefinition

PART_META = "part.json"
ROWS_FILE = "rows.parquet"
REJECTS_FILE = "rejects.parquet"


def part_directory(intermediate: StoragePath, file_key: str, checksum: str) -> StoragePath:
    """One directory per (source file, content): a changed file gets a new part. ``file_key`` is the
    file's identity at its source (layout.file_key), not its display name, which two files may share."""
    return intermediate / "parts" / f"{safe_file_name(file_key)}.{checksum_digest(checksum)}"


# A content hash in hex (md5, sha256, a GCS object's crc32c): its parts keep the names they had.
_HEX_DIGEST = re.compile(r"[0-9a-f]{8,}")


def checksum_digest(checksum: str) -> str:
    """Up to 16 hex characters that tell contents apart: the start of a content hash ("md5:<hex>",
    "sha256:<hex>"), else of a sha256 of the whole checksum. A checksum that is not a hash (a Google
    Sheet's "sheets:<modifiedTime>:<version>") would lose what tells it apart when cut (its version
    and the seconds of its time), and two edits within one minute would share a part."""
    value = checksum.split(":", 1)[-1]
    if _HEX_DIGEST.fullmatch(value):
        return value[:16]
    return hashlib.sha256(checksum.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# A temporary directory older than this is a leftover whoever wrote it: writing a
# part takes seconds, and a writer on another machine sharing the data root
# cannot be asked whether it is still alive.
STALE_TEMPORARY_AGE_S = 3600.0

# Hidden temporaries of write_part: ".<part>.<host>-<pid>.<random>" while a part is
# written, ".<part>.old.<host>-<pid>" while a previous part is swapped out.
_TEMPORARY = re.compile(r"\..+?\.(?:old\.)?(?P<host>[0-9a-f]{8})-(?P<pid>\d+)(?:\.[a-z0-9_]{8})?")
# The names earlier versions used (no host), judged by age alone.
_LEGACY_TEMPORARY = re.compile(r"\..+\.(?:old\.\d+|[a-z0-9_]{8})")


def _host_tag() -> str:
    # A hash, not the host name: fixed length, whatever the name, so it cannot be
    # confused with the part's own name and cannot push a long one over NAME_MAX.
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _writer_tag() -> str:
    """Which process on which machine owns a temporary directory."""
    return f"{_host_tag()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what killed writers of parts in ``folder`` left behind; return what was removed.

    A temporary is stale when its writer ran on this machine and is no longer
    alive (a SIGKILLed or OOM-killed transform), or when it was last modified
    more than STALE_TEMPORARY_AGE_S ago (a writer on another machine sharing the
    data root, whose pid means nothing here, or a pid reused since). A staging
    directory is modified as its files are written, so a live writer's is never
    that old; a retired previous part may be (it keeps the old part's time), and
    removing it early is harmless: its writer only ever deletes it.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return removed
    host = _host_tag()
    now = time.time()
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None and _LEGACY_TEMPORARY.fullmatch(entry.name) is None:
            continue
        try:
            info = entry.lstat()
        except FileNotFoundError:
            continue  # another writer cleaned it up first
        if not stat.S_ISDIR(info.st_mode):
            continue
        dead = match is not None and match["host"] == host and not _pid_alive(int(match["pid"]))
        if dead or now - info.st_mtime > STALE_TEMPORARY_AGE_S:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _stage_part(staging: Path, outcome: FileOutcome, meta: dict[str, Any]) -> dict[str, Any]:
    """The part's files in a local folder; returns its meta (also written there as PART_META)."""
    outcome.rows.to_parquet(staging / ROWS_FILE, index=False)
    outcome.rejects.to_parquet(staging / REJECTS_FILE, index=False)
    full_meta = {
        **meta,
        "sheet": outcome.sheet,
        "rows_in": outcome.rows_in,
        "rows_out": len(outcome.rows),
        "rows_rejected": outcome.rows_rejected,
        "rows_skipped": outcome.skipped.as_dict(),
        "part_bytes": sum(p.stat().st_size for p in staging.iterdir()),
    }
    (staging / PART_META).write_text(json.dumps(full_meta, indent=2, default=str), encoding="utf-8")
    return full_meta


def write_part(directory: StoragePath, outcome: FileOutcome, meta: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(directory, Path):
        return _upload_part(directory, outcome, meta)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Before a new temporary is added: leftovers of killed transforms would otherwise pile up for good.
    _remove_stale_temporaries(directory.parent)
    tag = _writer_tag()
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.{tag}.", dir=directory.parent))
    try:
        full_meta = _stage_part(staging, outcome, meta)
        if directory.exists():
            # A directory cannot be renamed over a non-empty one: the old part goes aside first.
            # A crash between the two renames leaves no part under the name (the file is
            # transformed again), never a half-written one; the retired part is a leftover
            # that the next write in this folder removes.
            retired = directory.with_name(f".{directory.name}.old.{tag}")
            os.replace(directory, retired)
            os.replace(staging, directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return full_meta


def _upload_part(directory: StoragePath, outcome: FileOutcome, meta: dict[str, Any]) -> dict[str, Any]:
    """A part in an object store: made on the worker's disk, then uploaded with its marker last.

    The marker of a previous part under the name goes first, so no reader takes its meta for the
    new rows while they are uploaded; a transform killed in between leaves no part (the file is
    transformed again), never a mix.
    """
    with tempfile.TemporaryDirectory(prefix="autopo-part-") as folder:
        staging = Path(folder)
        full_meta = _stage_part(staging, outcome, meta)
        storage.remove(directory / PART_META)
        for name in (ROWS_FILE, REJECTS_FILE, PART_META):
            storage.upload(staging / name, directory / name)
    return full_meta


def read_part_meta(directory: StoragePath) -> dict[str, Any] | None:
    raw = storage.read_bytes(directory / PART_META)
    if raw is None:
        return None
    meta: dict[str, Any] = json.loads(raw.decode("utf-8"))
    return meta


# --- CSV writing --------------------------------------------------------------


def _to_arrow(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    arrays = []
    for name in columns:
        series = frame[name] if name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if pd.api.types.is_bool_dtype(series):
            array = pa.array(series.to_numpy(dtype=bool))
        elif pd.api.types.is_float_dtype(series):
            # numpy's rounding lands on the double nearest the 4-decimal value (15.4, where
            # Arrow's round gives 15.399999999999999); +0.0 turns -0.0 into 0.0 ("-0").
            array = pa.array(np.round(series.to_numpy(dtype="float64"), 4) + 0.0, from_pandas=True)
        elif pd.api.types.is_integer_dtype(series):
            array = pa.array(series.to_numpy(dtype="int64"))
        else:
            array = pa.array(series.astype(object).to_numpy(), from_pandas=True)
            if pa.types.is_null(array.type) or pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                array = array.cast(pa.string())
                # Blank text is written as an empty field, the same as a missing value.
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(columns))


_NEEDS_QUOTES = r'[",\r\n]'

# Text a spreadsheet would run as a formula when it opens the CSV (OWASP's CSV injection rule: a cell
# starting with = + - @, a tab or a carriage return), and text starting with the guard itself, gets a
# leading quote. Every text field starting with a quote has had one added, so taking exactly one off
# gives the text back (warehouse.replace_date_rows does, after COPY). All ASCII: in UTF-8 the first
# byte of a field says it.
GUARD = "'"
_GUARDED_FIRST_BYTES = np.zeros(256, dtype=bool)
_GUARDED_FIRST_BYTES[list(b"=+-@\t\r'")] = True


def _guard_mask(text: pa.Array) -> np.ndarray:
    """Which fields of a string array with no nulls start with a guarded character, from its buffers
    (a lookup of each field's first byte: no pass over the text)."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    if data is None or data.size == 0:
        return np.zeros(len(text), dtype=bool)
    first = np.frombuffer(data, dtype=np.uint8)[np.minimum(offsets[:-1], data.size - 1)]
    guarded: np.ndarray = (offsets[1:] > offsets[:-1]) & _GUARDED_FIRST_BYTES[first]
    return guarded


def _guarded(text: pa.Array) -> pa.Array:
    mask = _guard_mask(text)
    if not mask.any():
        return text
    return pc.if_else(pa.array(mask), pc.binary_join_element_wise(GUARD, text, ""), text)


def _float_text(column: pa.ChunkedArray) -> pa.Array:
    """Shortest decimal text of rounded floats, never in exponent form (1e+10 -> 10000000000)."""
    text = pc.cast(column, pa.string()).combine_chunks()
    exponent = pc.fill_null(pc.match_substring(text, "e"), False)
    if not pc.any(exponent).as_py():
        return text
    values = column.combine_chunks().to_numpy(zero_copy_only=False)
    fixed = text.to_pylist()
    for index in np.flatnonzero(exponent.to_numpy(zero_copy_only=False)):
        fixed[index] = np.format_float_positional(values[index], trim="-")
    return pa.array(fixed, type=pa.string())


def csv_bytes(table: pa.Table) -> bytes:
    """CSV lines for a table, quoting only fields that need it (RFC 4180), vectorised in Arrow.

    Arrow's own writer quotes every text field; people open these files in
    spreadsheets and diff them, so they get the plain form. Text columns (not
    numbers, dates or booleans) are guarded against spreadsheet formulas (GUARD).
    """
    if table.num_rows == 0:
        return b""
    fields = []
    for column in table.columns:
        as_text = _float_text(column) if pa.types.is_floating(column.type) else pc.cast(column, pa.string())
        text = pc.fill_null(as_text, "")
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            if isinstance(text, pa.ChunkedArray):
                text = pa.chunked_array([_guarded(chunk) for chunk in text.chunks], pa.string())
            else:
                text = _guarded(text)
            # Numbers, booleans and dates never need quotes; most text columns have no field that does,
            # and skipping the quoting passes for them halves the time of a day's CSV.
            needs_quotes = pc.match_substring_regex(text, _NEEDS_QUOTES)
            if pc.any(needs_quotes).as_py():
                quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
                text = pc.if_else(needs_quotes, quoted, text)
        fields.append(text)
    joined = pc.binary_join_element_wise(*fields, ",") if len(fields) > 1 else fields[0]
    lines = pc.binary_join_element_wise(joined, "\n", "")
    array = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    # The lines lie back to back in the array's data buffer: take them without a Python loop.
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    lines_bytes: bytes = array.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    return lines_bytes


class OutputWriteError(OSError):
    """A day's output file could not be written; nothing was renamed in under its name.

    An OSError with the errno of the failure (ENOSPC for a full disk) and the
    output's final path as ``filename``, so callers that look at ``errno`` keep
    working; the original error is its ``__cause__``.
    """

    @classmethod
    def from_cause(cls, path: StoragePath, cause: OSError, disk: Path | None = None) -> OutputWriteError:
        """``disk``: where the file was being written, when not beside ``path`` (a bucket's file is
        made in the worker's temporary folder)."""
        if cause.errno == errno.ENOSPC:
            reason = "the disk is full (no space left on device)"
        elif cause.errno == errno.EDQUOT:
            reason = "the disk quota is exceeded"
        else:
            reason = cause.strerror or str(cause)
        hint = (
            f"free space on the disk of {disk or path.parent} and run the step again"
            if cause.errno in (errno.ENOSPC, errno.EDQUOT)
            else "run the step again once that is fixed"
        )
        message = f"cannot write {path}: {reason}; {path.name} was not replaced and no partial file was left; {hint}"
        # The plain OSError signature: the error still pickles and unpickles as itself.
        return cls(cause.errno, message, str(path))

    def __str__(self) -> str:
        # OSError would add "[Errno 28]" and the file name: the message already says both in words.
        return str(self.strerror)


class CsvSink:
    """A CSV written under a temporary name and renamed when complete; for an object store, written
    to a temporary file on this machine and uploaded when complete (an object appears whole)."""

    def __init__(self, path: StoragePath, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self.rows = 0
        # Where the file is made: beside it, or (for an object store) in this machine's temporary folder.
        self._disk = None if isinstance(path, Path) else Path(tempfile.gettempdir())
        try:
            if isinstance(path, Path):
                path.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            else:
                handle, temporary = tempfile.mkstemp(prefix=f"autopo-{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise OutputWriteError.from_cause(path, exc, self._disk) from exc
        self._temporary = Path(temporary)
        self._handle = os.fdopen(handle, "wb")
        self._guarded(lambda: self._handle.write((",".join(self.columns) + "\n").encode("utf-8")))

    def _guarded(self, step: Callable[[], object]) -> None:
        # A write can fail on the last byte as well as the first (a full disk); the
        # sink then removes its temporary itself, so the error's promise holds for any caller.
        try:
            step()
        except OSError as exc:
            self.abort()
            raise OutputWriteError.from_cause(self.path, exc, self._disk) from exc

    def encode(self, frame: pd.DataFrame) -> bytes:
        """The CSV lines of ``frame`` in this sink's columns; touches no file, so any thread may call it."""
        return b"" if frame.empty else csv_bytes(_to_arrow(frame, self.columns))

    def write(self, frame: pd.DataFrame) -> None:
        self.write_encoded(self.encode(frame), len(frame))

    def write_encoded(self, data: bytes, rows: int) -> None:
        if rows:
            self._guarded(lambda: self._handle.write(data))
            self.rows += rows

    def finish(self) -> None:
        """Get every byte onto the disk (where a full disk shows, at the latest); idempotent."""
        if self._handle.closed:
            return

        def flush_and_close() -> None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

        self._guarded(flush_and_close)

    def commit(self) -> StoragePath:
        self.finish()
        storage.upload(self._temporary, self.path)
        return self.path

    def abort(self) -> None:
        if not self._handle.closed:
            # Closing flushes what is buffered, which fails again on a full disk; the
            # file is closed all the same, and its temporary must go either way.
            with contextlib.suppress(OSError):
                self._handle.close()
        self._temporary.unlink(missing_ok=True)


# --- the day's outputs -----------------------------------------------------------


@dataclass(frozen=True)
class Part:
    directory: StoragePath
    meta: dict[str, Any]

    @property
    def partition(self) -> str:
        return str(self.meta.get("partition") or "")


def batches(parts: Sequence[Part], aggregation: AggregationConfig) -> Iterator[list[Part]]:
    """Group parts into bounded batches; a partition (store) is never split across two."""
    ordered = sorted(parts, key=lambda p: (p.partition, str(p.meta.get("file_name", ""))))
    groups: list[list[Part]] = []
    for part in ordered:
        # Parts without a partition may hold any keys: they can only be sorted together, in one batch.
        if groups and groups[-1][0].partition == part.partition:
            groups[-1].append(part)
        else:
            groups.append([part])
    batch: list[Part] = []
    size = 0
    for group in groups:
        group_size = sum(int(p.meta.get("part_bytes", 0)) for p in group)
        if batch and (
            len(batch) + len(group) > aggregation.files_per_batch or size + group_size > aggregation.bytes_per_batch
        ):
            yield batch
            batch, size = [], 0
        batch.extend(group)
        size += group_size
    if batch:
        yield batch


@dataclass
class DayOutputs:
    files: dict[str, str] = field(default_factory=dict)
    rows_out: int = 0
    # Rows written to the partial-load CSV (write_day_outputs' ``partial``), when asked for one.
    partial_rows: int = 0
    rows_rejected: int = 0
    # Rows of several files that were one row of the day (merge_day_rows).
    rows_merged: int = 0
    batches: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)


# Batches prepared at once (read, merged, sorted, turned into CSV lines) on threads: Arrow's CSV
# work and Parquet reads release the GIL, so two use two cores; memory is that many batches.
AGGREGATE_THREADS = 2


@dataclass
class _PreparedBatch:
    rows: pd.DataFrame
    snapshot_lines: bytes
    merged: int
    rejects_lines: bytes
    rejected: int
    partial_lines: bytes = b""
    partial_rows: int = 0


@dataclass(frozen=True)
class PartialOutput:
    """Where to write, besides the snapshot, the snapshot rows of some partitions only (the stores that
    changed since the date's last load: outputs.PartialLoad)."""

    path: StoragePath
    partitions: frozenset[str]


_In = TypeVar("_In")
_Out = TypeVar("_Out")


def _in_order(work: Callable[[_In], _Out], items: Iterable[_In], threads: int) -> Iterator[_Out]:
    """``work`` over ``items`` on ``threads`` threads, results in the items' order, never more than
    ``threads`` of them computed ahead of the one being consumed."""
    if threads <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aggregate") as pool:
        pending: deque[Future[_Out]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _count_statuses(counts: dict[str, int], rows: pd.DataFrame, column: str | None) -> None:
    if column is not None:
        for status, count in rows[column].value_counts().items():
            counts[str(status)] = counts.get(str(status), 0) + int(count)


def _partial_lines(
    partial: PartialOutput, sink: CsvSink, batch: list[Part], rows: pd.DataFrame, column: str | None
) -> tuple[bytes, int]:
    """The CSV lines of the batch's rows of the partial output's partitions, and how many."""
    if column is None or not any(part.partition in partial.partitions for part in batch):
        return b"", 0
    changed = rows[rows[column].astype(str).isin(partial.partitions)]
    return sink.encode(changed), len(changed)


def write_day_outputs(
    parts: Sequence[Part],
    *,
    seeds_dir: StoragePath,
    date: dt.date,
    definition: TransformDefinition,
    settings: Any,
    aggregation: AggregationConfig,
    partial: PartialOutput | None = None,
) -> DayOutputs:
    stamp = date_stamp(date)
    # From here until the new rejects file is renamed in, the day is not finished.
    storage.remove(seeds_dir / f"{stamp}_rejects.csv")
    sinks: list[CsvSink] = []
    result = DayOutputs()
    try:
        # Inside the try: a second sink that cannot be created must not leave the first's temporary.
        snapshot = CsvSink(seeds_dir / f"{stamp}.csv", definition.snapshot.columns)
        sinks.append(snapshot)
        rejects = CsvSink(seeds_dir / f"{stamp}_rejects.csv", REJECT_COLUMNS)
        sinks.append(rejects)
        partial_sink = None if partial is None else CsvSink(partial.path, definition.snapshot.columns)
        if partial_sink is not None:
            sinks.append(partial_sink)
        derived = list(definition.derived_outputs(settings))

        def prepare(batch: list[Part]) -> _PreparedBatch:
            # Oldest file first: where rows of several files merge, the latest file's values win.
            oldest_first = sorted(batch, key=lambda p: (float(p.meta.get("modified") or 0), str(p.meta["file_name"])))
            rows = pd.concat([storage.read_parquet(p.directory / ROWS_FILE) for p in oldest_first], ignore_index=True)
            merged = 0
            if definition.merge_day_rows is not None:
                before = len(rows)
                rows = definition.merge_day_rows(rows, settings)
                merged = before - len(rows)
            rows = rows.sort_values(list(definition.snapshot.sort), kind="stable")
            rejected = pd.concat([storage.read_parquet(p.directory / REJECTS_FILE) for p in batch], ignore_index=True)
            prepared = _PreparedBatch(rows, snapshot.encode(rows), merged, rejects.encode(rejected), len(rejected))
            if (
                partial_sink is not None
                and partial is not None
                and any(p.partition in partial.partitions for p in batch)
            ):
                assert definition.snapshot.partition is not None  # a partial load is planned for partitions only
                changed = rows[rows[definition.snapshot.partition].astype(str).isin(partial.partitions)]
                prepared.partial_lines, prepared.partial_rows = partial_sink.encode(changed), len(changed)
            return prepared

        for prepared in _in_order(prepare, batches(parts, aggregation), AGGREGATE_THREADS):
            result.batches += 1
            result.rows_merged += prepared.merged
            snapshot.write_encoded(prepared.snapshot_lines, len(prepared.rows))
            _count_statuses(result.status_counts, prepared.rows, definition.snapshot.status_column)
            for output in derived:
                output.update(prepared.rows)
            rejects.write_encoded(prepared.rejects_lines, prepared.rejected)
            if partial_sink is not None:
                partial_sink.write_encoded(prepared.partial_lines, prepared.partial_rows)
            del prepared
        derived_sinks = []
        for output in derived:
            frame = output.result()
            sink = CsvSink(seeds_dir / f"{stamp}{output.suffix}.csv", list(frame.columns))
            sinks.append(sink)
            sink.write(frame)
            derived_sinks.append(sink)
        in_order = [snapshot, *derived_sinks, rejects]
        # Every file is on the disk before the first is renamed in: a full disk then
        # fails the day with all previous outputs in place, not a new D.csv next to old others.
        for sink in in_order:
            sink.finish()
        # The rejects file is renamed last: its presence says the day finished.
        for sink in in_order:
            result.files[sink.path.name] = str(sink.commit())
        if partial_sink is not None:
            partial_sink.commit()
            result.partial_rows = partial_sink.rows
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    result.rows_out = snapshot.rows
    result.rows_rejected = rejects.rows
    return result
