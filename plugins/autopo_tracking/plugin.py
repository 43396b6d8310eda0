"""Registers the tracking listeners and the dashboard with Airflow."""

from __future__ import annotations

import logging
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from autopo_tracking import listeners

log = logging.getLogger(__name__)

DASHBOARD_PREFIX = "/autopo"


class _DashboardApps:
    """``fastapi_apps``, built when Airflow asks for it. Every Airflow process loads the plugins (task
    processes too, for the listeners); only the API server asks for the apps, so only it pays for
    importing FastAPI's security dependencies, Jinja2 and the dashboard (about a second)."""

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        try:
            from autopo_tracking.dashboard.app import app
        except Exception:
            # Airflow's API server would not start at all: it serves on, without the dashboard.
            log.exception("autopo: the dashboard cannot be built; the API server goes on without /autopo")
            return []
        return [{"app": app, "url_prefix": DASHBOARD_PREFIX, "name": "autopo dashboard and admin API"}]


class AutopoTrackingPlugin(AirflowPlugin):
    name = "autopo_tracking"
    listeners = [listeners]
    fastapi_apps = _DashboardApps()
    # One entry in Airflow's navigation; the UI shows the page in its frame at /plugin/autopo.
    external_views = [
        {
            "name": "Stores",
            "href": DASHBOARD_PREFIX.lstrip("/") + "/",
            "url_route": "autopo",
            "destination": "nav",
        }
    ]
