#!/usr/bin/env bash
# Databases and owner logins of the production-like stack, on the first start of the volume
# (the postgres image runs docker-entrypoint-initdb.d/*.sh as the server's superuser).
#
#   airflow   Airflow's metadata database (and Celery's result backend), owned by the
#             non-superuser login airflow (password AIRFLOW_DB_PASSWORD)
#   marquez   Marquez's database, owned by the login marquez (password MARQUEZ_DB_PASSWORD)
#   veilflow  the zones, owned by the superuser: `veilflow db upgrade` (airflow-init, as
#             VEILFLOW_MIGRATE_DATABASE_URL) creates the group roles and the service logins
#
# Passwords reach the server only as psql variables quoted by psql (:'name'), never pasted
# into SQL text. Only airflow and marquez may connect to their databases. No `set -u`: the
# image sources a script that is not executable, and its own code is not -u safe.
set -eo pipefail

: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD (password of the login airflow)}"
: "${MARQUEZ_DB_PASSWORD:?set MARQUEZ_DB_PASSWORD (password of the login marquez)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" \
  -v marquez_password="$MARQUEZ_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE ROLE marquez LOGIN PASSWORD :'marquez_password';

CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE marquez OWNER marquez;
CREATE DATABASE veilflow;

REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE marquez FROM PUBLIC;
SQL
