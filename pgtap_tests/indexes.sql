-- Vector indexes: create_hnsw_index leaves exactly one HNSW index with the domain's opclass,
-- drops competing IVFFlat / HNSW / invalid ones, is idempotent, and rebuilds for new options.
BEGIN;
SELECT plan(22);

SELECT memory.create_domain('idx', 3);
SELECT memory.store_many('idx', ARRAY['a', 'b', 'c'], NULL,
    ARRAY['[1,0,0]', '[0,1,0]', '[0,0,1]']::vector[]);

CREATE FUNCTION pg_temp.vector_indexes(tbl regclass) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s %s %s %s', c.relname, am.amname, opc.opcname,
            array_to_string(c.reloptions, ',')), '; ' ORDER BY c.relname), '')
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
    JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
    WHERE i.indrelid = tbl AND am.amname IN ('hnsw', 'ivfflat')
$$;
CREATE FUNCTION pg_temp.hnsw_oid() RETURNS oid LANGUAGE sql AS $$
    SELECT i.indexrelid FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'memory_data.idx_memories'::regclass
      AND c.relam = (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'hnsw')
$$;

SELECT is(pg_temp.vector_indexes('memory_data.idx_memories'),
    'idx_memories_hnsw hnsw vector_cosine_ops m=16,ef_construction=64',
    'create_domain made one HNSW index');

-- Idempotent: same name, same index.
CREATE TEMP TABLE oids AS SELECT 'first' AS what, pg_temp.hnsw_oid() AS oid;
SELECT is(memory.create_hnsw_index('idx'), 'idx_memories_hnsw', 'create_hnsw_index returns the name');
SELECT is(pg_temp.hnsw_oid(), (SELECT oid FROM oids WHERE what = 'first'),
    'called again with the same options: the index is kept, not rebuilt');

-- Competing indexes: an IVFFlat one and a second HNSW one (other opclass), one exact duplicate.
CREATE INDEX planted_ivfflat ON memory_data.idx_memories
USING ivfflat (embedding vector_cosine_ops) WITH (lists = 1);
CREATE INDEX planted_hnsw_l2 ON memory_data.idx_memories USING hnsw (embedding vector_l2_ops);
CREATE INDEX aaa_planted_duplicate ON memory_data.idx_memories
USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
SELECT is((SELECT count(*) FROM pg_catalog.pg_index WHERE indrelid = 'memory_data.idx_memories'::regclass
    AND indexrelid IN (SELECT c.oid FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_am AS am
        ON am.oid = c.relam WHERE am.amname IN ('hnsw', 'ivfflat'))), 4::bigint,
    'four vector indexes planted');
SELECT is(memory.create_hnsw_index('idx'), 'aaa_planted_duplicate',
    'create_hnsw_index keeps one matching index');
SELECT is(pg_temp.vector_indexes('memory_data.idx_memories'),
    'aaa_planted_duplicate hnsw vector_cosine_ops m=16,ef_construction=64',
    'exactly one vector index is left');
SELECT hasnt_index('memory_data', 'idx_memories', 'planted_ivfflat', 'the IVFFlat index is gone');
SELECT hasnt_index('memory_data', 'idx_memories', 'planted_hnsw_l2', 'the wrong-opclass HNSW is gone');
SELECT is(memory.create_hnsw_index('idx'), 'aaa_planted_duplicate', 'idempotent');

-- Different m: rebuilt, and the registry follows.
SELECT is(memory.create_hnsw_index('idx', 24, 100), 'idx_memories_hnsw', 'new options: rebuilt');
SELECT is(pg_temp.vector_indexes('memory_data.idx_memories'),
    'idx_memories_hnsw hnsw vector_cosine_ops m=24,ef_construction=100',
    'one index with the new options');
SELECT is((SELECT row(hnsw_m, hnsw_ef_construction)::text FROM memory_private.domains
           WHERE domain = 'idx'), '(24,100)', 'the registry records them');
INSERT INTO oids SELECT 'm24', pg_temp.hnsw_oid();
SELECT is(memory.create_hnsw_index('idx', 24, 100), 'idx_memories_hnsw', 'again with m = 24');
SELECT is(pg_temp.hnsw_oid(), (SELECT oid FROM oids WHERE what = 'm24'), 'not rebuilt');

-- Search still works through the rebuilt index.
SELECT is((SELECT id FROM memory.search('idx', '[1,0.1,0]', 1)),
    (SELECT id FROM memory_data.idx_memories WHERE content = 'a'), 'search works after the rebuild');

-- Bad input.
SELECT throws_ok($$SELECT memory.create_hnsw_index('idx', 1)$$, '22023', NULL, 'm = 1: 22023');
SELECT throws_ok($$SELECT memory.create_hnsw_index('idx', 101)$$, '22023', NULL, 'm = 101: 22023');
SELECT throws_ok($$SELECT memory.create_hnsw_index('idx', 16, 20)$$, '22023', NULL,
    'ef_construction < 2m: 22023');
SELECT throws_ok($$SELECT memory.create_hnsw_index('idx', NULL)$$, '22023', NULL, 'NULL m: 22023');
SELECT throws_ok($$SELECT memory.create_hnsw_index('nope')$$, '42704', NULL, 'unknown domain: 42704');
SELECT is(pg_temp.vector_indexes('memory_data.idx_memories'),
    'idx_memories_hnsw hnsw vector_cosine_ops m=24,ef_construction=100',
    'failed calls left the index alone');

-- The opclass follows the distance.
SELECT memory.create_domain('near', 3, 'l2');
CREATE INDEX near_cosine ON memory_data.near_memories USING hnsw (embedding vector_cosine_ops);
SELECT memory.create_hnsw_index('near');
SELECT is(pg_temp.vector_indexes('memory_data.near_memories'),
    'near_memories_hnsw hnsw vector_l2_ops m=16,ef_construction=64',
    'l2 domain: a cosine index is replaced by the one l2 index');

SELECT * FROM finish();
ROLLBACK;
