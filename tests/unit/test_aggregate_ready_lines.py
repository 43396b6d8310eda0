"""A part's ready lines (autopo_pipelines.aggregate): the day written from them is the day written from the
parts' rows, byte for byte, on a realistic stock_health day.

The day: generated store reports (tools/autopo_local/sample_day.py, the demo's and the benchmark's
generator) and one store's hand-made report with text a CSV must quote or guard and rows the transform
rejects, all through the real transform; one store sends two files whose SKUs overlap. Each file's part
is written twice: as earlier versions wrote it (no ready lines) and with its ready lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from autopo_local.sample_day import _sku, write_store_file, write_supplier_master
from autopo_pipelines import aggregate
from autopo_pipelines.aggregate import (
    READY_LINES,
    REJECTS_LINES_FILE,
    SNAPSHOT_LINES_FILE,
    DamagedPartError,
    DayOutputs,
    Part,
    write_part,
)
from autopo_pipelines.config import PipelineConfig, load_config_file, transform_settings
from autopo_pipelines.day import Day
from autopo_pipelines.day.file_run import run_file
from autopo_pipelines.day.listing import list_day_files
from autopo_pipelines.day.outputs import aggregate_day
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.pipelines import stock_health as sh
from autopo_pipelines.transform import DayContext, FileOutcome, transform_file
from stock_health_outputs import write_stock_health_day

DAY = dt.date(2024, 12, 4)
REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"
OUTPUT_NAMES = ("20241204.csv", "20241204_m2.csv", "20241204_emergency.csv", "20241204_rejects.csv")
# The two files of STORE-003: the extra one sorts first by name but is the older (rows of several files
# of a store follow the oldest file first).
TWO_FILE_STORE = "STORE-003"

# A store's report as people type it: text a spreadsheet would run as a formula, text with the CSV's
# separators and quotes, blanks, and rows the transform rejects (not a number, negative sales).
HAND_MADE = [
    ["SKU", "Product Name", "Category", "Stock On Hand", "Sales Qty", "Unit Cost", "Store ID"],
    ["100000", '=HYPERLINK("http://x","Teh")', "Beverages", 12, 30, 2500, "STORE-007"],
    ["100007", 'Kopi, "Susu" 3in1', "Snacks, Sweet", 0, 60, 1500, "STORE-007"],
    ["100014", "+62 812 555", "-Dairy", 3, 0, None, "STORE-007"],
    ["100021", "@mention", "Household", -2, 15, 900, "STORE-007"],
    ["100028", "two\nlines", "'quoted", 40, 3, 12000, "STORE-007"],
    ["100035", "", None, 5, 5, 100, "STORE-007"],
    ["-100042", "Minus sku", "Frozen", 7, 90, 4000, "STORE-007"],
]
HAND_MADE_BAD = [
    ["100056", "Bad stock", "Frozen", 'abc, "x"', 3, 100, "STORE-007"],
    ["100063", "=1+1", "Frozen", 4, -3, 100, "STORE-007"],
]
HAND_MADE_GOOD_FILLER = [[_sku(100 + i), f"Filler {i}", "Snacks", i, i * 3, 1000 + i, "STORE-007"] for i in range(40)]


@dataclasses.dataclass(frozen=True)
class DayFile:
    store: str
    name: str
    modified: float
    outcome: FileOutcome


def hand_made_report(path: Path) -> Path:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Stock")
    for row in [*HAND_MADE, *HAND_MADE_BAD, *HAND_MADE_GOOD_FILLER]:
        sheet.append([text_cell(sheet, value) if isinstance(value, str) else value for value in row])
    workbook.save(path)
    return path


def text_cell(sheet: Any, value: str) -> WriteOnlyCell:
    """A cell of text, even text starting with "=" (openpyxl would write a formula)."""
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


@pytest.fixture(scope="module")
def day_files(tmp_path_factory: pytest.TempPathFactory) -> list[DayFile]:
    """The day's files through the real stock_health transform."""
    root = tmp_path_factory.mktemp("day")
    catalogue = [_sku(i) for i in range(150)]
    write_supplier_master(root / "reference" / "suppliers.csv", catalogue, random.Random(7))
    reports: list[tuple[str, Path, float]] = []
    for number in range(1, 7):
        store = f"STORE-{number:03d}"
        skus = sorted(random.Random(number).sample(catalogue, k=110), key=catalogue.index)
        path = root / "inbox" / f"{store}_stock_{DAY:%Y%m%d}.xlsx"
        write_store_file(path, store, DAY, skus, random.Random(number), style=number)
        reports.append((store, path, 2000.0 + number))
    # The two-file store's second report: half its SKUs again with other figures, sent earlier.
    extra = root / "inbox" / f"{TWO_FILE_STORE}_a_stock_{DAY:%Y%m%d}.xlsx"
    write_store_file(extra, TWO_FILE_STORE, DAY, catalogue[::2], random.Random(99), style=0)
    reports.append((TWO_FILE_STORE, extra, 1000.0))
    reports.append(("STORE-007", hand_made_report(root / "inbox" / f"STORE-007_stock_{DAY:%Y%m%d}.xlsx"), 2007.0))

    config: PipelineConfig = load_config_file(REAL_CONFIG)
    settings = transform_settings(config)
    inputs = root / "inputs"
    inputs.mkdir()
    context = DayContext("stock_health", DAY, DataLayout(root).root, None)
    sh.prepare_day_inputs(context, settings, inputs)
    day_inputs = sh.load_day_inputs(context, settings, inputs)
    files = []
    for store, path, modified in reports:
        outcome = transform_file(
            path,
            config=config,
            definition=sh.TRANSFORM,
            settings=settings,
            day_inputs=day_inputs,
            date=DAY,
            store_id=store,
            file_name=path.name,
        )
        files.append(DayFile(store, path.name, modified, outcome))
    return files


