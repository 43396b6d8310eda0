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

A part of one partition (store) also keeps its rows as *ready lines*: the CSV
lines the aggregate would write for a batch holding only that part (its
snapshot rows sorted, and its rejects), made while the files are transformed in
parallel. Where a store has exactly one part, the aggregate appends those bytes
as they are instead of reading, sorting and encoding its rows again, so a rerun
that reuses most parts costs little more than copying them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import hashlib
import itertools
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
from autopo_pipelines.transform import DerivedOutput, FileOutcome, TransformDefinition

PART_META = "part.json"
ROWS_FILE = "rows.parquet"
REJECTS_FILE = "rejects.parquet"
# A part's ready lines (see the module's docstring), without a header; its meta says what they hold
# under READY_LINES.
SNAPSHOT_LINES_FILE = "rows.csv"
REJECTS_LINES_FILE = "rejects.csv"
READY_LINES = "ready_lines"
# The files of a part in the order they are uploaded to an object store: PART_META, the marker, last.
PART_FILES = (ROWS_FILE, REJECTS_FILE, SNAPSHOT_LINES_FILE, REJECTS_LINES_FILE, PART_META)

# The version of the CSV text written for a value (csv_bytes, _to_arrow). A part's ready lines made by
# another version are not used (its rows are encoded again, in the day's current text): bump it whenever
# the text of any value changes. tests/unit/test_aggregate.py pins the text of this version.
CSV_TEXT_VERSION = 1


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


def _stage_part(
    staging: Path, outcome: FileOutcome, meta: dict[str, Any], definition: TransformDefinition | None
) -> dict[str, Any]:
    """The part's files in a local folder; returns its meta (also written there as PART_META)."""
    rows = outcome.rows
    ready = definition is not None and _keeps_ready_lines(rows, meta, definition)
    if ready:
        assert definition is not None
        # In the snapshot's order (the aggregate's stable sort): the aggregate reads these rows for the
        # derived outputs without sorting them again, and a batch of such parts sorts as one of unsorted
        # ones (a stable sort keeps the order of equal keys within each part either way).
        rows = rows.sort_values(list(definition.snapshot.sort), kind="stable")
    rows.to_parquet(staging / ROWS_FILE, index=False)
    outcome.rejects.to_parquet(staging / REJECTS_FILE, index=False)
    full_meta = {
        **meta,
        "sheet": outcome.sheet,
        "rows_in": outcome.rows_in,
        "rows_out": len(outcome.rows),
        "rows_rejected": outcome.rows_rejected,
        "rows_skipped": outcome.skipped.as_dict(),
        # What the aggregate holds of the part in memory (batches are bounded by it): its rows. Ready
        # lines are streamed from their files, never held.
        "part_bytes": sum((staging / name).stat().st_size for name in (ROWS_FILE, REJECTS_FILE)),
    }
    if ready:
        assert definition is not None
        full_meta[READY_LINES] = _write_ready_lines(staging, definition)
    (staging / PART_META).write_text(json.dumps(full_meta, indent=2, default=str), encoding="utf-8")
    return full_meta


def write_part(
    directory: StoragePath,
    outcome: FileOutcome,
    meta: dict[str, Any],
    *,
    definition: TransformDefinition | None = None,
) -> dict[str, Any]:
    """Write a file's part; with the pipeline's ``definition``, a part of one partition also keeps its
    ready lines (the module's docstring)."""
    if not isinstance(directory, Path):
        return _upload_part(directory, outcome, meta, definition)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Before a new temporary is added: leftovers of killed transforms would otherwise pile up for good.
    _remove_stale_temporaries(directory.parent)
    tag = _writer_tag()
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.{tag}.", dir=directory.parent))
    try:
        full_meta = _stage_part(staging, outcome, meta, definition)
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


def _upload_part(
    directory: StoragePath, outcome: FileOutcome, meta: dict[str, Any], definition: TransformDefinition | None
) -> dict[str, Any]:
    """A part in an object store: made on the worker's disk, then uploaded with its marker last.

    The marker of a previous part under the name goes first, so no reader takes its meta for the
    new rows while they are uploaded; a transform killed in between leaves no part (the file is
    transformed again), never a mix.
    """
    with tempfile.TemporaryDirectory(prefix="autopo-part-") as folder:
        staging = Path(folder)
        full_meta = _stage_part(staging, outcome, meta, definition)
        storage.remove(directory / PART_META)
        # A previous part's ready lines left under the name are never read: the new marker says
        # whether the part has any.
        for name in PART_FILES:
            if (staging / name).exists():
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
        elif isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
            # Text pandas holds in Arrow already: taken as it is, not through a Python object per value.
            array = _blank_as_missing(pa.array(series.array).cast(pa.string()))
        else:
            array = pa.array(series.astype(object).to_numpy(), from_pandas=True)
            if pa.types.is_null(array.type) or pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                array = _blank_as_missing(array.cast(pa.string()))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(columns))


