-- Diagnostics, part 2: the per-domain checks behind memory.diagnose() (60_diagnostics.sql).
-- Every failure from the incident reports, found by one call, each with a sentence and (where
-- the fix is one SQL statement) fix_sql.
--
-- One function per check: memory_private._check_<check_name>(d memory_private.domains) returns
-- the rows memory.diagnose shows for it (severity, domain, check_name, detail, fix_sql), and
-- memory_private._diagnose (60_diagnostics.sql) combines them with UNION ALL. Adding a check:
-- a function here with its COMMENT, one line in _diagnose, a word in memory.diagnose's COMMENT.
-- Every check except _check_table_missing runs only on a domain whose table exists; on Citus,
-- the cluster's checks (memory_private._check_not_distributed ... _check_shard_index_settings_differ,
-- 48_distributed.sql) run too, and with a worker down the others, which read rows, are skipped.
--
-- Cost: diagnose() reads catalogs, cumulative statistics and the queue; it scans a domain table
-- only where nothing cheaper can answer, and then boundedly:
--   unqueued_null_embeddings: one NOT EXISTS anti-join scan up to pgmemo.diagnose_exact_rows
--     estimated rows (LIMIT-ed); above that, pg_stats null_frac x estimated rows vs the queue.
--   embedding_model_mismatch: the 1000 most recently updated embedded rows (index on updated_at).
--   dimension_mismatch per model: only when the column's declared dimension is wrong or missing,
--     the 1000 most recently updated rows.
-- Tunables (custom settings, e.g. ALTER DATABASE ... SET pgmemo.queue_stall_seconds = 300):
--   pgmemo.queue_stall_seconds  a ready job waiting longer means the queue is not draining (900)
--   pgmemo.diagnose_exact_rows  up to this many rows, missing-embedding rows are counted exactly
--                               (one scan); above it they are estimated from pg_stats (100000;
--                               at most 1000000: a reader's session sets it)
--   pgmemo.hnsw_memory_budget   the cache an HNSW index should fit in (default: shared_buffers)

-- n and its words in the number n takes (one: for 1, many: otherwise), for the checks'
-- sentences: _count_of(1, 'job waits', 'jobs wait') is '1 job waits'. (Written as numeric: a
-- count is never shown in a float's exponent form.)
CREATE OR REPLACE FUNCTION memory_private._count_of(n double precision, one text, many text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT n::numeric || ' ' || CASE WHEN n = 1 THEN one ELSE many END $$;

-- Shared by the checks ---------------------------------------------------------------------

-- pgmemo.diagnose_exact_rows, bounded: memory.diagnose is a reader's call, and the setting is the
-- session's, so a reader's 1e15 made every call compare whole tables (stop 26's attack review:
-- 390 -> 709 ms at 150,000 rows, growing with the table). At most 1,000,000 (about a second per
-- check); an unreadable value is the default, 100,000.
CREATE OR REPLACE FUNCTION memory_private._diagnose_exact_rows()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v text := nullif(current_setting('pgmemo.diagnose_exact_rows', true), '');
BEGIN
    IF v IS NULL OR v !~ '^\s*[0-9]{1,18}\s*$' THEN
        RETURN 100000;
    END IF;
    RETURN least(v::bigint, 1000000);
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._diagnose_hnsw_fix(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($sql$SELECT memory.create_hnsw_index(%L, m => %s, ef_construction => %s);$sql$,
        d.domain, d.hnsw_m, d.hnsw_ef_construction)
$$;

COMMENT ON FUNCTION memory_private._diagnose_hnsw_fix(memory_private.domains) IS
'The fix_sql of the vector-index checks: memory.create_hnsw_index with the domain''s m and '
'ef_construction.';

-- Size and statistics from the catalogs (no scan), over the leaves of a partitioned table.
CREATE OR REPLACE FUNCTION memory_private._diagnose_size(
    d memory_private.domains,
    OUT est_rows double precision, OUT pages_now double precision,
    OUT pages_analyzed double precision, OUT tuples_analyzed double precision,
    OUT changed_since_analyze double precision, OUT has_stats boolean
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH p AS (SELECT * FROM memory_private._physical(d)),
    bs AS (SELECT current_setting('block_size')::bigint AS bytes)
    SELECT
        coalesce(sum(CASE
            WHEN c.reltuples >= 0 AND c.relpages > 0
                THEN c.reltuples / c.relpages
                    * greatest(pg_catalog.pg_relation_size(c.oid) / bs.bytes, 1)
            WHEN c.reltuples >= 0 THEN c.reltuples
            ELSE greatest(coalesce(s.n_live_tup, 0),
                pg_catalog.pg_relation_size(c.oid) / bs.bytes * 50)
        END), 0),
        sum(pg_catalog.pg_relation_size(c.oid) / bs.bytes),
        sum(greatest(c.relpages, 0)),
        sum(greatest(c.reltuples, 0)),
        sum(coalesce(s.n_mod_since_analyze, 0)),
        EXISTS (
            SELECT FROM pg_catalog.pg_stats AS st
            JOIN pg_catalog.pg_class AS t ON t.relname = st.tablename
            WHERE t.oid = (SELECT p.relation FROM p)
              AND t.relnamespace::regnamespace::text = quote_ident(st.schemaname)
        ) OR EXISTS (
            SELECT FROM pg_catalog.pg_stat_all_tables AS st
            WHERE st.relid = (SELECT p.relation FROM p)
              AND (st.last_analyze IS NOT NULL OR st.last_autoanalyze IS NOT NULL)
        )
    FROM memory_private._domain_relations(d) AS r
    CROSS JOIN bs
    JOIN pg_catalog.pg_class AS c ON c.oid = r.relid
    LEFT JOIN pg_catalog.pg_stat_all_tables AS s ON s.relid = r.relid
    WHERE r.is_leaf
$$;

COMMENT ON FUNCTION memory_private._diagnose_size(memory_private.domains) IS
'A domain table''s size from the catalogs, without a scan (summed over the leaves of a '
'partitioned table): estimated rows now, pages now and at the last ANALYZE, rows at the last '
'ANALYZE, rows changed since, and whether it was ever analyzed.';

CREATE OR REPLACE FUNCTION memory_private._diagnose_queue(
    d memory_private.domains,
    OUT dead bigint, OUT ready bigint, OUT oldest_ready interval, OUT expired bigint,
    OUT jobs bigint
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT
        count(*) FILTER (WHERE q.status = 'dead'),
        count(*) FILTER (WHERE q.status = 'pending' AND q.run_after <= now()),
        now() - min(q.run_after) FILTER (WHERE q.status = 'pending' AND q.run_after <= now()),
        count(*) FILTER (WHERE q.status = 'claimed' AND q.lease_until < now()),
        count(*)
    FROM memory_private.embedding_queue AS q
    WHERE q.domain = d.domain
$$;

COMMENT ON FUNCTION memory_private._diagnose_queue(memory_private.domains) IS
'A domain''s embedding jobs for the queue checks: dead ones, ready ones (pending and due), how '
'long the oldest ready one has waited, claims whose lease expired, and all jobs.';

-- The checks -------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION memory_private._check_table_missing(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'table_missing',
        format('The registry points at table %I.%I, which does not exist: every call on this '
            || 'domain fails. Drop the domain (SELECT memory.drop_domain(%L);) or restore the '
            || 'table.', d.table_schema, d.table_name, d.domain),
        NULL::text
    WHERE (memory_private._physical(d)).relation IS NULL
$$;

COMMENT ON FUNCTION memory_private._check_table_missing(memory_private.domains) IS
'diagnose check table_missing (error): the registry names a table that does not exist. The '
'other checks of the domain are skipped.';

CREATE OR REPLACE FUNCTION memory_private._check_no_vector_index(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'no_vector_index',
        format('Table %s has no vector index on embedding: every memory.search reads every row. '
            || 'Build the HNSW index (it blocks writes to the table while it builds).',
            (memory_private._physical(d)).relation),
        memory_private._diagnose_hnsw_fix(d)
    WHERE NOT EXISTS (SELECT FROM memory_private._vector_indexes(d))
$$;

COMMENT ON FUNCTION memory_private._check_no_vector_index(memory_private.domains) IS
'diagnose check no_vector_index (error): the domain''s embedding column has no vector index, so '
'every search reads every row. fix_sql: memory.create_hnsw_index.';

CREATE OR REPLACE FUNCTION memory_private._check_duplicate_vector_indexes(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'duplicate_vector_indexes',
        format('%s vector indexes on %s.embedding: %s. Every write updates all of them and the '
            || 'planner may pick any; keep exactly one HNSW index with %s.',
            x.n, (memory_private._physical(d)).relation, x.names, memory_private._opclass(d)),
        memory_private._diagnose_hnsw_fix(d)
    FROM (
        SELECT count(*) AS n,
            string_agg(format('%s (%s, %s%s)', i.index_name, i.method, i.opclass,
                CASE WHEN i.is_valid THEN '' ELSE ', INVALID' END), ', ') AS names
        FROM memory_private._vector_indexes(d) AS i
    ) AS x
    WHERE x.n > 1
$$;

COMMENT ON FUNCTION memory_private._check_duplicate_vector_indexes(memory_private.domains) IS
'diagnose check duplicate_vector_indexes (warning): more than one vector index on the embedding '
'column (every write updates each). fix_sql: memory.create_hnsw_index, which keeps one.';

CREATE OR REPLACE FUNCTION memory_private._check_opclass_mismatch(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'opclass_mismatch',
        format('Index %s uses operator class %s, but the domain''s distance is %s, which needs '
            || '%s: memory.search cannot use this index.',
            i.index_name, i.opclass, d.distance, memory_private._opclass(d)),
        memory_private._diagnose_hnsw_fix(d)
    FROM memory_private._vector_indexes(d) AS i
    WHERE i.opclass <> memory_private._opclass(d)
$$;

COMMENT ON FUNCTION memory_private._check_opclass_mismatch(memory_private.domains) IS
'diagnose check opclass_mismatch (error), one row per index: a vector index whose operator class '
'does not match the domain''s distance, so searches cannot use it.';

CREATE OR REPLACE FUNCTION memory_private._check_adopted_index_missing(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'adopted_index_missing',
        format('Adopted table %s lacks %s: each lookup by id (every embedding job, every row '
            || 'a text search finds) reads the whole table. Build it without blocking writes: '
            || 'pgmemo index build --concurrently %s.', (memory_private._physical(d)).relation, m.names,
            d.domain),
        NULL::text
    FROM (
        SELECT string_agg(h.index_name, ', ' ORDER BY h.index_name) AS names
        FROM memory_private._adopted_helper_indexes(d) AS h
        WHERE NOT h.present
    ) AS m
    WHERE m.names IS NOT NULL
$$;

COMMENT ON FUNCTION memory_private._check_adopted_index_missing(memory_private.domains) IS
'diagnose check adopted_index_missing (warning): an adopted table without its id-as-text index '
'(adopted with create_indexes => false), so jobs and text searches scan it.';

-- An adopted table whose id column may be NULL (adopted before adopt_table required NOT NULL, or
-- the constraint dropped since): its rows without an id are skipped by pgmemo's triggers, so
-- never embedded nor found.
CREATE OR REPLACE FUNCTION memory_private._check_adopted_id_nullable(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'adopted_id_nullable',
        format('The id column %I of adopted table %s may be NULL: a row without an id is neither '
            'queued for embedding nor indexed for text search (pgmemo cannot address it).',
            d.id_column, d.source_table),
        format($sql$ALTER TABLE %s ALTER COLUMN %I SET NOT NULL;$sql$,
            memory_private._qualified(d.source_table), d.id_column)
    FROM pg_catalog.pg_attribute AS a
    WHERE d.adopted AND NOT memory_private._is_shadow(d) AND a.attrelid = d.source_table
      AND a.attname = d.id_column AND NOT a.attnotnull
$$;

COMMENT ON FUNCTION memory_private._check_adopted_id_nullable(memory_private.domains) IS
'diagnose check adopted_id_nullable (warning): an adopted table whose id column may be NULL; its '
'rows without an id are never embedded nor found. fix_sql: ALTER ... SET NOT NULL.';

-- An adopted domain's text index (memory_data.<domain>_text) out of line with its table: missing,
-- its triggers disabled or gone, or rows on one side only (counted exactly up to
-- pgmemo.diagnose_exact_rows rows each way, compared by the planner's row counts above). Rows
-- changed while the triggers were off are not seen here: memory.sync_text_index compares them.
CREATE OR REPLACE FUNCTION memory_private._check_text_index_out_of_sync(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    v_limit bigint := memory_private._diagnose_exact_rows();
    v_text regclass := memory_private._text_table(d);
    v_source regclass := d.source_table;
    v_off text;
    v_missing bigint;
    v_extra bigint;
    v_what text;
BEGIN
    IF NOT d.adopted OR memory_private._is_shadow(d) OR memory_private._qualified(v_source) IS NULL
        OR memory_private._is_distributed_table(v_source) THEN
        RETURN;
    END IF;
    IF v_text IS NOT NULL AND EXISTS (
        SELECT FROM memory_private.text_fills AS f WHERE f.domain = d.domain
    ) THEN
        -- adopted without indexes, or partitions attached with rows: being filled, which is
        -- not out of line (and the rows are not counted: they are missing by design)
        RETURN QUERY SELECT 'warning', d.domain, 'text_index_out_of_sync',
            format('The text index of adopted table %s (memory_data.%I) is being filled%s (%s rows '
                'so far, since %s): memory.search_text finds only those rows until it is done. '
                'run_maintenance adds 50,000 rows a run; memory.fill_text_index adds a batch a '
                'call, neither blocks the table''s writers.', v_source,
                memory_private._text_table_name(d.domain),
                CASE WHEN f.relations IS NOT NULL THEN ' from the partitions or children attached '
                    'with rows (' || array_to_string(f.relations::text[], ', ') || ')' END,
                f.rows_filled, f.started_at),
            format($sql$SELECT memory.fill_text_index(%L, 10000);  -- until it returns < 10000$sql$,
                d.domain)
        FROM memory_private.text_fills AS f WHERE f.domain = d.domain;
        RETURN;
    END IF;
    IF v_text IS NULL THEN
        v_what := 'is missing: memory.search_text computes the tsvector of every row it reads';
    ELSE
        SELECT string_agg(t.trigger_name, ', ' ORDER BY t.trigger_name) INTO v_off
        FROM memory_private._wire_triggers(d) AS t
        WHERE t.trigger_name IN (
            SELECT memory_private._wire_name(d.domain, k)
            FROM unnest(ARRAY['text_insert', 'text_update', 'text_delete', 'text_truncate']) AS k)
          AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_trigger AS g
            WHERE g.tgrelid = t.relid AND g.tgname = t.trigger_name AND g.tgenabled <> 'D');
        IF (memory_private._diagnose_size(d)).est_rows <= v_limit THEN
            EXECUTE format($q$
                SELECT
                    (SELECT count(*) FROM (
                        SELECT FROM %1$I.%2$I AS t
                        WHERE NOT EXISTS (SELECT FROM %3$s AS x WHERE x.id = t.id)
                        LIMIT $1) AS m),
                    (SELECT count(*) FROM (
                        SELECT FROM %3$s AS x
                        WHERE NOT EXISTS (SELECT FROM %1$I.%2$I AS t WHERE t.id = x.id)
                        LIMIT $1) AS e)
            $q$, d.table_schema, d.table_name, v_text)
            INTO v_missing, v_extra USING v_limit;
        ELSE
            SELECT greatest(round(s.reltuples - x.reltuples), 0),
                greatest(round(x.reltuples - s.reltuples), 0)
            INTO v_missing, v_extra
            FROM pg_catalog.pg_class AS s, pg_catalog.pg_class AS x
            WHERE s.oid = v_source AND x.oid = v_text;
            IF v_missing + v_extra <= greatest(100, 0.01 * (memory_private._diagnose_size(d)).est_rows)
            THEN
                v_missing := 0;  -- within the estimates' noise
                v_extra := 0;
            END IF;
        END IF;
        v_what := 'is out of line with it: ' || nullif(concat_ws('; ',
            CASE WHEN v_off IS NOT NULL THEN format('its triggers %s are disabled or missing, so '
                'the table''s writes no longer reach it', v_off) END,
            CASE WHEN v_missing > 0 THEN memory_private._count_of(v_missing,
                'row of the table is missing from it (memory.search_text does not find it)',
                'rows of the table are missing from it (memory.search_text does not find them)')
                END,
            CASE WHEN v_extra > 0 THEN format('it holds %s the table no longer has',
                memory_private._count_of(v_extra, 'row', 'rows')) END,
            CASE WHEN memory_private._text_postings_table(d) IS NULL THEN 'it lacks the rows'' '
                'content sizes (made by schema 0024: memory.run_maintenance fills them, without '
                'blocking the table''s writers; memory.search_text reads its postings through the '
                'table until they are there)' END), '');
    END IF;
    IF v_what IS NOT NULL THEN
        RETURN QUERY SELECT 'warning', d.domain, 'text_index_out_of_sync',
            format('The text index of adopted table %s (memory_data.%I) %s. Rebuild it from the '
                'table (the table''s writers wait meanwhile).', v_source,
                memory_private._text_table_name(d.domain), v_what),
            CASE WHEN v_off IS NULL OR v_off = '' THEN
                format($sql$SELECT memory.sync_text_index(%L);$sql$, d.domain)
            END;
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._check_text_index_out_of_sync(memory_private.domains) IS
'diagnose check text_index_out_of_sync (warning): an adopted table''s text index missing, its '
'triggers disabled or missing, rows on one side only (exact up to pgmemo.diagnose_exact_rows '
'rows, estimated above), its content sizes not filled (an index made by schema 0024), or its '
'rows still being filled (adopted without indexes, or a partition or child attached with rows '
'and wired by run_maintenance: fix_sql memory.fill_text_index). '
'fix_sql: memory.sync_text_index (none while triggers are off: enable them, or run pgmemo '
'migrate to restore missing ones, first).';

-- INVALID indexes (a failed CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY) on the table or
-- its partitions. Partitioned parent indexes are left to partition_missing_index.
CREATE OR REPLACE FUNCTION memory_private._check_invalid_index(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'invalid_index',
        format('Index %I.%I (%s) is INVALID, left by a failed CREATE INDEX CONCURRENTLY: the '
            || 'planner never uses it but every write still updates it.%s',
            n.nspname, c.relname, am.amname,
            CASE WHEN x.managed
                THEN ' memory.create_hnsw_index drops it and leaves one valid HNSW index.'
                ELSE ' Rebuild it.' END),
        CASE WHEN x.managed THEN memory_private._diagnose_hnsw_fix(d)
            ELSE format($sql$REINDEX INDEX CONCURRENTLY %I.%I;$sql$, n.nspname, c.relname) END
    FROM memory_private._domain_relations(d) AS r
    JOIN pg_catalog.pg_index AS i ON i.indrelid = r.relid
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
    -- A vector index on the table itself: memory.create_hnsw_index replaces it.
    CROSS JOIN LATERAL (
        SELECT am.amname IN ('hnsw', 'ivfflat')
            AND i.indrelid = (memory_private._physical(d)).relation::oid AS managed
    ) AS x
    WHERE NOT i.indisvalid AND c.relkind = 'i'
$$;

COMMENT ON FUNCTION memory_private._check_invalid_index(memory_private.domains) IS
'diagnose check invalid_index (error), one row per index: an INVALID index on the table or a '
'partition (a failed concurrent build): never used, still updated. fix_sql: '
'memory.create_hnsw_index for the table''s vector index, else REINDEX INDEX CONCURRENTLY.';

CREATE OR REPLACE FUNCTION memory_private._check_partition_missing_index(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH x AS MATERIALIZED (SELECT * FROM memory_private._domain_vector_indexes(d)),
    opclass AS (
        SELECT memory_private._opclass(d) AS name,
            format('%I.%I', n.nspname, memory_private._opclass(d)) AS qualified
        FROM pg_catalog.pg_extension AS e
        JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'vector'
    )
    SELECT 'error', d.domain, 'partition_missing_index',
        format('Partition %s of %s has no valid vector index with %s: every search reads all '
            || 'of its rows.', r.relid, p.relation, o.name),
        format($sql$CREATE INDEX ON %s USING hnsw (%I %s) WITH (m = %s, ef_construction = %s);$sql$,
            r.relid, p.embedding_column, o.qualified, d.hnsw_m, d.hnsw_ef_construction)
    FROM memory_private._physical(d) AS p
    CROSS JOIN opclass AS o
    CROSS JOIN memory_private._domain_relations(d) AS r
    WHERE NOT r.is_root AND r.is_leaf
      AND NOT EXISTS (
          SELECT FROM x WHERE x.table_oid = r.relid AND x.is_valid AND x.opclass = o.name
      )
$$;

COMMENT ON FUNCTION memory_private._check_partition_missing_index(memory_private.domains) IS
'diagnose check partition_missing_index (error), one row per partition: a leaf partition '
'without a valid vector index of the domain''s operator class. fix_sql: its CREATE INDEX.';

CREATE OR REPLACE FUNCTION memory_private._check_ivfflat_on_small_table(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'ivfflat_on_small_table',
        format('IVFFlat index %s has %s lists but was built on %s rows (fewer than 10 per '
            || 'list): its centroids were trained on next to nothing, so searches miss '
            || 'neighbours. Replace it with HNSW, which needs no training.',
            x.index_name, x.lists, greatest(x.index_tuples, 0)::bigint),
        memory_private._diagnose_hnsw_fix(d)
    FROM (
        SELECT i.index_name, i.index_tuples, coalesce((
            SELECT substr(o, 7)::integer FROM unnest(i.options) AS o WHERE o LIKE 'lists=%'
        ), 100) AS lists
        FROM memory_private._domain_vector_indexes(d) AS i
        WHERE i.method = 'ivfflat' AND NOT i.is_partitioned
    ) AS x
    WHERE x.index_tuples < 10 * x.lists
$$;

COMMENT ON FUNCTION memory_private._check_ivfflat_on_small_table(memory_private.domains) IS
'diagnose check ivfflat_on_small_table (warning): an IVFFlat index built on fewer than 10 rows '
'per list (centroids trained on next to nothing). fix_sql: memory.create_hnsw_index.';

CREATE OR REPLACE FUNCTION memory_private._check_hnsw_exceeds_shared_buffers(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH budget AS (
        SELECT
            coalesce(pg_catalog.pg_size_bytes(s.setting),
                pg_catalog.pg_size_bytes(current_setting('shared_buffers'))) AS bytes,
            CASE WHEN s.setting IS NULL THEN 'shared_buffers'
                ELSE 'pgmemo.hnsw_memory_budget' END AS source
        FROM (SELECT nullif(current_setting('pgmemo.hnsw_memory_budget', true), '') AS setting) AS s
    )
    SELECT 'warning', d.domain, 'hnsw_exceeds_shared_buffers',
        format('HNSW index %s is %s, larger than %s (%s): every search reads pages from '
            || 'outside PostgreSQL''s buffer cache. Raise shared_buffers (ALTER SYSTEM SET '
            || 'shared_buffers = ''...''; then restart the server) or reduce the data or m.',
            x.index_name, pg_catalog.pg_size_pretty(x.size_bytes), b.source,
            pg_catalog.pg_size_pretty(b.bytes)),
        NULL::text
    FROM budget AS b
    CROSS JOIN memory_private._domain_vector_indexes(d) AS x
    WHERE x.method = 'hnsw' AND x.size_bytes > b.bytes
$$;

COMMENT ON FUNCTION memory_private._check_hnsw_exceeds_shared_buffers(memory_private.domains) IS
'diagnose check hnsw_exceeds_shared_buffers (warning): an HNSW index larger than shared_buffers '
'(or pgmemo.hnsw_memory_budget), so searches read pages from outside the buffer cache.';

-- The column's declared dimension against the registry, and (only when that is wrong or
-- missing) the vectors each model actually wrote, among the 1000 most recently updated rows.
CREATE OR REPLACE FUNCTION memory_private._check_dimension_mismatch(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    v_rel regclass := (memory_private._physical(d)).relation;
    v_typmod integer;
    v_written jsonb;
    v_txt text;
BEGIN
    SELECT a.atttypmod INTO v_typmod
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = v_rel AND a.attname = (memory_private._physical(d)).embedding_column
      AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'error', d.domain, 'dimension_mismatch',
            format('Table %s has no embedding column.', v_rel), NULL::text;
        RETURN;
    END IF;
    IF v_typmod IS NOT DISTINCT FROM d.dimension THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        SELECT jsonb_agg(jsonb_build_object('model', s.model, 'dims', s.dims))
        FROM (
            SELECT DISTINCT t.embedding_model AS model, %3$s.vector_dims(t.embedding) AS dims
            FROM (
                SELECT t.embedding_model, t.embedding FROM %1$I.%2$I AS t
                WHERE t.embedding IS NOT NULL
                ORDER BY t.updated_at DESC LIMIT 1000
            ) AS t
        ) AS s
        WHERE s.dims <> $1
    $q$, d.table_schema, d.table_name, memory_private._vector_schema())
    INTO v_written USING d.dimension;
    SELECT string_agg(format('%s wrote %s-dimensional vectors',
            coalesce(quote_literal(w.model), '(no model recorded)'), w.dims),
            '; ' ORDER BY w.model, w.dims)
    INTO v_txt
    FROM jsonb_to_recordset(coalesce(v_written, '[]')) AS w (model text, dims integer);
    RETURN QUERY SELECT 'error', d.domain, 'dimension_mismatch',
        format('Column %s.embedding is %s, but the domain is registered with %s dimensions%s: '
            'stores or searches with the registered dimension fail, and an HNSW index needs a '
            'fixed dimension. Make the column vector(%s) (clearing embeddings of another size, '
            'which the queue then re-embeds) or re-create the domain with the right dimension.',
            v_rel, CASE WHEN v_typmod > 0 THEN format('vector(%s)', v_typmod)
                ELSE 'vector without a dimension' END,
            d.dimension, coalesce('; recent rows: ' || v_txt, ''), d.dimension),
        NULL::text;
END;
$$;

COMMENT ON FUNCTION memory_private._check_dimension_mismatch(memory_private.domains) IS
'diagnose check dimension_mismatch (error): the embedding column is missing, or its declared '
'dimension differs from the registry''s (then the dimensions each model wrote among the 1000 '
'most recently updated rows are named).';

-- Embeddings written by another model than the domain's (vectors of different models are not
-- comparable), among the 1000 most recently updated embedded rows.
CREATE OR REPLACE FUNCTION memory_private._check_embedding_model_mismatch(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    v_others jsonb;
    v_txt text;
BEGIN
    IF d.embedding_model IS NULL OR d.adopted THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        SELECT jsonb_agg(jsonb_build_object('model', s.model, 'n', s.n))
        FROM (
            SELECT t.embedding_model AS model, count(*) AS n
            FROM (
                SELECT t.embedding_model FROM %I.%I AS t
                WHERE t.embedding IS NOT NULL
                ORDER BY t.updated_at DESC LIMIT 1000
            ) AS t
            WHERE t.embedding_model IS DISTINCT FROM $1 AND t.embedding_model IS NOT NULL
            GROUP BY 1
        ) AS s
    $q$, d.table_schema, d.table_name)
    INTO v_others USING d.embedding_model;
    SELECT string_agg(format('%s (%s rows)', quote_literal(o.model), o.n), ', ' ORDER BY o.n DESC)
    INTO v_txt
    FROM jsonb_to_recordset(coalesce(v_others, '[]')) AS o (model text, n bigint);
    IF v_txt IS NOT NULL THEN
        RETURN QUERY SELECT 'warning', d.domain, 'embedding_model_mismatch',
            format('The domain''s model is %L, but of its 1000 most recently updated embedded '
                'rows some were embedded by %s: vectors of different models are not comparable. '
                'Re-embed them: UPDATE %s SET embedding = NULL WHERE embedding_model IS '
                'DISTINCT FROM %L; (the queue embeds them again).',
                d.embedding_model, v_txt, (memory_private._physical(d)).relation,
                d.embedding_model),
            NULL::text;
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._check_embedding_model_mismatch(memory_private.domains) IS
'diagnose check embedding_model_mismatch (warning): among the 1000 most recently updated '
'embedded rows of a factory domain with a model, some were embedded by another model.';

CREATE OR REPLACE FUNCTION memory_private._check_stats_missing(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'stats_missing',
        format('Table %s (about %s rows) has never been analyzed: the planner guesses its size '
            || 'and may choose a sequential scan over the vector index.%s',
            p.relation, round(z.est_rows),
            CASE WHEN p.relation::oid IN (
                SELECT r.relid FROM memory_private._domain_relations(d) AS r WHERE NOT r.is_leaf)
                THEN ' Autovacuum never analyzes a partitioned parent.' ELSE '' END),
        format($sql$ANALYZE %s;$sql$, p.relation)
    FROM memory_private._physical(d) AS p
    CROSS JOIN memory_private._diagnose_size(d) AS z
    WHERE NOT z.has_stats AND (z.est_rows >= 1000 OR z.pages_now >= 128)
$$;

COMMENT ON FUNCTION memory_private._check_stats_missing(memory_private.domains) IS
'diagnose check stats_missing (warning): a table of 1000 rows or more (or 1 MB) that was never '
'analyzed. fix_sql: ANALYZE.';

CREATE OR REPLACE FUNCTION memory_private._check_stats_stale(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'stats_stale',
        format('Statistics of %s are stale: %s since they were gathered. The planner works '
            || 'from the old picture until the next ANALYZE.', p.relation,
            CASE WHEN z.pages_now > 2 * z.pages_analyzed + 128
                THEN format('the table grew from %s to %s pages', z.pages_analyzed, z.pages_now)
                ELSE memory_private._count_of(z.changed_since_analyze, 'row changed',
                    'rows changed') END),
        format($sql$ANALYZE %s;$sql$, p.relation)
    FROM memory_private._physical(d) AS p
    CROSS JOIN memory_private._diagnose_size(d) AS z
    WHERE z.has_stats
      AND (z.pages_now > 2 * z.pages_analyzed + 128
           OR z.changed_since_analyze > greatest(1000, 0.2 * z.tuples_analyzed))
$$;

COMMENT ON FUNCTION memory_private._check_stats_stale(memory_private.domains) IS
'diagnose check stats_stale (warning): the table more than doubled in pages, or more than 20% of '
'its rows (at least 1000) changed, since its last ANALYZE. fix_sql: ANALYZE.';

-- Rows without an embedding and without a job: nothing will ever embed them.
CREATE OR REPLACE FUNCTION memory_private._check_unqueued_null_embeddings(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    v_limit bigint := memory_private._diagnose_exact_rows();
    v_est double precision := (memory_private._diagnose_size(d)).est_rows;
    v_null_frac double precision;
    v_n bigint;
    v_about text;  -- what v_n is: '' a count, 'more than ' the bound, 'about ' an estimate
BEGIN
    IF d.distributed OR memory_private._is_distributed_table((memory_private._physical(d)).relation)
    THEN
        -- Citus: the shards' ids against the coordinator's queue, without a join.
        v_n := memory_private._dist_unqueued(d, v_limit);
        v_about := CASE WHEN v_n > v_limit THEN 'more than ' ELSE '' END;
        v_n := least(v_n, v_limit);
    ELSIF v_est <= v_limit THEN
        EXECUTE format($q$
            SELECT count(*) FROM (
                SELECT FROM %I.%I AS t
                WHERE t.embedding IS NULL
                  AND NOT EXISTS (
                      SELECT FROM memory_private.embedding_queue AS q
                      WHERE q.domain = $1 AND q.row_id = t.id
                  )
                LIMIT $2
            ) AS s
        $q$, d.table_schema, d.table_name)
        INTO v_n USING d.domain, v_limit + 1;
        v_about := CASE WHEN v_n > v_limit THEN 'more than ' ELSE '' END;
        v_n := least(v_n, v_limit);
    ELSE
        SELECT s.null_frac INTO v_null_frac
        FROM pg_catalog.pg_stats AS s
        JOIN pg_catalog.pg_class AS c ON c.relname = s.tablename
        WHERE c.oid = (memory_private._physical(d)).relation
          AND c.relnamespace::regnamespace::text = quote_ident(s.schemaname)
          AND s.attname = (memory_private._physical(d)).embedding_column
        ORDER BY s.inherited DESC
        LIMIT 1;
        v_n := greatest(round(coalesce(v_null_frac, 0) * v_est)
            - (memory_private._diagnose_queue(d)).jobs, 0);
        IF v_n <= greatest(100, 0.01 * v_est) THEN
            v_n := 0;  -- within the estimate's noise
        END IF;
        v_about := 'about ';
    END IF;
    IF v_n > 0 THEN
        RETURN QUERY SELECT 'warning', d.domain, 'unqueued_null_embeddings',
            v_about || memory_private._count_of(v_n,
                'row has no embedding and no queue job, so nothing will ever embed it and '
                    || 'memory.search never finds it (inserted with triggers disabled, restored '
                    || 'from a dump, or there before pgmemo). Queue it for the workers.',
                'rows have no embedding and no queue job, so nothing will ever embed them and '
                    || 'memory.search never finds them (inserted with triggers disabled, restored '
                    || 'from a dump, or there before pgmemo). Queue them for the workers.'),
            format($sql$SELECT memory.enqueue_missing(%L);$sql$, d.domain);
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._check_unqueued_null_embeddings(memory_private.domains) IS
'diagnose check unqueued_null_embeddings (warning): rows without an embedding and without a '
'queue job (counted exactly up to pgmemo.diagnose_exact_rows rows, estimated from pg_stats '
'above). fix_sql: memory.enqueue_missing.';

CREATE OR REPLACE FUNCTION memory_private._check_dead_jobs(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'dead_jobs',
        format('%s embedding jobs are dead (failed %s times); their rows stay unembedded. Most '
            || 'common errors: %s. Fix the cause, then re-queue them.', q.dead,
            memory_private._setting('pgmemo.max_attempts', 5), e.errors),
        format($sql$SELECT memory.requeue_dead(%L);$sql$, d.domain)
    FROM memory_private._diagnose_queue(d) AS q
    CROSS JOIN LATERAL (
        SELECT string_agg(format('%s x "%s"', x.n, x.err), '; ' ORDER BY x.n DESC, x.err) AS errors
        FROM (
            SELECT left(coalesce(j.last_error, '(no error recorded)'), 160) AS err, count(*) AS n
            FROM memory_private.embedding_queue AS j
            WHERE j.domain = d.domain AND j.status = 'dead'
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3
        ) AS x
    ) AS e
    WHERE q.dead > 0
$$;

COMMENT ON FUNCTION memory_private._check_dead_jobs(memory_private.domains) IS
'diagnose check dead_jobs (warning): jobs that reached the retry limit, with their three most '
'common errors. fix_sql: memory.requeue_dead.';

CREATE OR REPLACE FUNCTION memory_private._check_queue_not_draining(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'queue_not_draining',
        format('%s %s (more than %s): the workers '
            || '(%s alive) do not keep up or are stuck. Start more `pgmemo worker` processes or '
            || 'check their logs.', memory_private._count_of(q.ready, 'job is ready and has waited',
                'jobs are ready and the oldest has waited'), date_trunc('second', q.oldest_ready), s.stall,
            (SELECT count(*) FROM memory.workers AS w WHERE w.alive)),
        NULL::text
    FROM memory_private._diagnose_queue(d) AS q
    CROSS JOIN (
        SELECT make_interval(
            secs => memory_private._setting('pgmemo.queue_stall_seconds', 900)::double precision
        ) AS stall
    ) AS s
    WHERE q.ready > 0 AND q.oldest_ready > s.stall
$$;

COMMENT ON FUNCTION memory_private._check_queue_not_draining(memory_private.domains) IS
'diagnose check queue_not_draining (warning): the oldest ready job has waited longer than '
'pgmemo.queue_stall_seconds (900): the workers do not keep up or are stuck.';

CREATE OR REPLACE FUNCTION memory_private._check_no_live_worker(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'no_live_worker',
        format('%s for an embedding but no worker has sent a heartbeat in the last 2 '
            || 'minutes: start one with `pgmemo worker`.',
            memory_private._count_of(q.ready, 'job waits', 'jobs wait')),
        NULL::text
    FROM memory_private._diagnose_queue(d) AS q
    WHERE q.ready > 0 AND NOT EXISTS (SELECT FROM memory.workers AS w WHERE w.alive)
$$;

COMMENT ON FUNCTION memory_private._check_no_live_worker(memory_private.domains) IS
'diagnose check no_live_worker (warning): jobs are ready but no worker sent a heartbeat in the '
'last 2 minutes.';

CREATE OR REPLACE FUNCTION memory_private._check_expired_claims(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'expired_claims',
        memory_private._count_of(q.expired,
            'job is claimed by a worker whose lease has expired (the worker died or hung); it '
                || 'waits until the claim is released.',
            'jobs are claimed by workers whose lease has expired (the worker died or hung); they '
                || 'wait until the claims are released.'),
        'SELECT memory.release_expired_claims();'
    FROM memory_private._diagnose_queue(d) AS q
    WHERE q.expired > 0
$$;

COMMENT ON FUNCTION memory_private._check_expired_claims(memory_private.domains) IS
'diagnose check expired_claims (warning): claimed jobs whose lease has expired. fix_sql: '
'memory.release_expired_claims.';

-- The domain's text search configuration, or a dictionary it maps words to, belongs to a role
-- pgmemo does not trust (the rule: memory_private._text_config_untrusted, 05_trust.sql):
-- create_domain refuses such a configuration, but one handed to another role since (ALTER TEXT
-- SEARCH CONFIGURATION ... OWNER TO) or given a mapping to another role's dictionary is found
-- only here. One row per object; fix_sql gives it back to pgmemo's owner (run by a superuser or
-- a member of its owner); the other way out is a domain with a trusted configuration.
CREATE OR REPLACE FUNCTION memory_private._check_untrusted_text_config(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'untrusted_text_config',
        format('%s: it can change or drop what the domain''s text search indexes and finds, and '
            || 'pgmemo refuses to make anything more from it (begin_reembed, an adopted '
            || 'domain''s text index). Give it back to a trusted role, or move the memories to '
            || 'a domain with a trusted configuration.', u.detail),
        format($sql$ALTER TEXT SEARCH %s %s OWNER TO %I;$sql$, u.kind, u.object,
            pg_catalog.pg_get_userbyid(memory_private._owner()))
    FROM memory_private._text_config_untrusted(d.text_config) AS u
$$;

COMMENT ON FUNCTION memory_private._check_untrusted_text_config(memory_private.domains) IS
'diagnose check untrusted_text_config (error), one row per object: the domain''s text search '
'configuration, or a dictionary it maps words to, belongs to a role pgmemo does not trust '
'(handed over after create_domain checked it). fix_sql: ALTER TEXT SEARCH ... OWNER TO pgmemo''s '
'owner.';
