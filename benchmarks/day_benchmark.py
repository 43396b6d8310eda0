"""A day of N stores x R rows through three stacks, side by side, in one run (``make bench``).

1. naive: pandas.read_excel (openpyxl) + the pipeline's own transform + DataFrame.to_sql:
   what a notebook port of the spreadsheet work would do;
2. floor: the fastest reader here (fastexcel, one typed pass, told where the header is) + the same transform +
   one COPY and the table's indexes, in one process, no Airflow, no intermediate files;
3. product: the stock_health DAG for the date, files landed to rows in PostgreSQL, with
   ``dag.test()`` and under the real scheduler (LocalExecutor, parallelism 2).

Then the scale row (N = 10, 40, 100 stores x 20,000 rows through ``dag.test()``, with the
peak memory of aggregate_and_flush's work), and the load of the 2M-row day into the table,
replacing the date, with readers timed while it runs.

Every stage runs in a fresh child process (its peak RSS is the stage's peak memory); the
figures are medians of ``--repeat`` runs. Generated workbooks are cached in
benchmarks/.cache/ (generating is not what is measured). The last line is for scripts:
``ratios: naive_over_product=<naive / product> product_over_floor=<product / floor>``,
product being the scheduler's run (``dag.test()``'s with ``--skip scheduler``).

    make bench                                   # defaults: 40 x 50,000, repeat 3
    make bench BENCH_ARGS='--stores 10 --rows 5000 --repeat 1 --scale 4,8 --scale-rows 2000'
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from autopo_pipelines.config import default_config_dir
from autopo_pipelines.layout import DataLayout, date_stamp

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
CACHE = HERE / ".cache"
# Bump when the generated workbooks change: cached days of another version are made again.
GENERATOR_VERSION = 1
PIPELINE = "stock_health"
TABLE = "stock_health_snapshots"
DATE = dt.date(2025, 1, 15)
BENCH_DB = "autopo_bench"


# --- the generated day ------------------------------------------------------------------


def _write_store(args: tuple[Path, str, int, int]) -> None:
    from autopo_local.sample_day import _sku, write_store_file

    path, store, rows, style = args
    skus = [_sku(i) for i in range(rows)]
    # Styles rotate the spec's quirks: header aliases, title rows above the header, text
    # numbers with thousands separators, a TOTAL row, negative stock (a reject).
    write_store_file(path, store, DATE, skus, random.Random(f"{store}-{rows}"), style)


def generated_day(stores: int, rows: int) -> Path:
    """A folder of ``stores`` store reports of ``rows`` rows each, plus the supplier master; cached."""
    from autopo_local.sample_day import _sku, write_supplier_master

    folder = CACHE / f"v{GENERATOR_VERSION}_{stores}x{rows}_{date_stamp(DATE)}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "files").mkdir(parents=True)
    started = time.perf_counter()
    work = [
        (folder / "files" / f"STORE-{n:03d}_stock_{DATE:%Y%m%d}.xlsx", f"STORE-{n:03d}", rows, n)
        for n in range(1, stores + 1)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_store, work))
    write_supplier_master(folder / "suppliers.csv", [_sku(i) for i in range(rows)], random.Random(rows))
    done.write_text(json.dumps({"stores": stores, "rows": rows}))
    print(f"  generated {stores} x {rows:,} rows in {time.perf_counter() - started:.0f}s ({folder})", flush=True)
    return folder


def subset(day: Path, stores: int) -> list[Path]:
    return sorted((day / "files").glob("*.xlsx"))[:stores]


def fresh_data_root(base: Path, files: Sequence[Path], supplier_master: Path) -> Path:
    """A data root whose inbox holds ``files`` (hard links to the cached day, copies across file systems;
    the local source refuses symbolic links): nothing transformed yet, nothing to reuse."""
    shutil.rmtree(base, ignore_errors=True)
    layout = DataLayout(base)
    inbox = layout.inbox(PIPELINE)
    inbox.mkdir(parents=True)
    for path in files:
        try:
            os.link(path, inbox / path.name)
        except OSError:
            shutil.copyfile(path, inbox / path.name)
    layout.reference().mkdir(parents=True)
    shutil.copy(supplier_master, layout.reference() / "suppliers.csv")
    return base


def bench_configs(target: Path, files_per_task: int | None = None, source: dict[str, Any] | None = None) -> Path:
    """The shipped stock_health config as it is, but triggered only (no schedule) and without alerts;
    ``source`` replaces its source block when given."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    raw = yaml.safe_load((default_config_dir() / f"{PIPELINE}.yaml").read_text(encoding="utf-8"))
    raw["airflow"]["schedule"] = None
    raw["airflow"]["retries"] = 0
    raw["alerts"] = {}
    if files_per_task is not None:
        raw["airflow"]["files_per_task"] = files_per_task
    if source is not None:
        raw["source"] = source
    (target / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


# --- the warehouse ------------------------------------------------------------------------


def bench_database(admin_url: str, name: str = BENCH_DB) -> str:
    """A fresh database for the benchmark in the project's cluster, migrated."""
    from autopo_pipelines.migrations import apply_migrations

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    apply_migrations(url, REPO_ROOT / "migrations")
    return url


def count_rows(url: str, table: str) -> int:
    """The bench date's rows of ``table``."""
    from autopo_pipelines.warehouse import count_rows as rows_of_date

    return rows_of_date(url, table, "snapshot_date", DATE)


def unpartitioned_copy(url: str, name: str) -> None:
    """A table like stock_health_snapshots before it was partitioned (migration 0001's DDL)."""
    ddl = (REPO_ROOT / "migrations" / "0001_stock_health_snapshots.sql").read_text(encoding="utf-8")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(ddl.replace(TABLE, name).encode())


# --- naive and floor: the same transform behind another reader ----------------------------------


def sheet_table_from_rows(rows: list[list[Any]], sheet: str, is_header: Any, search: int, file: str) -> Any:
    """The reader contract (SheetTable) from a sheet's rows, the way read_sheet_table finds the header."""
    import numpy as np
    import pandas as pd

    from autopo_pipelines.xlsx_reader import HeaderNotFoundError, SheetTable, _as_text

    for index, row in enumerate(rows[:search]):
        cells = [_as_text(None if _missing(v) else v) for v in row]
        if is_header(cells):
            body = rows[index + 1 :]
            width = len(cells)
            columns = {
                j: pd.Series([None if _missing(r[j]) else r[j] for r in body], dtype=object) for j in range(width)
            }
            return SheetTable(
                sheet=sheet,
                header_row=index + 1,
                header=cells,
                data=pd.DataFrame(columns),
                row_numbers=np.arange(index + 2, index + 2 + len(body), dtype=np.int64),
            )
    raise HeaderNotFoundError(file, sheet, "no header row found")


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def openpyxl_reader(path: Any, *, header_search_rows: int, is_header: Any, file_name: str | None, **_: Any) -> Any:
    import pandas as pd

    frame = pd.read_excel(path, sheet_name=0, header=None, engine="openpyxl", dtype=object)
    rows = frame.astype(object).values.tolist()
    return sheet_table_from_rows(rows, "Stock", is_header, header_search_rows, file_name or Path(path).name)


def known_header_row(path: Path) -> int:
    """Where the generator put a store file's header (0-based): under three title rows in odd styles."""
    store_number = int(path.name.split("_")[0].removeprefix("STORE-"))
    return 3 if store_number % 2 else 0


def fastexcel_reader(path: Any, *, file_name: str | None, **_: Any) -> Any:
    """One typed pass of the fastest reader here, told where the header is: a best case by design
    (finding the header costs fastexcel a second full parse of the sheet)."""
    import fastexcel
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from autopo_pipelines.xlsx_reader import SheetTable

    name = Path(file_name or Path(path).name)
    header_row = known_header_row(name)
    sheet = fastexcel.read_excel(str(path)).load_sheet(0, header_row=header_row)
    table = sheet.to_arrow()
    data = {}
    for index, column in enumerate(table.columns):
        if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            data[index] = pd.Series(column.to_numpy(zero_copy_only=False), dtype="float64")
        else:
            data[index] = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    first = header_row + 2
    return SheetTable(
        sheet=sheet.name,
        header_row=header_row + 1,
        header=list(table.column_names),
        data=pd.DataFrame(data),
        row_numbers=np.arange(first, first + table.num_rows, dtype=np.int64),
    )


def transform_day(files: Sequence[Path], reader: Callable[..., Any], data_root: Path, url: str) -> Any:
    """Every file through the pipeline's own transform (reader swapped), the day's rows sorted as the snapshot."""
    import tempfile

    import pandas as pd

    from autopo_pipelines import transform
    from autopo_pipelines.config import load_config_file, load_transform, transform_settings
    from autopo_pipelines.transform import DayContext

    config = load_config_file(default_config_dir() / f"{PIPELINE}.yaml")
    definition = load_transform(config.transform)
    settings = transform_settings(config)
    context = DayContext(PIPELINE, DATE, data_root, url)
    inputs = Path(tempfile.mkdtemp(prefix="bench-inputs-"))
    definition.prepare_day_inputs(context, settings, inputs)
    day_inputs = definition.load_day_inputs(context, settings, inputs)
    transform.read_sheet_table = reader  # type: ignore[assignment] - the one thing that differs
    frames = []
    for path in files:
        outcome = transform.transform_file(
            path,
            config=config,
            definition=definition,
            settings=settings,
            day_inputs=day_inputs,
            date=DATE,
            store_id=path.name.split("_")[0],
            file_name=path.name,
        )
        frames.append(outcome.rows)
    rows = pd.concat(frames, ignore_index=True)
    if definition.merge_day_rows is not None:
        rows = definition.merge_day_rows(rows, settings)
    return rows.sort_values(list(definition.snapshot.sort), kind="stable")[list(definition.snapshot.columns)]


def run_naive(files: Sequence[Path], data_root: Path, url: str) -> dict[str, Any]:
    import sqlalchemy

    started = time.perf_counter()
    rows = transform_day(files, openpyxl_reader, data_root, url)
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DELETE FROM naive_snapshots WHERE snapshot_date = :d"), {"d": DATE})
        rows.to_sql("naive_snapshots", conn, if_exists="append", index=False)
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "rows": count_rows(url, "naive_snapshots")}


