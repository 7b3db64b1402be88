-- The filter language (sql/32_filter.sql): every operator, the combinations, nested keys and the
-- columns, through memory.search, search_text, search_hybrid and count; every malformed filter
-- raises 22023 naming the bad part; the compiled predicates use the GIN index and the
-- expression indexes of memory.create_metadata_index (EXPLAIN); values never reach the SQL text.
-- The cases marked "lc" are langchain-postgres's own (tests/unit_tests/fixtures/
-- filtering_test_cases.py) with the same three documents and the same expected results.
BEGIN;
SELECT plan(168);

SELECT memory.create_domain('lc', 3);
SELECT memory.store('lc', 'id one', '{"name": "adam", "date": "2021-01-01", "count": 1,
    "is_active": true, "tags": ["a", "b"], "location": [1.0, 2.0], "id": 1, "height": 10.0,
    "happiness": 0.9, "sadness": 0.1}', '[1,0,0]', 'd1');
SELECT memory.store('lc', 'id two', '{"name": "bob", "date": "2021-01-02", "count": 2,
    "is_active": false, "tags": ["b", "c"], "location": [2.0, 3.0], "id": 2, "height": 5.7,
    "happiness": 0.8, "sadness": 0.1}', '[0,1,0]', 'd2');
SELECT memory.store('lc', 'id three', '{"name": "jane", "date": "2021-01-01", "count": 3,
    "is_active": true, "tags": ["b", "d"], "location": [3.0, 4.0], "id": 3, "height": 2.4,
    "happiness": null}', '[0,0,1]', 'd3');
-- Beyond langchain's documents: nested objects, a number stored as a string, no metadata.
SELECT memory.store('lc', 'id four', '{"specs": {"screen": "OLED", "size": 6.1},
    "height": "7", "name": "Zoe", "rank": 10}', '[1,1,0]', 'd4');
SELECT memory.store('lc', 'id five', '{}', '[0,1,1]', 'd5');
UPDATE memory_data.lc_memories SET created_at = ('2024-01-0' || right(id, 1) || 'T00:00:00Z')::timestamptz;

-- The ids memory.search returns for a filter, sorted; and the same through count and text.
CREATE FUNCTION pg_temp.ids(filter jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(s.id, ',' ORDER BY s.id), '')
    FROM memory.search('lc', '[1,1,1]', 100, filter) AS s
$$;

-- langchain TYPE_1: equality
SELECT is(pg_temp.ids('{"metadata.id": 1}'), 'd1', 'lc: {"id": 1} (as metadata.id)');
SELECT is(pg_temp.ids('{"name": "adam"}'), 'd1', 'lc: string equality');
SELECT is(pg_temp.ids('{"is_active": true}'), 'd1,d3', 'lc: boolean true');
SELECT is(pg_temp.ids('{"is_active": false}'), 'd2', 'lc: boolean false');
SELECT is(pg_temp.ids('{"metadata.id": 1, "is_active": true}'), 'd1', 'lc: two fields AND');
SELECT is(pg_temp.ids('{"metadata.id": 1, "is_active": false}'), '', 'lc: two fields AND, none');
-- langchain TYPE_2: comparisons
SELECT is(pg_temp.ids('{"metadata.id": {"$ne": 1}}'), 'd2,d3', 'lc: $ne (missing key: no match)');
SELECT is(pg_temp.ids('{"metadata.id": {"$gt": 1}}'), 'd2,d3', 'lc: $gt number');
SELECT is(pg_temp.ids('{"metadata.id": {"$gte": 1}}'), 'd1,d2,d3', 'lc: $gte number');
SELECT is(pg_temp.ids('{"metadata.id": {"$lt": 1}}'), '', 'lc: $lt number, none');
SELECT is(pg_temp.ids('{"metadata.id": {"$lte": 1}}'), 'd1', 'lc: $lte number');
SELECT is(pg_temp.ids('{"name": {"$eq": "adam"}}'), 'd1', 'lc: $eq string');
SELECT is(pg_temp.ids('{"name": {"$ne": "adam"}}'), 'd2,d3,d4', 'lc: $ne string');
SELECT is(pg_temp.ids('{"name": {"$gt": "jane"}}'), '', 'lc: $gt string (Zoe < jane in C order)');
SELECT is(pg_temp.ids('{"name": {"$gte": "jane"}}'), 'd3', 'lc: $gte string');
SELECT is(pg_temp.ids('{"name": {"$lt": "jane"}}'), 'd1,d2,d4', 'lc: $lt string, code-point order');
SELECT is(pg_temp.ids('{"name": {"$lte": "jane"}}'), 'd1,d2,d3,d4', 'lc: $lte string');
SELECT is(pg_temp.ids('{"is_active": {"$eq": true}}'), 'd1,d3', 'lc: $eq boolean');
SELECT is(pg_temp.ids('{"is_active": {"$ne": true}}'), 'd2', 'lc: $ne boolean');
SELECT is(pg_temp.ids('{"height": {"$gt": 5.0}}'), 'd1,d2', 'lc: $gt float ("7" is a string: no match)');
SELECT is(pg_temp.ids('{"height": {"$gte": 5.0}}'), 'd1,d2', 'lc: $gte float');
SELECT is(pg_temp.ids('{"height": {"$lt": 5.0}}'), 'd3', 'lc: $lt float');
SELECT is(pg_temp.ids('{"height": {"$lte": 5.8}}'), 'd2,d3', 'lc: $lte float');
-- langchain TYPE_3: $and $or $not
SELECT is(pg_temp.ids('{"$or": [{"metadata.id": 1}, {"metadata.id": 2}]}'), 'd1,d2', 'lc: $or');
SELECT is(pg_temp.ids('{"$or": [{"metadata.id": 1}, {"name": "bob"}]}'), 'd1,d2', 'lc: $or of two fields');
SELECT is(pg_temp.ids('{"$and": [{"metadata.id": 1}, {"metadata.id": 2}]}'), '', 'lc: $and, none');
SELECT is(pg_temp.ids('{"$or": [{"metadata.id": 1}, {"metadata.id": 2}, {"metadata.id": 3}]}'),
    'd1,d2,d3', 'lc: $or of three');
