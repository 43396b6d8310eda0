"""A deployment without the warehouse connection: the day fails at once, naming the connection and how
to define it. Nothing falls back to another database (the embedded one serves only the local stack)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from dag_runs import query, run_day

from autopo_local.sample_day import write_store_file, write_supplier_master
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.connections import (
    WAREHOUSE_CONN_ENV,
    WarehouseConnectionMissing,
    warehouse_conninfo,
)

DATE = dt.date(2024, 12, 4)
MESSAGE = (
    "the warehouse connection 'autopo_db' is not defined: add it in Admin -> Connections (type postgres) "
    "or set AIRFLOW_CONN_AUTOPO_DB=postgresql://USER:PASSWORD@HOST:5432/DATABASE for every Airflow component"
)


def test_warehouse_conninfo_names_the_missing_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WAREHOUSE_CONN_ENV, raising=False)
    with pytest.raises(WarehouseConnectionMissing) as raised:
        warehouse_conninfo()
    assert str(raised.value) == MESSAGE
    monkeypatch.setenv(WAREHOUSE_CONN_ENV, "postgresql://loader:secret@db.example:6543/warehouse")
    assert warehouse_conninfo() == "host=db.example port=6543 user=loader password=secret dbname=warehouse"


def test_a_day_without_the_connection_fails_at_once_with_the_message(
    data_layout: DataLayout, clean_tables: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    rng = random.Random(3)
    skus = [f"SKU-{i:04d}" for i in range(5)]
    write_supplier_master(data_layout.reference() / "suppliers.csv", skus, rng)
    inbox = data_layout.inbox("stock_health")
    write_store_file(inbox / "STORE-001_stock_20241204.xlsx", "STORE-001", DATE, skus, rng, style=0)
    monkeypatch.delenv(WAREHOUSE_CONN_ENV)

    run = run_day("stock_health", DATE)

    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # Failed at once (no retry can define the connection) by the first task that needs the warehouse: the
    # sensor, which asks it whether another run holds the date. Nothing was listed or transformed.
    assert states["wait_for_files"] == TaskInstanceState.FAILED
    assert states["list_files"] == TaskInstanceState.UPSTREAM_FAILED
    assert states["load_snapshot"] != TaskInstanceState.SUCCESS
    assert f"AirflowFailException: {MESSAGE}" in capfd.readouterr().out
    # Nothing was written anywhere else either: the test's warehouse (reachable, but not named) is empty.
    assert query(clean_tables, "SELECT count(*) FROM stock_health_snapshots") == [(0,)]
