"""Unit tests for autopo_pipelines.aggregate: atomic parts, bounded batches and the day's CSV text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from autopo_pipelines.aggregate import (
    CSV_TEXT_VERSION,
    PART_META,
    READY_LINES,
    REJECTS_FILE,
    REJECTS_LINES_FILE,
    ROWS_FILE,
    SNAPSHOT_LINES_FILE,
    Part,
    batches,
    encode_lines,
    read_part_meta,
    write_part,
)
from autopo_pipelines.config import AggregationConfig
from autopo_pipelines.pipelines import po_snapshots as po
from autopo_pipelines.pipelines import stock_health as sh
from autopo_pipelines.tabular import REJECT_COLUMNS, SkippedRows
from autopo_pipelines.transform import FileOutcome, TransformDefinition, empty_rejects
from stock_health_outputs import write_stock_health_day

DAY = dt.date(2024, 12, 4)


# --- helpers --------------------------------------------------------------------------


def snap(store: str, sku: str, **values: Any) -> dict[str, Any]:
    """A snapshot row in the output column order; every value given by the test."""
    row = {
        "snapshot_date": DAY,
        "store_id": store,
        "sku": sku,
        "product_name": None,
        "category": None,
        "supplier_id": None,
        "supplier_name": None,
        "stock_on_hand": 0.0,
        "sales_qty": 0.0,
        "avg_daily_sales": 0.0,
        "days_of_cover": np.nan,
        "lead_time_days": 14.0,
        "reorder_point": 0.0,
        "target_stock": 0.0,
        "on_order_qty": 0.0,
        "suggested_order_qty": 0.0,
        "status": "inactive",
        "emergency": False,
        "unit_cost": np.nan,
        "stock_value": np.nan,
        "source_file": f"{store}_stock_20241204.xlsx",
    }
    unknown = set(values) - set(row)
    assert not unknown, unknown
    row.update(values)
    return row


def outcome(rows: list[dict[str, Any]], rejects: pd.DataFrame | None = None) -> FileOutcome:
    frame = pd.DataFrame(rows, columns=list(sh.OUTPUT_COLUMNS))
    frame = frame.astype({"emergency": bool})
    for column in (
        "stock_on_hand",
        "sales_qty",
        "avg_daily_sales",
        "days_of_cover",
        "lead_time_days",
        "reorder_point",
        "target_stock",
        "on_order_qty",
        "suggested_order_qty",
        "unit_cost",
        "stock_value",
    ):
        frame[column] = frame[column].astype("float64")
    return FileOutcome(
        rows=frame,
        rejects=empty_rejects() if rejects is None else rejects,
        sheet="Stock",
        rows_in=len(rows),
        skipped=SkippedRows(blank=1, no_key=0, total=2),
    )


def make_part(root: Path, store: str, result: FileOutcome, *, ready: bool = True) -> Part:
    """A store's part; ``ready``: with its ready lines, else as an earlier version wrote it."""
    name = f"{store}_stock_20241204.xlsx"
    directory = root / "parts" / f"{name}.0123456789abcdef"
    meta = write_part(
        directory,
        result,
        {"file_name": name, "partition": store, "store_id": store},
        definition=sh.TRANSFORM if ready else None,
    )
    return Part(directory=directory, meta=meta)