SELECT is(pg_temp.ids('{"$not": {"metadata.id": 1}}'), 'd2,d3,d4,d5', 'lc: $not object (missing key: not 1)');
SELECT is(pg_temp.ids('{"$not": [{"metadata.id": 1}]}'), 'd2,d3,d4,d5', 'lc: $not array');
SELECT is(pg_temp.ids('{"$not": {"name": "adam"}}'), 'd2,d3,d4,d5', 'lc: $not string');
SELECT is(pg_temp.ids('{"$not": [{"is_active": true}]}'), 'd2,d4,d5', 'lc: $not boolean');
SELECT is(pg_temp.ids('{"$not": {"height": {"$gt": 5.0}}}'), 'd3,d4,d5',
    'lc: $not of a comparison (NULL for other types and missing keys counts as not matching)');
SELECT is(pg_temp.ids('{"$not": [{"height": {"$gt": 5.0}}, {"rank": 10}]}'), 'd3,d5',
    '$not of an array: none of them');
-- langchain TYPE_4: $in $nin $between
SELECT is(pg_temp.ids('{"metadata.id": {"$between": [1, 2]}}'), 'd1,d2', 'lc: $between numbers');
SELECT is(pg_temp.ids('{"metadata.id": {"$between": [1, 1]}}'), 'd1', 'lc: $between, inclusive');
SELECT is(pg_temp.ids('{"name": {"$in": ["adam", "bob"]}}'), 'd1,d2', 'lc: $in strings');
SELECT is(pg_temp.ids('{"metadata.id": {"$in": [1, 2]}}'), 'd1,d2', 'lc: $in numbers');
SELECT is(pg_temp.ids('{"name": {"$nin": ["adam", "bob"]}}'), 'd3,d4', 'lc: $nin (missing key: no match)');
SELECT is(pg_temp.ids('{"metadata.id": {"$nin": [1, 2]}}'), 'd3', 'lc: $nin numbers');
SELECT is(pg_temp.ids('{"date": {"$between": ["2021-01-01", "2021-01-01"]}}'), 'd1,d3', '$between strings');
SELECT is(pg_temp.ids('{"is_active": {"$in": [false]}}'), 'd2', '$in a boolean');
SELECT is(pg_temp.ids('{"metadata.id": {"$in": [1.0, 3]}}'), 'd1,d3', '$in: 1.0 equals 1');
-- langchain TYPE_5 / TYPE_6: $like $ilike $exists
SELECT is(pg_temp.ids('{"name": {"$like": "a%"}}'), 'd1', 'lc: $like prefix');
SELECT is(pg_temp.ids('{"name": {"$like": "%a%"}}'), 'd1,d3', 'lc: $like infix (case-sensitive)');
SELECT is(pg_temp.ids('{"name": {"$ilike": "%Z%"}}'), 'd4', '$ilike');
SELECT is(pg_temp.ids('{"name": {"$ilike": "ADAM"}}'), 'd1', '$ilike, whole value');
SELECT is(pg_temp.ids('{"happiness": {"$exists": false}}'), 'd4,d5', 'lc: $exists false (a JSON null exists)');
SELECT is(pg_temp.ids('{"happiness": {"$exists": true}}'), 'd1,d2,d3', 'lc: $exists true with a null');
SELECT is(pg_temp.ids('{"sadness": {"$exists": false}}'), 'd3,d4,d5', 'lc: $exists false');
SELECT is(pg_temp.ids('{"sadness": {"$exists": true}}'), 'd1,d2', 'lc: $exists true');
-- containment keeps its meaning for arrays and objects; plain scalars are equality
SELECT is(pg_temp.ids('{"tags": ["b"]}'), 'd1,d2,d3', 'an array value: containment');
SELECT is(pg_temp.ids('{"tags": ["a", "b"]}'), 'd1', 'an array value: all of its elements');
SELECT is(pg_temp.ids('{"tags": "b"}'), '', 'a scalar is equality: it does not match inside an array');
SELECT is(pg_temp.ids('{"specs": {"screen": "OLED"}}'), 'd4', 'an object value: containment');
SELECT is(pg_temp.ids('{"happiness": null}'), 'd3', 'a JSON null matches a JSON null');
-- nested keys
SELECT is(pg_temp.ids('{"specs.screen": "OLED"}'), 'd4', 'dotted key: equality');
SELECT is(pg_temp.ids('{"specs.size": {"$gt": 6}}'), 'd4', 'dotted key: $gt');
SELECT is(pg_temp.ids('{"specs.size": {"$between": [6, 7]}, "specs.screen": {"$like": "OL%"}}'), 'd4',
    'dotted keys: $between and $like');
