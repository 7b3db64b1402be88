-- 0018_gin_pending_list: pgmemo's GIN indexes keep a small pending list (64 kB).
--
-- Why (issue 11, bounded cost): with GIN's fastupdate, new entries wait in an unsorted pending
-- list (4 MB by default) that every search of the index reads in full, and memory.search_text
-- searches the full-text index once per query word. After a few thousand writes a 32-word query
-- read the list 32 times: 21 ms per call on 5,000 rows against 4.3 ms with the list merged
-- (memory_private._gin_pending_list_kb, sql/00_private_helpers.sql, has the measurement).
-- In place: ALTER INDEX ... SET (gin_pending_list_limit = 64) on the metadata and full-text
-- indexes of every domain table pgmemo made and on the full-text helper index of every adopted
-- table; it takes a SHARE UPDATE EXCLUSIVE lock on each index (reads and writes go on; Citus
-- passes it to the shards). The list already pending is merged by the next insert or vacuum.
-- Not breaking: no signature changes.

DO $migration$
DECLARE
    v_idx regclass;
BEGIN
    FOR v_idx IN
        SELECT i.indexrelid::regclass
        FROM memory_private.domains AS d
        JOIN pg_catalog.pg_index AS i ON i.indrelid = d.source_table
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_catalog.pg_am AS a ON a.oid = c.relam
        WHERE a.amname = 'gin'
          AND c.relname IN (d.table_name || '_metadata_gin', d.table_name || '_fts',
                            'pgmemo_' || d.domain || '_fts')
        ORDER BY 1
    LOOP
        EXECUTE format($sql$ALTER INDEX %s SET (gin_pending_list_limit = 64)$sql$, v_idx);
    END LOOP;
END;
$migration$;
