#!/bin/sh
# Runs once when the database volume is empty (docker-entrypoint-initdb.d).
# Creates the pgmemo API roles (migrations/0002_roles.sql creates them too when missing: same
# names, NOLOGIN) and one login role per service that should not connect as the owner:
#   pgmemo_worker  IN ROLE memory_worker  (the worker service)
#   pgmemo_app     IN ROLE memory_writer  (your application)
# Passwords come from PGMEMO_WORKER_PASSWORD and PGMEMO_APP_PASSWORD (compose.yaml).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v worker_password="${PGMEMO_WORKER_PASSWORD:-pgmemo-worker}" \
    -v app_password="${PGMEMO_APP_PASSWORD:-pgmemo-app}" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', r)
FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
GRANT memory_reader TO memory_writer;
GRANT memory_writer TO memory_admin;
GRANT memory_worker TO memory_admin;
CREATE ROLE pgmemo_worker LOGIN PASSWORD :'worker_password' IN ROLE memory_worker;
CREATE ROLE pgmemo_app LOGIN PASSWORD :'app_password' IN ROLE memory_writer;
SQL