SELECT is(pg_temp.ids('{"specs.screen": {"$exists": true}}'), 'd4', 'dotted key: $exists');
SELECT is(pg_temp.ids('{"specs.color": {"$exists": false}, "name": {"$exists": true}}'),
    'd1,d2,d3,d4', 'dotted key: $exists false, ANDed');
SELECT is(pg_temp.ids('{"specs.screen": {"$in": ["LCD", "OLED"]}}'), 'd4', 'dotted key: $in');
SELECT is(pg_temp.ids('{"specs.screen": {"$ne": "LCD"}}'), 'd4', 'dotted key: $ne');
-- the columns
SELECT is(pg_temp.ids('{"id": "d2"}'), 'd2', 'column id: equality');
SELECT is(pg_temp.ids('{"id": {"$in": ["d1", "d3", "nope"]}}'), 'd1,d3', 'column id: $in');
SELECT is(pg_temp.ids('{"id": {"$nin": ["d1", "d3"]}}'), 'd2,d4,d5', 'column id: $nin');
SELECT is(pg_temp.ids('{"id": {"$ne": "d1"}}'), 'd2,d3,d4,d5', 'column id: $ne');
SELECT is(pg_temp.ids('{"id": {"$like": "d%", "$gt": "d3"}}'), 'd4,d5', 'column id: $like and $gt in one object');
SELECT is(pg_temp.ids('{"id": {"$ilike": "D1"}}'), 'd1', 'column id: $ilike');
SELECT is(pg_temp.ids('{"created_at": {"$gte": "2024-01-03"}}'), 'd3,d4,d5', 'created_at: $gte a date');
SELECT is(pg_temp.ids('{"created_at": {"$between": ["2024-01-02", "2024-01-03T00:00:00Z"]}}'), 'd2,d3',
    'created_at: $between, inclusive');
SELECT is(pg_temp.ids('{"created_at": {"$lt": "2024-01-02T00:00:00+00:00"}}'), 'd1', 'created_at: $lt with an offset');
SELECT is(pg_temp.ids('{"created_at": "2024-01-05T00:00:00Z"}'), 'd5', 'created_at: equality');
SELECT is(pg_temp.ids('{"created_at": {"$in": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]}}'), 'd1,d2',
    'created_at: $in');
SELECT is(pg_temp.ids('{"updated_at": {"$gt": "2000-01-01"}, "id": {"$lte": "d2"}}'), 'd1,d2',
    'updated_at and id together');
SELECT is(pg_temp.ids('{"created_at": {"$exists": true}}'), 'd1,d2,d3,d4,d5', 'a column always exists');
-- combinations
SELECT is(pg_temp.ids('{"$and": [{"$or": [{"name": "adam"}, {"name": "Zoe"}]}, {"$not": {"rank": 10}}]}'),
    'd1', '$and of $or and $not');
