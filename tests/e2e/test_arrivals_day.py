"""``processing: as_they_arrive``: several runs of one business date, each taking the files that arrived since
the last, reusing the others' parts and loading the date's snapshot again (issue 20, stores as they arrive).

Each run goes through the real DAG (dag.test) into PostgreSQL. The date's deadline is long past, so the
first run that finds stores missing emails it, to a real SMTP server on loopback, and no later run does.
The scheduler's side (scheduled and backfill runs, a run with nothing new skipped) is in
tests/system/test_as_they_arrive.py."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml
from dag_runs import pipeline_dag, query, read_csv, task_states

from autopo_local.sample_day import write_store_file, write_supplier_master
from autopo_pipelines.config import default_config_dir
from autopo_pipelines.day.state import DayState
from autopo_pipelines.layout import DataLayout
from loopback_servers import Mailbox, smtp_connection, smtp_server

pytestmark = pytest.mark.integration

PIPELINE = "stock_arrivals"
TZ = "Asia/Jakarta"
DATE = dt.date(2024, 12, 4)
SKUS = [f"SKU-{i:04d}" for i in range(6)]
STORES = [f"STORE-{n:03d}" for n in range(1, 6)]


def arrivals_config(folder: Path) -> Path:
    """stock_health as the README's as-they-arrive example: every 15 minutes 05:00-09:45, deadline 09:00."""
    raw = yaml.safe_load((default_config_dir() / "stock_health.yaml").read_text(encoding="utf-8"))
    raw.update(
        name=PIPELINE,
        timezone=TZ,
        processing="as_they_arrive",
        expected_stores=STORES,
        alerts={"deadline": "09:00", "email_to": ["purchasing@example.com"], "email_conn_id": "autopo_smtp"},
    )
    raw["source"] = {"kind": "local", "path": "inbox/stock_health"}
    raw["airflow"].update(schedule="*/15 5-9 * * *", pool=PIPELINE, queue=PIPELINE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return folder


def deliver(layout: DataLayout, stores: list[str]) -> None:
    for number, store in enumerate(stores):
        path = layout.inbox("stock_health") / f"{store}_stock_{DATE:%Y%m%d}.xlsx"
        write_store_file(path, store, DATE, SKUS[: 3 + number % 3], random.Random(store), style=number % 4)


def run_at(config_dir: Path, hour: int, minute: int) -> Any:
    """The date's run of hh:mm local, as the schedule would start it."""
    logical = pendulum.datetime(DATE.year, DATE.month, DATE.day, hour, minute, tz=TZ)
    return pipeline_dag(PIPELINE, config_dir).test(logical_date=logical)


def loaded_stores(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT store_id, count(*) FROM stock_health_snapshots GROUP BY 1 ORDER BY 1"))


def date_row(url: str) -> tuple[Any, ...]:
    (row,) = query(
        url,
        "SELECT status, total_files, processed_files, skipped_files, failed_files, missing_stores "
        "FROM pipeline_runs WHERE pipeline_name = %s AND date = %s",
        (PIPELINE, DATE),
    )
    return tuple(row)


def test_each_run_loads_what_has_arrived_reuses_the_rest_and_the_late_day_is_emailed_once(
    data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    config_dir = arrivals_config(tmp_path / "configs")
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(config_dir))
    write_supplier_master(data_layout.reference() / "suppliers.csv", SKUS, random.Random(1))
    with smtp_server() as (port, mailbox):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_SMTP", smtp_connection(port))

        deliver(data_layout, STORES[:2])
        first = run_at(config_dir, 5, 0)
        assert first.state == DagRunState.SUCCESS
        one = loaded_stores(clean_tables)
        assert sorted(one) == STORES[:2]
        assert date_row(clean_tables) == ("completed", 2, 2, 0, 0, STORES[2:])
        # The deadline (09:00 on the date) is long past and three stores are missing: one email.
        (mail,) = mailbox.messages
        assert mail["Subject"] == f"autopo: {PIPELINE} {DATE.isoformat()} not loaded by 09:00 {TZ}"
        body = Mailbox.body(mail)
        assert "stores that have not sent files: STORE-003, STORE-004, STORE-005" in body, body
        assert "the snapshot holds the 2 file(s) that have arrived" in body, body

        deliver(data_layout, STORES[2:4])
        second = run_at(config_dir, 5, 15)
        assert second.state == DagRunState.SUCCESS
        two = loaded_stores(clean_tables)
        assert sorted(two) == STORES[:4]
        assert {store: two[store] for store in one} == one  # the first stores' rows, as they were
        # Two new files transformed, the first two reused (skipped), one tracking row for the date.
        assert date_row(clean_tables) == ("completed", 4, 2, 2, 0, STORES[4:])
        states = task_states(second)
        assert {states[("transform_file", f"{s}_stock_{DATE:%Y%m%d}.xlsx")] for s in STORES[:4]} == {"success"}
        assert len(mailbox.messages) == 1  # once per business date

        deliver(data_layout, STORES[4:])
        third = run_at(config_dir, 5, 30)
        assert third.state == DagRunState.SUCCESS
        assert sorted(loaded_stores(clean_tables)) == STORES
        assert date_row(clean_tables) == ("completed", 5, 1, 4, 0, [])
        assert len(mailbox.messages) == 1
    # The second and third runs swapped in only the new stores' rows (warehouse.replace_date_partitions),
    # and the table holds exactly the day's snapshot CSV, as a load of the whole date would.
    state = DayState(data_layout.intermediate(PIPELINE, DATE))
    aggregate = state.aggregate()
    assert aggregate is not None and aggregate.partial_load is not None
    assert aggregate.partial_load["partitions"] == [STORES[4]]
    csv_rows = read_csv(data_layout.seeds(PIPELINE) / f"{DATE:%Y%m%d}.csv")
    table_keys = query(clean_tables, "SELECT store_id, sku, stock_on_hand::text FROM stock_health_snapshots")
    assert sorted((r["store_id"], r["sku"], r["stock_on_hand"]) for r in csv_rows) == sorted(
        (str(store), str(sku), str(stock)) for store, sku, stock in table_keys
    )
    (count,) = query(clean_tables, "SELECT count(*) FROM pipeline_runs")
    assert count == (1,)
    files = dict(query(clean_tables, "SELECT file_name, status FROM pipeline_file_jobs"))
    assert files[f"{STORES[4]}_stock_{DATE:%Y%m%d}.xlsx"] == "completed"
    assert {files[f"{s}_stock_{DATE:%Y%m%d}.xlsx"] for s in STORES[:4]} == {"skipped"}
