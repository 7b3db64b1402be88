-- Searching: memory.search uses the HNSW index, returns k rows when k rows match (filters,
-- k > ef_search), leaves the caller's settings alone, orders by distance; search_text and
-- search_hybrid; bad input fails with a stable SQLSTATE.
BEGIN;
SELECT plan(62);

-- A 10,000-row, 32-dimension domain. The HNSW index is built once after the load (faster than
-- 10,000 incremental inserts); create_hnsw_index puts it back.
SELECT memory.create_domain('big', 32);
DROP INDEX memory_data.big_memories_hnsw;
SELECT setseed(0.42);
INSERT INTO memory_data.big_memories (id, content, embedding, metadata)
SELECT 'r' || g, 'row ' || g,
    (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 32) WHERE g > 0)::vector,
    jsonb_build_object('g', g, 'pct1', g % 100 = 0, 'half', g % 200 = 0)
FROM generate_series(1, 10000) AS g;
SELECT memory.create_hnsw_index('big', 12, 40);
ANALYZE memory_data.big_memories;

-- The plan of exactly what memory.search runs (memory_private._search_sql), with its parameters.
CREATE FUNCTION pg_temp.plan(with_filter boolean, filter jsonb, k integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_line text;
    v_plan text := '';
BEGIN
    FOR v_line IN EXECUTE 'EXPLAIN (COSTS OFF) '
        || memory_private._search_sql(memory_private._domain('big'), with_filter)
        USING (SELECT t.embedding FROM memory_data.big_memories AS t WHERE t.id = 'r7'), k, filter,
            NULL::double precision
    LOOP
        v_plan := v_plan || v_line || E'\n';
    END LOOP;
    RETURN v_plan;
END;
$$;

CREATE FUNCTION pg_temp.q(id text) RETURNS vector LANGUAGE sql AS
$$ SELECT t.embedding FROM memory_data.big_memories AS t WHERE t.id = q.id $$;

SELECT matches(pg_temp.plan(false, NULL, 10), 'Index Scan using big_memories_hnsw',
    'EXPLAIN of the search query shows the HNSW index');
SELECT matches(pg_temp.plan(true, '{"pct1": true}', 10), 'Index Scan using big_memories_hnsw',
    'EXPLAIN of the filtered search query shows the HNSW index');
SELECT matches(pg_temp.plan(true, '{"pct1": true}', 10), 'Sort',
    'the outer query really sorts (relaxed_order rows come back strictly ordered)');

SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10)), 10::bigint,
    'k = 10: 10 rows');
SELECT is((SELECT id FROM memory.search('big', pg_temp.q('r7'), 1)), 'r7',
    'the row itself is its own nearest neighbour');
SELECT is((SELECT round(similarity::numeric, 4) FROM memory.search('big', pg_temp.q('r7'), 1)),
    1.0000, 'cosine similarity of a vector with itself is 1');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{"pct1": true}')),
    10::bigint, 'a filter matching 1% of rows still returns k = 10 rows');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{"half": true}')),
    10::bigint, 'a filter matching 0.5% of rows still returns k = 10 rows');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 50, '{"pct1": true}')),
    50::bigint, 'k = 50 with the 1% filter: 50 rows');
SELECT is(
    (SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{"pct1": true}') AS s
     WHERE s.metadata @> '{"pct1": true}'), 10::bigint, 'and every row matches the filter');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{"g": 123}')), 1::bigint,
    'a filter matching one row returns it');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{"nothing": 1}')),
    0::bigint, 'a filter matching nothing returns nothing');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10, '{}')), 10::bigint,
    'an empty filter matches everything');

-- ef_search is raised to k for the call, then put back.
SELECT is(current_setting('hnsw.ef_search'), '40', 'default hnsw.ef_search is 40');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 200)), 200::bigint,
    'k = 200 returns 200 rows');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 1000)), 1000::bigint,
    'k = 1000 returns 1000 rows');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 100, '{"pct1": true}')),
    100::bigint, 'k = 100 with the 1% filter returns all 100 matching rows');
SELECT is(current_setting('hnsw.ef_search'), '40', 'hnsw.ef_search unchanged after the calls');
SELECT is(current_setting('hnsw.iterative_scan'), 'off', 'hnsw.iterative_scan unchanged');
SET LOCAL hnsw.ef_search = 77;
SET LOCAL hnsw.iterative_scan = strict_order;
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 200, '{"pct1": true}')),
    100::bigint, 'with the caller''s own settings');