def three_parts(root: Path, *, ready: bool = True) -> list[Part]:
    """Three stores; values chosen so that rounding, blanks and character-code order show (the rows of
    S1 out of the snapshot's order)."""
    s2 = outcome(
        [
            snap(
                "S2",
                "a",
                product_name="cup, blue",
                category="Bev",
                supplier_id="SUP-01",
                supplier_name="PT Sumber",
                stock_on_hand=10.0,
                sales_qty=10.0,
                avg_daily_sales=10 / 30,
                days_of_cover=30.0,
                reorder_point=10 / 30 * 21,
                target_stock=10 / 30 * 28,
                status="healthy",
                unit_cost=2.5,
                stock_value=25.0,
            ),
            snap(
                "S2",
                "B",
                stock_on_hand=0.0,
                sales_qty=3.0,
                avg_daily_sales=0.1,
                days_of_cover=0.0,
                reorder_point=0.1 * 21,
                target_stock=0.1 * 28,
                suggested_order_qty=3.0,
                status="out_of_stock",
                emergency=True,
            ),
        ]
    )
    s10 = outcome(
        [
            snap(
                "S10",
                "é1",
                product_name="Kopi",
                stock_on_hand=-1.0,
                status="inactive",
                unit_cost=0.00001,
                stock_value=-0.00001,
            ),
            snap(
                "S10",
                "Z9",
                product_name='say "hi"',
                stock_on_hand=-5.0,
                sales_qty=20.0,
                avg_daily_sales=20 / 30,
                days_of_cover=-7.5,
                lead_time_days=10.0,
                reorder_point=20 / 30 * 17,
                target_stock=20 / 30 * 24,
                suggested_order_qty=16.0,
                status="out_of_stock",
                emergency=True,
                unit_cost=0.123456,
                stock_value=-5 * 0.123456,
            ),
        ]
    )
    rejects = pd.DataFrame(
        [
            {
                "source_file": "S1_stock_20241204.xlsx",
                "sheet": "Stock",
                "row_number": 7,
                "reason": "column 'Stok' (stock_on_hand): not a number (got 'abc')",
                "raw_values": json.dumps({"Kode Barang": "X1", "Stok": "abc"}),
            }
        ],
        columns=REJECT_COLUMNS,
    )
    s1 = outcome(
        [
            snap(
                "S1",
                "k",
                product_name="Beras 5kg",
                stock_on_hand=21.0,
                sales_qty=30.0,
                avg_daily_sales=1.0,
                days_of_cover=21.0,
                reorder_point=21.0,
                target_stock=28.0,
                on_order_qty=2.0,
                suggested_order_qty=5.0,
                status="healthy",
                unit_cost=65000.0,
                stock_value=1365000.0,
            ),
            snap(
                "S1",
                "a",
                supplier_id="SUP-01",
                supplier_name="PT Sumber",
                stock_on_hand=5.0,
                status="no_sales",
                unit_cost=2.5,
                stock_value=12.5,
            ),
        ],
        rejects=rejects,
    )
    return [
        make_part(root, "S2", s2, ready=ready),
        make_part(root, "S10", s10, ready=ready),
        make_part(root, "S1", s1, ready=ready),
    ]


def run_day(parts: list[Part], seeds: Path, **aggregation: int) -> Any:
    return write_stock_health_day(parts, seeds, **aggregation)


SNAPSHOT_HEADER = (
    "snapshot_date,store_id,sku,product_name,category,supplier_id,supplier_name,stock_on_hand,sales_qty,"
    "avg_daily_sales,days_of_cover,lead_time_days,reorder_point,target_stock,on_order_qty,suggested_order_qty,"
    "status,emergency,unit_cost,stock_value,source_file\n"
)
ROW_S1_A = "2024-12-04,S1,a,,,SUP-01,PT Sumber,5,0,0,,14,0,0,0,0,no_sales,false,2.5,12.5,S1_stock_20241204.xlsx\n"
ROW_S1_K = "2024-12-04,S1,k,Beras 5kg,,,,21,30,1,21,14,21,28,2,5,healthy,false,65000,1365000,S1_stock_20241204.xlsx\n"
ROW_S10_Z9 = (
    '2024-12-04,S10,Z9,"say ""hi""",,,,-5,20,0.6667,-7.5,10,11.3333,16,0,16,out_of_stock,true,0.1235,-0.6173,'
    "S10_stock_20241204.xlsx\n"
)
ROW_S10_E1 = "2024-12-04,S10,é1,Kopi,,,,-1,0,0,,14,0,0,0,0,inactive,false,0,0,S10_stock_20241204.xlsx\n"
ROW_S2_B = "2024-12-04,S2,B,,,,,0,3,0.1,0,14,2.1,2.8,0,3,out_of_stock,true,,,S2_stock_20241204.xlsx\n"
ROW_S2_A = (
    '2024-12-04,S2,a,"cup, blue",Bev,SUP-01,PT Sumber,10,10,0.3333,30,14,7,9.3333,0,0,healthy,false,'
    "2.5,25,S2_stock_20241204.xlsx\n"
)