def test_the_day_has_what_the_comparison_needs(day_files: list[DayFile]) -> None:
    hand_made = next(file for file in day_files if file.store == "STORE-007")
    assert len(hand_made.outcome.rejects) == 2
    assert hand_made.outcome.rows["product_name"].str.startswith(("=", "+", "@")).sum() == 3
    assert [file.store for file in day_files].count(TWO_FILE_STORE) == 2
    assert sum(file.outcome.rows["emergency"].sum() for file in day_files) > 0


def write_parts(root: Path, files: list[DayFile], *, ready: bool) -> list[Part]:
    parts = []
    for number, file in enumerate(files):
        directory = root / "parts" / f"{file.name}.{number:016x}"
        meta = {
            "file_name": file.name,
            "file_path": f"inbox/{file.name}",
            "store_id": file.store,
            "partition": file.store,
            "modified": file.modified,
        }
        written = write_part(directory, file.outcome, meta, definition=sh.TRANSFORM if ready else None)
        parts.append(Part(directory=directory, meta={**written, "status": "completed"}))
    return parts


def run_day(parts: list[Part], seeds: Path, aggregation: dict[str, int], partial: frozenset[str]) -> DayOutputs:
    return write_stock_health_day(parts, seeds, partial=partial, **aggregation)


def outputs_of(seeds: Path, result: DayOutputs) -> dict[str, Any]:
    files = {name: (seeds / name).read_bytes() for name in (*OUTPUT_NAMES, "partial.csv") if (seeds / name).exists()}
    counts = {
        "rows_out": result.rows_out,
        "rows_rejected": result.rows_rejected,
        "rows_merged": result.rows_merged,
        "status_counts": result.status_counts,
        "partial_rows": result.partial_rows,
        "batches": result.batches,
    }
    return {"files": files, "counts": counts}


def never_from_rows(self: Any, batch: list[Part]) -> Any:
    raise AssertionError(f"batch {[p.meta['file_name'] for p in batch]} was made from its rows")


@pytest.mark.parametrize(
    "aggregation",
    [
        {"files_per_batch": 1},
        {"files_per_batch": 2},
        {},  # the defaults: 5 files a batch
        {"files_per_batch": 100, "bytes_per_batch": 10**9},
    ],
)
@pytest.mark.parametrize("partial", [frozenset(), frozenset({TWO_FILE_STORE, "STORE-007", "STORE-001"})])
def test_ready_lines_write_the_bytes_of_the_parts_rows(
    day_files: list[DayFile],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aggregation: dict[str, int],
    partial: frozenset[str],
) -> None:
    earlier = outputs_of(
        tmp_path / "earlier",
        run_day(write_parts(tmp_path / "a", day_files, ready=False), tmp_path / "earlier", aggregation, partial),
    )
    ready_parts = write_parts(tmp_path / "b", day_files, ready=True)
    # Every batch from ready lines: none is read, merged, sorted and encoded as a whole.
    monkeypatch.setattr(aggregate._BatchPreparer, "_from_rows", never_from_rows)
    ready = outputs_of(tmp_path / "ready", run_day(ready_parts, tmp_path / "ready", aggregation, partial))
    assert ready["counts"] == earlier["counts"]
    assert ready["files"].keys() == earlier["files"].keys()
    for name, data in earlier["files"].items():
        assert ready["files"][name] == data, name
    snapshot = earlier["files"]["20241204.csv"].decode("utf-8")
    # What the comparison is about: quoted and guarded text, rejects, both files of the two-file store.
    assert '"\'=HYPERLINK(""http://x"",""Teh"")"' in snapshot and "'+62 812 555" in snapshot
    assert '"two\nlines"' in snapshot and ",'-Dairy," in snapshot
    assert earlier["counts"]["rows_rejected"] == 2
    assert ",''quoted," in snapshot and "\n2024-12-04,STORE-007,'-100042,Minus sku," in snapshot
    two_file_rows = sum(len(file.outcome.rows) for file in day_files if file.store == TWO_FILE_STORE)
    assert snapshot.count(f"\n2024-12-04,{TWO_FILE_STORE},") == two_file_rows


