from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def dag_bag() -> Any:
    """Airflow's DagBag of this checkout's dags/ with its own configs, parsed once for the session.

    Tests only read it; a test that needs other configs parses its own bag.
    """
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOPO_CONFIG_DIR", str(DAGS_DIR / "configs"))
        return DagBag(dag_folder=str(DAGS_DIR))
