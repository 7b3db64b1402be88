-- 0017_write_mapping: pgmemo writes every domain through its column mapping, and no domain table
-- carries a BEFORE ROW UPDATE trigger.
--
-- Why: memory.store / store_many / update / forget / import_rows wrote an adopted domain through
-- its view's INSTEAD OF trigger (memory_private._adopted_view_write), a second write path. They
-- now write the source table itself, through the registry's mapping, like a factory table: the
-- mapping gains the metadata and created-at columns. And a BEFORE ROW UPDATE trigger makes
-- PostgreSQL recompute every stored generated column on every UPDATE (a factory table's
-- content_tsv on every embedding a worker writes): the stale-embedding rule moves to a statement
-- trigger (pgmemo_<domain>_unstale_update, wired by memory_private._after_migrate()), except on
-- Citus-distributed tables, which keep the row trigger (no transition tables there).
-- Not breaking: no public signature changes.

ALTER TABLE memory_private.domains
ADD COLUMN metadata_column name,
ADD COLUMN created_column name;

COMMENT ON COLUMN memory_private.domains.metadata_column IS
'The jsonb column that holds each row''s metadata (NULL: none; storing metadata is refused).';
COMMENT ON COLUMN memory_private.domains.created_column IS
'The column that holds each row''s creation time (NULL: none).';

-- Factory domains: the table pgmemo made.
UPDATE memory_private.domains AS d
SET metadata_column = 'metadata', created_column = 'created_at'
WHERE NOT d.adopted;

-- Adopted domains (and re-embed shadows): the columns their view maps, by name and type, as
-- memory.adopt_table found them (metadata jsonb, created_at timestamptz).
UPDATE memory_private.domains AS d
SET
    metadata_column = (
        SELECT a.attname FROM pg_catalog.pg_attribute AS a
        WHERE
            a.attrelid = d.source_table AND a.attname = 'metadata'
            AND a.atttypid = 'jsonb'::regtype AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attname NOT IN (d.id_column, d.content_column, d.embedding_column)
    ),
    created_column = (
        SELECT a.attname FROM pg_catalog.pg_attribute AS a
        WHERE
            a.attrelid = d.source_table AND a.attname = 'created_at'
            AND a.atttypid = 'timestamptz'::regtype AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attname NOT IN (d.id_column, d.content_column, d.embedding_column)
    )
WHERE d.adopted;

-- The view of an adopted domain is read-only now: its INSTEAD OF trigger and the trigger's
-- function go. The BEFORE ROW UPDATE trigger of every table that is not distributed goes (with
-- its function); _after_migrate wires the statement trigger that replaces it. A function no
-- longer called goes too (the mapping's completion covers a distributed re-embed's shadow).
DO $retire$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT t.tgrelid::regclass AS rel, t.tgname
        FROM pg_catalog.pg_trigger AS t
        WHERE t.tgfoid = to_regprocedure('memory_private._adopted_view_write()')
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
    END LOOP;
    FOR v_trigger IN
        SELECT t.tgrelid::regclass AS rel, t.tgname, t.tgfoid::regprocedure AS fn
        FROM memory_private.domains AS d
        JOIN pg_catalog.pg_trigger AS t
            ON t.tgrelid = d.source_table AND t.tgname = 'pgmemo_' || d.domain || '_before_update'
        WHERE NOT d.distributed
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
        EXECUTE format('DROP FUNCTION %s', v_trigger.fn);
    END LOOP;
END;
$retire$;

DROP FUNCTION IF EXISTS memory_private._adopted_view_write();
DROP FUNCTION IF EXISTS memory_private._dist_shadow_write_sql(memory_private.domains);
