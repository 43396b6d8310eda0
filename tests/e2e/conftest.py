from __future__ import annotations

import pytest

from airflow_env import migrate_airflow_db


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The session's Airflow metadata database, for DAG runs through dag.test()."""
    migrate_airflow_db()
