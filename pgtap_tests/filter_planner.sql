-- The filtered-search planner (sql/34_search_plan.sql): an exact scan when few rows match, the
-- HNSW iterative scan when many do, the exact query as fallback when the index gives up before
-- k rows, explain_search showing the path and its reason, and the caller's settings untouched.
BEGIN;
SELECT plan(42);

-- 10,000 rows of 16 dimensions; keys matching 5 rows (0.05%), 1% and 50% of them.
SELECT memory.create_domain('pl', 16);
DROP INDEX memory_data.pl_memories_hnsw;
SELECT setseed(0.17);
INSERT INTO memory_data.pl_memories (id, content, embedding, metadata)
SELECT 'p' || g, 'row ' || g,
    (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 16) WHERE g > 0)::vector,
    jsonb_build_object('rare', g % 2000 = 0, 'pct1', g % 100 = 0, 'half', g % 2 = 0,
        'grp', CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, 'num', g)
FROM generate_series(1, 10000) AS g;
SELECT memory.create_hnsw_index('pl', 12, 40);
ANALYZE memory_data.pl_memories;

CREATE FUNCTION pg_temp.q(id text) RETURNS vector LANGUAGE sql AS
$$ SELECT t.embedding FROM memory_data.pl_memories AS t WHERE t.id = q.id $$;
-- The exact answer: the k nearest rows matching a SQL condition on t, by brute force.
CREATE FUNCTION pg_temp.truth(q vector, cond text, k integer) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_ids text[];
BEGIN
    EXECUTE format('SELECT array_agg(x.id ORDER BY x.d, x.id) FROM (SELECT t.id, '
        '(t.embedding <=> $1) + 0 AS d FROM memory_data.pl_memories AS t WHERE %s '
        'ORDER BY 2, 1 LIMIT $2) AS x', cond)
    INTO v_ids USING q, k;
    RETURN v_ids;
END;
$$;
CREATE FUNCTION pg_temp.got(q vector, filter jsonb, k integer) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(s.id ORDER BY s.distance, s.id) FROM memory.search('pl', q, k, filter) AS s
$$;

-- Few rows match: exact.
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, '{"rare": true}') AS e), 'exact',
    '5 matching rows: the exact path');
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10, '{"rare": true}') AS e),
    '^about [0-9]+ of 10000 rows match .*an exact scan of the matching rows',
    'explain_search says why');
SELECT cmp_ok((SELECT e.matching_rows FROM memory.explain_search('pl', 10, '{"rare": true}') AS e),
    '<', 1000::bigint, 'explain_search shows the estimate (a tenth of the rows at most)');
SELECT is((SELECT e.uses_index FROM memory.explain_search('pl', 10, '{"rare": true}') AS e), false,
    'the exact path does not read the HNSW index');
SELECT matches((SELECT e.plan::text FROM memory.explain_search('pl', 10, '{"rare": true}') AS e),
    'pl_memories_metadata_gin', 'the exact path reads the GIN index');
SELECT is(pg_temp.got(pg_temp.q('p7'), '{"rare": true}', 10),
    pg_temp.truth(pg_temp.q('p7'), $$t.metadata @> '{"rare": true}'$$, 10),
    'all 5 matching rows, in exact order');
SELECT is(pg_temp.got(pg_temp.q('p7'), '{"pct1": true}', 10),
    pg_temp.truth(pg_temp.q('p7'), $$t.metadata @> '{"pct1": true}'$$, 10),
    '1%: the exact 10 nearest');
SELECT is(pg_temp.got(pg_temp.q('p8'), '{"pct1": true, "num": {"$gt": 5000}}', 3),
    pg_temp.truth(pg_temp.q('p8'), $$t.metadata @> '{"pct1": true}' AND (t.metadata->>'num')::int > 5000$$, 3),
    'a compound filter: the exact 3 nearest');

SELECT set_config('pgmemo.filter_estimate', '', false);  -- nothing kept yet
SELECT is(pg_temp.got(pg_temp.q('p7'), '{"pct1": true}', 10),
    pg_temp.truth(pg_temp.q('p7'), $$t.metadata @> '{"pct1": true}'$$, 10),
    '1% again, with nothing kept');
SELECT matches(current_setting('pgmemo.filter_estimate', true), '^[0-9a-f]{32} [0-9.]+ (exact|hnsw) [0-9]+ ',
    'memory.search keeps the estimate of its last filter for the session (reused for 10 s)');

-- The caller can write that setting: a forged entry (the right key, an ef_search and a scan
-- bound beyond any the planner picks, or an unknown path) is taken only within the planner's
-- own bounds: the rows come back, ef_search <= 1000, the scan bound pgvector's default.
SELECT is((SELECT count(*) FROM memory.search('pl', pg_temp.q('p3'), 10, '{"half": true}')),
    10::bigint, 'a 50% filter, kept');
