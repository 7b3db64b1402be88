-- Diagnostics, part 2: the per-domain checks behind memory.diagnose() (60_diagnostics.sql).
-- Every failure from the incident reports, found by one call, each with a sentence and (where
-- the fix is one SQL statement) fix_sql.
--
-- Cost: diagnose() reads catalogs, cumulative statistics and the queue; it scans a domain table
-- only where nothing cheaper can answer, and then boundedly (see _diagnose_domain).
-- Tunables (custom settings, e.g. ALTER DATABASE ... SET pgmemo.queue_stall_seconds = 300):
--   pgmemo.queue_stall_seconds  a ready job waiting longer means the queue is not draining (900)
--   pgmemo.diagnose_exact_rows  up to this many rows, missing-embedding rows are counted exactly
--                               (one scan); above it they are estimated from pg_stats (100000)
--   pgmemo.hnsw_memory_budget   the cache an HNSW index should fit in (default: shared_buffers)

-- All checks for one domain. Scans of the domain table, and how they are bounded:
--   unqueued_null_embeddings: one NOT EXISTS anti-join scan up to pgmemo.diagnose_exact_rows
--     estimated rows (LIMIT-ed); above that, pg_stats null_frac x estimated rows vs the queue.
--   embedding_model_mismatch: the 1000 most recently updated embedded rows (index on updated_at).
--   dimension_mismatch per model: only when the column's declared dimension is wrong or missing,
--     the 1000 most recently updated rows.
-- Everything else reads pg_class, pg_index, pg_stats, pg_stat_all_tables and the queue.
CREATE OR REPLACE FUNCTION memory_private._diagnose_domain(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    -- The physical table (an adopted domain's source) for catalog checks; the domain table
    -- (a view for adopted domains) for row-level reads, which use the standard column names.
    v_rel regclass := (memory_private._physical(d)).relation;
    v_col name := (memory_private._physical(d)).embedding_column;
    v_table text := format('%I.%I', d.table_schema, d.table_name);
    v_expected text := memory_private._opclass(d);
    v_opclass_q text;
    v_hnsw_fix text := format('SELECT memory.create_hnsw_index(%L, m => %s, ef_construction => %s);',
        d.domain, d.hnsw_m, d.hnsw_ef_construction);
    v_bs bigint := current_setting('block_size')::bigint;
    v_budget bigint;
    v_exact_limit bigint := memory_private._setting('pgmemo.diagnose_exact_rows', 100000)::bigint;
    v_stall interval := make_interval(
        secs => memory_private._setting('pgmemo.queue_stall_seconds', 900)::double precision);
    v_idx record;
    v_n bigint;
    v_txt text;
    v_typmod integer;
    v_est double precision;
    v_pages_now double precision;
    v_pages_rec double precision;
    v_tuples double precision;
    v_mod double precision;
    v_has_stats boolean;
    v_null_frac double precision;
    v_q record;
    v_alive bigint;
BEGIN
    domain := d.domain;
    IF v_rel IS NULL THEN
        severity := 'error';
        check_name := 'table_missing';
        detail := format('The registry points at table %I.%I, which does not exist: every call on '
            'this domain fails. Drop the domain (SELECT memory.drop_domain(%L);) or restore the table.',
            d.table_schema, d.table_name, d.domain);
        fix_sql := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    IF d.distributed OR memory_private._citus_version() IS NOT NULL THEN
        -- Citus (48_distributed.sql); with a worker down the row-reading checks below would fail.
        RETURN QUERY SELECT * FROM memory_private._diagnose_distributed(d);
        IF EXISTS (SELECT FROM memory_private._unreachable_nodes(d)) THEN
            RETURN;
        END IF;
    END IF;
    SELECT format('%I.%I', n.nspname, v_expected) INTO v_opclass_q
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';

    -- Vector indexes on the table itself (what memory.create_hnsw_index manages).
    SELECT count(*), string_agg(format('%s (%s, %s%s)', x.index_name, x.method, x.opclass,
            CASE WHEN x.is_valid THEN '' ELSE ', INVALID' END), ', ')
    INTO v_n, v_txt
    FROM memory_private._vector_indexes(d) AS x;
    IF v_n = 0 THEN
        RETURN QUERY SELECT 'error', d.domain, 'no_vector_index',
            format('Table %s has no vector index on embedding: every memory.search reads every row. '
                'Build the HNSW index (it blocks writes to the table while it builds).', v_rel),
            v_hnsw_fix;
    ELSIF v_n > 1 THEN
        RETURN QUERY SELECT 'warning', d.domain, 'duplicate_vector_indexes',
            format('%s vector indexes on %s.embedding: %s. Every write updates all of them and the '
                'planner may pick any; keep exactly one HNSW index with %s.', v_n, v_rel, v_txt,
                v_expected),
            v_hnsw_fix;
    END IF;
    FOR v_idx IN SELECT * FROM memory_private._vector_indexes(d) AS x WHERE x.opclass <> v_expected LOOP
        RETURN QUERY SELECT 'error', d.domain, 'opclass_mismatch',
            format('Index %s uses operator class %s, but the domain''s distance is %s, which needs %s: '
                'memory.search cannot use this index.', v_idx.index_name, v_idx.opclass,
                d.distance, v_expected),
            v_hnsw_fix;
    END LOOP;

    -- An adopted table without its helper indexes (create_indexes => false).
    SELECT string_agg(h.index_name, ', ' ORDER BY h.index_name) INTO v_txt
    FROM memory_private._adopted_helper_indexes(d) AS h WHERE NOT h.present;
    IF v_txt IS NOT NULL THEN
        RETURN QUERY SELECT 'warning', d.domain, 'adopted_index_missing',
            format('Adopted table %s lacks %s: each lookup by id (every embedding job) or full-text '
                'search reads the whole table. Build them without blocking writes: pgmemo index build '
                '--concurrently %s.', v_rel, v_txt, d.domain),
            NULL::text;
    END IF;

    -- INVALID indexes (a failed CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY) on the table
    -- or its partitions. Partitioned parent indexes are left to partition_missing_index.
    FOR v_idx IN
        SELECT c.relname, n.nspname, am.amname, i.indrelid = v_rel::oid AS on_root
        FROM memory_private._domain_relations(d) AS r
        JOIN pg_catalog.pg_index AS i ON i.indrelid = r.relid
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
        WHERE NOT i.indisvalid AND c.relkind = 'i'
        ORDER BY c.relname
    LOOP
        RETURN QUERY SELECT 'error', d.domain, 'invalid_index',
            format('Index %I.%I (%s) is INVALID, left by a failed CREATE INDEX CONCURRENTLY: the '
                'planner never uses it but every write still updates it.%s',
                v_idx.nspname, v_idx.relname, v_idx.amname,
                CASE WHEN v_idx.amname IN ('hnsw', 'ivfflat') AND v_idx.on_root
                    THEN ' memory.create_hnsw_index drops it and leaves one valid HNSW index.'
                    ELSE ' Rebuild it.' END),
            CASE WHEN v_idx.amname IN ('hnsw', 'ivfflat') AND v_idx.on_root THEN v_hnsw_fix
                ELSE format('REINDEX INDEX CONCURRENTLY %I.%I;', v_idx.nspname, v_idx.relname) END;
    END LOOP;

    -- Partitions without a valid vector index with the right operator class.
    FOR v_idx IN
        WITH x AS (SELECT * FROM memory_private._domain_vector_indexes(d))
        SELECT r.relid
        FROM memory_private._domain_relations(d) AS r
        WHERE NOT r.is_root AND r.is_leaf
          AND NOT EXISTS (
              SELECT FROM x
              WHERE x.table_oid = r.relid AND x.is_valid AND x.opclass = v_expected
          )
        ORDER BY r.relid::text
    LOOP
        RETURN QUERY SELECT 'error', d.domain, 'partition_missing_index',
            format('Partition %s of %s has no valid vector index with %s: every search reads all '
                'of its rows.', v_idx.relid, v_rel, v_expected),
            format('CREATE INDEX ON %s USING hnsw (%I %s) WITH (m = %s, ef_construction = %s);',
                v_idx.relid, v_col, v_opclass_q, d.hnsw_m, d.hnsw_ef_construction);
    END LOOP;

    -- IVFFlat indexes whose lists were trained on (almost) no rows.
    FOR v_idx IN
        SELECT x.*, coalesce((
            SELECT substr(o, 7)::integer FROM unnest(x.options) AS o WHERE o LIKE 'lists=%'), 100)
            AS lists
        FROM memory_private._domain_vector_indexes(d) AS x
        WHERE x.method = 'ivfflat' AND NOT x.is_partitioned
    LOOP
        IF v_idx.index_tuples < 10 * v_idx.lists THEN
            RETURN QUERY SELECT 'warning', d.domain, 'ivfflat_on_small_table',
                format('IVFFlat index %s has %s lists but was built on %s rows (fewer than 10 per '
                    'list): its centroids were trained on next to nothing, so searches miss '
                    'neighbours. Replace it with HNSW, which needs no training.',
                    v_idx.index_name, v_idx.lists, greatest(v_idx.index_tuples, 0)::bigint),
                v_hnsw_fix;
        END IF;
    END LOOP;

    -- HNSW indexes larger than the buffer cache.
    v_budget := coalesce(
        pg_catalog.pg_size_bytes(nullif(current_setting('pgmemo.hnsw_memory_budget', true), '')),
        pg_catalog.pg_size_bytes(current_setting('shared_buffers')));
    FOR v_idx IN
        SELECT * FROM memory_private._domain_vector_indexes(d) AS x
        WHERE x.method = 'hnsw' AND x.size_bytes > v_budget
    LOOP
        RETURN QUERY SELECT 'warning', d.domain, 'hnsw_exceeds_shared_buffers',
            format('HNSW index %s is %s, larger than %s (%s): every search reads pages from '
                'outside PostgreSQL''s buffer cache. Raise shared_buffers (ALTER SYSTEM SET '
                'shared_buffers = ''...''; then restart the server) or reduce the data or m.',
                v_idx.index_name, pg_catalog.pg_size_pretty(v_idx.size_bytes),
                CASE WHEN nullif(current_setting('pgmemo.hnsw_memory_budget', true), '') IS NULL
                    THEN 'shared_buffers' ELSE 'pgmemo.hnsw_memory_budget' END,
                pg_catalog.pg_size_pretty(v_budget)),
            NULL::text;
    END LOOP;

    -- Dimensions: the column's declared dimension against the registry, and (only when that is
    -- wrong or missing) the vectors each model actually wrote.
    SELECT a.atttypmod INTO v_typmod
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = v_rel AND a.attname = v_col AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'error', d.domain, 'dimension_mismatch',
            format('Table %s has no embedding column.', v_rel), NULL::text;
    ELSIF v_typmod IS DISTINCT FROM d.dimension THEN
        EXECUTE format(
            'SELECT string_agg(format(''%%s wrote %%s-dimensional vectors'', '
            'coalesce(quote_literal(s.m), ''(no model recorded)''), s.dims), ''; '' ORDER BY s.m, s.dims) '
            'FROM (SELECT DISTINCT t.embedding_model AS m, vector_dims(t.embedding) AS dims '
            'FROM (SELECT t.embedding_model, t.embedding FROM %s AS t WHERE t.embedding IS NOT NULL '
            'ORDER BY t.updated_at DESC LIMIT 1000) AS t) AS s WHERE s.dims <> $1', v_table)
        INTO v_txt USING d.dimension;
        RETURN QUERY SELECT 'error', d.domain, 'dimension_mismatch',
            format('Column %s.embedding is %s, but the domain is registered with %s dimensions%s: '
                'stores or searches with the registered dimension fail, and an HNSW index needs a '
                'fixed dimension. Make the column vector(%s) (clearing embeddings of another size, '
                'which the queue then re-embeds) or re-create the domain with the right dimension.',
                v_rel, CASE WHEN v_typmod > 0 THEN format('vector(%s)', v_typmod)
                    ELSE 'vector without a dimension' END,
                d.dimension, coalesce('; recent rows: ' || v_txt, ''), d.dimension),
            NULL::text;
    END IF;

    -- Embeddings written by another model than the domain's (vectors of different models are
    -- not comparable): the 1000 most recently updated embedded rows.
    IF d.embedding_model IS NOT NULL AND NOT d.adopted THEN
        EXECUTE format(
            'SELECT string_agg(format(''%%s (%%s rows)'', quote_literal(s.m), s.n), '', '' ORDER BY s.n DESC) '
            'FROM (SELECT t.embedding_model AS m, count(*) AS n FROM (SELECT t.embedding_model '
            'FROM %s AS t WHERE t.embedding IS NOT NULL ORDER BY t.updated_at DESC LIMIT 1000) AS t '
            'WHERE t.embedding_model IS DISTINCT FROM $1 AND t.embedding_model IS NOT NULL '
            'GROUP BY 1) AS s', v_table)
        INTO v_txt USING d.embedding_model;
        IF v_txt IS NOT NULL THEN
            RETURN QUERY SELECT 'warning', d.domain, 'embedding_model_mismatch',
                format('The domain''s model is %L, but of its 1000 most recently updated embedded '
                    'rows some were embedded by %s: vectors of different models are not comparable. '
                    'Re-embed them: UPDATE %s SET embedding = NULL WHERE embedding_model IS '
                    'DISTINCT FROM %L; (the queue embeds them again).',
                    d.embedding_model, v_txt, v_rel, d.embedding_model),
                NULL::text;
        END IF;
    END IF;

    -- Size and statistics from the catalogs (no scan): over the leaves of a partitioned table.
    SELECT
        sum(CASE
            WHEN c.reltuples >= 0 AND c.relpages > 0
                THEN c.reltuples / c.relpages * greatest(pg_catalog.pg_relation_size(c.oid) / v_bs, 1)
            WHEN c.reltuples >= 0 THEN c.reltuples
            ELSE greatest(coalesce(s.n_live_tup, 0), pg_catalog.pg_relation_size(c.oid) / v_bs * 50)
        END),
        sum(pg_catalog.pg_relation_size(c.oid) / v_bs),
        sum(greatest(c.relpages, 0)),
        sum(greatest(c.reltuples, 0)),
        sum(coalesce(s.n_mod_since_analyze, 0))
    INTO v_est, v_pages_now, v_pages_rec, v_tuples, v_mod
    FROM memory_private._domain_relations(d) AS r
    JOIN pg_catalog.pg_class AS c ON c.oid = r.relid
    LEFT JOIN pg_catalog.pg_stat_all_tables AS s ON s.relid = r.relid
    WHERE r.is_leaf;
    v_est := coalesce(v_est, 0);
    SELECT EXISTS (
        SELECT FROM pg_catalog.pg_stats AS s
        JOIN pg_catalog.pg_class AS c ON c.relname = s.tablename
        WHERE c.oid = v_rel AND c.relnamespace::regnamespace::text = quote_ident(s.schemaname)
    ) OR EXISTS (
        SELECT FROM pg_catalog.pg_stat_all_tables AS s
        WHERE s.relid = v_rel AND (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL)
    ) INTO v_has_stats;
    IF NOT v_has_stats AND (v_est >= 1000 OR v_pages_now >= 128) THEN
        RETURN QUERY SELECT 'warning', d.domain, 'stats_missing',
            format('Table %s (about %s rows) has never been analyzed: the planner guesses its size '
                'and may choose a sequential scan over the vector index.%s', v_rel, round(v_est),
                CASE WHEN v_rel::oid IN (SELECT r.relid FROM memory_private._domain_relations(d) AS r
                    WHERE NOT r.is_leaf) THEN ' Autovacuum never analyzes a partitioned parent.'
                    ELSE '' END),
            format('ANALYZE %s;', v_rel);
    ELSIF v_has_stats AND (v_pages_now > 2 * v_pages_rec + 128 OR v_mod > greatest(1000, 0.2 * v_tuples))
    THEN
        RETURN QUERY SELECT 'warning', d.domain, 'stats_stale',
            format('Statistics of %s are stale: %s since they were gathered. The planner works '
                'from the old picture until the next ANALYZE.', v_rel,
                CASE WHEN v_pages_now > 2 * v_pages_rec + 128
                    THEN format('the table grew from %s to %s pages', v_pages_rec, v_pages_now)
                    ELSE format('%s rows changed', v_mod) END),
            format('ANALYZE %s;', v_rel);
    END IF;

    -- The queue (its own indexes make these cheap).
    SELECT
        count(*) FILTER (WHERE q.status = 'dead') AS dead,
        count(*) FILTER (WHERE q.status = 'pending' AND q.run_after <= now()) AS ready,
        now() - min(q.run_after) FILTER (WHERE q.status = 'pending' AND q.run_after <= now()) AS oldest,
        count(*) FILTER (WHERE q.status = 'claimed' AND q.lease_until < now()) AS expired,
        count(*) AS jobs
    INTO v_q
    FROM memory_private.embedding_queue AS q
    WHERE q.domain = d.domain;

    -- Rows without an embedding and without a job: nothing will ever embed them.
    IF d.distributed OR memory_private._is_distributed_table(v_rel) THEN
        -- Citus: the shards' ids against the coordinator's queue, without a join.
        v_n := memory_private._dist_unqueued(d, v_exact_limit);
        v_txt := CASE WHEN v_n > v_exact_limit THEN 'more than ' || v_exact_limit ELSE v_n::text END;
    ELSIF v_est <= v_exact_limit THEN
        EXECUTE format(
            'SELECT count(*) FROM (SELECT FROM %s AS t WHERE t.embedding IS NULL AND NOT EXISTS ('
            'SELECT FROM memory_private.embedding_queue AS q WHERE q.domain = $1 AND q.row_id = t.id) '
            'LIMIT $2) AS s', v_table)
        INTO v_n USING d.domain, v_exact_limit + 1;
        v_txt := CASE WHEN v_n > v_exact_limit THEN 'more than ' || v_exact_limit ELSE v_n::text END;
    ELSE
        SELECT s.null_frac INTO v_null_frac
        FROM pg_catalog.pg_stats AS s
        JOIN pg_catalog.pg_class AS c ON c.relname = s.tablename
        WHERE c.oid = v_rel AND c.relnamespace::regnamespace::text = quote_ident(s.schemaname)
          AND s.attname = v_col
        ORDER BY s.inherited DESC
        LIMIT 1;
        v_n := greatest(round(coalesce(v_null_frac, 0) * v_est) - v_q.jobs, 0);
        IF v_n <= greatest(100, 0.01 * v_est) THEN
            v_n := 0;  -- within the estimate's noise
        END IF;
        v_txt := 'about ' || v_n;
    END IF;
    IF v_n > 0 THEN
        RETURN QUERY SELECT 'warning', d.domain, 'unqueued_null_embeddings',
            format('%s rows have no embedding and no queue job, so nothing will ever embed them and '
                'memory.search never finds them (inserted with triggers disabled, restored from a '
                'dump, or there before pgmemo). Queue them for the workers.', v_txt),
            format('SELECT memory.enqueue_missing(%L);', d.domain);
    END IF;

    IF v_q.dead > 0 THEN
        SELECT string_agg(format('%s x "%s"', e.n, e.err), '; ' ORDER BY e.n DESC, e.err) INTO v_txt
        FROM (
            SELECT left(coalesce(q.last_error, '(no error recorded)'), 160) AS err, count(*) AS n
            FROM memory_private.embedding_queue AS q
            WHERE q.domain = d.domain AND q.status = 'dead'
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3
        ) AS e;
        RETURN QUERY SELECT 'warning', d.domain, 'dead_jobs',
            format('%s embedding jobs are dead (failed %s times); their rows stay unembedded. Most '
                'common errors: %s. Fix the cause, then re-queue them.', v_q.dead,
                memory_private._setting('pgmemo.max_attempts', 5), v_txt),
            format('SELECT memory.requeue_dead(%L);', d.domain);
    END IF;

    SELECT count(*) INTO v_alive FROM memory.workers AS w WHERE w.alive;
    IF v_q.ready > 0 AND v_q.oldest > v_stall THEN
        RETURN QUERY SELECT 'warning', d.domain, 'queue_not_draining',
            format('%s jobs are ready and the oldest has waited %s (more than %s): the workers '
                '(%s alive) do not keep up or are stuck. Start more `pgmemo worker` processes or '
                'check their logs.', v_q.ready, date_trunc('second', v_q.oldest), v_stall, v_alive),
            NULL::text;
    END IF;
    IF v_q.ready > 0 AND v_alive = 0 THEN
        RETURN QUERY SELECT 'warning', d.domain, 'no_live_worker',
            format('%s jobs wait for an embedding but no worker has sent a heartbeat in the last 2 '
                'minutes: start one with `pgmemo worker`.', v_q.ready),
            NULL::text;
    END IF;
    IF v_q.expired > 0 THEN
        RETURN QUERY SELECT 'warning', d.domain, 'expired_claims',
            format('%s jobs are claimed by workers whose lease has expired (the worker died or '
                'hung); they wait until the claims are released.', v_q.expired),
            'SELECT memory.release_expired_claims();';
    END IF;
END;
$$;
