"""Atomic per-date replacement of snapshot rows from a CSV."""

from __future__ import annotations

import csv
import datetime
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from autopo_pipelines import warehouse
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

    monkeypatch.setattr(warehouse, "open", lambda p, mode="r": CountingFile(real_open(p, mode)), raising=False)
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
