-- memory.search's generated static branches (sql/36_search_static.sql): create_domain and
-- drop_domain regenerate them, it returns exactly what the dynamic query returns (unfiltered,
-- and with one containment filter on the exact and the hnsw path), the cached plans of the
-- filtered branches read the filter's index (exact) and the HNSW index (hnsw) whatever the
-- values, the call's settings are restored, and a domain it was not generated for (or generated
-- for another table or distance) takes the dynamic path with the same result.
BEGIN;
SELECT plan(32);

SELECT memory.create_domain('st', 4);
SELECT memory.create_domain('st2', 4, 'l2');
INSERT INTO memory_data.st_memories (id, content, embedding)
SELECT 's' || g, 'row ' || g, ARRAY[sin(g), cos(1.3 * g), g % 3, 1]::real[]::vector FROM generate_series(1, 200) AS g;
INSERT INTO memory_data.st2_memories (id, content, embedding)
SELECT 's' || g, 'row ' || g, ARRAY[sin(g), cos(1.3 * g), g % 3, 1]::real[]::vector FROM generate_series(1, 200) AS g;

CREATE FUNCTION pg_temp.src() RETURNS text LANGUAGE sql AS
$$ SELECT p.prosrc FROM pg_catalog.pg_proc AS p WHERE p.oid = 'memory.search'::regproc $$;
-- The dynamic query (memory_private._search_sql), run directly: what the static branch must equal.
CREATE FUNCTION pg_temp.dynamic(domain text, q vector, k integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_out text;
BEGIN
    EXECUTE 'SELECT string_agg(s.id || '':'' || round(s.similarity::numeric, 6), '','' ORDER BY s.distance, s.id) FROM ('
        || memory_private._search_sql(memory_private._domain(domain), false) || ') AS s'
    INTO v_out USING q, k, NULL::jsonb, NULL::double precision;
    RETURN v_out;
END;
$$;
CREATE FUNCTION pg_temp.got(domain text, q vector, k integer) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(s.id || ':' || round(s.similarity::numeric, 6), ',' ORDER BY s.distance, s.id)
    FROM memory.search(domain, q, k) AS s
$$;

SELECT matches(pg_temp.src(), 'WHEN ''st'' THEN\s+IF v_d.table_schema <> ''memory_data'' OR '
    'v_d.table_name <> ''st_memories'' OR v_d.distance <> ''cosine'' THEN',
    'create_domain generated a static branch, used while the domain''s table and distance hold');
SELECT matches(pg_temp.src(), 'WHEN ''st2'' THEN\s+IF .* v_d.distance <> ''l2'' THEN.*<->',
    'each with its own distance operator');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'the static path returns exactly the dynamic query''s rows (cosine)');
SELECT is(pg_temp.got('st2', '[4,6,2,1]', 7), pg_temp.dynamic('st2', '[4,6,2,1]', 7),
    'and for l2');
SELECT is((SELECT count(*) FROM memory.search('st', '[1,2,0,1]', 5, min_similarity => 0.99)),
    (SELECT count(*) FROM memory.search('st', '[1,2,0,1]', 5, filter => '{}', min_similarity => 0.99)),
    'min_similarity applies on the static path');

-- A domain the static function does not know: regenerate while its table is away.
ALTER TABLE memory_data.st_memories RENAME TO st_away;
SELECT memory_private._search_static_refresh();
ALTER TABLE memory_data.st_away RENAME TO st_memories;
SELECT doesnt_match(pg_temp.src(), 'WHEN ''st'' THEN', 'st has no branch now');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'a domain without a branch: the dynamic path, same rows');
SELECT is(current_setting('hnsw.ef_search') || ' ' || current_setting('enable_seqscan'), '40 on',
    'the dynamic path puts the settings back');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'and again');

-- One containment filter: the static branches of the planner's two paths. Their twin
-- {"g": {"$eq": ...}} compiles to the same predicate but is not "plain": the dynamic path.
INSERT INTO memory_data.st_memories (id, content, embedding)
SELECT 's' || g, 'row ' || g, ARRAY[sin(g), cos(1.3 * g), g % 3, 1]::real[]::vector
FROM generate_series(201, 2000) AS g;
UPDATE memory_data.st_memories AS t
SET metadata = jsonb_build_object('g', (substr(t.id, 2)::integer % 2)::text,
    'rare', substr(t.id, 2)::integer % 500 = 0);
ANALYZE memory_data.st_memories;
SELECT matches(pg_temp.src(), 'ELSIF v_path = ''exact'' THEN.*IS TRUE',
    'memory.search holds the filtered branches');
CREATE FUNCTION pg_temp.gotf(filter jsonb, k integer) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(s.id || ':' || round(s.similarity::numeric, 6), ',' ORDER BY s.distance, s.id)
    FROM memory.search('st', '[1,2,0,1]', k, filter) AS s
