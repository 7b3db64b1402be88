-- BM25 text search (sql/31_bm25.sql): the stored tsvector column, scores equal to the Okapi
-- BM25 formula, IDF and length normalisation, document frequencies counted over the whole domain
-- (not the filtered rows), the web-search syntax in both match modes, the text statistics
-- (refresh_text_stats, common lexemes from ANALYZE outside the candidate scan), adopted tables.
BEGIN;
SELECT plan(93);

-- 'simple': no stemming, no stop words, so the lexemes are the words.
SELECT memory.create_domain('bm', 3, text_config => 'simple');
SELECT memory.store_many('bm',
    ARRAY['apple banana', 'apple apple cherry', 'banana cherry date elder fig', 'grape'],
    ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}']::jsonb[], NULL,
    ARRAY['b1', 'b2', 'b3', 'b4']);

-- The stored column and its index.
SELECT is((SELECT attgenerated::text FROM pg_attribute
           WHERE attrelid = 'memory_data.bm_memories'::regclass AND attname = 'content_tsv'), 's',
    'factory tables have a STORED generated content_tsv column');
SELECT matches(pg_get_indexdef('memory_data.bm_memories_fts'::regclass), 'gin \(content_tsv\)',
    'the full-text index is on the stored column');
UPDATE memory_data.bm_memories SET content = 'grape grape kiwi' WHERE id = 'b4';
SELECT is((SELECT content_tsv FROM memory_data.bm_memories WHERE id = 'b4'),
    $$grape:1,2 kiwi:3 ' dl':4$$::tsvector,
    'a content change recomputes the tsvector (with the length marker after the last word)');
UPDATE memory_data.bm_memories SET content = 'grape' WHERE id = 'b4';

-- N = 4, dl in words: 2, 3, 5, 1, avgdl = 11 / 4 = 2.75, k1 = 1.2, b = 0.75.
-- 'apple': df 2, idf = ln(1 + 2.5 / 2.5) = ln 2.
--   b2 (tf 2, dl 3): ln 2 * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / 2.75))
--   b1 (tf 1, dl 2): ln 2 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 2.75))
SELECT results_eq($$SELECT id, round(rank::numeric, 6) FROM memory.search_text('bm', 'apple')$$,
    $$VALUES ('b2', round((ln(2) * 4.4 / (2 + 1.2 * (0.25 + 0.75 * 3 / 2.75)))::numeric, 6)),
             ('b1', round((ln(2) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 2.75)))::numeric, 6))$$,
    'scores are the BM25 formula (tf from positions, length in words)');
SELECT is((SELECT id FROM memory.search_text('bm', 'banana grape', 1)), 'b4',
    'IDF: the row with the rarer word ranks first');
SELECT is((SELECT id FROM memory.search_text('bm', 'banana', 1)), 'b1',
    'length normalisation: the shorter row with the same tf ranks first');
SELECT is((SELECT round(rank::numeric, 6) FROM memory.search_text('bm', 'apple',
        filter => '{"n": 1}')),
    round((ln(2) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 2.75)))::numeric, 6),
    'document frequencies count the whole domain, not only the filtered rows');

-- The proximity bonus (pgmemo.bm25_proximity, default 0.7): each pair of consecutive query
-- words found 1, 2 or 3 positions apart, in either order, adds 0.7 * the smaller IDF times 1,
-- 1/4 or 1/9. Six rows, N = 6, avgdl = 25 / 6; alpha, beta and delta have df 5, so each IDF is
-- ln(1 + 1.5 / 5.5), and a word's BM25 term in a row of 4 words is
-- idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 24 / 25)).
SELECT memory.create_domain('px', 3, text_config => 'simple');
SELECT memory.store_many('px',
    ARRAY['alpha beta gamma delta', 'alpha gamma beta delta', 'alpha gamma delta beta',
        'beta alpha gamma delta', 'zeta eta theta iota', 'alpha gamma delta eta beta'],
    NULL, NULL, ARRAY['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
SELECT results_eq(
    $$SELECT id, round(rank::numeric, 6) FROM memory.search_text('px', 'alpha beta', 4)
      WHERE id <> 'p6'$$,
    $$SELECT x.id, round((ln(1 + 1.5 / 5.5) * (2 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 24 / 25))
            + 0.7 * x.near))::numeric, 6)
      FROM (VALUES ('p1', 1.0, 1), ('p4', 1.0, 2), ('p2', 0.25, 3), ('p3', 1.0 / 9, 4))
          AS x (id, near, n)
      ORDER BY x.n$$,
    'proximity: side by side (either order) + w * idf, two apart + w * idf / 4, three + w / 9');
