"""What the end-to-end tests share: a pipeline's DAG as the factory builds it, and reading its results."""

from __future__ import annotations

import csv
import datetime as dt
import functools
from fractions import Fraction
from pathlib import Path
from typing import Any

import psycopg

from autopo_pipelines.config import default_config_dir, load_config_file


def pipeline_dag(name: str, config_dir: Path | None = None) -> Any:
    """The pipeline's DAG from its config, without retries: a bug must fail the test now,
    not wait out a five-minute retry delay.

    Built once per session for a config file and its content (every test of the checkout's configs
    shares it; dag.test() runs leave a DAG object as it was, and the tests never change it)."""
    path = (config_dir or default_config_dir()) / f"{name}.yaml"
    return built_dag(path, path.read_text(encoding="utf-8"))


@functools.cache
def built_dag(path: Path, text: str) -> Any:
    """``path``'s DAG as built when it held ``text``: an edited or another config is built anew."""
    from autopo_pipelines.orchestration.dag_factory import build_dag

    config = load_config_file(path)
    settings = {"retries": 0}
    if config.airflow.files_per_task == "auto":
        # One map index per file, named after it, whatever the day's size: the tests name each file's
        # task. Batches have their own tests (test_many_files_day, unit tests of files_per_task_for).
        settings["files_per_task"] = 1
    config = config.model_copy(update={"airflow": config.airflow.model_copy(update=settings)})
    # dag.test() cannot finish a successful run of a DAG with a Deadline Alert in Airflow 3.3.2
    # (see dag_factory.DEADLINE_ALERTS_ENV); the system tests cover deadlines with the real scheduler.
    return build_dag(config, with_deadlines=False)


def run_day(name: str, date: dt.date, config_dir: Path | None = None) -> Any:
    """One business date through the pipeline's DAG with dag.test(); the finished DagRun."""
    return pipeline_dag(name, config_dir).test(run_conf={"date": date.isoformat()})


def task_states(run: Any) -> dict[tuple[str, str | int], Any]:
    """A finished run's task states, keyed (task_id, file name) for mapped tasks, (task_id, -1) for the others."""
    return {(ti.task_id, ti.rendered_map_index or ti.map_index): ti.state for ti in run.get_task_instances()}


def query(url: str, sql: str, params: tuple[object, ...] | None = None) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def fmt(value: object) -> str:
    """The CSV contract: blanks empty, booleans true/false, dates ISO, floats to 4 decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Fraction):
        rounded = round(float(value), 4) + 0.0
        return str(int(rounded)) if rounded.is_integer() else repr(rounded)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