SELECT is(current_setting('hnsw.ef_search'), '77', 'the caller''s hnsw.ef_search is restored');
SELECT is(current_setting('hnsw.iterative_scan'), 'strict_order',
    'the caller''s hnsw.iterative_scan is restored');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 10)), 10::bigint,
    'k below the caller''s ef_search');
SELECT is(current_setting('hnsw.ef_search'), '77', 'leaves it alone');
RESET hnsw.ef_search;
RESET hnsw.iterative_scan;

-- Results are ordered by distance (also with relaxed_order iterative scans).
SELECT is(
    (SELECT count(*) FROM (
        SELECT s.distance < lag(s.distance) OVER (PARTITION BY q.id ORDER BY s.ord) AS inverted
        FROM (SELECT 'r' || g AS id FROM generate_series(1, 30) AS g) AS q,
            LATERAL memory.search('big', pg_temp.q(q.id), 60, '{"pct1": true}')
                WITH ORDINALITY AS s (id, content, metadata, similarity, distance, c, u, e, ord)
        ) AS x WHERE x.inverted),
    0::bigint, '30 filtered searches: every result list ascends by distance');
SELECT is(
    (SELECT count(*) FROM (
        SELECT s.similarity > lag(s.similarity) OVER (ORDER BY s.ord) AS inverted,
            abs(s.similarity - (1 - s.distance)) > 1e-9 AS wrong
        FROM memory.search('big', pg_temp.q('r9'), 100)
            WITH ORDINALITY AS s (id, content, metadata, similarity, distance, c, u, e, ord)
        ) AS x WHERE x.inverted OR x.wrong),
    0::bigint, 'similarity = 1 - distance and descends');

-- min_similarity drops weaker rows from the k.
SELECT cmp_ok((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 50, min_similarity => 0.5)),
    '<', 50::bigint, 'min_similarity cuts the list');
SELECT cmp_ok((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 50, min_similarity => 0.5)),
    '>=', 1::bigint, 'but keeps the row itself');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 50, min_similarity => 0.5)
           WHERE similarity < 0.5), 0::bigint, 'no row below min_similarity');

-- Rows without an embedding are never returned.
SELECT memory.store('big', 'not embedded yet', '{"pct1": true}');
SELECT is((SELECT count(*) FROM memory.search('big', pg_temp.q('r7'), 1000, '{"pct1": true}')
           WHERE content = 'not embedded yet'), 0::bigint, 'a row without embedding is not returned');

-- Bad input.
SELECT throws_ok($$SELECT * FROM memory.search('nope', '[1,2,3]')$$, '42704', NULL,
    'unknown domain: 42704');
SELECT throws_ok($$SELECT * FROM memory.search('big', '[1,2,3]')$$, '22000',
    'query_embedding has 3 dimensions, domain "big" expects 32', 'wrong dimension: 22000');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), 0)$$, '22023',
    'k must be between 1 and 1000, got 0', 'k = 0: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), -5)$$, '22023', NULL,
    'k < 0: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), 1001)$$, '22023', NULL,
    'k = 1001: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), 2000000000)$$, '22023', NULL,
    'absurd k: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), NULL)$$, '22023', NULL,
    'NULL k: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', pg_temp.q('r1'), 5, '[1]')$$, '22023',
    'invalid filter at $: a filter is a JSON object, got an array',
    'filter not an object: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('big', NULL)$$, '22004', NULL,
    'NULL query_embedding: 22004');

-- search_text: websearch syntax, and no error on empty or odd queries.
SELECT memory.create_domain('notes', 3);
SELECT memory.store_many('notes',
    ARRAY['The quick brown fox jumps over the lazy dog', 'A lazy dog sleeps all day',
          'Brown bread recipe with quick yeast', 'quick brown dogs run fast',
          'Foxes are not dogs'],
    ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3, "kind": "food"}', '{"n": 4}', '{"n": 5}']::jsonb[],
    ARRAY['[1,0,0]', '[0,1,0]', '[0,0,1]', '[1,1,0]', '[0,1,1]']::vector[],
    ARRAY['t1', 't2', 't3', 't4', 't5']);
