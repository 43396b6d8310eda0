"""Connection ids and how a task turns them into a database address."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import make_conninfo

WAREHOUSE_CONN_ID = "autopo_db"
# How Airflow spells that connection as an environment variable.
WAREHOUSE_CONN_ENV = f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"


class WarehouseConnectionMissing(LookupError):
    """The warehouse connection is not defined: a deployment's mistake that no retry can mend by itself."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        super().__init__(missing_connection_message(conn_id))


def missing_connection_message(conn_id: str) -> str:
    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    return (
        f"the warehouse connection {conn_id!r} is not defined: add it in Admin -> Connections "
        f"(type postgres) or set {env}=postgresql://USER:PASSWORD@HOST:5432/DATABASE for every Airflow component"
    )


def warehouse_conninfo(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """The warehouse's libpq address, from the Airflow connection; never a guess.

    A production worker must not write to some other database because a connection is
    missing, so a missing one is an error that names it and says how to define it.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise WarehouseConnectionMissing(conn_id) from None
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
