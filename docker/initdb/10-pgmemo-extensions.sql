-- Runs once when the database volume is empty (docker-entrypoint-initdb.d), in POSTGRES_DB.
-- pgvector and pg_cron are created here, by the superuser; `pgmemo migrate` (the migrate
-- service) then installs the schema and schedules memory.run_maintenance() with pg_cron.
-- pgTAP is installed in the image but not created: tests run CREATE EXTENSION pgtap themselves.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_cron;
