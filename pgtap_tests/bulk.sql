-- Bulk loading: bulk_load_begin defers a domain's indexes and its enqueue trigger; rows loaded
-- meanwhile are searchable (sequentially); bulk_load_finish rebuilds exactly the indexes
-- create_domain makes, queues the rows that have no embedding, and restores the settings.
BEGIN;
SELECT plan(24);

SELECT memory.create_domain('bulk', 3, hnsw_m => 8, hnsw_ef_construction => 32);

CREATE FUNCTION pg_temp.indexes() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.relname::text, ',' ORDER BY c.relname), '')
    FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'memory_data.bulk_memories'::regclass
$$;
CREATE FUNCTION pg_temp.trigger_state() RETURNS "char" LANGUAGE sql AS $$
    SELECT t.tgenabled FROM pg_catalog.pg_trigger AS t
    WHERE t.tgrelid = 'memory_data.bulk_memories'::regclass AND t.tgname = 'pgmemo_bulk_enqueue_insert'
$$;
CREATE TEMP TABLE before_state AS SELECT pg_temp.indexes() AS idx;

-- begin: every secondary index goes, the primary key stays, the trigger pauses.
SELECT is(
    (SELECT array_agg(x ORDER BY x) FROM unnest(memory.bulk_load_begin('bulk')) AS x),
    ARRAY['memory_data.bulk_memories_fts', 'memory_data.bulk_memories_hnsw',
          'memory_data.bulk_memories_metadata_gin', 'memory_data.bulk_memories_updated_at'],
    'bulk_load_begin returns the dropped indexes');
SELECT is(pg_temp.indexes(), 'bulk_memories_pkey', 'only the primary key is left');
SELECT is(pg_temp.trigger_state(), 'D'::"char", 'the enqueue-on-insert trigger is paused');
SELECT is(memory.bulk_load_begin('bulk'), ARRAY[]::text[], 'bulk_load_begin again: nothing to drop');

-- Loading: with and without embeddings; nothing is queued row by row.
SELECT memory.store_many('bulk', ARRAY['a', 'b', 'c', 'd'], NULL,
    ARRAY['[1,0,0]', '[0,1,0]', '[0,0,1]', NULL]::vector[]);
INSERT INTO memory_data.bulk_memories (id, content) VALUES ('e', 'no embedding either');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'bulk'), 0::bigint,
    'no jobs queued during the load');
SELECT is((SELECT count(*) FROM memory.search('bulk', '[1,0,0]', k => 10)), 3::bigint,
    'search works during the load (sequential scan)');

-- finish: the same indexes as before, the trigger back, the missing embeddings queued.
SET LOCAL maintenance_work_mem = '70MB';
SET LOCAL max_parallel_maintenance_workers = 0;
CREATE TEMP TABLE finished AS
SELECT memory.bulk_load_finish('bulk', maintenance_work_mem => '80MB', parallel_workers => 1) AS r;
SELECT is((SELECT r ->> 'hnsw_index' FROM finished), 'bulk_memories_hnsw', 'the HNSW index name');
SELECT is((SELECT (r ->> 'queued_rows')::bigint FROM finished), 2::bigint,
    'the two rows without an embedding are reported queued');
SELECT is((SELECT r ->> 'maintenance_work_mem' FROM finished), '80MB', 'the memory used');
SELECT is((SELECT (r ->> 'parallel_workers')::int FROM finished), 1, 'the workers used');
SELECT ok((SELECT (r ->> 'hnsw_seconds')::float8 >= 0 FROM finished), 'build time reported');
SELECT is(pg_temp.indexes(), (SELECT idx FROM before_state), 'exactly the indexes create_domain made');
SELECT is((SELECT array_to_string(c.reloptions, ',') FROM pg_catalog.pg_class AS c
           WHERE c.oid = 'memory_data.bulk_memories_hnsw'::regclass),
    'm=8,ef_construction=32', 'the HNSW index keeps the domain''s m and ef_construction');
SELECT is(pg_temp.trigger_state(), 'O'::"char", 'the enqueue trigger is back');
SELECT is(
    (SELECT array_agg(row_id ORDER BY row_id) FROM memory_private.embedding_queue
     WHERE domain = 'bulk'),
    (SELECT array_agg(id ORDER BY id) FROM memory_data.bulk_memories
     WHERE content IN ('d', 'no embedding either')),
    'exactly the rows without an embedding are queued');
SELECT is(current_setting('maintenance_work_mem'), '70MB', 'maintenance_work_mem restored');
SELECT is(current_setting('max_parallel_maintenance_workers'), '0',
    'max_parallel_maintenance_workers restored');
SELECT is((SELECT array_agg(id ORDER BY id) FROM memory.search('bulk', '[1,0,0.1]', k => 2)),
    (SELECT array_agg(id ORDER BY id) FROM memory_data.bulk_memories WHERE content IN ('a', 'c')),
    'search after the load');

-- Idempotent; the trigger queues new rows again.
SELECT is((memory.bulk_load_finish('bulk') ->> 'queued_rows')::bigint, 0::bigint,
    'finish again: nothing more to queue');
SELECT is(pg_temp.indexes(), (SELECT idx FROM before_state), 'finish again: same indexes');
SELECT memory.store('bulk', 'f');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'bulk'), 3::bigint,
    'a row stored after the load is queued by the trigger');

-- Errors.
SELECT throws_ok($$SELECT memory.bulk_load_begin('nope')$$, '42704', NULL, 'begin: unknown domain');
SELECT throws_ok($$SELECT memory.bulk_load_finish('bulk', parallel_workers => -1)$$, '22023', NULL,
    'finish: bad parallel_workers');
SELECT throws_ok($$SELECT memory.bulk_load_finish('bulk', maintenance_work_mem => 'lots')$$,
    '22023', NULL, 'finish: bad maintenance_work_mem');

SELECT * FROM finish();
ROLLBACK;
