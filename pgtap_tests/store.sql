-- Writing: store (insert and upsert), store_many, update, forget, get; the embedding queue
-- follows every write; bad input fails with a stable SQLSTATE and writes nothing.
BEGIN;
SELECT plan(76);

SELECT memory.create_domain('notes', 3);

CREATE FUNCTION pg_temp.rows() RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM memory_data.notes_memories $$;
CREATE FUNCTION pg_temp.jobs() RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'notes' $$;
CREATE FUNCTION pg_temp.queued(row_id text) RETURNS boolean LANGUAGE sql AS
$$ SELECT EXISTS (SELECT FROM memory_private.embedding_queue AS q
                  WHERE q.domain = 'notes' AND q.row_id = queued.row_id) $$;
CREATE FUNCTION pg_temp.has_emb(row_id text) RETURNS boolean LANGUAGE sql AS
$$ SELECT g.has_embedding FROM memory.get('notes', row_id) AS g $$;

-- store: insert without an embedding -> queued.
CREATE TEMP TABLE ids (name text PRIMARY KEY, id text);
INSERT INTO ids SELECT 'a', memory.store('notes', 'alpha', '{"k": 1}');
SELECT matches((SELECT id FROM ids WHERE name = 'a'),
    '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', 'store returns a uuid id');
SELECT is(
    (SELECT row(g.content, g.metadata, g.has_embedding)::text
     FROM memory.get('notes', (SELECT id FROM ids WHERE name = 'a')) AS g),
    '(alpha,"{""k"": 1}",f)', 'get returns content, metadata, has_embedding');
SELECT ok(pg_temp.queued((SELECT id FROM ids WHERE name = 'a')), 'a row without embedding is queued');

-- store with an embedding -> not queued; embedding_model recorded from the domain.
INSERT INTO ids SELECT 'b', memory.store('notes', 'beta', embedding => '[1,0,0]');
SELECT ok(pg_temp.has_emb((SELECT id FROM ids WHERE name = 'b')), 'stored with its embedding');
SELECT ok(NOT pg_temp.queued((SELECT id FROM ids WHERE name = 'b')), 'and not queued');
SELECT is((SELECT metadata FROM memory.get('notes', (SELECT id FROM ids WHERE name = 'b'))),
    '{}'::jsonb, 'metadata defaults to {}');
SELECT is(memory.store('notes', 'null metadata', NULL, NULL, 'nm'), 'nm',
    'NULL metadata is stored as {}');
SELECT is((SELECT metadata FROM memory.get('notes', 'nm')), '{}'::jsonb, 'as {}');

-- store with id: upsert.
SELECT is(memory.store('notes', 'gamma', '{"v": 1}', '[0,1,0]', 'g1'), 'g1', 'store with id returns it');
SELECT is(memory.store('notes', 'gamma', '{"v": 2}', NULL, 'g1'), 'g1', 'upsert returns the same id');
SELECT is((SELECT count(*) FROM memory_data.notes_memories WHERE id = 'g1'), 1::bigint, 'one row');
SELECT is((SELECT metadata FROM memory.get('notes', 'g1')), '{"v": 2}'::jsonb, 'metadata replaced');
SELECT ok(pg_temp.has_emb('g1'), 'same content, no embedding given: the embedding is kept');
SELECT ok(NOT pg_temp.queued('g1'), 'and the row is not queued');
SELECT is(memory.store('notes', 'gamma changed', '{"v": 3}', NULL, 'g1'), 'g1', 'upsert new content');
SELECT ok(NOT pg_temp.has_emb('g1'), 'changed content without embedding: the stale embedding is cleared');
SELECT ok(pg_temp.queued('g1'), 'and the row is queued again');
SELECT is(memory.store('notes', 'gamma again', '{}', '[0,0,1]', 'g1'), 'g1', 'upsert with embedding');
SELECT is((SELECT embedding::text FROM memory_data.notes_memories WHERE id = 'g1'), '[0,0,1]',
    'the new embedding is stored');
SELECT ok(NOT pg_temp.queued('g1'), 'and the job is gone once the row has an embedding');

-- update().
INSERT INTO memory_data.notes_memories (id, content, embedding, metadata, created_at, updated_at)
VALUES ('u1', 'original', '[1,1,0]', '{"a": 1, "b": 2}', '2000-01-01', '2000-01-01');
SELECT ok(memory.update('notes', 'u1', metadata => '{"c": 3}'), 'update metadata returns true');
SELECT is((SELECT metadata FROM memory.get('notes', 'u1')), '{"c": 3}'::jsonb,
    'metadata is replaced, not merged');
