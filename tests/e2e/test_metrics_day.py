"""A stock_health day through the real DAG (dag.test) with Airflow's StatsD metrics on, received on a
real UDP socket: the pipeline's metrics (docs/metrics.md), line by line.

Airflow's task SDK builds its metrics client from ``[metrics]`` when a task process starts
(``task_runner.main`` calls ``stats.initialize``); dag.test() runs every task in this process, where
the client was set up when Airflow was imported, with metrics off. The fixture sets StatsD on by
environment and initialises the client as a task process does, then puts it back.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from dag_runs import query, run_day, task_states
from openpyxl import Workbook

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
PREFIX = "airflow.autopo.stock_health."
HEADER = ["SKU", "Product Name", "Stock On Hand", "Sales Qty", "Store ID"]


def store_file(store: int) -> str:
    return f"STORE-{store:03d}_stock_{DATE:%Y%m%d}.xlsx"


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


class StatsdListener:
    """A UDP socket on 127.0.0.1 and a thread keeping every line sent to it."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port: int = self.socket.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65535)
            except TimeoutError:
                continue
            self.lines.extend(datagram.decode().splitlines())

    def close(self) -> None:
        time.sleep(0.3)  # the last datagrams sent are read before the socket goes
        self._stop.set()
        self._thread.join()
        self.socket.close()


def initialise_task_metrics() -> None:
    """What each task process does first (airflow/sdk/execution_time/task_runner.py, main())."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
    )


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    listener = StatsdListener()
    try:
        with monkeypatch.context() as env:
            env.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
            env.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
            env.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
            env.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
            initialise_task_metrics()
            yield listener
    finally:
        initialise_task_metrics()  # the session's settings again: metrics off
        listener.close()


def test_a_day_sends_the_pipelines_metrics_to_airflows_statsd(
    data_layout: DataLayout, clean_tables: str, statsd: StatsdListener
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    generate_sample_day(data_layout, DATE, stores=3, skus=20)
    inbox = data_layout.inbox("stock_health")
    # A fourth store with 1 row refused in 20 (the 5% a file may have), and a PDF named as a store file.
    rows: list[list[object]] = [HEADER] + [[f"D-{n:02d}", "Roti", n, n * 2, "STORE-050"] for n in range(19)]
    rows.append(["D-99", "Broken", 5, "abc", "STORE-050"])
    (inbox / store_file(50)).write_bytes(xlsx_bytes(rows))
    (inbox / store_file(99)).write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")

    started = time.time()
    run = run_day("stock_health", DATE)
    took = time.time() - started

    # The bad file fails its own transform and the day's verdict; the good files are loaded.
    assert run.state == DagRunState.FAILED
    states = task_states(run)
    assert states[("load_snapshot", -1)] == TaskInstanceState.SUCCESS
    assert states[("transform_file", store_file(99))] == TaskInstanceState.FAILED
    ((table_rows,),) = query(
        clean_tables, "SELECT count(*) FROM stock_health_snapshots WHERE snapshot_date = %s", (DATE,)
    )
    assert isinstance(table_rows, int) and table_rows > 20

    statsd.close()
    lines = sorted(line.removeprefix(PREFIX) for line in statsd.lines if line.startswith(PREFIX))
    print("\n".join(lines))
    timers = [line for line in lines if line.endswith("|ms")]
    others = [line for line in lines if not line.endswith("|ms")]
    (gauge,) = [line for line in others if line.endswith("|g")]
    assert [line for line in others if line != gauge] == sorted(
        # One transform task per file (files_per_task 1 in the tests): 4 good files, 1 bad one.
        ["files_processed:1|c"] * 4
        + ["files_processed:0|c"]
        + ["files_failed:0|c"] * 4
        + ["files_failed:1|c"]
        + [f"rows_loaded:{table_rows}|c", "rows_rejected:1|c"]
    )
    loaded_at = int(re.fullmatch(r"last_loaded_timestamp:(\d+)\|g", gauge)[1])  # type: ignore[index]
    assert int(started) <= loaded_at <= started + took
    # A timer per file transformed (the bad one has none), and the day's, from the run's start to its verdict.
    milliseconds: dict[str, list[float]] = {"day_seconds": [], "file_seconds": []}
    for line in timers:
        name, value = re.fullmatch(r"(\w+):(\d+\.\d{6})\|ms", line).groups()  # type: ignore[union-attr]
        milliseconds[name].append(float(value))
    assert len(milliseconds["file_seconds"]) == 4 and len(milliseconds["day_seconds"]) == 1
    assert all(0 < ms < took * 1000 for ms in milliseconds["file_seconds"])
    assert max(milliseconds["file_seconds"]) < milliseconds["day_seconds"][0] < took * 1000