SELECT is((SELECT round(rank::numeric, 6) FROM memory.search_text('px', 'alpha beta', 6)
           WHERE id = 'p6'),
    round((ln(1 + 1.5 / 5.5) * 2 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 5 * 6 / 25)))::numeric, 6),
    'four positions apart: no bonus (plain BM25)');
SELECT is((SELECT round(rank::numeric, 6) FROM memory.search_text('px', 'alpha delta beta', 6)
           WHERE id = 'p1'),
    round((ln(1 + 1.5 / 5.5) * (3 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 24 / 25))
        + 0.7 * (1.0 / 9 + 1.0 / 4)))::numeric, 6),
    'only consecutive words of the query are pairs (alpha-delta three apart, delta-beta two)');
SELECT results_eq(
    $$SELECT id, round(rank::numeric, 9) FROM memory.search_text('px', 'alpha gamma beta', 6,
        filter => '{"id": {"$ne": "none"}}')$$,
    $$SELECT id, round(rank::numeric, 9) FROM memory.search_text('px', 'alpha gamma beta', 6)$$,
    'with a filter (the dynamic statement) the same ranks, proximity included');
SET LOCAL pgmemo.bm25_proximity = 0;
SELECT is((SELECT count(DISTINCT round(rank::numeric, 9))
           FROM memory.search_text('px', 'alpha beta', 4) WHERE id <> 'p6'), 1::bigint,
    'pgmemo.bm25_proximity = 0: plain BM25 (the four rows of four words tie)');
SET LOCAL pgmemo.bm25_proximity = 11;
SELECT throws_ok($$SELECT * FROM memory.search_text('px', 'alpha beta')$$, '22023', NULL,
    'pgmemo.bm25_proximity out of [0, 10] is refused');
SET LOCAL pgmemo.bm25_proximity = '';
SELECT memory.drop_domain('px');

-- Web-search syntax.
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'cherry -date')$$, ARRAY['b2'],
    '-exclusion (match any)');
SELECT results_eq($$SELECT id, rank FROM memory.search_text('bm', 'cherry - date -')$$,
    $$SELECT id, rank FROM memory.search_text('bm', 'cherry date')$$,
    'a ''-'' alone excludes nothing: the words as they are (ranks equal)');
SELECT is(array_agg(q ~* memory_private._text_syntax_pattern() ORDER BY n),
    ARRAY[false, false, true, true, true, true],
    'plain words: a ''-'' alone; syntax: -word, -"phrase", a quote, OR')
FROM unnest(ARRAY['pip - the installer', 'a-b c -', 'pip -installer', 'x -"a b"', '"a b"',
    'cats or dogs']) WITH ORDINALITY AS x (q, n);
SELECT set_eq($$SELECT id FROM memory.search_text('bm', '"banana cherry"')$$, ARRAY['b3'],
    '"phrase" (match any): only rows with the words in that order');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', '"banana cherry" apple')$$, ARRAY['b3'],
    'a phrase is required, the other words rank');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', '"cherry banana"')$$, ARRAY[]::text[],
    'a phrase in the wrong order matches nothing');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'grape OR date')$$, ARRAY['b3', 'b4'],
    'OR (match any)');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'grape OR date', match => 'all')$$,
    ARRAY['b3', 'b4'], 'OR (match all)');
-- OR between phrases and exclusions (match any: the structure websearch_to_tsquery reads, with
-- each plain word true; groups of terms side by side, OR between groups).
SELECT set_eq($$SELECT id FROM memory.search_text('bm', '"apple banana" OR "cherry date"')$$,
    ARRAY['b1', 'b3'], 'OR between two phrases: either phrase (match any)');