def run_floor(files: Sequence[Path], data_root: Path, url: str) -> dict[str, Any]:
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    rows = transform_day(files, fastexcel_reader, data_root, url)
    buffer = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(rows, preserve_index=False), buffer)
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            # The least a load can do: a new table in the same transaction (COPY FREEZE), then the indexes.
            conn.execute("DROP TABLE IF EXISTS floor_snapshots")
            conn.execute(f"CREATE TABLE floor_snapshots (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            columns = ", ".join(rows.columns)
            with conn.cursor().copy(
                f"COPY floor_snapshots ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true, FREEZE true)"
            ) as copy:
                copy.write(buffer.getbuffer())
            conn.execute("ALTER TABLE floor_snapshots ADD PRIMARY KEY (snapshot_date, store_id, sku)")
            conn.execute("CREATE INDEX ON floor_snapshots (sku, snapshot_date)")
            conn.execute("CREATE INDEX ON floor_snapshots (snapshot_date, store_id) WHERE emergency")
    return {"seconds": time.perf_counter() - started, "rows": count_rows(url, "floor_snapshots")}


# --- the product --------------------------------------------------------------------------


def run_dag_test(data_root: Path | str, url: str, config_dir: Path) -> dict[str, Any]:
    """One dag.test() of the bench date; ``data_root`` a folder or an object-store URL (gs://…)."""
    os.environ.update(
        {
            "AUTOPO_DATA_DIR": str(data_root),
            "AIRFLOW_CONN_AUTOPO_DB": url,
            "AUTOPO_CONFIG_DIR": str(config_dir),
            "AUTOPO_DEADLINE_ALERTS": "off",
        }
    )
    from autopo_pipelines.config import load_config_file
    from autopo_pipelines.orchestration.dag_factory import build_dag

    dag = build_dag(load_config_file(config_dir / f"{PIPELINE}.yaml"), with_deadlines=False)
    started = time.perf_counter()
    run = dag.test(run_conf={"date": DATE.isoformat()})
    seconds = time.perf_counter() - started
    state = str(getattr(run.state, "value", run.state))
    if state != "success":
        raise RuntimeError(f"dag.test() of {PIPELINE} ended {state}")
    return {"seconds": seconds, "rows": count_rows(url, TABLE), "run_id": run.run_id}


def aggregate_memory(data_root: Path, run_id: str) -> dict[str, Any]:
    """aggregate_and_flush's work on a finished run's parts, alone in this fresh process."""
    from autopo_pipelines.config import load_config_file
    from autopo_pipelines.day import Day
    from autopo_pipelines.day.outputs import aggregate_day

    config = load_config_file(default_config_dir() / f"{PIPELINE}.yaml")
    before = _rss_now_mb()
    started = time.perf_counter()
    result = aggregate_day(Day(config, DataLayout(data_root), DATE, run_id))
    return {
        "seconds": time.perf_counter() - started,
        "rss_before_mb": before,
        "rows": result["rows_out"] if result else 0,
    }


def run_load(csv_path: Path, url: str, repeats: int) -> dict[str, Any]:
    """The day's CSV into the table, replacing the date: timed alone, then once more with readers.
    The baseline is the same into an unpartitioned copy of the table (the in-place delete and insert)."""
    import logging

    from autopo_pipelines.pipelines.stock_health import OUTPUT_COLUMNS
    from autopo_pipelines.warehouse import replace_date_rows

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the swap's own timings, in stages.log

    def load_into(table: str) -> int:
        return replace_date_rows(
            url, table=table, date_column="snapshot_date", date=DATE, csv_path=csv_path, columns=OUTPUT_COLUMNS
        )

    results: dict[str, Any] = {}
    for table in (TABLE, "inplace_snapshots"):
        if table != TABLE:
            unpartitioned_copy(url, table)
        rows = load_into(table)  # the date exists before each timed load: they replace it
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            load_into(table)
            times.append(time.perf_counter() - started)
        with readers(url, table) as watch:
            started = time.perf_counter()
            load_into(table)
            with_readers = time.perf_counter() - started
        if watch.problems:
            raise RuntimeError(f"readers of {table}: {watch.problems[:3]}")
        results[table] = {
            "seconds": times,
            "seconds_with_readers": with_readers,
            "lookup_worst_s": watch.worst_during_load_s,
            "lookup_idle_worst_s": watch.idle_worst_s,
            "lookups": watch.lookups,
            "counts": watch.counts,
        }
        results["rows"] = rows
    return results


@dataclass
class ReaderWatch:
    idle_worst_s: float = 0.0
    worst_during_load_s: float = 0.0
    lookups: int = 0
    counts: int = 0
    problems: list[str] = field(default_factory=list)


@contextlib.contextmanager
def readers(url: str, table: str) -> Iterator[ReaderWatch]:
    """A reader looking one row of the date up by its key every 5 ms (the longest lookup, idle and during
    the load, is how long readers wait), and one counting the date's rows every half second (never
    anything but a whole version: the old count or the new)."""
    watch = ReaderWatch()
    loading = threading.Event()
    stop = threading.Event()
    ident = sql.Identifier(table)
    count_sql = sql.SQL("SELECT count(*) FROM {} WHERE snapshot_date = %s").format(ident)
    with psycopg.connect(url) as conn:
        total = conn.execute(count_sql, (DATE,)).fetchone()
    whole = {int(total[0]) if total else 0}

    def look_up() -> None:
        query = sql.SQL(
            "SELECT sku FROM {} WHERE snapshot_date = %s AND store_id = 'STORE-001' AND sku = '100007'"
        ).format(ident)
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                started = time.perf_counter()
                row = conn.execute(query, (DATE,)).fetchone()
                took = time.perf_counter() - started
                watch.lookups += 1
                if loading.is_set():
                    watch.worst_during_load_s = max(watch.worst_during_load_s, took)
                else:
                    watch.idle_worst_s = max(watch.idle_worst_s, took)
                if row is None:
                    watch.problems.append("a lookup by key found nothing")
                time.sleep(0.005)

    def count() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(count_sql, (DATE,)).fetchone()
                watch.counts += 1
                if int(row[0]) not in whole:  # type: ignore[index]
                    watch.problems.append(f"a count saw {row[0]} rows")  # type: ignore[index]
                time.sleep(0.5)

    threads = [threading.Thread(target=look_up), threading.Thread(target=count)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # idle figures first
    loading.set()
    try:
        yield watch
    finally:
        # The load may bring another number of rows: the new count is whole too.
        with psycopg.connect(url) as conn:
            after = conn.execute(count_sql, (DATE,)).fetchone()
        whole.add(int(after[0]) if after else 0)
        loading.clear()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(60)


def _rss_now_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


# --- children -------------------------------------------------------------------------------


def child_main(stage: str, payload: dict[str, Any]) -> None:
    """Run one stage in this process and print its figures (with this process's peak RSS) as JSON."""
    files = [Path(p) for p in payload.get("files", [])]
    data_root = Path(payload["data_root"]) if payload.get("data_root") else Path()
    url = payload["url"]
    if stage == "naive":
        result = run_naive(files, data_root, url)
    elif stage == "floor":
        result = run_floor(files, data_root, url)
    elif stage == "dag_test":  # the data root as given: a folder, or a URL that a Path would mangle
        result = run_dag_test(payload["data_root"], url, Path(payload["config_dir"]))
    elif stage == "aggregate":
        result = aggregate_memory(data_root, payload["run_id"])
    elif stage == "load":
        result = run_load(Path(payload["csv"]), url, int(payload["repeats"]))
    else:
        raise SystemExit(f"unknown stage {stage}")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH-RESULT " + json.dumps(result, default=str), flush=True)


def in_child(stage: str, payload: dict[str, Any], log: Path) -> dict[str, Any]:
    with open(log, "a", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, __file__, "--child", stage, json.dumps(payload, default=str)],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
    with open(log, "a", encoding="utf-8") as out:
        out.write(done.stdout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"stage {stage} failed (exit {done.returncode}); see {log}")
    return json.loads(lines[-1].removeprefix("BENCH-RESULT "))


# --- the real scheduler ------------------------------------------------------------------------


def run_scheduler(
    files: Sequence[Path], supplier_master: Path, url: str, admin_url: str, config_dir: Path, repeats: int, work: Path
) -> dict[str, Any]:
    """The DAG triggered through the REST API of a real stack (API server, scheduler, DAG processor,
    triggerer; LocalExecutor, parallelism 2); the run's own start and end times, and the stack's memory."""
    import psutil

    from autopo_local.throwaway_stack import start_airflow_stack  # the system tests' stack too

    data_root = work / "scheduler-data"
    fresh_data_root(data_root, files, supplier_master)
    stack = start_airflow_stack(
        home=work / "airflow-home",
        admin_db_url=admin_url,
        cluster_url_base=admin_url.rsplit("/", 1)[0],
        data_root=data_root,
        warehouse_url=url,
        dag_ids=(PIPELINE,),
        config_dir=config_dir,
    )
    try:
        stack_pids = [c.process.pid for c in stack.components]
        seconds, walls, peaks = [], [], []
        for _ in range(repeats):
            shutil.rmtree(data_root / "intermediate", ignore_errors=True)
            shutil.rmtree(data_root / "seeds", ignore_errors=True)
            peak = {"mb": 0.0}
            stop = threading.Event()

            def sample(stop: threading.Event = stop, peak: dict[str, float] = peak) -> None:
                while not stop.is_set():
                    total = 0
                    for pid in stack_pids:
                        with contextlib.suppress(psutil.Error):
                            process = psutil.Process(pid)
                            for member in [process, *process.children(recursive=True)]:
                                with contextlib.suppress(psutil.Error):
                                    total += member.memory_info().rss
                    peak["mb"] = max(peak["mb"], total / 2**20)
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            run_id = stack.client.trigger(PIPELINE, conf={"date": DATE.isoformat()})
            state = stack.client.wait_for_run(PIPELINE, run_id, timeout=1800, poll=0.5)
            walls.append(time.perf_counter() - started)
            stop.set()
            sampler.join()
            if state != "success":
                raise RuntimeError(f"scheduler run {run_id} ended {state}")
            run = stack.client.dag_run(PIPELINE, run_id)
            took = dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
            seconds.append(took.total_seconds())
            peaks.append(peak["mb"])
        return {"seconds": seconds, "wall": walls, "peak_rss_mb": max(peaks), "rows": count_rows(url, TABLE)}
    finally:
        stack.stop()


# --- the report ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """The range of several runs' seconds, for the report ("-" for one run)."""
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else "-"


def row(name: str, seconds: Sequence[float], rows: int, peak_mb: float, note: str = "") -> str:
    took = median(seconds)
    return f"  {name:<28} {took:>8.1f}s {spread(seconds):>11} {rows / took:>12,.0f} {peak_mb:>9,.0f} MB  {note}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stage; the median is shown")
    parser.add_argument("--naive-repeat", type=int, default=None, help="runs of the naive stage (default --repeat)")
    parser.add_argument("--scale", default="10,40,100", help="store counts of the scale row")
    parser.add_argument("--scale-rows", type=int, default=20_000)
    parser.add_argument(
        "--skip", default="", help="stages to leave out, comma-separated: naive, scheduler, load, scale"
    )
    parser.add_argument("--files-per-task", type=int, default=None, help="override the config's airflow.files_per_task")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="where runs write (emptied first)")
    return parser.parse_args(argv)


