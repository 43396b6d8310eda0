"""A day of N stores x R rows through three stacks, side by side, in one run (``make bench``).

1. naive: pandas.read_excel (openpyxl) + the pipeline's own transform + DataFrame.to_sql:
   what a notebook port of the spreadsheet work would do;
2. floor: the fastest reader here (fastexcel, one typed pass, told where the header is) + the same transform +
   one COPY and the table's indexes, in one process, no Airflow, no intermediate files;
3. product: the stock_health DAG for the date, files landed to rows in PostgreSQL, with
   ``dag.test()`` and under the real scheduler (LocalExecutor, parallelism 2).

After each full run of the product (both ways), the rerun: one store's workbook in that data
root's inbox is replaced by a changed version (the same store and SKUs, the generator with
another seed: other figures, another checksum; cached in the day's ``changed/`` folder), and the
date is run again the same way, timed alone. The rerun must transform that file again
(``completed``) and reuse every other file's part (``skipped``), by the day's state files
``results/*.json`` for that run, and load the full day's rows plus the changed file's difference
(each version counted by the floor's transform of that file alone), or the benchmark stops.

Then the scale row (N = 10, 40, 100, 160 stores x 20,000 rows through ``dag.test()``, with the
peak memory of aggregate_and_flush's work), and the load of the 2M-row day into the table,
replacing the date, with readers timed while it runs.

Every stage runs in a fresh child process (its peak RSS is the stage's peak memory); the
figures are medians of ``--repeat`` runs. Generated workbooks are cached in
benchmarks/.cache/ (generating is not what is measured). The report ends with issue 20's
targets, each figure with the baseline it was measured against in the same run, met or
missed by how much, and the last line is for scripts (``n/a``: not measured in this run)::

    ratios: naive_over_product=<naive / product> product_over_floor=<product / floor>
        aggregate_memory_100_over_10=<aggregate peak RSS, 100 stores / 10> rerun_over_full=<rerun / full day>
        scale_160_over_4x40=<t(160 stores) / (4 x t(40 stores))>

(on one line), product being the scheduler's run (``dag.test()``'s with ``--skip scheduler``),
the rerun's the same way as the full day it is compared with. Targets: naive_over_product >= 12,
product_over_floor <= 1.25, aggregate_memory_100_over_10 <= 1.15, rerun_over_full <= 0.20,
scale_160_over_4x40 <= 1.10. The scale figures need their store counts in ``--scale``.

    make bench                                   # defaults: 40 x 50,000, repeat 3
    make bench BENCH_ARGS='--stores 6 --rows 2000 --repeat 1 --scale 2,4,6,8 --scale-rows 1000 --skip naive'
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


def _write_store(args: tuple[Path, str, int, int, str]) -> None:
    from autopo_local.sample_day import _sku, write_store_file

    path, store, rows, style, seed = args
    skus = [_sku(i) for i in range(rows)]
    # Styles rotate the spec's quirks: header aliases, title rows above the header, text
    # numbers with thousands separators, a TOTAL row, negative stock (a reject).
    write_store_file(path, store, DATE, skus, random.Random(seed), style)


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
        (
            folder / "files" / f"STORE-{n:03d}_stock_{DATE:%Y%m%d}.xlsx",
            f"STORE-{n:03d}",
            rows,
            n,
            f"STORE-{n:03d}-{rows}",
        )
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


def changed_store_file(day: Path, original: Path, rows: int) -> Path:
    """The same store's report of the same SKUs with other figures (the generator with another seed):
    another checksum, other rows. Cached beside the day, in ``<day>/changed/`` under the same name."""
    target = day / "changed" / original.name
    if target.exists():
        return target
    store = original.name.split("_")[0]
    writing = target.with_name(target.name + ".partial")
    _write_store((writing, store, rows, int(store.removeprefix("STORE-")), f"{store}-{rows}-changed"))
    os.replace(writing, target)
    return target


def local(path: object) -> Path:
    """A path of a local data root (DataLayout's paths are StoragePaths: a folder's, or an object store's)."""
    if not isinstance(path, Path):
        raise TypeError(f"not a local path: {path!r}")
    return path


def put_in_inbox(data_root: Path, path: Path) -> None:
    """``path`` in the data root's inbox under its own name, replacing the file there (a new hard link
    renamed over it: the cached file the old link points to is never written)."""
    target = local(DataLayout(data_root).inbox(PIPELINE)) / path.name
    incoming = target.with_name(f".{target.name}.incoming")
    incoming.unlink(missing_ok=True)
    try:
        os.link(path, incoming)
    except OSError:
        shutil.copyfile(path, incoming)
    os.replace(incoming, target)


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


def rows_of_files(files: Sequence[Path], data_root: Path, url: str) -> dict[str, Any]:
    """Each file's rows of the date, by the floor's transform of that file alone (a store's rows never
    merge with another store's: the snapshot's key holds the store)."""
    started = time.perf_counter()
    rows = {str(path): len(transform_day([path], fastexcel_reader, data_root, url)) for path in files}
    return {"seconds": time.perf_counter() - started, "rows": rows}


# --- the rerun after one store's file changed ---------------------------------------------------


@dataclass(frozen=True)
class ChangedStore:
    """One store's file of the day, its changed version, and the rows the day gains (or loses) with it."""

    original: Path
    changed: Path
    rows_delta: int

    @property
    def name(self) -> str:
        return self.original.name


def changed_store(day: Path, files: Sequence[Path], rows: int, data_root: Path, url: str, log: Path) -> ChangedStore:
    """The day's middle store, changed; the rows of both versions counted in a child process."""
    original = files[len(files) // 2]
    changed = changed_store_file(day, original, rows)
    counted = in_child(
        "file_rows", {"files": [str(original), str(changed)], "data_root": str(data_root), "url": url}, log
    )
    delta = int(counted["rows"][str(changed)]) - int(counted["rows"][str(original)])
    return ChangedStore(original, changed, delta)


def day_folder(data_root: Path) -> Path:
    """The bench date's state folder in a local data root (listing, results/, aggregate.json, …)."""
    return local(DataLayout(data_root).intermediate(PIPELINE, DATE))


def file_statuses(data_root: Path, run_id: str) -> dict[str, str]:
    """The run's outcome for each file (file name -> status), from the day's state files results/*.json."""
    results = day_folder(data_root) / "results"
    statuses = {}
    for path in sorted(results.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("run_id") == run_id:
            statuses[str(raw["file_name"])] = str(raw["status"])
    return statuses


def check_rerun(
    mode: str, data_root: Path, run_id: str, changed: ChangedStore, files: int, rows: int, expected_rows: int
) -> str:
    """A rerun did what a rerun of the day after one file changed must: that file transformed again
    (``completed``), every other file's part reused (``skipped``), the day's rows as expected; else a
    RuntimeError. Returns how it loaded the date (the aggregate's record: partial or whole)."""
    statuses = file_statuses(data_root, run_id)
    want = {path: "skipped" for path in statuses} | {changed.name: "completed"}
    if len(statuses) != files or statuses != want:
        counts = {status: list(statuses.values()).count(status) for status in sorted(set(statuses.values()))}
        completed = sorted(name for name, status in statuses.items() if status == "completed")
        raise RuntimeError(
            f"{mode} rerun {run_id}: the files were {counts} (completed: {completed}), not {changed.name} "
            f"completed and {files - 1} skipped; state in {day_folder(data_root)}"
        )
    if rows != expected_rows:
        raise RuntimeError(
            f"{mode} rerun {run_id} loaded {rows:,} rows, not {expected_rows:,} (the full day's rows "
            f"{changed.rows_delta:+,} for the changed {changed.name})"
        )
    record = day_folder(data_root) / "aggregate.json"
    partial = json.loads(record.read_text(encoding="utf-8")).get("partial_load")
    return f"partial load of {len(partial['partitions'])} store(s)" if partial else "whole date loaded"


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
    elif stage == "file_rows":
        result = rows_of_files(files, data_root, url)
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
    files: Sequence[Path],
    supplier_master: Path,
    url: str,
    admin_url: str,
    config_dir: Path,
    repeats: int,
    work: Path,
    changed: ChangedStore | None = None,
) -> dict[str, Any]:
    """The DAG triggered through the REST API of a real stack (API server, scheduler, DAG processor,
    triggerer; LocalExecutor, parallelism 2); the run's own start and end times, and the stack's memory.
    With ``changed``, each full run is followed by a rerun of the date with that store's file changed
    (checked as check_rerun does), and the original file is put back for the next full run."""
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
        seconds, walls, peaks, rows = [], [], [], []
        reruns: dict[str, list[Any]] = {"seconds": [], "wall": [], "loads": []}
        # A fresh stack's first run is slower than every later one (its components' first DAG run: caches,
        # imports, the first task processes): one untimed run first, so no figure depends on --repeat.
        took, _, _ = scheduler_run(stack)
        print(f"  . scheduler warm-up run (not counted): {took:.1f}s", flush=True)
        for n in range(repeats):
            shutil.rmtree(data_root / "intermediate", ignore_errors=True)
            shutil.rmtree(data_root / "seeds", ignore_errors=True)
            with stack_memory(stack_pids) as peak:
                took, wall, _ = scheduler_run(stack)
            seconds.append(took)
            walls.append(wall)
            peaks.append(peak["mb"])
            rows.append(count_rows(url, TABLE))
            print(f"  . scheduler run {n + 1}: {took:.1f}s", flush=True)
            if changed is None:
                continue
            put_in_inbox(data_root, changed.changed)
            try:
                took, wall, run_id = scheduler_run(stack)
                loaded = count_rows(url, TABLE)
                reruns["loads"].append(
                    check_rerun(
                        "scheduler", data_root, run_id, changed, len(files), loaded, rows[-1] + changed.rows_delta
                    )
                )
            finally:
                put_in_inbox(data_root, changed.original)
            reruns["seconds"].append(took)
            reruns["wall"].append(wall)
            print(f"  . scheduler rerun {n + 1}: {took:.1f}s ({reruns['loads'][-1]})", flush=True)
        if len(set(rows)) != 1:
            raise RuntimeError(f"the scheduler's full runs loaded different row counts: {rows}")
        return {"seconds": seconds, "wall": walls, "peak_rss_mb": max(peaks), "rows": rows[0], "rerun": reruns}
    finally:
        stack.stop()


def scheduler_run(stack: Any) -> tuple[float, float, str]:
    """One run of the date triggered on the stack: its start to end as Airflow records them, the time
    from the trigger to the run seen done, and its run id."""
    started = time.perf_counter()
    run_id = stack.client.trigger(PIPELINE, conf={"date": DATE.isoformat()})
    state = stack.client.wait_for_run(PIPELINE, run_id, timeout=1800, poll=0.5)
    wall = time.perf_counter() - started
    if state != "success":
        raise RuntimeError(f"scheduler run {run_id} ended {state}")
    run = stack.client.dag_run(PIPELINE, run_id)
    took = dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
    return took.total_seconds(), wall, str(run_id)


@contextlib.contextmanager
def stack_memory(pids: Sequence[int]) -> Iterator[dict[str, float]]:
    """The stack's processes and their children, their RSS added up every 0.2 s: the peak, in MB."""
    import psutil

    peak = {"mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(pid)
                    for member in [process, *process.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            total += member.memory_info().rss
            peak["mb"] = max(peak["mb"], total / 2**20)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


# --- the report ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """The range of several runs' seconds, for the report ("-" for one run)."""
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else "-"


def row(name: str, seconds: Sequence[float], rows: int, peak_mb: float, note: str = "") -> str:
    took = median(seconds)
    return f"  {name:<28} {took:>8.1f}s {spread(seconds):>11} {rows / took:>12,.0f} {peak_mb:>9,.0f} MB  {note}"


STAGES = ("naive", "scheduler", "rerun", "load", "scale")
DEFAULT_SCALE = "10,40,100,160"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stage; the median is shown")
    parser.add_argument("--naive-repeat", type=int, default=None, help="runs of the naive stage (default --repeat)")
    parser.add_argument(
        "--scale",
        default=DEFAULT_SCALE,
        help=f"store counts of the scale row (default {DEFAULT_SCALE}): 10 and 100 give the aggregate's memory "
        "ratio, 40 and 160 the time per row's; without them that figure is n/a",
    )
    parser.add_argument("--scale-rows", type=int, default=20_000, help="rows a store in the scale row")
    parser.add_argument(
        "--skip",
        default="",
        help=f"stages to leave out, comma-separated: {', '.join(STAGES)} (rerun: the reruns of the day after one "
        "store's file changed, under dag.test() and the scheduler)",
    )
    parser.add_argument("--files-per-task", type=int, default=None, help="override the config's airflow.files_per_task")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="where runs write (emptied first)")
    args = parser.parse_args(argv)
    args.skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    if args.skip - set(STAGES):
        parser.error(
            f"--skip: unknown stage(s) {', '.join(sorted(args.skip - set(STAGES)))}; known: {', '.join(STAGES)}"
        )
    try:
        args.scale = list(dict.fromkeys(int(s) for s in args.scale.split(",") if s.strip()))
    except ValueError:
        parser.error(f"--scale: store counts, comma-separated, not {args.scale!r}")
    if not args.scale or min(args.scale) < 1:
        parser.error("--scale: at least one store count, each 1 or more")
    return args


# One store count of the scale row: its run times, rows and the aggregate step's memory figures.
ScaleResult = tuple[int, list[float], int, list[dict[str, Any]]]


def run_scale(args: argparse.Namespace, url: str, config_dir: Path, log: Path) -> list[ScaleResult]:
    """The scale row: dag.test() on days of each --scale store count, then the aggregate step's memory."""
    scale = []
    scale_day = generated_day(max(args.scale), args.scale_rows)
    for stores in args.scale:
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


def aggregate_peak(point: ScaleResult) -> float:
    """The aggregate step's peak RSS at a scale point (median of its runs), in MB."""
    return median([m["peak_rss_mb"] for m in point[3]])


def print_scale(scale: list[ScaleResult], scale_rows: int) -> None:
    print()
    print(
        f"  scale ({scale_rows:,} rows a store, dag.test())   {'median':>9} {'rows/s':>12} "
        f"{'aggregate peak RSS':>20} {'(before it)':>12}"
    )
    for point in scale:
        stores, times, rows, memory = point
        print(
            f"  {stores:>4} stores, {rows:>9,} rows              {median(times):>8.1f}s "
            f"{rows / median(times):>12,.0f} {aggregate_peak(point):>17,.0f} MB "
            f"{median([m['rss_before_mb'] for m in memory]):>9,.0f} MB"
        )
    small, large = min(scale, key=lambda p: p[0]), max(scale, key=lambda p: p[0])
    ratio = aggregate_peak(large) / aggregate_peak(small)
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


@dataclass
class Product:
    """The product's full runs of the day under dag.test(), and its reruns after one store's file changed."""

    runs: list[dict[str, Any]]
    reruns: list[dict[str, Any]]
    changed: ChangedStore | None
    # The day's CSV of the last full run (the load stage's), kept before that root's rerun changes it.
    csv: Path


def run_product(
    args: argparse.Namespace, day: Path, files: Sequence[Path], url: str, config_dir: Path, log: Path
) -> Product:
    """dag.test() of the day on a fresh data root, ``--repeat`` times; unless the rerun stage is skipped,
    each followed on the same root by a rerun of the date with one store's file changed (timed alone,
    checked by check_rerun)."""
    product = Product([], [], None, args.work / "day.csv")
    for n in range(args.repeat):
        root = fresh_data_root(args.work / f"dag_test-{n}", files, day / "suppliers.csv")
        payload = {"data_root": str(root), "url": url, "config_dir": str(config_dir)}
        full = in_child("dag_test", payload, log)
        product.runs.append(full)
        print(f"  . dag_test run {n + 1}: {full['seconds']:.1f}s", flush=True)
        if n == args.repeat - 1 and "load" not in args.skip:
            shutil.copyfile(local(DataLayout(root).seeds(PIPELINE)) / f"{date_stamp(DATE)}.csv", product.csv)
        if "rerun" in args.skip:
            continue
        if product.changed is None:
            product.changed = changed_store(day, files, args.rows, root, url, log)
        put_in_inbox(root, product.changed.changed)
        rerun = in_child("dag_test", payload, log)
        expected = full["rows"] + product.changed.rows_delta
        rerun["load"] = check_rerun(
            "dag.test()", root, rerun["run_id"], product.changed, len(files), rerun["rows"], expected
        )
        product.reruns.append(rerun)
        print(f"  . dag_test rerun {n + 1}: {rerun['seconds']:.1f}s ({rerun['load']})", flush=True)
    return product


def print_reruns(product: Product, scheduler: dict[str, Any] | None, files: int) -> None:
    changed = product.changed
    if changed is None:
        return
    print()
    print(
        f"  rerun after one store's file changed: {changed.name} "
        f"({files - 1} of {files} files reused; the day {changed.rows_delta:+,} rows)"
    )
    print(f"  {'rerun':<28} {'median':>9} {'min-max':>11}   of the full day's time (same way)")
    modes = [("dag.test()", [r["seconds"] for r in product.reruns], product.runs, [r["load"] for r in product.reruns])]
    if scheduler and scheduler["rerun"]["seconds"]:
        reruns = scheduler["rerun"]
        modes.append(("scheduler", reruns["seconds"], [{"seconds": s} for s in scheduler["seconds"]], reruns["loads"]))
    for mode, seconds, full, loads in modes:
        full_s = median([r["seconds"] for r in full])
        print(
            f"  {'product, ' + mode:<28} {median(seconds):>8.1f}s {spread(seconds):>11}   "
            f"{median(seconds) / full_s:.0%} of {full_s:.1f}s; {', '.join(sorted(set(loads)))}"
        )


@dataclass(frozen=True)
class Figure:
    """A figure of issue 20's targets: its value (None: not measured in this run) and what it was measured
    against in the same run (or what it needs)."""

    key: str  # its name in the ratios line
    label: str
    limit: float
    at_most: bool
    value: float | None
    against: str

    def target(self) -> str:
        limit = f"{self.limit:g}" if self.limit >= 10 else f"{self.limit:.2f}"
        return f"{self.label} {'<=' if self.at_most else '>='} {limit}"

    def result(self) -> str:
        if self.value is None:
            return ""
        missed = self.value / self.limit - 1 if self.at_most else 1 - self.value / self.limit
        if missed <= 0:
            return "met"
        return f"missed by {missed:.0%}" if missed >= 0.005 else "missed by <1%"

    def shown(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.2f}"


def figures(
    naive: list[dict[str, Any]],
    floor: list[dict[str, Any]],
    product: Product,
    scheduler: dict[str, Any] | None,
    scale: list[ScaleResult],
    skip: set[str],
) -> list[Figure]:
    """The targets' figures; the product is the scheduler's run (dag.test()'s without the scheduler)."""
    mode = "scheduler" if scheduler else "dag.test()"
    full = scheduler["seconds"] if scheduler else [r["seconds"] for r in product.runs]
    product_s, floor_s = median(full), median([r["seconds"] for r in floor])
    naive_s = median([r["seconds"] for r in naive]) if naive else None
    reruns = scheduler["rerun"]["seconds"] if scheduler else [r["seconds"] for r in product.reruns]
    rerun_s = median(reruns) if reruns else None
    points = {point[0]: point for point in scale}

    def scale_needs(a: int, b: int) -> str:
        return "(needs the scale stage)" if "scale" in skip else f"(needs --scale with {a} and {b})"

    small, large = points.get(10), points.get(100)
    base, big = points.get(40), points.get(160)
    return [
        Figure(
            "naive_over_product",
            "naive / product",
            12,
            False,
            naive_s / product_s if naive_s is not None else None,
            f"naive {naive_s:.1f}s / product ({mode}) {product_s:.1f}s" if naive_s else "(needs the naive stage)",
        ),
        Figure(
            "product_over_floor",
            "product / floor",
            1.25,
            True,
            product_s / floor_s,
            f"product ({mode}) {product_s:.1f}s / floor {floor_s:.1f}s",
        ),
        Figure(
            "aggregate_memory_100_over_10",
            "aggregate peak memory, 100 / 10 stores",
            1.15,
            True,
            aggregate_peak(large) / aggregate_peak(small) if small and large else None,
            f"100 stores {aggregate_peak(large):,.0f} MB / 10 stores {aggregate_peak(small):,.0f} MB"
            if small and large
            else scale_needs(10, 100),
        ),
        Figure(
            "rerun_over_full",
            "rerun after one file changed / full day",
            0.2,
            True,
            rerun_s / product_s if rerun_s is not None else None,
            f"rerun ({mode}) {rerun_s:.1f}s / full day ({mode}) {product_s:.1f}s"
            if rerun_s is not None
            else "(needs the rerun stage)",
        ),
        Figure(
            "scale_160_over_4x40",
            "time, 160 stores / (4 x 40 stores)",
            1.1,
            True,
            median(big[1]) / (4 * median(base[1])) if base and big else None,
            f"160 stores {median(big[1]):.1f}s / 4 x 40 stores {median(base[1]):.1f}s"
            if base and big
            else scale_needs(40, 160),
        ),
    ]


def print_targets(results: list[Figure]) -> None:
    """The targets table, then the ratios line (the last line, for scripts; n/a: not measured)."""
    width = max(len(f.target()) for f in results)
    print()
    print(f"  {'target':<{width}} {'figure':>7}  {'result':<16} measured against (this run)")
    for figure in results:
        if figure.value is None:
            print(f"  {figure.target():<{width}} {figure.shown():>7}  {figure.against}")
        else:
            print(f"  {figure.target():<{width}} {figure.shown():>7}  {figure.result():<16} {figure.against}")
    print()
    print("ratios: " + " ".join(f"{f.key}={f.shown()}" for f in results))


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

    def repeated(stage: str, times: int) -> list[dict[str, Any]]:
        results = []
        for n in range(times):
            root = fresh_data_root(args.work / f"{stage}-{n}", files, master)
            payload = {
                "files": [str(f) for f in sorted(DataLayout(root).inbox(PIPELINE).iterdir())],
                "data_root": str(root),
                "url": url,
            }
            result = in_child(stage, payload, log)
            print(f"  . {stage} run {n + 1}: {result['seconds']:.1f}s", flush=True)
            results.append(result)
        return results

    floor = repeated("floor", args.repeat)
    product = run_product(args, day, files, url, config_dir, log)
    naive = [] if "naive" in args.skip else repeated("naive", naive_repeat)
    scheduler = None
    if "scheduler" not in args.skip:
        print("  . starting Airflow (API server, scheduler, DAG processor, triggerer)", flush=True)
        scheduler = run_scheduler(
            files, master, url, admin_url, config_dir, args.repeat, args.work, changed=product.changed
        )
        print(f"  . scheduler runs: {', '.join(f'{s:.1f}s' for s in scheduler['seconds'])}", flush=True)
    rows = loaded_rows(naive, floor, product.runs, scheduler)

    # The day's load, replacing the date: the product's own CSV of the day.
    load = (
        None
        if "load" in args.skip
        else in_child("load", {"csv": str(product.csv), "url": url, "repeats": args.repeat}, log)
    )
    scale = [] if "scale" in args.skip else run_scale(args, url, config_dir, log)

    print_stages(naive, floor, product.runs, scheduler, rows)
    print_reruns(product, scheduler, len(files))
    if scale:
        print_scale(scale, args.scale_rows)
    if load:
        print_load(load, args.repeat)
    print_targets(figures(naive, floor, product, scheduler, scale, args.skip))
    return 0


def print_stages(
    naive: list[dict[str, Any]],
    floor: list[dict[str, Any]],
    product: list[dict[str, Any]],
    scheduler: dict[str, Any] | None,
    rows: int,
) -> None:
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
    floor_s = median(seconds(floor))
    modes = [("dag.test():", median(seconds(product)))]
    if scheduler:
        modes.append(("scheduler: ", median(scheduler["seconds"])))
    for mode, product_s in modes:
        over_naive = f"naive/product {median(seconds(naive)) / product_s:.1f}x, " if naive else ""
        print(f"  {mode} {over_naive}product/floor {product_s / floor_s:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(main())