SELECT set_eq(
    $$SELECT id FROM memory.search_text('bm', '"apple banana" OR "cherry date"', match => 'all')$$,
    ARRAY['b1', 'b3'], 'OR between two phrases: either phrase (match all)');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', '"apple banana" OR grape')$$,
    ARRAY['b1', 'b2', 'b3', 'b4'],
    'a phrase OR a plain word requires nothing: every row with a word ranks');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'cherry -apple OR -date')$$,
    ARRAY['b2', 'b3'], '-a OR -b: rows missing either word (match any)');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'banana -apple OR -fig')$$,
    ARRAY['b3', 'b1'], 'a row with both excluded words is out (b2 has no banana)');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'banana "cherry date" OR apple -apple')$$,
    ARRAY['b3'], 'groups: (banana "cherry date") OR (apple -apple): only the phrase''s row');
SELECT is((SELECT required FROM memory_private._parse_text_query('simple',
        '"a b" c OR -d "e f"', 'any')),
    $$'a' <-> 'b' | !'d' & 'e' <-> 'f'$$::tsquery,
    'match any reads OR as websearch_to_tsquery does, each plain word true');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'apple cherry', match => 'all')$$,
    ARRAY['b2'], 'match all: every word');
SELECT set_eq($$SELECT id FROM memory.search_text('bm', 'apple -cherry', match => 'all')$$,
    ARRAY['b1'], '-exclusion (match all)');
SELECT is((SELECT count(*) FROM memory.search_text('bm', '-apple')), 0::bigint,
    'exclusions only: nothing to rank, no rows');
SELECT throws_ok($$SELECT * FROM memory.search_text('bm',
        (SELECT string_agg('w' || i, ' OR ') FROM generate_series(1, 65) AS i))$$,
    '22023', 'query has 65 distinct words; search_text takes at most 64',
    'more than 64 distinct words: 22023 (bounded cost)');
SELECT is((SELECT count(*) FROM memory.search_text('bm',
        'apple ' || (SELECT string_agg('w' || i, ' ') FROM generate_series(1, 63) AS i))),
    2::bigint, '64 distinct words are fine');
-- (stop 28, an attack: 1,000 phrases of common words took 12.6 s at 100,000 rows)
SELECT throws_ok($$SELECT * FROM memory.search_text('bm',
        (SELECT string_agg(format('"apple w%s" OR -w%s', i, i), ' ')
         FROM generate_series(1, 8) AS i) || ' "cherry pie"')$$,
    '22023', 'query has more than 16 quoted phrases and -exclusions; search_text takes at most 16',
    'more than 16 phrases and exclusions: 22023 (bounded cost)');
SELECT is((SELECT count(*) FROM memory.search_text('bm',
        (SELECT string_agg(format('"apple w%s" OR -w%s', i, i), ' ')
         FROM generate_series(1, 8) AS i) || ' apple')),
    2::bigint, '16 phrases and exclusions are fine');
SELECT throws_ok($$SELECT * FROM memory.search_text('bm', repeat('data_type ', 17), match => 'all')$$,
    '22023', NULL, 'match all: words the parser splits into phrases count against the cap');

-- Hybrid: convex fusion of min-max normalised scores (default 0.5 / 0.5), or RRF.
UPDATE memory_data.bm_memories SET embedding = CASE id WHEN 'b1' THEN '[1,0,0]'
    WHEN 'b2' THEN '[0,1,0]' WHEN 'b3' THEN '[0.7,0.7,0]' ELSE '[0,0,1]' END::vector;
-- vector: b1 1, b3 0.7071, b2 and b4 0 (min 0, max 1); text 'apple': b2 1, b1 0 (min-max).
SELECT results_eq($$SELECT id, round(score::numeric, 4) FROM memory.search_hybrid('bm', 'apple',
        '[1,0,0]', 3)$$,
    $$VALUES ('b1', 0.5000), ('b2', 0.5000), ('b3', round((0.5 * 0.7 / sqrt(0.98))::numeric, 4))$$,
    'hybrid default: convex combination of the normalised similarity and BM25 score (0.5 / 0.5; '
    'a tie goes to the nearer row)');
