"""The local stack: what serves a laptop and the test suite, never a production task.

An embedded PostgreSQL (``embedded_pg``), Airflow on this machine the way a user runs it
(``stack``: ``make up``/``make run``/``make airflow``), a generated sample day (``sample_day``),
the day's printed summary (``summary``) and a throwaway Airflow for the system tests and
``make bench`` (``throwaway_stack``). The runtime package ``autopo_pipelines`` never
imports this one; a test checks it.
"""
