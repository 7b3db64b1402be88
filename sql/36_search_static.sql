-- Unfiltered memory.search without re-planning: memory_private._search_static holds, for every
-- domain, the query memory_private._search_sql builds, as static SQL in one generated PL/pgSQL
-- function, so PostgreSQL plans it once per session and reuses the plan (a dynamic EXECUTE is
-- parsed and planned on every call: about 100 us, a quarter of a search on 100K x 384).
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
    v_sql text;
    v_iterative text := current_setting('hnsw.iterative_scan', true);
BEGIN
    -- Concurrent create_domain calls regenerate one after the other, each from the committed
    -- registry (READ COMMITTED: the query below runs after the lock is granted).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:search_static'));
    -- the strict-order shape of _search_sql (memory.search takes this path only then)
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', 'off', true);
    END IF;
    FOR v_d IN
        SELECT d.* FROM memory_private.domains AS d
        WHERE to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NOT NULL
          AND NOT d.distributed  -- Citus plans its own (48_distributed.sql)
        ORDER BY d.domain LIMIT 500
    LOOP
        -- _search_sql's text with its parameters renamed to this function's arguments.
        v_sql := memory_private._search_sql(v_d, false);
        v_sql := replace(replace(replace(v_sql, '$1', 'query_embedding'), '$2', 'k'),
            '$4', 'min_similarity');
        v_branches := v_branches || format($b$
        WHEN %L THEN
            RETURN QUERY %s;
$b$, memory_private._search_static_key(v_d), v_sql);
    END LOOP;
    -- pgvector by qualified name: this runs with search_path = pg_catalog, pg_temp
    EXECUTE replace(format($f$
CREATE OR REPLACE FUNCTION memory_private._search_static(
    d memory_private.domains, query_embedding @vector_schema@.vector, k integer, min_similarity double precision
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, created_at timestamptz, updated_at timestamptz, embedding @vector_schema@.vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
-- The generic plan (the HNSW index scan) once, reused: with LIMIT k a parameter, the planner
-- prices the generic plan at 10%% of the rows and would otherwise re-plan on every call.
SET plan_cache_mode = force_generic_plan
AS $body$
#variable_conflict use_column
BEGIN
    %s
        -- not generated for this domain (yet): memory.search takes the dynamic path
        PERFORM set_config('pgmemo.search_static_miss', 'on', true);
    %s
END;
$body$
$f$,
        CASE WHEN v_branches = '' THEN '' ELSE 'CASE memory_private._search_static_key(d)'
            || v_branches || '    ELSE' END,
        CASE WHEN v_branches = '' THEN '' ELSE 'END CASE;' END),
        '@vector_schema@', memory_private._vector_schema());
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', v_iterative, true);
    END IF;
END;
$$;

-- The function before its first generation (a migrate generates it right away: sql/90_grants.sql).
CREATE OR REPLACE FUNCTION memory_private._search_static(
    d memory_private.domains, query_embedding vector, k integer, min_similarity double precision
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