SELECT results_eq($$SELECT id, round(score::numeric, 4) FROM memory.search_hybrid('bm', 'apple',
        '[1,0,0]', 3, vector_weight => 0.6, text_weight => 0.4)$$,
    $$VALUES ('b1', 0.6000), ('b3', round((0.6 * 0.7 / sqrt(0.98))::numeric, 4)), ('b2', 0.4000)$$,
    'hybrid: the weights as given');
SELECT results_eq($$SELECT id, round(score::numeric, 6) FROM memory.search_hybrid('bm', 'apple',
        '[1,0,0]', 1, fusion => 'rrf', vector_weight => 1, text_weight => 1)$$,
    $$VALUES ('b1', round((1.0 / 61 + 1.0 / 62)::numeric, 6))$$,
    'fusion => rrf: reciprocal rank fusion');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('bm', 'apple', '[1,0,0]', 3,
        fusion => 'max')$$, '22023', 'fusion must be ''convex'' or ''rrf'', got ''max''',
    'unknown fusion: 22023');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('bm', 'apple', '[1,0,0]', 3,
        text_match => 'some')$$, '22023', 'text_match must be ''all'' or ''any'', got ''some''',
    'the hybrid checks its text arguments itself (it calls the BM25 core directly)');
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('bm', repeat('a ', 5001), '[1,0,0]', 3)$$,
    '22023', 'query is 10002 characters long; search_text takes at most 10000',
    'the hybrid refuses an over-long query text like search_text');
SELECT results_eq($$SELECT id FROM memory.search_hybrid('bm', 'grape', NULL, 3)$$,
    ARRAY['b4'], 'hybrid without an embedding: the text list alone');

-- Statistics: a refreshed row is what the ranking uses.
SELECT is(memory.refresh_text_stats('bm'), 1, 'refresh_text_stats(domain) refreshes it');
SELECT results_eq($$SELECT documents, avg_length FROM memory_private.text_stats WHERE domain = 'bm'$$,
    $$VALUES (4::bigint, 2.75::double precision)$$, 'text_stats: rows and average length in words');

-- The hybrid's one-statement path (sql/37_search_hybrid.sql: refreshed statistics, plain words):
-- BM25 over the vector search's rows plus the rows of the query's rare words.
SELECT memory.store('bm', 'kiwi', id => 'b5');  -- no embedding; 'kiwi' is in no statistics
SELECT ok(pg_get_functiondef('memory.search_hybrid'::regproc)
        ~ 'WHEN ''bm'' THEN\s+(--[^\n]*\s+)*IF v_d.table_schema = ''memory_data'' AND v_d.table_name = ''bm_memories''',
    'the hybrid''s static branch is generated for the domain');
SELECT results_eq($$SELECT id, similarity FROM memory.search_hybrid('bm', 'kiwi', '[1,0,0]', 5)
        WHERE id = 'b5'$$,
    $$VALUES ('b5', NULL::double precision)$$,
    'a row without an embedding is found by a rare word');
-- (search_text without its proximity bonus: the hybrid's text half is plain BM25)
SET LOCAL pgmemo.bm25_proximity = 0;
SELECT is((SELECT round(text_rank::numeric, 9)
           FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 5) WHERE id = 'b2'),
    (SELECT round(rank::numeric, 9) FROM memory.search_text('bm', 'apple cherry', 5)
     WHERE id = 'b2'),
    'text_rank of a vector hit is its BM25 score as search_text computes it (df, N, avgdl)');
-- The branch takes k1 and b from the defaults only while the session sets none of the knobs.
SET LOCAL pgmemo.bm25_k1 = 2.5;
SET LOCAL pgmemo.bm25_b = 0.2;
SELECT is((SELECT round(text_rank::numeric, 9)
           FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 5) WHERE id = 'b2'),
    (SELECT round(rank::numeric, 9) FROM memory.search_text('bm', 'apple cherry', 5)
     WHERE id = 'b2'),
    'the one-statement path ranks with the session''s pgmemo.bm25_k1 and pgmemo.bm25_b');
SELECT isnt((SELECT round(text_rank::numeric, 9)
           FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 5) WHERE id = 'b2'),
    round((ln(2) * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / 2.75))
        + ln(1 + 2.5 / 2.5) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 2.75)))::numeric, 9),
    'and not with the defaults');