# One store count of the scale row: its run times, rows and the aggregate step's memory figures.
ScaleResult = tuple[int, list[float], int, list[dict[str, Any]]]


def run_scale(args: argparse.Namespace, url: str, config_dir: Path, log: Path) -> list[ScaleResult]:
    """The scale row: dag.test() on days of each --scale store count, then the aggregate step's memory."""
    scale = []
    scale_day = generated_day(max(int(s) for s in args.scale.split(",")), args.scale_rows)
    for stores in [int(s) for s in args.scale.split(",")]:
        times, memory = [], []
        for n in range(args.repeat):
            root = fresh_data_root(
                args.work / f"scale-{stores}-{n}", subset(scale_day, stores), scale_day / "suppliers.csv"
            )
            result = in_child("dag_test", {"data_root": str(root), "url": url, "config_dir": str(config_dir)}, log)
            times.append(result["seconds"])
            memory.append(in_child("aggregate", {"data_root": str(root), "url": url, "run_id": result["run_id"]}, log))
        scale.append((stores, times, result["rows"], memory))
        print(f"  . scale {stores} stores: {median(times):.1f}s", flush=True)
    return scale


def print_scale(scale: list[ScaleResult], scale_rows: int) -> None:
    print()
    print(
        f"  scale ({scale_rows:,} rows a store, dag.test())   {'median':>9} {'rows/s':>12} "
        f"{'aggregate peak RSS':>20} {'(before it)':>12}"
    )
    for stores, times, rows, memory in scale:
        print(
            f"  {stores:>4} stores, {rows:>9,} rows              {median(times):>8.1f}s "
            f"{rows / median(times):>12,.0f} {median([m['peak_rss_mb'] for m in memory]):>17,.0f} MB "
            f"{median([m['rss_before_mb'] for m in memory]):>9,.0f} MB"
        )
    small, large = scale[0], scale[-1]
    ratio = median([m["peak_rss_mb"] for m in large[3]]) / median([m["peak_rss_mb"] for m in small[3]])
    print(f"  aggregate peak memory, {large[0]} stores over {small[0]}: {ratio:.2f}x")


