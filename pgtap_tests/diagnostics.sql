-- Diagnostics: every memory.diagnose() check is planted, reported with its severity, fixed with
-- its own fix_sql (EXECUTEd here) and then clean; explain_search proves the HNSW index is used on
-- a 10,000-row domain; the views count right.
-- Planted differently because one transaction cannot do the real thing:
--   invalid_index: UPDATE pg_index SET indisvalid = false (what a failed CREATE INDEX
--     CONCURRENTLY leaves); REINDEX INDEX CONCURRENTLY cannot run in a transaction block, so the
--     test runs that fix_sql without CONCURRENTLY (pytest runs the real one through the CLI).
--   hnsw_exceeds_shared_buffers: SET LOCAL pgmemo.hnsw_memory_budget = '64kB' (shared_buffers
--     cannot be SET); the default budget is shared_buffers itself.
--   pgvector_too_old: the check is a function of the version, called with old versions.
BEGIN;
SELECT plan(88);

-- Helpers: the severities a check reports for a domain, and applying its fixes.
CREATE FUNCTION pg_temp.sev(d text, c text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(DISTINCT x.severity, ',') FROM memory.diagnose(d) AS x WHERE x.check_name = c
$$;
CREATE FUNCTION pg_temp.fix(d text, c text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(x.fix_sql, ' | ') FROM memory.diagnose(d) AS x WHERE x.check_name = c
$$;
CREATE FUNCTION pg_temp.apply(d text, c text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT x.fix_sql FROM memory.diagnose(d) AS x WHERE x.check_name = c AND x.fix_sql IS NOT NULL LOOP
        EXECUTE replace(r.fix_sql, ' CONCURRENTLY ', ' ');
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;
CREATE FUNCTION pg_temp.problems(d text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(x.severity || ':' || x.check_name, ', ' ORDER BY x.check_name), '')
    FROM memory.diagnose(d) AS x WHERE x.severity IN ('error', 'warning')
$$;
CREATE FUNCTION pg_temp.vec() RETURNS vector LANGUAGE sql AS $$
    SELECT ARRAY[random(), random(), random()]::vector
$$;

-- Nothing yet: only the info row.
SELECT is((SELECT string_agg(severity || ':' || check_name, ',') FROM memory.diagnose()),
    'info:no_domains', 'an empty database reports only info no_domains');
SELECT throws_ok($$SELECT * FROM memory.diagnose('nope')$$, '42704', NULL, 'unknown domain: 42704');
SELECT throws_ok($$SELECT * FROM memory.explain_search('nope')$$, '42704', NULL,
    'explain_search: unknown domain 42704');

-- A healthy domain: no warnings, no errors.
SELECT memory.create_domain('healthy', 3, embedding_model => 'm1');
SELECT memory.store('healthy', 'row ' || g, embedding => pg_temp.vec()) FROM generate_series(1, 5) AS g;
SELECT is(pg_temp.problems('healthy'), '', 'a healthy domain has no warnings or errors');
SELECT is((SELECT count(*) FROM memory.diagnose() WHERE severity IN ('error', 'warning')), 0::bigint,
    'the healthy database has no warnings or errors');

-- Views: right numbers.
SELECT memory.store('healthy', 'queued row');
SELECT results_eq(
    $$SELECT total_rows, embedded_rows, missing_rows, coverage_pct, queued_jobs, dead_jobs
      FROM memory.embedding_coverage WHERE domain = 'healthy'$$,
    $$VALUES (6::bigint, 5::bigint, 1::bigint, 83.33::numeric, 1::bigint, 0::bigint)$$,
    'embedding_coverage counts rows, embedded, missing, %, jobs');
SELECT results_eq(
    $$SELECT pending, claimed, retrying, dead, ready, oldest_pending_age >= interval '0'
      FROM memory.queue_status WHERE domain = 'healthy'$$,
    $$VALUES (1::bigint, 0::bigint, 0::bigint, 0::bigint, 1::bigint, true)$$,
    'queue_status counts the pending job');
SELECT is((SELECT string_agg(concat_ws(' ', index_name, method, opclass, is_valid, matches_distance), ';')
    FROM memory.vector_indexes WHERE domain = 'healthy'),
    'healthy_memories_hnsw hnsw vector_cosine_ops t t', 'vector_indexes lists the HNSW index');
SELECT ok((SELECT size_bytes > 0 AND options @> ARRAY['m=16'] FROM memory.vector_indexes
    WHERE domain = 'healthy'), 'vector_indexes reports size and options');

-- no_live_worker: a job waits and no worker runs; a heartbeat clears it.
SELECT is(pg_temp.sev('healthy', 'no_live_worker'), 'warning', 'no_live_worker: warning');
SELECT is(pg_temp.fix('healthy', 'no_live_worker'), NULL, 'no_live_worker: no fix_sql (start a worker)');
SELECT matches((SELECT detail FROM memory.diagnose('healthy') WHERE check_name = 'no_live_worker'),
    '^1 job waits for an embedding but no worker', 'no_live_worker: one job, said in the singular');
SELECT memory.worker_heartbeat('w1');
SELECT is(pg_temp.sev('healthy', 'no_live_worker'), NULL, 'no_live_worker: clean with a live worker');

-- queue_not_draining: the oldest ready job waited an hour.
UPDATE memory_private.embedding_queue SET run_after = now() - interval '1 hour' WHERE domain = 'healthy';
SELECT is(pg_temp.sev('healthy', 'queue_not_draining'), 'warning', 'queue_not_draining: warning');
SELECT matches((SELECT detail FROM memory.diagnose('healthy') WHERE check_name = 'queue_not_draining'),
    '^1 job is ready and has waited 01:00:', 'queue_not_draining: one job, in the singular');
SELECT ok((SELECT oldest_pending_age >= interval '1 hour' FROM memory.queue_status WHERE domain = 'healthy'),
    'queue_status: oldest_pending_age');
SET LOCAL pgmemo.queue_stall_seconds = 7200;
SELECT is(pg_temp.sev('healthy', 'queue_not_draining'), NULL, 'queue_not_draining: threshold is tunable');
RESET pgmemo.queue_stall_seconds;

-- expired_claims: a worker died holding a claim.
UPDATE memory_private.embedding_queue
SET status = 'claimed', claimed_by = 'w-dead', claimed_at = now() - interval '10 minutes',
    lease_until = now() - interval '5 minutes'
WHERE domain = 'healthy';
SELECT is(pg_temp.sev('healthy', 'expired_claims'), 'warning', 'expired_claims: warning');
SELECT is((SELECT detail FROM memory.diagnose('healthy') WHERE check_name = 'expired_claims'),
    '1 job is claimed by a worker whose lease has expired (the worker died or hung); it waits '
    || 'until the claim is released.', 'expired_claims: one job, in the singular');
SELECT is((SELECT expired_claims FROM memory.queue_status WHERE domain = 'healthy'), 1::bigint,
    'queue_status: expired_claims');
SELECT is(pg_temp.apply('healthy', 'expired_claims'), 1, 'expired_claims: fix applied');
SELECT is(pg_temp.sev('healthy', 'expired_claims'), NULL, 'expired_claims: clean after the fix');
SELECT is((SELECT retrying FROM memory.queue_status WHERE domain = 'healthy'), 1::bigint,
    'queue_status: the released job is retrying');

-- dead_jobs, with the most common error.
UPDATE memory_private.embedding_queue SET status = 'dead', attempts = 5, last_error = 'model exploded'
WHERE domain = 'healthy';
SELECT is(pg_temp.sev('healthy', 'dead_jobs'), 'warning', 'dead_jobs: warning');
SELECT ok((SELECT detail LIKE '%1 x "model exploded"%' FROM memory.diagnose('healthy')
    WHERE check_name = 'dead_jobs'), 'dead_jobs: detail names the common error');
SELECT is((SELECT dead_jobs FROM memory.embedding_coverage WHERE domain = 'healthy'), 1::bigint,
    'embedding_coverage: dead_jobs');
SELECT is(pg_temp.apply('healthy', 'dead_jobs'), 1, 'dead_jobs: fix applied');
SELECT is(pg_temp.sev('healthy', 'dead_jobs'), NULL, 'dead_jobs: clean after the fix');
SELECT memory.forget('healthy', (SELECT id FROM memory_data.healthy_memories WHERE embedding IS NULL));
SELECT is(pg_temp.problems('healthy'), '', 'healthy again');

-- unqueued_null_embeddings: rows inserted with triggers disabled.
SELECT memory.create_domain('unq', 3);
ALTER TABLE memory_data.unq_memories DISABLE TRIGGER USER;
INSERT INTO memory_data.unq_memories (content) VALUES ('a'), ('b');
ALTER TABLE memory_data.unq_memories ENABLE TRIGGER USER;
SELECT is(pg_temp.sev('unq', 'unqueued_null_embeddings'), 'warning', 'unqueued_null_embeddings: warning');
SELECT ok((SELECT detail LIKE '2 rows %' FROM memory.diagnose('unq')
    WHERE check_name = 'unqueued_null_embeddings'), 'unqueued_null_embeddings: counts 2 rows');
SELECT is(pg_temp.apply('unq', 'unqueued_null_embeddings'), 1, 'unqueued_null_embeddings: fix applied');
SELECT is(pg_temp.sev('unq', 'unqueued_null_embeddings'), NULL, 'unqueued_null_embeddings: clean');
SELECT is((SELECT pending FROM memory.queue_status WHERE domain = 'unq'), 2::bigint, 'the rows are queued');
SET LOCAL pgmemo.diagnose_exact_rows = 0;
SELECT is(pg_temp.sev('unq', 'unqueued_null_embeddings'), NULL,
    'unqueued_null_embeddings: the estimate path runs (and finds nothing without statistics)');
RESET pgmemo.diagnose_exact_rows;

-- no_vector_index; explain_search says so.
SELECT memory.create_domain('noidx', 3);
DROP INDEX memory_data.noidx_memories_hnsw;
SELECT is(pg_temp.sev('noidx', 'no_vector_index'), 'error', 'no_vector_index: error');
SELECT is((SELECT uses_index FROM memory.explain_search('noidx')), false,
    'explain_search: no index, uses_index false');
SELECT is(pg_temp.apply('noidx', 'no_vector_index'), 1, 'no_vector_index: fix applied');
SELECT is(pg_temp.problems('noidx'), '', 'no_vector_index: clean after the fix');

-- duplicate_vector_indexes: a second HNSW index from "application code".
SELECT memory.create_domain('dup', 3, hnsw_m => 8, hnsw_ef_construction => 32);
CREATE INDEX dup_extra ON memory_data.dup_memories USING hnsw (embedding vector_cosine_ops);
SELECT is(pg_temp.sev('dup', 'duplicate_vector_indexes'), 'warning', 'duplicate_vector_indexes: warning');
SELECT is(pg_temp.fix('dup', 'duplicate_vector_indexes'),
    'SELECT memory.create_hnsw_index(''dup'', m => 8, ef_construction => 32);',
    'duplicate_vector_indexes: the fix keeps the domain''s m and ef_construction');
SELECT is(pg_temp.apply('dup', 'duplicate_vector_indexes'), 1, 'duplicate_vector_indexes: fix applied');
SELECT is(pg_temp.problems('dup'), '', 'duplicate_vector_indexes: clean after the fix');
SELECT is((SELECT string_agg(index_name, ',') FROM memory.vector_indexes WHERE domain = 'dup'),
    'dup_memories_hnsw', 'one index left, the domain''s own');

-- opclass_mismatch: an l2 index on a cosine domain.
SELECT memory.create_domain('opc', 3);
DROP INDEX memory_data.opc_memories_hnsw;
CREATE INDEX opc_l2 ON memory_data.opc_memories USING hnsw (embedding vector_l2_ops);
SELECT is(pg_temp.sev('opc', 'opclass_mismatch'), 'error', 'opclass_mismatch: error');
SELECT is((SELECT matches_distance FROM memory.vector_indexes WHERE domain = 'opc'), false,
    'vector_indexes: matches_distance false');
SELECT is(pg_temp.apply('opc', 'opclass_mismatch'), 1, 'opclass_mismatch: fix applied');
SELECT is(pg_temp.problems('opc'), '', 'opclass_mismatch: clean after the fix');

-- invalid_index: a vector index and a full-text index left INVALID.
SELECT memory.create_domain('inv', 3);
UPDATE pg_catalog.pg_index SET indisvalid = false
WHERE indexrelid IN ('memory_data.inv_memories_hnsw'::regclass, 'memory_data.inv_memories_fts'::regclass);
SELECT is(pg_temp.sev('inv', 'invalid_index'), 'error', 'invalid_index: error');
SELECT is((SELECT count(*) FROM memory.diagnose('inv') WHERE check_name = 'invalid_index'), 2::bigint,
    'invalid_index: one row per index');
SELECT ok(pg_temp.fix('inv', 'invalid_index') LIKE '%REINDEX INDEX CONCURRENTLY memory_data.inv_memories_fts;%',
    'invalid_index: REINDEX CONCURRENTLY for a non-vector index');
SELECT is(pg_temp.apply('inv', 'invalid_index'), 2, 'invalid_index: fixes applied');
SELECT is(pg_temp.problems('inv'), '', 'invalid_index: clean after the fixes');

-- partition_missing_index: a partitioned table registered by hand; one partition indexed.
CREATE TABLE memory_data.parted_memories (
    id text NOT NULL, content text NOT NULL, embedding vector(3), embedding_model text,
    metadata jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id)
) PARTITION BY HASH (id);
CREATE TABLE memory_data.parted_p0 PARTITION OF memory_data.parted_memories
FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE memory_data.parted_p1 PARTITION OF memory_data.parted_memories
FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO memory_private.domains (domain, table_name, dimension, distance)
VALUES ('parted', 'parted_memories', 3, 'cosine');
INSERT INTO memory_data.parted_memories (id, content, embedding)
SELECT g::text, 'c' || g, pg_temp.vec() FROM generate_series(1, 20) AS g;
CREATE INDEX ON memory_data.parted_p0 USING hnsw (embedding vector_cosine_ops);
SELECT is(pg_temp.sev('parted', 'partition_missing_index'), 'error', 'partition_missing_index: error');
SELECT ok(pg_temp.fix('parted', 'partition_missing_index') LIKE 'CREATE INDEX ON memory_data.parted_p1 %',
    'partition_missing_index: names the partition without the index');
SELECT is(pg_temp.apply('parted', 'partition_missing_index'), 1, 'partition_missing_index: fix applied');
SELECT is(pg_temp.sev('parted', 'partition_missing_index'), NULL, 'partition_missing_index: clean');
SELECT is(pg_temp.sev('parted', 'no_vector_index'), 'error', 'the partitioned parent has no index');
SELECT is(pg_temp.apply('parted', 'no_vector_index'), 1, 'create_hnsw_index on the partitioned parent');
SELECT is(pg_temp.problems('parted'), '', 'partitioned domain: clean');

-- ivfflat_on_small_table: IVFFlat built on an empty table.
SELECT memory.create_domain('ivf', 3);
CREATE INDEX ivf_lists ON memory_data.ivf_memories USING ivfflat (embedding vector_cosine_ops)
WITH (lists = 10);
SELECT is(pg_temp.sev('ivf', 'ivfflat_on_small_table'), 'warning', 'ivfflat_on_small_table: warning');
SELECT is(pg_temp.apply('ivf', 'ivfflat_on_small_table'), 1, 'ivfflat_on_small_table: fix applied');
SELECT is(pg_temp.problems('ivf'), '', 'ivfflat_on_small_table: clean (HNSW only)');

-- dimension_mismatch: the column says 4, the registry 3.
SELECT memory.create_domain('dim', 3);
ALTER TABLE memory_data.dim_memories ALTER COLUMN embedding TYPE vector(4);
SELECT is(pg_temp.sev('dim', 'dimension_mismatch'), 'error', 'dimension_mismatch (column): error');
ALTER TABLE memory_data.dim_memories ALTER COLUMN embedding TYPE vector(3);
SELECT is(pg_temp.problems('dim'), '', 'dimension_mismatch (column): clean when they agree');

-- dimension_mismatch by model: an untyped column where model m2 wrote 4-dimensional vectors.
DROP INDEX memory_data.dim_memories_hnsw;
ALTER TABLE memory_data.dim_memories ALTER COLUMN embedding TYPE vector;
INSERT INTO memory_data.dim_memories (content, embedding, embedding_model)
VALUES ('four', '[1,2,3,4]', 'm2'), ('three', '[1,2,3]', 'm1');
SELECT ok((SELECT detail LIKE '%''m2'' wrote 4-dimensional vectors%' AND detail NOT LIKE '%''m1''%'
    FROM memory.diagnose('dim') WHERE check_name = 'dimension_mismatch'),
    'dimension_mismatch (model): names the model whose vectors differ');
DELETE FROM memory_data.dim_memories WHERE content = 'four';
ALTER TABLE memory_data.dim_memories ALTER COLUMN embedding TYPE vector(3);
SELECT memory.create_hnsw_index('dim');
SELECT is(pg_temp.problems('dim'), '', 'dimension_mismatch (model): clean');

-- embedding_model_mismatch: rows embedded by another model than the domain's.
UPDATE memory_private.domains SET embedding_model = 'm1' WHERE domain = 'dim';
SELECT memory.store('dim', 'other model', embedding => '[1,1,1]');
UPDATE memory_data.dim_memories SET embedding_model = 'm9' WHERE content = 'other model';
SELECT is(pg_temp.sev('dim', 'embedding_model_mismatch'), 'warning', 'embedding_model_mismatch: warning');
UPDATE memory_data.dim_memories SET embedding_model = 'm1' WHERE content = 'other model';
SELECT is(pg_temp.problems('dim'), '', 'embedding_model_mismatch: clean');

-- table_missing: a registry row without its table.
INSERT INTO memory_private.domains (domain, table_name, dimension, distance)
VALUES ('ghost', 'ghost_memories', 3, 'cosine');
SELECT is(pg_temp.sev('ghost', 'table_missing'), 'error', 'table_missing: error');
DELETE FROM memory_private.domains WHERE domain = 'ghost';

-- stats_stale: analyzed with one row, then grown by ~200 pages.
SELECT memory.create_domain('stale', 3);
SELECT memory.store('stale', 'first', embedding => pg_temp.vec());
ANALYZE memory_data.stale_memories;
SELECT is(pg_temp.problems('stale'), '', 'stale: clean right after ANALYZE');
INSERT INTO memory_data.stale_memories (content, embedding)
SELECT left(repeat(md5(g::text), 60), 1800), pg_temp.vec() FROM generate_series(1, 800) AS g;
SELECT is(pg_temp.sev('stale', 'stats_stale'), 'warning', 'stats_stale: warning');
SELECT is(pg_temp.apply('stale', 'stats_stale'), 1, 'stats_stale: fix (ANALYZE) applied');
SELECT is(pg_temp.problems('stale'), '', 'stats_stale: clean after the fix');

-- stats_missing, explain_search and hnsw_exceeds_shared_buffers on 10,000 rows.
SELECT memory.create_domain('big', 3);
INSERT INTO memory_data.big_memories (content, embedding)
SELECT 'row ' || g, pg_temp.vec() FROM generate_series(1, 10000) AS g;
SELECT is(pg_temp.sev('big', 'stats_missing'), 'warning', 'stats_missing: warning on 10,000 rows');
SELECT is(pg_temp.fix('big', 'stats_missing'), 'ANALYZE memory_data.big_memories;', 'stats_missing: fix_sql');
SELECT is(pg_temp.apply('big', 'stats_missing'), 1, 'stats_missing: fix applied');
SELECT is(pg_temp.problems('big'), '', 'stats_missing: clean after ANALYZE');
SELECT is((SELECT uses_index || ' ' || index_name FROM memory.explain_search('big')),
    'true big_memories_hnsw', 'explain_search: the HNSW index is used on 10,000 rows');
SELECT is((SELECT uses_index || ' ' || index_name FROM memory.explain_search('big', 200)),
    'true big_memories_hnsw', 'explain_search: also with k = 200 (ef_search raised)');
SELECT is(current_setting('hnsw.ef_search'), '40', 'explain_search puts ef_search back');
SELECT ok((SELECT jsonb_typeof(plan) = 'array' AND plan::text LIKE '%big_memories%'
    FROM memory.explain_search('big')), 'explain_search: plan is the JSON plan');
SET LOCAL pgmemo.hnsw_memory_budget = '64kB';
SELECT is(pg_temp.sev('big', 'hnsw_exceeds_shared_buffers'), 'warning', 'hnsw_exceeds_shared_buffers: warning');
SELECT is(pg_temp.fix('big', 'hnsw_exceeds_shared_buffers'), NULL,
    'hnsw_exceeds_shared_buffers: no fix_sql (server setting, restart)');
RESET pgmemo.hnsw_memory_budget;
SELECT is(pg_temp.sev('big', 'hnsw_exceeds_shared_buffers'), NULL,
    'hnsw_exceeds_shared_buffers: clean against shared_buffers');

-- pgvector_too_old: by version.
SELECT is((SELECT severity FROM memory_private._check_pgvector(ARRAY[0, 4, 4])), 'error',
    'pgvector_too_old: 0.4.4 (no HNSW) is an error');
SELECT is((SELECT severity FROM memory_private._check_pgvector(ARRAY[0, 7, 4])), 'warning',
    'pgvector_too_old: 0.7.4 (no iterative scans) is a warning');
SELECT is((SELECT count(*) FROM memory.diagnose() WHERE check_name = 'pgvector_too_old'), 0::bigint,
    'pgvector_too_old: clean on the installed version');

SELECT * FROM finish();
ROLLBACK;
