"""The same day with its data root in a local folder and in a bucket, in one run (``make bench-data-root``).

The day's data root (``AUTOPO_DATA_DIR``: the day's state, the parts, the reference data and the
output CSVs) is either a local folder or ``gs://bucket/prefix``, opened as Airflow's
ObjectStoragePath with the Google connection. Here the bucket is the GCS emulator
(gcp-storage-emulator, in memory, in its own process on a free port, reached with an anonymous
``google_cloud_default`` connection and ``STORAGE_EMULATOR_HOST``), so the figures are what the
product's own storage calls cost against an HTTP object store on this machine, not a network's
latency to Google.

Only the data root differs between the two: the store files come from one source for both, a
bucket of their own on the same emulator (config ``source: {kind: gcs, bucket: autopo-bench-stores,
prefix: stock}``), the supplier master is at ``<root>/reference/suppliers.csv`` in each (uploaded
to the data bucket for the bucket root), and the emulator and its connection are there for both
runs. (A local source folder outside the root would leave the source off the emulator, but a
bucket root refuses a local source path: it would be one worker's folder, DataLayout.resolve.)

For each root, ``--repeat`` times: a first run on a fresh root (every file transformed), then a
rerun of the same date (every part reused), each ``dag.test()`` in a fresh child process
(benchmarks/day_benchmark.py's dag_test stage, timed around the ``dag.test()`` call; each task's
time from dag.test()'s log of its start and end). The warehouse
tables are emptied before each first run; every run must load the same number of rows, and its
files must be transformed (first run) or reused (rerun), or the benchmark stops. The emulator's
requests are counted from its own log (the data root's bucket apart from the source's), and its
CPU time is read before and after each run.

The last line is for scripts::

    data_root: local_s=<first run> bucket_s=<first run> bucket_over_local=<ratio> local_rerun_s=<..> bucket_rerun_s=<..>

Run it::

    make bench-data-root                                   # defaults: 40 x 5,000 rows, repeat 3
    make bench-data-root BENCH_ARGS='--stores 4 --rows 500 --repeat 1'
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import psycopg
from day_benchmark import (
    HERE,
    bench_configs,
    bench_database,
    cluster_admin_url,
    count_rows,
    generated_day,
    in_child,
    machine_line,
    median,
    spread,
    subset,
)

from autopo_local.embedded_pg import free_port

BENCH_DB = "autopo_bench_data_root"  # not make bench's database: both may be run
BUCKET = "autopo-bench-data"  # the bucket roots': one bucket a repetition (-0, -1, …)
PREFIX = "autopo"  # the bucket root is a prefix, as in production (gs://bucket/autopo)
STORES_BUCKET = "autopo-bench-stores"  # the source's, for both roots
STORES_PREFIX = "stock"
PROJECT = "autopo-bench"
ROOTS = ("local", "bucket")
LABELS = {"local": "local folder", "bucket": "bucket (GCS emulator)"}
KINDS = ("first", "rerun")

# The emulator in a process of its own: a stdlib HTTPServer, one request at a time, each logged.
EMULATOR = """
import logging, sys, time
from gcp_storage_emulator.server import create_server
logging.Formatter.converter = time.gmtime  # UTC, as dag.test() logs the tasks' start and end
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
server = create_server("127.0.0.1", int(sys.argv[1]), in_memory=True, data_dir=sys.argv[2])
server.start()
while True:
    time.sleep(3600)
