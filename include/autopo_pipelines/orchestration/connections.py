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


# The connection's extras that are libpq parameters (TLS, timeouts, a name on the server, server
# options), as the postgres provider's hook passes them; anything else in the extras is the provider's own.
LIBPQ_EXTRAS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
)


def conninfo_of(conn: Any) -> str:
    """libpq address of an Airflow connection (host, port, login, password, schema = database), with
    its libpq extras (sslmode and the rest of LIBPQ_EXTRAS): a warehouse that requires TLS gets it."""
    params = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or None,
    }
    extras = getattr(conn, "extra_dejson", None) or {}
    params.update({key: str(extras[key]) for key in LIBPQ_EXTRAS if extras.get(key) not in (None, "")})
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})