SET LOCAL pgmemo.bm25_k1 = '';
SET LOCAL pgmemo.bm25_b = 'x';
SELECT throws_ok($$SELECT * FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 5)$$,
    '22023', NULL, 'an unreadable knob: the one-statement path refuses it too (22023)');
SET LOCAL pgmemo.bm25_b = '';
SET LOCAL pgmemo.bm25_proximity = '';
SELECT results_eq(
    $$SELECT id, round(score::numeric, 9), round(text_rank::numeric, 9)
      FROM memory.search_hybrid('bm', 'apple cherry kiwi', '[1,0,0]', 5)$$,
    $$SELECT id, round(score::numeric, 9), round(text_rank::numeric, 9)
      FROM memory.search_hybrid('bm', 'apple cherry kiwi', '[1,0,0]', 5, filter => '{}')$$,
    'the one-statement path ranks as the general one (taken with a filter)');
-- Ties: the branch orders the vector rows by their distance (no rank windows), the general path
-- by their rank; two rows alike in content and embedding tie on both scores and come back in the
-- order of their ids either way, as do the re-ranked scores.
SELECT memory.store('bm', 'apple apple cherry', embedding => '[1,0,0]', id => 'b2x'),
    memory.store('bm', 'apple apple cherry', embedding => '[1,0,0]', id => 'b2a'),
    memory.store('bm', 'cherry', embedding => '[0,1,0]', id => 'b2c');
SELECT results_eq(
    $$SELECT id, round(score::numeric, 9) FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 6)$$,
    $$SELECT id, round(score::numeric, 9)
      FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 6, filter => '{}')$$,
    'rows tied on both scores: the same order on both paths');
SELECT results_eq(
    $$SELECT id, round(score::numeric, 9)
      FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 6, importance_weight => 0.3,
        recency_half_life => '1 day')$$,
    $$SELECT id, round(score::numeric, 9)
      FROM memory.search_hybrid('bm', 'apple cherry', '[1,0,0]', 6, filter => '{}',
        importance_weight => 0.3, recency_half_life => '1 day')$$,
    'memory-aware re-ranking: the same on both paths');
SELECT memory.forget('bm', id) FROM unnest(ARRAY['b2x', 'b2a', 'b2c']) AS id;
SELECT memory.forget('bm', 'b5');
SELECT memory.refresh_text_stats('bm');  -- (the rows above were written since the last one)
SELECT is(memory.refresh_text_stats(), 0, 'nothing stale: refresh_text_stats() refreshes nothing');
-- It merges the GIN indexes' pending lists (rows written since wait there, read by every search).
SELECT memory.create_domain('pend', 3, text_config => 'simple');
SELECT memory.store_many('pend', ARRAY(SELECT 'word' || i || ' other' || i FROM generate_series(1, 200) AS i));
SELECT memory.store_many('bm', ARRAY(SELECT 'word' || i || ' other' || i FROM generate_series(1, 200) AS i));
SELECT memory.refresh_text_stats('bm');
SELECT is((SELECT sum(gin_clean_pending_list(i.indexrelid)) > 0 FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS a ON a.oid = c.relam
           WHERE i.indrelid = 'memory_data.pend_memories'::regclass AND a.amname = 'gin'), true,
    'rows written leave pages in the GIN pending list (a domain not refreshed)');
SELECT is((SELECT sum(gin_clean_pending_list(i.indexrelid)) FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS a ON a.oid = c.relam
           WHERE i.indrelid = 'memory_data.bm_memories'::regclass AND a.amname = 'gin'), 0::numeric,
    'refresh_text_stats merged them (the same writes, then a refresh)');
SELECT memory.forget_many('bm', ARRAY(SELECT id FROM memory_data.bm_memories WHERE content LIKE 'word%'));
SELECT memory.drop_domain('pend');
SELECT memory.refresh_text_stats('bm');
UPDATE memory_private.text_stats SET documents = 1000 WHERE domain = 'bm';
SELECT is((SELECT round(rank::numeric, 6) FROM memory.search_text('bm', 'grape')),
    round((ln(1 + 999.5 / 1.5) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 1 / 2.75)))::numeric, 6),
    'the refreshed N is used');
