"""plugins/.airflowignore and the plugin's lazy dashboard: what every Airflow process loads of the plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def test_airflows_plugin_loader_imports_only_the_plugin_file() -> None:
    # The loader of the scheduler, the API server and the task SDK alike: every other .py file would be
    # imported as a top-level module of its own ("app", "models", "events"...) in every process.
    from airflow._shared.module_loading import find_path_from_directory

    found = sorted(find_path_from_directory(str(PLUGINS_DIR), ".airflowignore", "glob"))
    assert found == [str(PLUGINS_DIR / "autopo_tracking" / "plugin.py")]


def test_the_plugin_registers_listeners_the_nav_entry_and_the_dashboard_without_importing_it() -> None:
    # A fresh interpreter, as a task process: loading the plugin leaves FastAPI's security dependencies
    # and the dashboard unimported until Airflow's API server asks for fastapi_apps.
    script = """
import sys
from autopo_tracking.plugin import AutopoTrackingPlugin as P
from autopo_tracking import listeners
assert P.listeners == [listeners]
assert [v["url_route"] for v in P.external_views] == ["autopo"]
loaded = [m for m in ("autopo_tracking.dashboard.app", "airflow.api_fastapi.core_api.security") if m in sys.modules]
assert not loaded, loaded
[mounted] = P.fastapi_apps
assert mounted["url_prefix"] == "/autopo" and type(mounted["app"]).__name__ == "FastAPI"
assert "autopo_tracking.dashboard.app" in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_a_dashboard_that_cannot_be_built_leaves_the_api_server_its_other_apps() -> None:
    script = """
import sys, types
broken = types.ModuleType("autopo_tracking.dashboard.app")
def fail(name):
    raise ImportError("a missing template package")
broken.__getattr__ = fail
sys.modules["autopo_tracking.dashboard.app"] = broken
from autopo_tracking.plugin import AutopoTrackingPlugin as P
assert P.fastapi_apps == []
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