$$;
SELECT is((SELECT e.path FROM memory.explain_search('st', 10, '{"rare": true}') AS e), 'exact',
    '4 of 2000 rows: exact');
SELECT is(pg_temp.gotf('{"rare": true}', 10), pg_temp.gotf('{"rare": {"$eq": true}}', 10),
    'exact path: the static branch returns the dynamic query''s rows');
SELECT is((SELECT e.path FROM memory.explain_search('st', 10, '{"g": "1"}') AS e), 'hnsw',
    'half of the rows: hnsw');
SELECT is(pg_temp.gotf('{"g": "1"}', 10), pg_temp.gotf('{"g": {"$eq": "1"}}', 10),
    'hnsw path: the static branch returns the dynamic query''s rows');
SET LOCAL hnsw.ef_search = 33;
SET LOCAL hnsw.iterative_scan = off;
SET LOCAL hnsw.max_scan_tuples = 777;
SELECT is((SELECT count(*) FROM memory.search('st', '[1,2,0,1]', 10, '{"g": "1"}')), 10::bigint,
    'k rows on the static hnsw path');
SELECT is(concat_ws(' ', current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'),
    current_setting('hnsw.max_scan_tuples'), current_setting('enable_seqscan')), '33 off 777 on',
    'the static path restores the caller''s settings');
RESET hnsw.ef_search;
RESET hnsw.iterative_scan;
RESET hnsw.max_scan_tuples;
-- The cached (generic) plans: whatever the filter's value, exact reads the GIN index and never
-- the HNSW index, hnsw reads the HNSW index (its fallback the GIN index).
SET LOCAL enable_seqscan = off;
CREATE FUNCTION pg_temp.generic(path text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_plan text := '';
    v_line text;
BEGIN
    EXECUTE 'PREPARE pg_temp_knn (vector, integer, jsonb, double precision) AS '
        || memory_private._knn_sql(memory_private._domain('st'),
            memory_private._filter_plain_predicate(), path);
    FOR v_line IN EXECUTE $q$ EXPLAIN EXECUTE pg_temp_knn('[1,2,0,1]', 10, '[{"g": "1"}]', NULL) $q$ LOOP
        v_plan := v_plan || v_line || E'\n';
    END LOOP;
    DEALLOCATE pg_temp_knn;
    RETURN v_plan;
END;
$$;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT ok(pg_temp.generic('exact') ~ 'metadata_gin' AND pg_temp.generic('exact') !~ 'hnsw',
    'the generic plan of the exact path: the GIN index, not the HNSW index');
SELECT ok(pg_temp.generic('hnsw') ~ 'Index Scan using st_memories_hnsw'
    AND pg_temp.generic('hnsw') ~ 'metadata_gin',
    'the generic plan of the hnsw path: the HNSW index scan (the fallback through the GIN index)');
RESET enable_seqscan;
RESET plan_cache_mode;

SELECT memory.drop_domain('st2');
SELECT doesnt_match(pg_temp.src(), 'st2/', 'drop_domain regenerates: st2 is gone');
SET LOCAL hnsw.iterative_scan = relaxed_order;
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'with relaxed_order in the session the dynamic (re-sorting) query runs');

RESET hnsw.iterative_scan;

-- Many domains: memory.search halves the sorted names before a CASE of at most 8
-- (memory_private._dispatch_sql); every domain's search must reach its own branch, the
-- first, the last and those beside each split included ('_' sorts before letters under "C").
DO $many$
DECLARE
    v_name text;
