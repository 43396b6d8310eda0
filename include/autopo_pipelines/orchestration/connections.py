"""Connection ids and how a task turns them into a database address."""

from __future__ import annotations

import logging
from typing import Any

from psycopg.conninfo import make_conninfo

from autopo_pipelines.embedded_pg import EmbeddedPostgres, default_data_dir

WAREHOUSE_CONN_ID = "autopo_db"
# How Airflow spells that connection as an environment variable.
WAREHOUSE_CONN_ENV = f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"

log = logging.getLogger(__name__)


def warehouse_conninfo(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """The warehouse's libpq address: the Airflow connection, else the embedded cluster."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        cluster = EmbeddedPostgres(default_data_dir())
        log.warning("connection %r is not defined; using the embedded PostgreSQL in %s", conn_id, cluster.data_dir)
        cluster.start()
        return cluster.url
    return conninfo_of(conn)


def conninfo_of(conn: Any) -> str:
    """libpq address of an Airflow connection (host, port, login, password, schema = database)."""
    params = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or None,
    }
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})
