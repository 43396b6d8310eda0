"""The project's Airflow plugin: keeps the tracking tables in step with what Airflow does.

Laid out like a provider package: ``hooks/`` for the tracking database,
``listeners`` for Airflow's events, ``plugin`` registering them.
"""
