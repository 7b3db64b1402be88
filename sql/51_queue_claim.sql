-- Claiming and completing embedding jobs, set-based: one statement per domain per batch for
-- the claim, a few for the completion (memory_private._claim_sql, _complete_sql: one template
-- each, filled from the domain's column mapping in the registry, the same for factory and
-- adopted domains).
--
-- Proof of a claim: every claim gives the job a new job_id (UPDATE ... SET job_id = DEFAULT),
-- and records the hash of the content it handed out. A completion writes only under the id it
-- was given, and only while the row still holds that content; a completion of an older claim
-- finds no job and writes nothing. The worker keeps the leases of its batches in hand alive
-- with memory.extend_claims.
--
-- Lock order, everywhere: the domain's table (taken by the statement before any row), then the
-- domain's rows (in id order), then the jobs. memory.update and the write triggers take the
-- same order (row, then the job the trigger queues); drop_domain takes the table first.
--
-- Dynamic SQL: each statement is one dollar-quoted template, identifiers through %I, values
-- through USING ($n). The optional model column's assignment is computed first, from its own
-- small template ('' when the mapping has none), and passed in through %s.

-- The domain's table (the relation its mapping names), schema-qualified; 42P01 when it is gone.
-- Every queue statement on a domain's table resolves it here: an adopted table is locked and
-- checked by memory_private._assert_inert first (for writing when for_write), so a queue
-- statement never runs code another role controls with pgmemo's rights.
CREATE OR REPLACE FUNCTION memory_private._relation(
    d memory_private.domains, for_write boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rel text := memory_private._qualified(d.source_table);
BEGIN
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', d.domain USING ERRCODE = '42P01';
    END IF;
    IF d.adopted THEN
        PERFORM memory_private._assert_inert(d.source_table, for_write);
    END IF;
    RETURN v_rel;
END;
$$;

-- The SQL type of a domain's id column (text for factory tables), to compare the queue's text
-- row_id with the column through its own index.
CREATE OR REPLACE FUNCTION memory_private._id_type(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((SELECT c.type_name FROM memory_private._column(d.source_table, d.id_column) AS c),
        'text')
$$;

-- The claim of one domain, one statement: lock up to $2 ready jobs (oldest first, skipping
-- locked ones), read their rows' content, renew each job's id (the proof the worker completes
-- with), record the content's hash and the lease; drop the jobs whose row is gone or already
-- embedded. The domain's table is locked (by the statement, before any job) ahead of the jobs:
-- the lock order of every queue statement is table, row, job.
-- $1 domain, $2 batch size, $3 worker, $4 lease.
CREATE OR REPLACE FUNCTION memory_private._claim_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT format($sql$
        WITH picked AS (
            SELECT q.job_id, q.row_id
            FROM memory_private.embedding_queue AS q
            WHERE q.domain = $1 AND q.status = 'pending' AND q.run_after <= now()
            ORDER BY q.run_after, q.job_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ),
        ready AS (
            SELECT p.job_id, t.%2$I::text AS content
            FROM picked AS p
            JOIN %1$s AS t ON t.%3$I = p.row_id::%4$s
            WHERE t.%5$I IS NULL
        ),
        claimed AS (
            UPDATE memory_private.embedding_queue AS q
            SET job_id = DEFAULT, status = 'claimed', claimed_by = $3, claimed_at = now(),
                lease_until = now() + $4, content_md5 = md5(r.content), updated_at = now()
            FROM ready AS r
            WHERE q.job_id = r.job_id
            RETURNING q.job_id, q.row_id, r.content
        ),
        gone AS (
            DELETE FROM memory_private.embedding_queue AS q
            USING picked AS p
            WHERE q.job_id = p.job_id
              AND NOT EXISTS (SELECT FROM ready AS r WHERE r.job_id = p.job_id)
        )
        SELECT c.job_id, c.row_id, c.content FROM claimed AS c
    $sql$,
        memory_private._qualified(d.source_table), d.content_column, d.id_column,
        memory_private._id_type(d), d.embedding_column)
$$;

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
    v_d memory_private.domains;
    v_left integer := batch_size;
    v_n integer;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 10000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 10000, got %',
            coalesce(batch_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    PERFORM memory_private._check_lease(lease);
    PERFORM memory_private._check_bytes('worker', octet_length(worker), 1024);
    IF only_domain IS NOT NULL THEN
        PERFORM memory_private._domain_for(only_domain, 'claim');
    END IF;
    PERFORM memory.release_expired_claims();

    -- Domains with ready jobs, the one with the oldest ready job first; one statement each.
    FOR v_d IN
        SELECT d.*
        FROM memory_private.domains AS d
        CROSS JOIN LATERAL (
            SELECT q.run_after, q.job_id FROM memory_private.embedding_queue AS q
            WHERE q.domain = d.domain AND q.status = 'pending' AND q.run_after <= now()
            ORDER BY q.run_after, q.job_id
            LIMIT 1
        ) AS oldest
        WHERE (only_domain IS NULL OR d.domain = only_domain)
          -- Only the domains this worker may read and write (memory.grant_domain).
          AND memory_private._can(d.domain, 'read') AND memory_private._can(d.domain, 'write')
          -- A re-embed's shadow jobs need the new model: only a worker that names the shadow
          -- domain takes them.
          AND (only_domain IS NOT NULL OR NOT EXISTS (
              SELECT FROM memory_private.reembeds AS r WHERE r.shadow_domain = d.domain))
        ORDER BY oldest.run_after, oldest.job_id
    LOOP
        -- An adopted table that would run another role's code is skipped (diagnose reports
        -- it): its jobs wait, the other domains are served.
        CONTINUE WHEN NOT memory_private._readable(v_d);
        BEGIN
            RETURN QUERY
            SELECT c.job_id, v_d.domain, c.row_id, c.content, v_d.dimension, v_d.embedding_model
            FROM memory_private._claim_rows(v_d, v_left, coalesce(worker, 'anonymous'), lease) AS c;
            GET DIAGNOSTICS v_n = ROW_COUNT;
        EXCEPTION WHEN undefined_table OR undefined_column THEN
            -- The domain was dropped (or its table altered) under us: its jobs wait, the other
            -- domains are served. memory.diagnose reports a domain without its table.
            RAISE WARNING 'domain "%" skipped: %', v_d.domain, SQLERRM;
            v_n := 0;
        END;
        v_left := v_left - v_n;
        EXIT WHEN v_left <= 0;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION memory.claim_embedding_jobs(integer, text, interval, text) IS
'Claim up to batch_size ready jobs (of only_domain, or any) for worker, leased for lease '
'(FOR UPDATE SKIP LOCKED: no two workers get one job). Returns each row''s content with the '
'domain''s dimension and model. Every claim gives the job a new job_id: complete with the ids '
'returned here (a completion for an older claim of the same job writes nothing). Expired '
'leases are released first. Complete with complete_embedding_jobs or fail_embedding_jobs '
'before the lease ends, or extend it with extend_claims.';

-- One domain's claim (memory_private._claim_sql), as rows.
CREATE OR REPLACE FUNCTION memory_private._claim_rows(
    d memory_private.domains, batch_size integer, worker text, lease interval
)
RETURNS TABLE (job_id bigint, row_id text, content text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_job record;
    v_content text;
    v_has_embedding boolean;
BEGIN
    IF NOT d.distributed THEN
        -- The domain's claim function (generated from _claim_sql by _wire: planned once per
        -- session), after the check of its table (42P01 when gone; an adopted one locked and
        -- checked).
        PERFORM memory_private._relation(d);
        RETURN QUERY EXECUTE format($sql$
            SELECT c.job_id, c.row_id, c.content FROM memory_private.%I($1, $2, $3, $4) AS c
        $sql$, memory_private._wire_name(d.domain, 'claim'))
        USING d.domain, batch_size, worker, lease;
        RETURN;
    END IF;
    -- Citus: a distributed table cannot join the coordinator's queue in one locking statement,
    -- so its rows are read one by one (router queries) after the claim. The table is locked
    -- first (ACCESS SHARE, what reading it takes anyway), so the lock order is the one of every
    -- queue statement: table, then jobs (drop_domain takes the table, then deletes the jobs).
    EXECUTE format($sql$
        LOCK TABLE %1$s IN ACCESS SHARE MODE
    $sql$, memory_private._relation(d));
    FOR v_job IN
        WITH picked AS (
            SELECT q.job_id FROM memory_private.embedding_queue AS q
            WHERE q.domain = d.domain AND q.status = 'pending' AND q.run_after <= now()
            ORDER BY q.run_after, q.job_id
            LIMIT batch_size
            FOR UPDATE SKIP LOCKED
        )
        UPDATE memory_private.embedding_queue AS q
        SET job_id = DEFAULT, status = 'claimed', claimed_by = worker, claimed_at = now(),
            lease_until = now() + lease, updated_at = now()
        FROM picked
        WHERE q.job_id = picked.job_id
        RETURNING q.job_id, q.row_id
    LOOP
        EXECUTE format($sql$
            SELECT t.%1$I::text, t.%2$I IS NOT NULL FROM %3$s AS t WHERE t.%4$I = $1::%5$s
        $sql$,
            d.content_column, d.embedding_column, memory_private._relation(d), d.id_column,
            memory_private._id_type(d))
        INTO v_content, v_has_embedding USING v_job.row_id;
        IF v_content IS NULL OR v_has_embedding THEN
            DELETE FROM memory_private.embedding_queue AS q WHERE q.job_id = v_job.job_id;
            CONTINUE;
        END IF;
        UPDATE memory_private.embedding_queue AS q SET content_md5 = md5(v_content)
        WHERE q.job_id = v_job.job_id;
        job_id := v_job.job_id;
        row_id := v_job.row_id;
        content := v_content;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- The completion of one job of a distributed domain (Citus: a router UPDATE of one row): $1
-- vector, $2 model, $3 id, $4 md5 of the content the claim handed out.
CREATE OR REPLACE FUNCTION memory_private._complete_one_sql(d memory_private.domains)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_model_set text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE format($f$, %I = $2$f$, d.model_column) END;
BEGIN
    RETURN format($sql$
        UPDATE %1$s AS t SET %2$I = $1%3$s WHERE t.%4$I = $3::%5$s AND md5(t.%6$I::text) = $4
    $sql$,
        memory_private._relation(d, true), d.embedding_column, v_model_set, d.id_column,
        memory_private._id_type(d), d.content_column);
END;
$$;

-- Bad vectors of a batch, found before anything is written (so a bad vector fails its job
-- alone without a subtransaction per job): NULL, the wrong dimension, or a value halfvec
-- cannot hold. Returns (job_id, error).
CREATE OR REPLACE FUNCTION memory_private._bad_vectors(
    d memory_private.domains, job_ids bigint[], embeddings vector[]
)
RETURNS TABLE (job_id bigint, error text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT u.job_id, CASE
        WHEN u.embedding IS NULL THEN 'no embedding given'
        WHEN cardinality(u.embedding::real[]) <> d.dimension THEN format(
            'embedding has %s dimensions, domain "%s" expects %s',
            cardinality(u.embedding::real[]), d.domain, d.dimension)
        ELSE 'embedding has a value outside the range of halfvec (+-65504)'
    END
    FROM unnest(job_ids, embeddings) AS u (job_id, embedding)
    WHERE u.embedding IS NULL
       OR cardinality(u.embedding::real[]) <> d.dimension
       -- (pgvector's functions are not on this function's search_path: as real[])
       OR (d.embedding_type = 'halfvec'
           AND EXISTS (SELECT FROM unnest(u.embedding::real[]) AS x (v) WHERE abs(x.v) > 65504))
$$;

-- The completion of one domain, one statement: for each job still holding the id given, lock
-- its row (in id order) when the row's content still hashes to what the claim handed out,
-- write the vector (and the model), and delete the job. Returns the ids of the jobs written
-- (an array).
-- Lock order: table, rows, jobs, as memory.update (whose trigger queues the row after locking
-- it). $1 job ids, $2 vectors, $3 domain, $4 model.
CREATE OR REPLACE FUNCTION memory_private._complete_sql(d memory_private.domains)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_model_set text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE format($f$, %I = $4$f$, d.model_column) END;
BEGIN
    RETURN format($sql$
        WITH todo AS (
            SELECT q.job_id, q.row_id, q.content_md5, u.embedding
            FROM unnest($1::bigint[], $2::%6$s[]) AS u (job_id, embedding)
            JOIN memory_private.embedding_queue AS q ON q.job_id = u.job_id
            WHERE q.domain = $3
        ),
        target AS (
            SELECT t.%3$I AS id, w.job_id, w.content_md5, w.embedding
            FROM todo AS w
            JOIN %1$s AS t ON t.%3$I = w.row_id::%4$s
            WHERE md5(t.%2$I::text) = w.content_md5
            ORDER BY t.%3$I
            FOR NO KEY UPDATE OF t
        ),
        written AS (
            UPDATE %1$s AS t SET %5$I = g.embedding%7$s
            FROM target AS g
            WHERE t.%3$I = g.id AND md5(t.%2$I::text) = g.content_md5
            RETURNING g.job_id
        ),
        done AS (
            DELETE FROM memory_private.embedding_queue AS q
            USING written AS w
            WHERE q.job_id = w.job_id
            RETURNING q.job_id
        )
        SELECT array_agg(done.job_id) FROM done
    $sql$,
        memory_private._qualified(d.source_table), d.content_column, d.id_column,
        memory_private._id_type(d), d.embedding_column,
        memory_private._vector_schema() || '.'
            || CASE WHEN d.embedding_type = 'halfvec' THEN 'halfvec' ELSE 'vector' END,
        v_model_set);
END;
$$;

-- Distributed domains (Citus): the completion one job at a time, in the same lock order (the
-- row, by its router UPDATE, then the job). Returns the ids of the jobs written.
CREATE OR REPLACE FUNCTION memory_private._complete_each(
    d memory_private.domains, job_ids bigint[], embeddings vector[], model text
)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_sql text := memory_private._complete_one_sql(d);
    v_item record;
    v_count integer;
    v_done bigint[] := ARRAY[]::bigint[];
BEGIN
    FOR v_item IN
        SELECT q.job_id, q.row_id, q.content_md5, u.embedding
        FROM unnest(job_ids, embeddings) AS u (job_id, embedding)
        JOIN memory_private.embedding_queue AS q ON q.job_id = u.job_id
        ORDER BY q.row_id
    LOOP
        EXECUTE v_sql USING v_item.embedding, model, v_item.row_id, v_item.content_md5;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        IF v_count > 0 THEN
            DELETE FROM memory_private.embedding_queue AS q WHERE q.job_id = v_item.job_id;
            v_done := v_done || v_item.job_id;
        END IF;
    END LOOP;
    RETURN v_done;
END;
$$;

CREATE OR REPLACE FUNCTION memory.complete_embedding_jobs(
    job_ids bigint[], embeddings vector[], embedding_model text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_ids bigint[];
    v_vecs embeddings%TYPE;
    v_bad bigint[];
    v_bad_vectors bigint[];
    v_errors text[];
    v_done bigint[];
    v_left bigint[];
    v_sql text;
    v_total integer := 0;
    v_i integer;
    v_one bigint[];
BEGIN
    IF cardinality(job_ids) IS DISTINCT FROM cardinality(embeddings) THEN
        RAISE EXCEPTION 'job_ids has % elements, embeddings has %',
            coalesce(cardinality(job_ids), 0), coalesce(cardinality(embeddings), 0)
            USING ERRCODE = '2202E';
    END IF;
    PERFORM memory_private._check_batch('job_ids', cardinality(job_ids));
    -- Jobs not found hold another claim now (or were completed, or their row deleted): their
    -- completion is superseded and writes nothing.
    FOR v_d IN
        SELECT d.* FROM memory_private.domains AS d
        WHERE d.domain IN (
            SELECT q.domain FROM memory_private.embedding_queue AS q WHERE q.job_id = ANY (job_ids))
        ORDER BY d.domain
    LOOP
        SELECT array_agg(u.job_id ORDER BY u.job_id), array_agg(u.embedding ORDER BY u.job_id)
        INTO v_ids, v_vecs
        FROM unnest(job_ids, embeddings) AS u (job_id, embedding)
        JOIN memory_private.embedding_queue AS q ON q.job_id = u.job_id
        WHERE q.domain = v_d.domain;
        CONTINUE WHEN v_ids IS NULL;

        -- Jobs of a domain the caller may not write are not touched (a caller must not fail, or
        -- write, jobs of a domain it cannot write by naming their ids). An adopted table that
        -- would run another role's code (memory_private._domain_for locks and checks it) fails
        -- its jobs alone, with the reason.
        CONTINUE WHEN NOT memory_private._can(v_d.domain, 'write');
        BEGIN
            PERFORM memory_private._domain_for(v_d.domain, 'write');
        EXCEPTION WHEN insufficient_privilege THEN
            PERFORM memory_private._fail_jobs(v_ids, SQLERRM);
            CONTINUE;
        WHEN undefined_object THEN
            CONTINUE;  -- dropped since the jobs were read: they went with it
        END;

        -- A bad vector fails its job once the good ones' rows are written: the lock order is
        -- rows, then jobs (failing it first held its job while the writes waited for a row a
        -- writer held, the writer waiting for that job: a deadlock; stop 36's review).
        SELECT array_agg(b.job_id), array_agg(b.error) INTO v_bad_vectors, v_errors
        FROM memory_private._bad_vectors(v_d, v_ids, v_vecs) AS b;
        v_bad := NULL;
        IF v_bad_vectors IS NOT NULL THEN
            SELECT array_agg(u.job_id ORDER BY u.job_id), array_agg(u.embedding ORDER BY u.job_id)
            INTO v_ids, v_vecs
            FROM unnest(v_ids, v_vecs) AS u (job_id, embedding)
            WHERE u.job_id <> ALL (v_bad_vectors);
            IF v_ids IS NULL THEN
                PERFORM memory_private._fail_each(v_bad_vectors, v_errors);
                CONTINUE;
            END IF;
        END IF;

        IF v_d.distributed THEN
            v_done := memory_private._complete_each(v_d, v_ids, v_vecs,
                coalesce(embedding_model, v_d.embedding_model));
            v_bad := NULL;
        ELSE
            -- The domain's completion function (generated from _complete_sql by _wire: planned
            -- once per session), after the check of its table.
            v_sql := format($sql$
                SELECT c.done FROM memory_private.%I($1, $2, $3, $4) AS c
            $sql$, memory_private._wire_name(v_d.domain, 'complete'));
            BEGIN
                PERFORM memory_private._relation(v_d, true);
                BEGIN
                    EXECUTE v_sql
                    INTO v_done USING v_ids, v_vecs, v_d.domain,
                        coalesce(embedding_model, v_d.embedding_model);
                EXCEPTION WHEN data_exception OR integrity_constraint_violation OR raise_exception THEN
                    -- Something the checks above cannot see (a constraint or trigger of an
                    -- adopted table): write the jobs one by one, each failing alone.
                    v_done := ARRAY[]::bigint[];
                    FOR v_i IN 1 .. cardinality(v_ids) LOOP
                        BEGIN
                            EXECUTE v_sql
                            INTO v_one USING ARRAY[v_ids[v_i]], ARRAY[v_vecs[v_i]], v_d.domain,
                                coalesce(embedding_model, v_d.embedding_model);
                            v_done := v_done || coalesce(v_one, ARRAY[]::bigint[]);
                        EXCEPTION WHEN data_exception OR integrity_constraint_violation
                            OR raise_exception THEN
                            PERFORM memory_private._fail_jobs(ARRAY[v_ids[v_i]], SQLERRM);
                            v_bad := coalesce(v_bad, ARRAY[]::bigint[]) || v_ids[v_i];
                        END;
                    END LOOP;
                END;
            EXCEPTION WHEN undefined_table OR undefined_function OR undefined_column THEN
                -- The domain dropped, or its re-embed cancelled or finished (a shadow domain),
                -- while this waited for its table: its jobs went with it, and the batch's other
                -- domains are written all the same (the whole completion failed, and a worker
                -- lost every vector of the batch; stop 37's review). Any other cause is raised.
                IF EXISTS (SELECT FROM memory_private.domains AS d
                           WHERE d.domain = v_d.domain AND d.source_table = v_d.source_table
                             AND d.embedding_column = v_d.embedding_column) THEN
                    RAISE;
                END IF;
                CONTINUE;
            END;
        END IF;
        v_total := v_total + coalesce(cardinality(v_done), 0);

        -- Not written (and not failed): the row is gone, or its content changed since this
        -- claim. A job still claimed with this id goes back to pending (the new content gets
        -- embedded, no attempt counted); one the sweep already released, or made dead, stays
        -- as it is.
        SELECT array_agg(u.job_id) INTO v_left
        FROM unnest(v_ids) AS u (job_id)
        WHERE u.job_id <> ALL (coalesce(v_done, ARRAY[]::bigint[]))
          AND u.job_id <> ALL (coalesce(v_bad, ARRAY[]::bigint[]));
        IF v_left IS NOT NULL THEN
            PERFORM memory_private._unclaim_stale(v_d, v_left);
        END IF;
        IF v_bad_vectors IS NOT NULL THEN
            PERFORM memory_private._fail_each(v_bad_vectors, v_errors);
        END IF;
    END LOOP;
    RETURN v_total;
END;
$$;

COMMENT ON FUNCTION memory.complete_embedding_jobs(bigint[], vector[], text) IS
'Write the embeddings of claimed jobs (embeddings[i] belongs to job_ids[i], the ids '
'claim_embedding_jobs returned) and remove the jobs, a few statements per domain. A vector is '
'written only while its job holds that claim (a newer claim renews the id: the older '
'completion writes nothing) and the row''s content is the content that claim handed out; a '
'row whose content changed goes back to pending. A bad vector (wrong dimension, NULL) fails '
'that job alone. embedding_model (default: the domain''s) is stored with each embedding. '
'Jobs of a domain the caller may not write are not touched; at most 100,000 jobs per call. '
'Returns the number of embeddings written.';

-- Jobs of a completion that wrote nothing: drop those whose row is gone; put back to pending
-- those still claimed under these ids (content changed in flight).
CREATE OR REPLACE FUNCTION memory_private._unclaim_stale(d memory_private.domains, job_ids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count integer;
    v_present text[];
BEGIN
    -- The rows that still exist (one read of the domain's table, no join with the queue: the
    -- same statement serves a Citus distributed table).
    EXECUTE format($sql$
        SELECT array_agg(t.%1$I::text) FROM %2$s AS t WHERE t.%1$I = ANY ($1::%3$s[])
    $sql$, d.id_column, memory_private._relation(d), memory_private._id_type(d))
    INTO v_present
    USING (SELECT array_agg(q.row_id) FROM memory_private.embedding_queue AS q
           WHERE q.job_id = ANY (job_ids));
    -- The completion holds row locks by now: it must not wait for a job. A job locked by
    -- someone else is skipped: a writer that changed or deleted its row (whose trigger sets it
    -- pending, or deletes it), or the lease sweep. (Waiting here deadlocked with a transaction
    -- that updates several rows: it held this job after editing its row, and waited for a row
    -- this completion had written.)
    WITH mine AS (
        SELECT q.job_id, q.row_id FROM memory_private.embedding_queue AS q
        WHERE q.job_id = ANY (job_ids) AND q.status = 'claimed'
        FOR UPDATE SKIP LOCKED
    ),
    gone AS (
        DELETE FROM memory_private.embedding_queue AS q
        USING mine AS m
        WHERE q.job_id = m.job_id AND m.row_id <> ALL (coalesce(v_present, ARRAY[]::text[]))
    )
    UPDATE memory_private.embedding_queue AS q
    SET status = 'pending', run_after = now(), claimed_by = NULL, claimed_at = NULL,
        lease_until = NULL, updated_at = now()
    FROM mine AS m
    WHERE q.job_id = m.job_id AND m.row_id = ANY (coalesce(v_present, ARRAY[]::text[]));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', d.domain);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.extend_claims(job_ids bigint[], lease interval DEFAULT '5 minutes')
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids bigint[];
    v_count integer;
BEGIN
    PERFORM memory_private._check_lease(lease);
    -- A job being completed right now (locked by its worker's completion) needs no extension:
    -- skip it rather than wait for it (_lock_claimed). Only jobs of domains the caller may
    -- write (memory_private._writable_jobs).
    v_ids := memory_private._writable_jobs(job_ids);  -- (checked first, bound included)
    UPDATE memory_private.embedding_queue AS q
    SET lease_until = greatest(q.lease_until, now() + lease)
    WHERE q.job_id IN (SELECT memory_private._lock_claimed(v_ids));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.extend_claims(bigint[], interval) IS
'The heartbeat of a batch in hand: push the lease of these claimed jobs to at least now() + '
'lease, so a provider call longer than the lease is not released and thrown away. Jobs '
'released meanwhile, or claimed again by someone else (their id changed), or of a domain the '
'caller may not write, are not touched. lease: at most 1 day; at most 100,000 job ids (54000). '
'Returns the number of leases extended.';