# By character code: "S1" < "S10" < "S2" (not numeric), "B" < "a", "Z9" < "é1".
EXPECTED_SNAPSHOT = SNAPSHOT_HEADER + ROW_S1_A + ROW_S1_K + ROW_S10_Z9 + ROW_S10_E1 + ROW_S2_B + ROW_S2_A

# Out of stock first, then days_of_cover ascending: -7.5 before 0.
EXPECTED_EMERGENCY = SNAPSHOT_HEADER + ROW_S10_Z9 + ROW_S2_B

EXPECTED_M2 = (
    "snapshot_date,sku,product_name,supplier_id,supplier_name,stores_count,total_stock,total_sales_qty,"
    "avg_daily_sales,days_of_cover,stores_out_of_stock,stores_critical,total_on_order_qty,"
    "total_suggested_order_qty,total_stock_value\n"
    "2024-12-04,B,,,,1,0,3,0.1,0,1,0,0,3,\n"
    '2024-12-04,Z9,"say ""hi""",,,1,-5,20,0.6667,-7.5,1,0,0,16,-0.6173\n'
    # a: S1 (5, no sales, value 12.5) + S2 (10, avg 1/3, value 25): cover 15 / (1/3) = 45
    '2024-12-04,a,"cup, blue",SUP-01,PT Sumber,2,15,10,0.3333,45,0,0,0,0,37.5\n'
    "2024-12-04,k,Beras 5kg,,,1,21,30,1,21,0,0,2,5,1365000\n"
    "2024-12-04,é1,Kopi,,,1,-1,0,0,,0,0,0,0,0\n"
)

EXPECTED_REJECTS = (
    "source_file,sheet,row_number,reason,raw_values\n"
    "S1_stock_20241204.xlsx,Stock,7,column 'Stok' (stock_on_hand): not a number (got 'abc'),"
    '"{""Kode Barang"": ""X1"", ""Stok"": ""abc""}"\n'
)


# --- write_part ------------------------------------------------------------------------


def test_write_part_writes_a_complete_part(tmp_path: Path) -> None:
    result = outcome([snap("S1", "a", stock_on_hand=1.0)])
    directory = tmp_path / "parts" / "S1_stock_20241204.xlsx.abc"
    meta = write_part(directory, result, {"file_name": "S1_stock_20241204.xlsx", "partition": "S1"})
    assert sorted(p.name for p in directory.iterdir()) == sorted([ROWS_FILE, REJECTS_FILE, PART_META])
    assert meta["file_name"] == "S1_stock_20241204.xlsx"
    assert meta["partition"] == "S1"
    assert meta["sheet"] == "Stock"
    assert meta["rows_in"] == 1
    assert meta["rows_out"] == 1
    assert meta["rows_rejected"] == 0
    assert meta["rows_skipped"] == {"blank": 1, "no_key": 0, "total": 2, "header_repeat": 0}
    assert meta["part_bytes"] == (directory / ROWS_FILE).stat().st_size + (directory / REJECTS_FILE).stat().st_size
    assert read_part_meta(directory) == meta
    back = pd.read_parquet(directory / ROWS_FILE)
    assert back["sku"].tolist() == ["a"]
    # Nothing but the part itself is left in the parts folder.
    assert [p.name for p in directory.parent.iterdir()] == [directory.name]


