"""The unattended life of a scheduled pipeline, with Airflow's real components (see conftest).

``stock_sla`` is stock_health on a daily Asia/Jakarta schedule (its start set for
the session) with a deadline 2 h after the start, two expected stores, and the
previous day as business date. A run whose deadline passes while a store's file
is missing sends exactly one email naming that store; backfilled dates send none.
A backfill over three past dates loads each date and leaves one tracking row per
date; a second backfill with reprocess ``failed`` reruns only the failed date.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pendulum
import psycopg
import pytest
from airflow_stack import AirflowStack, report

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout
from conftest import SCHEDULED, SLA_RECIPIENTS, SLA_TZ, SlaSchedule
from loopback_servers import Mailbox

pytestmark = pytest.mark.system

RUN_TIMEOUT_S = 240
TZ = SLA_TZ
# The config's deadline is 2 h after the schedule's start.
DEADLINE_AFTER_START = dt.timedelta(hours=2)


def store_files(data_root: Path, date: dt.date, tmp: Path) -> list[Path]:
    """STORE-001 and STORE-002 reports for the date, in a staging folder (not yet in the inbox)."""
    day = generate_sample_day(DataLayout(tmp / date.isoformat()), date, stores=2, skus=15)
    reference = DataLayout(data_root).reference()
    reference.mkdir(parents=True, exist_ok=True)
    (reference / "suppliers.csv").write_bytes(day.supplier_master.read_bytes())
    return day.files


def deliver(files: list[Path], data_root: Path) -> None:
    inbox = DataLayout(data_root).inbox(SCHEDULED)
    inbox.mkdir(parents=True, exist_ok=True)
    for path in files:
        (inbox / path.name).write_bytes(path.read_bytes())


def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout:.0f}s")


def test_a_missed_deadline_emails_once_naming_the_missing_store(
    airflow_stack: AirflowStack,
    mailbox: tuple[int, Mailbox],
    sla_schedule: SlaSchedule,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    client, messages = airflow_stack.client, mailbox[1].messages
    # A run as the scheduler starts it, two hours ago less 20 seconds: its deadline is 20 s away.
    start = pendulum.now("UTC") - DEADLINE_AFTER_START + dt.timedelta(seconds=20)
    # Today's date, whatever the hour: a run for a past date does not wait for missing stores.
    date = pendulum.now(TZ).date()
    first, second = store_files(airflow_stack.data_root, date, tmp_path)
    deliver([first], airflow_stack.data_root)
    before = len(messages)
    run_id = client.trigger(SCHEDULED, {"date": date.isoformat()}, logical_date=start.isoformat())

    # The run waits for STORE-002; the deadline passes; the triggerer sends the email.
    waited = wait_for(lambda: len(messages) > before, 120, "the deadline email")
    assert client.dag_run(SCHEDULED, run_id)["state"] == "running"
    (mail,) = messages[before:]
    assert mail["Subject"] == f"autopo: {SCHEDULED} {date.isoformat()} not loaded by {sla_schedule.deadline:%H:%M} {TZ}"
    assert mail["X-Envelope-To"] == ", ".join(SLA_RECIPIENTS)
    body = Mailbox.body(mail)
    assert "stores that have not sent files: STORE-002" in body, body

    # The store's file arrives: the day completes, and nothing more is sent.
    deliver([second], airflow_stack.data_root)
    assert client.wait_for_run(SCHEDULED, run_id, timeout=RUN_TIMEOUT_S) == "success"
    time.sleep(5)
    assert len(messages) == before + 1
    report(request.config, f"\ndeadline email {waited:.1f}s after the trigger")


def test_a_backfill_loads_each_past_date_and_reprocess_failed_reruns_only_the_failed_one(
    airflow_stack: AirflowStack,
    mailbox: tuple[int, Mailbox],
    sla_schedule: SlaSchedule,
    pg_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    client, messages = airflow_stack.client, mailbox[1].messages
    dates = [dt.date(2024, 11, 1), dt.date(2024, 11, 2), dt.date(2024, 11, 3)]
    broken = dates[1]
    files = {date: store_files(airflow_stack.data_root, date, tmp_path) for date in dates}
    for date in dates:
        deliver(files[date], airflow_stack.data_root)
    bad = DataLayout(airflow_stack.data_root).inbox(SCHEDULED) / files[broken][1].name
    bad.write_bytes(b"%PDF-1.4 not a workbook")
    before = len(messages)
    started = time.monotonic()

    # A date is processed by the next day's run (business date = the day before): the runs of
    # 2 to 4 November are the three dates' runs.
    first = pendulum.datetime(2024, 11, 2, tz=TZ).in_timezone("UTC").isoformat()
    last = pendulum.datetime(2024, 11, 4, 23, 59, tz=TZ).in_timezone("UTC").isoformat()

    def backfill_runs() -> dict[str, dict[str, Any]]:
        by_date = {}
        for run in client.dag_runs(SCHEDULED):
            if run["run_type"] == "backfill":
                local = pendulum.parse(run["logical_date"]).in_timezone(TZ).date()
                by_date[(local - dt.timedelta(days=1)).isoformat()] = run
        return by_date

    backfill = client.create_backfill(SCHEDULED, first, last)
    wait_for(lambda: len(backfill_runs()) >= 3, 60, "three backfill runs")
    runs = backfill_runs()
    assert sorted(runs) == [d.isoformat() for d in dates], runs
    states = {
        day: client.wait_for_run(SCHEDULED, run["dag_run_id"], timeout=RUN_TIMEOUT_S) for day, run in runs.items()
    }
    assert states == {"2024-11-01": "success", "2024-11-02": "failed", "2024-11-03": "success"}
    client.wait_for_backfill(backfill, timeout=60)
    first_pass = time.monotonic() - started

    with psycopg.connect(pg_url) as conn:
        loaded = dict(
            conn.execute(
                "SELECT snapshot_date, count(DISTINCT store_id) FROM stock_health_snapshots "
                "WHERE snapshot_date BETWEEN %s AND %s GROUP BY 1",
                (dates[0], dates[-1]),
            ).fetchall()
        )
        tracked = dict(
            conn.execute(
                "SELECT date, status FROM pipeline_runs WHERE pipeline_name = %s ORDER BY date", (SCHEDULED,)
            ).fetchall()
        )
    # The broken date loaded its good store; every date has one tracking row.
    assert loaded == {dates[0]: 2, dates[1]: 1, dates[2]: 2}, loaded
    assert {d: tracked[d] for d in dates} == {
        dates[0]: "completed",
        dates[1]: "completed_with_errors",
        dates[2]: "completed",
    }, tracked

    # The store re-sends its file; the backfill again with reprocess "failed" touches only that date.
    bad.write_bytes(files[broken][1].read_bytes())
    untouched = {day: run["end_date"] for day, run in backfill_runs().items() if day != broken.isoformat()}
    assert all(untouched.values()), untouched
    client.create_backfill(SCHEDULED, first, last, reprocess_behavior="failed")
    rerun = runs[broken.isoformat()]["dag_run_id"]
    wait_for(lambda: client.dag_run(SCHEDULED, rerun)["state"] != "failed", 60, "the failed date's rerun to start")
    assert client.wait_for_run(SCHEDULED, rerun, timeout=RUN_TIMEOUT_S) == "success"
    after = backfill_runs()
    assert {day: after[day]["end_date"] for day in untouched} == untouched
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT status, attempt FROM pipeline_runs WHERE pipeline_name = %s AND date = %s", (SCHEDULED, broken)
        ).fetchone()
        stores = conn.execute(
            "SELECT count(DISTINCT store_id) FROM stock_health_snapshots WHERE snapshot_date = %s", (broken,)
        ).fetchone()
    # Reprocessing clears the date's failed run and runs it again under the same run id: the row is
    # completed; ``attempt`` counts distinct runs of the date, so it stays 1 (docs/tracking.md).
    assert row == ("completed", 1), row
    assert stores == (2,)

    # Backfilled dates' deadlines (long past) are let off: no SLA email for any of them.
    time.sleep(5)
    assert len(messages) == before, [m["Subject"] for m in messages[before:]]
    second_pass = time.monotonic() - started - first_pass
    report(request.config, f"\nbackfill: three dates in {first_pass:.1f}s, reprocess failed in {second_pass:.1f}s")
