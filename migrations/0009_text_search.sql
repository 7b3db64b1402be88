-- 0009_text_search: a stored tsvector per domain table, and the statistics BM25 ranking uses.
--
-- Why: memory.search_text ranks with BM25 (sql/31_bm25.sql), which reads each candidate's term
-- frequencies and length. With only an expression index, every candidate's tsvector was
-- computed again at query time (~20 ms p50 on 3,000 rows for any-word queries); a STORED
-- generated column computes it when the row is written. (The GIN entry of a non-HOT update,
-- such as the queue's embedding write, is then read from the column instead of re-parsing the
-- content for the expression index; PostgreSQL still recomputes the column on that UPDATE
-- because domain tables have a BEFORE ROW UPDATE trigger: bench/text_write.py measures it.)
--
-- Existing factory domains get the column in place (ALTER TABLE rewrites the table once, under
-- an ACCESS EXCLUSIVE lock: a 100,000-row domain takes seconds); the full-text index keeps its
-- name (<table>_fts) and now indexes the column. Adopted tables are never altered: they keep
-- their expression index (pgmemo_<domain>_fts) and their candidates' tsvectors are computed at
-- query time.

-- search_text's 'any' mode used this helper; BM25 candidate selection replaced it.
DROP FUNCTION IF EXISTS memory_private._any_words_query(memory_private.domains, text, double precision);
-- search_hybrid gained fusion (convex combination, the new default, or RRF).
DROP FUNCTION IF EXISTS memory.search_hybrid(
    text, text, vector, integer, jsonb, double precision, double precision, integer, integer,
    interval, double precision, text, boolean
);

CREATE TABLE memory_private.text_stats (
    domain text PRIMARY KEY REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    documents bigint NOT NULL,
    avg_length double precision NOT NULL,
    common_lexemes jsonb NOT NULL DEFAULT '{}',
    writes_at_refresh bigint NOT NULL DEFAULT 0,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT text_stats_documents_check CHECK (documents >= 0),
    CONSTRAINT text_stats_avg_length_check CHECK (avg_length >= 0)
);

COMMENT ON TABLE memory_private.text_stats IS
'Per domain: rows and average length per row (the N and avgdl of BM25), and the '
'share of rows holding each common lexeme ({lexeme: share}, the planner''s most common elements '
'of the tsvector after ANALYZE), refreshed by memory.refresh_text_stats (run_maintenance calls '
'it when more than 10% rows were inserted or deleted since: writes_at_refresh is the table''s '
'n_tup_ins + n_tup_del then). Rare lexemes'' document frequencies are counted '
'exactly at query time.';

DO $migrate$
DECLARE
    v_d record;
BEGIN
    FOR v_d IN
        SELECT d.table_schema, d.table_name, d.text_config
        FROM memory_private.domains AS d
        WHERE NOT d.adopted
          AND to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NOT NULL
          AND (SELECT c.relkind FROM pg_catalog.pg_class AS c
               WHERE c.oid = to_regclass(format('%I.%I', d.table_schema, d.table_name))) = 'r'
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I.%I', v_d.table_schema, v_d.table_name || '_fts');
        EXECUTE format(
            -- the expression of memory_private._stored_tsvector_sql (sql/31_bm25.sql)
            $q$ALTER TABLE %I.%I ADD COLUMN IF NOT EXISTS content_tsv tsvector
                GENERATED ALWAYS AS ((to_tsvector(%L::regconfig, content) || %L::tsvector))
                STORED$q$,
            v_d.table_schema, v_d.table_name, v_d.text_config::text, $t$' dl':1$t$);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin (content_tsv)',
            v_d.table_name || '_fts', v_d.table_schema, v_d.table_name);
    END LOOP;
END;
$migrate$;