SELECT ok((SELECT updated_at > '2000-01-02' FROM memory.get('notes', 'u1')), 'updated_at moves');
SELECT is((SELECT created_at FROM memory.get('notes', 'u1')), '2000-01-01'::timestamptz,
    'created_at does not');
SELECT ok(pg_temp.has_emb('u1') AND NOT pg_temp.queued('u1'),
    'a metadata-only update keeps the embedding and queues nothing');
SELECT ok(memory.update('notes', 'u1', content => 'original'), 'same content');
SELECT ok(pg_temp.has_emb('u1'), 'unchanged content keeps the embedding');
SELECT ok(memory.update('notes', 'u1', content => 'rewritten'), 'new content, no embedding');
SELECT ok(NOT pg_temp.has_emb('u1'), 'clears the embedding');
SELECT ok(pg_temp.queued('u1'), 'and queues the row');
SELECT is((SELECT embedding_model FROM memory_data.notes_memories WHERE id = 'u1'), NULL,
    'embedding_model cleared too');
SELECT ok(memory.update('notes', 'u1', content => 'rewritten twice', embedding => '[0,1,1]'),
    'new content with a new embedding');
SELECT is((SELECT embedding::text FROM memory_data.notes_memories WHERE id = 'u1'), '[0,1,1]',
    'keeps the new embedding');
SELECT is((SELECT content FROM memory.get('notes', 'u1')), 'rewritten twice', 'content updated');
SELECT ok(NOT pg_temp.queued('u1'), 'and is not queued');
SELECT ok(memory.update('notes', 'u1', embedding => '[1,0,1]'), 'embedding-only update');
SELECT is((SELECT embedding::text FROM memory_data.notes_memories WHERE id = 'u1'), '[1,0,1]',
    'replaces the embedding');
SELECT ok(NOT memory.update('notes', 'missing', content => 'x'), 'update of an unknown id: false');
SELECT is((SELECT count(*) FROM memory.get('notes', 'missing')), 0::bigint, 'get of an unknown id: no row');

-- forget().
SELECT ok(pg_temp.queued((SELECT id FROM ids WHERE name = 'a')), 'row a is queued');
SELECT ok(memory.forget('notes', (SELECT id FROM ids WHERE name = 'a')), 'forget returns true');
SELECT is((SELECT count(*) FROM memory.get('notes', (SELECT id FROM ids WHERE name = 'a'))), 0::bigint,
    'the row is gone');
SELECT ok(NOT pg_temp.queued((SELECT id FROM ids WHERE name = 'a')), 'and so is its queue job');
SELECT ok(NOT memory.forget('notes', (SELECT id FROM ids WHERE name = 'a')), 'forget again: false');

-- store_many: 1,000 rows in one call, ids in input order.
CREATE TEMP TABLE many AS
SELECT s.id, s.ord
FROM memory.store_many('notes',
    (SELECT array_agg('many ' || g ORDER BY g) FROM generate_series(1, 1000) AS g),
    (SELECT array_agg(jsonb_build_object('g', g) ORDER BY g) FROM generate_series(1, 1000) AS g),
    (SELECT array_agg(CASE WHEN g % 2 = 0 THEN ('[' || g || ',1,0]')::vector END ORDER BY g)
     FROM generate_series(1, 1000) AS g),
    (SELECT array_agg(CASE WHEN g % 3 = 0 THEN 'm' || g END ORDER BY g)
     FROM generate_series(1, 1000) AS g)) WITH ORDINALITY AS s (id, ord);
SELECT is((SELECT count(*) FROM many), 1000::bigint, 'store_many returns 1000 ids');
SELECT is(
    (SELECT count(*) FROM many JOIN memory_data.notes_memories AS t ON t.id = many.id
     WHERE t.content = 'many ' || many.ord AND t.metadata = jsonb_build_object('g', many.ord)),
    1000::bigint, 'ids come back in input order (content and metadata line up)');
SELECT is((SELECT count(*) FROM many WHERE ord % 3 = 0 AND id = 'm' || ord), 333::bigint,
    'given ids are used; NULL ids are generated');
SELECT is(
    (SELECT count(*) FROM many JOIN memory_data.notes_memories AS t ON t.id = many.id
     WHERE (t.embedding IS NOT NULL) = (many.ord % 2 = 0)),
    1000::bigint, 'embeddings land on the right rows');
SELECT is(
    (SELECT count(*) FROM many JOIN memory_private.embedding_queue AS q
        ON q.domain = 'notes' AND q.row_id = many.id),
    500::bigint, 'exactly the 500 rows without embedding are queued');
