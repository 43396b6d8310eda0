"""The warehouse's libpq address from its Airflow connection: nothing of the connection dropped."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from autopo_pipelines.orchestration.connections import conninfo_of


def test_the_connections_libpq_extras_reach_the_address() -> None:
    from airflow.sdk import Connection

    conn = Connection(
        conn_id="autopo_db",
        conn_type="postgres",
        host="db.example.com",
        port=5433,
        login="autopo",
        password="p w",
        schema="warehouse",
        extra='{"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem", "application_name": "autopo", '
        '"options": "-c statement_timeout=600000", "cursor": "dictcursor"}',
    )
    assert conninfo_to_dict(conninfo_of(conn)) == {
        "host": "db.example.com",
        "port": "5433",
        "user": "autopo",
        "password": "p w",
        "dbname": "warehouse",
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/ca.pem",
        "application_name": "autopo",
        "options": "-c statement_timeout=600000",
    }