SELECT ok(memory.run_maintenance() ? 'text_stats_refreshed', 'run_maintenance refreshes them');

-- Common lexemes (planner statistics after ANALYZE) join the candidate scan only within the
-- budget (200 estimated rows): beyond it a row holding only them is a candidate when it is among
-- the lexeme's best rows kept by the last refresh (memory_private.text_top), and they still add
-- to the score of the candidates.
SELECT memory.create_domain('com', 3, text_config => 'simple');
INSERT INTO memory_data.com_memories (id, content)
SELECT 'c' || i, 'common word' || i FROM generate_series(1, 2500) AS i;
INSERT INTO memory_data.com_memories (id, content) VALUES ('r1', 'rare common'), ('r2', 'rare'),
    ('t1', 'common common common'), ('t2', 'common common'), ('t3', 'common common word3');
SELECT is(memory.refresh_text_stats('com'), 1, 'refresh_text_stats analyzes the column');
SELECT ok((SELECT (common_lexemes ->> 'common')::float8 > 0.9 FROM memory_private.text_stats
           WHERE domain = 'com'), 'the planner''s frequency of a common lexeme is kept');
SELECT is((SELECT ids[1:3] FROM memory_private.text_top WHERE domain = 'com' AND lexeme = 'common'),
    ARRAY['t1', 't2', 't3'],
    'the refresh keeps a common lexeme''s best rows, best first (tf, then the shorter row)');
SELECT is((SELECT cardinality(ids) FROM memory_private.text_top
           WHERE domain = 'com' AND lexeme = 'common'), memory_private._text_top_rows(),
    'at most _text_top_rows() of them');
SELECT is((SELECT array_agg(id) FROM memory.search_text('com', 'common rare', 4)),
    ARRAY['r2', 'r1', 't1', 't2'],
    'rows of the rare word first, then the common word''s best rows (not candidates by its postings)');
SELECT set_eq($$SELECT id FROM memory.search_text('com', 'common rare', 10,
        filter => '{"none": 1}')$$, ARRAY[]::text[],
    'a filtered search takes no best row the filter does not pass');
SELECT set_eq($$SELECT id FROM memory.search_text('com', '"common common" rare', 10)$$,
    ARRAY['t1', 't2', 't3'], 'nor a row without a required phrase');
-- A best row deleted since the refresh: the next ones are scored instead (k rows still).
DELETE FROM memory_data.com_memories WHERE id IN ('t1', 't2');
SET LOCAL pgmemo.bm25_rerank = 1;
SELECT is((SELECT array_agg(id) FROM memory.search_text('com', 'common rare', 3)),
    ARRAY['r2', 'r1', 't3'], 'best rows deleted since the refresh are passed over');
SET LOCAL pgmemo.bm25_rerank = '';
-- Refreshes of one domain take turns (an advisory lock): run twice in one transaction here.
SELECT is(memory.refresh_text_stats('com') + memory.refresh_text_stats('com'), 2,
    'a refresh again replaces the best rows');
SELECT cmp_ok((SELECT rank FROM memory.search_text('com', 'common rare') WHERE id = 'r1'), '>',
    (SELECT rank FROM memory.search_text('com', 'rare') WHERE id = 'r1'),
    'the common word still adds to the score of a candidate');
SELECT is((SELECT count(*) FROM memory.search_text('com', 'common', 7)), 7::bigint,
    'a query of common words only still ranks by its rarest word');
-- The hybrid's text half scores its vector rows and the rows waiting for their embedding (the
-- domain's jobs in the queue): no word brings rows in by its postings, on its one-statement
-- branch or its general path (search_text's rarest-word rule is not the hybrid's). With no
-- embedded row at all there is no vector candidate, and both rank by the words alone, as
-- search_text does.
SELECT results_eq(
    $$SELECT id, round(text_rank::numeric, 6) FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5)$$,
    $$SELECT id, round(rank::numeric, 6) FROM memory.search_text('com', 'common', 5)$$,
    'no embedded row: the hybrid ranks as search_text does');
