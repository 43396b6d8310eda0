"""Event-to-row functions of the tracking tables: no Airflow, no database."""

from __future__ import annotations

import datetime as dt

from autopo_pipelines import tracking_rows
from autopo_pipelines.day.state import DayInputs, FileTask, Listing, NotUsed

DATE = dt.date(2024, 12, 4)
NOW = dt.datetime(2024, 12, 4, 8, 0, tzinfo=dt.UTC)
ROUTED = [
    FileTask("S1_stock_20241204.xlsx", "/in/S1_stock_20241204.xlsx", 10, 0.0, "S1", None),
    FileTask("S2_stock_20241204.xlsx", "/in/S2_stock_20241204.xlsx", 20, 0.0, "S2", None),
]
LISTING = Listing(
    run_id="run-1",
    date=DATE.isoformat(),
    source="/in",
    files_seen=4,
    routed=ROUTED,
    files_per_task=1,
    batches=[[file.name] for file in ROUTED],
    unrouted=[NotUsed("notes.txt", "/in/notes.txt", "no match")],
    superseded=[NotUsed("S1 old.xlsx", "/in/S1 old.xlsx", "superseded by a newer file")],
    missing_stores=["S3"],
    other_dates=0,
    inputs=DayInputs(folder="/nowhere", fingerprint="sha256:x", notes=[]),
)


def test_files_listed_starts_the_run_and_queues_every_routed_file() -> None:
    changes = tracking_rows.files_listed("stock_health", DATE, LISTING, "run-1", NOW)
    assert changes.run.dag_run_id == "run-1"
    assert changes.run.fields["status"] == "processing"
    assert changes.run.fields["total_files"] == 2
    assert changes.run.fields["missing_stores"] == ["S3"]
    assert changes.run.fields["completed_at"] is None and changes.run.fields["error"] is None
    by_name = {c.file_name: c for c in changes.files}
    assert by_name["S2_stock_20241204.xlsx"].fields["map_index"] == 1
    assert by_name["S2_stock_20241204.xlsx"].fields["status"] == "queued"
    assert by_name["S2_stock_20241204.xlsx"].file_path == "/in/S2_stock_20241204.xlsx"
    assert by_name["notes.txt"].fields == {"status": "unrouted", "error": "no match", "map_index": None}
    assert by_name["S1 old.xlsx"].fields["status"] == "unrouted"
    assert not any(c.attempt_key for c in changes.files)
    assert changes.run.takes_over
    assert all(c.only_older for c in changes.files if c.fields["status"] == "queued")


def test_a_finished_transform_counts_an_attempt_but_a_reused_part_does_not() -> None:
    file = LISTING.routed[0]
    result = {"status": "completed", "checksum": "sha256:ab", "rows_in": 5, "rows_out": 4, "rows_rejected": 1}
    done = tracking_rows.file_finished("stock_health", DATE, file, 0, result, "run-1", NOW, "run-1#1")
    job = done.files[0]
    assert job.attempt_key == "run-1#1"
    assert (job.fields["status"], job.fields["rows_in"], job.fields["rows_out"], job.fields["rows_rejected"]) == (
        "completed",
        5,
        4,
        1,
    )
    assert job.fields["error"] is None and job.fields["completed_at"] == NOW
    # A file's outcome never moves the run's status (the day may already be judged).
    assert done.run.fields == {} and done.run.insert_only == {"status": "processing"} and not done.run.takes_over
    reused = tracking_rows.file_finished(
        "stock_health", DATE, file, 0, {**result, "status": "skipped"}, "run-2", NOW, "run-2#1"
    )
    assert reused.files[0].fields["status"] == "skipped"
    assert reused.files[0].attempt_key is None


def test_a_failed_attempt_waits_for_its_retry_or_fails_the_file() -> None:
    file = LISTING.routed[1]
    failure = {"error": "boom", "will_retry": True, "checksum": "sha256:cd", "attempt_key": "run-1#1"}
    retrying = tracking_rows.file_failed("stock_health", DATE, file, 1, failure, "run-1", NOW).files[0]
    assert retrying.fields["status"] == "queued" and retrying.fields["error"] == "boom"
    assert "completed_at" not in retrying.fields
    assert retrying.attempt_key == "run-1#1"
    # The failure replaces the outcome of an earlier content of the file.
    assert (retrying.fields["checksum"], retrying.fields["rows_out"], retrying.fields["intermediate_path"]) == (
        "sha256:cd",
        0,
        None,
    )
    final = tracking_rows.file_failed(
        "stock_health", DATE, file, 1, {**failure, "will_retry": False, "attempt_key": None}, "run-1", NOW
    ).files[0]
    assert final.fields["status"] == "failed" and final.fields["completed_at"] == NOW
    assert final.attempt_key is None


def test_the_day_is_judged_by_what_was_loaded() -> None:
    def judged(problems: list[str], loaded: bool) -> str:
        changes = tracking_rows.day_judged(
            "stock_health",
            DATE,
            statuses={"completed": 1, "skipped": 2, "failed": len(problems)},
            problems=problems,
            loaded=loaded,
            dag_run_id="run-1",
            now=NOW,
        )
        return changes.run.fields["status"]

    assert judged([], True) == "completed"
    assert judged(["S2: broken"], True) == "completed_with_errors"
    assert judged(["S2: broken"], False) == "failed"
    fields = tracking_rows.day_judged(
        "stock_health",
        DATE,
        statuses={"completed": 1, "skipped": 2, "failed": 1},
        problems=["a", "b"],
        loaded=True,
        dag_run_id="run-1",
        now=NOW,
    ).run.fields
    assert (fields["processed_files"], fields["skipped_files"], fields["failed_files"]) == (1, 2, 1)
    assert fields["error"] == "a; b"


def test_a_run_ending_unjudged_only_closes_an_unfinished_row() -> None:
    failed = tracking_rows.run_ended_without_judgement("stock_health", DATE, False, "marked failed", "run-1", NOW)
    assert failed.only_if_unfinished
    assert failed.run.fields == {"status": "failed", "completed_at": NOW, "error": "marked failed"}
    succeeded = tracking_rows.run_ended_without_judgement("stock_health", DATE, True, "", "run-1", NOW)
    assert succeeded.run.fields == {"status": "completed", "completed_at": NOW}
