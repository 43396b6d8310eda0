"""An auth manager for the dashboard's tests: Airflow's SimpleAuthManager (its users, roles, passwords file,
login and JWTs), with some users limited to some DAGs.

SimpleAuthManager's roles grant every DAG alike; a deployment's auth manager (FAB, Keycloak, ...) can grant
one DAG and not another, and the dashboard must honour that. Configured like Airflow's own:
``AIRFLOW__CORE__AUTH_MANAGER=dashboard_auth.PerDagAuthManager``, and ``AUTOPO_TEST_DAG_LIMITS``, e.g.
``po_reader=po_snapshots;other=a|b``: those users may reach only those DAGs (their role still decides what
they may do there); and ``AUTOPO_TEST_NO_RUNS``, e.g. ``dag_only``: those users may read DAGs but not
their runs or task instances."""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

LIMITS_ENV = "AUTOPO_TEST_DAG_LIMITS"
NO_RUNS_ENV = "AUTOPO_TEST_NO_RUNS"


def no_runs() -> set[str]:
    """Users who may read DAGs but not their runs or task instances (as a FAB role without "DAG Runs")."""
    return {name.strip() for name in os.environ.get(NO_RUNS_ENV, "").split(",") if name.strip()}


def dag_limits() -> dict[str, set[str]]:
    limits = {}
    for entry in filter(None, os.environ.get(LIMITS_ENV, "").split(";")):
        user, _, dags = entry.partition("=")
        limits[user.strip()] = {dag.strip() for dag in dags.split("|") if dag.strip()}
    return limits


class PerDagAuthManager(SimpleAuthManager):
    def is_authorized_dag(
        self,
        *,
        method: Any,
        user: SimpleAuthManagerUser,
        access_entity: Any = None,
        details: Any = None,
    ) -> bool:
        allowed = dag_limits().get(user.username)
        # details None asks about DAGs in general (may the user see the DAG list at all): the role decides.
        if allowed is not None and details is not None and details.id not in allowed:
            return False
        if access_entity is not None and access_entity.name in ("RUN", "TASK_INSTANCE") and user.username in no_runs():
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
