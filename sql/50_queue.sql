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

-- Record failures: back off, or mark dead after pgmemo.max_attempts. Returns jobs touched.
CREATE OR REPLACE FUNCTION memory_private._fail_jobs(job_ids bigint[], error text)
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
        last_error = left(coalesce(error, 'unknown error'), 2000),
        claimed_by = NULL, claimed_at = NULL, lease_until = NULL, content_md5 = NULL,
        updated_at = now()
    -- Only claimed jobs (re-checked under the row lock): a late failure for a job whose lease
    -- was already released, or that is dead, does not count twice.
    WHERE q.job_id = ANY (job_ids) AND q.status = 'claimed';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE FUNCTION memory.release_expired_claims()
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    -- Lock the expired claims (skipping any a worker is completing right now) so two sweeps, or
    -- a sweep and a fresh claim, never both act on one job.
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

CREATE OR REPLACE FUNCTION memory.claim_embedding_jobs(
    batch_size integer DEFAULT 32,
    worker text DEFAULT NULL,
    lease interval DEFAULT '5 minutes',
    only_domain text DEFAULT NULL
)
RETURNS TABLE (
    job_id bigint, domain text, row_id text, content text, dimension integer,
    embedding_model text
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_job record;
    v_d memory_private.domains;
    v_content text;
    v_has_embedding boolean;
    v_allowed text[];
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 10000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 10000, got %',
            coalesce(batch_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF lease IS NULL OR lease <= interval '0' THEN
        RAISE EXCEPTION 'lease must be a positive interval' USING ERRCODE = '22023';
    END IF;
    IF only_domain IS NOT NULL THEN
        PERFORM memory_private._domain_for(only_domain, 'claim');
    END IF;
    -- Only the domains this worker may read and write (memory.grant_domain).
    v_allowed := ARRAY(SELECT d.domain FROM memory_private.domains AS d
        WHERE memory_private._can(d.domain, 'read') AND memory_private._can(d.domain, 'write')
          AND memory_private._readable(d));
    PERFORM memory.release_expired_claims();

    FOR v_job IN
        WITH picked AS (
            SELECT q.job_id FROM memory_private.embedding_queue AS q
            WHERE q.status = 'pending' AND q.run_after <= now()
              AND (only_domain IS NULL OR q.domain = only_domain)
              AND q.domain = ANY (v_allowed)
              -- A re-embed's shadow jobs need the new model: only a worker that names the
              -- shadow domain takes them.
              AND (only_domain IS NOT NULL OR NOT EXISTS (
                  SELECT FROM memory_private.reembeds AS r WHERE r.shadow_domain = q.domain))
            ORDER BY q.run_after, q.job_id
            LIMIT batch_size
            FOR UPDATE SKIP LOCKED
        )
        UPDATE memory_private.embedding_queue AS q
        SET status = 'claimed', claimed_by = coalesce(worker, 'anonymous'), claimed_at = now(),
            lease_until = now() + lease, updated_at = now()
        FROM picked
        WHERE q.job_id = picked.job_id
        RETURNING q.job_id, q.domain, q.row_id
    LOOP
        IF v_d.domain IS DISTINCT FROM v_job.domain THEN
            v_d := memory_private._domain_for(v_job.domain, 'claim');
        END IF;
        EXECUTE format('SELECT t.content, t.embedding IS NOT NULL FROM %I.%I AS t WHERE t.id = $1',
            v_d.table_schema, v_d.table_name)
        INTO v_content, v_has_embedding USING v_job.row_id;
        IF v_content IS NULL OR v_has_embedding THEN
            -- The row is gone, or was embedded by someone else meanwhile: nothing to do.
            DELETE FROM memory_private.embedding_queue AS q WHERE q.job_id = v_job.job_id;
            CONTINUE;
        END IF;
        UPDATE memory_private.embedding_queue AS q SET content_md5 = md5(v_content)
        WHERE q.job_id = v_job.job_id;
        job_id := v_job.job_id;
        domain := v_job.domain;
        row_id := v_job.row_id;
        content := v_content;
        dimension := v_d.dimension;
        embedding_model := v_d.embedding_model;
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION memory.claim_embedding_jobs(integer, text, interval, text) IS
'Claim up to batch_size ready jobs (of only_domain, or any) for worker, leased for lease '
'(FOR UPDATE SKIP LOCKED: no two workers get one job). Returns each row''s content with the '
'domain''s dimension and model. Expired leases are released first. Complete with complete_embedding_jobs or '
'fail_embedding_jobs before the lease ends.';

CREATE OR REPLACE FUNCTION memory.complete_embedding_jobs(
    job_ids bigint[], embeddings vector[], embedding_model text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_item record;
    v_d memory_private.domains;
    v_done integer := 0;
    v_count integer;
    v_exists boolean;
BEGIN
    IF cardinality(job_ids) IS DISTINCT FROM cardinality(embeddings) THEN
        RAISE EXCEPTION 'job_ids has % elements, embeddings has %',
            coalesce(cardinality(job_ids), 0), coalesce(cardinality(embeddings), 0)
            USING ERRCODE = '2202E';
    END IF;
    FOR v_item IN
        SELECT q.job_id, q.domain, q.row_id, q.content_md5, u.embedding
        FROM unnest(job_ids, embeddings) AS u (job_id, embedding)
        JOIN memory_private.embedding_queue AS q ON q.job_id = u.job_id
        ORDER BY q.job_id
        FOR UPDATE OF q
    LOOP
        IF v_d.domain IS DISTINCT FROM v_item.domain THEN
            v_d := memory_private._domain(v_item.domain);
        END IF;
        BEGIN
            -- Checked per job: a domain the worker may no longer write, or an adopted table
            -- that would run another role's code, fails its jobs alone.
            PERFORM memory_private._domain_for(v_item.domain, 'write');
            IF v_item.embedding IS NULL THEN
                RAISE EXCEPTION 'no embedding given' USING ERRCODE = '22004';
            END IF;
            PERFORM memory_private._check_embedding(v_d, v_item.embedding);
            -- Write only if the content is still what the worker embedded.
            EXECUTE CASE WHEN v_d.distributed AND v_d.adopted
                -- Citus cannot write through the shadow view of a re-embed: its table directly
                THEN memory_private._dist_shadow_write_sql(v_d)
                ELSE format(
                    'UPDATE %I.%I AS t SET embedding = $1, embedding_model = $2 '
                    'WHERE t.id = $3 AND md5(t.content) = $4',
                    v_d.table_schema, v_d.table_name) END
            USING v_item.embedding, coalesce(embedding_model, v_d.embedding_model),
                v_item.row_id, v_item.content_md5;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            IF v_count > 0 THEN
                DELETE FROM memory_private.embedding_queue AS q WHERE q.job_id = v_item.job_id;
                v_done := v_done + 1;
                CONTINUE;
            END IF;
            EXECUTE format('SELECT EXISTS (SELECT FROM %I.%I AS t WHERE t.id = $1)',
                v_d.table_schema, v_d.table_name)
            INTO v_exists USING v_item.row_id;
            IF v_exists THEN
                -- Content changed while the job was in flight: embed the new content.
                UPDATE memory_private.embedding_queue AS q
                SET status = 'pending', run_after = now(), claimed_by = NULL, claimed_at = NULL,
                    lease_until = NULL, content_md5 = NULL, updated_at = now()
                WHERE q.job_id = v_item.job_id;
            ELSE
                DELETE FROM memory_private.embedding_queue AS q WHERE q.job_id = v_item.job_id;
            END IF;
        EXCEPTION WHEN data_exception OR null_value_not_allowed OR check_violation
            OR insufficient_privilege THEN
            -- A bad vector fails this job alone.
            PERFORM memory_private._fail_jobs(ARRAY[v_item.job_id], SQLERRM);
        END;
    END LOOP;
    RETURN v_done;
END;
$$;

COMMENT ON FUNCTION memory.complete_embedding_jobs(bigint[], vector[], text) IS
'Write the embeddings of claimed jobs (embeddings[i] belongs to job_ids[i]) and remove the jobs. '
'A row whose content changed since the claim is not written: its job goes back to pending. '
'A bad vector (wrong dimension, NULL) fails that job alone. embedding_model (default: the '
'domain''s) is stored with each embedding. Returns the number of embeddings written.';

CREATE OR REPLACE FUNCTION memory.fail_embedding_jobs(job_ids bigint[], error text)
RETURNS integer
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT memory_private._fail_jobs(job_ids, error)
$$;

COMMENT ON FUNCTION memory.fail_embedding_jobs(bigint[], text) IS
'Record a failed attempt for these jobs with its error: exponential backoff with jitter '
'(pgmemo.retry_base_seconds, pgmemo.retry_max_seconds), dead after pgmemo.max_attempts (default 5). '
'Dead jobs are kept with last_error and come back with requeue_dead. Returns jobs touched.';

CREATE OR REPLACE FUNCTION memory.release_claims(job_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE memory_private.embedding_queue AS q
    SET status = 'pending', run_after = now(), claimed_by = NULL, claimed_at = NULL,
        lease_until = NULL, content_md5 = NULL, updated_at = now()
    WHERE q.job_id = ANY (job_ids) AND q.status = 'claimed';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', '');
    END IF;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.release_claims(bigint[]) IS
'Give claimed jobs back to the queue at once, without counting an attempt (a worker shutting '
'down before it embedded them). Returns the number of jobs released.';

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

CREATE OR REPLACE FUNCTION memory.enqueue_missing(domain text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_count bigint;
    v_ids bigint[];
    v_total bigint := 0;
BEGIN
    IF domain IS NOT NULL THEN
        PERFORM memory_private._domain(domain);
    END IF;
    FOR v_d IN
        SELECT d.* FROM memory_private.domains AS d
        WHERE enqueue_missing.domain IS NULL OR d.domain = enqueue_missing.domain
        ORDER BY d.domain
    LOOP
        IF v_d.distributed THEN
            -- The sweep of every domain (run_maintenance) goes on when a Citus worker is down.
            IF enqueue_missing.domain IS NULL
                AND EXISTS (SELECT FROM memory_private._unreachable_nodes(v_d)) THEN
                RAISE WARNING 'enqueue_missing skips domain "%": a worker holding its shards does '
                    'not answer (see memory.diagnose)', v_d.domain;
                CONTINUE;
            END IF;
            v_total := v_total + memory_private._dist_enqueue_missing(v_d);
            CONTINUE;
        END IF;
        -- Reads the domain's table: an adopted one that would run another role's code is
        -- refused when named, skipped in the sweep over all (diagnose reports it), so one such
        -- table cannot stop run_maintenance for every domain.
        IF enqueue_missing.domain IS NULL THEN
            CONTINUE WHEN NOT memory_private._readable(v_d);
        ELSE
            v_d := memory_private._domain_for(v_d.domain, 'read');
        END IF;
        EXECUTE format(
            'WITH added AS ('
            '  INSERT INTO memory_private.embedding_queue (domain, row_id) '
            '  SELECT $1, t.id FROM %I.%I AS t WHERE t.embedding IS NULL '
            '  ON CONFLICT (domain, row_id) DO NOTHING RETURNING job_id'
            ') SELECT array_agg(job_id) FROM added',
            v_d.table_schema, v_d.table_name)
        INTO v_ids USING v_d.domain;
        CONTINUE WHEN v_ids IS NULL;
        -- The INSERT read the table under its snapshot: a worker that completed a row meanwhile
        -- (embedding written, job deleted) looks unembedded to it and got a new job. This
        -- statement has a fresh snapshot: drop those jobs again.
        EXECUTE format(
            'DELETE FROM memory_private.embedding_queue AS q USING %I.%I AS t '
            'WHERE q.job_id = ANY ($1) AND t.id = q.row_id AND t.embedding IS NOT NULL',
            v_d.table_schema, v_d.table_name)
        USING v_ids;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_total := v_total + cardinality(v_ids) - v_count;
    END LOOP;
    IF v_total > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', coalesce(domain, ''));
    END IF;
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
    UPDATE memory_private.embedding_queue AS q
    SET status = 'pending', attempts = 0, run_after = now(), updated_at = now()
    WHERE q.status = 'dead' AND (requeue_dead.domain IS NULL OR q.domain = requeue_dead.domain);
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
    INSERT INTO memory_private.workers AS w (worker, jobs_done, jobs_failed, info)
    VALUES (worker, coalesce(jobs_done, 0), coalesce(jobs_failed, 0), coalesce(info, '{}'))
    ON CONFLICT (worker) DO UPDATE
        SET last_seen = now(), stopped_at = NULL,
            jobs_done = w.jobs_done + excluded.jobs_done,
            jobs_failed = w.jobs_failed + excluded.jobs_failed,
            info = w.info || excluded.info
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
    v_released bigint := memory.release_expired_claims();
    v_enqueued bigint := memory.enqueue_missing();
    v_purged bigint;
    v_text_stats integer := memory.refresh_text_stats();
BEGIN
    DELETE FROM memory_private.workers AS w
    WHERE w.last_seen < now() - interval '7 days';
    GET DIAGNOSTICS v_purged = ROW_COUNT;
    RETURN jsonb_build_object(
        'released_claims', v_released,
        'enqueued_missing', v_enqueued,
        'purged_workers', v_purged,
        'text_stats_refreshed', v_text_stats,
        'ran_at', now());
END;
$$;

COMMENT ON FUNCTION memory.run_maintenance() IS
'The one entry point for pg_cron: release expired claims, queue rows missing an embedding and '
'no job, forget workers unseen for 7 days, refresh the text-search statistics of domains that '
'changed by more than 10% (memory.refresh_text_stats). Returns what it did as JSON.';

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
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
    INTO v_job USING 'pgmemo-maintenance', schedule, 'SELECT memory.run_maintenance()';
    RETURN v_job;
END;
$$;

COMMENT ON FUNCTION memory.schedule_maintenance(text) IS
'Register memory.run_maintenance() with pg_cron under the job name pgmemo-maintenance '
'(re-scheduling replaces it). Error 0A000 when pg_cron is not installed.';