SELECT results_eq(
    $$SELECT id, round(text_rank::numeric, 6) FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5,
        filter => '{}')$$,
    $$SELECT id, round(rank::numeric, 6) FROM memory.search_text('com', 'common', 5)$$,
    'and so does its general path');
SELECT memory.store('com', 'common common embedded', embedding => '[1,0,0]', id => 'e1');
SELECT memory.refresh_text_stats('com');
-- (the rows stored without an embedding wait in the queue: found by their words)
SELECT is((SELECT count(*) FILTER (WHERE similarity IS NULL AND text_rank > 0)
           FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5)), 4::bigint,
    'with a vector row: the rows waiting for their embedding that hold the word come in');
SELECT ok(EXISTS (SELECT FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5) WHERE id = 'e1'),
    '... beside the vector row');
SELECT results_eq(
    $$SELECT id, round(score::numeric, 6) FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5)$$,
    $$SELECT id, round(score::numeric, 6) FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5,
        filter => '{}')$$,
    '... as on the general path');
-- Nothing waiting (the jobs gone as if a worker had failed to take them): the branch.
DELETE FROM memory_private.embedding_queue WHERE domain = 'com';
SELECT set_eq($$SELECT id FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5)$$,
    ARRAY['e1'], 'nothing waiting: a word alone brings no text-only row (branch)');
SELECT set_eq($$SELECT id FROM memory.search_hybrid('com', 'common', '[1,0,0]', 5,
        filter => '{}')$$,
    ARRAY['e1'], 'nor on the general path');
SELECT results_eq(
    $$SELECT id, round(score::numeric, 6), round(text_rank::numeric, 6)
      FROM memory.search_hybrid('com', 'common word7 word8', '[1,0,0]', 5)$$,
    $$SELECT id, round(score::numeric, 6), round(text_rank::numeric, 6)
      FROM memory.search_hybrid('com', 'common word7 word8', '[1,0,0]', 5, filter => '{}')$$,
    'rare and common words: the branch ranks as the general path does');
SELECT memory.drop_domain('com');
SELECT is((SELECT count(*) FROM memory_private.text_top WHERE domain = 'com'), 0::bigint,
    'a dropped domain''s best rows go with it');

-- A filter with a word in more rows than the per-word cap (20,000 index rows a call): the rows
-- that pass the filter beyond the cap are searched for (the word's first search stops at the
-- cap; the filter matched none of the rows it had read).
SELECT memory.create_domain('cap', 3, text_config => 'simple');
INSERT INTO memory_data.cap_memories (id, content, metadata)
SELECT 'p' || i, 'row w' || i, jsonb_build_object('n', i) FROM generate_series(1, 20050) AS i;
SELECT memory.refresh_text_stats('cap');
SELECT is((SELECT count(*) FROM memory.search_text('cap', 'row', 10, '{"n": {"$gt": 20000}}')),
    10::bigint, 'filtered search_text: rows beyond the word''s cap are found');
SELECT ok((SELECT bool_and((metadata ->> 'n')::int > 20000)
           FROM memory.search_text('cap', 'row', 10, '{"n": {"$gt": 20000}}')),
    'and they pass the filter');
SELECT memory.drop_domain('cap');