def test_write_part_keeps_the_ready_lines_of_a_store(tmp_path: Path) -> None:
    rejects = pd.DataFrame(
        [{"source_file": "S1.xlsx", "sheet": "Stock", "row_number": 4, "reason": 'bad, "x"', "raw_values": "{}"}],
        columns=REJECT_COLUMNS,
    )
    result = outcome([snap("S1", "k", status="healthy"), snap("S1", "a", product_name="=1+1")], rejects=rejects)
    directory = tmp_path / "parts" / "S1_stock_20241204.xlsx.abc"
    meta = write_part(
        directory, result, {"file_name": "S1_stock_20241204.xlsx", "partition": "S1"}, definition=sh.TRANSFORM
    )
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [ROWS_FILE, REJECTS_FILE, SNAPSHOT_LINES_FILE, REJECTS_LINES_FILE, PART_META]
    )
    # The rows in the snapshot's order, as the aggregate would write them for this part alone.
    assert pd.read_parquet(directory / ROWS_FILE)["sku"].tolist() == ["a", "k"]
    lines = (directory / SNAPSHOT_LINES_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    assert [line.split(",")[:4] for line in lines] == [
        ["2024-12-04", "S1", "a", "'=1+1"],
        ["2024-12-04", "S1", "k", ""],
    ]
    assert (directory / REJECTS_LINES_FILE).read_text(encoding="utf-8") == 'S1.xlsx,Stock,4,"bad, ""x""",{}\n'
    assert meta[READY_LINES] == {
        "text_version": CSV_TEXT_VERSION,
        "columns": list(sh.OUTPUT_COLUMNS),
        "sort": ["store_id", "sku"],
        "reject_columns": list(REJECT_COLUMNS),
        "rows": 2,
        "rows_bytes": len("".join(lines).encode()),
        "rejects": 1,
        "rejects_bytes": len((directory / REJECTS_LINES_FILE).read_bytes()),
        "status_counts": {"inactive": 1, "healthy": 1},
    }
    # Batches are bounded by the rows they hold: the lines are streamed, never held.
    assert meta["part_bytes"] == (directory / ROWS_FILE).stat().st_size + (directory / REJECTS_FILE).stat().st_size
    assert read_part_meta(directory) == meta


@pytest.mark.parametrize(
    ("rows", "partition", "definition"),
    [
        ([snap("S1", "a"), snap("S2", "b")], None, sh.TRANSFORM),  # two stores: no partition
        ([snap("S1", "a")], "S2", sh.TRANSFORM),  # not the partition its meta names
        ([snap("S1", "a")], "S1", None),  # written without the pipeline's definition (as before)
        ([snap("S1", "a")], "S1", po.TRANSFORM),  # a snapshot without partitions (its rows merge across files)
    ],
)
def test_write_part_keeps_no_ready_lines_where_the_aggregate_cannot_use_them(
    tmp_path: Path, rows: list[dict[str, Any]], partition: str | None, definition: TransformDefinition | None
) -> None:
    directory = tmp_path / "part"
    meta = write_part(directory, outcome(rows), {"file_name": "f.xlsx", "partition": partition}, definition=definition)
    assert READY_LINES not in meta
    assert sorted(p.name for p in directory.iterdir()) == sorted([ROWS_FILE, REJECTS_FILE, PART_META])


def test_write_part_keeps_no_ready_lines_for_a_store_that_is_not_text(tmp_path: Path) -> None:
    # A number sorts among numbers within a batch but by its name between batches: only text gives one order.
    result = outcome([snap("S1", "a")])
    numbered = dataclasses.replace(result, rows=result.rows.assign(store_id=7))
    meta = write_part(tmp_path / "part", numbered, {"file_name": "7.xlsx", "partition": "7"}, definition=sh.TRANSFORM)
    assert READY_LINES not in meta


# The CSV text of values under each CSV_TEXT_VERSION. A part's ready lines are used only while their
# version is the aggregate's: a change of this text must come with a new version (and its text here).
CSV_TEXT_OF_VERSION = {
    1: (
        '2024-12-04,-3,0.3333,10000000000,,true,\'=a,"b,c",,\'-1,"say ""hi""",\'@x\n'
        ",4,-0.1235,0,0,false,é,\"x\ny\",,'',''',\n"
    ),
}


def test_the_csv_text_of_this_version_is_its_own() -> None:
    frame = pd.DataFrame(
        {
            "date": [DAY, None],
            "count": pd.Series([-3, 4], dtype="int64"),
            "ratio": [1 / 3, -0.123456],
            "big": [1e10, 0.00001],
            "negative_zero": [np.nan, -0.0],
            "flag": [True, False],
            "text": ["=a", "é"],
            "quoted": ["b,c", "x\ny"],
            "blank": ["", None],
            "sku": ["-1", "'"],
            "name": ['say "hi"', "''"],
            "handle": ["@x", None],
        }
    )
    text = encode_lines(frame, list(frame.columns)).decode("utf-8")
    assert text == CSV_TEXT_OF_VERSION.get(CSV_TEXT_VERSION), "the CSV text changed: bump CSV_TEXT_VERSION"


def test_read_part_meta_of_a_missing_part_is_none(tmp_path: Path) -> None:
    assert read_part_meta(tmp_path / "nope") is None


def unwritable_rows() -> pd.DataFrame:
    return pd.DataFrame({"sku": ["a", "b"], "stock_on_hand": [1.0, object()]})


def test_write_part_failing_on_rows_leaves_no_part_and_no_temp_dir(tmp_path: Path) -> None:
    bad = FileOutcome(rows=unwritable_rows(), rejects=empty_rejects(), sheet="S", rows_in=2, skipped=SkippedRows())
    directory = tmp_path / "parts" / "S1.abc"
    with pytest.raises(pa.ArrowInvalid):
        write_part(directory, bad, {"file_name": "S1"})
    assert not directory.exists()
    assert list(directory.parent.iterdir()) == []


def test_write_part_failing_in_the_middle_leaves_no_part_and_no_temp_dir(tmp_path: Path) -> None:
    # The rows are written, then the rejects cannot be: the half-written staging dir must go.
    bad_rejects = pd.DataFrame({"source_file": ["f"], "row_number": [object()]})
    bad = outcome([snap("S1", "a")], rejects=bad_rejects)
    directory = tmp_path / "parts" / "S1.abc"
    with pytest.raises(pa.ArrowInvalid):
        write_part(directory, bad, {"file_name": "S1"})
    assert not directory.exists()
    assert list(directory.parent.iterdir()) == []


def test_write_part_failing_keeps_the_previous_part_whole(tmp_path: Path) -> None:
    directory = tmp_path / "parts" / "S1.abc"
    good_meta = write_part(directory, outcome([snap("S1", "a", stock_on_hand=3.0)]), {"file_name": "S1"})
    bad = FileOutcome(rows=unwritable_rows(), rejects=empty_rejects(), sheet="S", rows_in=2, skipped=SkippedRows())
    with pytest.raises(pa.ArrowInvalid):
        write_part(directory, bad, {"file_name": "S1"})
    assert read_part_meta(directory) == good_meta
    assert pd.read_parquet(directory / ROWS_FILE)["stock_on_hand"].tolist() == [3.0]
    assert [p.name for p in directory.parent.iterdir()] == [directory.name]


def test_write_part_replaces_an_existing_part(tmp_path: Path) -> None:
    directory = tmp_path / "parts" / "S1.abc"
    write_part(directory, outcome([snap("S1", "a", stock_on_hand=3.0)]), {"file_name": "S1"})
    meta = write_part(directory, outcome([snap("S1", "a"), snap("S1", "b")]), {"file_name": "S1"})
    assert meta["rows_out"] == 2
    assert pd.read_parquet(directory / ROWS_FILE)["sku"].tolist() == ["a", "b"]
    assert [p.name for p in directory.parent.iterdir()] == [directory.name]


# --- batches ----------------------------------------------------------------------------


def fake_part(partition: str | None, file_name: str, part_bytes: int = 10) -> Part:
    return Part(
        directory=Path("/nonexistent") / file_name,
        meta={"partition": partition, "file_name": file_name, "part_bytes": part_bytes},
    )


def batch_names(result: list[list[Part]]) -> list[list[str]]:
    return [[p.meta["file_name"] for p in batch] for batch in result]


def test_batches_respect_files_per_batch_and_never_split_a_partition() -> None:
    parts = [
        fake_part("D", "d1"),
        fake_part("A", "a2"),
        fake_part("B", "b1"),
        fake_part("A", "a1"),
        fake_part("C", "c1"),
        fake_part("A", "a3"),
    ]
    result = list(batches(parts, AggregationConfig(files_per_batch=2, bytes_per_batch=10**9)))
    # A has 3 files: more than a batch holds, but it stays together, alone.
    assert batch_names(result) == [["a1", "a2", "a3"], ["b1", "c1"], ["d1"]]


def test_batches_with_one_file_per_batch() -> None:
    parts = [fake_part("B", "b1"), fake_part("A", "a1"), fake_part("B", "b2")]
    result = list(batches(parts, AggregationConfig(files_per_batch=1, bytes_per_batch=10**9)))
    assert batch_names(result) == [["a1"], ["b1", "b2"]]


def test_batches_respect_bytes_per_batch() -> None:
    parts = [
        fake_part("A", "a1", 60),
        fake_part("B", "b1", 50),
        fake_part("C", "c1", 10),
        fake_part("D", "d1", 150),  # larger than a batch on its own: alone
        fake_part("E", "e1", 40),
        fake_part("E", "e2", 40),
        fake_part("F", "f1", 30),
    ]
    result = list(batches(parts, AggregationConfig(files_per_batch=100, bytes_per_batch=100)))
    assert batch_names(result) == [["a1"], ["b1", "c1"], ["d1"], ["e1", "e2"], ["f1"]]
    for batch in result:
        assert len(batch) == 1 or sum(p.meta["part_bytes"] for p in batch) <= 100


def test_batches_keep_every_part_once_in_partition_order() -> None:
    parts = [fake_part(p, f"{p}{i}", part_bytes=7) for p in "QWERTY" for i in range(3)]
    result = list(batches(parts, AggregationConfig(files_per_batch=4, bytes_per_batch=30)))
    flat = [p.meta["file_name"] for batch in result for p in batch]
    assert flat == sorted(p.meta["file_name"] for p in parts)
    for batch in result:
        partitions = [p.partition for p in batch]
        # a partition's files are all in this batch or none are
        for partition in set(partitions):
            assert partitions.count(partition) == 3


def test_batches_of_nothing() -> None:
    assert list(batches([], AggregationConfig())) == []


# --- write_day_outputs ----------------------------------------------------------------


@pytest.mark.parametrize("ready", [True, False], ids=["ready lines", "parts of an earlier version"])
def test_day_outputs_exact_text(tmp_path: Path, ready: bool) -> None:
    parts = three_parts(tmp_path / "intermediate", ready=ready)
    seeds = tmp_path / "seeds"
    result = run_day(parts, seeds)
    assert (seeds / "20241204.csv").read_text(encoding="utf-8") == EXPECTED_SNAPSHOT
    assert (seeds / "20241204_emergency.csv").read_text(encoding="utf-8") == EXPECTED_EMERGENCY
    assert (seeds / "20241204_m2.csv").read_text(encoding="utf-8") == EXPECTED_M2
    assert (seeds / "20241204_rejects.csv").read_text(encoding="utf-8") == EXPECTED_REJECTS
    assert result.rows_out == 6
    assert result.rows_rejected == 1
    assert result.status_counts == {"no_sales": 1, "healthy": 2, "out_of_stock": 2, "inactive": 1}
    assert set(result.files) == {"20241204.csv", "20241204_m2.csv", "20241204_emergency.csv", "20241204_rejects.csv"}
    # No temporary file is left next to the outputs.
    assert sorted(p.name for p in seeds.iterdir()) == sorted(result.files)


def test_day_outputs_rejects_file_has_a_header_when_there_are_no_rejects(tmp_path: Path) -> None:
    part = make_part(tmp_path / "intermediate", "S1", outcome([snap("S1", "a")]))
    seeds = tmp_path / "seeds"
    result = run_day([part], seeds)
    assert (seeds / "20241204_rejects.csv").read_text(
        encoding="utf-8"
    ) == "source_file,sheet,row_number,reason,raw_values\n"
    assert (seeds / "20241204_emergency.csv").read_text(encoding="utf-8") == SNAPSHOT_HEADER
    assert result.rows_rejected == 0
    assert sorted(p.name for p in seeds.iterdir()) == sorted(result.files)


def test_day_outputs_of_no_parts_are_headers_only(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    run_day([], seeds)
    assert (seeds / "20241204.csv").read_text(encoding="utf-8") == SNAPSHOT_HEADER
    assert (seeds / "20241204_rejects.csv").read_text(encoding="utf-8").startswith("source_file,")
    assert sorted(p.name for p in seeds.iterdir()) == sorted(
        ["20241204.csv", "20241204_m2.csv", "20241204_emergency.csv", "20241204_rejects.csv"]
    )


@pytest.mark.parametrize(
    "aggregation",
    [
        {"files_per_batch": 1},
        {"files_per_batch": 2},
        {"files_per_batch": 100, "bytes_per_batch": 1},
    ],
)
def test_day_outputs_do_not_depend_on_batching(tmp_path: Path, aggregation: dict[str, int]) -> None:
    parts = three_parts(tmp_path / "intermediate")
    run_day(parts, tmp_path / "all", files_per_batch=100, bytes_per_batch=10**9)
    result = run_day(parts, tmp_path / "small", **aggregation)
    assert result.batches > 1
    for name in ("20241204.csv", "20241204_m2.csv", "20241204_emergency.csv", "20241204_rejects.csv"):
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "all" / name).read_bytes(), name


def test_day_outputs_failing_leave_previous_outputs_and_no_temp_files(tmp_path: Path) -> None:
    parts = three_parts(tmp_path / "intermediate")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "20241204.csv").write_text("previous complete file\n", encoding="utf-8")
    (parts[1].directory / ROWS_FILE).unlink()  # a part that cannot be read
    with pytest.raises(FileNotFoundError):
        run_day(parts, seeds, files_per_batch=1)
    assert [p.name for p in seeds.iterdir()] == ["20241204.csv"]
    assert (seeds / "20241204.csv").read_text(encoding="utf-8") == "previous complete file\n"