def _blank_as_missing(text: pa.Array) -> pa.Array:
    # Blank text is written as an empty field, the same as a missing value.
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


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


def encode_lines(frame: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """The CSV lines of ``frame`` in ``columns``, without a header."""
    return b"" if frame.empty else csv_bytes(_to_arrow(frame, columns))


class DamagedPartError(RuntimeError):
    """A part whose files do not match its meta (a ready lines file of another length than it recorded)."""


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


# Rows of a frame encoded at once by CsvSink.write: about a batch's worth of one store.
_ENCODE_ROWS = 50_000

# What is held at once of a part's ready lines while they are appended to an output (an object store's
# file reads ahead in blocks of its own).
_COPY_CHUNK_BYTES = 2**20


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
        return encode_lines(frame, self.columns)

    def write(self, frame: pd.DataFrame) -> None:
        """Append a whole frame (a derived output's), encoded a slice at a time: the encoding's Arrow
        intermediates take a few times the text, and the frame may hold rows of the whole day."""
        for start in range(0, len(frame), _ENCODE_ROWS):
            rows = frame.iloc[start : start + _ENCODE_ROWS]
            self.write_encoded(self.encode(rows), len(rows))

    def write_encoded(self, data: bytes, rows: int) -> None:
        if rows:
            self._guarded(lambda: self._handle.write(data))
            self.rows += rows

    def write_lines(self, lines: _Lines) -> None:
        if lines.file is None:
            self.write_encoded(lines.data, lines.rows)
        elif lines.rows:
            self.append_file(lines.file, lines.rows, lines.size)

    def append_file(self, source: StoragePath, rows: int, size: int) -> None:
        """Append a file of ``rows`` CSV lines as it is (a part's ready lines), a chunk at a time so that it
        is never all in memory. ``size``: the file's length as its part recorded it."""
        copied = 0
        # Only the writes are guarded: a part that cannot be read is not an output that cannot be written.
        with storage.open_for_reading(source) as lines:
            while chunk := lines.read(_COPY_CHUNK_BYTES):
                self._guarded(functools.partial(self._handle.write, chunk))
                copied += len(chunk)
        if copied != size:
            raise DamagedPartError(
                f"{source} holds {copied} bytes where its part recorded {size}: the part is damaged; remove "
                f"{source.parent} and run the day again (its file is then transformed anew)"
            )
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


def _status_counts(rows: pd.DataFrame, column: str | None) -> dict[str, int]:
    if column is None:
        return {}
    return {str(status): int(count) for status, count in rows[column].value_counts().items()}


def _add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for status, count in counts.items():
        total[status] = total.get(status, 0) + count


# --- a part's ready lines ---------------------------------------------------------------


def takes_ready_lines(definition: TransformDefinition) -> bool:
    """Whether the day's snapshot can be written from parts' ready lines: it is written partition by
    partition (its sort starts with the partition column, so in a batch one partition's rows follow
    another's), and no row depends on another file's (TransformDefinition allows merge_day_rows only
    without a partition: the lines of a part are then its rows sorted, as a batch of it alone would be)."""
    snapshot = definition.snapshot
    return (
        snapshot.partition is not None
        and snapshot.sort[:1] == (snapshot.partition,)
        and definition.merge_day_rows is None
    )


def _keeps_ready_lines(rows: pd.DataFrame, meta: dict[str, Any], definition: TransformDefinition) -> bool:
    """Whether a part keeps ready lines: all its rows are of the partition its meta names, and that value
    is text, which sorts within a batch (pandas) as the partitions sort between batches (by name)."""
    column = definition.snapshot.partition
    partition = meta.get("partition")
    if not takes_ready_lines(definition) or column is None or not partition or column not in rows.columns:
        return False
    values = rows[column].unique()
    return len(values) == 1 and isinstance(values[0], str) and values[0] == partition


def _line_rules(definition: TransformDefinition) -> dict[str, Any]:
    """What the text of ready lines depends on besides the rows: lines made under other rules (another
    version of the text, columns or sort changed since) are not used."""
    return {
        "text_version": CSV_TEXT_VERSION,
        "columns": list(definition.snapshot.columns),
        "sort": list(definition.snapshot.sort),
        "reject_columns": list(REJECT_COLUMNS),
    }


def _write_ready_lines(staging: Path, definition: TransformDefinition) -> dict[str, Any]:
    """Write a part's ready lines beside its Parquet files; returns what its meta says of them."""
    # The rows as the aggregate reads them (a round trip through Parquet may change a column's type),
    # already in the snapshot's order (_stage_part).
    rows = pd.read_parquet(staging / ROWS_FILE)
    rejects = pd.read_parquet(staging / REJECTS_FILE)
    snapshot_lines = encode_lines(rows, definition.snapshot.columns)
    reject_lines = encode_lines(rejects, REJECT_COLUMNS)
    (staging / SNAPSHOT_LINES_FILE).write_bytes(snapshot_lines)
    (staging / REJECTS_LINES_FILE).write_bytes(reject_lines)
    return {
        **_line_rules(definition),
        "rows": len(rows),
        "rows_bytes": len(snapshot_lines),
        "rejects": len(rejects),
        "rejects_bytes": len(reject_lines),
        "status_counts": _status_counts(rows, definition.snapshot.status_column),
    }


@dataclass(frozen=True)
class _ReadyLines:
    """A part's ready lines, as its meta describes them."""

    rows: int
    rows_bytes: int
    rejects: int
    rejects_bytes: int
    status_counts: dict[str, int]

    @classmethod
    def of(cls, part: Part, definition: TransformDefinition) -> _ReadyLines | None:
        """The part's ready lines, when it has some made under the day's rules (a part written by an
        earlier version has none)."""
        ready = part.meta.get(READY_LINES)
        if not part.partition or not isinstance(ready, dict):
            return None
        if any(ready.get(key) != value for key, value in _line_rules(definition).items()):
            return None
        counts = ready.get("status_counts") or {}
        return cls(
            rows=int(ready["rows"]),
            rows_bytes=int(ready["rows_bytes"]),
            rejects=int(ready["rejects"]),
            rejects_bytes=int(ready["rejects_bytes"]),
            status_counts={str(status): int(count) for status, count in counts.items()},
        )


# --- preparing a batch ------------------------------------------------------------------


@dataclass(frozen=True)
class _Lines:
    """Some CSV lines of an output: made in memory, or a part's ready lines, streamed from their file."""

    rows: int
    data: bytes = b""
    file: StoragePath | None = None
    # The file's length, as its part recorded it.
    size: int = 0


@dataclass
class _PreparedBatch:
    # The batch's snapshot rows in the snapshot's order, for the derived outputs; None when there are none.
    rows: pd.DataFrame | None
    merged: int
    status_counts: dict[str, int]
    snapshot: list[_Lines]
    rejects: list[_Lines]
    partial: list[_Lines]


@dataclass(frozen=True)
class _BatchPreparer:
    """A batch of parts made into the lines of the day's outputs; touches no output, so it runs on the
    aggregate's threads."""

    definition: TransformDefinition
    settings: Any
    partial: PartialOutput | None
    # Whether anything needs the batch's rows as a frame (the derived outputs): a batch of ready lines
    # then still reads its parts' rows, though it encodes nothing.
    with_rows: bool

    def __call__(self, batch: list[Part]) -> _PreparedBatch:
        if takes_ready_lines(self.definition):
            found = (_ReadyLines.of(part, self.definition) for part in batch)
            ready = [lines for lines in found if lines is not None]
            if len(ready) == len(batch):
                return self._from_ready_lines(list(zip(batch, ready, strict=True)))
        # A part without a partition (its rows may go anywhere in the batch's order), or written by an
        # earlier version: the whole batch from its rows.
        return self._from_rows(batch)

    def _day_rows(self, parts: list[Part]) -> tuple[pd.DataFrame, int]:
        """The parts' rows as the snapshot holds them (merged, sorted), and how many were merged away."""
        # Oldest file first: where rows of several files merge, the latest file's values win.
        oldest_first = sorted(parts, key=lambda p: (float(p.meta.get("modified") or 0), str(p.meta["file_name"])))
        rows = pd.concat([storage.read_parquet(p.directory / ROWS_FILE) for p in oldest_first], ignore_index=True)
        merged = 0
        if self.definition.merge_day_rows is not None:
            before = len(rows)
            rows = self.definition.merge_day_rows(rows, self.settings)
            merged = before - len(rows)
        return rows.sort_values(list(self.definition.snapshot.sort), kind="stable"), merged

    def _from_rows(self, batch: list[Part]) -> _PreparedBatch:
        snapshot = self.definition.snapshot
        rows, merged = self._day_rows(batch)
        rejected = pd.concat([storage.read_parquet(p.directory / REJECTS_FILE) for p in batch], ignore_index=True)
        partial: list[_Lines] = []
        if self.partial is not None and any(p.partition in self.partial.partitions for p in batch):
            assert snapshot.partition is not None  # a partial load is planned for partitions only
            changed = rows[rows[snapshot.partition].astype(str).isin(self.partial.partitions)]
            partial.append(_Lines(len(changed), encode_lines(changed, snapshot.columns)))
        return _PreparedBatch(
            rows=rows if self.with_rows else None,
            merged=merged,
            status_counts=_status_counts(rows, snapshot.status_column),
            snapshot=[_Lines(len(rows), encode_lines(rows, snapshot.columns))],
            rejects=[_Lines(len(rejected), encode_lines(rejected, REJECT_COLUMNS))],
            partial=partial,
        )

    def _from_ready_lines(self, batch: list[tuple[Part, _ReadyLines]]) -> _PreparedBatch:
        """A batch of parts that all have ready lines: partition by partition (the batch's order, as its
        partitions never share rows), a partition of one part as its lines, one of several as a batch of
        its own would be; the rejects as their lines, in the batch's order."""
        snapshot = self.definition.snapshot
        prepared = _PreparedBatch(rows=None, merged=0, status_counts={}, snapshot=[], rejects=[], partial=[])
        frames: list[pd.DataFrame] = []
        for partition, grouped in itertools.groupby(batch, key=lambda item: item[0].partition):
            group = list(grouped)
            if len(group) == 1:
                part, ready = group[0]
                lines = _Lines(ready.rows, file=part.directory / SNAPSHOT_LINES_FILE, size=ready.rows_bytes)
                _add_counts(prepared.status_counts, ready.status_counts)
                if self.with_rows:
                    frames.append(storage.read_parquet(part.directory / ROWS_FILE))
            else:
                # Several files of one store: their rows sorted together, oldest file first.
                rows, merged = self._day_rows([part for part, _ in group])
                lines = _Lines(len(rows), encode_lines(rows, snapshot.columns))
                prepared.merged += merged
                _add_counts(prepared.status_counts, _status_counts(rows, snapshot.status_column))
                if self.with_rows:
                    frames.append(rows)
            prepared.snapshot.append(lines)
            if self.partial is not None and partition in self.partial.partitions:
                prepared.partial.append(lines)
            prepared.rejects.extend(
                _Lines(ready.rejects, file=part.directory / REJECTS_LINES_FILE, size=ready.rejects_bytes)
                for part, ready in group
            )
        if self.with_rows:
            prepared.rows = pd.concat(frames, ignore_index=True)
        return prepared


def _write_derived(output: DerivedOutput, path: StoragePath, sinks: list[CsvSink]) -> CsvSink:
    """A derived output's frames into its CSV (its sink added to ``sinks`` as soon as it exists, for the
    caller to abort on error); the first frame gives the header."""
    sink = None
    for frame in output.frames():
        if sink is None:
            sink = CsvSink(path, list(frame.columns))
            sinks.append(sink)
        sink.write(frame)
    if sink is None:
        raise ValueError(f"derived output {output.suffix!r} gave no frame, not even an empty one")
    return sink


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
        prepare = _BatchPreparer(definition, settings, partial, with_rows=bool(derived))
        for prepared in _in_order(prepare, batches(parts, aggregation), AGGREGATE_THREADS):
            result.batches += 1
            result.rows_merged += prepared.merged
            _add_counts(result.status_counts, prepared.status_counts)
            for lines in prepared.snapshot:
                snapshot.write_lines(lines)
            if prepared.rows is not None:
                for output in derived:
                    output.update(prepared.rows)
            for lines in prepared.rejects:
                rejects.write_lines(lines)
            if partial_sink is not None:
                for lines in prepared.partial:
                    partial_sink.write_lines(lines)
            del prepared
            # Arrow's allocator (mimalloc by default) keeps the pages of freed batches for reuse and hands too few
            # back: the process grew with the number of batches (100 stores 1.18x of 10, derived outputs
            # aside) where it should follow the batches in flight.
            pa.default_memory_pool().release_unused()
        derived_sinks = [_write_derived(output, seeds_dir / f"{stamp}{output.suffix}.csv", sinks) for output in derived]
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
