#!/bin/bash
# The two databases of docker-compose.yaml's postgres service, made on the server's first start (the
# official postgres image runs /docker-entrypoint-initdb.d/* once, on an empty data volume):
#
#   airflow  Airflow's metadata database, owned by the role airflow (password AIRFLOW_DB_PASSWORD)
#   autopo   the warehouse (the connection autopo_db), owned by the role autopo (AUTOPO_DB_PASSWORD)
#
# Neither role is a superuser; each owns its database (and so its public schema, where the project's
# migrations create the tables). Running it again changes nothing: a role or database that exists is
# kept as it is. A password changed later is changed in the database too (ALTER ROLE ... PASSWORD),
# not here.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    --set airflow_password="${AIRFLOW_DB_PASSWORD:-airflow}" \
    --set autopo_password="${AUTOPO_DB_PASSWORD:-autopo}" <<'SQL'
SELECT format('CREATE ROLE airflow LOGIN PASSWORD %L', :'airflow_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'airflow')\gexec
SELECT 'CREATE DATABASE airflow OWNER airflow'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'airflow')\gexec

SELECT format('CREATE ROLE autopo LOGIN PASSWORD %L', :'autopo_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'autopo')\gexec
SELECT 'CREATE DATABASE autopo OWNER autopo'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'autopo')\gexec
SQL

echo "init-databases: airflow (Airflow's metadata) and autopo (the warehouse) are ready"
