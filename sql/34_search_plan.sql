-- The filtered-search planner: for each filtered memory.search, estimate how many rows the
-- filter matches (the PostgreSQL planner's estimate for the compiled predicate) and pick the
-- cheaper of two ways to find the k nearest of them:
--   exact: every matching row's distance, sorted (through the filter's index: the GIN index on
--          metadata, an expression index from memory.create_metadata_index, a btree on a column);
--          exact by construction, and cheap when few rows match;
--   hnsw:  the HNSW index's iterative scan (pgvector >= 0.8) with ef_search raised so that the
--          candidate list holds enough matching rows for the recall target, bounded by
--          hnsw.max_scan_tuples, falling back to the exact query in the same statement when the
--          index gives up before k rows.
-- memory.explain_search shows the choice, its estimate and its reason.

-- The cost model, in microseconds per row on the benchmark machine (bench/filter.py in make
-- bench, real 384-d embeddings; BENCHMARKS.md "Filtered search"). Only their ratios matter:
--   exact_row: fetch one matching row through the filter's index and compute its distance;
--   seq_row:   test one row of a sequential scan against the predicate (a filter no index serves):
--              the row read (a 384-d row is ~1.7 kB, four to a page) and the compiled predicate
--              evaluated (a range on a metadata number: the key looked up, its JSON type tested,
--              the number cast): 1.0-1.5 us a row where an exact row through an index took
--              2.5-3.8 us in the same run (stop 26). 0.15, the value before, sent a range of two
--              bounds on an unindexed key (the planner's default estimate: 0.5% of the rows) to
--              a sequential scan of 100,000 rows (~150 ms) where the HNSW scan takes 6-25 ms.
--   hnsw_row:  one candidate of the HNSW iterative scan (graph walk, heap fetch, filter).
-- overscan: ef_search is sized so that the candidate list holds overscan * k / selectivity
-- rows, about overscan * k matching ones (never below pgmemo's default ef_search): 1 measured
-- recall@10 >= 0.95 against the exact filtered answer at 10% (3 cost twice the time for +0.02).
CREATE OR REPLACE FUNCTION memory_private._search_cost(
    OUT exact_row double precision, OUT seq_row double precision, OUT hnsw_row double precision,
    OUT overscan double precision
)
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1.5::double precision, 0.6::double precision, 8.0::double precision, 1.0::double precision $$;

-- The k-NN query of a filtered search over the domain table t:
--   $1 query vector, $2 rows wanted, $3 the filter's values (memory_private._filter_compile),
--   $4 min_similarity (may be NULL).
-- path 'exact': the matching rows' distances, sorted; the ORDER BY is "distance + 0" so that
--   the HNSW index cannot serve it (the planner then scans the filter's index instead).
-- path 'hnsw': the HNSW index order with the predicate (iterative scan in relaxed order: the
--   distance is recomputed outside the LIMIT query, see memory_private._search_sql); its first
--   $2 rows are materialized, and only when they are fewer than $2 the exact query runs (a
--   one-time filter: it costs nothing otherwise). In the index scan the predicate is written
--   "(...) IS TRUE" (the same rows) so that no index of the filter can serve it: the path is
--   the one chosen here, whatever the planner would estimate (and a plan cached without the
--   values, memory.search's static branches, cannot turn into a bitmap scan and a sort).
-- path 'hnsw_first': the same HNSW query alone, its rows only when they are $2 (else none: the
--   caller then runs the exact path's query, a statement of its own). memory.search's dynamic
--   path (a filter with operators, planned on every call) runs it: planning the HNSW query
--   alone took 0.27 ms where the whole 'hnsw' statement took 0.96 (the exact query and the
--   union planned on every call although they run only when the scan gives up); a cached plan
--   (the static branches) pays for that once per session and keeps the one statement.
-- One template per path, identifiers through %I; the predicate is compiled SQL that holds no
-- value (they are all in $3); operator, similarity and embedding column come from fixed lists.
CREATE OR REPLACE FUNCTION memory_private._knn_sql(
    d memory_private.domains, predicate text, path text, with_embeddings boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op text := memory_private._distance_to_sql(d, '$1');
    v_similarity text := CASE d.distance
        WHEN 'cosine' THEN '1 - s.distance'
        WHEN 'l2' THEN '1 / (1 + s.distance)'
        ELSE '- s.distance'
    END;
    -- the embedding column: the stored vector (halfvec read as vector), or NULL (then the
    -- exact scan does not carry every matching row's vector through its sort)
    v_emb text := CASE WHEN with_embeddings THEN 't.embedding::' ELSE 'NULL::' END
        || memory_private._vector_schema() || '.vector';  -- _vector_schema() is quoted
    v_h text;
BEGIN
    IF path = 'exact' THEN
        RETURN format($q$
            SELECT s.id, s.content, s.metadata, %1$s AS similarity, s.distance, s.created_at,
                s.updated_at, s.embedding
            FROM (
                SELECT t.id, t.content, t.metadata, (t.embedding %2$s) + 0 AS distance,
                    t.created_at, t.updated_at, %6$s AS embedding
                FROM %3$I.%4$I AS t
                WHERE t.embedding IS NOT NULL AND %5$s
                ORDER BY 4 LIMIT $2
            ) AS s
            WHERE $4::double precision IS NULL OR %1$s >= $4
            ORDER BY s.distance $q$,
            v_similarity, v_op, d.table_schema, d.table_name, predicate, v_emb);
    END IF;
    -- (the HNSW query's rows, materialized: both hnsw templates below start with it)
    v_h := format($q$
        WITH h AS MATERIALIZED (
            SELECT t.id, t.content, t.metadata,
                (t.embedding %1$s)::double precision AS distance, t.created_at, t.updated_at,
                %5$s AS embedding
            FROM (
                SELECT t.id, t.content, t.metadata, t.embedding, t.created_at, t.updated_at
                FROM %2$I.%3$I AS t
                WHERE t.embedding IS NOT NULL AND (%4$s) IS TRUE
                ORDER BY t.embedding %1$s LIMIT $2
            ) AS t
        )$q$, v_op, d.table_schema, d.table_name, predicate, v_emb);
    IF path = 'hnsw_first' THEN
        RETURN v_h || format($q$
        SELECT s.id, s.content, s.metadata, %1$s AS similarity, s.distance, s.created_at,
            s.updated_at, s.embedding
        FROM h AS s
        WHERE (SELECT count(*) FROM h) >= $2 AND ($4::double precision IS NULL OR %1$s >= $4)
        ORDER BY s.distance $q$, v_similarity);
    END IF;
    RETURN v_h || format($q$
        SELECT s.id, s.content, s.metadata, %1$s AS similarity, s.distance, s.created_at,
            s.updated_at, s.embedding
        FROM (
            SELECT h.* FROM h WHERE (SELECT count(*) FROM h) >= $2
            UNION ALL
            SELECT e.* FROM (
                -- the exact path's query
                SELECT t.id, t.content, t.metadata, (t.embedding %2$s) + 0 AS distance,
                    t.created_at, t.updated_at, %6$s AS embedding
                FROM %3$I.%4$I AS t
                WHERE t.embedding IS NOT NULL AND %5$s
                ORDER BY 4 LIMIT $2
            ) AS e WHERE (SELECT count(*) FROM h) < $2
        ) AS s
        WHERE $4::double precision IS NULL OR %1$s >= $4
        ORDER BY s.distance $q$,
        v_similarity, v_op, d.table_schema, d.table_name, predicate, v_emb);
END;
$$;

-- The estimate of a filter: the rows the compiled predicate matches (with an embedding) by the
-- PostgreSQL planner, whether an index serves it, and all rows of the domain's table.
CREATE OR REPLACE FUNCTION memory_private._search_estimate(
    d memory_private.domains, predicate text, params jsonb,
    OUT matching_rows double precision, OUT total_rows double precision, OUT filter_index boolean
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_top text;
    v_seqscan text := current_setting('enable_seqscan');
BEGIN
    -- The planner's estimate for the compiled predicate, with the call's values (EXECUTE plans
    -- with them as constants), under enable_seqscan = off as the exact path runs: the top node
    -- is a sequential scan only when no index serves the filter. The first line of the plain
    -- EXPLAIN is that node, e.g. "Bitmap Heap Scan on x  (cost=.. rows=1002 width=0)"
    -- (measured: half the time of FORMAT JSON and a JSON path search).
    PERFORM set_config('enable_seqscan', 'off', true);
    EXECUTE format($q$
        EXPLAIN SELECT FROM %1$I.%2$I AS t WHERE t.embedding IS NOT NULL AND %3$s $q$,
        d.table_schema, d.table_name, predicate)
    INTO v_top
    USING NULL::integer, NULL::integer, params;
    PERFORM set_config('enable_seqscan', v_seqscan, true);
    matching_rows := substring(v_top FROM ' rows=([0-9]+) ')::double precision;
    filter_index := v_top !~ '^\s*(Seq Scan|Gather|Parallel Seq Scan)';
    -- All rows of the physical table (an adopted domain's source; the leaves of a partitioned
    -- one), from the catalog.
    SELECT greatest(CASE WHEN c.relkind = 'p' THEN (
            SELECT sum(greatest(p.reltuples, 0)) FROM pg_catalog.pg_partition_tree(c.oid) AS pt
            JOIN pg_catalog.pg_class AS p ON p.oid = pt.relid WHERE pt.isleaf)
        ELSE c.reltuples END, matching_rows, 1)
    INTO total_rows
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = CASE WHEN d.adopted THEN d.source_table
        ELSE to_regclass(format('%I.%I', d.table_schema, d.table_name)) END;
    total_rows := coalesce(total_rows, greatest(matching_rows, 1));
END;
$$;

-- The plan of one filtered search: path 'exact' or 'hnsw' (see _knn_sql), the estimated rows
-- matching the filter (with an embedding) out of total_rows, the ef_search and
-- hnsw.max_scan_tuples the hnsw path runs with and the two cost estimates (microseconds;
-- _search_plan_reason puts them in words). ef_search: the caller's (NULL: chosen here).
-- planner_rows: the PostgreSQL planner's estimate; counted_rows: the rows counted when the
-- estimate was checked (below; NULL when not), which matching_rows is when fewer than the
-- limit. reuse: take the plan of the session's previous call for the same filter, k and
-- ef_search (memory.search; memory.explain_search always plans afresh).
--
-- The planner's estimate can be far off: statistics from before the rows changed, keys that
-- are correlated (an AND of two keys is estimated as the product of their selectivities), a
-- default selectivity for an expression without statistics. Too low costs little (the exact
-- path reads the rows that match); too high sends a filter that matches 1% of the rows to the
-- HNSW scan, which then walks ~100 candidates per matching row (BENCHMARKS.md, "estimate off":
-- 15 ms where the exact scan takes 2.6). So an estimate that picks hnsw is checked, when an
-- index serves the filter: the matching rows are counted through that index, stopping at
-- count_limit, the count above which hnsw is the cheaper path for this k and table (about
-- 2,300 rows for k = 10 on 100,000): the check reads at most that many rows, about what the
-- exact scan of as many rows costs without the distances, and it is cached with the estimate.
CREATE OR REPLACE FUNCTION memory_private._search_plan(
    d memory_private.domains, predicate text, params jsonb, k integer, ef_search integer,
    reuse boolean,
    OUT path text, OUT matching_rows double precision, OUT total_rows double precision,
    OUT filter_index boolean, OUT ef integer, OUT max_scan_tuples integer,
    OUT exact_cost double precision, OUT hnsw_cost double precision,
    OUT planner_rows double precision, OUT counted_rows bigint
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_c record;
    v_sel double precision;
    v_needed double precision;
    v_default_ef integer;
    -- what the plan depends on: the table, the filter, k, the caller's ef_search and the
    -- session's; and who asks (the session's role and its SET ROLE): a pooled session that
    -- switches roles never hands one role's entry (its filter's counts) to another
    v_key text := md5(concat_ws(' ', d.table_schema, d.table_name, predicate, params::text, k,
        ef_search, current_setting('hnsw.ef_search', true), session_user,
        current_setting('role')));
    v_cached text[];
    v_now double precision := extract(epoch FROM clock_timestamp());
    v_limit bigint;
    v_seqscan text;
    -- The iterative scan stops after this many tuples (then the exact query runs when fewer
    -- than k rows matched): pgvector's default, 20000. pgvector counts every tuple the graph
    -- walk visits, and once at the bound it returns the candidates it had set aside, which
    -- are not the nearest, so a bound sized to the estimate loses recall instead of falling
    -- back: 1000 cost 0.02 of recall@10 at 10% on 100K rows (0.95 against 0.97), 40 visits
    -- per candidate needed gave recall 0.73 with a stale estimate (30% for a 1% filter;
    -- BENCHMARKS.md).
    v_max_scan constant integer := 20000;
BEGIN
    -- The same filter as the session's previous filtered search, less than 10 seconds ago (an
    -- application searching one user's memories again and again): its plan, without estimating
    -- (or counting) again. A stale plan can only pick the slower path, never change the rows
    -- (the exact path is exact, the hnsw path falls back to it). The caller can write the
    -- setting: an entry is taken only for a known path, with ef_search clamped as computed
    -- below and the scan bound not read from it, so a forged one picks no more than the
    -- caller's own arguments could (tested: filter_planner.sql).
    IF reuse THEN
        v_cached := string_to_array(current_setting('pgmemo.filter_estimate', true), ' ');
        IF v_cached[1] = v_key AND v_now - v_cached[2]::double precision < 10
            AND v_cached[3] IN ('exact', 'hnsw') THEN
            path := v_cached[3];
            ef := coalesce(ef_search, least(greatest(v_cached[4]::integer, k), 1000));
            max_scan_tuples := v_max_scan;
            matching_rows := v_cached[6]::double precision;
            total_rows := v_cached[7]::double precision;
            filter_index := v_cached[8]::boolean;
            planner_rows := v_cached[9]::double precision;
            counted_rows := nullif(v_cached[10], '-')::bigint;
            exact_cost := v_cached[11]::double precision;
            hnsw_cost := v_cached[12]::double precision;
            RETURN;
        END IF;
    END IF;
    v_c := memory_private._search_cost();
    v_default_ef := greatest(
        coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 40),
        memory_private._default_ef_search());
    SELECT e.matching_rows, e.total_rows, e.filter_index
    INTO planner_rows, total_rows, filter_index
    FROM memory_private._search_estimate(d, predicate, params) AS e;
    matching_rows := planner_rows;

    FOR i IN 1..2 LOOP
        v_sel := greatest(matching_rows, 1) / total_rows;
        v_needed := v_c.overscan * k / v_sel;   -- candidates that hold overscan * k matching rows
        -- ef_search sized to the estimate only where an index gives one worth the name: for a
        -- filter no index serves, the planner has no statistics of the expression and guesses
        -- (0.5% for a range of two bounds, a third for one bound), and a raise sized on 0.5% made
        -- a filter matching 10% of 100,000 rows search with ef_search 1000 (24.7 ms where 100
        -- took 5.5 ms; BENCHMARKS.md). The iterative scan goes on until k rows match anyway.
        ef := coalesce(ef_search, least(greatest(CASE WHEN filter_index
            THEN ceil(v_needed)::integer ELSE 0 END, v_default_ef, k), 1000));
        max_scan_tuples := v_max_scan;
        exact_cost := CASE WHEN filter_index THEN 0 ELSE total_rows * v_c.seq_row END
            + matching_rows * v_c.exact_row;
        hnsw_cost := greatest(v_needed, ef) * v_c.hnsw_row;
        -- pgvector >= 0.8 (iterative scans) defines hnsw.iterative_scan once loaded (it is: the
        -- caller has read a vector); cheaper than reading the extension's version.
        path := CASE WHEN current_setting('hnsw.iterative_scan', true) IS NULL
            OR exact_cost <= hnsw_cost THEN 'exact' ELSE 'hnsw' END;
        EXIT WHEN path = 'exact' OR counted_rows IS NOT NULL OR NOT filter_index;
        -- Check the estimate (above): count up to the rows m where the exact scan's cost
        -- (m * exact_row) meets the HNSW scan's (overscan * k * total / m candidates, at least
        -- ef_search, hnsw_row each), and decide on the count when it stops short of them.
        v_limit := ceil(greatest(
            sqrt(v_c.hnsw_row * v_c.overscan * k * total_rows / v_c.exact_row),
            v_c.hnsw_row * coalesce(ef_search, greatest(v_default_ef, k)) / v_c.exact_row)) + 1;
        v_seqscan := current_setting('enable_seqscan');
        PERFORM set_config('enable_seqscan', 'off', true);  -- through the filter's index
        EXECUTE format($q$
            SELECT count(*) FROM (
                SELECT FROM %1$I.%2$I AS t WHERE t.embedding IS NOT NULL AND %3$s LIMIT $4
            ) AS c $q$,
            d.table_schema, d.table_name, predicate)
        INTO counted_rows
        USING NULL::integer, NULL::integer, params, v_limit;
        PERFORM set_config('enable_seqscan', v_seqscan, true);
        EXIT WHEN counted_rows >= v_limit;  -- enough for hnsw: the estimate sizes ef_search
        matching_rows := counted_rows;      -- and once more with the count
    END LOOP;
    PERFORM set_config('pgmemo.filter_estimate', concat_ws(' ', v_key, v_now, path, ef,
        max_scan_tuples, matching_rows, total_rows, filter_index, planner_rows,
        coalesce(counted_rows::text, '-'), exact_cost, hnsw_cost), false);
END;
$$;

-- The reason for a plan of memory_private._search_plan, in words (memory.explain_search).
CREATE OR REPLACE FUNCTION memory_private._search_plan_reason(p record, k integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF current_setting('hnsw.iterative_scan', true) IS NULL THEN
        RETURN 'pgvector is older than 0.8 (no iterative index scans): an exact scan of the '
            || 'matching rows';
    END IF;
    RETURN format('%s of %s rows match (%s%%)%s: %s',
        CASE WHEN p.counted_rows IS NULL THEN format('about %s', round(p.matching_rows))
            WHEN p.path = 'exact' THEN format('%s (counted; the planner estimated %s)',
                p.counted_rows, round(p.planner_rows))
            ELSE format('about %s (the planner''s estimate; counted: at least %s, where the '
                'HNSW scan is cheaper)', round(p.matching_rows), p.counted_rows) END,
        round(p.total_rows),
        round((100 * greatest(p.matching_rows, 1) / p.total_rows)::numeric, 3),
        CASE WHEN p.filter_index THEN '' ELSE ' and no index serves the filter '
            '(memory.create_metadata_index(domain, key, type) makes one for a compared key)' END,
        CASE p.path
            WHEN 'exact' THEN format('an exact scan of the matching rows (~%s us) is cheaper than '
                'the HNSW iterative scan (~%s us)', round(p.exact_cost), round(p.hnsw_cost))
            ELSE format('the HNSW iterative scan (ef_search %s, at most %s candidates, ~%s us; '
                'exact scan if it gives up before %s rows) is cheaper than an exact scan of the '
                'matching rows (~%s us)', p.ef, p.max_scan_tuples, round(p.hnsw_cost), k,
                round(p.exact_cost))
        END);
END;
$$;

-- Sets hnsw.max_scan_tuples for the call (pgvector >= 0.8), into the saved settings of
-- memory_private._search_settings_begin (element 4), which _search_settings_end restores.
CREATE OR REPLACE FUNCTION memory_private._search_settings_scan(saved text[], max_scan_tuples integer)
RETURNS text[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_old text := current_setting('hnsw.max_scan_tuples', true);
BEGIN
    IF max_scan_tuples IS NOT NULL AND v_old IS NOT NULL  -- defined by pgvector >= 0.8
        AND v_old IS DISTINCT FROM max_scan_tuples::text THEN
        saved[4] := coalesce(nullif(v_old, ''), '20000');
        PERFORM set_config('hnsw.max_scan_tuples', max_scan_tuples::text, true);
    END IF;
    RETURN saved;
END;
$$;
