"""Faults from outside the code: the database going away, a transform killed, a full disk.

Each fault is real: a PostgreSQL server of the test's own that is shut down
while a COPY runs, a writer process killed with SIGKILL, a tmpfs that fills up.
What is checked is the contract of each step: a clear error, nothing lost,
nothing half-loaded or half-written, and a retry that succeeds.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from autopo_local.embedded_pg import EmbeddedPostgres
from autopo_pipelines import aggregate
from autopo_pipelines.aggregate import (
    REJECTS_FILE,
    ROWS_FILE,
    STALE_TEMPORARY_AGE_S,
    OutputWriteError,
    Part,
    read_part_meta,
    write_day_outputs,
    write_part,
)
from autopo_pipelines.config import AggregationConfig
from autopo_pipelines.migrations import apply_migrations
from autopo_pipelines.pipelines import stock_health as sh
from autopo_pipelines.tabular import REJECT_COLUMNS, SkippedRows
from autopo_pipelines.transform import FileOutcome
from autopo_pipelines.warehouse import LoadConnectionError, LoadError, replace_date_rows

pytestmark = pytest.mark.integration

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
TABLE = sh.TRANSFORM.snapshot.name
COLUMNS = list(sh.TRANSFORM.snapshot.columns)
DAY = dt.date(2024, 12, 4)
OUTPUTS = ("20241204.csv", "20241204_m2.csv", "20241204_emergency.csv", "20241204_rejects.csv")


# --- rows ---------------------------------------------------------------------------------


def stock_outcome(store: str, n: int, rejects: int = 0) -> FileOutcome:
    """A store file's transformed rows, with the stock_health columns and dtypes, built without a loop."""
    i = np.arange(n)
    sku = pd.Series(i).map("{:07d}".format)
    status = np.array(["healthy", "low", "critical", "out_of_stock", "overstock"])[i % 5]
    stock = (i % 50).astype("float64") * (status != "out_of_stock")
    avg = ((i * 7) % 90) / 30.0
    rows = pd.DataFrame(
        {
            "snapshot_date": DAY,
            "store_id": store,
            "sku": sku,
            "product_name": "Product " + sku,
            "category": "Grocery",
            "supplier_id": "SUP-" + pd.Series(i % 3).astype(str),
            "supplier_name": "Supplier " + pd.Series(i % 3).astype(str),
            "stock_on_hand": stock,
            "sales_qty": avg * 30,
            "avg_daily_sales": avg,
            "days_of_cover": np.where(avg > 0, stock / np.where(avg > 0, avg, 1), np.nan),
            "lead_time_days": 14.0,
            "reorder_point": avg * 21,
            "target_stock": avg * 28,
            "on_order_qty": 0.0,
            "suggested_order_qty": np.maximum(avg * 28 - stock, 0),
            "status": status,
            "emergency": np.isin(status, ["out_of_stock", "critical"]),
            "unit_cost": 1.25,
            "stock_value": stock * 1.25,
            "source_file": f"{store}_stock_20241204.xlsx",
        },
        columns=COLUMNS,
    )
    bad = pd.DataFrame(
        {
            "source_file": f"{store}_stock_20241204.xlsx",
            "sheet": "Stock",
            "row_number": np.arange(rejects, dtype="int64") + 2,
            "reason": "column 'Stok' (stock_on_hand): not a number (got 'abc')",
            "raw_values": '{"Kode Barang": "X1", "Stok": "abc"}',
        },
        columns=REJECT_COLUMNS,
    )
    return FileOutcome(rows=rows, rejects=bad, sheet="Stock", rows_in=n + rejects, skipped=SkippedRows())


def write_big_part(directory: str, n: int) -> None:
    """The per-file step's write, as the killed process runs it (this file run as a script: see the end)."""
    write_part(Path(directory), stock_outcome("S1", n), {"file_name": "S1_stock_20241204.xlsx", "partition": "S1"})


# --- 1. PostgreSQL stopped during a load ------------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster(pg_base_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A cluster only these tests use: they shut it down, which the session cluster must never be.

    In pg_base_dir, not tmp_path: as root the server runs as a service account that must be
    able to reach its data dir, and pytest's temporary root is private to root.
    durable: a commit must survive the crash these tests cause, as on a real server.
    """
    server = EmbeddedPostgres(pg_base_dir / f"faults-{uuid.uuid4().hex[:8]}")
    server.start()
    try:
        apply_migrations(server.url, MIGRATIONS_DIR)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def cluster(own_cluster: EmbeddedPostgres) -> EmbeddedPostgres:
    """The module's cluster, running (an earlier test may have stopped it) and with empty tables."""
    own_cluster.start()
    with psycopg.connect(own_cluster.url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}, snapshot_loads")
    return own_cluster


