-- Search quality knobs: ef_search per call (clamped, restored), memory-aware ranking (recency,
-- importance) that changes the order only when asked, typed full-text queries (ties, match =>
-- 'all' / 'any', the domain's text configuration, nasty input never an SQL error),
-- and the hybrid's weights.
BEGIN;
SELECT plan(45);

SELECT memory.create_domain('q', 3);
-- a: closest to [1,0,0], old, unimportant; b: a little farther, new, important; c: far.
INSERT INTO memory_data.q_memories (id, content, embedding, metadata, created_at, updated_at)
VALUES
    ('a', 'alpha memory about tea', '[1,0.05,0]', '{"importance": 0.1}',
        now() - interval '30 days', now() - interval '30 days'),
    ('b', 'beta memory about coffee', '[1,0.3,0]', '{"importance": 1.0}', now(), now()),
    ('c', 'gamma memory about water', '[0,1,0]', '{}', now(), now());

-- Defaults: plain nearest-neighbour order.
SELECT is((SELECT array_agg(s.id) FROM memory.search('q', '[1,0,0]', 3) AS s),
    ARRAY['a', 'b', 'c'], 'no ranking knobs: order by distance');
-- Recency: a is 30 days old; with a 1-day half-life b overtakes it.
SELECT is((SELECT array_agg(s.id) FROM memory.search('q', '[1,0,0]', 2,
    recency_half_life => '1 day') AS s),
    ARRAY['b', 'a'], 'recency_half_life: the recent memory first');
SELECT is((SELECT array_agg(s.id) FROM memory.search('q', '[1,0,0]', 2,
    recency_half_life => '10 years') AS s),
    ARRAY['a', 'b'], 'a long half-life barely changes the order');
-- Importance: b is important, a is not.
SELECT is((SELECT array_agg(s.id) FROM memory.search('q', '[1,0,0]', 2,
    importance_weight => 0.5) AS s),
    ARRAY['b', 'a'], 'importance_weight: the important memory first');
SELECT is((SELECT array_agg(s.id) FROM memory.search('q', '[1,0,0]', 2,
    importance_weight => 0) AS s),
    ARRAY['a', 'b'], 'importance_weight 0: similarity alone');
SELECT is((SELECT round(s.similarity::numeric, 6) FROM memory.search('q', '[1,0,0]', 3,
    importance_weight => 0.5) AS s WHERE s.id = 'a'),
    (SELECT round(s.similarity::numeric, 6) FROM memory.search('q', '[1,0,0]', 3) AS s
     WHERE s.id = 'a'),
    'with re-ranking, similarity is still the raw similarity');
SELECT is((SELECT count(*) FROM memory.search('q', '[1,0,0]', 2, importance_weight => 0.5)),
    2::bigint, 're-ranking still returns k rows');
SELECT is(memory_private._importance('{}'), 0.5::double precision,
    'missing importance counts as 0.5');
SELECT is(memory_private._importance('{"importance": "high"}'), 0.5::double precision,
    'non-numeric importance counts as 0.5');
SELECT is(memory_private._importance('{"importance": 7}'), 1::double precision,
    'importance is clamped to [0, 1]');
SELECT cmp_ok(memory_private._blend(0.5, '{}', now() - interval '1000 years', '1 second', NULL),
    '<', 1e-300::double precision, 'an ancient memory decays to ~0 without an underflow error');
SELECT throws_ok($$SELECT * FROM memory.search('q', '[1,0,0]', 2, importance_weight => 1.5)$$,
    '22023', NULL, 'importance_weight > 1: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('q', '[1,0,0]', 2, importance_weight => 'NaN')$$,
    '22023', NULL, 'importance_weight NaN: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('q', '[1,0,0]', 2,
    recency_half_life => '-1 day')$$, '22023', NULL, 'negative half-life: 22023');
SELECT throws_ok($$SELECT * FROM memory.search('q', '[1,0,0]', 2, recency_half_life => '0')$$,
    '22023', NULL, 'zero half-life: 22023');

-- ef_search per call: clamped to [k, 1000], the session's value restored afterwards.
SET LOCAL hnsw.ef_search = 33;
SELECT is((SELECT count(*) FROM memory.search('q', '[1,0,0]', 3, ef_search => 1)), 3::bigint,
    'ef_search below k is raised to k');
SELECT is(current_setting('hnsw.ef_search'), '33', 'ef_search restored after a per-call value');
SELECT is((SELECT count(*) FROM memory.search('q', '[1,0,0]', 3, ef_search => 100000)), 3::bigint,
    'ef_search above 1000 is clamped (no error)');
SELECT is(current_setting('hnsw.ef_search'), '33', 'restored after a clamped value');
SELECT is((SELECT count(*) FROM memory.search('q', '[1,0,0]', 3)), 3::bigint, 'default ef_search');
SELECT is(current_setting('hnsw.ef_search'), '33', 'restored after the default raise to 100');
SELECT is((SELECT count(*) FROM memory.search('q', '[1,0,0]', 3, importance_weight => 0.2)),
    3::bigint, 're-ranking search');
SELECT is(current_setting('hnsw.ef_search'), '33', 'restored after a re-ranking search');
SELECT throws_ok($$SELECT * FROM memory.search('q', '[1,0,0]', 2, ef_search => 0)$$,
    '22023', NULL, 'ef_search 0: 22023');

