-- 0022_write_cost: cheaper writes with the stored tsvector (issue 14's write-cost target).
--
-- Why: store_many of rows without embeddings ran at 0.75x the pre-text-search baseline (the
-- merges of GIN's pending list counted, callgrind and wall clock). Two causes, both measured:
-- * the 64 kB pending list of migration 0018: writers merged it into the index every ~50 rows,
--   each merge descending the index once per distinct word. 256 kB merges in batches four times
--   larger and still bounds search_text after writes (a 64-word query with the list full: 7.5
--   ms, against 4.3 ms at 64 kB and 70 ms at PostgreSQL's 4 MB);
-- * TOAST compression: a row over 2032 bytes (content plus its stored tsvector, about as large)
--   was compressed with pglz on every insert and every embedding written, 5% of the
--   instructions. Tables create_domain makes get toast_tuple_target = 4080 (two rows per page
--   before compression).
-- (memory_private._gin_pending_list_kb and _toast_tuple_target, sql/00_private_helpers.sql.)
-- In place: ALTER INDEX ... SET (gin_pending_list_limit = 256) on the metadata and full-text
-- indexes of every domain table pgmemo made and on the full-text helper index of every adopted
-- table; ALTER TABLE ... SET (toast_tuple_target = 4080) on every domain table pgmemo made (not
-- on adopted tables: the application's). Each takes a SHARE UPDATE EXCLUSIVE lock (reads and
-- writes go on; Citus passes them to the shards) and rewrites nothing: rows written from now on
-- follow the new target.
-- Not breaking: no signature changes.

DO $migration$
DECLARE
    v_item record;
BEGIN
    FOR v_item IN
        SELECT format($sql$ALTER INDEX %s SET (gin_pending_list_limit = 256)$sql$,
            i.indexrelid::regclass) AS ddl
        FROM memory_private.domains AS d
        JOIN pg_catalog.pg_index AS i ON i.indrelid = d.source_table
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_catalog.pg_am AS a ON a.oid = c.relam
        WHERE a.amname = 'gin'
          AND c.relname IN (d.table_name || '_metadata_gin', d.table_name || '_fts',
                            'pgmemo_' || d.domain || '_fts')
        UNION ALL
        SELECT format($sql$ALTER TABLE %I.%I SET (toast_tuple_target = 4080)$sql$,
            d.table_schema, d.table_name)
        FROM memory_private.domains AS d
        WHERE NOT d.adopted AND to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NOT NULL
        ORDER BY 1
    LOOP
        EXECUTE v_item.ddl;
    END LOOP;
END;
$migration$;
