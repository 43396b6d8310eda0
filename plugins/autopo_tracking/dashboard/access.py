"""Who may see and retry what: Airflow's auth manager decides, per pipeline DAG.

A pipeline's rows are shown to a user who may read its DAG (the auth manager's
``get_authorized_dag_ids``, as Airflow's own DAG list asks); a retry is offered to a user who may
clear its task instances (``is_authorized_dag`` with PUT on TASK_INSTANCE, the check Airflow's
``clearTaskInstances`` makes again when the clear is sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from fastapi import HTTPException, status

from autopo_pipelines.config import PipelineConfig, config_for, default_config_dir


def pipeline_configs() -> dict[str, PipelineConfig]:
    """The valid pipeline configs (a broken one is left out here; the DAG processor reports it), each
    read again only when its file changes (``config_for``): a request costs a folder listing."""
    directory = default_config_dir()
    found = (config_for(path.stem, directory) for path in sorted(directory.glob("*.yaml")))
    return {config.name: config for config in found if config is not None}


def readable(user: Any, configs: dict[str, PipelineConfig]) -> list[PipelineConfig]:
    """The pipelines whose DAG the user may read, and its runs and task instances (what the dashboard
    shows of it: the runs, the files' errors and their tasks' logs), in name order."""
    from airflow.models.dag import DagModel

    manager = get_auth_manager()
    allowed = manager.get_authorized_dag_ids(user=user, method="GET")
    found = []
    for name in sorted(configs):
        if name not in allowed:
            continue
        details = DagDetails(id=name, team_name=DagModel.get_team_name(name))
        if all(
            manager.is_authorized_dag(method="GET", access_entity=entity, details=details, user=user)
            for entity in (DagAccessEntity.RUN, DagAccessEntity.TASK_INSTANCE)
        ):
            found.append(configs[name])
    return found


def can_retry(user: Any, dag_id: str) -> bool:
    from airflow.models.dag import DagModel

    return bool(
        get_auth_manager().is_authorized_dag(
            method="PUT",
            access_entity=DagAccessEntity.TASK_INSTANCE,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
            user=user,
        )
    )


def chosen(
    pipeline: str | None, visible: Sequence[PipelineConfig], configs: dict[str, PipelineConfig]
) -> list[PipelineConfig]:
    """The pipelines a request asks about: the one named (404 when there is no such pipeline, 403 when
    the user may not read it) or every one the user may read."""
    if pipeline is None:
        return list(visible)
    if pipeline not in configs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no pipeline {pipeline!r}")
    for config in visible:
        if config.name == pipeline:
            return [config]
    raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read the DAG {pipeline!r}")