def test_day_outputs_are_parseable_back_to_the_values(tmp_path: Path) -> None:
    parts = three_parts(tmp_path / "intermediate")
    seeds = tmp_path / "seeds"
    run_day(parts, seeds)
    back = pd.read_csv(seeds / "20241204.csv", dtype=str, keep_default_na=False)
    assert back["store_id"].tolist() == ["S1", "S1", "S10", "S10", "S2", "S2"]
    assert back["sku"].tolist() == ["a", "k", "Z9", "é1", "B", "a"]
    assert back.loc[2, "product_name"] == 'say "hi"'
    assert all(math.isfinite(float(v)) for v in back["avg_daily_sales"])


def test_large_numbers_are_written_without_exponents() -> None:
    from autopo_pipelines.aggregate import _to_arrow, csv_bytes

    frame = pd.DataFrame({"stock_value": [1e10, -2.5e11, 123456.78905, None, 1 / 3]})
    assert csv_bytes(_to_arrow(frame, ["stock_value"])).decode() == (
        "10000000000\n-250000000000\n123456.789\n\n0.3333\n"
    )


def test_parts_without_a_partition_are_sorted_together() -> None:
    parts = [fake_part("", "x1"), fake_part("A", "a1"), fake_part("", "x2"), fake_part("", "x3")]
    result = list(batches(parts, AggregationConfig(files_per_batch=1, bytes_per_batch=10**9)))
    # Their rows may interleave in sort order, so no batch boundary may fall between them.
    assert batch_names(result) == [["x1", "x2", "x3"], ["a1"]]