SELECT set_config('pgmemo.filter_estimate', array_to_string(
    (string_to_array(current_setting('pgmemo.filter_estimate'), ' '))[1:2]
    || ARRAY['hnsw', '100000', '2147483647']
    || (string_to_array(current_setting('pgmemo.filter_estimate'), ' '))[6:], ' '), false);
SELECT is((SELECT p.ef || ' ' || p.max_scan_tuples
    FROM memory_private._filter_for((SELECT d FROM memory_private.domains AS d WHERE d.domain = 'pl'),
        '{"half": true}') AS c,
        memory_private._search_plan((SELECT d FROM memory_private.domains AS d WHERE d.domain = 'pl'),
            c.predicate, c.params, 10, NULL, true) AS p), '1000 20000',
    'a forged ef_search and scan bound: clamped to 1000 and the default bound');
SELECT is((SELECT count(*) FROM memory.search('pl', pg_temp.q('p3'), 10, '{"half": true}')),
    10::bigint, 'memory.search with the forged entry: its rows, no error');
SELECT set_config('pgmemo.filter_estimate', regexp_replace(
    current_setting('pgmemo.filter_estimate'), '^([0-9a-f]{32} [0-9.]+) [a-z]+ ', '\1 bogus '), false);
SELECT is((SELECT p.path
    FROM memory_private._filter_for((SELECT d FROM memory_private.domains AS d WHERE d.domain = 'pl'),
        '{"half": true}') AS c,
        memory_private._search_plan((SELECT d FROM memory_private.domains AS d WHERE d.domain = 'pl'),
            c.predicate, c.params, 10, NULL, true) AS p), 'hnsw',
    'an unknown path in the entry: planned afresh');

-- Many rows match: the HNSW iterative scan.
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, '{"half": true}') AS e), 'hnsw',
    '50% matching: the hnsw path');
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10, '{"half": true}') AS e),
    'the HNSW iterative scan \(ef_search [0-9]+, at most [0-9]+ candidates',
    'explain_search gives ef_search and the scan bound');
SELECT is((SELECT e.uses_index FROM memory.explain_search('pl', 10, '{"half": true}') AS e), true,
    'the hnsw path reads the HNSW index');
SELECT matches((SELECT e.plan::text FROM memory.explain_search('pl', 10, '{"half": true}') AS e),
    'One-Time Filter', 'the exact fallback is a one-time filter in the same statement');
SELECT is((SELECT count(*) FROM memory.search('pl', pg_temp.q('p3'), 10, '{"half": true}')), 10::bigint,
    '50%: k rows');
SELECT ok((SELECT count(*) FROM unnest(pg_temp.got(pg_temp.q('p3'), '{"half": true}', 10)) AS g (id)
    WHERE g.id = ANY(pg_temp.truth(pg_temp.q('p3'), $$t.metadata @> '{"half": true}'$$, 10))) >= 9,
    '50%: recall@10 >= 0.9 against the exact answer');
SELECT ok((SELECT bool_and(s.metadata @> '{"half": true}')
    FROM memory.search('pl', pg_temp.q('p3'), 10, '{"half": true}') AS s), 'every row matches');
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, NULL) AS e), 'hnsw',
    'no filter: hnsw');

-- A wrong estimate: statistics say half the rows are in group a, but after an update only the 3
-- rows farthest from the query are. The estimate picks hnsw, so the planner counts the matching
-- rows through the GIN index (bounded), finds 3 and takes the exact path.
CREATE TEMP TABLE far AS
SELECT t.id FROM memory_data.pl_memories AS t ORDER BY t.embedding <=> pg_temp.q('p5') DESC LIMIT 3;
UPDATE memory_data.pl_memories AS t SET metadata = t.metadata || '{"grp": "c"}'
WHERE t.metadata @> '{"grp": "a"}';
UPDATE memory_data.pl_memories AS t SET metadata = t.metadata || '{"grp": "a"}'
WHERE t.id IN (SELECT far.id FROM far);
SELECT is((SELECT e.path || ' ' || e.matching_rows FROM memory.explain_search('pl', 10, '{"grp": "a"}') AS e),
    'exact 3', 'stale statistics: the rows are counted (3) and the exact path is chosen');
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10, '{"grp": "a"}') AS e),
    '^3 \(counted; the planner estimated [0-9]{4}\) of 10000 rows match',
    'explain_search gives the count and the planner''s estimate');
SELECT is(pg_temp.got(pg_temp.q('p5'), '{"grp": "a"}', 10),
    (SELECT array_agg(x.id ORDER BY x.d) FROM (SELECT t.id, t.embedding <=> pg_temp.q('p5') AS d
        FROM memory_data.pl_memories AS t WHERE t.id IN (SELECT far.id FROM far)) AS x),
    'all 3, nearest first');
-- The count is bounded: half the rows match, and it stops where the HNSW scan is cheaper.
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10, '{"half": true}') AS e),
    '^about [0-9]+ \(the planner''s estimate; counted: at least ([0-9]{3}|[1-4][0-9]{3}), where the HNSW',
    'the count stops short of the 5000 matching rows');