def print_load(load: dict[str, Any], repeat: int) -> None:
    print()
    print(f"  load of {load['rows']:,} rows replacing the date (median of {repeat}, then once with readers):")
    for label, table in [
        ("stage and swap (partition)", TABLE),
        ("in place (delete + insert)", "inplace_snapshots"),
    ]:
        figures = load[table]
        print(
            f"    {label:<30}{median(figures['seconds']):>6.1f}s; "
            f"with readers {figures['seconds_with_readers']:.1f}s, "
            f"their longest lookup by key {figures['lookup_worst_s'] * 1000:,.0f} ms "
            f"(idle {figures['lookup_idle_worst_s'] * 1000:,.0f} ms; {figures['lookups']:,} lookups, "
            f"{figures['counts']} counts, each saw a whole version)"
        )


def loaded_rows(
    naive: list[dict[str, Any]],
    floor: list[dict[str, Any]],
    product: list[dict[str, Any]],
    scheduler: dict[str, Any] | None,
) -> int:
    """The rows the day loaded: the same in every stage that ran, else a RuntimeError."""
    rows_by_stage = {
        name: results[0]["rows"]
        for name, results in [("naive", naive), ("floor", floor), ("product", product)]
        if results
    }
    if scheduler:
        rows_by_stage["scheduler"] = scheduler["rows"]
    if len(set(rows_by_stage.values())) != 1:
        raise RuntimeError(f"the stages loaded different row counts: {rows_by_stage}")
    return product[0]["rows"]


