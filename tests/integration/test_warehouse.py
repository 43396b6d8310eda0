"""Atomic per-date replacement of snapshot rows from a CSV."""

from __future__ import annotations

import csv
import datetime
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from autopo_pipelines import warehouse
from autopo_pipelines.aggregate import CsvSink
from autopo_pipelines.pipelines import po_snapshots
from autopo_pipelines.pipelines.stock_health import OUTPUT_COLUMNS
from autopo_pipelines.warehouse import LoadError, count_rows, replace_date_rows

pytestmark = pytest.mark.integration

TABLE = "stock_health_snapshots"
COLUMNS = list(OUTPUT_COLUMNS)
D1 = datetime.date(2024, 12, 4)
D2 = datetime.date(2024, 12, 5)


def _row(date: datetime.date, i: int, source: str) -> dict[str, str]:
    stock = i % 50
    sales = (i * 7) % 90
    avg = sales / 30
    return {
        "snapshot_date": date.isoformat(),
        "store_id": f"STORE-{i % 7:03d}",
        "sku": f"{i:06d}",
        "product_name": f'Product {i}, "quoted"' if i % 11 == 0 else f"Product {i}",
        "category": "" if i % 5 == 0 else "Grocery",
        "supplier_id": f"SUP{i % 3}",
        "supplier_name": f"Supplier {i % 3}",
        "stock_on_hand": str(stock),
        "sales_qty": str(sales),
        "avg_daily_sales": f"{avg:.4f}",
        "days_of_cover": "" if avg == 0 else f"{stock / avg:.4f}",
        "lead_time_days": "14",
        "reorder_point": f"{avg * 21:.4f}",
        "target_stock": f"{avg * 28:.4f}",
        "on_order_qty": "0",
        "suggested_order_qty": "0",
        "status": "healthy",
        "emergency": "false",
        "unit_cost": "" if i % 4 == 0 else "1.2500",
        "stock_value": "" if i % 4 == 0 else f"{stock * 1.25:.4f}",
        "source_file": source,
    }


def write_csv(
    path: Path,
    date: datetime.date,
    n: int,
    source: str = "a.xlsx",
    mutate: Callable[[int, dict[str, str]], None] | None = None,
) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for i in range(1, n + 1):
            row = _row(date, i, source)
            if mutate is not None:
                mutate(i, row)
            writer.writerow(row)
    return path


def load(url: str, date: datetime.date, path: Path) -> int:
    return replace_date_rows(url, table=TABLE, date_column="snapshot_date", date=date, csv_path=path, columns=COLUMNS)


def rows_of(url: str, date: datetime.date) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT {', '.join(COLUMNS)}, loaded_at FROM {TABLE} WHERE snapshot_date = %s ORDER BY store_id, sku",
            (date,),
        ).fetchall()


