-- Distributed domains on a Citus cluster: memory.distribute_domain, the queue hook the write
-- functions call instead of statement triggers, the settings pushed to the workers for a
-- search, the per-shard index checks behind memory.diagnose and memory.repair_shard_indexes.
--
-- On a server without Citus nothing here runs: every helper returns at once (the registry's
-- distributed flag is false for every domain), and distribute_domain refuses with 0A000.
--
-- What differs from a single-node domain (docs/SCALING.md says it for users):
-- * Citus runs no statement-level triggers with transition tables on distributed tables, and a
--   trigger on a shard cannot write the coordinator's queue. The BEFORE UPDATE row trigger (it
--   only touches NEW: a content change clears the stale embedding) stays, on every shard; the
--   queueing moves into the write functions (store, store_many, update, forget, import_rows,
--   the bulk load), which call memory_private._dist_sync_jobs in the same transaction. Writes
--   that bypass the API (plain INSERT/UPDATE on the table) are still never served stale vectors
--   (the shard trigger clears them) and are queued by memory.enqueue_missing, which
--   run_maintenance (pg_cron) and `pgmemo worker` run every minute.
-- * The queue stays one table on the coordinator: claims keep FOR UPDATE SKIP LOCKED there,
--   and every read of a row by id is a router query to one shard.

-- The Citus version installed in this database, or NULL.
CREATE OR REPLACE FUNCTION memory_private._citus_version()
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'citus'
$$;

-- Whether the domain's table is a Citus distributed table (from Citus's own metadata: a table
-- distributed by hand counts too).
CREATE OR REPLACE FUNCTION memory_private._is_distributed_table(rel regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    IF rel IS NULL OR memory_private._citus_version() IS NULL THEN
        RETURN false;
    END IF;
    -- pg_dist_partition exists only with Citus: the statement is compiled when it runs.
    EXECUTE $q$
        SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p
                       WHERE p.logicalrelid = $1 AND p.partmethod = 'h')
    $q$ INTO v_found USING rel;
    RETURN v_found;
END;
$$;

CREATE OR REPLACE FUNCTION memory.distribute_domain(domain text, shard_count integer DEFAULT 32)
RETURNS regclass
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_rel regclass := (memory_private._physical(v_d)).relation;
    v_shards integer;
    v_unsafe text;
