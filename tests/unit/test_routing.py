"""Unit tests for autopo_pipelines.routing with the real stock_health file pattern."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from autopo_pipelines.config import load_config_file
from autopo_pipelines.routing import parse_file_date, route_files
from autopo_pipelines.sources import SourceFile

REAL_CONFIG = Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml"
DAY = dt.date(2024, 12, 4)


@pytest.fixture(scope="module")
def pattern() -> re.Pattern[str]:
    return load_config_file(REAL_CONFIG).compiled_pattern


def source_file(name: str, modified: float = 1_733_270_400.0) -> SourceFile:
    return SourceFile(name=name, location=f"/inbox/{name}", size_bytes=100, modified=modified)


@pytest.mark.parametrize(
    ("name", "store_id"),
    [
        ("STORE-012_stock_20241204.xlsx", "STORE-012"),
        ("Toko 7 stock health 2024-12-04.xlsx", "TOKO 7"),
        ("store-013_STOCK_20241204.XLSX", "STORE-013"),  # matched case-insensitively, store upper-cased
        ("Toko Melati-stock-health-20241204.xlsx", "TOKO MELATI"),
        ("JKT01 stock 2024-12-04.xlsx", "JKT01"),
    ],
)
def test_file_of_the_day_is_routed_with_its_store(pattern: re.Pattern[str], name: str, store_id: str) -> None:
    routing = route_files([source_file(name)], pattern, DAY)
    assert [(r.file.name, r.store_id, r.file_date, r.conflict) for r in routing.routed] == [(name, store_id, DAY, None)]
    assert routing.unrouted == []
    assert routing.other_dates == 0


@pytest.mark.parametrize(
    "name",
    [
        "notes.txt",
        "STORE-012_stock_20241204.csv",
        "stock_20241204.xlsx",  # no store
        "STORE-012_sales_20241204.xlsx",
        "STORE-012_stock_20241204 (1).xlsx",
        "STORE-012_stock_2024124.xlsx",  # 7 digits
        "STORE-012_stock_20241204.xlsx.bak",
    ],
)
def test_names_not_matching_the_pattern_are_unrouted(pattern: re.Pattern[str], name: str) -> None:
    routing = route_files([source_file(name)], pattern, DAY)
    assert routing.routed == []
    assert [u.file.name for u in routing.unrouted] == [name]
    assert "pattern" in routing.unrouted[0].reason
    assert routing.other_dates == 0


def test_files_of_other_dates_are_counted_not_routed(pattern: re.Pattern[str]) -> None:
    files = [
        source_file("STORE-012_stock_20241203.xlsx"),
        source_file("STORE-012_stock_20241205.xlsx"),
        source_file("Toko 7 stock health 2024-11-04.xlsx"),
        source_file("STORE-012_stock_20241204.xlsx"),
    ]
    routing = route_files(files, pattern, DAY)
    assert [r.file.name for r in routing.routed] == ["STORE-012_stock_20241204.xlsx"]
    assert routing.other_dates == 3
    assert routing.unrouted == []


def test_invalid_date_in_name_is_unrouted_with_reason(pattern: re.Pattern[str]) -> None:
    routing = route_files([source_file("STORE-014_stock_20241341.xlsx")], pattern, DAY)
    assert routing.routed == []
    assert routing.other_dates == 0
    assert len(routing.unrouted) == 1
    reason = routing.unrouted[0].reason
    assert "date" in reason
    assert "month" in reason


@pytest.mark.parametrize(
    ("text", "expected"), [("20241204", DAY), ("2024-12-04", DAY), ("20240229", dt.date(2024, 2, 29))]
)
def test_parse_file_date(text: str, expected: dt.date) -> None:
    assert parse_file_date(text) == expected


@pytest.mark.parametrize("text", ["20230229", "20241341", "2024124", "2024-12-4", "abcdefgh"])
def test_parse_file_date_refuses_bad_dates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_file_date(text)


def test_routed_files_are_in_store_order(pattern: re.Pattern[str]) -> None:
    files = [
        source_file("Toko 7 stock health 2024-12-04.xlsx"),
        source_file("STORE-012_stock_20241204.xlsx"),
        source_file("B1_stock_20241204.xlsx"),
    ]
    routing = route_files(files, pattern, DAY)
    assert [r.store_id for r in routing.routed] == ["B1", "STORE-012", "TOKO 7"]


def test_two_files_for_one_store_newest_policy_keeps_the_newest(pattern: re.Pattern[str]) -> None:
    older = source_file("STORE-012_stock_20241204.xlsx", modified=1000.0)
    newer = source_file("store-012 stock health 2024-12-04.xlsx", modified=2000.0)
    other = source_file("STORE-013_stock_20241204.xlsx", modified=500.0)
    routing = route_files([newer, older, other], pattern, DAY, duplicates="newest")
    assert [r.file.name for r in routing.routed] == [newer.name, other.name]
    assert all(r.conflict is None for r in routing.routed)
    assert [s.file.name for s in routing.superseded] == [older.name]
    assert newer.name in routing.superseded[0].reason
    assert routing.unrouted == []


def test_newest_policy_uses_modified_time_not_the_name(pattern: re.Pattern[str]) -> None:
    # The alphabetically later name is the older upload.
    newer = source_file("A_stock_20241204.xlsx", modified=2000.0)
    older = source_file("a-stock-2024-12-04.xlsx", modified=1000.0)
    routing = route_files([older, newer], pattern, DAY)
    assert [r.file.name for r in routing.routed] == [newer.name]
    assert [s.file.name for s in routing.superseded] == [older.name]


def test_two_files_for_one_store_fail_policy_routes_both_with_a_conflict(pattern: re.Pattern[str]) -> None:
    first = source_file("STORE-012_stock_20241204.xlsx", modified=1000.0)
    second = source_file("STORE-012 stock health 2024-12-04.xlsx", modified=2000.0)
    alone = source_file("STORE-013_stock_20241204.xlsx")
    routing = route_files([second, first, alone], pattern, DAY, duplicates="fail")
    by_name = {r.file.name: r for r in routing.routed}
    assert set(by_name) == {first.name, second.name, alone.name}
    assert by_name[alone.name].conflict is None
    for name in (first.name, second.name):
        conflict = by_name[name].conflict
        assert conflict is not None
        assert "STORE-012" in conflict
        assert first.name in conflict and second.name in conflict
        assert "2024-12-04" in conflict
    assert routing.superseded == []


@pytest.mark.parametrize("text", ["2024-1204", "202412-04", "2024_12_04"])
def test_parse_file_date_refuses_mixed_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_file_date(text)


def test_identical_files_under_two_names() -> None:
    """The same content twice is one upload: a copy for the same store (or without a store) is superseded,
    a copy named as another store's report fails, and the oldest is the one processed."""
    from autopo_pipelines.routing import RoutedFile, separate_identical

    def routed(name: str, store: str | None, modified: float) -> RoutedFile:
        return RoutedFile(SourceFile(name, f"/in/{name}", 10, modified), store, dt.date(2024, 12, 4))

    files = [
        routed("PO export 2024-12-04.xlsx", None, 2.0),
        routed("po_snapshot_20241204.xlsx", None, 1.0),
        routed("STORE-001_stock_20241204.xlsx", "STORE-001", 1.0),
        routed("STORE-002_stock_20241204.xlsx", "STORE-002", 5.0),
        routed("STORE-003_stock_20241204.xlsx", "STORE-003", 1.0),
    ]
    checksums = {
        "/in/PO export 2024-12-04.xlsx": "sha256:a",
        "/in/po_snapshot_20241204.xlsx": "sha256:a",
        "/in/STORE-001_stock_20241204.xlsx": "sha256:b",
        "/in/STORE-002_stock_20241204.xlsx": "sha256:b",
    }
    kept, copies = separate_identical(files, checksums)
    assert [(r.file.name, r.conflict is not None) for r in kept] == [
        ("po_snapshot_20241204.xlsx", False),
        ("STORE-001_stock_20241204.xlsx", False),
        ("STORE-002_stock_20241204.xlsx", True),
        ("STORE-003_stock_20241204.xlsx", False),
    ]
    assert [(c.file.name, c.reason) for c in copies] == [
        (
            "PO export 2024-12-04.xlsx",
            "same content as po_snapshot_20241204.xlsx: the same file uploaded twice; only that one is used",
        )
    ]
    assert kept[2].conflict == (
        "same content as STORE-001_stock_20241204.xlsx, store STORE-001's file: this is not store STORE-002's "
        "own report; send it and rerun"
    )