def test_load_replaces_only_that_date(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    assert load(url, D1, write_csv(tmp_path / "d1.csv", D1, 30, "old.xlsx")) == 30
    assert load(url, D2, write_csv(tmp_path / "d2.csv", D2, 20, "other.xlsx")) == 20
    d2_before = rows_of(url, D2)

    assert load(url, D1, write_csv(tmp_path / "d1b.csv", D1, 10, "new.xlsx")) == 10
    assert count_rows(url, TABLE, "snapshot_date", D1) == 10
    assert {r[COLUMNS.index("source_file")] for r in rows_of(url, D1)} == {"new.xlsx"}
    assert rows_of(url, D2) == d2_before  # loaded_at included: not rewritten


def test_values_and_nulls(clean_tables: str, tmp_path: Path) -> None:
    load(clean_tables, D1, write_csv(tmp_path / "d1.csv", D1, 20))
    with psycopg.connect(clean_tables) as conn:
        cur = conn.execute(f"SELECT * FROM {TABLE} WHERE sku = '000011'")
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        record = dict(zip([d.name for d in cur.description], row, strict=True))
    assert record["snapshot_date"] == D1
    assert record["sku"] == "000011"  # leading zeros kept: sku is text
    assert record["product_name"] == 'Product 11, "quoted"'
    assert record["category"] == "Grocery"
    assert record["emergency"] is False
    assert str(record["avg_daily_sales"]) == "2.5667"
    with psycopg.connect(clean_tables) as conn:
        nulls = conn.execute(f"SELECT category IS NULL, unit_cost IS NULL FROM {TABLE} WHERE sku = '000020'").fetchone()
    assert nulls == (True, True)  # empty string -> NULL


def test_header_only_csv_empties_the_date(clean_tables: str, tmp_path: Path) -> None:
    load(clean_tables, D1, write_csv(tmp_path / "d1.csv", D1, 5))
    assert load(clean_tables, D1, write_csv(tmp_path / "empty.csv", D1, 0)) == 0
    assert count_rows(clean_tables, TABLE, "snapshot_date", D1) == 0


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("stock_on_hand", "abc", "line 501, column stock_on_hand"),  # type error, caught by COPY (header = line 1)
        ("status", "great", "check"),  # constraint error, caught on INSERT
        ("sku", "", "null"),  # NOT NULL key
    ],
)
def test_bad_row_half_way_leaves_previous_rows_untouched(
    clean_tables: str, tmp_path: Path, column: str, value: str, message: str
) -> None:
    url = clean_tables
    load(url, D1, write_csv(tmp_path / "good.csv", D1, 1000, "good.xlsx"))
    before = rows_of(url, D1)
    assert len(before) == 1000

    def poison(i: int, row: dict[str, str]) -> None:
        if i == 500:
            row[column] = value

    bad = write_csv(tmp_path / "bad.csv", D1, 1000, "bad.xlsx", mutate=poison)
    with pytest.raises(LoadError, match=f"(?i){message}") as info:
        load(url, D1, bad)
    assert str(bad) in str(info.value)
    assert rows_of(url, D1) == before


