"""Registers the tracking listeners and hook with Airflow."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from autopo_tracking import listeners


class AutopoTrackingPlugin(AirflowPlugin):
    name = "autopo_tracking"
    listeners = [listeners]
