"""The bridge to Airflow: the DAG factory and what its tasks need from Airflow.

Only this subpackage imports Airflow; everything it calls is plain Python.
"""