def test_row_with_another_date_is_refused(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    load(url, D1, write_csv(tmp_path / "good.csv", D1, 100))
    before = rows_of(url, D1)

    def other_date(i: int, row: dict[str, str]) -> None:
        if i == 42:
            row["snapshot_date"] = D2.isoformat()

    with pytest.raises(LoadError, match=r"line 43: 2024-12-05"):
        load(url, D1, write_csv(tmp_path / "mixed.csv", D1, 100, mutate=other_date))
    assert rows_of(url, D1) == before
    assert count_rows(url, TABLE, "snapshot_date", D2) == 0


def test_header_must_match_columns(clean_tables: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d1.csv", D1, 3)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    header[7], header[8] = header[8], header[7]  # stock_on_hand <-> sales_qty
    path.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    with pytest.raises(LoadError, match="does not match"):
        load(clean_tables, D1, path)


def test_bom_and_crlf_are_accepted(clean_tables: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d1.csv", D1, 25)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert load(clean_tables, D1, path) == 25


def test_file_is_streamed_in_chunks(clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny chunks split rows, quotes and multi-byte characters: the result must not change."""
    path = write_csv(tmp_path / "d1.csv", D1, 300, "tökö ☃.xlsx")
    monkeypatch.setattr(warehouse, "COPY_CHUNK_BYTES", 7)
    reads: list[int] = []
    real_open = open

    class CountingFile:
        def __init__(self, handle: object) -> None:
            self._handle = handle

        def __enter__(self) -> CountingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()  # type: ignore[attr-defined]

        def readline(self) -> bytes:
            return self._handle.readline()  # type: ignore[attr-defined,no-any-return]

        def seek(self, offset: int) -> int:
            return self._handle.seek(offset)  # type: ignore[attr-defined,no-any-return]

        def read(self, size: int = -1) -> bytes:
            assert 0 < size <= 7, "the whole file must never be read at once"
            data: bytes = self._handle.read(size)  # type: ignore[attr-defined]
            reads.append(len(data))
            return data

    monkeypatch.setattr(warehouse.storage, "open_for_reading", lambda p: CountingFile(real_open(p, "rb")))
    assert load(clean_tables, D1, path) == 300
    assert len(reads) > 100
    assert {r[COLUMNS.index("source_file")] for r in rows_of(clean_tables, D1)} == {"tökö ☃.xlsx"}


def test_concurrent_readers_never_see_a_mix(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    versions = {
        "a.xlsx": (write_csv(tmp_path / "a.csv", D1, 3000, "a.xlsx"), 3000),
        "b.xlsx": (write_csv(tmp_path / "b.csv", D1, 2000, "b.xlsx"), 2000),
    }
    load(url, D1, versions["a.xlsx"][0])
    stop = threading.Event()
    seen: list[tuple[int, int, str | None]] = []
    problems: list[str] = []

    def reader() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                # One statement = one snapshot: it must see one complete version.
                total, sources, source = conn.execute(
                    f"SELECT count(*), count(DISTINCT source_file), min(source_file) FROM {TABLE} "
                    "WHERE snapshot_date = %s",
                    (D1,),
                ).fetchone() or (0, 0, None)
                seen.append((total, sources, source))
                if sources != 1 or source not in versions or total != versions[source][1]:
                    problems.append(f"saw {total} rows from {sources} sources ({source})")

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for i in range(8):
            name = "b.xlsx" if i % 2 == 0 else "a.xlsx"
            load(url, D1, versions[name][0])
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)
    assert problems == []
    assert {s for _, _, s in seen} == {"a.xlsx", "b.xlsx"}, "readers should have seen both versions"


def test_concurrent_loads_of_one_date_serialise(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    files = [write_csv(tmp_path / f"v{i}.csv", D1, 2000 + i * 100, f"v{i}.xlsx") for i in range(4)]
    barrier = threading.Barrier(len(files))
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        barrier.wait()
        try:
            load(url, D1, path)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    rows = rows_of(url, D1)
    sources = {r[COLUMNS.index("source_file")] for r in rows}
    assert len(sources) == 1
    (winner,) = sources
    assert len(rows) == 2000 + int(str(winner)[1]) * 100


def test_argument_validation(pg_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d1.csv", D1, 1)
    with pytest.raises(ValueError, match="date column"):
        replace_date_rows(pg_url, table=TABLE, date_column="day", date=D1, csv_path=path, columns=COLUMNS)
    with pytest.raises(ValueError, match="invalid table"):
        replace_date_rows(pg_url, table="a.b.c", date_column="snapshot_date", date=D1, csv_path=path, columns=COLUMNS)


def test_schema_qualified_table_and_count(clean_tables: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d1.csv", D1, 4)
    assert (
        replace_date_rows(
            clean_tables, table=f"public.{TABLE}", date_column="snapshot_date", date=D1, csv_path=path, columns=COLUMNS
        )
        == 4
    )
    assert count_rows(clean_tables, f"public.{TABLE}", "snapshot_date", D1) == 4
    assert count_rows(clean_tables, TABLE, "snapshot_date", D2) == 0


# --- stage and swap (stock_health_snapshots is partitioned by date, migration 0007) -----------


def partitions_of(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass AND c.relkind = 'r' ORDER BY 1",
            (TABLE,),
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def index_names(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT indexrelid::regclass::text FROM pg_index").fetchall()
    return [str(r[0]) for r in rows]


def leftover_stages(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", (f"{TABLE}_stage%",)).fetchall()
    assert all("_stage" not in r for r in index_names(url)), "indexes are named after the partition"
    return [str(r[0]) for r in rows]


@pytest.fixture
def parallel_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small CSVs copied in slices on several connections, as big ones are."""
    monkeypatch.setattr(warehouse, "PARALLEL_COPY_MIN_BYTES", 0)
    monkeypatch.setattr(warehouse, "LOAD_CONNECTIONS", 3)


def test_a_load_swaps_in_one_partition_for_the_date(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}_p20241204, {TABLE}_p20241205")
    load(url, D2, write_csv(tmp_path / "d2.csv", D2, 20, "other.xlsx"))
    for n in (30, 10):
        assert load(url, D1, write_csv(tmp_path / f"d1_{n}.csv", D1, n, f"v{n}.xlsx")) == n
    # Other tests' dates have partitions too; these two dates have one each.
    assert [p for p in partitions_of(url) if p[0].endswith(("20241204", "20241205"))] == [
        (f"{TABLE}_p20241204", "FOR VALUES IN ('2024-12-04')"),
        (f"{TABLE}_p20241205", "FOR VALUES IN ('2024-12-05')"),
    ]
    assert leftover_stages(url) == []
    with psycopg.connect(url) as conn:
        # Each of the parent's indexes has its counterpart on the new partition: built before the swap.
        attached = conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_index x ON x.indexrelid = c.oid WHERE x.indrelid = %s::regclass",
            (f"{TABLE}_p20241204",),
        ).fetchone()
        parent_indexes = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (TABLE,)
        ).fetchone()
        assert attached == parent_indexes == (3,)
        # Analysed by the load, never changed after it: autovacuum would only hold the next swap back.
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (f"{TABLE}_p20241204",)
        ).fetchone()
        assert options is not None and "autovacuum_enabled=false" in options[0]
        stats = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", (f"{TABLE}_p20241204",)).fetchone()
        assert stats is not None and stats[0] > 0
        conn.execute("SET enable_seqscan = off")  # ten rows: the planner would rightly prefer a scan
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"EXPLAIN SELECT * FROM {TABLE} WHERE snapshot_date = %s AND store_id = 'STORE-001' AND sku = '000008'",
                (D1,),
            ).fetchall()
        )
        assert "Index" in plan and "p20241204" in plan and "p20241205" not in plan
        loads = conn.execute(
            "SELECT snapshot_date, rows FROM snapshot_loads WHERE table_name = %s ORDER BY 1", (TABLE,)
        ).fetchall()
    assert loads == [(D1, 10), (D2, 20)]