-- Query term frequency: a word typed twice counts twice (as in BM25 over the query's tokens).
-- z1 and a1 tie on 'apple banana' (same df, tf and length); without qtf the id breaks the tie.
SELECT memory.create_domain('qtf', 3, text_config => 'simple');
SELECT memory.store_many('qtf', ARRAY['apple x', 'banana x', 'other'], NULL, NULL,
    ARRAY['z1', 'a1', 'o1']);
SELECT is((SELECT id FROM memory.search_text('qtf', 'apple banana', 1)), 'a1',
    'a tie between equal rows is broken by id');
SELECT is((SELECT id FROM memory.search_text('qtf', 'apple apple banana', 1)), 'z1',
    'a word repeated in the query weighs twice');

-- The knobs: session settings, checked.
SET LOCAL pgmemo.bm25_b = 0;
SELECT is((SELECT count(DISTINCT round(rank::numeric, 9)) FROM memory.search_text('bm', 'banana')),
    1::bigint, 'pgmemo.bm25_b = 0: no length normalisation (equal tf, equal scores)');
SET LOCAL pgmemo.bm25_b = '';
SET LOCAL pgmemo.bm25_k1 = 'many';
SELECT throws_ok($$SELECT * FROM memory.search_text('bm', 'apple')$$, '22023', NULL,
    'an unreadable pgmemo.bm25_k1: 22023');
SET LOCAL pgmemo.bm25_k1 = 11;
SELECT throws_ok($$SELECT * FROM memory.search_text('bm', 'apple')$$, '22023', NULL,
    'pgmemo.bm25_k1 out of range: 22023');
SET LOCAL pgmemo.bm25_k1 = '';
SET LOCAL pgmemo.bm25_budget = 'NaN';
SELECT throws_ok($$SELECT * FROM memory.search_text('bm', 'apple')$$, '22023', NULL,
    'pgmemo.bm25_budget NaN: 22023 (NaN sorts above every number)');
SET LOCAL pgmemo.bm25_rerank = 1;
SET LOCAL pgmemo.bm25_budget = 100000;  -- (the three words are common: N was set to 1000)
SELECT is((SELECT count(*) FROM memory.search_text('bm', 'apple banana cherry', 3)), 3::bigint,
    'at least k rows are scored exactly, whatever pgmemo.bm25_rerank says');
SET LOCAL pgmemo.bm25_rerank = '';
SET LOCAL pgmemo.bm25_budget = '';

-- The cached plan: a generated branch per domain of pgmemo's own, the same rows and scores as
-- the dynamic query (taken for a key without a branch), and gone with the domain.
SELECT ok((SELECT prosrc FROM pg_proc WHERE proname = '_search_text_static')
        LIKE '%' || memory_private._text_static_key(memory_private._domain('qtf')) || '%',
    'create_domain generates the domain''s static branch');
SELECT results_eq(
    $$SELECT s.id, s.rank FROM memory_private._search_text_static(ARRAY['apple', 'cherry'],
        ARRAY[NULL, NULL]::double precision[], NULL, ARRAY['apple'::tsquery, 'cherry'],
        NULL, 4, 2.75, 1.2, 0.75, 4, 20000, ARRAY[1, 1]::double precision[],
        ARRAY['apple', 'cherry'], 50, 0.7, memory_private._text_pairs(ARRAY['apple', 'cherry']), (SELECT d FROM memory_private.domains AS d WHERE d.domain = 'bm')) AS s$$,
    $$SELECT s.id, s.rank FROM memory_private._search_text_static(ARRAY['apple', 'cherry'],
        ARRAY[NULL, NULL]::double precision[], NULL, ARRAY['apple'::tsquery, 'cherry'],
        NULL, 4, 2.75, 1.2, 0.75, 4, 20000, ARRAY[1, 1]::double precision[],
        ARRAY['apple', 'cherry'], 50, 0.7, memory_private._text_pairs(ARRAY['apple', 'cherry']), (SELECT jsonb_populate_record(d, '{"domain": "no branch"}')
            FROM memory_private.domains AS d WHERE d.domain = 'bm')) AS s$$,
    'the static branch ranks as the dynamic query does');
SELECT memory.drop_domain('qtf');
SELECT ok((SELECT prosrc FROM pg_proc WHERE proname = '_search_text_static')
        NOT LIKE '%qtf/memory_data%', 'drop_domain removes the domain''s branch');

-- Adopted tables are never altered: the expression index serves them.
CREATE TABLE public.bm_app (pk integer PRIMARY KEY, body text NOT NULL, emb vector(3));
INSERT INTO public.bm_app VALUES (1, 'apple pie recipe', NULL), (2, 'cherry pie', NULL);
SELECT memory.adopt_table('bmapp', 'public.bm_app', 'pk', 'body', 'emb');
SELECT hasnt_column('public', 'bm_app', 'content_tsv', 'adoption adds no column');
SELECT results_eq($$SELECT id FROM memory.search_text('bmapp', 'apple pie')$$, ARRAY['1', '2'],
    'search_text on an adopted table, BM25-ranked');

SELECT * FROM finish();
ROLLBACK;
