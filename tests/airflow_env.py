"""A private Airflow home for the test session, set before anything imports Airflow.

Airflow reads its configuration once, at import; the root conftest imports
this module first so that every test sees the same throwaway home, this
checkout's DAGs and plugins, and no example DAGs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="autopo-airflow-"))
# Removed when the session's process ends: every session made one more in /tmp before.
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW_CONFIG"] = str(REPO_ROOT / "airflow.cfg")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AUTOPO_CONFIG_DIR"] = str(REPO_ROOT / "dags" / "configs")
# Airflow puts the plugins folder on sys.path when it loads plugins; the tests import the plugin's
# package (autopo_tracking) as installed with the project (pyproject.toml: packages under plugins/).

_migrated = False


def migrate_airflow_db() -> None:
    """Create the session's Airflow metadata database (SQLite), once."""
    global _migrated
    if _migrated:
        return
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    _migrated = True