def test_slices_of_a_csv_are_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rows = [["h1", "h2"]] + [[f"{i}", 'a "quoted"\nline, and more' if i % 3 == 0 else f"plain {i}"] for i in range(200)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    data = path.read_bytes()
    for parts in (1, 2, 3, 7):
        for chunk in (5, 64, 1 << 20):
            slices = warehouse.csv_slices(path, parts, chunk)
            assert b"".join(data[s.start : s.end] for s in slices) == data
            assert 1 <= len(slices) <= parts
            for piece in slices:
                text = data[piece.start : piece.end].decode()
                assert text.endswith("\r\n")
                assert piece.lines_before == data[: piece.start].count(b"\n")
                # Every slice parses on its own to whole records.
                assert all(len(r) == 2 for r in csv.reader(text.splitlines(keepends=True)))


def test_parallel_slices_load_the_same_rows(clean_tables: str, tmp_path: Path, parallel_copy: None) -> None:
    url = clean_tables
    path = write_csv(tmp_path / "d1.csv", D1, 3000, "tökö ☃.xlsx")
    assert load(url, D1, path) == 3000
    rows = rows_of(url, D1)
    assert sorted(r[COLUMNS.index("sku")] for r in rows) == [f"{i:06d}" for i in range(1, 3001)]
    assert {r[COLUMNS.index("product_name")] for r in rows} >= {'Product 11, "quoted"'}


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        (2900, "stock_on_hand", "abc", r"line 2901, column stock_on_hand"),  # in the last slice: file line
        (2900, "status", "great", "check"),
        (2900, "snapshot_date", D2.isoformat(), r"line 2901: 2024-12-05\); nothing loaded"),
    ],
)
def test_parallel_load_errors_name_the_file_line(
    clean_tables: str, tmp_path: Path, parallel_copy: None, row: int, column: str, value: str, message: str
) -> None:
    url = clean_tables
    load(url, D1, write_csv(tmp_path / "good.csv", D1, 100, "good.xlsx"))
    before = rows_of(url, D1)

    def poison(i: int, record: dict[str, str]) -> None:
        if i == row:
            record[column] = value

    with pytest.raises(LoadError, match=message):
        load(url, D1, write_csv(tmp_path / "bad.csv", D1, 3000, "bad.xlsx", mutate=poison))
    assert rows_of(url, D1) == before
    assert leftover_stages(url) == []


def test_duplicate_keys_are_refused_by_the_primary_key(clean_tables: str, tmp_path: Path, parallel_copy: None) -> None:
    url = clean_tables

    def duplicate(i: int, record: dict[str, str]) -> None:
        if i == 2000:
            record.update(sku=f"{7:06d}", store_id=f"STORE-{7 % 7:03d}")

    with pytest.raises(
        LoadError, match=r"duplicate.*\(snapshot_date, store_id, sku\)=\(2024-12-04, STORE-000, 000007\)"
    ):
        load(url, D1, write_csv(tmp_path / "dup.csv", D1, 3000, mutate=duplicate))
    assert count_rows(url, TABLE, "snapshot_date", D1) == 0
    assert leftover_stages(url) == []