-- Hybrid: knobs pass through; bad weights are 22023.
SELECT is((SELECT array_agg(s.id) FROM memory.search_hybrid('q', NULL, '[1,0,0]', 2,
    recency_half_life => '1 day', fusion => 'rrf') AS s),
    ARRAY['b', 'c'], 'hybrid recency_half_life (rrf): the 30-day-old memory drops to last');
SELECT is((SELECT s.id FROM memory.search_hybrid('q', NULL, '[1,0,0]', 1,
    recency_half_life => '1 day') AS s),
    'b', 'hybrid recency_half_life (convex): the recent memory first');
SELECT is((SELECT array_agg(s.id) FROM memory.search_hybrid('q', NULL, '[1,0,0]', 2,
    importance_weight => 0.8) AS s),
    ARRAY['b', 'c'], 'hybrid importance_weight: the unimportant memory drops to last');
SELECT is((SELECT array_agg(s.id) FROM memory.search_hybrid('q', 'water', '[1,0,0]', 1,
    vector_weight => 0, text_weight => 1) AS s),
    ARRAY['c'], 'hybrid text weight only: the text hit');
SELECT is((SELECT count(*) FROM memory.search_hybrid('q', 'tea', '[1,0,0]', 3, ef_search => 5,
    text_match => 'any')), 3::bigint, 'hybrid with ef_search and text_match');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('q', 'tea', '[1,0,0]', 2,
    vector_weight => -1)$$, '22023', NULL, 'negative weight: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('q', 'tea', '[1,0,0]', 2,
    vector_weight => 0, text_weight => 0)$$, '22023', NULL, 'both weights 0: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('q', 'tea', '[1,0,0]', 2,
    text_weight => 'NaN')$$, '22023', NULL, 'NaN weight: 22023');

-- Full text: a match at the start of a memory ranks above the same match later on.
SELECT memory.create_domain('notes2', 3);
SELECT memory.store_many('notes2',
    ARRAY['Deployment checklist: run the migrations before restarting the service, then '
          || 'watch the error rate for ten minutes and roll back if it climbs. Tell the on-call '
          || 'engineer first, and keep the old release around until the next morning.',
          'Before restarting the service, watch the error rate for ten minutes and run the '
          || 'migrations, then roll back if it climbs. Tell the on-call engineer first, and '
          || 'keep the old release around until the next morning: deployment checklist.'],
    NULL, NULL, ARRAY['start', 'end']);
SELECT is((SELECT s.id FROM memory.search_text('notes2', 'deployment checklist', 1,
    match => 'all') AS s), 'end', 'equal BM25 scores: the tie is broken by id');
SELECT set_eq($$SELECT id FROM memory.search_text('notes2', 'checklist zebra', match => 'all')$$,
    ARRAY[]::text[], 'match all: every word needed');
SELECT set_eq($$SELECT id FROM memory.search_text('notes2', 'checklist zebra', match => 'any')$$,
    ARRAY['start', 'end'], 'match any: any word is enough');
SELECT set_eq($$SELECT id FROM memory.search_text('notes2', 'checklist -start', match => 'any')$$,
    ARRAY['start', 'end'], 'match any with an -exclusion of a word no row has');
SELECT throws_ok($$SELECT * FROM memory.search_text('notes2', 'x', match => 'some')$$,
    '22023', NULL, 'unknown match: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_text('notes2', repeat('word ', 3000))$$,
    '22023', NULL, 'a query over 10000 characters: 22023');

-- Nasty input: no rows or rows, never an SQL error.
SELECT lives_ok($$
    SELECT count(*) FROM unnest(ARRAY['', ' ', '"', '""', '"unbalanced', '''', '''''', '\', 'a\b\', '&|!:*()<->',
        '!!!', '-', '- -', 'OR', 'or OR or', '(a|b)&!c', 'path:*', 'foo <-> bar', '<2>',
        'ünïcödé 日本語 🙂', repeat('x', 5000), repeat('deploy ', 1400), E'tab\there',
        'the of and', '-deployment', '"deployment checklist" OR zebra', 'a:A*B',
        ''' OR 1=1 --']) AS q,
        unnest(ARRAY['all', 'any']) AS m,
        LATERAL memory.search_text('notes2', q, 5, NULL, m) AS s
$$, 'a zoo of nasty queries: no SQL error in either match mode');
SELECT is((SELECT count(*) FROM memory.search_text('notes2', '&|!:*()<->', match => 'any')),
    0::bigint, 'punctuation soup with match any: no rows');
SELECT is((SELECT count(*) FROM memory.search_text('notes2', 'the of and', match => 'any')),
    0::bigint, 'stop words with match any: no rows');

-- The domain's text configuration is honoured: 'simple' keeps stop words and does not stem.
SELECT memory.create_domain('plain', 3, text_config => 'simple');
SELECT memory.store('plain', 'the running of the bulls', id => 'p1');
SELECT memory.store('notes2', 'the running of the bulls', id => 'e1');
SELECT is((SELECT count(*) FROM memory.search_text('plain', 'the')), 1::bigint,
    'simple configuration: "the" is a word');
SELECT is((SELECT count(*) FROM memory.search_text('plain', 'run')), 0::bigint,
    'simple configuration: no stemming (run does not match running)');
SELECT is((SELECT count(*) FROM memory.search_text('notes2', 'run bull', match => 'all')), 1::bigint,
    'english configuration: stemming (run bull matches running bulls)');

-- One signature each (the old ones are dropped on migrate).
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'memory'::regnamespace
           AND proname IN ('search', 'search_text', 'search_hybrid')), 3::bigint,
    'exactly one signature of search, search_text and search_hybrid');

SELECT * FROM finish();
ROLLBACK;