def machine_line() -> str:
    """What the figures were measured on, for the report's first line."""
    return (
        f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, "
        f"Python {platform.python_version()}"
    )


def cluster_admin_url() -> str:
    """The project's PostgreSQL, where the bench databases are made: AUTOPO_BENCH_ADMIN_URL, else the embedded one."""
    return (
        os.environ.get("AUTOPO_BENCH_ADMIN_URL")
        or subprocess.run(
            [sys.executable, "-m", "autopo_local.embedded_pg", "url"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = cluster_admin_url()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    log = args.work / "stages.log"
    config_dir = bench_configs(args.work / "configs", args.files_per_task)
    url = bench_database(admin_url)
    unpartitioned_copy(url, "naive_snapshots")
    naive_repeat = args.naive_repeat or args.repeat

    print(machine_line())
    day = generated_day(args.stores, args.rows)
    files = subset(day, args.stores)
    master = day / "suppliers.csv"
    total_rows = args.stores * args.rows
    print(
        f"day: {args.stores} stores x {args.rows:,} rows = {total_rows:,} rows in {len(files)} files "
        f"({sum(p.stat().st_size for p in files) / 2**20:.0f} MB of XLSX); medians of {args.repeat} runs "
        f"(naive {naive_repeat}); stage logs in {log}",
        flush=True,
    )

    def repeated(stage: str, times: int, payload: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        for n in range(times):
            result = in_child(stage, payload(n), log)
            print(f"  . {stage} run {n + 1}: {result['seconds']:.1f}s", flush=True)
            results.append(result)
        return results

    def data_root_for(name: str) -> Callable[[int], dict[str, Any]]:
        def payload(n: int) -> dict[str, Any]:
            root = fresh_data_root(args.work / f"{name}-{n}", files, master)
            return {
                "files": [str(f) for f in sorted(DataLayout(root).inbox(PIPELINE).iterdir())],
                "data_root": str(root),
                "url": url,
                "config_dir": str(config_dir),
            }

        return payload

    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    floor = repeated("floor", args.repeat, data_root_for("floor"))
    product = repeated("dag_test", args.repeat, data_root_for("dag_test"))
    naive = [] if "naive" in skip else repeated("naive", naive_repeat, data_root_for("naive"))
    scheduler = None
    if "scheduler" not in skip:
        print("  . starting Airflow (API server, scheduler, DAG processor, triggerer)", flush=True)
        scheduler = run_scheduler(files, master, url, admin_url, config_dir, args.repeat, args.work)
        print(f"  . scheduler runs: {', '.join(f'{s:.1f}s' for s in scheduler['seconds'])}", flush=True)
    rows = loaded_rows(naive, floor, product, scheduler)

    load = None
    if "load" not in skip:
        # The day's load, replacing the date: the product's own CSV of the day.
        csv_path = args.work / f"dag_test-{args.repeat - 1}" / "seeds" / PIPELINE / f"{date_stamp(DATE)}.csv"
        load = in_child("load", {"csv": str(csv_path), "url": url, "repeats": args.repeat}, log)

    scale = [] if "scale" in skip else run_scale(args, url, config_dir, log)

    def seconds(results: list[dict[str, Any]]) -> list[float]:
        return [r["seconds"] for r in results]

    def peak(results: list[dict[str, Any]]) -> float:
        return max(r["peak_rss_mb"] for r in results)

    print()
    print(f"  {'stage':<28} {'median':>9} {'min-max':>11} {'rows/s':>12} {'peak RSS':>12}")
    if naive:
        print(row("naive (openpyxl, to_sql)", seconds(naive), rows, peak(naive)))
    print(row("floor (fastexcel, COPY)", seconds(floor), rows, peak(floor)))
    print(row("product, dag.test()", seconds(product), rows, peak(product), "one process, tasks one after another"))
    if scheduler:
        note = f"run start to end; trigger to seen done {median(scheduler['wall']):.1f}s; RSS: whole stack"
        print(row("product, scheduler", scheduler["seconds"], rows, scheduler["peak_rss_mb"], note))
    naive_s = median(seconds(naive)) if naive else float("nan")
    floor_s = median(seconds(floor))
    dag_test_s = median(seconds(product))
    print(f"  dag.test(): naive/product {naive_s / dag_test_s:.1f}x, product/floor {dag_test_s / floor_s:.2f}x")
    product_s = dag_test_s
    if scheduler:
        product_s = median(scheduler["seconds"])
        print(f"  scheduler:  naive/product {naive_s / product_s:.1f}x, product/floor {product_s / floor_s:.2f}x")

    if scale:
        print_scale(scale, args.scale_rows)
    if load:
        print_load(load, args.repeat)
    print()
    print(f"ratios: naive_over_product={naive_s / product_s:.2f} product_over_floor={product_s / floor_s:.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(main())
