-- halfvec domains (create_domain(..., embedding_type => 'halfvec')) and the embedding column's
-- storage: the type, the operator classes, search, the queue, limits and bad input.
BEGIN;
SELECT plan(23);

SELECT lives_ok($$SELECT memory.create_domain('half', 3, embedding_type => 'halfvec')$$,
    'a halfvec domain');
SELECT col_type_is('memory_data', 'half_memories', 'embedding', 'halfvec(3)', 'column is halfvec(3)');
SELECT is((SELECT opclass FROM memory.vector_indexes WHERE domain = 'half'), 'halfvec_cosine_ops'::name,
    'its HNSW index uses halfvec_cosine_ops');
SELECT is((SELECT embedding_type FROM memory_private.domains WHERE domain = 'half'), 'halfvec',
    'the registry records the type');
SELECT is(memory.create_domain('half', 3, embedding_type => 'halfvec')::text, 'memory_data.half_memories',
    'idempotent with the same embedding_type');
SELECT throws_ok($$SELECT memory.create_domain('half', 3)$$, '42710', NULL,
    'the same domain as vector is a different domain');

-- Writing and searching take vectors (cast to halfvec implicitly).
SELECT memory.store('half', 'north', '{}', '[1,0,0]', id => 'n');
SELECT memory.store('half', 'east', '{}', '[0,1,0]', id => 'e');
SELECT memory.store('half', 'up', '{}', '[0,0,1]', id => 'u');
SELECT is((SELECT array_agg(id ORDER BY distance) FROM memory.search('half', '[0.9,0.2,0]', k => 2)),
    ARRAY['n', 'e'], 'search orders by cosine distance');
SELECT ok((SELECT abs(similarity - 1) < 0.001 FROM memory.search('half', '[1,0,0]', k => 1)),
    'similarity survives 16-bit floats');
SELECT is((SELECT uses_index FROM memory.explain_search('half', 2)), true, 'the search uses the index');
SELECT throws_ok($$SELECT * FROM memory.search('half', '[1,0]')$$, '22000', NULL,
    'wrong query dimension');
SELECT is((SELECT embedding FROM memory.get_many('half', ARRAY['n'])), '[1,0,0]'::vector,
    'get_many returns the embedding as vector');
SELECT is_empty($$SELECT * FROM memory.diagnose('half') WHERE severity IN ('error', 'warning')
                  AND check_name NOT IN ('stats_missing', 'stats_stale')$$,
    'diagnose: a healthy halfvec domain');

-- The queue fills halfvec rows.
SELECT memory.store('half', 'queued', id => 'q');
CREATE TEMP TABLE jobs AS SELECT * FROM memory.claim_embedding_jobs(10, 'w');
SELECT is((SELECT count(*) FROM jobs), 1::bigint, 'the row without embedding is claimed');
SELECT is(memory.complete_embedding_jobs((SELECT array_agg(job_id) FROM jobs), ARRAY['[0,1,1]']::vector[]),
    1, 'completed with a vector');
SELECT is((SELECT embedding FROM memory_data.half_memories WHERE id = 'q'), '[0,1,1]'::halfvec,
    'stored as halfvec');

-- Limits: halfvec indexes reach 4000 dimensions, vector ones 2000.
SELECT lives_ok($$SELECT memory.create_domain('wide_half', 4000, embedding_type => 'halfvec')$$,
    'halfvec up to 4000 dimensions');
SELECT throws_ok($$SELECT memory.create_domain('wide_vec', 2001)$$, '22023', NULL,
    'vector beyond 2000 dimensions');
SELECT throws_ok($$SELECT memory.create_domain('wider', 4001, embedding_type => 'halfvec')$$, '22023',
    NULL, 'halfvec beyond 4000 dimensions');
SELECT throws_ok($$SELECT memory.create_domain('bad_type', 3, embedding_type => 'float8')$$, '22023',
    NULL, 'unknown embedding_type');
SELECT ok(to_regclass('memory_data.bad_type_memories') IS NULL
    AND NOT EXISTS (SELECT FROM memory_private.domains WHERE domain IN ('bad_type', 'wide_vec', 'wider')),
    'nothing left behind by the refused ones');

-- Storage: inline (PLAIN) while the vector leaves room in the page, else pgvector's EXTERNAL.
SELECT memory.create_domain('v768', 768);
SELECT memory.create_domain('v2000', 2000);
SELECT is((SELECT attstorage::text FROM pg_attribute
           WHERE attrelid = 'memory_data.v768_memories'::regclass AND attname = 'embedding'),
    'p', 'vector(768) is stored inline');
SELECT is((SELECT attstorage::text FROM pg_attribute
           WHERE attrelid = 'memory_data.v2000_memories'::regclass AND attname = 'embedding'),
    'e', 'vector(2000) (8 kB) stays EXTERNAL');
SELECT is((SELECT attstorage::text FROM pg_attribute
           WHERE attrelid = 'memory_data.wide_half_memories'::regclass AND attname = 'embedding'),
    'e', 'halfvec(4000) (8 kB) stays EXTERNAL');

SELECT * FROM finish();
ROLLBACK;
