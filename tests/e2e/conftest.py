from __future__ import annotations

from pathlib import Path

import pytest

from airflow_env import migrate_airflow_db
from autopo_pipelines.layout import DataLayout


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The session's Airflow metadata database, for DAG runs through dag.test()."""
    migrate_airflow_db()


@pytest.fixture
def data_layout(tmp_path: Path, clean_tables: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> DataLayout:
    """A fresh data root, and the test database as the warehouse, where the DAG's tasks look for them."""
    layout = DataLayout(tmp_path / "data")
    monkeypatch.setenv("AUTOPO_DATA_DIR", str(layout.root))
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_DB", clean_tables)
    return layout