SELECT is(pg_temp.ids('{"$or": [{"$and": [{"is_active": true}, {"count": {"$gte": 3}}]}, {"id": "d5"}]}'),
    'd3,d5', '$or of $and and a column');
SELECT is(pg_temp.ids('{"$not": {"$or": [{"is_active": true}, {"specs.screen": "OLED"}]}}'), 'd2,d5',
    '$not of $or');
SELECT is(pg_temp.ids('{"$not": {"$not": {"name": "adam"}}}'), 'd1', 'double negation');
SELECT is(pg_temp.ids('{"count": {"$gt": 1, "$lt": 3}}'), 'd2', 'two operators on one field: AND');
SELECT is(pg_temp.ids('{"is_active": {"$gt": false}}'), 'd1,d3', 'booleans compare: false < true');
SELECT is(pg_temp.ids('{"name": "bob", "tags": ["c"], "count": {"$in": [2, 3]}}'), 'd2',
    'plain values, containment and an operator, ANDed');
SELECT is(pg_temp.ids('{}'), 'd1,d2,d3,d4,d5', 'an empty filter matches every row (as before)');
SELECT is(pg_temp.ids(NULL), 'd1,d2,d3,d4,d5', 'a NULL filter matches every row');

-- The same language in search_text, search_hybrid and count.
SELECT is((SELECT string_agg(s.id, ',' ORDER BY s.id) FROM memory.search_text('lc', 'id', 10,
    '{"height": {"$lt": 6}, "$or": [{"name": {"$like": "j%"}}, {"is_active": false}]}') AS s),
    'd2,d3', 'search_text takes the filter language');
SELECT is((SELECT string_agg(s.id, ',' ORDER BY s.id) FROM memory.search_hybrid('lc', 'id',
    '[1,1,1]', 10, '{"tags": ["b"], "name": {"$ne": "bob"}}') AS s),
    'd1,d3', 'search_hybrid takes the filter language');
SELECT is(memory.count('lc', '{"is_active": true}'), 2::bigint, 'count with a filter');
SELECT is(memory.count('lc'), 5::bigint, 'count without a filter');
SELECT is(memory.count('lc', '{"created_at": {"$gt": "2024-01-02T12:00:00Z"}}'), 3::bigint,
    'count on a column range');

-- Malformed filters: one error each, SQLSTATE 22023, naming the bad part.
SELECT throws_ok($$ SELECT pg_temp.ids('{"$nor": [{"a": 1}]}') $$, '22023',
    'invalid filter at $.$nor: unknown operator "$nor" (logical operators: $and, $or, $not)',
    'unknown top-level operator');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$regex": "x"}}') $$, '22023',
    'invalid filter at $.a.$regex: unknown operator "$regex"', 'unknown field operator');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$and": {"a": 1}}') $$, '22023',
    'invalid filter at $.$and: $and takes a non-empty array of filters, got an object',
    '$and given an object');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$and": []}') $$, '22023',
    'invalid filter at $.$and: $and takes a non-empty array of filters, got an empty array',
    '$and given an empty array');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$or": []}') $$, '22023',
    'invalid filter at $.$or: $or takes a non-empty array of filters, got an empty array',
    '$or given an empty array');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$or": [{"a": 1}, 3]}') $$, '22023',
    'invalid filter at $.$or[1]: expected a filter object, got a number', '$or with a non-object element');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$and": [{}]}') $$, '22023',
    'invalid filter at $.$and[0]: empty filter object', 'an empty filter inside $and');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$not": true}') $$, '22023',
    'invalid filter at $.$not: $not takes a filter object or a non-empty array of filters, got a boolean',
    '$not: true');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$not": []}') $$, '22023',
    'invalid filter at $.$not: $not takes a filter object or a non-empty array of filters, got an empty array',
    '$not: []');