def write_snapshot_csv(path: Path, n: int, source: str) -> Path:
    """A day's CSV as aggregate writes it (same columns, same value forms), fast enough for 100k rows."""
    day = DAY.isoformat()
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        handle.writelines(
            f"{day},S{i % 7:03d},{i:07d},Product {i},Grocery,SUP-{i % 3},Supplier {i % 3},{i % 50},{i % 90},"
            f"{(i % 90) / 30:.4f},,14,21,28,0,0,healthy,false,1.25,{(i % 50) * 1.25},{source}\n"
            for i in range(n)
        )
    return path


def load(url: str, path: Path) -> int:
    return replace_date_rows(url, table=TABLE, date_column="snapshot_date", date=DAY, csv_path=path, columns=COLUMNS)


def date_state(url: str) -> tuple[int, set[str], tuple[object, ...] | None]:
    """The date's row count and source files, and its snapshot_loads record."""
    with psycopg.connect(url) as conn:
        count, sources = conn.execute(
            f"SELECT count(*), array_agg(DISTINCT source_file) FROM {TABLE} WHERE snapshot_date = %s", (DAY,)
        ).fetchone() or (0, None)
        record = conn.execute(
            "SELECT rows, loaded_at FROM snapshot_loads WHERE table_name = %s AND snapshot_date = %s", (TABLE, DAY)
        ).fetchone()
    return int(count), set(sources or []), record


