"""Every pipeline config yields a DAG that Airflow itself can parse, and follows the policy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autopo_pipelines.config import default_config_dir, load_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"


def parse_dags(dag_folder: Path) -> Any:
    """A DagBag of its own, parsed now; the tests that only read this checkout's DAGs share ``dag_bag``."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dag_folder))


def test_every_config_yields_a_dag_without_import_errors(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    configs = sorted(p.stem for p in default_config_dir().glob("*.yaml"))
    assert configs == ["po_snapshots", "stock_health"]
    assert sorted(dag_bag.dag_ids) == configs


def test_each_pipeline_has_its_own_pool_schedule_and_pattern(dag_bag: Any) -> None:
    configs = load_configs(default_config_dir()).configs
    assert len({c.pool for c in configs.values()}) == len(configs)
    assert len({c.file_pattern for c in configs.values()}) == len(configs)
    for name, config in configs.items():
        assert dag_bag.dags[name].get_task("transform_file").pool == config.pool


def test_every_task_of_a_pipeline_goes_to_its_own_celery_queue(dag_bag: Any) -> None:
    configs = load_configs(default_config_dir()).configs
    assert {name: config.queue for name, config in configs.items()} == {
        "po_snapshots": "po_snapshots",
        "stock_health": "stock_health",
    }
    for name, config in configs.items():
        assert {task.task_id: task.queue for task in dag_bag.dags[name].tasks} == {
            task.task_id: config.queue for task in dag_bag.dags[name].tasks
        }


@pytest.mark.parametrize("name", sorted(load_configs(default_config_dir()).configs))
def test_dag_policy(name: str, dag_bag: Any) -> None:
    from airflow.sdk import TriggerRule

    config = load_configs(default_config_dir()).configs[name]
    dag = dag_bag.dags[name]
    assert "autopo" in dag.tags and name in dag.tags
    assert dag.max_active_runs == config.airflow.max_active_runs
    assert dag.catchup is config.airflow.catchup
    assert dag.params["date"] is None
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait_for_files",
        "list_files",
        "transform_file",
        "aggregate_and_flush",
        "load_snapshot",
        "check_day",
    ]
    for task in dag.tasks:
        assert task.owner == config.airflow.owner, task.task_id
        assert task.retries == config.airflow.retries, task.task_id
        assert task.retry_delay.total_seconds() == config.airflow.retry_delay_seconds, task.task_id
        assert task.retry_exponential_backoff, task.task_id
    assert dag.get_task("wait_for_files").mode == "reschedule"
    transform = dag.get_task("transform_file")
    assert transform.pool == config.pool
    assert transform.map_index_template == "{{ file_name }}"
    # The day is aggregated and judged even when some files failed.
    assert dag.get_task("aggregate_and_flush").trigger_rule == TriggerRule.ALL_DONE
    assert dag.get_task("check_day").trigger_rule == TriggerRule.ALL_DONE
    assert dag.get_task("load_snapshot").trigger_rule == TriggerRule.ALL_SUCCESS
    assert dag.get_task("check_day").upstream_task_ids == {"load_snapshot", "transform_file"}


def test_a_broken_config_does_not_hide_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(default_config_dir(), configs)
    good = sorted(p.stem for p in default_config_dir().glob("*.yaml"))
    (configs / "broken.yaml").write_text(
        "name: broken\ntransform: nowhere.at_all\nfile_pattern: '(?P<date>x)'\ncolumns: {}\n"
    )
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    # Its own parse: other configs than the session's bag, and the warning is raised while parsing.
    with pytest.warns(UserWarning, match=r"broken\.yaml: columns"):
        bag = parse_dags(DAGS_DIR)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == good


PARSE_WITHOUT_CONNECTING = """
import socket, sys
import psycopg

def refuse(*args, **kwargs):
    raise SystemExit("DAG parsing tried to connect: " + repr(args)[:200])

psycopg.connect = refuse
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(sorted(bag.dag_ids))
"""


def test_parsing_touches_no_network_or_database() -> None:
    """DAG files are parsed every 30 s: building them must connect nowhere (fresh process, nothing cached)."""
    result = subprocess.run(
        [sys.executable, "-c", PARSE_WITHOUT_CONNECTING, str(DAGS_DIR)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == repr(sorted(load_configs(default_config_dir()).configs))