SELECT throws_ok($$ SELECT pg_temp.ids('{"$eq": 1}') $$, '22023',
    'invalid filter at $.$eq: operator $eq where a field was expected (write {"field": {"$eq": ...}})',
    'an operator where a field was expected');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$or": [{"b": 1}]}}') $$, '22023',
    'invalid filter at $.a.$or: $or is a logical operator: it goes where a field could, not inside a field''s conditions',
    'a logical operator inside a field');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$gt": 1, "b": 2}}') $$, '22023',
    'invalid filter at $.a: mixes operators ($...) and plain keys in one object (nest the plain keys under "$eq", or use a dotted key)',
    'operators and plain keys mixed');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$gt": [1]}}') $$, '22023',
    'invalid filter at $.a.$gt: $gt compares with a number, a string or a boolean, got an array',
    '$gt with an array');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$lte": null}}') $$, '22023',
    'invalid filter at $.a.$lte: $lte compares with a number, a string or a boolean, got null',
    '$lte with null');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$in": "x"}}') $$, '22023',
    'invalid filter at $.a.$in: $in takes a non-empty array, got a string', '$in with a string');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$nin": []}}') $$, '22023',
    'invalid filter at $.a.$nin: $nin takes a non-empty array, got an empty array', '$nin empty');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$between": [1]}}') $$, '22023',
    'invalid filter at $.a.$between: $between takes a two-element array [low, high] (inclusive), got an array of 1 elements',
    '$between with one bound');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$between": [1, "9"]}}') $$, '22023',
    'invalid filter at $.a.$between: $between bounds must have the same type, got a number and a string',
    '$between with mixed types');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$like": 5}}') $$, '22023',
    'invalid filter at $.a.$like: $like takes a string pattern, got a number', '$like with a number');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a": {"$exists": "yes"}}') $$, '22023',
    'invalid filter at $.a.$exists: $exists takes true or false, got a string', '$exists with a string');
SELECT throws_ok($$ SELECT pg_temp.ids('{"created_at": {"$gt": "last tuesday"}}') $$, '22023',
    'invalid filter at $.created_at.$gt: "last tuesday" is not a timestamp', 'a bad timestamp');
SELECT throws_ok($$ SELECT pg_temp.ids('{"created_at": {"$gt": "2025-01-01T00:00:00+99:00"}}') $$,
    '22023', 'invalid filter at $.created_at.$gt: "2025-01-01T00:00:00+99:00" is not a timestamp',
    'a timestamp with an impossible zone offset (22009 inside): the filter error, located');
-- An operator below a plain value, or in an operator's operand, would be read as data (matching
-- nothing, or everything with $ne): refused.
SELECT throws_ok($$ SELECT pg_temp.ids('{"specs": {"screen": {"$eq": "OLED"}}}') $$, '22023',
    'invalid filter at $.specs: "$eq" inside a value: an operator applies to a field (for a nested key write {"a.b": {"$gt": 1}}), and a value is matched as data, where a key starting with $ is refused',
    'an operator nested below a plain value');
SELECT throws_ok($$ SELECT pg_temp.ids('{"count": {"$ne": {"$gt": 1}}}') $$, '22023',
    'invalid filter at $.count.$ne: "$gt" inside a value: an operator applies to a field (for a nested key write {"a.b": {"$gt": 1}}), and a value is matched as data, where a key starting with $ is refused',
    'an operator as the operand of $ne');
SELECT throws_ok($$ SELECT pg_temp.ids('{"count": {"$in": [1, {"$x": 1}]}}') $$, '22023', NULL,
    'an operator inside an element of $in');
SELECT throws_ok($$ SELECT pg_temp.ids('{"specs.screen": {"$eq": {"a": [{"$b": 1}]}}}') $$,
    '22023', NULL, 'an operator deep inside the operand of $eq on a dotted key');
SELECT is(pg_temp.ids('{"specs": {"screen": "OLED"}}'), 'd4',
    'a plain object without operators still means containment');
-- $in compiles in one pass (appending each value copied the array: 30 s for 15,000 values);
-- a filter holds at most 1,000 values (each a test on every row read: stop 28).
SET LOCAL statement_timeout = '10s';
SELECT is(memory.count('lc', jsonb_build_object('count', jsonb_build_object('$in',
        (SELECT jsonb_agg(i) FROM generate_series(3, 1002) AS i)))), 1::bigint,
    '$in with 1,000 values: compiled and run in bounded time');
SELECT throws_ok($$ SELECT memory.count('lc', jsonb_build_object('count', jsonb_build_object('$in',
        (SELECT jsonb_agg(i) FROM generate_series(1, 15000) AS i)))) $$, '54000',
    'invalid filter at $: more than 1000 values (every value in it counts, at any depth)',
    '$in with 15,000 values: 54000');
SET LOCAL statement_timeout = 0;
SELECT throws_ok($$ SELECT pg_temp.ids('{"created_at": {"$like": "2024%"}}') $$, '22023',
    'invalid filter at $.created_at.$like: $like applies to strings; created_at is a timestamp (compare it with $gt, $lt or $between)',
    '$like on a timestamp column');
SELECT throws_ok($$ SELECT pg_temp.ids('{"id": 7}') $$, '22023',
    'invalid filter at $.id: id is compared with a string, got a number', 'the id column with a number');
