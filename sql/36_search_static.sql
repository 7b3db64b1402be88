-- memory.search without re-planning: memory.search (sql/30_search.sql) holds, for every domain,
-- the queries of an unfiltered search (memory_private._search_sql) and of a search with one
-- containment filter on either path of the planner (memory_private._knn_sql, exact or hnsw), as
-- static SQL in a branch of its own, so PostgreSQL plans each once per session and reuses the
-- plan (a dynamic EXECUTE is parsed and planned on every call: 100-200 us, a quarter of a search
-- on 100K x 384, most of an exact search of a few matching rows).
-- memory_private._search_static_refresh regenerates memory.search from its template
-- (memory_private._search_definition) with a branch per domain; create_domain, drop_domain,
-- adoption and every migrate run (at the end: sql/90_grants.sql) call it. A branch is chosen by
-- the domain's name and runs only when the domain's table and distance are still those it was
-- generated for, so a stale branch is never used; a domain without one takes memory.search's
-- dynamic path, with the same queries.

-- A query of _search_sql or _knn_sql for a static branch of memory.search: their parameters
-- $1 (query vector), $2 (rows wanted), $3 (the filter's values) and $4 (min_similarity) become
-- memory.search's own, qualified by its name and its block's label (PL/pgSQL reads $n as the
-- n-th argument, and memory.search's first is the domain).
CREATE OR REPLACE FUNCTION memory_private._search_static_params(query text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(query,
        '\$1(?![0-9])', 'search.query_embedding', 'g'),
        '\$2(?![0-9])', 'search.k', 'g'),
        '\$3(?![0-9])', 'memory_search.v_params', 'g'),
        '\$4(?![0-9])', 'search.min_similarity', 'g')
$$;

-- The domains that get cached-plan branches (memory.search's here, search_text's in
-- sql/31_bm25.sql, search_hybrid's in sql/37_search_hybrid.sql): every domain whose
-- table exists, except distributed ones (Citus plans its own: 48_distributed.sql), in name order,
-- at most 500 (more take the dynamic paths, with the same queries).
CREATE OR REPLACE FUNCTION memory_private._static_domains()
RETURNS SETOF memory_private.domains
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT d.* FROM memory_private.domains AS d
    WHERE to_regclass(format('%I.%I', d.table_schema, d.table_name)) IS NOT NULL
      AND NOT d.distributed
    ORDER BY d.domain LIMIT 500
$$;

-- A branch as it goes into a generated function: without its comment lines and the indentation of
-- its lines (the templates' layout, repeated for every domain: a generated function is compiled
-- in full by the first call of each session, about 0.1 ms per kB; 38% of a search_hybrid branch
-- was layout). Nothing else changes: a line's own text, string literals included, is kept.
CREATE OR REPLACE FUNCTION memory_private._compact_sql(code text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT pg_catalog.regexp_replace(
        pg_catalog.regexp_replace(code, '^[ \t]*--[^\n]*(\n|$)', '', 'gn'), '^[ \t]+', '', 'gn')
$$;

-- A generated function's choice among its per-domain branches (branches: the WHEN clauses for
-- the values names of subject, both in the order of the names under COLLATE "C"; otherwise: the
-- statement when none matches): a PL/pgSQL CASE tests its WHENs one by one, each an expression
-- set up again in every transaction (about 2,150 instructions per domain sorting before the one
-- searched, callgrind: 215,000 per search with 100 domains before it), so the names are halved
-- by comparisons first and a CASE takes the last 8 or fewer. subject is read at every
-- comparison: a variable or a parameter, not a call. Used by memory.search (below) and the
-- generated text and hybrid functions (31_bm25.sql, 37_search_hybrid.sql).
CREATE OR REPLACE FUNCTION memory_private._dispatch_sql(
    subject text, names text[], branches text[], otherwise text
)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_n integer := coalesce(cardinality(names), 0);
    v_mid integer := v_n / 2 + 1;
BEGIN
    IF v_n = 0 THEN
        RETURN otherwise;
    ELSIF v_n <= 8 THEN
        RETURN format($d$CASE %1$s%2$s
        ELSE
            %3$s
        END CASE;$d$, subject,
            (SELECT string_agg(memory_private._compact_sql(b), '' ORDER BY n)
             FROM unnest(branches) WITH ORDINALITY AS x (b, n)), otherwise);
    END IF;
    RETURN format($d$IF %1$s < %2$L COLLATE "C" THEN
        %3$s
        ELSE
        %4$s
        END IF;$d$, subject, names[v_mid],
        memory_private._dispatch_sql(subject, names[1:v_mid - 1], branches[1:v_mid - 1], otherwise),
        memory_private._dispatch_sql(subject, names[v_mid:], branches[v_mid:], otherwise));
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._search_static_refresh()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_names text[] := '{}';
    v_branches text[] := '{}';
    v_iterative text;
BEGIN
    -- pgvector's settings (hnsw.*) exist once its library is loaded in this session; before, they
    -- are placeholders, which only a superuser may put in a function's SET clause (a database
    -- owner on a managed service got "permission denied to set parameter hnsw.ef_search" from
    -- an adopt_table made first thing in a session, when search_hybrid's generated helper had
    -- such clauses, before migration 0023), and hnsw.iterative_scan is read and set below.
    -- Loading it: any call of a pgvector function.
    EXECUTE format($q$SELECT %1$s.vector_dims('[1]'::%1$s.vector)$q$, memory_private._vector_schema());
    v_iterative := current_setting('hnsw.iterative_scan', true);
    -- Never beside a migrate, which makes these functions too (the callers took it first).
    PERFORM memory_private._lock_ddl();
    -- Concurrent create_domain calls regenerate one after the other, each from the committed
    -- registry (READ COMMITTED: the query below runs after the lock is granted).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:search_static'));
    -- the strict-order shape of _search_sql (the function runs with iterative scans off)
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', 'off', true);
    END IF;
    FOR v_d IN SELECT * FROM memory_private._static_domains() AS s ORDER BY s.domain COLLATE "C"
    LOOP
        v_names := v_names || v_d.domain;
        v_branches := v_branches || format($b$
        WHEN %1$L THEN
            IF v_d.table_schema <> %5$L OR v_d.table_name <> %6$L OR v_d.distance <> %7$L THEN
                v_static := false;  -- the domain changed since this was generated
            ELSIF v_path IS NULL THEN
                RETURN QUERY %2$s;
            ELSIF v_path = 'exact' THEN
                RETURN QUERY %3$s;
            ELSE
                RETURN QUERY %4$s;
            END IF;$b$,
            v_d.domain,
            memory_private._search_static_params(memory_private._search_sql(v_d, false)),
            memory_private._search_static_params(
                memory_private._knn_sql(v_d, memory_private._filter_plain_predicate(), 'exact')),
            memory_private._search_static_params(
                memory_private._knn_sql(v_d, memory_private._filter_plain_predicate(), 'hnsw')),
            v_d.table_schema, v_d.table_name, v_d.distance);
    END LOOP;
    EXECUTE memory_private._search_definition(memory_private._dispatch_sql('v_d.domain', v_names,
        v_branches, 'v_static := false;  -- not generated for this domain (yet): the dynamic path below'));
    -- memory.search_hybrid's (sql/37_search_hybrid.sql), with _search_sql's strict shape too
    PERFORM memory_private._search_hybrid_static_refresh();
    IF v_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', v_iterative, true);
    END IF;
    -- memory.search_text's cached plans follow the same domains (sql/31_bm25.sql)
    PERFORM memory_private._search_text_static_refresh();
END;
$$;
