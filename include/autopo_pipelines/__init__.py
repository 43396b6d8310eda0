"""Business logic of the autopo pipelines: pure functions over files and DataFrames.

Nothing in this package imports Airflow; the DAG factory in
``autopo_pipelines.airflow_dags`` is the only bridge and lives apart.
"""