SELECT is(
    (SELECT array_agg(s ORDER BY o) FROM memory.store_many('notes', ARRAY['x1', 'x2', 'x3'],
        ids => ARRAY['m3', 'new1', 'm6']) WITH ORDINALITY AS t (s, o)),
    ARRAY['m3', 'new1', 'm6'], 'store_many upserts existing ids');
SELECT is((SELECT content FROM memory.get('notes', 'm6')), 'x3', 'the upserted row has the new content');
SELECT is((SELECT count(*) FROM memory.store_many('notes', ARRAY[]::text[])), 0::bigint,
    'an empty array stores nothing');

-- Bad input: each fails with its SQLSTATE and writes nothing.
CREATE TEMP TABLE snap AS SELECT pg_temp.rows() AS n_rows, pg_temp.jobs() AS n_jobs;
SELECT throws_ok($$SELECT memory.store('nope', 'x')$$, '42704', 'unknown domain "nope"',
    'store: unknown domain');
SELECT throws_ok($$SELECT memory.store_many('nope', ARRAY['x'])$$, '42704', NULL,
    'store_many: unknown domain');
SELECT throws_ok($$SELECT memory.update('nope', 'u1', 'x')$$, '42704', NULL, 'update: unknown domain');
SELECT throws_ok($$SELECT memory.forget('nope', 'u1')$$, '42704', NULL, 'forget: unknown domain');
SELECT throws_ok($$SELECT * FROM memory.get('nope', 'u1')$$, '42704', NULL, 'get: unknown domain');
SELECT throws_ok($$SELECT memory.store('notes', 'x', '{}', '[1,2]')$$, '22000',
    'embedding has 2 dimensions, domain "notes" expects 3', 'store: wrong dimension');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], NULL,
    ARRAY['[1,2,3]'::vector, '[1,2,3,4]'::vector])$$, '22000',
    'embeddings[2] has 4 dimensions, domain "notes" expects 3', 'store_many: wrong dimension');
SELECT throws_ok($$SELECT memory.update('notes', 'u1', embedding => '[1,2,3,4]')$$, '22000', NULL,
    'update: wrong dimension');
SELECT throws_ok($$SELECT memory.store('notes', 'x', '[1, 2]')$$, '22023',
    'metadata must be a JSON object, got a JSON array', 'store: metadata array');
SELECT throws_ok($$SELECT memory.store('notes', 'x', '"text"')$$, '22023', NULL,
    'store: metadata string');
SELECT throws_ok($$SELECT memory.store('notes', 'x', 'null'::jsonb)$$, '22023', NULL,
    'store: metadata JSON null');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], ARRAY['{}', '3']::jsonb[])$$,
    '22023', 'metadatas[2] must be a JSON object, got a JSON number', 'store_many: metadata number');
SELECT throws_ok($$SELECT memory.update('notes', 'u1', metadata => '[]')$$, '22023', NULL,
    'update: metadata array');
SELECT throws_ok($$SELECT memory.store('notes', NULL)$$, '22004', NULL, 'store: NULL content');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', NULL])$$, '22004',
    'contents[2] is NULL', 'store_many: NULL content');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], ARRAY['{}']::jsonb[])$$,
    '2202E', 'metadatas has 1 elements, contents has 2', 'store_many: metadatas length mismatch');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], NULL, ARRAY['[1,2,3]'::vector])$$,
    '2202E', NULL, 'store_many: embeddings length mismatch');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], ids => ARRAY['1', '2', '3'])$$,
    '2202E', NULL, 'store_many: ids length mismatch');
SELECT throws_ok($$SELECT memory.store_many('notes', ARRAY['x', 'y'], ids => ARRAY['d', 'd'])$$,
    '22023', 'duplicate id ''d'' in ids', 'store_many: duplicate ids');
SELECT throws_ok($$SELECT '[NaN,1,2]'::vector$$, '22000', 'NaN not allowed in vector',
    'pgvector refuses NaN in text');
SELECT throws_ok($$SELECT ARRAY['NaN']::real[]::vector$$, '22000', NULL,
    'pgvector refuses NaN from a real[]');
SELECT throws_ok($$SELECT '[Infinity,1,2]'::vector$$, '22000', NULL, 'pgvector refuses Infinity');
SELECT throws_ok($$SELECT ARRAY[1, '-Infinity', 2]::real[]::vector$$, '22000', NULL,
    'pgvector refuses -Infinity from a real[]');
SELECT is((SELECT row(pg_temp.rows(), pg_temp.jobs())::text), (SELECT row(n_rows, n_jobs)::text FROM snap),
    'none of the failed calls wrote a row or a job');

SELECT * FROM finish();
ROLLBACK;