-- The fallback: a filter no index serves (so no count) and no statistics (a third of the rows,
-- by default) where 3 rows match: the iterative scan gives up before k rows and the exact query
-- in the same statement returns exactly those 3.
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, '{"num": {"$gt": 9997}}') AS e),
    'hnsw', 'an unindexed range, estimated at a third of the rows: hnsw, not counted');
SELECT is(pg_temp.got(pg_temp.q('p5'), '{"num": {"$gt": 9997}}', 10),
    pg_temp.truth(pg_temp.q('p5'), $$(t.metadata->>'num')::int > 9997$$, 10),
    'the index gave up before k rows: the exact fallback returns all 3, nearest first');

-- A range no index serves: the planner has no statistics for the expression (default estimate:
-- a third of the rows), so the hnsw path runs, and its fallback keeps the answer exact. With the
-- expression index (and ANALYZE) the estimate is right and the exact path runs.
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, '{"num": {"$lt": 20}}') AS e), 'hnsw',
    'an unindexed range: no statistics, hnsw');
SELECT is(pg_temp.got(pg_temp.q('p9'), '{"num": {"$lt": 20}}', 5),
    pg_temp.truth(pg_temp.q('p9'), $$(t.metadata->>'num')::int < 20$$, 5),
    'the unindexed range: the exact 5 nearest');
-- A range of two bounds no index serves: the planner's default estimate is 0.5% of the rows, and
-- the exact path is a sequential scan testing every row. On 10,000 rows that scan is cheaper; on
-- 100,000 (the statistics say so) the HNSW scan is (it cost 0.15 us a row in the model before
-- stop 26, a quarter of what it costs, and such a filter scanned 100,000 rows in ~150 ms).
SELECT is((SELECT e.path || ' ' || e.uses_index FROM memory.explain_search('pl', 10,
    '{"num": {"$between": [100, 180]}}') AS e), 'exact false',
    'an unindexed range of two bounds on 10,000 rows: a sequential scan');
SELECT pg_restore_relation_stats('schemaname', 'memory_data', 'relname', 'pl_memories',
    'reltuples', 100000::real, 'relpages', (SELECT (pg_relation_size(c.oid)
        / current_setting('block_size')::integer)::integer
        FROM pg_class AS c WHERE c.oid = 'memory_data.pl_memories'::regclass));
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10,
    '{"num": {"$between": [100, 180]}}') AS e), 'hnsw',
    'the same range on 100,000 rows: the HNSW scan');
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10,
    '{"num": {"$between": [100, 180]}}') AS e), 'HNSW iterative scan \(ef_search 100,',
    'with the default ef_search: the estimate is a guess (no index, no statistics)');
SELECT is((SELECT count(*) FILTER (WHERE (s.metadata->>'num')::int BETWEEN 100 AND 180)
    FROM memory.search('pl', pg_temp.q('p9'), 5, '{"num": {"$between": [100, 180]}}') AS s),
    5::bigint, 'and its 5 rows match the range');
SELECT matches((SELECT e.reason FROM memory.explain_search('pl', 10, '{"num": {"$lt": 20}}') AS e),
    'no index serves the filter \(memory\.create_metadata_index\(domain, key, type\) makes one',
    'an unindexed range: the reason names the function that makes its index');
SELECT memory.create_metadata_index('pl', 'num', 'number');
ANALYZE memory_data.pl_memories;
SELECT doesnt_match((SELECT e.reason FROM memory.explain_search('pl', 10, '{"num": {"$lt": 20}}') AS e),
    'create_metadata_index|no index serves', 'with the index: no such hint');
SELECT is((SELECT e.path FROM memory.explain_search('pl', 10, '{"num": {"$lt": 20}}') AS e), 'exact',
    'with its expression index, the range on 0.2% of the rows: exact');
SELECT is(pg_temp.got(pg_temp.q('p9'), '{"num": {"$lt": 20}}', 5),
    pg_temp.truth(pg_temp.q('p9'), $$(t.metadata->>'num')::int < 20$$, 5),
    'the unindexed filter: the exact 5 nearest');

-- The caller's settings are untouched, on both paths.
SET LOCAL hnsw.max_scan_tuples = 12345;
SET LOCAL hnsw.iterative_scan = off;
SELECT is((SELECT count(*) FROM memory.search('pl', pg_temp.q('p3'), 10, '{"half": true}')), 10::bigint,
    'a search on the hnsw path');
SELECT is(current_setting('hnsw.max_scan_tuples') || ' ' || current_setting('hnsw.iterative_scan')
    || ' ' || current_setting('enable_seqscan'), '12345 off on',
    'hnsw.max_scan_tuples, hnsw.iterative_scan and enable_seqscan are restored');
SELECT is((SELECT count(*) FROM memory.search('pl', pg_temp.q('p3'), 10, '{"rare": true}')), 5::bigint,
    'a search on the exact path');
SELECT is(current_setting('hnsw.max_scan_tuples') || ' ' || current_setting('hnsw.ef_search'),
    '12345 40', 'and after it');

SELECT * FROM finish();
ROLLBACK;
