-- memory.version(): what is installed, for clients that verify the schema before use.

CREATE OR REPLACE FUNCTION memory.version()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    -- The newest migration a client must know to use this database: one marked
    -- --! breaking-change, or one applied before markers were recorded (breaking IS NULL).
    WITH b AS (
        SELECT m.version, m.filename FROM memory_private.schema_migrations AS m
        WHERE m.kind = 'versioned' AND m.breaking IS NOT FALSE
        ORDER BY m.version DESC LIMIT 1
    )
    SELECT jsonb_build_object(
        'schema_version', (
            SELECT max(m.version) FROM memory_private.schema_migrations AS m
            WHERE m.kind = 'versioned'),
        'pgvector', (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'vector'),
        'vector_schema', (
            SELECT n.nspname FROM pg_catalog.pg_extension AS e
            JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
            WHERE e.extname = 'vector'),
        'breaking_version', (SELECT b.version FROM b),
        'breaking_migration', (SELECT b.filename FROM b),
        'postgres', current_setting('server_version'),
        'pg_cron', EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron'))
$$;

COMMENT ON FUNCTION memory.version() IS
'What is installed: schema_version (newest applied migration), pgvector version and schema, '
'PostgreSQL version, whether pg_cron is present; breaking_version / breaking_migration: the '
'newest migration that clients older than it cannot work across. A client accepts a newer '
'schema_version unless breaking_version is newer than its own (docs/UPGRADING.md).';