def test_a_day_of_ready_parts_and_earlier_ones_writes_the_same_bytes(day_files: list[DayFile], tmp_path: Path) -> None:
    earlier = write_parts(tmp_path / "a", day_files, ready=False)
    ready = write_parts(tmp_path / "b", day_files, ready=True)
    # Every other part as an earlier version left it, and one part of two stores' rows (no partition).
    mixed = [part if number % 2 else earlier[number] for number, part in enumerate(ready)]
    two_stores = dataclasses.replace(
        day_files[0],
        outcome=dataclasses.replace(
            day_files[0].outcome, rows=pd.concat([day_files[0].outcome.rows, day_files[1].outcome.rows])
        ),
    )
    for parts, root in ((earlier, tmp_path / "a"), (mixed, tmp_path / "b")):
        loose = write_parts(root / "loose", [two_stores], ready=True)[0]
        assert READY_LINES not in loose.meta
        parts.append(Part(loose.directory, {**loose.meta, "partition": None}))
    for aggregation in ({"files_per_batch": 2}, {}):
        first = outputs_of(tmp_path / "earlier", run_day(earlier, tmp_path / "earlier", aggregation, frozenset()))
        second = outputs_of(tmp_path / "mixed", run_day(mixed, tmp_path / "mixed", aggregation, frozenset()))
        assert second == first


def rewrite_meta(part: Part, change: dict[str, Any]) -> Part:
    meta = json.loads((part.directory / "part.json").read_text(encoding="utf-8"))
    meta[READY_LINES].update(change)
    (part.directory / "part.json").write_text(json.dumps(meta), encoding="utf-8")
    return Part(part.directory, {**part.meta, READY_LINES: meta[READY_LINES]})


@pytest.mark.parametrize(
    "change",
    [
        {"text_version": aggregate.CSV_TEXT_VERSION - 1},  # an earlier text of the values
        {"columns": list(sh.OUTPUT_COLUMNS[:-1])},  # the snapshot's columns changed since
        {"sort": ["store_id"]},
    ],
)
def test_ready_lines_made_under_other_rules_are_not_used(
    day_files: list[DayFile], tmp_path: Path, change: dict[str, Any]
) -> None:
    expected = outputs_of(
        tmp_path / "earlier",
        run_day(write_parts(tmp_path / "a", day_files, ready=False), tmp_path / "earlier", {}, frozenset()),
    )
    parts = write_parts(tmp_path / "b", day_files, ready=True)
    parts[2] = rewrite_meta(parts[2], change)
    (parts[2].directory / SNAPSHOT_LINES_FILE).write_bytes(b"lines of another text\n")
    (parts[2].directory / REJECTS_LINES_FILE).write_bytes(b"lines of another text\n")
    assert outputs_of(tmp_path / "ready", run_day(parts, tmp_path / "ready", {}, frozenset())) == expected


def test_a_damaged_ready_lines_file_fails_the_day_and_keeps_the_previous_outputs(
    day_files: list[DayFile], tmp_path: Path
) -> None:
    parts = write_parts(tmp_path / "b", day_files, ready=True)
    lines = parts[4].directory / SNAPSHOT_LINES_FILE
    lines.write_bytes(lines.read_bytes()[:-10])
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "20241204.csv").write_text("previous complete file\n", encoding="utf-8")
    with pytest.raises(DamagedPartError, match=f"remove {parts[4].directory} and run the day again"):
        run_day(parts, seeds, {"files_per_batch": 2}, frozenset())
    assert [p.name for p in seeds.iterdir()] == ["20241204.csv"]
    assert (seeds / "20241204.csv").read_text(encoding="utf-8") == "previous complete file\n"


def test_a_days_transformed_files_keep_ready_lines_that_its_aggregate_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_file (the mapped transform tasks) writes each store's ready lines; aggregate_day appends them."""
    layout = DataLayout(tmp_path / "data")
    inbox = layout.inbox("stock_health")
    write_supplier_master(layout.reference() / "suppliers.csv", [_sku(i) for i in range(60)], random.Random(3))
    for number in (1, 2, 3):
        store = f"STORE-{number:03d}"
        path = inbox / f"{store}_stock_{DAY:%Y%m%d}.xlsx"
        write_store_file(path, store, DAY, [_sku(i) for i in range(0, 60, number)], random.Random(number), number)
    run = Day(load_config_file(REAL_CONFIG), layout, DAY).for_run("run-1")
    metas = [run_file(run, task) for task in list_day_files(run)]
    assert [meta[READY_LINES]["rows"] for meta in metas] == [meta["rows_out"] for meta in metas] == [60, 30, 20]

    with monkeypatch.context() as patched:
        patched.setattr(aggregate._BatchPreparer, "_from_rows", never_from_rows)
        result = aggregate_day(run)
    assert result is not None and result["rows_out"] == 110
    from_lines = {name: (layout.root / "seeds" / "stock_health" / name).read_bytes() for name in OUTPUT_NAMES}
    monkeypatch.setattr(aggregate, "takes_ready_lines", lambda definition: False)
    aggregate_day(run)
    for name, data in from_lines.items():
        assert (layout.root / "seeds" / "stock_health" / name).read_bytes() == data, name
