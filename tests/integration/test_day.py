"""The day's steps across reruns: each run judges only its own results.

These call the plain functions the DAG's tasks call, with run ids as Airflow
would give them, against the real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import threading
from pathlib import Path

import psycopg
import pytest
from openpyxl import Workbook

from autopo_pipelines import day_lock
from autopo_pipelines.config import default_config_dir, load_config_file
from autopo_pipelines.day import Day
from autopo_pipelines.day.checks import day_problems
from autopo_pipelines.day.file_run import run_file
from autopo_pipelines.day.listing import list_day_files
from autopo_pipelines.day.outputs import aggregate_day, load_day
from autopo_pipelines.errors import InputFileError, ReferenceDataError
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 3, 5)
STORES = ("S1", "S2")


def write_store(inbox: Path, store: str, skus: list[tuple[str, int, int]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "Stock On Hand", "Sales Qty"])
    for row in skus:
        sheet.append(list(row))
    path = inbox / f"{store}_stock_{DATE:%Y%m%d}.xlsx"
    workbook.save(path)
    return path


@pytest.fixture
def day(tmp_path: Path) -> Day:
    """stock_health's day with two stores' files and a supplier master; no run yet."""
    layout = DataLayout(tmp_path / "data")
    inbox = layout.inbox("stock_health")
    inbox.mkdir(parents=True)
    layout.reference().mkdir(parents=True)
    (layout.reference() / "suppliers.csv").write_text(
        "sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\nA,SUP,Supplier,7,0,1\n", encoding="utf-8"
    )
    write_store(inbox, "S1", [("A", 10, 30), ("B", 0, 3)])
    write_store(inbox, "S2", [("A", 5, 60)])
    return Day(load_config_file(default_config_dir() / "stock_health.yaml"), layout, DATE)


def run_day(day: Day, run_id: str, conninfo: str, *, files: list[str] | None = None) -> dict[str, str]:
    """list -> transform each file -> aggregate -> load, as the DAG does; returns each file's status."""
    run = day.for_run(run_id)
    statuses: dict[str, str] = {}
    for task in list_day_files(run):
        if files is not None and task.name not in files:
            continue
        try:
            statuses[task.name] = run_file(run, task)["status"]
        except InputFileError:
            statuses[task.name] = "failed"
    if aggregate_day(run) is not None:
        load_day(dataclasses.replace(run, conninfo=conninfo))
    return statuses


def table_stores(conninfo: str) -> list[tuple[str, str]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT store_id, sku FROM stock_health_snapshots WHERE snapshot_date = %s ORDER BY 1, 2", (DATE,)
        ).fetchall()


def test_a_complete_day_has_no_problems(day: Day, clean_tables: str) -> None:
    statuses = run_day(day, "run-1", clean_tables)
    assert set(statuses.values()) == {"completed"}
    assert day_problems(day.for_run("run-1")) == []
    assert table_stores(clean_tables) == [("S1", "A"), ("S1", "B"), ("S2", "A")]