BEGIN
    IF memory_private._citus_version() IS NULL THEN
        RAISE EXCEPTION 'memory.distribute_domain needs the Citus extension, which is not '
            'installed in this database'
            USING ERRCODE = '0A000',
                  HINT = 'Run pgmemo on a Citus coordinator (CREATE EXTENSION citus; with '
                      || 'shared_preload_libraries = ''citus''), see docs/SCALING.md. On one '
                      || 'server, a domain stays a plain table.';
    END IF;
    IF shard_count IS NULL OR shard_count < 1 OR shard_count > 4096 THEN
        RAISE EXCEPTION 'shard_count must be between 1 and 4096, got %',
            coalesce(shard_count::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF v_d.adopted THEN
        RAISE EXCEPTION 'domain "%" is an adopted table (or a re-embed shadow): distribute the '
            'application''s table with create_distributed_table yourself', v_d.domain
            USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT FROM memory_private.reembeds AS r WHERE r.domain = v_d.domain) THEN
        RAISE EXCEPTION 'a re-embed of domain "%" is in progress', v_d.domain
            USING ERRCODE = '0A000',
                  HINT = 'Finish or cancel it first (memory.finish_reembed / memory.cancel_reembed).';
    END IF;
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain USING ERRCODE = '42P01';
    END IF;
    PERFORM memory_private._lock_ddl(v_d.domain);

    -- The statement triggers (transition tables) cannot run on shards; the write functions
    -- queue rows instead (memory_private._dist_sync_jobs). The BEFORE UPDATE row trigger (the
    -- stale rule's row form) is safe on shards (it changes NEW only) and keeps a stale embedding from
    -- ever being served, also for writes that bypass pgmemo's functions. Citus refuses trigger
    -- DDL on distributed tables unless citus.enable_unsafe_triggers is on (for this call only).
    -- The row trigger first (its function is made before any statement on a distributed table
    -- in this transaction: Citus refuses function DDL after a parallel operation).
    v_d.distributed := true;
    PERFORM memory_private._wire(v_d);
    v_unsafe := current_setting('citus.enable_unsafe_triggers', true);
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    EXECUTE format($sql$DROP TRIGGER IF EXISTS %I ON %s$sql$,
        memory_private._wire_name(v_d.domain, 'enqueue_insert'), v_rel);
    EXECUTE format($sql$DROP TRIGGER IF EXISTS %I ON %s$sql$,
        memory_private._wire_name(v_d.domain, 'enqueue_update'), v_rel);
    EXECUTE format($sql$DROP TRIGGER IF EXISTS %I ON %s$sql$,
        memory_private._wire_name(v_d.domain, 'dequeue_delete'), v_rel);
    EXECUTE format($sql$DROP TRIGGER IF EXISTS %I ON %s$sql$,
        memory_private._wire_name(v_d.domain, 'unstale_update'), v_rel);
    IF memory_private._is_distributed_table(v_rel) THEN
        -- Distributed already (by an earlier call, or by hand): take it over.
        EXECUTE $sql$SELECT count(*) FROM pg_catalog.pg_dist_shard AS s WHERE s.logicalrelid = $1$sql$
        INTO v_shards USING v_rel;
        IF v_shards <> shard_count THEN
            RAISE NOTICE 'domain "%" is already distributed over % shards (asked: %); '
                'change it with alter_distributed_table(%L, shard_count => %s)',
                v_d.domain, v_shards, shard_count, v_rel::text, shard_count;
        END IF;
    ELSE
        EXECUTE $q$ SELECT create_distributed_table($1, 'id', shard_count => $2) $q$
        USING v_rel, shard_count;
        -- The rows now live in the shards; the coordinator's copy is dead weight.
        EXECUTE $sql$SELECT truncate_local_data_after_distributing_table($1)$sql$ USING v_rel;
    END IF;
    PERFORM set_config('citus.enable_unsafe_triggers', coalesce(v_unsafe, 'off'), true);
    UPDATE memory_private.domains AS d SET distributed = true WHERE d.domain = v_d.domain;
    -- Rows queued before are still queued (the queue is keyed by domain and id); rows that had
    -- neither an embedding nor a job get one now.
    PERFORM memory.enqueue_missing(v_d.domain);
    RETURN v_rel;
END;
$$;

COMMENT ON FUNCTION memory.distribute_domain(text, integer) IS
'Distribute a domain''s table over the Citus cluster by id (create_distributed_table with '
'shard_count shards, 1..4096; each shard gets its own HNSW, GIN and btree indexes) and move its '
'rows into the shards. Every memory.* function keeps working on it with the same guarantees; '
'rows are then queued by the write functions instead of statement triggers (docs/SCALING.md). '
'Idempotent. Run it on the coordinator. Error 0A000 without Citus, for adopted domains and '
'during a re-embed.';

-- The queue hook of a distributed domain: after a write function wrote the rows ids (in the
-- same transaction, so their row locks are held), queue those still without an embedding and
-- drop the unclaimed jobs of those that have one. reset => true resets a job's attempts (a
-- write, like the triggers); false leaves existing jobs alone (the backfill sweep). Claimed
-- jobs stay claimed: complete_embedding_jobs sees a changed content and re-queues. A re-embed's
-- shadow domain (a view over the same table) gets the same treatment. Returns the jobs added
-- or reset.
CREATE OR REPLACE FUNCTION memory_private._dist_sync_jobs(
    d memory_private.domains, ids text[], reset boolean DEFAULT TRUE
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_missing text[];
    v_embedded text[];
    v_count bigint;
BEGIN
    IF NOT d.distributed OR coalesce(cardinality(ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- One read of the rows (a router query per shard touched), then the coordinator's queue.
    EXECUTE format($q$
        SELECT array_agg(t.id) FILTER (WHERE t.embedding IS NULL),
            array_agg(t.id) FILTER (WHERE t.embedding IS NOT NULL)
        FROM %I.%I AS t WHERE t.id = ANY ($1)
    $q$, d.table_schema, d.table_name)
    INTO v_missing, v_embedded USING ids;
    IF reset THEN
        INSERT INTO memory_private.embedding_queue AS q (domain, row_id)
        SELECT d.domain, u.id FROM unnest(v_missing) AS u (id)
        ON CONFLICT (domain, row_id) DO UPDATE
            SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL,
                claimed_at = NULL, lease_until = NULL, updated_at = now();
    ELSE
        INSERT INTO memory_private.embedding_queue AS q (domain, row_id)
        SELECT d.domain, u.id FROM unnest(v_missing) AS u (id)
        ON CONFLICT (domain, row_id) DO NOTHING;
    END IF;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    DELETE FROM memory_private.embedding_queue AS q
    WHERE q.domain = d.domain AND q.row_id = ANY (v_embedded) AND q.status <> 'claimed';
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', d.domain);
    END IF;
    -- A re-embed in progress: its shadow domain (a view over this table) needs the rows too.
    RETURN v_count + coalesce((
        SELECT sum(memory_private._dist_sync_jobs(s, ids, reset))
        FROM memory_private.reembeds AS r
        JOIN memory_private.domains AS s ON s.domain = r.shadow_domain
        WHERE r.domain = d.domain AND s.distributed), 0);
END;
$$;

-- memory_private._adopt over a distributed table (the shadow domain of a re-embed): the BEFORE
-- UPDATE row trigger that clears the shadow embedding on a content change, on every shard; no
-- statement triggers (the base domain's write functions queue the shadow's jobs too).
CREATE OR REPLACE FUNCTION memory_private._dist_adopt_triggers(d memory_private.domains, opt name[])
RETURNS memory_private.domains
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    UPDATE memory_private.domains AS x SET distributed = true WHERE x.domain = d.domain
    RETURNING x.* INTO d;
    PERFORM memory_private._wire(d);  -- distributed: the row trigger only
    RETURN d;
END;
$$;

-- Rows deleted from a distributed domain: their jobs go.
CREATE OR REPLACE FUNCTION memory_private._dist_drop_jobs(d memory_private.domains, ids text[])
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF d.distributed THEN
        DELETE FROM memory_private.embedding_queue AS q
        WHERE q.row_id = ANY (ids) AND (q.domain = d.domain OR q.domain IN (
            SELECT r.shadow_domain FROM memory_private.reembeds AS r WHERE r.domain = d.domain));
    END IF;
END;
$$;

-- The next ids (in id order, after after_id; NULL: from the start) of a distributed domain's
-- rows without an embedding, at most batch of them: one fan-out, ORDER BY id LIMIT pushed to
-- every shard and served by its primary key. NULL when there are no more.
CREATE OR REPLACE FUNCTION memory_private._dist_unembedded_ids(
    d memory_private.domains, after_id text, batch integer
)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids text[];
BEGIN
    EXECUTE format($q$
        SELECT array_agg(s.id ORDER BY s.id) FROM (
            SELECT t.id FROM %I.%I AS t
            WHERE t.embedding IS NULL AND ($1::text IS NULL OR t.id > $1)
            ORDER BY t.id LIMIT $2) AS s
    $q$, d.table_schema, d.table_name)
    INTO v_ids USING after_id, batch;
    RETURN v_ids;
END;
$$;

-- memory.enqueue_missing for a distributed domain: keyset batches of ids without an embedding
-- (each batch one fan-out, ORDER BY id LIMIT pushed to every shard and served by its primary
-- key), queued without touching existing jobs; a row embedded between the read and the insert
-- loses its fresh job again (the re-read below). Returns the jobs added.
CREATE OR REPLACE FUNCTION memory_private._dist_enqueue_missing(
    d memory_private.domains, batch integer DEFAULT 5000
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids text[];
    v_last text := NULL;
    v_added bigint;
    v_total bigint := 0;
    v_gone bigint;
BEGIN
    LOOP
        v_ids := memory_private._dist_unembedded_ids(d, v_last, batch);
        EXIT WHEN v_ids IS NULL;
        v_last := v_ids[cardinality(v_ids)];
        WITH added AS (
            INSERT INTO memory_private.embedding_queue AS q (domain, row_id)
            SELECT d.domain, u.id FROM unnest(v_ids) AS u (id)
            ON CONFLICT (domain, row_id) DO NOTHING
            RETURNING q.row_id
        )
        SELECT array_agg(a.row_id) INTO v_ids FROM added AS a;
        CONTINUE WHEN v_ids IS NULL;
        v_added := cardinality(v_ids);
        -- A worker may have completed some of these rows after the read above (its job was
        -- gone, so the insert made a new one): a fresh read drops those jobs again.
        EXECUTE format($q$
            SELECT array_agg(t.id) FROM %I.%I AS t
            WHERE t.id = ANY ($1) AND t.embedding IS NOT NULL
        $q$, d.table_schema, d.table_name)
        INTO v_ids USING v_ids;
        DELETE FROM memory_private.embedding_queue AS q
        WHERE q.domain = d.domain AND q.row_id = ANY (v_ids) AND q.status = 'pending';
        GET DIAGNOSTICS v_gone = ROW_COUNT;
        v_total := v_total + v_added - v_gone;
    END LOOP;
    RETURN v_total;
END;
$$;

-- Rows of a distributed domain without an embedding and without a job, counted up to limit_rows
-- (memory.diagnose's unqueued_null_embeddings): the ids come from the shards in keyset
-- batches and are compared with the coordinator's queue (no join between the two).
CREATE OR REPLACE FUNCTION memory_private._dist_unqueued(d memory_private.domains, limit_rows bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ids text[];
    v_last text := NULL;
    v_n bigint := 0;
    v_seen bigint := 0;
BEGIN
    LOOP
        v_ids := memory_private._dist_unembedded_ids(d, v_last, 10000);
        EXIT WHEN v_ids IS NULL;
        v_last := v_ids[cardinality(v_ids)];
        v_seen := v_seen + cardinality(v_ids);
        v_n := v_n + (SELECT count(*) FROM unnest(v_ids) AS u (id) WHERE NOT EXISTS (
            SELECT FROM memory_private.embedding_queue AS q
            WHERE q.domain = d.domain AND q.row_id = u.id));
        EXIT WHEN v_n > limit_rows OR v_seen > 10 * limit_rows;
    END LOOP;
    RETURN v_n;
END;
$$;

-- memory.search's k-NN query for a distributed domain ($1 query vector, $2 k, $3 the filter's
-- values, $4 min_similarity and the embedding column, as memory_private._search_sql): flat, so
-- that Citus pushes the ORDER BY distance LIMIT k down to every shard (each walks its own HNSW
-- index) and merges the shards' top k on the coordinator. A subquery with a LIMIT (the
-- single-node shape) would be planned as a separate step with an intermediate result.
-- min_similarity is a bound on the distance, so filtering in the scan keeps exactly the rows the
-- single-node query keeps. predicate: a compiled filter (memory_private._filter_compile), or NULL.
CREATE OR REPLACE FUNCTION memory_private._dist_knn_sql(
    d memory_private.domains, predicate text, with_embeddings boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op text := memory_private._distance_to_sql(d, '$1');
    -- Fixed expressions for the domain's distance, as memory_private._knn_sql's (the query must
    -- stay flat, so the similarity repeats the distance instead of reading a subquery's).
    v_distance text := '(t.embedding ' || v_op || ')::double precision';
    v_similarity text := CASE d.distance
        WHEN 'cosine' THEN '1 - ' || v_distance
        WHEN 'l2' THEN '1 / (1 + ' || v_distance || ')'
        ELSE '- ' || v_distance
    END;
    v_emb text := CASE WHEN with_embeddings THEN 't.embedding::' ELSE 'NULL::' END
        || memory_private._vector_schema() || '.vector';  -- _vector_schema() is quoted
BEGIN
    RETURN format($q$
        SELECT t.id, t.content, t.metadata, %5$s AS similarity, %6$s AS distance, t.created_at,
            t.updated_at, %7$s AS embedding
        FROM %2$I.%3$I AS t
        WHERE t.embedding IS NOT NULL AND (%4$s)
          AND ($4::double precision IS NULL OR %5$s >= $4)
        ORDER BY t.embedding %1$s LIMIT $2 $q$,
        v_op, d.table_schema, d.table_name, coalesce(predicate, 'true'), v_similarity, v_distance,
        v_emb);
END;
$$;

-- The same with the plain containment filter ($3 the filter itself, metadata @> $3).
CREATE OR REPLACE FUNCTION memory_private._dist_search_sql(
    d memory_private.domains, with_filter boolean, with_embeddings boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN memory_private._dist_knn_sql(d, CASE WHEN with_filter THEN 't.metadata @> $3' END,
        with_embeddings);
END;
$$;

-- EXPLAIN (FORMAT JSON) of a distributed domain's search query with every shard's plan
-- (citus.explain_all_tasks) and the values inlined as literals (Citus cannot explain the
-- parameterised form on the workers: "could not determine data type of parameter $1").
CREATE OR REPLACE FUNCTION memory_private._dist_explain(
    d memory_private.domains, query_embedding vector, k integer, filter jsonb
)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_f record := memory_private._filter_for(d, filter);
    v_sql text := memory_private._dist_knn_sql(d, v_f.predicate);
    v_all text := current_setting('citus.explain_all_tasks', true);
    v_plan jsonb;
BEGIN
    -- The filter's values go in last: nothing is replaced inside them afterwards.
    v_sql := replace(v_sql, '$1', format('%L::%s', query_embedding, pg_typeof(query_embedding)));
    v_sql := replace(v_sql, '$2', k::text);
    v_sql := replace(v_sql, '$4', 'NULL::double precision');
    v_sql := replace(v_sql, '$3', format('%L::jsonb', v_f.params));
    PERFORM set_config('citus.explain_all_tasks', 'on', true);
    -- EXPLAIN of the very statement memory.search runs: its text is the template here.
    EXECUTE format($q$EXPLAIN (FORMAT JSON) %s$q$, v_sql) INTO v_plan;
    PERFORM set_config('citus.explain_all_tasks', coalesce(v_all, 'off'), true);
    RETURN v_plan;
END;
$$;

-- What a distributed plan says about the vector index: uses_index when every shard's task
-- scans that shard's copy of the domain's vector index (Citus names it <index>_<shard id>);
-- index_name is the domain's index (the coordinator's name). Also the tasks and the tasks with
-- a LIMIT above their scan (the pushed-down k).
CREATE OR REPLACE FUNCTION memory_private._dist_plan_indexes(d memory_private.domains, plan jsonb)
RETURNS TABLE (
    uses_index boolean, index_name text, tasks integer, indexed_tasks integer,
    limited_tasks integer
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH idx AS (
        SELECT x.index_name::text AS name FROM memory_private._vector_indexes(d) AS x
    ),
    tasks AS (
        SELECT t.task
        FROM jsonb_path_query(plan, 'strict $.**."Distributed Query".Job.Tasks[*]') AS t (task)
    ),
    per_task AS (
        SELECT
            (SELECT min(i.name) FROM jsonb_path_query(t.task, 'lax $.**."Index Name"') AS n (name)
             JOIN idx AS i ON n.name #>> '{}' ~ ('^' || i.name || '_[0-9]+$')) AS used,
            jsonb_path_exists(t.task, 'strict $."Remote Plan".**."Node Type" ? (@ == "Limit")')
                AS limited
        FROM tasks AS t
    )
    SELECT count(*) > 0 AND count(p.used) = count(*), min(p.used), count(*)::integer,
        count(p.used)::integer, count(*) FILTER (WHERE p.limited)::integer
    FROM per_task AS p
$$;

-- Make the settings a search just changed with set_config(..., true) reach the shards' queries:
-- Citus sends SET LOCAL statements (not set_config calls) to the workers of the transaction when
-- citus.propagate_set_commands is 'local'. Without Citus: nothing.
CREATE OR REPLACE FUNCTION memory_private._citus_push_settings()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_prop text;
    v_name text;
    v_value text;
BEGIN
    IF memory_private._citus_version() IS NULL THEN
        RETURN;
    END IF;
    v_prop := current_setting('citus.propagate_set_commands', true);
    PERFORM set_config('citus.propagate_set_commands', 'local', true);
    FOREACH v_name IN ARRAY ARRAY['hnsw.ef_search', 'hnsw.iterative_scan', 'hnsw.max_scan_tuples',
        'enable_seqscan'] LOOP
        v_value := current_setting(v_name, true);
        CONTINUE WHEN v_value IS NULL OR v_value = '';
        -- v_name is one of the constants above; the value goes in as a literal.
        EXECUTE format($sql$SET LOCAL %s = %L$sql$, v_name, v_value);
    END LOOP;
    PERFORM set_config('citus.propagate_set_commands', coalesce(v_prop, 'none'), true);
END;
$$;

-- The vector indexes of every shard of a distributed domain, read on the workers
-- (run_command_on_shards): one row per shard, reachable = false when its worker did not answer.
CREATE OR REPLACE FUNCTION memory_private._shard_vector_indexes(d memory_private.domains)
RETURNS TABLE (
    shard_id bigint, shard_name text, node text, reachable boolean, indexes jsonb, error text
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rel regclass := (memory_private._physical(d)).relation;
BEGIN
    IF NOT memory_private._is_distributed_table(v_rel) THEN
        RETURN;
    END IF;
    -- %s in the command is the shard's qualified name (run_command_on_shards' placeholder).
    RETURN QUERY EXECUTE $q$
        SELECT r.shardid, s.shard_name::text, s.nodename || ':' || s.nodeport, r.success,
            CASE WHEN r.success THEN r.result::jsonb END,
            CASE WHEN NOT r.success THEN r.result END
        FROM run_command_on_shards($1, $cmd$
            SELECT coalesce(json_agg(json_build_object(
                'name', c.relname, 'method', am.amname, 'opclass', opc.opcname,
                'options', coalesce(c.reloptions, '{}'), 'valid', i.indisvalid)
                ORDER BY c.relname), '[]')
            FROM pg_catalog.pg_index AS i
            JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
            JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
            JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
            JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = '%s'::regclass AND a.attname = 'embedding'
              AND am.amname IN ('hnsw', 'ivfflat')
        $cmd$) AS r
        JOIN citus_shards AS s ON s.shardid = r.shardid
        ORDER BY r.shardid
    $q$ USING v_rel;
END;
$$;

-- The workers holding shards of a domain that do not answer a connection (a stopped server, a
-- network partition): every query touching their shards fails until they are back.
CREATE OR REPLACE FUNCTION memory_private._unreachable_nodes(d memory_private.domains)
RETURNS TABLE (node_name text, node_port integer, shards bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rel regclass := (memory_private._physical(d)).relation;
    v_timeout text;
BEGIN
    IF NOT memory_private._is_distributed_table(v_rel) THEN
        RETURN;
    END IF;
    v_timeout := current_setting('citus.node_connection_timeout', true);
    PERFORM set_config('citus.node_connection_timeout', '3000', true);
    RETURN QUERY EXECUTE $q$
        SELECT p.nodename::text, p.nodeport::integer, count(*)
        FROM pg_catalog.pg_dist_shard AS s
        JOIN pg_catalog.pg_dist_placement AS pl ON pl.shardid = s.shardid
        JOIN pg_catalog.pg_dist_node AS p ON p.groupid = pl.groupid
        WHERE s.logicalrelid = $1 AND p.noderole = 'primary'
          AND NOT citus_check_connection_to_node(p.nodename, p.nodeport)
        GROUP BY p.nodename, p.nodeport
        ORDER BY p.nodename, p.nodeport
    $q$ USING v_rel;
    PERFORM set_config('citus.node_connection_timeout', coalesce(v_timeout, '30000'), true);
END;
$$;

-- The cluster checks of memory.diagnose for a domain on Citus, one function per check (like the
-- others in 61_diagnose.sql), combined by memory_private._diagnose (60_diagnostics.sql), which
-- calls them for domains the registry marks distributed, or every domain when Citus is installed.
CREATE OR REPLACE FUNCTION memory_private._check_not_distributed(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'not_distributed',
        format('The registry says domain %s is distributed but %s is not a Citus '
            || 'distributed table.', d.domain, p.relation),
        format($sql$SELECT memory.distribute_domain(%L);$sql$, d.domain)
    FROM memory_private._physical(d) AS p
    WHERE d.distributed AND NOT memory_private._is_distributed_table(p.relation)
$$;

COMMENT ON FUNCTION memory_private._check_not_distributed(memory_private.domains) IS
'diagnose check not_distributed (error): the registry marks the domain distributed, but its '
'table is not a Citus distributed table. fix_sql: memory.distribute_domain.';

CREATE OR REPLACE FUNCTION memory_private._check_distributed_outside_pgmemo(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'distributed_outside_pgmemo',
        format('%s was distributed with create_distributed_table directly: its statement '
            || 'triggers cannot run on the shards, so rows written now are not queued. Let '
            || 'pgmemo take it over (idempotent, it only records the fact and queues what is '
            || 'missing).', p.relation),
        format($sql$SELECT memory.distribute_domain(%L);$sql$, d.domain)
    FROM memory_private._physical(d) AS p
    WHERE NOT d.distributed AND memory_private._is_distributed_table(p.relation)
$$;

COMMENT ON FUNCTION memory_private._check_distributed_outside_pgmemo(memory_private.domains) IS
'diagnose check distributed_outside_pgmemo (error): the domain''s table was distributed with '
'create_distributed_table, not memory.distribute_domain, so rows written on the shards are not '
'queued. fix_sql: memory.distribute_domain (takes it over).';

CREATE OR REPLACE FUNCTION memory_private._check_worker_unreachable(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'worker_unreachable',
        format('Worker %s:%s, which holds %s shards of %s, does not answer: every search, '
            || 'and every write or read of a row on those shards, fails until it is back '
            || '(nothing is lost: the shards are on its disk). Start its PostgreSQL server; '
            || 'the query below then returns true. If the node is gone for good, restore it '
            || 'from a backup (or a replica) and point the cluster at the new host with '
            || 'citus_update_node.', n.node_name, n.node_port, n.shards, p.relation),
        format($sql$SELECT citus_check_connection_to_node(%L, %s);$sql$, n.node_name, n.node_port)
    FROM memory_private._physical(d) AS p
    CROSS JOIN LATERAL memory_private._unreachable_nodes(d) AS n
$$;

COMMENT ON FUNCTION memory_private._check_worker_unreachable(memory_private.domains) IS
'diagnose check worker_unreachable (error): a Citus worker holding shards of the domain does not '
'answer (every query touching those shards fails). fix_sql: citus_check_connection_to_node, '
'true once it is back.';

-- A search runs one task per shard, up to citus.max_adaptive_executor_pool_size connections per
-- worker at once; Citus keeps citus.max_cached_conns_per_worker of them between transactions and
-- opens the others anew for every search (a backend fork each).
CREATE OR REPLACE FUNCTION memory_private._check_citus_connection_cache(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    v_rel regclass := (memory_private._physical(d)).relation;
    v_cached integer := coalesce(nullif(
        current_setting('citus.max_cached_conns_per_worker', true), '')::integer, 1);
    v_n bigint;
BEGIN
    IF NOT memory_private._is_distributed_table(v_rel) THEN
        RETURN;
    END IF;
    -- pg_dist_* exist only with Citus: the statement is compiled when it runs.
    EXECUTE $q$
        SELECT max(per_node.n) FROM (
            SELECT count(*) AS n FROM pg_catalog.pg_dist_shard AS s
            JOIN pg_catalog.pg_dist_placement AS pl ON pl.shardid = s.shardid
            WHERE s.logicalrelid = $1 GROUP BY pl.groupid) AS per_node
    $q$ INTO v_n USING v_rel;
    v_n := least(v_n, coalesce(nullif(
        current_setting('citus.max_adaptive_executor_pool_size', true), '')::integer, 16));
    IF v_n > v_cached THEN
        RETURN QUERY SELECT 'warning', d.domain, 'citus_connection_cache',
            format('A search of %s opens up to %s connections per worker, but Citus keeps only %s '
                || 'per worker between transactions (citus.max_cached_conns_per_worker): the '
                || 'others are opened anew for every search, which can cost more than the search '
                || 'itself (BENCHMARKS.md, Citus section). Keep %s cached; the workers'' '
                || 'max_connections must allow that many per client connection.',
                v_rel, v_n, current_setting('citus.max_cached_conns_per_worker', true), v_n),
            format($sql$ALTER DATABASE %I SET citus.max_cached_conns_per_worker = %s;$sql$,
                current_database(), v_n);
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._check_citus_connection_cache(memory_private.domains) IS
'diagnose check citus_connection_cache (warning): a search of the distributed domain opens more '
'connections per worker than citus.max_cached_conns_per_worker keeps, so the rest are opened '
'anew on every search. fix_sql: ALTER DATABASE ... SET citus.max_cached_conns_per_worker.';

-- Only the shards whose worker answered can be checked (worker_unreachable names the others).
CREATE OR REPLACE FUNCTION memory_private._check_shard_missing_index(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT 'error', d.domain, 'shard_missing_index',
        format('%s of the shards of %s have no valid vector index with %s (%s): searches '
            || 'read every row of those shards, and a failed or interrupted index build is the '
            || 'usual cause. Build the missing shard indexes (each shard''s build blocks writes '
            || 'to that shard only).', x.n, (memory_private._physical(d)).relation,
            memory_private._opclass(d), x.shards),
        format($sql$SELECT memory.repair_shard_indexes(%L);$sql$, d.domain)
    FROM (
        SELECT count(*) AS n, string_agg(s.shard_name, ', ' ORDER BY s.shard_id) AS shards
        FROM memory_private._shard_vector_indexes(d) AS s
        WHERE s.reachable AND NOT EXISTS (
            SELECT FROM jsonb_array_elements(s.indexes) AS i
            WHERE (i ->> 'valid')::boolean AND i ->> 'opclass' = memory_private._opclass(d)
        )
    ) AS x
    WHERE x.n > 0
$$;

COMMENT ON FUNCTION memory_private._check_shard_missing_index(memory_private.domains) IS
'diagnose check shard_missing_index (error): shards of the distributed domain (on workers that '
'answer) without a valid vector index with the domain''s operator class. fix_sql: '
'memory.repair_shard_indexes.';

CREATE OR REPLACE FUNCTION memory_private._check_shard_index_settings_differ(
    d memory_private.domains
)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT 'warning', d.domain, 'shard_index_settings_differ',
        format('%s shards of %s have an HNSW index built with other settings than the '
            || 'domain''s m=%s, ef_construction=%s: %s. Recall and speed then differ from '
            || 'shard to shard. Rebuild those shard indexes with the domain''s settings.',
            x.n, (memory_private._physical(d)).relation, d.hnsw_m, d.hnsw_ef_construction,
            x.shards),
        format($sql$SELECT memory.repair_shard_indexes(%L);$sql$, d.domain)
    FROM (
        SELECT count(*) AS n, string_agg(format('%s (%s)', s.shard_name, (
                SELECT string_agg(o, ', ' ORDER BY o) FROM jsonb_array_elements(s.indexes) AS i,
                    jsonb_array_elements_text(i -> 'options') AS o
                WHERE i ->> 'method' = 'hnsw')), ', ' ORDER BY s.shard_id) AS shards
        FROM memory_private._shard_vector_indexes(d) AS s
        CROSS JOIN LATERAL (SELECT jsonb_build_array('m=' || d.hnsw_m,
            'ef_construction=' || d.hnsw_ef_construction) AS options) AS want
        WHERE s.reachable AND EXISTS (
            SELECT FROM jsonb_array_elements(s.indexes) AS i
            WHERE i ->> 'method' = 'hnsw'
              AND NOT (i -> 'options' @> want.options AND want.options @> (i -> 'options'))
        )
    ) AS x
    WHERE x.n > 0
$$;

COMMENT ON FUNCTION memory_private._check_shard_index_settings_differ(memory_private.domains) IS
'diagnose check shard_index_settings_differ (warning): shards whose HNSW index was built with '
'other m / ef_construction than the domain''s (recall and speed differ from shard to shard). '
'fix_sql: memory.repair_shard_indexes.';

CREATE OR REPLACE FUNCTION memory.repair_shard_indexes(domain text)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_rel regclass := (memory_private._physical(v_d)).relation;
    v_expected text := memory_private._opclass(v_d);
    v_options text[] := ARRAY['m=' || v_d.hnsw_m, 'ef_construction=' || v_d.hnsw_ef_construction];
    v_opclass_q text;
    v_down record;
    v_shard record;
    v_node record;
    v_name text;
    v_qualified text;
    v_taken text;
    v_commands text[];
    v_result record;
    v_bad integer := 0;
    v_failed text[] := '{}';
BEGIN
    IF NOT memory_private._is_distributed_table(v_rel) THEN
        RAISE EXCEPTION 'domain "%" is not distributed: use memory.create_hnsw_index', v_d.domain
            USING ERRCODE = '0A000';
    END IF;
    SELECT format('%I.%I', n.nspname, v_expected) INTO v_opclass_q
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';
    SELECT x.shard_name, x.node, x.error INTO v_down
    FROM memory_private._shard_vector_indexes(v_d) AS x WHERE NOT x.reachable LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'shard % is on worker %, which does not answer: %', v_down.shard_name,
            v_down.node, v_down.error
            USING ERRCODE = '08006', HINT = 'Start that worker, then repair again.';
    END IF;
    -- A shard is right with exactly one vector index: valid HNSW, the domain's operator class,
    -- m and ef_construction. A wrong one is rebuilt on its worker (every placement), in one
    -- transaction there: its vector indexes dropped, the HNSW index built under the name Citus
    -- gives a shard's index, <index>_<shard id> (each build blocks writes to that shard only).
    FOR v_shard IN
        SELECT x.shard_id, x.shard_name, x.indexes
        FROM memory_private._shard_vector_indexes(v_d) AS x
        WHERE NOT (jsonb_array_length(x.indexes) = 1 AND EXISTS (
            SELECT FROM jsonb_array_elements(x.indexes) AS i
            WHERE i ->> 'method' = 'hnsw' AND (i ->> 'valid')::boolean
              AND i ->> 'opclass' = v_expected
              AND i -> 'options' @> to_jsonb(v_options) AND to_jsonb(v_options) @> (i -> 'options')))
        ORDER BY x.shard_id
    LOOP
        v_bad := v_bad + 1;
        v_name := memory_private._hnsw_name(v_d) || '_' || v_shard.shard_id;
        v_qualified := format('%I.%I', v_d.table_schema, v_name);
        SELECT coalesce(array_agg(format($q$ DROP INDEX %I.%I $q$, v_d.table_schema, i.name)
            ORDER BY i.name), '{}')
        INTO v_commands
        FROM jsonb_to_recordset(v_shard.indexes) AS i (name text);
        FOR v_node IN EXECUTE $q$
            SELECT s.nodename::text AS host, s.nodeport::integer AS port
            FROM citus_shards AS s WHERE s.shardid = $1 ORDER BY s.nodename, s.nodeport
        $q$ USING v_shard.shard_id LOOP
            -- The name taken by a relation other than the shard's own vector indexes (a stray
            -- index elsewhere in the schema): PostgreSQL picks one instead.
            SELECT r.result INTO v_taken
            FROM master_run_on_worker(ARRAY[v_node.host], ARRAY[v_node.port],
                ARRAY[format($q$ SELECT to_regclass(%L) IS NOT NULL $q$, v_qualified)], false) AS r;
            -- One statement per command, in order (master_run_on_worker reports only a command's
            -- first result, so several statements in one command could hide an error). A build
            -- that fails leaves the shard without an index: diagnose says so, a repair retries.
            FOR v_result IN
                SELECT r.success, r.result
                FROM master_run_on_worker(
                    array_fill(v_node.host, ARRAY[cardinality(v_commands) + 1]),
                    array_fill(v_node.port, ARRAY[cardinality(v_commands) + 1]),
                    v_commands || format($q$
                        CREATE INDEX %s ON %s USING hnsw (embedding %s)
                        WITH (m = %s, ef_construction = %s)
                    $q$,
                        -- no name (PostgreSQL picks one) when a stray relation has it
                        CASE WHEN v_taken = 't' AND NOT v_shard.indexes @> jsonb_build_array(
                            jsonb_build_object('name', v_name)) THEN '' ELSE quote_ident(v_name) END,
                        v_shard.shard_name, v_opclass_q, v_d.hnsw_m, v_d.hnsw_ef_construction),
                    false) AS r
            LOOP
                IF NOT v_result.success THEN
                    v_failed := v_failed || (v_shard.shard_id || ': ' || v_result.result);
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    IF cardinality(v_failed) > 0 THEN
        RAISE EXCEPTION 'rebuilding shard indexes of domain "%" failed: %', v_d.domain,
            array_to_string(v_failed, '; ')
            USING ERRCODE = 'XX000';
    END IF;
    RETURN v_bad;
END;
$$;

COMMENT ON FUNCTION memory.repair_shard_indexes(text) IS
'For a distributed domain: give every shard exactly one valid HNSW index with the domain''s '
'operator class, m and ef_construction (building it where it is missing, INVALID or built '
'with other settings; each build blocks writes to its shard only). Returns the number of '
'shards rebuilt; 0 when all were right. What memory.diagnose''s shard_missing_index and '
'shard_index_settings_differ suggest. Error 08006 when a worker holding shards is down.';