"""
REQUEST = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/[\d.]+" (\d+)', re.M
)
# dag.test()'s own work outside any task: starting the run, between tasks, marking the run done (its listeners).
OUTSIDE = "outside tasks"
# A task instance of a run: its task id, start and end (UTC).
Window = tuple[str, dt.datetime, dt.datetime]


# --- the emulator -----------------------------------------------------------------------------


@dataclass
class Emulator:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def log_size(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, offset: int, windows: Sequence[Window]) -> Requests:
        """The requests the emulator logged since ``offset`` of its log; each in the task it came during."""
        with self.log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        counted = Requests()
        for stamp, method, target, status in REQUEST.findall(text):
            at = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            task = next((task for task, start, end in windows if start <= at <= end), OUTSIDE)
            counted.add(method, target, status, task)
        return counted


@dataclass
class Requests:
    """Requests by bucket; the data root bucket's by kind (metadata, list, download, upload, delete),
    by the object they name and by status."""

    buckets: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    objects: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)

    @property
    def data_root(self) -> int:
        return sum(n for bucket, n in self.buckets.items() if bucket.startswith(BUCKET))

    @property
    def source(self) -> int:
        return self.buckets[STORES_BUCKET]

    def add(self, method: str, target: str, status: str, task: str) -> None:
        path, _, query = target.partition("?")
        bucket = re.search(r"/b/([^/]+)", path)
        self.buckets[bucket.group(1) if bucket else ""] += 1
        if bucket is None or not bucket.group(1).startswith(BUCKET):
            return
        if "/upload/" in path:
            kind = "upload"
            name = ""  # a multipart upload names its object in the body
        elif "alt=media" in query or path.startswith("/download/"):
            kind, name = "download", path.partition("/o/")[2]
        elif method == "DELETE":
            kind, name = "delete", path.partition("/o/")[2]
        elif method == "GET" and re.search(r"/b/[^/]+/o$", path):
            kind, name = "list", parse_qs(query).get("prefix", [""])[0]
        elif method == "GET":
            kind, name = "metadata", path.partition("/o/")[2]
        else:
            kind, name = f"other {method}", ""
        self.kinds[kind] += 1
        self.objects[object_class(unquote(name))] += 1
        self.statuses[status] += 1
        self.tasks[task] += 1


def object_class(name: str) -> str:
    """What a request was about, from the object name (or listed prefix) it names."""
    name = name.rstrip("/")
    if not name:
        return "uploads"
    for suffix, label in [
        ("/part.json", "part.json"),
        ("/listing.json", "listing.json"),
        (".parquet", "parquet (parts, day inputs)"),
    ]:
        if name.endswith(suffix):
            return label
    if "/results/" in name:
        return "results/<file>"
    if "/seeds/" in name:
        return "seeds CSVs"
    return "other"


@contextlib.contextmanager
def gcs_emulator(work: Path) -> Iterator[Emulator]:
    """The emulator in its own process, in memory, on a free port; stopped (that process only) on the way out."""
    port = free_port()
    log = work / "gcs-emulator.log"
    data = work / "gcs-emulator"
    data.mkdir()
    with log.open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", EMULATOR, str(port), str(data)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    emulator = Emulator(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the GCS emulator exited ({process.returncode}); see {log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the GCS emulator did not listen on {port} within 60 s; see {log}")
            time.sleep(0.1)
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def emulator_environment(emulator: Emulator) -> dict[str, str]:
    """What a process needs to reach the emulator: the tests' anonymous connection (tests/gcs_emulator.py)."""
    connection = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": PROJECT}}
    return {
        "STORAGE_EMULATOR_HOST": emulator.url,
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(connection),
        # Without it gcsfs probes for a hierarchical-namespace bucket over gRPC (60 s); the emulator has no gRPC.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


# --- the roots and the warehouse ---------------------------------------------------------------


def storage_client() -> Any:
    """A client of the emulator (STORAGE_EMULATOR_HOST), for what is put there before the runs."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


def upload_source(files: Sequence[Path]) -> dict[str, Any]:
    """The store files in the source's bucket; the source's config block."""
    stores = storage_client().create_bucket(STORES_BUCKET)
    for path in files:
        stores.blob(f"{STORES_PREFIX}/{path.name}").upload_from_filename(str(path))
    return {"kind": "gcs", "bucket": STORES_BUCKET, "prefix": STORES_PREFIX}


def fresh_root(kind: str, n: int, work: Path, supplier_master: Path) -> str:
    """A data root with only its reference data: nothing transformed yet, nothing to reuse."""
    if kind == "local":
        root = work / f"local-{n}"
        shutil.rmtree(root, ignore_errors=True)
        (root / "reference").mkdir(parents=True)
        shutil.copyfile(supplier_master, root / "reference" / "suppliers.csv")
        return str(root)
    # A bucket of its own per repetition: the emulator's memory is never cleared, and it lists a
    # prefix by going through every object of the bucket.
    bucket = storage_client().create_bucket(f"{BUCKET}-{n}")
    bucket.blob(f"{PREFIX}/reference/suppliers.csv").upload_from_filename(str(supplier_master))
    return f"gs://{bucket.name}/{PREFIX}"


def clear_warehouse(url: str) -> None:
    """The previous runs' rows and tracking gone: each first run starts from the same empty warehouse."""
    with psycopg.connect(url) as conn:
        conn.execute(b"TRUNCATE stock_health_snapshots, snapshot_loads, pipeline_file_jobs, pipeline_runs, day_locks")


def file_statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(b"SELECT status, count(*) FROM pipeline_file_jobs GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


# --- the tasks ---------------------------------------------------------------------------------

# dag.test() logs each task instance's start and end (in UTC): everything it does for the task,
# Airflow's bookkeeping and the listeners included, is between the two.
TASK_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z .*?\[DAG TEST\] (starting|end task) task_id=(\S+) ", re.M
)


def task_windows(log: Path, offset: int) -> list[Window]:
    """The task instances a dag.test() logged since ``offset`` of the stage log, in the order they ran."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    windows, started = [], None
    for stamp, what, task in TASK_LINE.findall(text):
        at = dt.datetime.fromisoformat(stamp)
        if what == "starting":
            started = at
        elif started is not None:
            windows.append((task, started, at))
            started = None
    return windows


def task_seconds(windows: Sequence[Window]) -> dict[str, float]:
    """Each task's time (a mapped task's summed over its map indexes), in the order they first ran."""
    totals: dict[str, float] = {}
    for task, start, end in windows:
        totals[task] = totals.get(task, 0.0) + (end - start).total_seconds()
    return totals


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Run:
    root: str
    kind: str
    seconds: float
    rows: int
    tasks: dict[str, float]
    requests: Requests
    emulator_cpu_s: float


def measure(
    root_kind: str,
    kind: str,
    root: str,
    url: str,
    config_dir: Path,
    emulator: Emulator,
    log: Path,
    expected_status: str,
    stores: int,
) -> Run:
    offset, log_offset, cpu = emulator.log_size(), log.stat().st_size, emulator.cpu_seconds()
    result = in_child("dag_test", {"data_root": root, "url": url, "config_dir": str(config_dir)}, log)
    cpu = emulator.cpu_seconds() - cpu
    statuses = file_statuses(url)
    if statuses != {expected_status: stores}:
        raise RuntimeError(
            f"{root_kind} {kind}: the files were {statuses}, not {stores} {expected_status} (root {root}); see {log}"
        )
    windows = task_windows(log, log_offset)
    requests = emulator.requests_since(offset, windows)
    if root_kind == "local" and requests.data_root:
        raise RuntimeError(f"a local-root run used the data bucket: {requests}; see {emulator.log}")
    rows = count_rows(url, "stock_health_snapshots")
    if rows != result["rows"]:
        raise RuntimeError(f"{root_kind} {kind}: {rows:,} rows in the table, the run counted {result['rows']:,}")
    return Run(root_kind, kind, result["seconds"], rows, task_seconds(windows), requests, cpu)


def print_report(runs: list[Run], repeat: int) -> dict[tuple[str, str], float]:
    def of(root: str, kind: str) -> list[Run]:
        return [r for r in runs if r.root == root and r.kind == kind]

    medians = {(root, kind): median([r.seconds for r in of(root, kind)]) for root in ROOTS for kind in KINDS}
    print()
    print(f"  {'data root':<24} {'first run':>10} {'min-max':>10} {'rerun':>9} {'min-max':>10} {'rows':>10}")
    for root in ROOTS:
        first, rerun = of(root, "first"), of(root, "rerun")
        print(
            f"  {LABELS[root]:<24} {medians[root, 'first']:>9.1f}s {spread([r.seconds for r in first]):>10} "
            f"{medians[root, 'rerun']:>8.1f}s {spread([r.seconds for r in rerun]):>10} {first[0].rows:>10,}"
        )
    print(
        f"  {'bucket / local':<24} {medians['bucket', 'first'] / medians['local', 'first']:>9.2f}x {'':>10} "
        f"{medians['bucket', 'rerun'] / medians['local', 'rerun']:>8.2f}x"
    )

    print()
    print(
        f"  time per task (median s of {repeat}; transform_file summed over its mapped tasks) and the bucket "
        "root's requests to its bucket:"
    )
    columns = [(root, kind) for kind in KINDS for root in ROOTS]
    print(f"    {'task':<22}" + "".join(f"{root + ' ' + kind:>15}" for root, kind in columns))
    for task in [*runs[0].tasks, OUTSIDE]:
        cells = []
        for root, kind in columns:
            took = median([r.tasks.get(task, r.seconds - sum(r.tasks.values())) for r in of(root, kind)])
            requests = median([r.requests.tasks[task] for r in of(root, kind)])
            cells.append(f"{took:.1f}s ({requests:,.0f})" if root == "bucket" else f"{took:.1f}s")
        print(f"    {task:<22}" + "".join(f"{c:>15}" for c in cells))

    print()
    print(
        f"  the emulator: requests to the data root's bucket and to the source's, its CPU time (medians of {repeat}):"
    )
    for root, kind in columns:
        both = of(root, kind)
        data, source = (median([getattr(r.requests, name) for r in both]) for name in ("data_root", "source"))
        cpu = median([r.emulator_cpu_s for r in both])
        print(f"    {root + ' ' + kind:<14} data root {data:>6,.0f}   source {source:>4,.0f}   CPU {cpu:>4.1f}s")
    for kind in KINDS:
        bucket = of("bucket", kind)
        counted = sorted(bucket, key=lambda r: r.requests.data_root)[len(bucket) // 2].requests
        print(f"    the data root's requests, bucket {kind} (its median run): {listed(counted.kinds)}")
        print(f"      by object: {listed(counted.objects)}; by status: {listed(counted.statuses)}")
    return medians


def listed(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.most_common())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="first runs and reruns of each root; medians shown")
    parser.add_argument("--files-per-task", type=int, default=None, help="override the config's airflow.files_per_task")
    parser.add_argument("--work", type=Path, default=HERE / ".work-data-root", help="where runs write (emptied first)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = cluster_admin_url()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    log = args.work / "stages.log"
    log.touch()
    print(machine_line())
    day = generated_day(args.stores, args.rows)
    files = subset(day, args.stores)
    master = day / "suppliers.csv"
    url = bench_database(admin_url, BENCH_DB)
    print(
        f"day: {args.stores} stores x {args.rows:,} rows = {args.stores * args.rows:,} rows "
        f"({sum(p.stat().st_size for p in files) / 2**20:.0f} MB of XLSX) from gs://{STORES_BUCKET}/{STORES_PREFIX}/ "
        f"for both roots; medians of {args.repeat} runs; stage logs in {log}",
        flush=True,
    )

    runs: list[Run] = []
    with gcs_emulator(args.work) as emulator:
        os.environ.update(emulator_environment(emulator))  # for both roots: only the data root differs
        print(f"  . GCS emulator on {emulator.url} (process {emulator.process.pid}; log {emulator.log})", flush=True)
        # The store files in one source for both roots.
        config_dir = bench_configs(args.work / "configs", args.files_per_task, source=upload_source(files))
        for n in range(args.repeat):
            for root_kind in ROOTS:
                root = fresh_root(root_kind, n, args.work, master)
                clear_warehouse(url)
                for kind, status in (("first", "completed"), ("rerun", "skipped")):
                    run = measure(root_kind, kind, root, url, config_dir, emulator, log, status, args.stores)
                    runs.append(run)
                    print(
                        f"  . {root_kind} {kind} run {n + 1}: {run.seconds:.1f}s, {run.rows:,} rows; "
                        f"emulator {run.requests.data_root:,} + {run.requests.source} requests, "
                        f"CPU {run.emulator_cpu_s:.1f}s",
                        flush=True,
                    )

    if len({r.rows for r in runs}) != 1:
        raise RuntimeError(f"the runs loaded different row counts: {[(r.root, r.kind, r.rows) for r in runs]}")
    medians = print_report(runs, args.repeat)
    print()
    print(
        f"data_root: local_s={medians['local', 'first']:.1f} bucket_s={medians['bucket', 'first']:.1f} "
        f"bucket_over_local={medians['bucket', 'first'] / medians['local', 'first']:.2f} "
        f"local_rerun_s={medians['local', 'rerun']:.1f} bucket_rerun_s={medians['bucket', 'rerun']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