def test_a_rerun_reuses_unchanged_files_and_redoes_changed_ones(day: Day, clean_tables: str) -> None:
    layout = day.layout
    run_day(day, "run-1", clean_tables)
    assert set(run_day(day, "run-2", clean_tables).values()) == {"skipped"}
    write_store(layout.inbox("stock_health"), "S2", [("A", 5, 60), ("C", 1, 1)])
    statuses = run_day(day, "run-3", clean_tables)
    assert statuses == {"S1_stock_20240305.xlsx": "skipped", "S2_stock_20240305.xlsx": "completed"}
    assert table_stores(clean_tables) == [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S2", "C")]
    # New reference data changes every row's supplier terms: nothing may be reused.
    (layout.reference() / "suppliers.csv").write_text(
        "sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\nA,SUP,Supplier,3,0,1\n", encoding="utf-8"
    )
    assert set(run_day(day, "run-4", clean_tables).values()) == {"completed"}
    assert day_problems(day.for_run("run-4")) == []


def test_a_file_that_breaks_on_a_rerun_keeps_its_previous_good_version(day: Day, clean_tables: str) -> None:
    layout = day.layout
    run_day(day, "run-1", clean_tables)
    (layout.inbox("stock_health") / "S2_stock_20240305.xlsx").write_bytes(b"garbage")
    statuses = run_day(day, "run-2", clean_tables)
    assert statuses["S2_stock_20240305.xlsx"] == "failed"
    problems = day_problems(day.for_run("run-2"))
    # Still a problem of the day (the new version is broken), and it says what the snapshot holds of S2.
    assert len(problems) == 1 and problems[0].startswith("S2_stock_20240305.xlsx")
    assert problems[0].endswith("; its previous good version's rows stay in the snapshot")
    # The snapshot holds, per file, its latest good version: S2's rows from run 1 stay.
    assert table_stores(clean_tables) == [("S1", "A"), ("S1", "B"), ("S2", "A")]
    csv_text = (layout.seeds("stock_health") / "20240305.csv").read_text(encoding="utf-8")
    assert ",S2," in csv_text


def test_a_file_whose_task_never_finished_counts_as_failed(day: Day, clean_tables: str) -> None:
    run_day(day, "run-1", clean_tables)
    # Run 2: S2's task dies (killed, a bug) before recording anything.
    run_day(day, "run-2", clean_tables, files=["S1_stock_20240305.xlsx"])
    problems = day_problems(day.for_run("run-2"))
    assert problems == [
        "S2_stock_20240305.xlsx: not transformed in this run (see its task's log); "
        "its previous good version's rows stay in the snapshot"
    ]
    assert table_stores(clean_tables) == [("S1", "A"), ("S1", "B"), ("S2", "A")]


def test_stale_state_of_an_earlier_run_never_passes_for_this_run(day: Day, clean_tables: str) -> None:
    run_day(day, "run-1", clean_tables)
    # Run 2's sensor or list_files failed: nothing of run 1 counts for it.
    run_2 = day.for_run("run-2")
    assert run_2.listing() is None
    assert day_problems(run_2) == ["the day's files were not listed in this run (see the list_files task)"]
    with pytest.raises(LookupError):
        aggregate_day(run_2)
    with pytest.raises(LookupError):
        load_day(dataclasses.replace(run_2, conninfo=clean_tables))
    # Run 3's list_files fails on a malformed supplier master: run 1's listing is gone too.
    (day.layout.reference() / "suppliers.csv").write_text("sku,oops\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError):
        list_day_files(day.for_run("run-3"))
    assert day.for_run(None).listing() is None


def test_clearing_only_the_failed_file_asks_for_the_aggregate_to_be_rerun(day: Day, clean_tables: str) -> None:
    layout = day.layout
    inbox = layout.inbox("stock_health")
    (inbox / "S2_stock_20240305.xlsx").write_bytes(b"garbage")
    statuses = run_day(day, "run-1", clean_tables)
    assert statuses["S2_stock_20240305.xlsx"] == "failed"
    # The store sends the file again and only its map index is cleared and rerun.
    write_store(inbox, "S2", [("A", 5, 60)])
    run_1 = day.for_run("run-1")
    listing = run_1.listing()
    assert listing is not None
    task = next(t for t in listing.routed if t.name.startswith("S2"))
    assert run_file(run_1, task)["status"] == "completed"
    assert day_problems(run_1) == [
        "the day's outputs predate the latest file results: clear aggregate_and_flush with its downstream tasks"
    ]
    # With its downstream tasks cleared too, the day completes with both stores.
    aggregate_day(run_1)
    assert day_problems(run_1) == ["the snapshot was not loaded into the warehouse (see the load_snapshot task)"]
    load_day(dataclasses.replace(run_1, conninfo=clean_tables))
    assert day_problems(run_1) == []
    assert table_stores(clean_tables) == [("S1", "A"), ("S1", "B"), ("S2", "A")]
    (result,) = (layout.intermediate("stock_health", DATE) / "results").glob("S2_stock_20240305.xlsx.*.json")
    record = json.loads(result.read_text())
    assert record["status"] == "completed" and record["run_id"] == "run-1"


def test_the_rejects_file_is_absent_while_the_day_is_being_rewritten(
    day: Day, clean_tables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_day(day, "run-1", clean_tables)
    rejects = day.layout.seeds("stock_health") / "20240305_rejects.csv"
    assert rejects.exists()
    run_2 = day.for_run("run-2")
    list_day_files(run_2)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("autopo_pipelines.aggregate.CsvSink.commit", disk_full)
    for task in list_day_files(run_2):
        run_file(run_2, task)
    with pytest.raises(OSError, match="No space left"):
        aggregate_day(run_2)
    assert not rejects.exists(), "a missing rejects file is how readers know the day did not finish"
    assert sorted(p.name for p in rejects.parent.iterdir() if p.name.startswith(".")) == []


def test_stores_that_sent_nothing_are_named_in_the_listing_and_the_log(
    day: Day, caplog: pytest.LogCaptureFixture
) -> None:
    config = day.config.model_copy(update={"expected_stores": ["s1", "S2", "S9", "Toko 7"]})
    run_1 = dataclasses.replace(day, config=config, run_id="run-1")
    with caplog.at_level("WARNING"):
        list_day_files(run_1)
    listing = run_1.listing()
    assert listing is not None
    assert listing.missing_stores == ["S9", "TOKO 7"]
    assert "no file from the expected store(s) S9, TOKO 7" in caplog.text


def test_listing_reads_the_days_po_data_once_and_says_when_there_is_none(
    day: Day, clean_tables: str, caplog: pytest.LogCaptureFixture
) -> None:
    day = dataclasses.replace(day, conninfo=clean_tables)
    caplog.set_level("INFO", logger="autopo_pipelines.day.listing")
    list_day_files(day.for_run("run-1"))
    listing = day.for_run("run-1").listing()
    assert listing is not None
    note = "ran without PO data for 2024-03-05: po_snapshots has no load for the date; on_order_qty is 0"
    assert listing.inputs.notes == [note]
    # The run's log says so where people look: a warning of the listing task.
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [f"stock_health 2024-03-05: {note}"]
    first = listing.inputs.fingerprint

    # The same reference data gives the same fingerprint (unchanged files are reused) ...
    list_day_files(day.for_run("run-2"))
    listing = day.for_run("run-2").listing()
    assert listing is not None and listing.inputs.fingerprint == first
    # ... a PO load for the date gives another, and the note says what was read.
    with psycopg.connect(clean_tables, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO po_snapshots (snapshot_date, po_number, store_id, sku, qty_ordered, qty_received, qty_open, "
            "status_norm, days_overdue, is_overdue) VALUES (%s, 'PO-1', 'S1', 'A', 12, 0, 12, 'open', 0, false)",
            (DATE,),
        )
        conn.execute("INSERT INTO snapshot_loads VALUES ('po_snapshots', %s, 1, now())", (DATE,))
    list_day_files(day.for_run("run-3"))
    listing = day.for_run("run-3").listing()
    assert listing is not None
    inputs = listing.inputs
    assert inputs.fingerprint != first
    assert inputs.notes[0].endswith(": 1 PO lines, 1 (store, sku) with open quantity")


def test_the_same_file_under_another_stores_name_fails_alone(day: Day, clean_tables: str) -> None:
    inbox = day.layout.inbox("stock_health")
    original = inbox / f"S1_stock_{DATE:%Y%m%d}.xlsx"
    copy = inbox / f"S3_stock_{DATE:%Y%m%d}.xlsx"
    copy.write_bytes(original.read_bytes())
    os.utime(copy, (original.stat().st_mtime + 60, original.stat().st_mtime + 60))
    run_1 = Day(day.config, day.layout, DATE, "run-1", clean_tables)
    tasks = {t.name: t for t in list_day_files(run_1)}
    assert tasks[original.name].conflict is None
    with pytest.raises(InputFileError, match=f"same content as {original.name}, store S1's file: this is not store S3"):
        run_file(run_1, tasks[copy.name])
    assert run_file(run_1, tasks[original.name])["status"] == "completed"


def test_two_runs_of_one_date_are_serialised_never_interleaved(clean_tables: str) -> None:
    """A manual run during a backfill's run of the same date: the second waits (its sensor sees the date
    busy) and cannot take the date while the first is live; once the first ends, it can."""
    live = {"backfill-1"}

    def is_live(run_id: str) -> bool:
        return run_id in live

    lock = functools.partial(day_lock.acquire, clean_tables, "stock_health", DATE)
    lock("backfill-1", is_live)
    assert day_lock.busy_with(clean_tables, "stock_health", DATE, "manual-1", is_live) == "backfill-1"
    assert day_lock.busy_with(clean_tables, "stock_health", DATE, "backfill-1", is_live) is None
    with pytest.raises(day_lock.DayBusyError, match="is being processed by run backfill-1"):
        lock("manual-1", is_live)
    # The holder's own tasks (each acquires) go on.
    lock("backfill-1", is_live)

    # The first run ends normally: check_day releases the date.
    day_lock.release(clean_tables, "stock_health", DATE, "manual-1")  # not the holder: no effect
    assert day_lock.holder(clean_tables, "stock_health", DATE) == "backfill-1"
    day_lock.release(clean_tables, "stock_health", DATE, "backfill-1")
    lock("manual-1", is_live)
    assert day_lock.holder(clean_tables, "stock_health", DATE) == "manual-1"

    # A run that ended without releasing (marked failed by hand) does not block the date for ever.
    live.clear()
    lock("manual-2", is_live)
    assert day_lock.holder(clean_tables, "stock_health", DATE) == "manual-2"
    # Another pipeline's lock of the same date is another lock.
    day_lock.acquire(clean_tables, "po_snapshots", DATE, "po-1", lambda run: True)
    assert day_lock.holder(clean_tables, "stock_health", DATE) == "manual-2"


@pytest.mark.parametrize("held_by_an_ended_run", [False, True])
def test_two_runs_starting_one_date_at_once_never_both_take_it(clean_tables: str, held_by_an_ended_run: bool) -> None:
    """Both runs look at the lock at the same moment (a barrier in their liveness check holds them
    together), then both try to take it: exactly one does, on a free date or over an ended run's lock.
    The file lock this replaces let both take an ended run's lock."""
    if held_by_an_ended_run:
        day_lock.acquire(clean_tables, "stock_health", DATE, "ended-run", lambda run: True)
    together = threading.Barrier(2)
    contenders = ["manual-1", "backfill-1"]

    def is_live(run_id: str) -> bool:
        if run_id == "ended-run":
            together.wait(timeout=10)  # both have read the holder; now both swap
            return False
        return run_id in contenders

    outcomes: dict[str, str] = {}

    def start(run_id: str) -> None:
        if not held_by_an_ended_run:
            together.wait(timeout=10)
        try:
            day_lock.acquire(clean_tables, "stock_health", DATE, run_id, is_live)
            outcomes[run_id] = "took it"
        except day_lock.DayBusyError as exc:
            outcomes[run_id] = str(exc)

    threads = [threading.Thread(target=start, args=(run_id,)) for run_id in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [run_id for run_id, outcome in outcomes.items() if outcome == "took it"]
    assert len(outcomes) == 2 and len(winners) == 1, outcomes
    (loser,) = set(contenders) - set(winners)
    assert outcomes[loser].startswith(f"stock_health {DATE.isoformat()} is being processed by run {winners[0]}")
    assert day_lock.holder(clean_tables, "stock_health", DATE) == winners[0]