SELECT set_eq($$SELECT id FROM memory.search_text('notes', 'lazy dog', match => 'all')$$,
    ARRAY['t1', 't2'], 'match all: plain words AND');
SELECT set_eq($$SELECT id FROM memory.search_text('notes', 'lazy dog')$$,
    ARRAY['t1', 't2', 't4', 't5'], 'default (match any): any word, BM25-ranked');
SELECT set_eq($$SELECT id FROM memory.search_text('notes', '"quick brown"')$$, ARRAY['t1', 't4'],
    '"quoted phrase"');
SELECT set_eq($$SELECT id FROM memory.search_text('notes', 'bread OR sleeps')$$, ARRAY['t2', 't3'],
    'OR');
SELECT set_eq($$SELECT id FROM memory.search_text('notes', 'quick -fox')$$, ARRAY['t3', 't4'],
    '-exclusion');
SELECT set_eq($$SELECT id FROM memory.search_text('notes', 'dog', filter => '{"n": 2}')$$, ARRAY['t2'],
    'with a filter');
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'dog', 2)), 2::bigint, 'k limits');
SELECT is((SELECT id FROM memory.search_text('notes', 'lazy dog', 1)), 't2',
    'ranked: the denser match first');
SELECT is((SELECT count(*) FROM memory.search_text('notes', '')), 0::bigint, 'empty query: no rows');
SELECT is((SELECT count(*) FROM memory.search_text('notes', NULL)), 0::bigint, 'NULL query: no rows');
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'the and of a')), 0::bigint,
    'stop words only: no rows');
SELECT is((SELECT count(*) FROM memory.search_text('notes', $q$&|!():* <-> '"' -- ;$q$)), 0::bigint,
    'punctuation soup: no rows, no error');
SELECT is((SELECT count(*) FROM memory.search_text('notes', $q$'; DROP TABLE x; --$q$)), 0::bigint,
    'an injection attempt is just words');
SELECT throws_ok($$SELECT * FROM memory.search_text('notes', 'dog', 0)$$, '22023', NULL,
    'search_text k = 0: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_text('notes', 'dog', 5, '"x"')$$, '22023', NULL,
    'search_text filter not an object: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_text('nope', 'dog')$$, '42704', NULL,
    'search_text unknown domain: 42704');

-- search_hybrid: text only, embedding only, both.
SELECT set_eq($$SELECT id FROM memory.search_hybrid('notes', 'bread', NULL)$$, ARRAY['t3'],
    'hybrid with only text');
SELECT is((SELECT id FROM memory.search_hybrid('notes', NULL, '[1,0.1,0]', 1)), 't1',
    'hybrid with only an embedding');
SELECT set_eq($$SELECT id FROM memory.search_hybrid('notes', 'sleeps', '[0,0.2,1]', 2)$$,
    ARRAY['t2', 't3'], 'hybrid with both: the text hit and the vector hit lead');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('notes', NULL, NULL)$$, '22004', NULL,
    'hybrid with neither: 22004');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('notes', 'dog', '[1,2]')$$, '22000', NULL,
    'hybrid wrong dimension: 22000');

-- l2 and inner_product domains.
SELECT memory.create_domain('near', 2, 'l2');
SELECT memory.create_domain('dot', 2, 'inner_product');
SELECT memory.store_many('near', ARRAY['a', 'b'], NULL, ARRAY['[0,0]', '[3,4]']::vector[], ARRAY['a', 'b']);
SELECT memory.store_many('dot', ARRAY['a', 'b'], NULL, ARRAY['[1,0]', '[2,2]']::vector[], ARRAY['a', 'b']);
SELECT is((SELECT array_agg(row(id, distance, similarity)::text ORDER BY distance)
           FROM memory.search('near', '[0,0]', 2)),
    ARRAY['(a,0,1)', '(b,5,0.16666666666666666)'], 'l2: distance and 1 / (1 + distance)');
SELECT is((SELECT array_agg(row(id, distance, similarity)::text ORDER BY distance)
           FROM memory.search('dot', '[1,1]', 2)),
    ARRAY['(b,-4,4)', '(a,-1,1)'], 'inner_product: distance is the negative inner product');

SELECT * FROM finish();
ROLLBACK;
