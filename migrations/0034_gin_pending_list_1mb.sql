-- 0034_gin_pending_list_1mb: pgmemo's GIN indexes keep a pending list of 1 MB (256 kB since
-- migration 0022), issue 14's write-cost target.
--
-- Why: store_many of rows without embeddings, side by side with the pre-text-search baseline
-- (3,000-8,000 docstrings in batches of 500, the merges a batch leaves for later counted), cost
-- 0.90x the baseline's server CPU per row at 256 kB and 0.98x at 1 MB (wall clock 0.81x-0.92x
-- at 256 kB across machines and runs): every merge of the list descends the text index once
-- per distinct word, so a 256 kB list paid that descent four times as often. What it costs
-- searches, measured over the list's whole cycle (3,000 docstrings, then 150 rounds of 20 rows
-- written and three searches): search_text of 3 words p50 2.55 ms against 2.49 ms at 256 kB,
-- 8 words 3.30 against 3.18 ms, 64 words 7.72 against 7.17 ms (max 14.2 against 11.0 ms);
-- refresh_text_stats (run_maintenance) merges the list. Still a bound: PostgreSQL's default
-- (4 MB) made a 64-word search 70 ms with its list full.
-- (memory_private._gin_pending_list_kb, sql/00_private_helpers.sql.)
-- In place: ALTER INDEX ... SET (gin_pending_list_limit = 1024) on the metadata and full-text
-- indexes of every domain table pgmemo made and on the full-text index of every adopted
-- domain (memory_data.<domain>_text). Each takes a SHARE UPDATE EXCLUSIVE lock (reads and
-- writes go on; Citus passes it to the shards) and rewrites nothing.
-- Not breaking: no signature changes.

DO $migration$
DECLARE
    v_ddl text;
BEGIN
    FOR v_ddl IN
        SELECT format($sql$ALTER INDEX %s SET (gin_pending_list_limit = 1024)$sql$,
            i.indexrelid::regclass)
        FROM memory_private.domains AS d
        JOIN pg_catalog.pg_index AS i
            ON i.indrelid IN (d.source_table,
                              to_regclass(format('memory_data.%I', d.domain || '_text')))
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_catalog.pg_am AS a ON a.oid = c.relam
        WHERE a.amname = 'gin'
          AND c.relname IN (d.table_name || '_metadata_gin', d.table_name || '_fts',
                            'pgmemo_' || d.domain || '_fts', d.domain || '_text_gin')
        ORDER BY 1
    LOOP
        EXECUTE v_ddl;
    END LOOP;
END;
$migration$;