SELECT throws_ok($$ SELECT pg_temp.ids('{"a..b": 1}') $$, '22023',
    'invalid filter at $.a..b: field name "a..b" has an empty part (two dots, or a dot at an end)',
    'an empty part in a dotted key');
SELECT throws_ok($$ SELECT pg_temp.ids('{"": 1}') $$, '22023',
    'invalid filter at $."": empty field name', 'an empty key');
SELECT throws_ok($$ SELECT pg_temp.ids('[{"a": 1}]') $$, '22023',
    'invalid filter at $: a filter is a JSON object, got an array', 'a filter that is not an object');
SELECT throws_ok($$ SELECT count(*) FROM memory.search_text('lc', 'id', 5, '{"$nor": []}') $$, '22023',
    NULL, 'search_text refuses a malformed filter');
SELECT throws_ok($$ SELECT count(*) FROM memory.search_hybrid('lc', 'id', '[1,1,1]', 5, '{"$and": []}') $$,
    '22023', NULL, 'search_hybrid refuses a malformed filter');
SELECT throws_ok($$ SELECT memory.count('lc', '{"a": {"$in": []}}') $$, '22023', NULL,
    'count refuses a malformed filter');
SELECT throws_ok($$ SELECT * FROM memory.explain_search('lc', 5, '{"$not": 1}') $$, '22023', NULL,
    'explain_search refuses a malformed filter');

-- Values never reach the SQL text: a value that would be SQL is only data.
SELECT is(pg_temp.ids($f${"name": "x'); DROP TABLE memory_data.lc_memories; --"}$f$), '',
    'a quote in a value is data');
SELECT is(pg_temp.ids($f${"na'me": {"$like": "%'%"}}$f$), '', 'a quote in a key and a pattern is data');
SELECT is((SELECT p.predicate FROM memory_private._filter_compile(
        '{"user": {"$like": "secret%"}, "created_at": {"$gt": "2024-01-01"}, "n": {"$in": [42]}}') AS p)
    ~ '(secret|2024|42)', false, 'the compiled predicate holds no value');

-- Index use of the compiled predicates (EXPLAIN of the exact query memory.search runs).
SELECT memory.create_domain('ix', 3);
INSERT INTO memory_data.ix_memories (id, content, embedding, metadata, created_at)
SELECT 'x' || g, 'row ' || g, ARRAY[g % 7, g % 11, 1]::real[]::vector,
    jsonb_build_object('user', 'u' || (g % 500), 'price', g % 1000, 'sku', 'sku-' || g,
        'nested', jsonb_build_object('level', g % 300)),
    '2024-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 5000) AS g;
