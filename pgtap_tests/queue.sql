-- The embedding queue in SQL: claim, complete (stale content refused, a bad vector fails alone),
-- fail (backoff, dead after the limit, error kept), requeue_dead, release_claims (no attempt),
-- release_expired_claims (an attempt), enqueue_missing, queue_counts, maintenance entry points.
BEGIN;
SELECT plan(45);

SET LOCAL pgmemo.retry_base_seconds = 0;  -- failed jobs are ready again at once
SET LOCAL pgmemo.max_attempts = 2;

SELECT memory.create_domain('q', 3, embedding_model => 'domain-model');
SELECT memory.create_domain('other', 3);

CREATE FUNCTION pg_temp.job(row_id text) RETURNS memory_private.embedding_queue LANGUAGE sql AS
$$ SELECT q.* FROM memory_private.embedding_queue AS q WHERE q.domain = 'q' AND q.row_id = job.row_id $$;

SELECT memory.store('q', 'alpha', id => 'a');
SELECT memory.store('q', 'beta', id => 'b');
SELECT memory.store('q', 'gamma', embedding => '[1,0,0]', id => 'c');
SELECT memory.store('other', 'elsewhere', id => 'o');

SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'q'), 2::bigint,
    'rows without an embedding are queued, the embedded one is not');
SELECT memory.update('q', 'b', content => 'beta 2');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'q'), 2::bigint,
    'a second change of a queued row adds no job');
SELECT results_eq($$ SELECT * FROM memory.queue_counts('q') $$,
    $$ VALUES (2::bigint, 0::bigint, 0::bigint, 0::bigint) $$, 'queue_counts: two ready');

-- claim
SELECT throws_ok($$ SELECT * FROM memory.claim_embedding_jobs(0) $$, '22023', NULL,
    'batch_size 0 refused');
SELECT throws_ok($$ SELECT * FROM memory.claim_embedding_jobs(1, lease => '0 seconds') $$, '22023',
    NULL, 'a zero lease refused');
SELECT throws_ok($$ SELECT * FROM memory.claim_embedding_jobs(1, only_domain => 'nope') $$, '42704',
    NULL, 'an unknown only_domain refused');
CREATE TEMP TABLE claimed AS
SELECT * FROM memory.claim_embedding_jobs(10, 'w1', '1 minute', only_domain => 'q');
SELECT results_eq($$ SELECT row_id, content, dimension, embedding_model FROM claimed ORDER BY row_id $$,
    $$ VALUES ('a', 'alpha', 3, 'domain-model'), ('b', 'beta 2', 3, 'domain-model') $$,
    'claim returns the content, dimension and model of the domain''s rows only');
SELECT is((pg_temp.job('a')).status, 'claimed', 'the job is claimed');
SELECT is((pg_temp.job('a')).claimed_by, 'w1', 'by the worker');
SELECT is((SELECT count(*) FROM memory.claim_embedding_jobs(10, 'w2', only_domain => 'q')), 0::bigint,
    'claimed jobs are not handed out twice');
SELECT results_eq($$ SELECT * FROM memory.queue_counts('q') $$,
    $$ VALUES (0::bigint, 0::bigint, 2::bigint, 0::bigint) $$, 'queue_counts: two claimed');

-- complete: b changes while in flight; a completes.
SELECT memory.update('q', 'b', content => 'beta 3');
SELECT is((pg_temp.job('b')).status, 'pending',
    'a content change puts the claimed job back to pending (the claim in flight is superseded)');
SELECT is(memory.complete_embedding_jobs(
        (SELECT array_agg(job_id ORDER BY row_id) FROM claimed),
        ARRAY['[0,1,0]', '[0,0,1]']::vector[], 'worker-model'),
    1, 'complete writes one embedding');
SELECT is((SELECT embedding::text FROM memory_data.q_memories WHERE id = 'a'), '[0,1,0]',
    'a has its vector');
SELECT is((SELECT embedding_model FROM memory_data.q_memories WHERE id = 'a'), 'worker-model',
    'with the model the worker passed');
SELECT ok(pg_temp.job('a') IS NULL, 'a''s job is gone');
SELECT ok((SELECT embedding IS NULL FROM memory_data.q_memories WHERE id = 'b'),
    'the stale vector of b was not written');
SELECT is((pg_temp.job('b')).status, 'pending', 'b is pending again');
SELECT is((pg_temp.job('b')).attempts, 0, 'without counting an attempt');

