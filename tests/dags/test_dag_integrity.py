"""Every pipeline config yields a DAG that Airflow itself can parse, and follows the policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autopo_pipelines.config import default_config_dir, load_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"


def dag_bag(dag_folder: Path) -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dag_folder))


def test_every_config_yields_a_dag_without_import_errors() -> None:
    bag = dag_bag(DAGS_DIR)
    assert bag.import_errors == {}
    configs = sorted(p.stem for p in default_config_dir().glob("*.yaml"))
    assert configs, "no pipeline configs found"
    assert sorted(bag.dag_ids) == configs


@pytest.mark.parametrize("name", sorted(load_configs(default_config_dir()).configs))
def test_dag_policy(name: str) -> None:
    dag = dag_bag(DAGS_DIR).dags[name]
    assert "autopo" in dag.tags and name in dag.tags
    assert dag.max_active_runs == 1
    assert dag.catchup is False
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
        assert task.owner and task.owner != "airflow", task.task_id
        assert task.retries >= 1, task.task_id
    assert dag.get_task("wait_for_files").mode in ("reschedule", "poke")
    assert dag.get_task("transform_file").pool == name


def test_a_broken_config_does_not_hide_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(default_config_dir(), configs)
    good = sorted(p.stem for p in default_config_dir().glob("*.yaml"))
    (configs / "broken.yaml").write_text(
        "name: broken\ntransform: nowhere.at_all\nfile_pattern: '(?P<date>x)'\ncolumns: {}\n"
    )
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    with pytest.warns(UserWarning, match=r"broken\.yaml: columns"):
        bag = dag_bag(DAGS_DIR)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == good


def test_parsing_touches_no_network_or_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAG files are parsed every 30 s: building them must not connect anywhere."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("DAG parsing opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    bag = dag_bag(DAGS_DIR)
    assert bag.import_errors == {}
