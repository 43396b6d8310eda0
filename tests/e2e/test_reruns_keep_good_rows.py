"""A rerun of a date never drops a file's rows silently: the snapshot holds, per source file (per store
where the pipeline has stores), its latest good version (issue "Lose nothing", item 2).

Each day is generated, run through the real DAG (dag.test) into PostgreSQL, changed at the source, and
run again; the table, the run's status and every file's tracking row are checked."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from dag_runs import pipeline_dag, query, run_day

from autopo_local.sample_day import write_store_file, write_supplier_master
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
SKUS = [f"SKU-{i:04d}" for i in range(8)]


def store_file(number: int) -> str:
    return f"STORE-{number:03d}_stock_{DATE:%Y%m%d}.xlsx"


def write_store(layout: DataLayout, number: int, name: str | None = None, seed: int = 0) -> Path:
    path = layout.inbox("stock_health") / (name or store_file(number))
    skus = SKUS[: 4 + number]  # each store its own row count
    return write_store_file(path, f"STORE-{number:03d}", DATE, skus, random.Random(seed + number), style=0)


@pytest.fixture
def three_stores(data_layout: DataLayout, clean_tables: str) -> DataLayout:
    write_supplier_master(data_layout.reference() / "suppliers.csv", SKUS, random.Random(1))
    for number in (1, 2, 3):
        write_store(data_layout, number)
    return data_layout


def rows_per_store(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT store_id, count(*) FROM stock_health_snapshots GROUP BY 1 ORDER BY 1"))


def file_rows(url: str) -> dict[str, tuple[Any, ...]]:
    return {
        name: (status, error)
        for name, status, error in query(url, "SELECT file_name, status, error FROM pipeline_file_jobs")
    }


def run_status(url: str) -> tuple[Any, ...]:
    (row,) = query(url, "SELECT status, error FROM pipeline_runs")
    return tuple(row)


def test_a_file_gone_from_the_source_keeps_its_rows_and_says_retained(
    three_stores: DataLayout, clean_tables: str
) -> None:
    from airflow.utils.state import DagRunState

    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    before = rows_per_store(clean_tables)
    assert before == {"STORE-001": 5, "STORE-002": 6, "STORE-003": 7}

    (three_stores.inbox("stock_health") / store_file(2)).unlink()  # retention, or a mistaken delete
    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS

    assert rows_per_store(clean_tables) == before
    assert file_rows(clean_tables)[store_file(2)] == (
        "retained",
        "retained (source gone): its last good version's rows stay in the snapshot",
    )
    assert {status for name, (status, _) in file_rows(clean_tables).items() if name != store_file(2)} == {"skipped"}
    assert run_status(clean_tables) == ("completed", None)

    # Dropping a file's rows is a choice made on purpose, in the run's conf.
    dag = pipeline_dag("stock_health")
    assert dag.test(run_conf={"date": DATE.isoformat(), "drop_missing": True}).state == DagRunState.SUCCESS
    assert rows_per_store(clean_tables) == {"STORE-001": 5, "STORE-003": 7}
    assert file_rows(clean_tables)[store_file(2)] == (
        "unrouted",
        "no longer at the source: its rows were dropped on request (drop_missing)",
    )


def test_a_broken_new_version_keeps_the_previous_good_rows(three_stores: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    before = rows_per_store(clean_tables)
    (three_stores.inbox("stock_health") / store_file(3)).write_bytes(b"this is not a workbook")

    assert run_day("stock_health", DATE).state == DagRunState.FAILED  # check_day: a file failed

    assert rows_per_store(clean_tables) == before
    status, error = file_rows(clean_tables)[store_file(3)]
    assert status == "failed"
    assert error.startswith(f"{store_file(3)}: ") and error.endswith(
        "; its previous good version's rows stay in the snapshot"
    )
    status, error = run_status(clean_tables)
    assert status == "completed_with_errors" and "its previous good version's rows stay" in error


def test_a_store_sending_its_file_under_a_new_name_is_not_doubled(three_stores: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS
    inbox = three_stores.inbox("stock_health")
    (inbox / store_file(1)).unlink()
    write_store(three_stores, 1, name=f"STORE-001 stock health {DATE.isoformat()}.xlsx", seed=50)

    assert run_day("stock_health", DATE).state == DagRunState.SUCCESS

    # The store's good file of this run replaces what was kept for it: its rows once, from the new file.
    assert rows_per_store(clean_tables) == {"STORE-001": 5, "STORE-002": 6, "STORE-003": 7}
    files = file_rows(clean_tables)
    assert files[f"STORE-001 stock health {DATE.isoformat()}.xlsx"] == ("completed", None)
    assert files[store_file(1)] == ("unrouted", "no longer at the source")
    assert run_status(clean_tables) == ("completed", None)


def test_a_po_export_gone_from_the_source_keeps_its_lines(data_layout: DataLayout, clean_tables: str) -> None:
    """po_snapshots has no store per file here (consolidated exports): the unit is the file."""
    from airflow.utils.state import DagRunState
    from openpyxl import Workbook

    inbox = data_layout.inbox("po_snapshots")
    inbox.mkdir(parents=True)
    for supplier, lines in (("SUP-1", 3), ("SUP-2", 2)):
        workbook = Workbook()
        workbook.active.append(["PO No.", "Toko", "Kode Barang", "Qty PO", "Qty Terima", "Status"])
        for n in range(lines):
            workbook.active.append([f"{supplier}-{n}", "STORE-001", f"SKU-{n}", 4, 0, "Open"])
        workbook.save(inbox / f"po_export_{supplier}_{DATE.isoformat()}.xlsx")
    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS
    (inbox / f"po_export_SUP-2_{DATE.isoformat()}.xlsx").unlink()

    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS

    assert query(clean_tables, "SELECT count(*) FROM po_snapshots") == [(5,)]
    assert file_rows(clean_tables)[f"po_export_SUP-2_{DATE.isoformat()}.xlsx"][0] == "retained"


def test_a_link_in_the_inbox_is_not_read_and_the_good_files_load(three_stores: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    secret = three_stores.root.parent / "not-for-the-pipeline.xlsx"
    (three_stores.inbox("stock_health") / store_file(3)).rename(secret)
    (three_stores.inbox("stock_health") / store_file(3)).symlink_to(secret)

    assert run_day("stock_health", DATE).state == DagRunState.FAILED  # check_day: a file failed

    assert rows_per_store(clean_tables) == {"STORE-001": 5, "STORE-002": 6}
    status, error = file_rows(clean_tables)[store_file(3)]
    assert status == "failed" and error.startswith(f"{store_file(3)}: it is a symbolic link")
    assert run_status(clean_tables)[0] == "completed_with_errors"
