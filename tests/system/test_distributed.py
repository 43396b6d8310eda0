"""Issue 18's proof: a day on Celery workers that share no disk (``make test-distributed``).

The services are the compose file's own (``docker-compose.yaml`` resolved by docker-compose with
an env file that points every address at loopback), run natively: the API server, scheduler, DAG
processor and triggerer on CeleryExecutor, Redis as the broker, one PostgreSQL cluster (Airflow's
metadata and the warehouse, two databases), and the GCS emulator as both the data root and the
stores' upload bucket. Two stock_health workers, ``worker-a`` and ``worker-b``, each on its own
"host" (``unshare --mount --uts``: own hostname, private tmpfs over its TMPDIR and the local data
folder), and one po_snapshots worker.

1. A day of 40 store files, one mapped transform each, runs on both workers (the task instances'
   hostnames), loads every good row (counted from the workbooks, not by the pipeline) and tracks
   each file once; the scheduler is stopped (SIGTERM) and started again in the middle of it.
2. A second day: worker-a is killed (SIGKILL, every process of its namespace) while it runs
   transforms; Airflow finds its task instances without a heartbeat and retries them on worker-b.
   The day completes with every row, the retried files have ``retry_count`` > 0, none is counted
   twice.
3. With no stock_health worker left, a PO day completes on its own queue's worker while a
   stock_health run cannot start.

The last line it prints: ``distributed: files=40 workers=2 hosts_used=2 killed=1 rows_expected=N
rows_loaded=N lost=0``, the rows being both stock_health days' (expected: counted in the workbooks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from airflow_stack import report
from distributed_stack import (
    COMPOSE_FILE,
    PO_WORKER,
    STOCK_WORKER,
    DistributedStack,
    StatsdSink,
    distributed_stack,
    redis_server,
)
from openpyxl import load_workbook
from psycopg import sql

from autopo_local.embedded_pg import EmbeddedPostgres
from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.config import default_config_dir
from autopo_pipelines.layout import DataLayout
from gcs_emulator import PROJECT, gcs_emulator

pytestmark = [pytest.mark.system, pytest.mark.distributed, pytest.mark.timeout(1200)]

STOCK = "stock_health"
PO = "po_snapshots"
DAY_ONE = dt.date(2025, 3, 3)
DAY_TWO = dt.date(2025, 3, 4)
NO_WORKER_DAY = dt.date(2025, 3, 5)
STORES = 40
SKUS = 12  # rows per file: small, so the day is quick
STORES_BUCKET = "autopo-stores"
DATA_BUCKET = "autopo-data"
DATA_PREFIX = "distributed"
WAREHOUSE_DB = "autopo_distributed"
HOSTS = ("worker-a", "worker-b")
PO_HOST = "worker-po"
RUN_TIMEOUT_S = 420
# The headings a store file's SKU column has (tools/autopo_local/sample_day.py's header styles).
SKU_HEADINGS = {"sku", "kode barang", "item code", "plu"}


# --------------------------------------------------------------------------- the day's inputs


def good_rows(path: Path) -> int:
    """The file's rows the snapshot must get, read from the workbook itself: the data rows below
    the header with a SKU (the generator writes no bad rows; a total row has no SKU)."""
    workbook = load_workbook(path, read_only=True)
    try:
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()
    header = next(i for i, row in enumerate(rows) if row and str(row[0] or "").strip().lower() in SKU_HEADINGS)
    skus = [str(row[0]).strip() for row in rows[header + 1 :] if row and str(row[0] or "").strip()]
    assert len(skus) == len(set(skus)), f"{path.name}: a SKU twice (it would be merged)"
    return len(skus)


def pipeline_configs(target: Path) -> Path:
    """The checkout's configs, reading the stores' bucket; one transform per file; a retry after a
    second (the checkout waits 5 minutes); triggered by the test only (no schedule, no deadline)."""
    target.mkdir(parents=True)
    for name, prefix in ((STOCK, "uploads/stock"), (PO, "uploads/po")):
        raw = yaml.safe_load((default_config_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
        raw["source"] = {"kind": "gcs", "bucket": STORES_BUCKET, "prefix": prefix}
        raw["sensor"] = {"mode": "reschedule", "poke_interval_seconds": 5, "timeout_seconds": 600}
        raw["alerts"] = {}
        raw["airflow"].update(
            {
                "schedule": None,
                "files_per_task": 1,
                "retries": 2,
                "retry_delay_seconds": 1,
                "retry_exponential_backoff": False,
            }
        )
        assert raw["airflow"]["queue"] == name
        (target / f"{name}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


@contextlib.contextmanager
def warehouse(server: EmbeddedPostgres) -> Iterator[str]:
    """A warehouse database of this test's own in the session cluster, empty (airflow-init applies
    the migrations); dropped after."""
    cluster = server.url.rsplit("/", 1)[0]
    with psycopg.connect(f"{cluster}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(WAREHOUSE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(WAREHOUSE_DB)))
    try:
        yield f"{cluster}/{WAREHOUSE_DB}"
    finally:
        with psycopg.connect(f"{cluster}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(WAREHOUSE_DB)))


def query(url: str, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("+psycopg2", "")) as conn:
        return conn.execute(text.encode(), params).fetchall()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what Airflow did


def task_instances(stack: DistributedStack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's task instances from the metadata database (fast enough to poll while killing)."""
    rows = query(
        stack.metadata_url,
        "SELECT task_id, map_index, state, hostname, try_number, queue, rendered_map_index "
        "FROM task_instance WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
        (dag_id, run_id),
    )
    keys = ("task_id", "map_index", "state", "hostname", "try_number", "queue", "rendered_map_index")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def tries(stack: DistributedStack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of the run's transforms: the earlier ones (task_instance_history) and the last."""
    rows = query(
        stack.metadata_url,
        "SELECT map_index, try_number, state, hostname FROM task_instance_history "
        "WHERE dag_id = %s AND run_id = %s AND task_id = 'transform_file' "
        "UNION ALL SELECT map_index, try_number, state, hostname FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND task_id = 'transform_file' ORDER BY 1, 2",
        (dag_id, run_id, dag_id, run_id),
    )
    return [dict(zip(("map_index", "try_number", "state", "hostname"), row, strict=True)) for row in rows]


def describe(tis: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {t['task_id']}[{t['map_index']}] {t['state']} try {t['try_number']} on {t['hostname']!r} queue {t['queue']}"
        for t in tis
    )


def wait_for(predicate: Any, timeout: float, what: Any, stack: DistributedStack, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what() if callable(what) else what}: not within {timeout:.0f}s")


def run_day(stack: DistributedStack, dag_id: str, date: dt.date) -> tuple[str, str]:
    """Trigger a run of ``date`` and wait for it to end; (run_id, state)."""
    run_id = stack.client.trigger(dag_id, {"date": date.isoformat()})
    return run_id, stack.client.wait_for_run(dag_id, run_id, RUN_TIMEOUT_S, fail_on_retry=False, poll=1)


# --------------------------------------------------------------------------- the day in the warehouse


def loaded_rows(url: str, date: dt.date) -> int:
    return int(query(url, "SELECT count(*) FROM stock_health_snapshots WHERE snapshot_date = %s", (date,))[0][0])


def tracking(url: str, pipeline: str, date: dt.date) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The date's pipeline_runs row and its file jobs (name, status, retry_count, attempts, rows_out)."""
    runs = query(
        url,
        "SELECT status, total_files, processed_files, skipped_files, failed_files, total_rows, error, notes, "
        "attempt, dag_run_id, id "
        "FROM pipeline_runs WHERE pipeline_name = %s AND date = %s",
        (pipeline, date),
    )
    assert len(runs) == 1, runs
    jobs = query(
        url,
        "SELECT file_name, status, retry_count, attempts, rows_out, file_path FROM pipeline_file_jobs "
        "WHERE pipeline_run_id = %s ORDER BY file_name",
        (runs[0][-1],),
    )
    return runs[0][:-1], jobs


def wait_for_judgement(url: str, pipeline: str, date: dt.date, stack: DistributedStack) -> None:
    """Until check_day's judgement is in pipeline_runs: every file counted as processed, skipped or failed.

    Airflow 3.3 runs a task's success listener after the task has reported success, so the DAG run
    can end, and the scheduler's run-ended listener close the row ("completed", no file counts),
    before check_day's listener in the worker writes the judgement over it."""
    wait_for(
        lambda: query(
            url,
            "SELECT 1 FROM pipeline_runs WHERE pipeline_name = %s AND date = %s AND status <> 'processing' "
            "AND completed_at IS NOT NULL AND processed_files + skipped_files + failed_files = total_files",
            (pipeline, date),
        ),
        60,
        lambda: f"{pipeline} {date} judged by check_day in pipeline_runs: {tracking(url, pipeline, date)[0]}",
        stack,
    )


def assert_day_exact(url: str, date: dt.date, files: dict[str, int], retried: set[str]) -> int:
    """Every row of every file loaded once; each file tracked once, completed; exactly ``retried``
    have a retry. Returns the rows loaded."""
    expected = sum(files.values())
    loaded = loaded_rows(url, date)
    run, jobs = tracking(url, STOCK, date)
    detail = f"{date}: run {run}\nfile jobs (name, status, retry_count, attempts, rows_out, path):\n" + "\n".join(
        f"  {job}" for job in jobs
    )
    assert loaded == expected, (loaded, expected, detail)
    assert run[:7] == ("completed", len(files), len(files), 0, 0, expected, None), detail
    assert [job[0] for job in jobs] == sorted(files), "one file job per file, none twice\n" + detail
    assert len({job[5] for job in jobs}) == len(files), detail
    assert {job[1] for job in jobs} == {"completed"}, detail
    assert {job[0]: job[4] for job in jobs} == files, "each file's rows_out is its good rows\n" + detail
    assert {job[0] for job in jobs if job[2] > 0} == retried, f"retried: {sorted(retried)}\n{detail}"
    assert all(job[3] == (2 if job[0] in retried else 1) for job in jobs), detail
    per_store = query(
        url,
        "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY store_id",
        (date,),
    )
    assert len(per_store) == len(files), per_store
    return loaded


# --------------------------------------------------------------------------- the test


def upload_day(client: Any, folder: Path, date: dt.date, seed: int) -> tuple[dict[str, int], list[Path], Path]:
    """A day of store files (and the PO exports) written locally, uploaded to the stores' bucket;
    ({file name: good rows}, PO files, supplier master)."""
    day = generate_sample_day(DataLayout(folder), date, stores=STORES, skus=SKUS, seed=seed)
    bucket = client.bucket(STORES_BUCKET)
    files = {}
    for path in day.files:
        bucket.blob(f"uploads/stock/{path.name}").upload_from_filename(str(path))
        files[path.name] = good_rows(path)
    return files, day.po_files, day.supplier_master


def test_a_day_on_celery_workers_that_share_no_disk(
    pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    assert COMPOSE_FILE.exists(), f"{COMPOSE_FILE} is missing: the test runs the compose file's services"
    # Not skipped: CI runs as root (a worker's own hostname and mounts need unshare's namespaces).
    assert os.geteuid() == 0, "the distributed test needs root: each worker runs under unshare --mount --uts"
    timings: dict[str, float] = {}
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="autopo-distributed-"))
    cluster = pg_server.url.rsplit("/", 1)[0]
    statsd = StatsdSink()
    outcome: dict[str, Any] = {}
    stack: DistributedStack | None = None
    try:
        with (
            warehouse(pg_server) as warehouse_url,
            redis_server(base / "redis") as broker_url,
            gcs_emulator(base / "gcs", monkeypatch) as (gcs, _server),
        ):
            gcs.create_bucket(STORES_BUCKET)
            data = gcs.create_bucket(DATA_BUCKET)
            day_one, po_files, master = upload_day(gcs, base / "uploads-1", DAY_ONE, seed=20250303)
            data.blob(f"{DATA_PREFIX}/reference/suppliers.csv").upload_from_filename(str(master))
            connection = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": PROJECT}}
            with distributed_stack(
                base=base,
                compose_file=COMPOSE_FILE,
                cluster_url=cluster,
                warehouse_url=warehouse_url,
                broker_url=broker_url,
                data_root_url=f"gs://{DATA_BUCKET}/{DATA_PREFIX}",
                google_connection=json.dumps(connection),
                emulator_host=_emulator_host(),
                config_dir=pipeline_configs(base / "configs"),
                statsd_port=statsd.port,
                dag_ids=(STOCK, PO),
                workers=[(STOCK_WORKER, HOSTS[0], STOCK), (STOCK_WORKER, HOSTS[1], STOCK), (PO_WORKER, PO_HOST, PO)],
            ) as stack:
                timings["stack up"] = stack.timings["startup_total"]
                outcome["day_one"] = first_day(stack, warehouse_url, day_one, timings)
                outcome["day_two"] = second_day(stack, gcs, base, warehouse_url, timings)
                outcome["po"] = po_day_without_stock_workers(stack, gcs, po_files, warehouse_url, timings)
                check_private_disks(stack)
                outcome["statsd"] = sorted(statsd.metrics)
    finally:
        statsd.close()
        if stack is not None:
            timings["teardown"] = stack.timings.get("teardown", 0.0)
            if "statsd" not in outcome:  # it failed: what each component said
                report(request.config, "\n" + stack.logs_report(lines=80))
        if os.environ.get("AUTOPO_KEEP_SYSTEM_STACK"):
            report(request.config, f"distributed stack's folder kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        timings["test total"] = time.monotonic() - started
        report(request.config, "\ndistributed timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    # STATSD_HOST/STATSD_PORT reached the services: their metrics arrived on the test's socket.
    metrics = outcome["statsd"]
    assert any(name.startswith("airflow.") for name in metrics), metrics
    report(request.config, f"StatsD: {len(metrics)} metric names, e.g. {[m for m in metrics if 'autopo' in m][:3]}")
    one, two = outcome["day_one"], outcome["day_two"]
    expected = one["expected"] + two["expected"]
    loaded = one["loaded"] + two["loaded"]
    report(
        request.config,
        f"distributed: files={len(day_one)} workers={len(HOSTS)} hosts_used={len(one['hosts'])} "
        f"killed={two['killed']} rows_expected={expected} rows_loaded={loaded} lost={expected - loaded}",
    )


def check_hosts(stack: DistributedStack) -> None:
    """Each worker is a "host" of its own: another UTS namespace (hostname) and mount namespace,
    with tmpfs mounts over TMPDIR and the local data folder that the machine's disk does not see."""
    own = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("uts", "mnt")}
    namespaces = set()
    for hostname, worker in stack.workers.items():
        theirs = {kind: os.readlink(f"/proc/{worker.pid}/ns/{kind}") for kind in ("uts", "mnt")}
        assert theirs["uts"] != own["uts"] and theirs["mnt"] != own["mnt"], hostname
        namespaces.add(theirs["mnt"])
        mounts = {
            line.split()[4]: line.split(" - ")[1].split()[0]
            for line in Path(f"/proc/{worker.pid}/mountinfo").read_text().splitlines()
        }
        assert mounts.get(str(stack.private_tmp)) == "tmpfs", (hostname, mounts)
        assert mounts.get(str(stack.private_data)) == "tmpfs", (hostname, mounts)
        assert worker.env["TMPDIR"] == str(stack.private_tmp)
    assert len(namespaces) == len(stack.workers)


def check_private_disks(stack: DistributedStack) -> None:
    """Whatever the workers wrote to TMPDIR, a local data folder or their working folder stayed on
    their own tmpfs (the folders below them on the machine's disk are as they were made: empty)."""
    assert sorted(p.name for p in stack.private_tmp.parent.iterdir()) == ["data", "tmp"]
    assert list(stack.private_tmp.iterdir()) == []
    assert list(stack.private_data.iterdir()) == []


def first_day(stack: DistributedStack, url: str, files: dict[str, int], timings: dict[str, float]) -> dict[str, Any]:
    """40 files on two workers; the scheduler stopped (SIGTERM) and started again mid-run."""
    check_hosts(stack)
    t0 = time.monotonic()
    assert stack.worker_healthchecks() == dict.fromkeys(stack.workers, 0)
    assert stack.scheduler_health() == 200
    timings["compose healthchecks (workers, scheduler)"] = time.monotonic() - t0
    # airflow-init migrated the warehouse and set the pools.
    assert query(url, "SELECT to_regclass('stock_health_snapshots') IS NOT NULL") == [(True,)]
    pools = {p["name"]: p["slots"] for p in stack.client.get_json("/api/v2/pools")["pools"]}
    assert pools.get(STOCK) == 4 and pools.get(PO) == 2, pools
    t0 = time.monotonic()
    run_id = stack.client.trigger(STOCK, {"date": DAY_ONE.isoformat()})

    def transforms_done() -> list[dict[str, Any]]:
        tis = task_instances(stack, STOCK, run_id)
        done = [t for t in tis if t["task_id"] == "transform_file" and t["state"] == "success"]
        return tis if len(done) >= 8 else []

    at_restart = wait_for(transforms_done, RUN_TIMEOUT_S, "8 transforms done", stack, poll=0.5)
    unfinished = [t for t in at_restart if t["state"] != "success"]
    stopped, back = stack.restart_scheduler()
    timings["scheduler stop (SIGTERM)"] = stopped
    timings["scheduler back"] = back
    state = stack.client.wait_for_run(STOCK, run_id, RUN_TIMEOUT_S, fail_on_retry=False, poll=1)
    timings["day one"] = time.monotonic() - t0
    tis = task_instances(stack, STOCK, run_id)
    assert state == "success", describe(tis)
    assert len(unfinished) > 10, "the scheduler was restarted in the middle of the run:\n" + describe(at_restart)
    transforms = [t for t in tis if t["task_id"] == "transform_file"]
    assert len(transforms) == STORES, describe(tis)
    assert sorted(t["rendered_map_index"] for t in transforms) == sorted(files), describe(tis)
    assert {t["state"] for t in tis} == {"success"}, describe(tis)
    assert {t["queue"] for t in tis} == {STOCK}, describe(tis)
    assert {t["try_number"] for t in transforms} == {1}, describe(tis)
    hosts = {t["hostname"] for t in transforms}
    assert hosts == set(HOSTS), describe(tis)
    assert {t["hostname"] for t in tis} <= set(HOSTS), describe(tis)
    wait_for_judgement(url, STOCK, DAY_ONE, stack)
    loaded = assert_day_exact(url, DAY_ONE, files, retried=set())
    per_host = {h: sum(1 for t in transforms if t["hostname"] == h) for h in HOSTS}
    report_line = ", ".join(f"{h} {n}" for h, n in per_host.items())
    timings["day one transforms per host: " + report_line] = 0.0
    return {"expected": sum(files.values()), "loaded": loaded, "hosts": hosts}


def second_day(stack: DistributedStack, gcs: Any, base: Path, url: str, timings: dict[str, float]) -> dict[str, Any]:
    """worker-a killed (SIGKILL, its whole namespace) while it runs transforms: they run again on worker-b."""
    files, _, _ = upload_day(gcs, base / "uploads-2", DAY_TWO, seed=20250304)
    t0 = time.monotonic()
    run_id = stack.client.trigger(STOCK, {"date": DAY_TWO.isoformat()})

    def running_on_a() -> list[dict[str, Any]]:
        return [
            t
            for t in task_instances(stack, STOCK, run_id)
            if t["task_id"] == "transform_file" and t["state"] == "running" and t["hostname"] == HOSTS[0]
        ]

    wait_for(running_on_a, RUN_TIMEOUT_S, f"a transform running on {HOSTS[0]}", stack, poll=0.05)
    pids = stack.kill_worker(HOSTS[0])
    killed_at = time.monotonic()
    assert len(pids) >= 3, pids  # the worker, its pool, at least one task's supervisor and process
    state = stack.client.wait_for_run(STOCK, run_id, RUN_TIMEOUT_S, fail_on_retry=False, poll=1)
    timings["day two"] = time.monotonic() - t0
    timings["day two after the kill"] = time.monotonic() - killed_at
    tis = task_instances(stack, STOCK, run_id)
    assert state == "success", describe(tis)
    history = tries(stack, STOCK, run_id)
    # The tries worker-a started and never finished: failed for their missing heartbeat.
    lost = {h["map_index"] for h in history if h["hostname"] == HOSTS[0] and h["state"] != "success"}
    assert lost, history
    transforms = {t["map_index"]: t for t in tis if t["task_id"] == "transform_file"}
    assert len(transforms) == STORES
    assert {t["state"] for t in tis} == {"success"}, describe(tis)
    for index in lost:
        final = transforms[index]
        assert final["hostname"] == HOSTS[1] and final["try_number"] > 1, (final, history)
    assert {t["hostname"] for t in tis} <= set(HOSTS), describe(tis)
    retried = {transforms[index]["rendered_map_index"] for index in lost}
    wait_for_judgement(url, STOCK, DAY_TWO, stack)
    loaded = assert_day_exact(url, DAY_TWO, files, retried=retried)
    timings[f"day two: {len(lost)} transforms lost with worker-a, {len(pids)} processes killed"] = 0.0
    return {"expected": sum(files.values()), "loaded": loaded, "killed": 1, "retried": retried}


def po_day_without_stock_workers(
    stack: DistributedStack, gcs: Any, po_files: list[Path], url: str, timings: dict[str, float]
) -> dict[str, Any]:
    """No worker consumes stock_health any more: its run cannot start, and a PO day still completes
    on po_snapshots' own queue and worker."""
    stack.stop_worker(HOSTS[1])
    wait_for(
        lambda: not any(STOCK in queues for queues in stack.celery_workers().values()),
        60,
        "no worker consuming stock_health",
        stack,
        poll=1,
    )
    stuck = stack.client.trigger(STOCK, {"date": NO_WORKER_DAY.isoformat()})
    bucket = gcs.bucket(STORES_BUCKET)
    for path in po_files:
        bucket.blob(f"uploads/po/{path.name}").upload_from_filename(str(path))
    t0 = time.monotonic()
    run_id, state = run_day(stack, PO, DAY_ONE)
    timings["po day, no stock_health worker"] = time.monotonic() - t0
    tis = task_instances(stack, PO, run_id)
    assert state == "success", describe(tis)
    assert {t["hostname"] for t in tis} == {PO_HOST}, describe(tis)
    assert {t["queue"] for t in tis} == {PO}, describe(tis)
    stuck_tis = task_instances(stack, STOCK, stuck)
    assert stack.client.dag_run(STOCK, stuck)["state"] in ("queued", "running"), describe(stuck_tis)
    assert all(t["state"] in (None, "scheduled", "queued") for t in stuck_tis), describe(stuck_tis)
    assert any(t["state"] == "queued" for t in stuck_tis), describe(stuck_tis)
    stack.client.request("PATCH", f"/api/v2/dags/{STOCK}/dagRuns/{stuck}", json={"state": "failed"})
    wait_for_judgement(url, PO, DAY_ONE, stack)
    run, jobs = tracking(url, PO, DAY_ONE)
    assert run[:5] == ("completed", len(po_files), len(po_files), 0, 0), run
    assert sorted(job[0] for job in jobs) == sorted(p.name for p in po_files), jobs
    assert {job[1] for job in jobs} == {"completed"}, jobs
    lines = query(url, "SELECT count(*) FROM po_snapshots WHERE snapshot_date = %s", (DAY_ONE,))[0][0]
    assert lines > 0 and run[5] == lines, (run, lines)
    return {"lines": lines}


def _emulator_host() -> str:
    return os.environ["STORAGE_EMULATOR_HOST"]
