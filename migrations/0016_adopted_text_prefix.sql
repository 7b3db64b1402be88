-- 0016_adopted_text_prefix: an adopted table's full-text index reads a bounded prefix.
--
-- Why (issue 11): pgmemo's full-text helper index on an adopted table,
-- pgmemo_<domain>_fts USING gin (to_tsvector(<config>, <content>)), is evaluated by the
-- APPLICATION's own INSERTs and UPDATEs. A row with more distinct words than a tsvector holds
-- (1 MB of lexemes) made the application's write fail with "string is too long for tsvector",
-- a write that worked before adoption. The index now reads the first 100,000 characters
-- (memory_private._adopted_tsvector_sql, sql/31_bm25.sql), which can never overflow; search_text
-- queries the same expression, so it keeps using the index.
-- In place: each adopted domain's index is rebuilt with the new expression (CREATE INDEX takes a
-- SHARE lock: the table's writes wait while it builds). To avoid that wait on a large table,
-- build the new index beforehand (docs/UPGRADING.md shows how): an index already holding the new
-- expression is kept. Domains adopted with create_indexes => false and no index are left alone.
-- Not breaking: no signature changes; a row longer than 100,000 characters is found by words of
-- its first 100,000 characters.

DO $migration$
DECLARE
    v_d record;
    v_new text;
BEGIN
    FOR v_d IN
        SELECT d.domain, d.source_table, d.text_config, d.content_column, i.indexrelid::regclass AS idx
        FROM memory_private.domains AS d
        JOIN pg_catalog.pg_index AS i ON i.indrelid = d.source_table
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        WHERE d.adopted AND c.relname = 'pgmemo_' || d.domain || '_fts'
          AND NOT EXISTS (SELECT FROM memory_private.reembeds AS r WHERE r.shadow_domain = d.domain)
          AND pg_catalog.pg_get_indexdef(i.indexrelid) NOT LIKE '%"left"(%, 100000)%'
    LOOP
        -- (the expression as of this migration: memory_private._adopted_tsvector_sql)
        v_new := format('to_tsvector(%L::regconfig, left(%I::text, 100000))', v_d.text_config::text,
            v_d.content_column);
        EXECUTE format('DROP INDEX %s', v_d.idx);
        EXECUTE format('CREATE INDEX %I ON %s USING gin (%s)', 'pgmemo_' || v_d.domain || '_fts',
            v_d.source_table, v_new);
    END LOOP;
END;
$migration$;
