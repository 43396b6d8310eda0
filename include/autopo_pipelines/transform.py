"""What a pipeline's transform module provides, and the shared per-file flow.

A pipeline is one config file plus one transform module that exposes a
``TRANSFORM`` (a :class:`TransformDefinition`). Reading, header detection,
cleaning, rejects, aggregation and loading are shared; the module only says
what its rows mean and what it computes from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel

from autopo_pipelines.config import DateFormat, NumberFormat, PipelineConfig
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.storage import StoragePath
from autopo_pipelines.tabular import (
    REJECT_COLUMNS,
    HeaderRule,
    RejectCollector,
    SkippedRows,
    select_columns,
    skip_rows,
)
from autopo_pipelines.xlsx_reader import HeaderNotFoundError, read_sheet_table


@dataclass(frozen=True)
class DayContext:
    """Everything about the day a transform may depend on besides the file itself."""

    pipeline: str
    date: dt.date
    # The data root: a local folder or an object-store path (storage.StoragePath).
    data_root: StoragePath
    warehouse_conninfo: str | None = None


@dataclass(frozen=True)
class FileContext:
    file_name: str
    sheet: str
    store_id: str | None
    headers: dict[str, str]
    date: dt.date
    number_format: NumberFormat
    date_format: DateFormat = field(default_factory=DateFormat)


@dataclass
class CleanRows:
    """A file's rows after skipping, with a collector for rows the transform rejects."""

    frame: pd.DataFrame
    row_numbers: Any
    rejects: RejectCollector
    rows_in: int
    skipped: SkippedRows


class DerivedOutput(Protocol):
    """An extra output of the day built from the snapshot in bounded batches."""

    suffix: str  # e.g. "_m2" -> D_m2.csv

    def update(self, batch: pd.DataFrame) -> None: ...

    def result(self) -> pd.DataFrame: ...

    # The result in one or more frames of the same columns, in order (the first gives the header): what
    # the aggregate writes, so a long output is never made into one frame.
    def frames(self) -> Iterator[pd.DataFrame]: ...


@dataclass(frozen=True)
class RowRules:
    """Which rows of a sheet are the pipeline's: its header, and the rows it skips."""

    # Columns the transform cannot work without: they also find the header row.
    required: tuple[str, ...]
    # A row without it is skipped, not rejected (separator and subtotal lines).
    key: str
    # Besides the key, the columns where a total row says "Total".
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotTable:
    """The day's snapshot: its CSV columns in order, how it is sorted, and its table.

    The table itself, like every table, is defined by a migration in ``migrations/``
    (``autopo_pipelines.migrations``), never here: a load only fills it.
    """

    name: str
    columns: tuple[str, ...]
    sort: tuple[str, ...]
    date_column: str = "snapshot_date"
    # Files of one partition value never overlap another's rows, so the day can
    # be written partition by partition in bounded memory and stay sorted.
    partition: str | None = None
    # A column whose value counts the run reports (e.g. stock status).
    status_column: str | None = None

    def __post_init__(self) -> None:
        unknown = [c for c in (*self.sort, self.date_column) if c not in self.columns]
        if unknown:
            raise ValueError(f"sort/date columns {unknown} are not snapshot columns")


def _no_day_inputs(context: DayContext, settings: Any, folder: Path) -> list[str]:
    return []


def _no_loaded_inputs(context: DayContext, settings: Any, folder: Path) -> None:
    return None


@dataclass(frozen=True)
class TransformDefinition:
    settings_model: type[BaseModel]
    rows: RowRules
    snapshot: SnapshotTable
    transform: Callable[[CleanRows, FileContext, Any, Any], pd.DataFrame]
    # Reference data the day's files are transformed with (a supplier master, another
    # pipeline's table), read once when the day's files are listed and written into
    # ``folder``, so every file of the run sees the same data and a later change of it
    # reaches the snapshot only through a new run. Returns notes for the run's log and
    # tracking row (e.g. "ran without PO data"); raises ReferenceDataError when unusable.
    prepare_day_inputs: Callable[[DayContext, Any, Path], list[str]] = _no_day_inputs
    # What each file's transform receives as ``day``, read back from that folder.
    load_day_inputs: Callable[[DayContext, Any, Path], Any] = _no_loaded_inputs
    derived_outputs: Callable[[Any], Sequence[DerivedOutput]] = field(default=lambda settings: ())
    # Rows of several files that share a key are one row of the day (the same PO line
    # in two exports). Called with a batch's rows, oldest file first; needs every file
    # in one batch, so only for snapshots without a partition.
    merge_day_rows: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None
    # Named groups the file pattern must have for this transform (e.g. "store").
    pattern_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.merge_day_rows is not None and self.snapshot.partition is not None:
            raise ValueError("merge_day_rows needs the whole day in one batch: the snapshot cannot have a partition")


@dataclass(frozen=True)
class FileOutcome:
    rows: pd.DataFrame
    rejects: pd.DataFrame
    sheet: str
    rows_in: int
    skipped: SkippedRows

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="int64" if name == "row_number" else object) for name in REJECT_COLUMNS})


def transform_file(
    path: Path,
    *,
    config: PipelineConfig,
    definition: TransformDefinition,
    settings: Any,
    day_inputs: Any,
    date: dt.date,
    store_id: str | None,
    file_name: str | None = None,
) -> FileOutcome:
    """Read one source file and turn it into snapshot rows and rejects.

    Raises InputFileError when the file cannot be used as a whole (structure,
    reject ratio); nothing of such a file reaches the snapshot.
    """
    name = file_name or path.name

    reading = config.reading_for(name, store_id)
    rule = HeaderRule(reading.columns, reading.pins)
    try:
        table = read_sheet_table(
            path,
            sheet=reading.sheet,
            header_search_rows=reading.header_search_rows,
            is_header=rule.is_header,
            file_name=name,
            max_uncompressed_bytes=config.max_uncompressed_bytes,
        )
    except HeaderNotFoundError as exc:
        raise rule.no_header(exc, search_rows=reading.header_search_rows) from exc
    selected = select_columns(
        table.header,
        table.data,
        table.row_numbers,
        rule,
        file=name,
        sheet=table.sheet,
        header_row=table.header_row,
        first_column=table.first_column,
    )
    rows_in = len(selected.frame)
    kept, skipped = skip_rows(
        selected, key=definition.rows.key, label_columns=definition.rows.labels, all_cells=table.data
    )
    clean = CleanRows(
        frame=kept.frame,
        row_numbers=kept.row_numbers,
        rejects=RejectCollector(
            file=name, sheet=table.sheet, frame=kept.frame, row_numbers=kept.row_numbers, headers=kept.headers
        ),
        rows_in=rows_in,
        skipped=skipped,
    )
    context = FileContext(
        file_name=name,
        sheet=table.sheet,
        store_id=store_id,
        headers=kept.headers,
        date=date,
        number_format=reading.numbers,
        date_format=reading.dates,
    )
    rows = definition.transform(clean, context, settings, day_inputs)
    rejects = clean.rejects.to_frame() if clean.rejects.reasons else empty_rejects()
    data_rows = len(kept.frame)
    if data_rows and len(rejects) / data_rows > config.max_reject_ratio:
        first = rejects.iloc[0]
        raise InputFileError(
            name,
            f"{len(rejects)} of {data_rows} data rows rejected, more than the allowed "
            f"{config.max_reject_ratio * 100:g}%; first: row {first['row_number']}: {first['reason']}",
            sheet=table.sheet,
        )
    return FileOutcome(rows=rows, rejects=rejects, sheet=table.sheet, rows_in=rows_in, skipped=skipped)