-- a bad vector fails its job alone
SELECT memory.store('q', 'delta', id => 'd');
DROP TABLE claimed;
CREATE TEMP TABLE claimed AS SELECT * FROM memory.claim_embedding_jobs(10, 'w1', only_domain => 'q');
SELECT is(memory.complete_embedding_jobs(
        (SELECT array_agg(job_id ORDER BY row_id) FROM claimed),
        ARRAY['[1,2]', '[1,1,1]']::vector[]),
    1, 'one good vector written, one of the wrong dimension refused');
SELECT is((SELECT embedding_model FROM memory_data.q_memories WHERE id = 'd'), 'domain-model',
    'no model given: the domain''s is recorded');
SELECT is((pg_temp.job('b')).attempts, 1, 'the bad vector counted an attempt');
SELECT matches((pg_temp.job('b')).last_error, 'has 2 dimensions, domain "q" expects 3',
    'with the reason');
SELECT throws_ok($$ SELECT memory.complete_embedding_jobs(ARRAY[1, 2]::bigint[], ARRAY['[1,1,1]']::vector[]) $$,
    '2202E', NULL, 'arrays of different lengths refused');

-- fail: backoff, then dead with the error kept
SELECT is(memory.fail_embedding_jobs(ARRAY[(pg_temp.job('b')).job_id], 'not claimed'), 0,
    'failing a job that is not claimed does nothing');
SELECT is((SELECT count(*) FROM memory.claim_embedding_jobs(5, 'w1', only_domain => 'q')), 1::bigint,
    'b is claimed again');
SELECT is(memory.fail_embedding_jobs(ARRAY[(pg_temp.job('b')).job_id], 'HTTP 400: input too long'), 1,
    'fail_embedding_jobs counts one job');
SELECT is((pg_temp.job('b')).status, 'dead', 'dead after pgmemo.max_attempts (2)');
SELECT is((pg_temp.job('b')).last_error, 'HTTP 400: input too long', 'the error stays visible');
SELECT results_eq($$ SELECT dead FROM memory.queue_counts('q') $$, $$ VALUES (1::bigint) $$,
    'queue_counts: one dead');
SELECT is((SELECT count(*) FROM memory.claim_embedding_jobs(5, 'w1', only_domain => 'q')), 0::bigint,
    'a dead job is not claimed');
SELECT is(memory.requeue_dead('q'), 1::bigint, 'requeue_dead brings it back');
SELECT ok((pg_temp.job('b')).status = 'pending' AND (pg_temp.job('b')).attempts = 0,
    'pending with a fresh set of attempts');
SELECT is((pg_temp.job('b')).last_error, 'HTTP 400: input too long', 'last_error kept until the next failure');

-- release_claims gives back without an attempt; release_expired_claims counts one
SELECT is((SELECT count(*) FROM memory.claim_embedding_jobs(5, 'w1', only_domain => 'q')), 1::bigint,
    'claimed once more');
SELECT is(memory.release_claims(ARRAY[(pg_temp.job('b')).job_id]), 1, 'release_claims gives it back');
SELECT ok((pg_temp.job('b')).status = 'pending' AND (pg_temp.job('b')).attempts = 0
    AND (pg_temp.job('b')).claimed_by IS NULL, 'pending, no attempt counted, no owner');
SELECT is((SELECT count(*) FROM memory.claim_embedding_jobs(5, 'w1', '1 second', only_domain => 'q')),
    1::bigint, 'claimed with a short lease');
UPDATE memory_private.embedding_queue SET lease_until = now() - interval '1 second'
WHERE domain = 'q' AND row_id = 'b';
SELECT is(memory.release_expired_claims(), 1::bigint, 'the expired lease is released');
SELECT ok((pg_temp.job('b')).status = 'pending' AND (pg_temp.job('b')).attempts = 1
    AND (pg_temp.job('b')).last_error LIKE 'lease expired%', 'as a failed attempt, with the reason');

-- enqueue_missing finds rows that have no job
DELETE FROM memory_private.embedding_queue;
SELECT is(memory.enqueue_missing('q'), 1::bigint, 'enqueue_missing(q) queues b again');
SELECT is(memory.enqueue_missing(), 1::bigint, 'enqueue_missing() queues the other domain''s row');
SELECT is(memory.enqueue_missing(), 0::bigint, 'and nothing twice');

-- maintenance entry points
SELECT ok(memory.run_maintenance() ?& ARRAY['released_claims', 'enqueued_missing', 'purged_workers'],
    'run_maintenance reports what it did');
SELECT throws_ok($$ SELECT memory.schedule_maintenance() $$, '0A000', NULL,
    'schedule_maintenance without pg_cron: a clear error');

SELECT * FROM finish();
ROLLBACK;
