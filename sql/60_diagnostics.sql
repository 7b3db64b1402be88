-- Diagnostics, part 1: the views embedding_coverage, vector_indexes and queue_status, the
-- helpers memory.diagnose() shares with them (61_diagnose.sql; the index helpers live in
-- 40_indexes.sql), and memory.explain_search()
-- (EXPLAIN of exactly the SQL memory.search runs: the proof that the vector index is used).

-- Exact row counts for the coverage view (one scan of the table).
CREATE OR REPLACE FUNCTION memory_private._coverage_counts(
    d memory_private.domains, OUT total_rows bigint, OUT embedded_rows bigint
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NULL
        OR NOT memory_private._readable(d) THEN
        RETURN;
    END IF;
    EXECUTE format($sql$SELECT count(*), count(*) FILTER (WHERE t.embedding IS NOT NULL) FROM %I.%I AS t$sql$,
        d.table_schema, d.table_name)
    INTO total_rows, embedded_rows;
END;
$$;

CREATE OR REPLACE VIEW memory.embedding_coverage AS
SELECT
    d.domain,
    c.total_rows,
    c.embedded_rows,
    c.total_rows - c.embedded_rows AS missing_rows,
    CASE
        WHEN c.total_rows > 0 THEN round(100.0 * c.embedded_rows / c.total_rows, 2)
    END AS coverage_pct,
    coalesce(q.queued_jobs, 0) AS queued_jobs,
    coalesce(q.dead_jobs, 0) AS dead_jobs
FROM memory_private.domains AS d
CROSS JOIN LATERAL memory_private._coverage_counts(d) AS c
LEFT JOIN LATERAL (
    SELECT
        count(*) FILTER (WHERE j.status <> 'dead') AS queued_jobs,
        count(*) FILTER (WHERE j.status = 'dead') AS dead_jobs
    FROM memory_private.embedding_queue AS j
    WHERE j.domain = d.domain
) AS q ON TRUE
WHERE memory_private._can(d.domain, 'read');

COMMENT ON VIEW memory.embedding_coverage IS
'Per domain: rows, rows with an embedding, rows without (missing_rows), coverage_pct (NULL for '
'an empty table), queued_jobs (pending or claimed) and dead_jobs. Counts are exact: one scan of '
'each domain table (filter on domain to read one).';

CREATE OR REPLACE VIEW memory.vector_indexes AS
SELECT
    d.domain,
    v.index_name,
    v.method,
    v.opclass,
    v.options,
    v.size_bytes,
    v.is_valid,
    v.scans,
    v.table_oid::text AS table_name,
    v.opclass = memory_private._opclass(d) AS matches_distance,
    v.is_partitioned
FROM memory_private.domains AS d
CROSS JOIN LATERAL memory_private._domain_vector_indexes(d) AS v
WHERE memory_private._can(d.domain, 'read');

COMMENT ON VIEW memory.vector_indexes IS
'Every vector index (hnsw, ivfflat) on a domain''s embedding column, and on its partitions when '
'the table is partitioned: method, operator class, options (m, ef_construction, lists), size, '
'validity, index scans since the statistics were reset, the table it is on, and whether the '
'operator class matches the domain''s distance (else memory.search cannot use it).';

CREATE OR REPLACE VIEW memory.queue_status AS
WITH q AS (
    SELECT
        j.domain,
        count(*) FILTER (WHERE j.status = 'pending' AND j.attempts = 0) AS pending,
        count(*) FILTER (WHERE j.status = 'claimed') AS claimed,
        count(*) FILTER (WHERE j.status = 'pending' AND j.attempts > 0) AS retrying,
        count(*) FILTER (WHERE j.status = 'dead') AS dead,
        now() - min(j.run_after) FILTER (
            WHERE j.status = 'pending' AND j.run_after <= now()
        ) AS oldest_pending_age,
        count(*) FILTER (WHERE j.status = 'pending' AND j.run_after <= now()) AS ready,
        count(*) FILTER (WHERE j.status = 'claimed' AND j.lease_until < now()) AS expired_claims
    FROM memory_private.embedding_queue AS j
    GROUP BY j.domain
)

SELECT
    d.domain,
    coalesce(q.pending, 0) AS pending,
    coalesce(q.claimed, 0) AS claimed,
    coalesce(q.retrying, 0) AS retrying,
    coalesce(q.dead, 0) AS dead,
    q.oldest_pending_age,
    coalesce(q.ready, 0) AS ready,
    coalesce(q.expired_claims, 0) AS expired_claims
FROM memory_private.domains AS d
LEFT JOIN q ON d.domain = q.domain
WHERE memory_private._can(d.domain, 'read');

COMMENT ON VIEW memory.queue_status IS
'The embedding queue per domain: pending (new jobs), claimed (leased to a worker), retrying '
'(waiting again after a failure), dead (retry limit reached; memory.requeue_dead), '
'oldest_pending_age (how long the longest-waiting ready job has waited for a worker), ready '
'(jobs a worker could claim now) and expired_claims (leases past their end, not yet released).';

-- pgvector's version against what pgmemo needs (a function of the version so it can be tested).
CREATE OR REPLACE FUNCTION memory_private._check_pgvector(version integer[])
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', NULL::text, 'pgvector_too_old',
        format('pgvector %s has no HNSW index (0.5.0 or later is needed; 0.8.0 for iterative '
            || 'index scans): every search scans the whole table. Install a newer pgvector '
            || 'on the server, then update the extension.', array_to_string(version, '.')),
        'ALTER EXTENSION vector UPDATE;'
    WHERE version < ARRAY[0, 5, 0]
    UNION ALL
    SELECT 'warning', NULL::text, 'pgvector_too_old',
        format('pgvector %s has no iterative index scans (0.8.0 or later): a search with a '
            || 'filter may return fewer than k rows although k rows match. Install a newer '
            || 'pgvector on the server, then update the extension.', array_to_string(version, '.')),
        'ALTER EXTENSION vector UPDATE;'
    WHERE version >= ARRAY[0, 5, 0] AND version < ARRAY[0, 8, 0]
$$;

COMMENT ON FUNCTION memory_private._check_pgvector(integer[]) IS
'diagnose check pgvector_too_old: error below pgvector 0.5.0 (no HNSW), warning below 0.8.0 (no '
'iterative index scans). A function of the version, so it can be tested with any.';

-- The body of memory.diagnose (a separate function: in PL/pgSQL the parameter domain and the
-- result column domain would clash): every check, one function each, combined and ordered.
CREATE OR REPLACE FUNCTION memory_private._diagnose(p_domain text)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_version integer[] := memory_private._vector_version();
BEGIN
    IF p_domain IS NOT NULL THEN
        -- the access check alone: an adopted table pgmemo may not read is not read here (the
        -- checks that read rows skip it, _readable) and diagnose says why
        PERFORM memory_private._check_access((memory_private._domain(p_domain)).domain, 'read');
    END IF;
    RETURN QUERY
    WITH checks AS (
        SELECT * FROM memory_private._check_pgvector(v_version)
        UNION ALL
        SELECT * FROM memory_private._check_schema_create()
        UNION ALL
        SELECT 'info', NULL, 'no_domains',
            'No domain yet: create one with SELECT memory.create_domain(''name'', dimension);', NULL
        WHERE NOT EXISTS (SELECT FROM memory_private.domains)
        UNION ALL
        SELECT c.*
        FROM memory_private.domains AS d
        CROSS JOIN LATERAL memory_private._check_table_missing(d) AS c
        WHERE (p_domain IS NULL OR d.domain = p_domain) AND memory_private._can(d.domain, 'read')
        UNION ALL
        -- An adopted table that would run another role's code (05_trust.sql), a text search
        -- configuration of another role's (61_diagnose.sql): catalogs only, table or not.
        SELECT c.*
        FROM memory_private.domains AS d
        CROSS JOIN LATERAL (
            SELECT * FROM memory_private._check_adopted_foreign_code(d)
            UNION ALL SELECT * FROM memory_private._check_untrusted_text_config(d)
        ) AS c
        WHERE (p_domain IS NULL OR d.domain = p_domain) AND memory_private._can(d.domain, 'read')
        UNION ALL
        -- Citus (48_distributed.sql): the cluster's checks of a domain, one function each.
        SELECT c.*
        FROM memory_private.domains AS d
        CROSS JOIN LATERAL (
            SELECT * FROM memory_private._check_not_distributed(d)
            UNION ALL SELECT * FROM memory_private._check_distributed_outside_pgmemo(d)
            UNION ALL SELECT * FROM memory_private._check_worker_unreachable(d)
            UNION ALL SELECT * FROM memory_private._check_citus_connection_cache(d)
            UNION ALL SELECT * FROM memory_private._check_shard_missing_index(d)
            UNION ALL SELECT * FROM memory_private._check_shard_index_settings_differ(d)
        ) AS c
        WHERE (p_domain IS NULL OR d.domain = p_domain) AND memory_private._can(d.domain, 'read')
          AND (memory_private._physical(d)).relation IS NOT NULL
          AND (d.distributed OR memory_private._citus_version() IS NOT NULL)
        UNION ALL
        -- One function per check (61_diagnose.sql), on the domains whose table exists (and, on
        -- Citus, whose workers all answer; adopted: that pgmemo may read, see _readable: these
        -- checks read rows).
        SELECT c.*
        FROM memory_private.domains AS d
        CROSS JOIN LATERAL (
            SELECT * FROM memory_private._check_no_vector_index(d)
            UNION ALL SELECT * FROM memory_private._check_duplicate_vector_indexes(d)
            UNION ALL SELECT * FROM memory_private._check_opclass_mismatch(d)
            UNION ALL SELECT * FROM memory_private._check_adopted_index_missing(d)
            UNION ALL SELECT * FROM memory_private._check_adopted_id_nullable(d)
            UNION ALL SELECT * FROM memory_private._check_text_index_out_of_sync(d)
            UNION ALL SELECT * FROM memory_private._check_invalid_index(d)
            UNION ALL SELECT * FROM memory_private._check_partition_missing_index(d)
            UNION ALL SELECT * FROM memory_private._check_ivfflat_on_small_table(d)
            UNION ALL SELECT * FROM memory_private._check_hnsw_exceeds_shared_buffers(d)
            UNION ALL SELECT * FROM memory_private._check_dimension_mismatch(d)
            UNION ALL SELECT * FROM memory_private._check_embedding_model_mismatch(d)
            UNION ALL SELECT * FROM memory_private._check_stats_missing(d)
            UNION ALL SELECT * FROM memory_private._check_stats_stale(d)
            UNION ALL SELECT * FROM memory_private._check_unqueued_null_embeddings(d)
            UNION ALL SELECT * FROM memory_private._check_dead_jobs(d)
            UNION ALL SELECT * FROM memory_private._check_queue_not_draining(d)
            UNION ALL SELECT * FROM memory_private._check_no_live_worker(d)
            UNION ALL SELECT * FROM memory_private._check_expired_claims(d)
        ) AS c
        WHERE (p_domain IS NULL OR d.domain = p_domain) AND memory_private._can(d.domain, 'read')
          AND (memory_private._physical(d)).relation IS NOT NULL
          AND memory_private._readable(d)
          AND NOT ((d.distributed OR memory_private._citus_version() IS NOT NULL)
                   AND EXISTS (SELECT FROM memory_private._unreachable_nodes(d)))
    )
    SELECT c.severity, c.domain, c.check_name, c.detail, c.fix_sql
    FROM checks AS c
    ORDER BY array_position(ARRAY['error', 'warning', 'info'], c.severity), c.domain NULLS FIRST,
        c.check_name, c.detail;
END;
$$;

CREATE OR REPLACE FUNCTION memory.diagnose(domain text DEFAULT NULL)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT * FROM memory_private._diagnose(diagnose.domain)
$$;

COMMENT ON FUNCTION memory.diagnose(text) IS
'Health checks for one domain or all: missing, duplicate, mismatched (operator class), INVALID '
'or partition-less vector indexes; an adopted table''s missing helper indexes, or its text '
'index out of line with it; IVFFlat built on '
'too few rows; HNSW larger than '
'shared_buffers; column dimension vs registry and model; rows no job will ever embed; dead jobs, '
'a queue that does not drain, no live worker, expired claims; missing or stale statistics; '
'pgvector too old; an adopted table that would run another role''s code, a text search '
'configuration (or dictionary of it) another role owns, a schema on pgmemo''s '
'path others can create in; on Citus, workers that do not answer and shards without the right '
'vector index. One row per finding: severity (error, warning, info), check_name (stable), a '
'sentence, and fix_sql when the fix is one SQL statement. No rows (or info only): healthy. '
'Cheap on big tables: catalogs, statistics and the queue; bounded scans only (see the source).';

CREATE OR REPLACE FUNCTION memory.explain_search(
    domain text, k integer DEFAULT 10, filter jsonb DEFAULT NULL
)
RETURNS TABLE (
    uses_index boolean, index_name text, plan jsonb, path text, matching_rows bigint,
    reason text
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
    v_f record := memory_private._filter_for(v_d, filter);
    v_choice record;
    v_sql text;
    v_saved text[];
    v_query record;
    v_plan jsonb;
BEGIN
    PERFORM memory_private._check_k(k);
    -- A representative query vector: an embedding of the domain, else a constant one.
    EXECUTE format($q$
        SELECT coalesce(
            (SELECT t.embedding::%3$s.vector FROM %1$I.%2$I AS t
             WHERE t.embedding IS NOT NULL LIMIT 1),
            array_fill(1::real, ARRAY[$1])::%3$s.vector) AS e
    $q$, v_d.table_schema, v_d.table_name, memory_private._vector_schema())
    INTO v_query USING v_d.dimension;

    -- The same choice, settings and SQL text memory.search makes for the call.
    IF v_d.distributed THEN
        -- Citus: every shard's plan, from the same query with the values inlined.
        path := 'hnsw';
        reason := 'distributed domain: every shard''s HNSW index (iterative scans with a filter), '
            || 'the shards'' top k merged on the coordinator';
        v_saved := memory_private._search_settings_begin(k, NULL, v_f.predicate IS NOT NULL);
        v_plan := memory_private._dist_explain(v_d, v_query.e, k, filter);
    ELSE
        IF v_f.predicate IS NULL THEN
            path := 'hnsw';
            reason := 'no filter: the HNSW index';
            v_saved := memory_private._search_settings_begin(k, NULL, false);
            v_sql := memory_private._search_sql(v_d, false);
        ELSE
            v_choice := memory_private._search_plan(v_d, v_f.predicate, v_f.params, k, NULL, false);
            path := v_choice.path;
            matching_rows := round(v_choice.matching_rows);
            reason := memory_private._search_plan_reason(v_choice, k);
            v_saved := memory_private._search_settings_begin(k, v_choice.ef, v_choice.path = 'hnsw');
            IF v_choice.path = 'hnsw' THEN
                v_saved := memory_private._search_settings_scan(v_saved, v_choice.max_scan_tuples);
            END IF;
            -- (a plain containment runs the static branch's one statement; a filter with
            -- operators the HNSW query alone, then the exact one only when it returns no row)
            v_sql := memory_private._knn_sql(v_d, v_f.predicate,
                CASE WHEN v_choice.path = 'hnsw' AND NOT v_f.plain THEN 'hnsw_first'
                    ELSE v_choice.path END);
        END IF;
        -- EXPLAIN of the very statement memory.search runs: its text is the template here.
        EXECUTE format($q$EXPLAIN (FORMAT JSON) %s$q$, v_sql)
        INTO v_plan
        USING v_query.e, k, v_f.params, NULL::double precision;
    END IF;
    PERFORM memory_private._search_settings_end(v_saved);

    -- Every "Index Name" anywhere in the plan tree that is a vector index of the domain.
    SELECT string_agg(DISTINCT n.name, ', ') INTO index_name
    FROM (SELECT p #>> '{}' AS name FROM jsonb_path_query(v_plan, 'lax $.**."Index Name"') AS p) AS n
    WHERE n.name IN (SELECT x.index_name FROM memory_private._domain_vector_indexes(v_d) AS x);
    uses_index := index_name IS NOT NULL;
    IF v_d.distributed THEN
        SELECT x.index_name, x.uses_index INTO index_name, uses_index
        FROM memory_private._dist_plan_indexes(v_d, v_plan) AS x;
    END IF;
    plan := v_plan;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION memory.explain_search(text, integer, jsonb) IS
'EXPLAIN (FORMAT JSON) of exactly the query memory.search runs for this domain, k and filter '
'(same SQL text, same settings: hnsw.ef_search, enable_seqscan and, on the hnsw path, iterative '
'scans and hnsw.max_scan_tuples), with a representative query vector (an embedding of the '
'domain, else a constant one): uses_index says whether the plan reads one of the domain''s '
'vector indexes, index_name names it, plan is the plan. path is the way a filtered search '
'runs (exact: the matching rows'' distances, sorted; hnsw: the HNSW iterative scan, with the '
'exact query as fallback when it returns fewer than k rows; unfiltered: hnsw), matching_rows '
'the planner''s estimate of the rows the filter matches (NULL without a filter) or, when an '
'estimate that picks hnsw was checked by counting the rows (bounded) and fewer matched, the '
'count; reason why (naming memory.create_metadata_index when no index serves the filter).';