ANALYZE memory_data.ix_memories;
CREATE FUNCTION pg_temp.xplan(filter jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_f record := memory_private._filter_compile(filter);
    v_line text;
    v_plan text := '';
    v_saved text[] := memory_private._search_settings_begin(10, NULL, false);  -- as search does
BEGIN
    FOR v_line IN EXECUTE 'EXPLAIN (COSTS OFF) '
        || memory_private._knn_sql(memory_private._domain('ix'), v_f.predicate, 'exact')
        USING '[1,1,1]'::vector, 10, v_f.params, NULL::double precision
    LOOP
        v_plan := v_plan || v_line || E'\n';
    END LOOP;
    PERFORM memory_private._search_settings_end(v_saved);
    RETURN v_plan;
END;
$$;
SELECT matches(pg_temp.xplan('{"user": "u7"}'), 'Bitmap Index Scan on ix_memories_metadata_gin',
    'a plain value uses the GIN index');
SELECT matches(pg_temp.xplan('{"user": {"$in": ["u7", "u8"]}}'),
    'Bitmap Index Scan on ix_memories_metadata_gin', '$in uses the GIN index');
SELECT matches(pg_temp.xplan('{"nested.level": 7}'), 'Bitmap Index Scan on ix_memories_metadata_gin',
    'a dotted key''s equality uses the GIN index');
SELECT doesnt_match(pg_temp.xplan('{"price": {"$lt": 3}}'), 'Index', 'a range without its index: no index');
SELECT lives_ok($$ SELECT memory.create_metadata_index('ix', 'price', 'number') $$,
    'create_metadata_index number');
SELECT is(memory.create_metadata_index('ix', 'price', 'number'),
    memory_private._metadata_index_name(memory_private._domain('ix'), 'price', 'number')::text,
    'create_metadata_index is idempotent and returns the index name');
SELECT memory.create_metadata_index('ix', 'sku', 'text');
SELECT memory.create_metadata_index('ix', 'nested.level', 'number');
SELECT memory.create_metadata_index('ix', 'created_at', 'timestamptz');
ANALYZE memory_data.ix_memories;
SELECT matches(pg_temp.xplan('{"price": {"$lt": 3}}'),
    'Index Cond: .*CASE WHEN \(jsonb_typeof\(\(metadata -> ''price''::text\)\) = ''number''::text\)',
    '$lt uses the number index on the same expression');
SELECT matches(pg_temp.xplan('{"price": {"$between": [10, 12]}}'), 'Index Cond: .*price',
    '$between uses the number index');
SELECT matches(pg_temp.xplan('{"sku": {"$gte": "sku-4998"}}'), 'Index Cond: .*sku',
    '$gte on a string uses the text index');
SELECT matches(pg_temp.xplan('{"sku": {"$like": "sku-4999%"}}'), 'Index Cond: .*sku',
    '$like ''prefix%'' uses the text index (C collation)');
SELECT matches(pg_temp.xplan('{"nested.level": {"$gt": 298}}'), 'Index Cond: .*level',
    'a dotted key''s range uses its index');
SELECT matches(pg_temp.xplan('{"created_at": {"$lt": "2024-01-01T00:05:00Z"}}'), 'Index Cond: .*created_at',
    'a created_at range uses the column index');
SELECT matches(pg_temp.xplan('{"id": {"$in": ["x1", "x2"]}}'), 'Index Cond: .*id = ANY',
    'id $in uses the primary key');
SELECT matches(pg_temp.xplan('{"$or": [{"user": "u1"}, {"price": {"$lt": 2}}]}'), 'BitmapOr',
    '$or of two indexed conditions: BitmapOr');
SELECT is((SELECT count(*) FROM memory.search('ix', '[1,1,1]', 10, '{"price": {"$lt": 3}}')), 10::bigint,
    'search with an indexed range returns k rows');
SELECT throws_ok($$ SELECT memory.create_metadata_index('ix', 'price', 'float') $$, '22023', NULL,
    'create_metadata_index: unknown type');
SELECT throws_ok($$ SELECT memory.create_metadata_index('ix', 'id', 'number') $$, '22023', NULL,
    'create_metadata_index: a column with the wrong type');
SELECT throws_ok($$ SELECT memory.create_metadata_index('nope', 'price', 'number') $$, '42704', NULL,
    'create_metadata_index: unknown domain');
-- (stop 28, an attack: two adopted domains whose names share their first 37 characters, on
-- tables of one schema, got one index name: the second call built nothing and returned the
-- first table's index)
CREATE TABLE public.mi_t1 (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3),
    metadata jsonb NOT NULL DEFAULT '{}');
CREATE TABLE public.mi_t2 (LIKE public.mi_t1 INCLUDING ALL);
SELECT memory.adopt_table('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'public.mi_t1', 'id', 'body',
    'emb', create_indexes => false);
SELECT memory.adopt_table('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'public.mi_t2', 'id', 'body',
    'emb', create_indexes => false);
SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'price', 'number');
SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'price', 'number');
SELECT is((SELECT i.indrelid
           FROM (SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2',
               'price', 'number') AS n OFFSET 0) AS x
           JOIN pg_class AS c ON c.relname = x.n AND c.relnamespace = 'public'::regnamespace
           JOIN pg_index AS i ON c.oid = i.indexrelid),
    'public.mi_t2'::regclass::oid,
    'create_metadata_index: a name taken by another table''s index: the index is made on this one');
SELECT is(memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'price', 'number'),
    memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'price', 'number'),
    '... and the same name on the next call (idempotent)');

-- (stop 29) Idempotent under either name. The first call fell back to the second name because
-- x1's index held the first; with that one gone, the next call built the first name too: two
-- indexes on one expression (every write paid for both).
CREATE FUNCTION pg_temp.mi_indexes(rel regclass) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pg_index AS i WHERE i.indrelid = rel AND i.indexprs IS NOT NULL
$$;
CREATE TEMP TABLE mi_first ON COMMIT DROP AS
SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'price', 'number')
    AS n;
CREATE TEMP TABLE mi_second ON COMMIT DROP AS
SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'price', 'number')
    AS n;
SELECT isnt((SELECT n FROM mi_first), (SELECT n FROM mi_second),
    'two tables, one first name: the second index has the other name');
SELECT lives_ok(format('DROP INDEX public.%I', (SELECT n FROM mi_first)),
    'the index holding the first name goes');
SELECT is(memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x2', 'price', 'number'),
    (SELECT n FROM mi_second),
    'create_metadata_index again: the index under the second name is the answer');