def test_the_swap_waits_for_a_reader_then_goes_ahead(
    clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader in the middle of a transaction holds the table: the swap retries, never queues for long."""
    url = clean_tables
    monkeypatch.setattr(warehouse, "SWAP_LOCK_TIMEOUT_MS", 50)
    load(url, D1, write_csv(tmp_path / "old.csv", D1, 50, "old.xlsx"))
    new = write_csv(tmp_path / "new.csv", D1, 60, "new.xlsx")
    with psycopg.connect(url) as reader:
        assert reader.execute(f"SELECT count(*) FROM {TABLE} WHERE snapshot_date = %s", (D1,)).fetchone() == (50,)
        loader = threading.Thread(target=load, args=(url, D1, new))
        loader.start()
        time.sleep(1.0)
        # Still the old rows, and other statements are not stuck behind the waiting swap.
        with psycopg.connect(url, autocommit=True) as other:
            started = time.monotonic()
            assert other.execute(f"SELECT count(*) FROM {TABLE} WHERE snapshot_date = %s", (D1,)).fetchone() == (50,)
            assert time.monotonic() - started < 0.5
        assert loader.is_alive()
        reader.rollback()  # the reader's transaction ends: its lock goes
        loader.join(30)
    assert count_rows(url, TABLE, "snapshot_date", D1) == 60


def test_a_swap_that_cannot_get_the_table_keeps_the_old_rows(
    clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = clean_tables
    monkeypatch.setattr(warehouse, "SWAP_LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(warehouse, "SWAP_PATIENCE_S", 0.5)
    load(url, D1, write_csv(tmp_path / "old.csv", D1, 50, "old.xlsx"))
    before = rows_of(url, D1)
    with psycopg.connect(url) as reader:
        reader.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        with pytest.raises(warehouse.LoadConnectionError, match="readers held the table"):
            load(url, D1, write_csv(tmp_path / "new.csv", D1, 60, "new.xlsx"))
    assert rows_of(url, D1) == before
    assert leftover_stages(url) == []


def test_a_killed_loads_stage_is_cleared_by_the_next(clean_tables: str, tmp_path: Path) -> None:
    url = clean_tables
    stage = f"{TABLE}_stage_20241204"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {stage} (LIKE {TABLE})")
        conn.execute(
            f"INSERT INTO {stage} (snapshot_date, store_id, sku) SELECT snapshot_date, store_id, sku FROM {TABLE}"
        )
    assert load(url, D1, write_csv(tmp_path / "d1.csv", D1, 5)) == 5
    assert leftover_stages(url) == []


# --- text guarded against spreadsheet formulas in the CSV, raw in the table ----------------------

# Text from stores' files that a spreadsheet would run: the day's CSV guards it with a leading quote
# (aggregate.csv_bytes), the load takes the quote off again.
RISKY_TEXT = [
    '=HYPERLINK("http://x","y")',
    "+1+2",
    "-1",
    "@SUM(A1)",
    "\tindent",
    "\rback, and more",
    "'quoted",
    "''two",
    "'",
    '=A1,"x"\nline two',
    "-ü",
    "it's plain",
    None,
]


def guarded_stock_rows(date: datetime.date) -> pd.DataFrame:
    """Snapshot rows whose every text column holds one of RISKY_TEXT (the keys too), written as the product writes."""
    rows = []
    for i, value in enumerate(RISKY_TEXT):
        rows.append(
            {
                **{k: float(v) for k, v in _row(date, i + 1, "x").items() if k in NUMERIC_STOCK_COLUMNS},
                "snapshot_date": date,
                "store_id": "-S1" if i % 2 else "=S2",
                "sku": f"{value or ''}#{i}",
                "product_name": value,
                "category": value,
                "supplier_id": value,
                "supplier_name": value,
                "status": "healthy",
                "emergency": False,
                "source_file": value,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


NUMERIC_STOCK_COLUMNS = {
    "stock_on_hand", "sales_qty", "avg_daily_sales", "lead_time_days", "reorder_point", "target_stock",
    "on_order_qty", "suggested_order_qty",
}  # fmt: skip


def write_with_product_writer(path: Path, frame: pd.DataFrame, columns: list[str]) -> Path:
    sink = CsvSink(path, columns)
    sink.write(frame)
    return sink.commit()


def raw_text(frame: pd.DataFrame, columns: list[str]) -> list[tuple[object, ...]]:
    text = frame[columns].astype(object)
    return list(text.where(text.notna(), None).itertuples(index=False, name=None))


def text_values(url: str, table: str, columns: list[str], order: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()


STOCK_TEXT = ["store_id", "sku", "product_name", "category", "supplier_id", "supplier_name", "source_file"]


@pytest.mark.parametrize("copy", ["one connection", "slices"])
def test_guarded_text_is_loaded_raw_into_a_partitioned_table(
    clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy: str
) -> None:
    if copy == "slices":
        monkeypatch.setattr(warehouse, "PARALLEL_COPY_MIN_BYTES", 0)
        monkeypatch.setattr(warehouse, "LOAD_CONNECTIONS", 3)
        monkeypatch.setattr(warehouse, "COPY_CHUNK_BYTES", 5)  # a guard may be split across two chunks
    frame = guarded_stock_rows(D1)
    path = write_with_product_writer(tmp_path / "d1.csv", frame, COLUMNS)
    # The file people open holds no field a spreadsheet would run.
    fields = [field for record in list(csv.reader(path.open(newline="", encoding="utf-8")))[1:] for field in record]
    assert not [f for f in fields if f.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert '\'=HYPERLINK("http://x","y")' in fields and "'''two" in fields

    assert load(clean_tables, D1, path) == len(RISKY_TEXT)
    expected = sorted(raw_text(frame, STOCK_TEXT), key=lambda r: (r[0], r[1]))
    loaded = text_values(clean_tables, TABLE, STOCK_TEXT, 'store_id COLLATE "C", sku COLLATE "C"')
    assert loaded == expected
    assert leftover_stages(clean_tables) == []


PO_TABLE = "po_snapshots"
PO_COLUMNS = list(po_snapshots.OUTPUT_COLUMNS)
PO_TEXT = ["po_number", "store_id", "sku", "supplier_id", "supplier_name", "source_file"]


def test_guarded_text_is_loaded_raw_in_place(clean_tables: str, tmp_path: Path) -> None:
    rows = [
        {
            "snapshot_date": D1,
            "po_number": f"{value or ''}#{i}",
            "store_id": "@S1",
            "sku": value or "plain",
            "supplier_id": value,
            "supplier_name": value,
            "po_date": D1 if i % 2 else None,
            "expected_date": None,
            "qty_ordered": 5.0,
            "qty_received": 2.0,
            "qty_open": 3.0,
            "status_norm": "partial",
            "days_overdue": 0,
            "is_overdue": False,
            "source_file": value,
        }
        for i, value in enumerate(RISKY_TEXT)
    ]
    frame = pd.DataFrame(rows, columns=PO_COLUMNS).astype({"days_overdue": "int64", "is_overdue": bool})
    path = write_with_product_writer(tmp_path / "po.csv", frame, PO_COLUMNS)
    assert ",'@S1," in path.read_text(encoding="utf-8")
    loaded = replace_date_rows(
        clean_tables, table=PO_TABLE, date_column="snapshot_date", date=D1, csv_path=path, columns=PO_COLUMNS
    )
    assert loaded == len(RISKY_TEXT)
    expected = sorted(raw_text(frame, PO_TEXT), key=lambda r: r[0])
    assert text_values(clean_tables, PO_TABLE, PO_TEXT, 'po_number COLLATE "C"') == expected


@pytest.mark.parametrize(
    ("data", "guarded"),
    [
        (b"h1,h2\nit's,x'\n", False),  # quotes inside fields only: no restoring UPDATE
        (b"h1,h2\na,'=1\n", True),
        (b"h1,h2\n'=1,a\n", True),
        (b'h1,h2\na,"\'=1,2"\n', True),
        (b'h1,h2\r\n"\'\rx",a\r\n', True),
    ],
)
def test_a_guarded_field_is_seen_wherever_the_chunks_split(data: bytes, guarded: bool) -> None:
    for cut in range(len(data) + 1):
        for step in (1, 2, 3, len(data) or 1):
            watch = warehouse._GuardWatch()
            for piece in (data[:cut], data[cut:]):
                for start in range(0, len(piece), step):
                    watch.feed(piece[start : start + step])
            assert watch.seen is guarded, (cut, step)


@pytest.mark.parametrize("slices", [1, 3])
def test_a_csv_in_a_bucket_is_streamed_into_the_table_as_a_local_one(
    clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slices: int
) -> None:
    """The day's CSV in the data root's bucket (the GCS emulator, through ObjectStoragePath) is read
    in ranges straight into COPY, as one slice or several on their own connections."""
    from airflow.sdk import ObjectStoragePath

    from gcs_emulator import gcs_emulator

    monkeypatch.setattr(warehouse, "COPY_CHUNK_BYTES", 4096)
    monkeypatch.setattr(warehouse, "PARALLEL_COPY_MIN_BYTES", 0)
    monkeypatch.setattr(warehouse, "LOAD_CONNECTIONS", slices)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    local = write_csv(tmp_path / "d1.csv", D1, 500, "tökö ☃.xlsx")
    assert load(clean_tables, D1, local) == 500
    expected = [row[:-1] for row in rows_of(clean_tables, D1)]
    with gcs_emulator(tmp_path / "gcs", monkeypatch) as (client, _server):
        client.create_bucket("autopo-data").blob("seeds/20241204.csv").upload_from_filename(str(local))
        local.unlink()
        remote = ObjectStoragePath("gs://autopo-data/seeds/20241204.csv", conn_id="google_cloud_default")
        assert load(clean_tables, D1, remote) == 500
    assert [row[:-1] for row in rows_of(clean_tables, D1)] == expected


def test_replacing_some_stores_of_a_date_leaves_the_others_and_refuses_a_stale_base(
    clean_tables: str, tmp_path: Path
) -> None:
    """replace_date_partitions: the rows of the named stores replaced in one transaction, the date's other
    stores as loaded, the total recorded; a base that is not the date's load, or rows of a store it does not
    replace, change nothing."""
    first = load(clean_tables, D1, write_csv(tmp_path / "full.csv", D1, 70))
    assert first == 70  # 7 stores x 10 rows
    before = dict(query_all(clean_tables, "SELECT store_id, count(*) FROM stock_health_snapshots GROUP BY 1"))

    def store_rows(store: int, n: int, path: Path) -> Path:
        # Rows i with i % 7 == store belong to STORE-00<store>; these are new SKUs of that store.
        return write_csv(
            path,
            D1,
            n,
            source="b.xlsx",
            mutate=lambda i, row: row.update(store_id=f"STORE-{store:03d}", sku=f"NEW-{i:04d}"),
        )

    delta = store_rows(3, 4, tmp_path / "delta.csv")
    replaced = partial(clean_tables, delta, ["STORE-003", "STORE-005"], rows_before=70)
    # STORE-003 now has the 4 new rows; STORE-005 (named, no rows) is gone; the others untouched.
    assert replaced == 70 - before["STORE-003"] - before["STORE-005"] + 4
    after = dict(query_all(clean_tables, "SELECT store_id, count(*) FROM stock_health_snapshots GROUP BY 1"))
    assert after == {**{k: v for k, v in before.items() if k != "STORE-005"}, "STORE-003": 4}
    assert query_all(clean_tables, "SELECT rows FROM snapshot_loads WHERE snapshot_date = %s", (D1,)) == [(replaced,)]
    # The swapped-in partition has autovacuum off: the partial load, which changed more than a tenth of
    # its rows, analysed it itself.
    (estimate,) = query_all(
        clean_tables, "SELECT reltuples::int FROM pg_class WHERE relname = %s", (warehouse.partition_name(TABLE, D1),)
    )
    assert estimate == (replaced,)

    with pytest.raises(warehouse.StaleBaseError, match="not the 70 rows"):
        partial(clean_tables, delta, ["STORE-003"], rows_before=70)
    with pytest.raises(LoadError, match=r"STORE-003.*does not replace"):
        partial(clean_tables, delta, ["STORE-001"], rows_before=replaced)
    assert dict(query_all(clean_tables, "SELECT store_id, count(*) FROM stock_health_snapshots GROUP BY 1")) == after


def partial(url: str, path: Path, stores: list[str], *, rows_before: int) -> int:
    return warehouse.replace_date_partitions(
        url,
        table=TABLE,
        date_column="snapshot_date",
        date=D1,
        partition_column="store_id",
        partitions=stores,
        csv_path=path,
        columns=COLUMNS,
        rows_before=rows_before,
    )


def query_all(url: str, statement: str, params: tuple[object, ...] | None = None) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement.encode(), params).fetchall()