def shut_down_immediately(server: EmbeddedPostgres) -> None:
    """What `pg_ctl stop -m immediate` does, and what a crash looks like to clients: SIGQUIT the postmaster."""
    pid = int((server.pgdata / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while server.is_running():
        assert time.monotonic() < deadline, f"PostgreSQL (pid {pid}) did not stop"
        time.sleep(0.01)


def test_server_stopped_during_the_copy_keeps_the_previous_rows_and_a_retry_loads(
    cluster: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = cluster.url
    assert load(url, write_snapshot_csv(tmp_path / "previous.csv", 100, "previous.xlsx")) == 100
    before = date_state(url)
    assert before[:2] == (100, {"previous.xlsx"})
    # 100k rows (12 MB): the COPY runs for a few hundred milliseconds, the watcher sees it in milliseconds.
    replacement = write_snapshot_csv(tmp_path / "replacement.csv", 100_000, "replacement.xlsx")

    stopped: list[str] = []

    def stop_during_copy() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as watcher:
                deadline = time.monotonic() + 30
                while not watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY %'"
                ).fetchone()[0]:  # type: ignore[index]
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.002)
            shut_down_immediately(cluster)
            stopped.append("during the COPY")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            stopped.append(f"watcher failed: {exc!r}")

    watcher = threading.Thread(target=stop_during_copy)
    watcher.start()
    try:
        with pytest.raises(LoadError) as info:
            load(url, replacement)
    finally:
        watcher.join(60)
    assert stopped == ["during the COPY"]
    error = info.value
    assert isinstance(error, LoadConnectionError)
    message = str(error)
    assert message.startswith(f"the database connection was lost while loading {TABLE} for 2024-12-04 from ")
    assert str(replacement) in message
    assert "the date keeps its previous rows, and the load can be retried" in message
    assert isinstance(error.__cause__, psycopg.OperationalError), "the original error stays chained"

    cluster.start()
    # Nothing half-written: the date's rows and its load record are the previous load's, exactly.
    assert date_state(url) == before

    assert load(url, replacement) == 100_000
    count, sources, record = date_state(url)
    assert (count, sources) == (100_000, {"replacement.xlsx"})
    assert record is not None and before[2] is not None
    assert record[0] == 100_000 and record[1] > before[2][1]  # type: ignore[operator]


def test_load_with_the_server_down_names_the_table_and_date(cluster: EmbeddedPostgres, tmp_path: Path) -> None:
    url = cluster.url
    load(url, write_snapshot_csv(tmp_path / "previous.csv", 10, "previous.xlsx"))
    before = date_state(url)
    cluster.stop()
    with pytest.raises(LoadConnectionError) as info:
        load(url, write_snapshot_csv(tmp_path / "new.csv", 20, "new.xlsx"))
    message = str(info.value)
    assert message.startswith(f"cannot connect to the database to load {TABLE} for 2024-12-04: ")
    assert message.endswith(
        "nothing was changed, the date keeps its previous rows; retry the load when the database is reachable"
    )
    assert "\n" not in message, "one line in the task log"
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    cluster.start()
    assert date_state(url) == before


# --- 2. The transform process killed mid-file ---------------------------------------------------


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writer_killed_mid_part_leaves_no_part_and_the_rerun_writes_it_whole(tmp_path: Path) -> None:
    parts = tmp_path / "intermediate" / "stock_health" / "20241204" / "parts"
    directory = parts / "S1_stock_20241204.xlsx.0123456789abcdef"
    rows = 600_000  # about 25 MB of Parquet: writing it takes a few hundred milliseconds
    writer = subprocess.Popen([sys.executable, __file__, str(directory), str(rows)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # The staging directory appears when write_part starts writing Parquet into it.
        while not (parts.is_dir() and any(p.name.startswith(f".{directory.name}.") for p in parts.iterdir())):
            assert writer.poll() is None, f"the writer ended before writing: {writer.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the writer never started its part"
            time.sleep(0.001)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL, "the writer finished before the kill: make the part bigger"

    # Nothing under the part's name, so nothing partial can be aggregated; only the hidden staging dir is left.
    assert not directory.exists()
    assert read_part_meta(directory) is None
    leftovers = hidden(parts)
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{directory.name}.")
    assert f"-{writer.pid}." in leftovers[0], "the staging dir names its writer"

    started = time.monotonic()
    write_big_part(str(directory), rows)
    meta = read_part_meta(directory)
    assert meta is not None and meta["rows_out"] == rows
    assert pq.read_metadata(directory / ROWS_FILE).num_rows == rows
    assert pq.read_metadata(directory / REJECTS_FILE).num_rows == 0
    # The killed writer's staging dir went when the new part was written: its pid is dead.
    assert [p.name for p in parts.iterdir()] == [directory.name]
    assert time.monotonic() - started < 10


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)
    return process.pid


def test_only_stale_part_temporaries_are_removed(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    name = "S2_stock_20241204.xlsx.0123456789abcdef"
    here = aggregate._host_tag()
    elsewhere = "ffffffff" if here != "ffffffff" else "00000000"
    hour_ago = time.time() - STALE_TEMPORARY_AGE_S - 60
    cases = {
        # name: (age in the past, removed?)
        f".{name}.{here}-{dead_pid()}.abcd1234": (None, True),  # killed writer on this machine
        f".{name}.old.{here}-{dead_pid()}": (None, True),  # killed between the two renames
        f".{name}.{here}-{os.getpid()}.abcd1234": (None, False),  # a live writer
        f".{name}.{elsewhere}-{dead_pid()}.abcd1234": (None, False),  # another machine: may be alive
        f".{name}.{elsewhere}-1.efgh5678": (hour_ago, True),  # ... until it is an hour old
        f".{name}.k3j4h5g6": (hour_ago, True),  # an earlier version's staging dir, old
        f".{name}.z9y8x7w6": (None, False),  # ... and a recent one
        f".{name}.old.4242": (hour_ago, True),
        ".not-a-part-temporary": (hour_ago, False),
        "S3_stock_20241204.xlsx.fedcba9876543210": (hour_ago, False),  # a part, however old
    }
    for entry, (when, _) in cases.items():
        (parts / entry).mkdir(parents=True)
        (parts / entry / ROWS_FILE).write_bytes(b"partial")
        if when is not None:
            os.utime(parts / entry, (when, when))
    write_part(parts / name, stock_outcome("S2", 10), {"file_name": "S2_stock_20241204.xlsx", "partition": "S2"})
    kept = {entry for entry, (_, removed) in cases.items() if not removed}
    assert {p.name for p in parts.iterdir()} == kept | {name}


# --- 3. The data root's disk full while writing the day's outputs -----------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs as the data root; unmounted whatever happens."""
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip(f"mounting a tmpfs needs root (CAP_SYS_ADMIN); the tests run as uid {os.geteuid()}")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount/umount are not installed, so no tmpfs can be mounted")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: `mount -t tmpfs` failed: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            # Still busy (an open file of a failed test): detach it now, the kernel frees it when closed.
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def run_day(parts: list[Part], seeds: Path) -> aggregate.DayOutputs:
    return write_day_outputs(
        parts,
        seeds_dir=seeds,
        date=DAY,
        definition=sh.TRANSFORM,
        settings=sh.StockHealthSettings(),
        aggregation=AggregationConfig(files_per_batch=1),
    )


def make_parts(intermediate: Path, stores: int, rows: int, rejects: int) -> list[Part]:
    parts = []
    for k in range(stores):
        store = f"S{k + 1}"
        directory = intermediate / "parts" / f"{store}_stock_20241204.xlsx.{k:016x}"
        meta = write_part(
            directory,
            stock_outcome(store, rows, rejects),
            {"file_name": f"{store}_stock_20241204.xlsx", "partition": store, "store_id": store},
        )
        parts.append(Part(directory=directory, meta=meta))
    return parts


def disk_bytes(path: Path) -> int:
    """What a file takes on the disk: tmpfs counts whole pages."""
    return path.stat().st_blocks * 512


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def fill_up(root: Path, leave_free: int) -> Path:
    """Something else fills the disk, up to ``leave_free`` bytes."""
    filler = root / "filler.bin"
    size = free_bytes(root) - leave_free
    assert size > 0
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, size)
    assert free_bytes(root) == leave_free
    return filler


@pytest.mark.parametrize(
    ("previous", "runs_out_at"),
    [
        (False, "20241204.csv"),
        (True, "20241204.csv"),
        # Everything but the rejects file fits (its bytes wait in the writer's buffer until the end):
        # the day fails with all previous outputs in place, as every output is complete on the disk
        # before the first is renamed in; never a new D.csv next to the previous day's other files.
        (True, "20241204_rejects.csv"),
    ],
)
def test_full_disk_while_writing_the_days_outputs(small_disk: Path, previous: bool, runs_out_at: str) -> None:
    root = small_disk
    intermediate = root / "intermediate" / "stock_health" / "20241204"
    seeds = root / "seeds" / "stock_health"
    # Three stores of 4000 rows: a D.csv of about 1.4 MB; 2 rejects each, so the rejects file stays
    # in the writer's buffer until it is flushed, at the very end.
    parts = make_parts(intermediate, stores=3, rows=4000, rejects=2)

    # The sizes of the complete outputs, measured on this very disk.
    trial = run_day(parts, root / "trial")
    needed = {name: disk_bytes(root / "trial" / name) for name in OUTPUTS}
    expected = {name: (root / "trial" / name).read_bytes() for name in OUTPUTS}
    shutil.rmtree(root / "trial")
    assert trial.rows_out == 12_000 and trial.rows_rejected == 6

    before: dict[str, bytes] = {}
    # The step deletes the previous rejects file first, which gives its space back.
    freed = 0
    if previous:
        run_day(parts[:1], seeds)  # an earlier, smaller version of the day
        before = {p.name: p.read_bytes() for p in seeds.iterdir()}
        assert sorted(before) == sorted(OUTPUTS)
        freed = disk_bytes(seeds / "20241204_rejects.csv")
    if runs_out_at == "20241204.csv":
        leave = 64 * 1024
    else:
        leave = sum(needed.values()) - needed[runs_out_at] - freed
    filler = fill_up(root, leave)

    with pytest.raises(OutputWriteError) as info:
        run_day(parts, seeds)
    error = info.value
    path = seeds / runs_out_at
    assert str(error) == (
        f"cannot write {path}: the disk is full (no space left on device); {runs_out_at} was not replaced "
        f"and no partial file was left; free space on the disk of {seeds} and run the step again"
    )
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC and error.filename == str(path)
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC

    # No temporary file left, nothing new renamed in; the previous outputs whole and unchanged,
    # except the rejects file, whose absence says the day did not finish.
    after = {p.name: p.read_bytes() for p in seeds.iterdir()}
    assert hidden(seeds) == []
    if previous:
        assert after == {name: data for name, data in before.items() if name != "20241204_rejects.csv"}
    else:
        assert after == {}
    # Every byte the failed run wrote was given back.
    assert free_bytes(root) == leave + freed

    # With space again, the same step writes the whole day.
    filler.unlink()
    result = run_day(parts, seeds)
    assert result.rows_out == 12_000
    assert {p.name: p.read_bytes() for p in seeds.iterdir()} == expected


if __name__ == "__main__":
    # The killed writer of test_writer_killed_mid_part_leaves_no_part_and_the_rerun_writes_it_whole:
    # python test_faults.py DIRECTORY ROWS
    write_big_part(sys.argv[1], int(sys.argv[2]))
