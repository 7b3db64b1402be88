-- The embedding queue: workers claim jobs (FOR UPDATE SKIP LOCKED, with a lease), complete or
-- fail them; maintenance releases expired leases and sweeps rows the triggers never saw.
-- Every entry point is a plain SQL call, so pg_cron (or any scheduler) can drive it.
--
-- Tunables (custom settings, e.g. ALTER DATABASE ... SET pgmemo.max_attempts = 8):
--   pgmemo.max_attempts        failures before a job is dead (default 5)
--   pgmemo.retry_base_seconds  first backoff; doubles per attempt, with jitter (default 10)
--   pgmemo.retry_max_seconds   backoff ceiling (default 3600)

CREATE OR REPLACE FUNCTION memory_private._setting(name text, fallback numeric)
RETURNS numeric
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce(nullif(current_setting(name, true), '')::numeric, fallback)
$$;

-- Backoff before the next try of a job that has failed `attempts` times: exponential, capped,
-- with +-50% jitter so a burst of failures does not come back as a burst.
CREATE OR REPLACE FUNCTION memory_private._backoff(attempts integer)
RETURNS interval
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT make_interval(secs => least(
        memory_private._setting('pgmemo.retry_base_seconds', 10) * power(2, greatest(attempts - 1, 0)),
        memory_private._setting('pgmemo.retry_max_seconds', 3600)
    )::double precision * (0.5 + random()))
$$;

-- Record failures, one error per job: back off, or mark dead after pgmemo.max_attempts.
-- Only claimed jobs count (re-checked under the row lock): a late failure for a job whose lease
-- was already released, that a newer claim holds (its id changed), or that is dead, does
-- nothing. content_md5 is kept, so a late completion of the same content can still be written.
-- The jobs of job_ids that are claimed, locked in job order, skipping any another transaction
-- holds (a writer's trigger setting it back to pending, a completion, a sweep): a statement that
-- changes claimed jobs after the rows' writers must never wait for one (waiting deadlocked with a
-- writer changing two of a batch's rows; stop 36's review). The one place of that rule:
-- _fail_each, release_claims, extend_claims.
CREATE OR REPLACE FUNCTION memory_private._lock_claimed(job_ids bigint[])
RETURNS SETOF bigint
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT l.job_id FROM memory_private.embedding_queue AS l
    WHERE l.job_id = ANY (job_ids) AND l.status = 'claimed'
    ORDER BY l.job_id
    FOR UPDATE SKIP LOCKED
$$;

