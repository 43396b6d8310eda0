"""dags/.airflowignore: the DAG processor walks the DAG file only, and still finds every pipeline's DAG."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILE = DAGS_DIR / "autopo_pipelines_dags.py"
# Would be a DAG if the processor parsed it: it must not.
STRAY_DAG = 'from airflow.sdk import DAG\n\nwith DAG("stray_dag", schedule=None):\n    pass\n'


def walked(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], set[str]]:
    """The files Airflow's DAG discovery lists in ``directory`` (what the DAG processor and a DagBag
    parse), and the folders it walked to find them."""
    from airflow.utils.file import list_py_file_paths

    visited: set[str] = set()
    real_walk = os.walk

    def walk(top: Any, *args: Any, **kwargs: Any) -> Iterator[tuple[str, list[str], list[str]]]:
        for root, dirs, files in real_walk(top, *args, **kwargs):
            visited.add(str(root))
            yield root, dirs, files

    with monkeypatch.context() as patch:
        patch.setattr(os, "walk", walk)
        files = list_py_file_paths(str(directory), safe_mode=False)
    return sorted(files), visited


def test_the_ignore_file_is_in_the_syntax_airflow_reads_it_with() -> None:
    from airflow.configuration import conf

    assert conf.get("core", "dag_ignore_file_syntax") == "glob"
    assert (DAGS_DIR / ".airflowignore").is_file()


def test_the_dag_processor_walks_only_the_dag_file(monkeypatch: pytest.MonkeyPatch) -> None:
    files, visited = walked(DAGS_DIR, monkeypatch)
    assert files == [str(DAG_FILE)]
    assert visited == {str(DAGS_DIR)}  # configs/ (and any __pycache__/) not even listed


def test_anything_else_in_the_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of dags/ with what a deployment may leave there: none of it is walked or parsed."""
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    shutil.copytree(DAGS_DIR, dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "configs" / "stray_dag.py").write_text(STRAY_DAG, encoding="utf-8")
    (dags / "__pycache__").mkdir()
    (dags / "__pycache__" / "stray_dag.py").write_text(STRAY_DAG, encoding="utf-8")
    (dags / "scratch").mkdir()
    (dags / "scratch" / "stray_dag.py").write_text(STRAY_DAG, encoding="utf-8")
    (dags / "stray_dag.py").write_text(STRAY_DAG, encoding="utf-8")
    (dags / "notes.md").write_text("not a DAG", encoding="utf-8")

    files, visited = walked(dags, monkeypatch)
    assert files == [str(dags / DAG_FILE.name)]
    assert visited == {str(dags)}

    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(dags / "configs"))
    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["po_snapshots", "stock_health"]


def test_the_dagbag_of_the_folder_finds_both_pipelines_in_the_dag_file(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    assert sorted(dag_bag.dag_ids) == ["po_snapshots", "stock_health"]
    assert {Path(dag.fileloc) for dag in dag_bag.dags.values()} == {DAG_FILE}
