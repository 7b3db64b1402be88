-- pgmemo bootstrap: the migration ledger and the functions the runner calls. Run by every
-- `pgmemo migrate` (python/pgmemo/migrate.py) and by install.sql, first thing inside the migrate
-- transaction, under the migrators' advisory lock (migrate.LOCK_KEY). Idempotent.
--
-- Why not a migration: it is what applies and records the migrations. Keep it additive (IF NOT
-- EXISTS, CREATE OR REPLACE with unchanged signatures): it runs against every earlier ledger.

CREATE SCHEMA IF NOT EXISTS memory_private;
CREATE TABLE IF NOT EXISTS memory_private.schema_migrations (
    version text PRIMARY KEY,
    filename text NOT NULL,
    checksum text NOT NULL,
    kind text NOT NULL DEFAULT 'versioned' CHECK (kind IN ('versioned', 'repeatable')),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE memory_private.schema_migrations IS
'pgmemo migration ledger: one row per applied migrations/ file (kind versioned, version NNNN) '
'and per sql/ file (kind repeatable, version R:<file>), with the sha256 of its text.';

-- Added with the markers (after schema 0005): whether a versioned migration breaks older clients
-- (the line --! breaking-change at the top of its file). NULL: recorded by a runner that did not
-- read markers, which clients that do not know the migration treat as breaking (memory.version()).
ALTER TABLE memory_private.schema_migrations ADD COLUMN IF NOT EXISTS breaking boolean;
COMMENT ON COLUMN memory_private.schema_migrations.breaking IS
'true: the migration carries --! breaking-change (clients older than it refuse the database); '
'false: it does not; NULL: applied before markers were read (treated as breaking).';

-- p_superseded: earlier texts of this file that pgmemo amended on purpose (migrate.py SUPERSEDED
-- says why); a database that applied one of them is up to date.
DROP FUNCTION IF EXISTS memory_private._migration_needed(text, text, text);
CREATE OR REPLACE FUNCTION memory_private._migration_needed(
    p_version text, p_filename text, p_checksum text, p_superseded text[] DEFAULT '{}'
) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
    v_checksum text;
BEGIN
    SELECT m.checksum INTO v_checksum FROM memory_private.schema_migrations AS m
    WHERE m.version = p_version AND m.kind = 'versioned';
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    IF v_checksum <> p_checksum AND v_checksum <> ALL (p_superseded) THEN
        RAISE EXCEPTION 'migration % was edited after it was applied (checksum % in the database, % in the file)',
            p_filename, left(v_checksum, 12), left(p_checksum, 12)
            USING ERRCODE = 'P0001',
                  HINT = 'Landed migrations are append-only: restore the file and add a new migration.';
    END IF;
    RETURN false;
END;
$f$;

CREATE OR REPLACE FUNCTION memory_private._check_known_versions(p_versions text[])
RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    v_unknown text;
BEGIN
    SELECT string_agg(m.filename, ', ' ORDER BY m.version) INTO v_unknown
    FROM memory_private.schema_migrations AS m
    WHERE m.kind = 'versioned' AND m.version <> ALL (p_versions);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'the database has migrations this pgmemo does not know: %', v_unknown
            USING ERRCODE = 'P0001',
                  HINT = 'The database was migrated by a newer pgmemo: upgrade pgmemo.';
    END IF;
END;
$f$;

CREATE OR REPLACE FUNCTION memory_private._record_migration(
    p_version text, p_filename text, p_checksum text, p_kind text
) RETURNS void LANGUAGE sql AS $f$
    INSERT INTO memory_private.schema_migrations AS m (version, filename, checksum, kind)
    VALUES (p_version, p_filename, p_checksum, p_kind)
    ON CONFLICT (version) DO UPDATE
        SET checksum = excluded.checksum, applied_at = now(), applied_by = current_user
        WHERE m.checksum <> excluded.checksum;
$f$;

-- Called right after _record_migration for a versioned migration just applied.
CREATE OR REPLACE FUNCTION memory_private._record_breaking(p_version text, p_breaking boolean)
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $f$
    UPDATE memory_private.schema_migrations AS m SET breaking = p_breaking
    WHERE m.version = p_version AND m.kind = 'versioned';
$f$;

-- Functions capture this search_path (SET search_path FROM CURRENT): pg_catalog first, then
-- the schema pgvector lives in (public, extensions, ...), then pg_temp last.
CREATE OR REPLACE FUNCTION memory_private._set_install_search_path()
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    v_schema name;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_catalog.pg_extension AS e
    JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the vector extension (pgvector) is not installed in this database'
            USING ERRCODE = '58P01', HINT = 'Run CREATE EXTENSION vector; as a privileged user.';
    END IF;
    RETURN set_config('search_path', format('pg_catalog, %I, pg_temp', v_schema), true);
END;
$f$;