BEGIN
    FOR v_name IN SELECT unnest(ARRAY['sa', 'sb', 'sc', 's_d', 'se', 'sf', 'sg', 'sh', 'si',
        'sj', 'sk', 'sl', 'sm', 'sn', 's_o', 'sp', 'sq', 'sr', 'ss', 'szz'])
    LOOP
        PERFORM memory.create_domain(v_name, 4);
        EXECUTE format($q$INSERT INTO memory_data.%I (id, content, embedding)
            VALUES (%L, 'x', '[1,0,0,1]')$q$, v_name || '_memories', 'only-' || v_name);
        PERFORM memory.refresh_text_stats(v_name);  -- (the hybrid's one-statement path needs them)
    END LOOP;
END;
$many$;
SELECT ok(pg_temp.src() ~ 'IF v_d.domain < ', 'with 21 domains the branches are chosen by halving');
-- (the dynamic path calls _search_settings_begin, a static branch does not: counted per transaction)
SET LOCAL track_functions = 'all';
SELECT is((SELECT count(*) FROM unnest(ARRAY['sa', 'sb', 'sc', 's_d', 'se', 'sf', 'sg', 'sh', 'si',
        'sj', 'sk', 'sl', 'sm', 'sn', 's_o', 'sp', 'sq', 'sr', 'ss', 'szz']) AS n (name)
    WHERE (SELECT array_agg(r.id) FROM memory.search(n.name, '[1,0,0,1]', 5) AS r)
        = ARRAY['only-' || n.name]), 20::bigint,
    'every domain''s search returns its own row');
SELECT is(coalesce(pg_stat_get_xact_function_calls(
        'memory_private._search_settings_begin(integer, integer, boolean)'::regprocedure), 0),
    0::bigint, 'each through its static branch: none took the dynamic path');
-- The generated text and hybrid functions choose the same way (memory_private._dispatch_sql):
-- their dynamic paths call _bm25_sql and _hybrid_candidates, their branches do not.
SELECT ok(pg_get_functiondef('memory_private._search_text_static'::regproc) ~ 'IF v_key < '
    AND pg_get_functiondef('memory.search_hybrid'::regproc) ~ 'IF v_d.domain < ',
    'the text and hybrid functions halve the names too');
SELECT is((SELECT count(*) FROM unnest(ARRAY['sa', 'sb', 'sc', 's_d', 'se', 'sf', 'sg', 'sh', 'si',
        'sj', 'sk', 'sl', 'sm', 'sn', 's_o', 'sp', 'sq', 'sr', 'ss', 'szz']) AS n (name)
    WHERE (SELECT array_agg(r.id) FROM memory.search_text(n.name, 'x', 5) AS r)
        = ARRAY['only-' || n.name]), 20::bigint,
    'every domain''s search_text returns its own row');
SELECT is((SELECT count(*) FROM unnest(ARRAY['sa', 'sb', 'sc', 's_d', 'se', 'sf', 'sg', 'sh', 'si',
        'sj', 'sk', 'sl', 'sm', 'sn', 's_o', 'sp', 'sq', 'sr', 'ss', 'szz']) AS n (name)
    WHERE (SELECT array_agg(r.id) FROM memory.search_hybrid(n.name, 'x', '[1,0,0,1]', 5) AS r)
        = ARRAY['only-' || n.name]), 20::bigint,
    'every domain''s search_hybrid returns its own row');
SELECT is(coalesce(pg_stat_get_xact_function_calls(
        'memory_private._bm25_sql(memory_private.domains, text)'::regprocedure), 0)
    + coalesce(pg_stat_get_xact_function_calls('memory_private._hybrid_candidates(memory_private.domains, text, vector, integer, jsonb, integer, text, boolean)'::regprocedure), 0),
    0::bigint, 'each through its generated branch: no dynamic text query, no general hybrid path');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'and the first domains'' branch still equals the dynamic query');

-- The generator's worst input: the most domains that get branches (500, _static_domains). Its
-- output grows with the names (every WHEN once), its comparisons with their logarithm: 63 IF
-- nodes above 64 CASEs of at most 8, so a search tests at most 6 comparisons and 8 WHENs.
CREATE TEMP TABLE dispatch500 AS
SELECT memory_private._dispatch_sql('v', array_agg(n ORDER BY n COLLATE "C"),
    array_agg(format('WHEN %L THEN NULL;', n) ORDER BY n COLLATE "C"), 'NULL;') AS src,
    clock_timestamp() AS t0
FROM (SELECT 'd' || lpad(g::text, 3, '0') AS n FROM generate_series(1, 500) AS g) AS x;
SELECT is((SELECT (SELECT count(*) FROM regexp_matches(src, 'WHEN ''d\d{3}'' THEN', 'g'))
    || '/' || (SELECT count(*) FROM regexp_matches(src, 'IF v < ', 'g'))
    || '/' || (SELECT count(*) FROM regexp_matches(src, 'CASE v', 'g')) FROM dispatch500),
    '500/63/64', '500 names: every WHEN once, 63 comparisons, 64 CASEs');
SELECT ok((SELECT length(src) < 60000 FROM dispatch500),
    'and the source stays small (under 60 kB for 500 one-line branches)');
-- Each branch goes in without its layout (memory_private._compact_sql): comment lines and
-- indentation dropped, every other character of a line kept (string literals included).
SELECT is(memory_private._compact_sql(E'    WHEN ''a'' THEN\n        -- a comment line\n'
        || E'        RETURN QUERY SELECT ''  two  spaces -- not a comment'';  -- trailing\n    --\n'),
    E'WHEN ''a'' THEN\nRETURN QUERY SELECT ''  two  spaces -- not a comment'';  -- trailing\n',
    'a branch is compacted: its comment lines and indentation go, its text stays');
SELECT ok(memory_private._dispatch_sql('v', ARRAY['a'], ARRAY[E'\n    WHEN ''a'' THEN\n    -- c\n    NULL;'],
        'NULL;') ~ E'WHEN ''a'' THEN\nNULL;',
    'the branches of a generated function are compacted');

SELECT * FROM finish();
ROLLBACK;