# --- text that a spreadsheet would run (CSV injection) ---------------------------------------

# OWASP's rule: a cell starting with one of these is a formula (or starts one) in a spreadsheet.
FORMULA_TEXT = ['=HYPERLINK("http://x","y")', "+1+2", "-1-2", "@SUM(A1)", "\tindent", "\rback"]


def text_csv(values: list[Any]) -> str:
    from autopo_pipelines.aggregate import _to_arrow, csv_bytes

    return csv_bytes(_to_arrow(pd.DataFrame({"product_name": values}), ["product_name"])).decode()


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","y")', '"\'=HYPERLINK(""http://x"",""y"")"\n'),
        ("+1+2", "'+1+2\n"),
        ("-1-2", "'-1-2\n"),
        ("@SUM(A1)", "'@SUM(A1)\n"),
        ("\tindent", "'\tindent\n"),
        ("\rback", '"\'\rback"\n'),
        # A quote at the start is guarded too: stripping one leading quote always gives the text back.
        ("'quoted", "''quoted\n"),
        ("''two", "'''two\n"),
        ("'", "''\n"),
        # Only the first character counts.
        ("a=b", "a=b\n"),
        ("x-1", "x-1\n"),
        (" =1", " =1\n"),
        ("it's", "it's\n"),
    ],
)
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(value: str, written: str) -> None:
    assert text_csv([value]) == written


