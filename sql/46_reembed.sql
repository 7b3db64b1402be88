-- Re-embedding a domain with another model or dimension without downtime.
--
-- memory.begin_reembed adds a shadow column <embedding>_next vector(new dimension) (and
-- embedding_model_next when the table records models) to the domain's physical table and
-- registers a hidden shadow domain '<domain>__next' over it: an adopted-style view exposing the
-- shadow column as embedding, with the generic source-table triggers of 45_adopt.sql (a content
-- change clears the shadow embedding too and queues the shadow job). Every row is queued for the
-- shadow domain; a worker running the new model drains it (pgmemo worker --domain <shadow>;
-- workers without --domain leave shadow jobs alone). Searches keep using the current embedding
-- all along, and the shadow domain can itself be searched to try the new model.
-- memory.finish_reembed switches in one transaction once every row has its new embedding;
-- memory.cancel_reembed removes the shadow column, index, triggers, jobs and domain.

-- The re-embed of a domain, or a clear error.
CREATE OR REPLACE FUNCTION memory_private._reembed(domain text)
RETURNS memory_private.reembeds
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_r memory_private.reembeds;
BEGIN
    PERFORM memory_private._domain(domain);
    SELECT r.* INTO v_r FROM memory_private.reembeds AS r WHERE r.domain = _reembed.domain;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no re-embed in progress for domain "%"', domain
            USING ERRCODE = '42704',
                  HINT = 'Start one with memory.begin_reembed(domain, embedding_model, dimension).';
    END IF;
    RETURN v_r;
END;
$$;

CREATE OR REPLACE FUNCTION memory.begin_reembed(
    domain text, embedding_model text, dimension integer, create_index boolean DEFAULT TRUE
)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_phys record := memory_private._physical(v_d);
    v_shadow text;
    v_id name;
    v_content name;
    v_next name;
    v_model name;
    v_opt name[];
    v_s memory_private.domains;
