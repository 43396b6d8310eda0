"""A day with more files than Airflow maps, through the real stock_health DAG (dag.test) into PostgreSQL.

Airflow refuses to map a task over more than ``[core] max_map_length`` items
(1024 by default): the API server fails the upstream task's push of the list.
One task per file would make a day of 1,025 store files fail at list_files. The
DAG batches the files instead (``airflow.files_per_task``, enlarged at run time
to stay under the limit). The limit is lowered to 4 here through Airflow's own
configuration (the environment), so ten small files are enough to show both.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import pytest
from dag_runs import query, run_day

from autopo_local.sample_day import write_store_file, write_supplier_master
from autopo_pipelines.config import default_config_dir
from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
MAX_MAP_LENGTH = 4


@pytest.fixture
def low_map_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Airflow's [core] max_map_length lowered the way an operator would, and seen by Airflow's conf."""
    from airflow.configuration import conf

    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", str(MAX_MAP_LENGTH))
    assert conf.getint("core", "max_map_length") == MAX_MAP_LENGTH
    return MAX_MAP_LENGTH


def store_name(number: int) -> str:
    return f"STORE-{number:03d}_stock_{DATE:%Y%m%d}.xlsx"


def write_day(layout: DataLayout, stores: int, seed: int = 7) -> list[Path]:
    """Small store files (a dozen SKUs each) in the inbox, with a supplier master."""
    rng = random.Random(seed)
    skus = [f"SKU-{i:04d}" for i in range(12)]
    write_supplier_master(layout.reference() / "suppliers.csv", skus, rng)
    return [
        write_store_file(layout.inbox("stock_health") / store_name(n), f"STORE-{n:03d}", DATE, skus, rng, style=n)
        for n in range(1, stores + 1)
    ]


def transform_instances(run: object) -> list[object]:
    tis = [ti for ti in run.get_task_instances() if ti.task_id == "transform_file"]  # type: ignore[attr-defined]
    return sorted(tis, key=lambda ti: ti.map_index)


def test_without_batching_airflow_refuses_the_day(
    data_layout: DataLayout,
    clean_tables: str,
    low_map_limit: int,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Why the pipeline batches: with one task per file (batching turned off here), a day of more
    files than the limit fails its listing task in Airflow itself, and no file is transformed."""
    from airflow.utils.state import DagRunState, TaskInstanceState

    from autopo_pipelines.day import listing

    monkeypatch.setattr(listing, "batch_size", lambda files, files_per_task, max_map_length: 1)
    write_day(data_layout, stores=low_map_limit + 1)

    run = run_day("stock_health", DATE)

    assert run.state == DagRunState.FAILED
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("list_files", -1)] == TaskInstanceState.FAILED
    # Never expanded: the one unmapped placeholder is all there is of it.
    assert {key: state for key, state in states.items() if key[0] == "transform_file"} == {
        ("transform_file", -1): TaskInstanceState.UPSTREAM_FAILED
    }
    assert query(clean_tables, "SELECT count(*) FROM stock_health_snapshots") == [(0,)]
    # Refused by Airflow's API server when list_files pushed the list, as the task's log says.
    assert "unmappable_return_value_length" in capfd.readouterr().out


def test_a_day_with_more_files_than_max_map_length_runs_in_batches(
    data_layout: DataLayout, clean_tables: str, low_map_limit: int
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    files = write_day(data_layout, stores=10)
    assert len(files) > low_map_limit

    run = run_day("stock_health", DATE)

    assert run.state == DagRunState.SUCCESS
    transforms = transform_instances(run)
    # 10 files over at most 4 tasks: 3 files each (files_per_task 1 enlarged), in listing order.
    assert len(transforms) <= low_map_limit
    assert [ti.state for ti in transforms] == [TaskInstanceState.SUCCESS] * 4
    assert [ti.rendered_map_index for ti in transforms] == [
        f"{store_name(1)} (+2 more)",
        f"{store_name(4)} (+2 more)",
        f"{store_name(7)} (+2 more)",
        store_name(10),
    ]
    listing = json.loads((data_layout.intermediate("stock_health", DATE) / "listing.json").read_text())
    assert listing["files_per_task"] == 3
    assert listing["batches"] == [
        [store_name(n) for n in (1, 2, 3)],
        [store_name(n) for n in (4, 5, 6)],
        [store_name(n) for n in (7, 8, 9)],
        [store_name(10)],
    ]

    # Every file's rows are in the table, and tracked under its task's map index.
    jobs = {
        name: (status, map_index, rows_out)
        for name, status, map_index, rows_out in query(
            clean_tables, "SELECT file_name, status, map_index, rows_out FROM pipeline_file_jobs"
        )
    }
    assert jobs == {
        store_name(n): ("completed", (n - 1) // 3, jobs[store_name(n)][2]) for n in range(1, len(files) + 1)
    }
    loaded = dict(
        query(
            clean_tables,
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY 1",
            (DATE,),
        )
    )
    assert loaded == {f"STORE-{n:03d}": jobs[store_name(n)][2] for n in range(1, len(files) + 1)}
    assert all(count > 0 for count in loaded.values())
    assert query(clean_tables, "SELECT status, total_files, processed_files, failed_files FROM pipeline_runs") == [
        ("completed", 10, 10, 0)
    ]


def test_a_bad_file_fails_its_batch_but_not_the_batchs_other_files(
    data_layout: DataLayout,
    clean_tables: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    # Three files per task from the config itself (the listeners read the same config).
    configs = tmp_path / "configs"
    shutil.copytree(default_config_dir(), configs)
    path = configs / "stock_health.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  files_per_task: auto\n" in text
    path.write_text(text.replace("  files_per_task: auto\n", "  files_per_task: 3\n"), encoding="utf-8")
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    write_day(data_layout, stores=5)
    bad = data_layout.inbox("stock_health") / store_name(2)
    bad.write_bytes(b"this is not a workbook")

    run = run_day("stock_health", DATE, configs)

    # check_day fails the run; the good files were loaded first.
    assert run.state == DagRunState.FAILED
    transforms = transform_instances(run)
    assert [(ti.rendered_map_index, ti.state) for ti in transforms] == [
        (f"{store_name(1)} (+2 more)", TaskInstanceState.FAILED),
        (f"{store_name(4)} (+1 more)", TaskInstanceState.SUCCESS),
    ]
    # The task's failure (in its log) names the bad file, with the file's own error.
    log = capfd.readouterr().out
    assert f"AirflowFailException: 1 of 3 files failed: {store_name(2)}: " in log

    loaded = dict(
        query(
            clean_tables,
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY 1",
            (DATE,),
        )
    )
    # STORE-003 comes after the bad file in the same batch: it was still transformed and loaded.
    assert set(loaded) == {"STORE-001", "STORE-003", "STORE-004", "STORE-005"}
    jobs = {
        name: (status, map_index, error)
        for name, status, map_index, error in query(
            clean_tables, "SELECT file_name, status, map_index, error FROM pipeline_file_jobs"
        )
    }
    status, map_index, error = jobs.pop(store_name(2))
    assert (status, map_index) == ("failed", 0)
    assert error.startswith(f"{store_name(2)}: ") and "1 of 3 files failed" not in error
    assert jobs == {
        store_name(1): ("completed", 0, None),
        store_name(3): ("completed", 0, None),
        store_name(4): ("completed", 1, None),
        store_name(5): ("completed", 1, None),
    }
    assert query(clean_tables, "SELECT status, processed_files, failed_files FROM pipeline_runs") == [
        ("completed_with_errors", 4, 1)
    ]
