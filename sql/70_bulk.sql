-- Bulk loading: memory.bulk_load_begin / memory.bulk_load_finish defer a domain's secondary
-- indexes (HNSW, GIN metadata, GIN full-text, btree updated_at) and its per-statement enqueue
-- trigger while many rows are loaded (COPY or store_many), then build the indexes once, with a
-- sized maintenance_work_mem and parallel workers, and queue the rows that came without an
-- embedding in one pass. Building an HNSW graph once is several times faster than inserting into
-- it row by row (bench/run.py measures both).

-- The secondary indexes of a domain's table, as (index name, CREATE INDEX statement): made by
-- create_domain, dropped and rebuilt by bulk loading; the HNSW index is left to
-- memory.create_hnsw_index.
CREATE OR REPLACE FUNCTION memory_private._secondary_indexes(d memory_private.domains)
RETURNS TABLE (index_name text, ddl text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT v.index_name, v.ddl
    FROM (VALUES
        (d.table_name || '_metadata_gin',
         format($sql$CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin (metadata jsonb_path_ops)
                WITH (gin_pending_list_limit = %s)$sql$,
                d.table_name || '_metadata_gin', d.table_schema, d.table_name,
                memory_private._gin_pending_list_kb())),
        (d.table_name || '_fts',
         format($sql$CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin (content_tsv)
                WITH (gin_pending_list_limit = %s)$sql$,
                d.table_name || '_fts', d.table_schema, d.table_name,
                memory_private._gin_pending_list_kb())),
        (d.table_name || '_updated_at',
         format($sql$CREATE INDEX IF NOT EXISTS %I ON %I.%I (updated_at)$sql$,
                d.table_name || '_updated_at', d.table_schema, d.table_name))
    ) AS v (index_name, ddl)
$$;

-- Bulk loading manages the tables create_domain made; an adopted table's indexes are its owner's.
CREATE OR REPLACE FUNCTION memory_private._check_bulk_domain(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF coalesce((to_jsonb(d) ->> 'adopted')::boolean, false) THEN
        RAISE EXCEPTION 'domain "%" is an adopted table: bulk loading manages only pgmemo''s own tables',
            d.domain
            USING ERRCODE = '0A000',
                  HINT = 'Drop and rebuild its vector index with memory.create_hnsw_index instead.';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.bulk_load_begin(domain text)
RETURNS text[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_dropped text[] := ARRAY[]::text[];
    v_index regclass;
BEGIN
    -- (the migrators' lock only: not the domain's, see _lock_ddl)
    PERFORM memory_private._lock_ddl();
    PERFORM memory_private._check_bulk_domain(v_d);
    FOR v_index IN
        SELECT v.index_oid::regclass FROM memory_private._vector_indexes(v_d) AS v
        UNION ALL
        SELECT to_regclass(format('%I.%I', v_d.table_schema, s.index_name))
        FROM memory_private._secondary_indexes(v_d) AS s
        WHERE to_regclass(format('%I.%I', v_d.table_schema, s.index_name)) IS NOT NULL
    LOOP
        v_dropped := v_dropped || v_index::text;
        EXECUTE format($sql$DROP INDEX %s$sql$, v_index);
    END LOOP;
    -- Rows without an embedding are queued by bulk_load_finish in one pass instead.
    IF NOT v_d.distributed THEN  -- a distributed domain has no queue trigger to pause
        EXECUTE format($sql$ALTER TABLE %I.%I DISABLE TRIGGER %I$sql$, v_d.table_schema, v_d.table_name,
            memory_private._wire_name(v_d.domain, 'enqueue_insert'));
        UPDATE memory_private.domains AS d SET bulk_loading = TRUE WHERE d.domain = v_d.domain;
    END IF;
    RETURN v_dropped;
END;
$$;

COMMENT ON FUNCTION memory.bulk_load_begin(text) IS
'Start a bulk load into a domain: drop its vector index and its secondary indexes (metadata, '
'full-text, updated_at; the primary key stays) and pause its enqueue-on-insert trigger, so rows '
'load at COPY speed. Searches work but scan sequentially until memory.bulk_load_finish(domain). '
'Returns the dropped index names. Idempotent. Not for adopted tables (0A000).';

CREATE OR REPLACE FUNCTION memory.bulk_load_finish(
    domain text,
    maintenance_work_mem text DEFAULT NULL,
    parallel_workers integer DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_old_mem text := current_setting('maintenance_work_mem');
    v_old_workers text := current_setting('max_parallel_maintenance_workers');
    v_index text;
    v_ddl text;
    v_started timestamptz := clock_timestamp();
    v_hnsw_started timestamptz;
    v_hnsw_done timestamptz;
    v_queued bigint;
BEGIN
    PERFORM memory_private._lock_ddl();
    PERFORM memory_private._check_bulk_domain(v_d);
    IF parallel_workers IS NOT NULL AND (parallel_workers < 0 OR parallel_workers > 64) THEN
        RAISE EXCEPTION 'parallel_workers must be between 0 and 64, got %', parallel_workers
            USING ERRCODE = '22023';
    END IF;
    IF maintenance_work_mem IS NOT NULL THEN
        BEGIN
            PERFORM set_config('maintenance_work_mem', maintenance_work_mem, true);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'invalid maintenance_work_mem %', quote_literal(maintenance_work_mem)
                USING ERRCODE = '22023', HINT = 'Use a memory size such as ''1GB'' or ''512MB''.';
        END;
    END IF;
    IF parallel_workers IS NOT NULL THEN
        PERFORM set_config('max_parallel_maintenance_workers', parallel_workers::text, true);
    END IF;

    FOR v_index, v_ddl IN SELECT s.index_name, s.ddl FROM memory_private._secondary_indexes(v_d) AS s
    LOOP
        EXECUTE v_ddl;
    END LOOP;
    v_hnsw_started := clock_timestamp();
    v_index := memory.create_hnsw_index(v_d.domain, v_d.hnsw_m, v_d.hnsw_ef_construction);
    v_hnsw_done := clock_timestamp();
    IF NOT v_d.distributed THEN  -- a distributed domain has no queue trigger to pause
        EXECUTE format($sql$ALTER TABLE %I.%I ENABLE TRIGGER %I$sql$, v_d.table_schema, v_d.table_name,
            memory_private._wire_name(v_d.domain, 'enqueue_insert'));
        UPDATE memory_private.domains AS d SET bulk_loading = FALSE WHERE d.domain = v_d.domain;
    END IF;
    v_queued := memory.enqueue_missing(v_d.domain);
    EXECUTE format($sql$ANALYZE %I.%I$sql$, v_d.table_schema, v_d.table_name);

    PERFORM set_config('maintenance_work_mem', v_old_mem, true);
    PERFORM set_config('max_parallel_maintenance_workers', v_old_workers, true);
    RETURN jsonb_build_object(
        'hnsw_index', v_index,
        'secondary_seconds', extract(epoch FROM v_hnsw_started - v_started),
        'hnsw_seconds', extract(epoch FROM v_hnsw_done - v_hnsw_started),
        'queued_rows', v_queued,
        'maintenance_work_mem', coalesce(maintenance_work_mem, v_old_mem),
        'parallel_workers', coalesce(parallel_workers::text, v_old_workers)::integer);
END;
$$;

COMMENT ON FUNCTION memory.bulk_load_finish(text, text, integer) IS
'Finish a bulk load: (re)build the domain''s secondary indexes and its HNSW index (m and '
'ef_construction from the domain) in one pass each, resume the enqueue trigger and queue every '
'row loaded without an embedding (memory.enqueue_missing), then ANALYZE. maintenance_work_mem (e.g. '
'''2GB'': the HNSW graph should fit) and parallel_workers (max_parallel_maintenance_workers) '
'apply to this call only; NULL keeps the server''s settings. Returns the index name, the '
'seconds spent and the rows queued. Idempotent: indexes already present are kept.';