BEGIN
    IF memory_private._is_shadow(v_d) THEN
        RAISE EXCEPTION 'domain "%" is itself the shadow of a re-embed', v_d.domain
            USING ERRCODE = '0A000';
    END IF;
    PERFORM memory_private._check_dimension(v_d.embedding_type, dimension);
    -- The shadow domain's view computes its content_tsv with the domain's text configuration:
    -- checked again (it may have been handed to another role since create_domain checked it).
    PERFORM memory_private._check_text_config(v_d.text_config);
    -- (the registry again once no other DDL of the domain is under way: a drop_domain)
    PERFORM memory_private._lock_ddl(v_d.domain);
    v_d := memory_private._domain_for(domain, 'write');
    v_phys := memory_private._physical(v_d);
    IF EXISTS (SELECT FROM memory_private.reembeds AS r WHERE r.domain = v_d.domain) THEN
        RAISE EXCEPTION 'a re-embed of domain "%" is already in progress', v_d.domain
            USING ERRCODE = '42710',
                  HINT = format('See SELECT * FROM memory.reembed_status(%L); finish or cancel it first.',
                      v_d.domain);
    END IF;
    IF v_phys.relation IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain USING ERRCODE = '42P01';
    END IF;

    v_shadow := left(v_d.domain, 34) || '__next';
    IF EXISTS (SELECT FROM memory_private.domains AS d WHERE d.domain = v_shadow) THEN
        RAISE EXCEPTION 'cannot name the shadow domain "%": a domain of that name exists', v_shadow
            USING ERRCODE = '42710';
    END IF;
    v_id := CASE WHEN v_d.adopted THEN v_d.id_column ELSE 'id' END;
    v_content := CASE WHEN v_d.adopted THEN v_d.content_column ELSE 'content' END;
    v_opt := memory_private._optional_columns(v_phys.relation, v_id, v_content,
        v_phys.embedding_column);
    v_next := left(v_phys.embedding_column, 58) || '_next';
    v_model := CASE WHEN v_opt[2] IS NOT NULL THEN 'embedding_model_next' END;
    IF EXISTS (SELECT FROM memory_private._column(v_phys.relation, v_next))
        OR EXISTS (SELECT FROM memory_private._column(v_phys.relation, v_model)) THEN
        RAISE EXCEPTION 'table % already has a column % or %', v_phys.relation, v_next,
            coalesce(v_model, '(none)')
            USING ERRCODE = '42701', HINT = 'Drop or rename it first.';
    END IF;

    IF v_d.distributed THEN
        -- Citus: the shadow domain's trigger function is created on every node after the ALTER
        -- below, which needs one connection per node for the whole transaction.
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    -- Adding a nullable column without a default is a catalog change (no table rewrite).
    EXECUTE format($q$ ALTER TABLE %s ADD COLUMN %I %s $q$,
        memory_private._qualified(v_phys.relation), v_next,
        memory_private._embedding_column_type(v_d.embedding_type, dimension));
    IF v_model IS NOT NULL THEN
        EXECUTE format($q$ ALTER TABLE %s ADD COLUMN %I text $q$,
            memory_private._qualified(v_phys.relation), v_model);
    END IF;
    v_s := memory_private._adopt(v_shadow, v_phys.relation, v_id, v_content, v_next,
        ARRAY[v_opt[1], v_model, v_opt[3], v_opt[4]], v_d.distance, embedding_model, dimension);
    UPDATE memory_private.domains AS d
    SET hnsw_m = v_d.hnsw_m, hnsw_ef_construction = v_d.hnsw_ef_construction,
        text_config = v_d.text_config
    WHERE d.domain = v_shadow
    RETURNING d.* INTO v_s;
    -- (its view again: its content_tsv is computed with the domain's text configuration)
    PERFORM memory_private._adopted_view(v_s, ARRAY[v_opt[1], v_model, v_opt[3], v_opt[4]]);
    INSERT INTO memory_private.reembeds
        (domain, shadow_domain, embedding_model, dimension, next_column, model_column)
    VALUES (v_d.domain, v_shadow, embedding_model, dimension, v_next, v_model);
    -- The HNSW index on the shadow column: every value is NULL yet, so this is one table scan
    -- (writes wait for it; create_index => false leaves it to memory.concurrent_index_statements).
    IF create_index THEN
        PERFORM memory.create_hnsw_index(v_shadow, v_d.hnsw_m, v_d.hnsw_ef_construction);
    END IF;
    PERFORM memory.enqueue_missing(v_shadow);
    RETURN v_shadow;
END;
$$;

COMMENT ON FUNCTION memory.begin_reembed(text, text, integer, boolean) IS
'Start re-embedding a domain with embedding_model and dimension, without downtime: adds a shadow '
'column (vector(dimension), with its HNSW index) to the domain''s table, registers the shadow '
'domain <domain>__next over it (returned) and queues every row for it. Searches keep using the '
'current embeddings meanwhile; content changes are queued for both. Run a worker with the new '
'model on the shadow domain (pgmemo worker --domain <shadow>; workers without --domain skip '
'shadow jobs), watch memory.reembed_status, then memory.finish_reembed (or cancel_reembed). '
'The shadow index is built at once (one scan of the table; writes wait), or with create_index => '
'false later, without blocking: memory.concurrent_index_statements(<shadow>). Error 42501 when '
'the domain''s text search configuration (or a dictionary of it) belongs to a role pgmemo does '
'not trust any more (diagnose: untrusted_text_config).';

-- The body of memory.reembed_status (PL/pgSQL, so that it may read memory.embedding_coverage,
-- created after this file; a separate function because the parameter domain and the result
-- column domain would clash in PL/pgSQL).
CREATE OR REPLACE FUNCTION memory_private._reembed_status(p_domain text)
RETURNS TABLE (
    domain text, shadow_domain text, embedding_model text, dimension integer,
    total_rows bigint, embedded_rows bigint, missing_rows bigint, coverage_pct numeric,
    queued_jobs bigint, dead_jobs bigint, started_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    IF p_domain IS NOT NULL THEN
        PERFORM memory_private._domain_for(p_domain, 'read');
    END IF;
    RETURN QUERY
    SELECT r.domain, r.shadow_domain, r.embedding_model, r.dimension, c.total_rows,
        c.embedded_rows, c.missing_rows, c.coverage_pct, c.queued_jobs, c.dead_jobs, r.started_at
    FROM memory_private.reembeds AS r
    JOIN memory.embedding_coverage AS c ON c.domain = r.shadow_domain
    WHERE p_domain IS NULL OR r.domain = p_domain
    ORDER BY r.domain;
END;
$$;

CREATE OR REPLACE FUNCTION memory.reembed_status(domain text DEFAULT NULL)
RETURNS TABLE (
    domain text, shadow_domain text, embedding_model text, dimension integer,
    total_rows bigint, embedded_rows bigint, missing_rows bigint, coverage_pct numeric,
    queued_jobs bigint, dead_jobs bigint, started_at timestamptz
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT * FROM memory_private._reembed_status(reembed_status.domain)
$$;

COMMENT ON FUNCTION memory.reembed_status(text) IS
'Re-embeds in progress (of one domain, or all): the shadow domain, new model and dimension, rows, '
'rows that have their new embedding, missing ones, coverage_pct, queued and dead shadow jobs. '
'memory.finish_reembed succeeds once missing_rows is 0.';

-- Remove a re-embed's shadow domain: its view, its triggers, its jobs, its registry row.
CREATE OR REPLACE FUNCTION memory_private._drop_shadow(r memory_private.reembeds)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_s memory_private.domains;
BEGIN
    SELECT d.* INTO v_s FROM memory_private.domains AS d WHERE d.domain = r.shadow_domain;
    DELETE FROM memory_private.reembeds AS x WHERE x.domain = r.domain;
    IF v_s.domain IS NOT NULL THEN
        PERFORM memory_private._unadopt(v_s);
        DELETE FROM memory_private.domains AS d WHERE d.domain = v_s.domain;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.finish_reembed(domain text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_r memory_private.reembeds;
    v_d memory_private.domains;
    v_phys record;
    v_rel text;
    v_total bigint;
    v_done bigint;
    v_shadow_index regclass;
    v_id name;
    v_content name;
    v_missing boolean;
BEGIN
    -- (read after the domain's lock: a cancel_reembed or a second finish under way has ended)
    PERFORM memory_private._lock_ddl(domain);
    v_r := memory_private._reembed(domain);
    v_d := memory_private._domain_for(domain, 'write');
    v_phys := memory_private._physical(v_d);
    v_rel := memory_private._qualified(v_phys.relation);
    IF v_d.distributed THEN
        -- Citus: the view DDL below needs one connection per node for the whole transaction,
        -- and dropping the shadow's row trigger on the shards needs unsafe triggers allowed.
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    -- First without a lock (a clear answer while the workers still run), then again under the
    -- lock that makes the switch atomic.
    EXECUTE format($sql$SELECT count(*), count(t.%I) FROM %s AS t$sql$, v_r.next_column, v_rel)
    INTO v_total, v_done;
    IF v_done < v_total THEN
        RAISE EXCEPTION 're-embed of domain "%" is not complete: % of % rows have their new embedding (%)',
            v_d.domain, v_done, v_total, round(100.0 * v_done / v_total, 2) || '%'
            USING ERRCODE = '55000',
                  HINT = format('Keep a worker with the new model running (pgmemo worker --domain %s); '
                      'progress: SELECT * FROM memory.reembed_status(%L);', v_r.shadow_domain,
                      v_d.domain);
    END IF;
    EXECUTE format($sql$LOCK TABLE %s IN ACCESS EXCLUSIVE MODE$sql$, v_rel);
    -- (SELECT 1, not SELECT: Citus cannot run a zero-column subquery on a distributed table)
    EXECUTE format($sql$SELECT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I IS NULL)$sql$, v_rel, v_r.next_column)
    INTO v_missing;
    IF v_missing THEN
        RAISE EXCEPTION 're-embed of domain "%" is not complete: rows changed meanwhile', v_d.domain
            USING ERRCODE = '55000', HINT = 'Let the worker catch up, then finish again.';
    END IF;

    SELECT x.index_oid::regclass INTO v_shadow_index
    FROM memory_private._vector_indexes(memory_private._domain(v_r.shadow_domain)) AS x
    WHERE x.method = 'hnsw' AND x.is_valid
    LIMIT 1;
    PERFORM memory_private._drop_shadow(v_r);
    IF v_d.adopted THEN
        EXECUTE format($sql$DROP VIEW %I.%I$sql$, v_d.table_schema, v_d.table_name);  -- reads the old column
    END IF;
    -- Dropping the old column drops its vector index with it.
    EXECUTE format($sql$ALTER TABLE %s DROP COLUMN %I$sql$, v_rel, v_phys.embedding_column);
    EXECUTE format($sql$ALTER TABLE %s RENAME COLUMN %I TO %I$sql$, v_rel, v_r.next_column,
        v_phys.embedding_column);
    IF v_r.model_column IS NOT NULL THEN
        EXECUTE format($sql$ALTER TABLE %s DROP COLUMN embedding_model$sql$, v_rel);
        EXECUTE format($sql$ALTER TABLE %s RENAME COLUMN %I TO embedding_model$sql$, v_rel, v_r.model_column);
    END IF;
    IF v_shadow_index IS NOT NULL THEN
        EXECUTE format($sql$ALTER INDEX %s RENAME TO %I$sql$, memory_private._qualified(v_shadow_index),
            memory_private._hnsw_name(v_d));
    END IF;
    UPDATE memory_private.domains AS d
    SET dimension = v_r.dimension, embedding_model = v_r.embedding_model
    WHERE d.domain = v_d.domain
    RETURNING d.* INTO v_d;
    IF v_d.adopted THEN
        v_id := v_d.id_column;
        v_content := v_d.content_column;
        PERFORM memory_private._adopted_view(v_d, memory_private._optional_columns(
            v_phys.relation, v_id, v_content, v_phys.embedding_column));
    END IF;
    -- Every row has its new embedding: jobs of the old model (possibly in a worker's hands)
    -- must not write anything any more.
    DELETE FROM memory_private.embedding_queue AS q WHERE q.domain = v_d.domain;
    RETURN jsonb_build_object('domain', v_d.domain, 'dimension', v_d.dimension,
        'embedding_model', v_d.embedding_model, 'rows', v_total,
        'hnsw_index', memory_private._hnsw_name(v_d));
END;
$$;

COMMENT ON FUNCTION memory.finish_reembed(text) IS
'Switch a domain to its re-embedded vectors, atomically (one transaction, the table locked for '
'the switch only): the old embedding column and its index are dropped, the shadow column and '
'index take their names, the registry gets the new dimension and model, the shadow domain goes. '
'Error 55000 (with the coverage) while some row lacks its new embedding.';

CREATE OR REPLACE FUNCTION memory.cancel_reembed(domain text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_r memory_private.reembeds;
    v_d memory_private.domains;
    v_rel text;
BEGIN
    -- (read after the domain's lock: a finish_reembed under way has ended)
    PERFORM memory_private._lock_ddl(domain);
    v_r := memory_private._reembed(domain);
    -- no _domain_for: cancelling writes no row (it drops the shadow column), and drop_domain
    -- must work even for an adopted table pgmemo refuses to write
    v_d := memory_private._domain(domain);
    v_rel := memory_private._qualified((memory_private._physical(v_d)).relation);
    IF v_d.distributed THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);  -- as finish_reembed
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    PERFORM memory_private._drop_shadow(v_r);
    IF v_rel IS NOT NULL THEN
        -- The shadow column's HNSW index goes with it.
        EXECUTE format($q$ ALTER TABLE %s DROP COLUMN IF EXISTS %I $q$, v_rel, v_r.next_column);
        IF v_r.model_column IS NOT NULL THEN
            EXECUTE format($q$ ALTER TABLE %s DROP COLUMN IF EXISTS %I $q$, v_rel,
                v_r.model_column);
        END IF;
    END IF;
END;
$$;

COMMENT ON FUNCTION memory.cancel_reembed(text) IS
'Abandon a re-embed: drop the shadow column and its index, the shadow domain''s triggers, view, '
'jobs and registry row. The domain keeps its current embeddings throughout.';