SELECT is(pg_temp.mi_indexes('public.mi_t2'), 1::bigint, '... and no second index is built');
-- An index under the first name that is not this one (INVALID, or on another expression) is
-- not the answer: the index is built under the second name.
CREATE INDEX mi_invalid ON public.mi_t1 (((metadata ->> 'price')));
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.mi_invalid'::regclass;
ALTER INDEX public.mi_invalid RENAME TO mi_placeholder;
SELECT lives_ok(format('ALTER INDEX public.mi_placeholder RENAME TO %I', (SELECT n FROM mi_first)),
    'an INVALID index of x1''s table takes the first name');
CREATE TEMP TABLE mi_third ON COMMIT DROP AS
SELECT memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'price', 'number')
    AS n;
SELECT is((SELECT i.indisvalid FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
           WHERE c.relnamespace = 'public'::regnamespace AND c.relname = (SELECT n FROM mi_third)),
    true, 'create_metadata_index returns a valid index, not the INVALID one under its name');
SELECT is(memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'price', 'number'),
    memory.create_metadata_index('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_x1', 'price', 'number'),
    '... the same one on every call');
SELECT is(pg_temp.mi_indexes('public.mi_t1'), 2::bigint,
    '... one built beside the INVALID one, then none');
SELECT memory.create_domain('mi_o', 3);
CREATE TEMP TABLE mi_o_name ON COMMIT DROP AS
SELECT memory_private._metadata_index_name(d, 'price', 'number') AS n
FROM memory_private.domains AS d WHERE d.domain = 'mi_o';
SELECT lives_ok(format($$CREATE INDEX %I ON memory_data.mi_o_memories ((metadata ->> 'x'))$$,
    (SELECT n FROM mi_o_name)), 'an index on another expression takes the first name');
SELECT isnt(memory.create_metadata_index('mi_o', 'price', 'number'), (SELECT n::text FROM mi_o_name),
    '... create_metadata_index builds its own beside it, under the second name');

-- (stop 28, an attack) A plain filter whose dotted key holds an escaped quote walks the key's
-- path as $eq does (the plain-filter test missed the key and matched the literal one); $like
-- patterns are checked before any row (a trailing lone backslash failed only on rows that reached
-- it: 22025 or nothing, by the data); $ilike folds case beyond ASCII.
SELECT memory.create_domain('qk', 3);
SELECT memory.store('qk', 'nested', '{"a": {"b\"c": 1}, "name": "Émile"}', '[1,0,0]', 'n1');
SELECT memory.store('qk', 'literal', '{"a.b\"c": 1, "name": "abc"}', '[1,0,0]', 'n2');
SELECT is((SELECT array_agg(s.id) FROM memory.search('qk', '[1,0,0]', 5, '{"a.b\"c": 1}') AS s),
    ARRAY['n1'], 'a plain dotted key with an escaped quote: the nested path, as $eq');
SELECT is((SELECT array_agg(s.id) FROM memory.search('qk', '[1,0,0]', 5,
        '{"a.b\"c": {"$eq": 1}}') AS s), ARRAY['n1'], '... the same as $eq');
SELECT throws_ok($$ SELECT memory.count('qk', '{"other": {"$like": "ab\\"}}') $$, '22023',
    'invalid filter at $.other.$like: $like pattern ends with an unfinished escape (a lone backslash; write \\ for a backslash)',
    '$like ending in a lone backslash: 22023 whatever the rows');
SELECT is(memory.count('qk', '{"name": {"$like": "ab\\\\"}}'), 0::bigint,
    '... an escaped backslash at the end is fine');
SELECT throws_ok($$ SELECT memory.count('qk', jsonb_build_object('name',
        jsonb_build_object('$ilike', repeat('a%', 33)))) $$, '22023', NULL,
    '$ilike with more than 32 % wildcards: 22023');
SELECT is(memory.count('qk', '{"name": {"$ilike": "émile"}}'), 1::bigint,
    '$ilike folds case beyond ASCII (the database''s collation)');

-- count reads the domain like a search: a role without read access on it gets 42501 (it could
-- otherwise learn which metadata values exist, one count at a time).
CREATE ROLE pgmemo_test_counter IN ROLE memory_reader;
SELECT memory.revoke_domain('lc', 'memory_reader', 'read');
SET LOCAL ROLE pgmemo_test_counter;
SELECT throws_ok($$ SELECT memory.count('lc', '{"name": "adam"}') $$, '42501', NULL,
    'count: a role that may not read the domain is refused');
SELECT is(memory.count('ix'), 5000::bigint, 'count of a domain it may read');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
