-- memory.search without re-planning: memory_private._search_static holds, for every domain, the
-- queries of an unfiltered search (memory_private._search_sql) and of a search with one
-- containment filter on either path of the planner (memory_private._knn_sql, exact or hnsw), as
-- static SQL in one generated PL/pgSQL function, so PostgreSQL plans each once per session and
-- reuses the plan (a dynamic EXECUTE is parsed and planned on every call: 100-200 us, a quarter
-- of a search on 100K x 384, most of an exact search of a few matching rows). Its SET clauses
-- hold the settings of the call (enable_seqscan off; hnsw.ef_search, iterative scans and
-- hnsw.max_scan_tuples as the planner chose), restored when it returns.
-- memory_private._search_static_refresh regenerates it; create_domain, drop_domain, adoption and
-- every migrate run (at the end: sql/90_grants.sql) call it. A branch is chosen by the domain's
-- name, table and distance at the time (memory_private._search_static_key), so a stale branch is
-- never used; a domain without one sets pgmemo.search_static_miss and memory.search runs the same
-- query dynamically.

-- What a domain's static branch depends on.
CREATE OR REPLACE FUNCTION memory_private._search_static_key(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT d.domain || '/' || d.table_schema || '/' || d.table_name || '/' || d.distance $$;

CREATE OR REPLACE FUNCTION memory_private._search_static_refresh()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_branches text := '';
    v_iterative text;
    -- pgvector >= 0.8: iterative scans, and their settings restored on exit
    v_08 boolean := coalesce(memory_private._vector_version() >= ARRAY[0, 8, 0], false);
BEGIN
    -- pgvector's settings (hnsw.*) exist once its library is loaded in this session; before, they
    -- are placeholders, which only a superuser may put in a function's SET clause (a database
    -- owner on a managed service got "permission denied to set parameter hnsw.ef_search" from
    -- an adopt_table made first thing in a session). Loading it: any call of a pgvector function.
    EXECUTE format($q$SELECT %1$s.vector_dims('[1]'::%1$s.vector)$q$, memory_private._vector_schema());
    v_iterative := current_setting('hnsw.iterative_scan', true);
    -- Concurrent create_domain calls regenerate one after the other, each from the committed
    -- registry (READ COMMITTED: the query below runs after the lock is granted).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:search_static'));
    -- the strict-order shape of _search_sql (the function runs with iterative scans off)
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', 'off', true);
    END IF;
    FOR v_d IN
        SELECT d.* FROM memory_private.domains AS d
        WHERE to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NOT NULL
          AND NOT d.distributed  -- Citus plans its own (48_distributed.sql)
        ORDER BY d.domain LIMIT 500
    LOOP
        -- The queries of _search_sql and _knn_sql as they are: their $1..$4 are this function's
        -- first four arguments (PL/pgSQL reads $n as the n-th argument).
        v_branches := v_branches || format($b$
        WHEN %1$L THEN
            IF path IS NULL THEN
                RETURN QUERY %2$s;
            ELSIF path = 'exact' THEN
                RETURN QUERY %3$s;
            ELSE
                RETURN QUERY %4$s;
            END IF;$b$,
            memory_private._search_static_key(v_d),
            memory_private._search_sql(v_d, false),
            memory_private._knn_sql(v_d, memory_private._filter_plain_predicate(), 'exact'),
            memory_private._knn_sql(v_d, memory_private._filter_plain_predicate(), 'hnsw'));
    END LOOP;
    IF v_branches = '' THEN
        v_branches := '
        WHEN NULL THEN NULL;  -- no domain yet (a CASE needs a WHEN)';
    END IF;
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._search_static(
    query_embedding %1$s.vector, k integer, params jsonb, min_similarity double precision,
    d memory_private.domains, path text, ef integer, max_scan_tuples integer
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, created_at timestamptz, updated_at timestamptz,
    embedding %1$s.vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
-- The generic plans (the HNSW index scan; the filter's index) once, reused: with LIMIT k a
-- parameter, the planner prices the generic plan at 10%% of the rows and would otherwise
-- re-plan on every call.
SET plan_cache_mode = force_generic_plan
-- The settings of the call: the set_config calls below last until the function returns.
SET enable_seqscan = off
SET hnsw.ef_search = 40%2$s
AS $body$
#variable_conflict use_column
BEGIN
    IF path IS DISTINCT FROM 'exact' THEN
        PERFORM set_config('hnsw.ef_search', ef::text, true);
    END IF;
    IF path = 'hnsw' THEN
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        PERFORM set_config('hnsw.max_scan_tuples', max_scan_tuples::text, true);
    END IF;
    CASE memory_private._search_static_key(d)%3$s
    ELSE
        -- not generated for this domain (yet): memory.search takes the dynamic path
        PERFORM set_config('pgmemo.search_static_miss', 'on', true);
    END CASE;
END;
$body$
$f$,
        memory_private._vector_schema(),  -- quoted already
        CASE WHEN v_08 THEN '
SET hnsw.iterative_scan = off
SET hnsw.max_scan_tuples = 20000' ELSE '' END,
        v_branches);
    -- memory.search_hybrid's (sql/37_search_hybrid.sql), with _search_sql's strict shape too
    PERFORM memory_private._search_hybrid_static_refresh();
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', v_iterative, true);
    END IF;
    -- memory.search_text's cached plans follow the same domains (sql/31_bm25.sql)
    PERFORM memory_private._search_text_static_refresh();
END;
$$;

-- The function before its first generation (a migrate generates it right away: sql/90_grants.sql).
CREATE OR REPLACE FUNCTION memory_private._search_static(
    query_embedding vector, k integer, params jsonb, min_similarity double precision,
    d memory_private.domains, path text, ef integer, max_scan_tuples integer
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, created_at timestamptz, updated_at timestamptz, embedding vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM set_config('pgmemo.search_static_miss', 'on', true);
END;
$$;
