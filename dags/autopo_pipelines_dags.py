"""Airflow DAG file: one DAG per pipeline config in dags/configs/, built by the factory."""

from autopo_pipelines.orchestration.dag_factory import build_dags

globals().update(build_dags())