def test_guarded_text_reads_back_exactly_by_stripping_one_leading_quote() -> None:
    import csv
    import io

    values = [*FORMULA_TEXT, "'quoted", "''two", "'", "plain", "a,b", 'say "hi"', "é=1", None, ""]
    text = text_csv(values)
    read = [row[0] if row else "" for row in csv.reader(io.StringIO(text, newline=""))]
    for field in read:
        assert not field.startswith(("=", "+", "-", "@", "\t", "\r")), field
    restored = [field[1:] if field.startswith("'") else field for field in read]
    assert restored == [v or "" for v in values]


def test_numbers_booleans_and_dates_are_never_guarded() -> None:
    from autopo_pipelines.aggregate import _to_arrow, csv_bytes

    frame = pd.DataFrame(
        {
            "stock_on_hand": [-5.0, -0.00001],
            "days_overdue": pd.Series([-3, 4], dtype="int64"),
            "emergency": [True, False],
            "snapshot_date": [DAY, None],
            # Text that looks like a number is still text.
            "sku": ["-5", "5"],
        }
    )
    columns = list(frame.columns)
    assert csv_bytes(_to_arrow(frame, columns)).decode() == "-5,-3,true,2024-12-04,'-5\n0,4,false,,5\n"


def test_day_outputs_guard_text_from_store_files_in_every_file(tmp_path: Path) -> None:
    rejects = pd.DataFrame(
        [
            {
                "source_file": "S1_stock_20241204.xlsx",
                "sheet": "=Stock",
                "row_number": 3,
                "reason": "column 'Stok' (stock_on_hand): not a number (got '=1+1')",
                "raw_values": json.dumps({"Kode Barang": "=cmd|' /C calc'!A0", "Stok": "=1+1"}),
            }
        ],
        columns=REJECT_COLUMNS,
    )
    rows = [
        snap(
            "S1",
            "@A1",
            product_name='=HYPERLINK("http://x","y")',
            supplier_id="+SUP",
            supplier_name="-Sumber",
            status="out_of_stock",
            emergency=True,
        )
    ]
    part = make_part(tmp_path / "intermediate", "S1", outcome(rows, rejects=rejects))
    seeds = tmp_path / "seeds"
    run_day([part], seeds)
    row = (
        '2024-12-04,S1,\'@A1,"\'=HYPERLINK(""http://x"",""y"")",,\'+SUP,\'-Sumber,0,0,0,,14,0,0,0,0,'
        "out_of_stock,true,,,S1_stock_20241204.xlsx\n"
    )
    assert (seeds / "20241204.csv").read_text(encoding="utf-8") == SNAPSHOT_HEADER + row
    assert (seeds / "20241204_emergency.csv").read_text(encoding="utf-8") == SNAPSHOT_HEADER + row
    m2 = (seeds / "20241204_m2.csv").read_text(encoding="utf-8").splitlines()[1]
    assert m2.startswith('2024-12-04,\'@A1,"\'=HYPERLINK(""http://x"",""y"")",\'+SUP,\'-Sumber,1,')
    # raw_values is a JSON object: it starts with "{" and is written as it is.
    assert (seeds / "20241204_rejects.csv").read_text(encoding="utf-8") == (
        "source_file,sheet,row_number,reason,raw_values\n"
        "S1_stock_20241204.xlsx,'=Stock,3,column 'Stok' (stock_on_hand): not a number (got '=1+1'),"
        '"{""Kode Barang"": ""=cmd|\' /C calc\'!A0"", ""Stok"": ""=1+1""}"\n'
    )


def test_a_part_is_named_after_all_of_a_checksum_that_is_not_a_hash(tmp_path: Path) -> None:
    from autopo_pipelines.aggregate import part_directory

    # Content hashes keep the names their parts always had: the hash's start.
    md5 = "md5:" + "0123456789abcdef" * 2
    assert part_directory(tmp_path, "S1.xlsx", md5).name == "S1.xlsx.0123456789abcdef"
    assert part_directory(tmp_path, "S1.xlsx", "crc32c:89abcdef").name == "S1.xlsx.89abcdef"
    # A Google Sheet's versions within one minute (and one second) are three parts, not one.
    sheets = [
        "sheets:2024-03-05T06:00:00.000Z:1",
        "sheets:2024-03-05T06:00:20.000Z:2",
        "sheets:2024-03-05T06:00:20.250Z:3",
    ]
    names = {part_directory(tmp_path, "S2.xlsx", checksum).name for checksum in sheets}
    assert len(names) == 3
    assert all(len(name) == len("S2.xlsx.") + 16 for name in names)