CREATE OR REPLACE FUNCTION memory_private._fail_each(job_ids bigint[], errors text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_max integer := memory_private._setting('pgmemo.max_attempts', 5)::integer;
    v_count integer;
BEGIN
    UPDATE memory_private.embedding_queue AS q
    SET attempts = q.attempts + 1,
        status = CASE WHEN q.attempts + 1 >= v_max THEN 'dead' ELSE 'pending' END,
        run_after = now() + memory_private._backoff(q.attempts + 1),
        last_error = left(coalesce(f.error, 'unknown error'), 2000),
        claimed_by = NULL, claimed_at = NULL, lease_until = NULL,
        updated_at = now()
    FROM unnest(job_ids, errors) AS f (job_id, error)
    WHERE q.job_id = f.job_id AND q.job_id IN (SELECT memory_private._lock_claimed(job_ids));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._fail_jobs(job_ids bigint[], error text)
RETURNS integer
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT memory_private._fail_each(job_ids,
        array_fill(error, ARRAY[coalesce(cardinality(job_ids), 0)]))
$$;

CREATE OR REPLACE FUNCTION memory.release_expired_claims()
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    -- Lock the expired claims (skipping any a worker is completing or extending right now) so
    -- two sweeps, or a sweep and a fresh claim, never both act on one job.
    SELECT array_agg(e.job_id) INTO v_ids
    FROM (
        SELECT q.job_id FROM memory_private.embedding_queue AS q
        WHERE q.status = 'claimed' AND q.lease_until < now()
        FOR UPDATE SKIP LOCKED
    ) AS e;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    -- A worker that died mid-batch counts as a failed attempt, so a row that kills workers
    -- ends dead instead of looping forever.
    RETURN memory_private._fail_jobs(v_ids, 'lease expired: the worker holding the claim stopped '
        || 'before completing it');
END;
$$;

COMMENT ON FUNCTION memory.release_expired_claims() IS
'Give back jobs whose lease expired (their worker died or hung): each counts as a failed attempt '
'with backoff, and becomes dead after the retry limit. Returns the number of jobs released.';

CREATE OR REPLACE FUNCTION memory.fail_embedding_jobs(job_ids bigint[], error text)
RETURNS integer
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT memory_private._fail_jobs(memory_private._writable_jobs(job_ids), error)
$$;

COMMENT ON FUNCTION memory.fail_embedding_jobs(bigint[], text) IS
'Record a failed attempt for these jobs with its error: exponential backoff with jitter '
'(pgmemo.retry_base_seconds, pgmemo.retry_max_seconds), dead after pgmemo.max_attempts (default 5). '
'Dead jobs are kept with last_error and come back with requeue_dead. Only jobs still claimed '
'under these ids, of domains the caller may write, count (at most 100,000 ids); one another '
'transaction is changing right now (its row''s writer) is left to it. Returns jobs touched.';

CREATE OR REPLACE FUNCTION memory.release_claims(job_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids bigint[];
    v_count integer;
BEGIN
    -- (the ids checked first, bound included, whatever the queue holds)
    v_ids := memory_private._writable_jobs(job_ids);
    UPDATE memory_private.embedding_queue AS q
    SET status = 'pending', run_after = now(), claimed_by = NULL, claimed_at = NULL,
        lease_until = NULL, updated_at = now()
    WHERE q.job_id IN (SELECT memory_private._lock_claimed(v_ids));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', '');
    END IF;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.release_claims(bigint[]) IS
'Give claimed jobs back to the queue at once, without counting an attempt (a worker shutting '
'down before it embedded them). Jobs of domains the caller may not write, and one another '
'transaction is changing right now, are not touched; at most 100,000 ids. Returns the number '
'of jobs released.';

CREATE OR REPLACE FUNCTION memory.queue_counts(domain text DEFAULT NULL)
RETURNS TABLE (ready bigint, waiting bigint, claimed bigint, dead bigint)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF queue_counts.domain IS NOT NULL THEN
        PERFORM memory_private._domain_for(queue_counts.domain, 'read');
    END IF;
    RETURN QUERY
    SELECT
        count(*) FILTER (WHERE q.status = 'pending' AND q.run_after <= now()),
        count(*) FILTER (WHERE q.status = 'pending' AND q.run_after > now()),
        count(*) FILTER (WHERE q.status = 'claimed'),
        count(*) FILTER (WHERE q.status = 'dead')
    FROM memory_private.embedding_queue AS q
    WHERE queue_counts.domain IS NULL OR q.domain = queue_counts.domain;
END;
$$;

COMMENT ON FUNCTION memory.queue_counts(text) IS
'Jobs of one domain (or all) by state: ready to claim, waiting (backing off after a failure), '
'claimed by a worker, dead. One row; what `pgmemo backfill` shows its progress against.';

-- Queue the rows of one domain whose embedding is NULL and that have no job; returns how many.
CREATE OR REPLACE FUNCTION memory_private._enqueue_missing(d memory_private.domains)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids bigint[];
    v_count bigint;
BEGIN
    IF d.distributed THEN
        RETURN memory_private._dist_enqueue_missing(d);
    END IF;
    EXECUTE format($sql$
        WITH added AS (
            INSERT INTO memory_private.embedding_queue (domain, row_id)
            SELECT $1, t.%2$I::text FROM %1$s AS t
            WHERE t.%3$I IS NULL
              -- Rows that have a job are not inserted at all: no wait on a job another
              -- transaction is changing (a claim, a sweep, a writer's trigger).
              AND NOT EXISTS (
                  SELECT FROM memory_private.embedding_queue AS j
                  WHERE j.domain = $1 AND j.row_id = t.%2$I::text)
            -- nor a row a writer holds: its trigger queues it, and the insert would wait for
            -- that writer's job while run_maintenance holds the jobs it released, which the
            -- writer may wait for next (a deadlock; stop 36's review)
            FOR SHARE OF t SKIP LOCKED
            ON CONFLICT (domain, row_id) DO NOTHING
            RETURNING job_id
        )
        SELECT array_agg(job_id) FROM added
    $sql$, memory_private._relation(d), d.id_column, d.embedding_column)
    INTO v_ids USING d.domain;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    -- The INSERT read the table under its snapshot: a worker that completed a row meanwhile
    -- (embedding written, job deleted) looks unembedded to it and got a new job. This
    -- statement has a fresh snapshot: drop those jobs again.
    EXECUTE format($sql$
        DELETE FROM memory_private.embedding_queue AS q
        USING %1$s AS t
        WHERE q.job_id = ANY ($1) AND t.%2$I = q.row_id::%3$s AND t.%4$I IS NOT NULL
    $sql$, memory_private._relation(d), d.id_column, memory_private._id_type(d),
        d.embedding_column)
    USING v_ids;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN cardinality(v_ids) - v_count;
END;
$$;

-- Every domain: one whose table is dropped meanwhile (drop_domain commits while this runs) is
-- skipped (skipped: {domain: error}), the others are served.
CREATE OR REPLACE FUNCTION memory_private._enqueue_missing_all(OUT total bigint, OUT skipped jsonb)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
BEGIN
    total := 0;
    skipped := '{}';
    FOR v_d IN SELECT d.* FROM memory_private.domains AS d ORDER BY d.domain LOOP
        -- Citus: the sweep goes on when a worker holding a domain's shards does not answer.
        IF v_d.distributed AND EXISTS (SELECT FROM memory_private._unreachable_nodes(v_d)) THEN
            skipped := skipped || jsonb_build_object(v_d.domain,
                'a worker holding its shards does not answer (see memory.diagnose)');
            CONTINUE;
        END IF;
        -- an adopted table dropped (DROP TABLE ... CASCADE takes the domain's view with it):
        -- its registry row stays until drop_domain
        IF v_d.adopted AND memory_private._qualified(v_d.source_table) IS NULL THEN
            skipped := skipped || jsonb_build_object(v_d.domain,
                'its table was dropped (memory.drop_domain releases the domain)');
            CONTINUE;
        END IF;
        -- Reads the domain's table: an adopted one that would run another role's code is
        -- skipped (diagnose reports it), so one such table cannot stop run_maintenance for
        -- every domain.
        IF NOT memory_private._readable(v_d) THEN
            skipped := skipped || jsonb_build_object(v_d.domain,
                'its table would run code another role controls (see memory.diagnose)');
            CONTINUE;
        END IF;
        BEGIN
            total := total + memory_private._enqueue_missing_notify(ARRAY[v_d]);
        EXCEPTION WHEN undefined_table OR undefined_column THEN
            skipped := skipped || jsonb_build_object(v_d.domain, SQLERRM);
        END;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION memory.enqueue_missing(domain text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_all record;
BEGIN
    IF domain IS NOT NULL THEN
        RETURN memory_private._enqueue_missing_notify(
            ARRAY[memory_private._domain_for(domain, 'read')]);
    END IF;
    v_all := memory_private._enqueue_missing_all();
    IF v_all.skipped <> '{}' THEN
        RAISE WARNING 'domains skipped: %', v_all.skipped;
    END IF;
    RETURN v_all.total;
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._enqueue_missing_notify(ds memory_private.domains[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_count bigint;
    v_total bigint := 0;
BEGIN
    FOREACH v_d IN ARRAY ds LOOP
        v_count := memory_private._enqueue_missing(v_d);
        IF v_count > 0 THEN
            PERFORM pg_notify('memory_embedding_queue', v_d.domain);
        END IF;
        v_total := v_total + v_count;
    END LOOP;
    RETURN v_total;
END;
$$;

COMMENT ON FUNCTION memory.enqueue_missing(text) IS
'Backfill: queue every row (of one domain, or all) whose embedding is NULL and that has no job '
'(rows loaded with triggers disabled, restored from a dump, or there before pgmemo). '
'Returns the number of jobs added.';

CREATE OR REPLACE FUNCTION memory.requeue_dead(domain text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF domain IS NOT NULL THEN
        PERFORM memory_private._domain(domain);
    END IF;
    -- (skipping a job another transaction holds, as _lock_claimed does: a writer's trigger
    -- gives it fresh attempts anyway)
    UPDATE memory_private.embedding_queue AS q
    SET status = 'pending', attempts = 0, run_after = now(), updated_at = now()
    WHERE q.job_id IN (
        SELECT l.job_id FROM memory_private.embedding_queue AS l
        WHERE l.status = 'dead' AND (requeue_dead.domain IS NULL OR l.domain = requeue_dead.domain)
        ORDER BY l.job_id
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', coalesce(domain, ''));
    END IF;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.requeue_dead(text) IS
'Give dead jobs (of one domain, or all) a fresh set of attempts; last_error is kept until the '
'next failure. Returns the number of jobs re-queued.';

CREATE OR REPLACE FUNCTION memory.worker_heartbeat(
    worker text, jobs_done bigint DEFAULT 0, jobs_failed bigint DEFAULT 0, info jsonb DEFAULT '{}'
)
RETURNS void
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    -- bounded: a worker's name and info are kept per worker (the merged info too)
    SELECT memory_private._check_bytes('worker', octet_length(worker), 1024);
    SELECT memory_private._check_bytes('info', octet_length(info::text), 65536);
    INSERT INTO memory_private.workers AS w (worker, jobs_done, jobs_failed, info)
    VALUES (worker, coalesce(jobs_done, 0), coalesce(jobs_failed, 0), coalesce(info, '{}'))
    ON CONFLICT (worker) DO UPDATE
        SET last_seen = now(), stopped_at = NULL,
            jobs_done = w.jobs_done + excluded.jobs_done,
            jobs_failed = w.jobs_failed + excluded.jobs_failed,
            info = CASE WHEN octet_length((w.info || excluded.info)::text) > 65536 THEN excluded.info
                ELSE w.info || excluded.info END
$$;

COMMENT ON FUNCTION memory.worker_heartbeat(text, bigint, bigint, jsonb) IS
'Record that a worker is alive (and add to its done/failed counters). Workers call it every few '
'seconds; diagnostics treat a worker unseen for 2 minutes as gone.';

CREATE OR REPLACE FUNCTION memory.worker_stopped(worker text)
RETURNS void
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    UPDATE memory_private.workers AS w SET stopped_at = now(), last_seen = now()
    WHERE w.worker = worker_stopped.worker
$$;

COMMENT ON FUNCTION memory.worker_stopped(text) IS
'Record that a worker shut down cleanly.';

CREATE OR REPLACE VIEW memory.workers AS
SELECT
    w.worker,
    w.started_at,
    w.last_seen,
    w.stopped_at,
    w.jobs_done,
    w.jobs_failed,
    w.info,
    w.stopped_at IS NULL AND w.last_seen > now() - interval '2 minutes' AS alive
FROM memory_private.workers AS w;

COMMENT ON VIEW memory.workers IS
'Embedding workers by heartbeat: alive when seen in the last 2 minutes and not stopped.';

CREATE OR REPLACE FUNCTION memory.run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_released bigint;
    v_enqueued record;
    v_purged bigint;
    v_text_stats integer;
    v_fills record;
    v_wired record;
    v_grants bigint;
BEGIN
    -- One run at a time (every worker runs it): a second caller returns at once.
    IF NOT pg_try_advisory_xact_lock(hashtext('pgmemo.maintenance')) THEN
        RETURN jsonb_build_object('released_claims', 0, 'enqueued_missing', 0,
            'skipped_domains', '{}'::jsonb, 'purged_workers', 0, 'ran_at', now(),
            'busy', 'another run_maintenance is running');
    END IF;
    -- Nor during a migrate (it makes again the functions the rewiring below makes): the next
    -- run does it. (Tried, not waited for: a migrate may itself wait for a long DDL.)
    IF NOT memory_private._lock_ddl(wait => false) THEN
        RETURN jsonb_build_object('released_claims', 0, 'enqueued_missing', 0,
            'skipped_domains', '{}'::jsonb, 'purged_workers', 0, 'ran_at', now(),
            'busy', 'a migrate is running');
    END IF;
    v_released := memory.release_expired_claims();
    v_enqueued := memory_private._enqueue_missing_all();
    v_text_stats := memory.refresh_text_stats();
    -- (after the full reads above: CREATE TRIGGER keeps a partition's writers waiting until
    -- this transaction ends; before the text fill, which then adds the rows of a relation just
    -- wired in this run, at most the fill's 50,000 rows in all)
    v_wired := memory_private._wire_missing_all();
    v_fills := memory_private._text_index_fill_all(50000);
    DELETE FROM memory_private.workers AS w
    WHERE w.last_seen < now() - interval '7 days';
    GET DIAGNOSTICS v_purged = ROW_COUNT;
    v_grants := memory_private._forget_dropped_role_grants();
    RETURN jsonb_build_object(
        'released_claims', v_released,
        'enqueued_missing', v_enqueued.total,
        'skipped_domains', v_enqueued.skipped,
        'purged_workers', v_purged,
        'text_stats_refreshed', v_text_stats,
        'text_sizes_filled', v_fills.sizes,
        'text_rows_filled', v_fills.text_rows,
        'domains_rewired', v_wired.domains,
        'relations_rewired', v_wired.relations,
        'dropped_role_grants', v_grants,
        'ran_at', now());
END;
$$;

COMMENT ON FUNCTION memory.run_maintenance() IS
'The one entry point for pg_cron: release expired claims, queue rows missing an embedding and '
'no job, forget workers unseen for 7 days, refresh the text-search statistics of domains that '
'changed by more than 10% (memory.refresh_text_stats), fill up to 50,000 content sizes of '
'adopted domains'' text indexes made by schema 0024 (text_sizes_filled) and up to 50,000 rows of '
'text indexes adopted without indexes (text_rows_filled, memory.fill_text_index), both without '
'blocking the tables'' writers, and put pgmemo''s triggers on partitions and inheritance children '
'of adopted tables attached since (domains_rewired: the domains; relations_rewired: the '
'relations whose rows, held when attached, are then added to the text index by that same fill, '
'only those it lacks; their rows without an embedding are queued by the sweep above), and delete '
'the per-domain grants of dropped roles (dropped_role_grants; they already counted nowhere). '
'Returns what it did as JSON; '
'skipped_domains names the domains whose table could not be read (dropped meanwhile) with the '
'error. One run at a time, and none during a migrate: the caller returns at once with busy.';

CREATE OR REPLACE FUNCTION memory.schedule_maintenance(schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_job bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database, so maintenance cannot be scheduled'
            USING ERRCODE = '0A000',
                  HINT = 'Install pg_cron (CREATE EXTENSION pg_cron) or call '
                      || 'SELECT memory.run_maintenance(); every minute from any scheduler; '
                      || '`pgmemo worker` also runs it.';
    END IF;
    EXECUTE $sql$SELECT cron.schedule($1, $2, $3)$sql$
    INTO v_job USING 'pgmemo-maintenance', schedule, 'SELECT memory.run_maintenance()';
    RETURN v_job;
END;
$$;

COMMENT ON FUNCTION memory.schedule_maintenance(text) IS
'Register memory.run_maintenance() with pg_cron under the job name pgmemo-maintenance '
'(re-scheduling replaces it). Error 0A000 when pg_cron is not installed.';
