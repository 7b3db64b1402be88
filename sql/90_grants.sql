-- Grants and definer rights, applied LAST on every migrate run (keep this file last in sql/).
--
-- Why here and not in a migration: CREATE OR REPLACE keeps a function's grants, but a new
-- function (or a new overload) starts with EXECUTE for PUBLIC. Re-applying this file after every
-- other sql/ file, inside the same migrate transaction, means no function is ever visible with
-- the default grant and no replaced function loses its role's grant.
--
-- What it does:
--   1. EXECUTE revoked from PUBLIC on every routine in memory and memory_private.
--   2. Every function in schema memory runs with definer rights (SECURITY DEFINER, owned by the
--      migrating user), so the private tables are reachable only through the functions. Each must
--      carry a fixed search_path (SET search_path FROM CURRENT): a definer function without one
--      would run under the caller's search_path, so this file refuses to migrate when one is
--      missing. Every pinned path is then set to pg_catalog, pg_temp (pgvector by qualified name).
--   3. An explicit grant list per role (memory_private._api_grants). A memory.* function or view
--      that is in no list is granted to no role: pgtap_tests/security.sql fails on it, so whoever
--      adds a public function decides who may call it here.
--   4. Private functions that a granted view calls get EXECUTE (and definer rights) for the
--      roles that may read the view: a view checks its caller's EXECUTE on the functions it calls.
-- Roles that do not exist (see migrations/0002_roles.sql) are skipped.

CREATE OR REPLACE FUNCTION memory_private._api_grants()
RETURNS TABLE (role_name name, object_name name, object_kind text)
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT g.role_name::name, g.object_name::name, g.object_kind
    FROM (VALUES
        -- memory_reader: searching, reading, diagnostics (read-only; safe on a replica)
        ('memory_reader', 'version', 'function'),
        ('memory_reader', 'search', 'function'),
        ('memory_reader', 'search_text', 'function'),
        ('memory_reader', 'search_hybrid', 'function'),
        ('memory_reader', 'get', 'function'),
        ('memory_reader', 'diagnose', 'function'),
        ('memory_reader', 'explain_search', 'function'),
        ('memory_reader', 'api_reference', 'function'),
        ('memory_reader', 'queue_counts', 'function'),
        ('memory_reader', 'get_many', 'function'),
        ('memory_reader', 'count', 'function'),
        ('memory_reader', 'reembed_status', 'function'),
        ('memory_reader', 'domains', 'view'),
        ('memory_reader', 'embedding_coverage', 'view'),
        ('memory_reader', 'vector_indexes', 'view'),
        ('memory_reader', 'queue_status', 'view'),
        ('memory_reader', 'workers', 'view'),
        -- memory_writer (also a memory_reader): changing memories
        ('memory_writer', 'store', 'function'),
        ('memory_writer', 'store_many', 'function'),
        ('memory_writer', 'update', 'function'),
        ('memory_writer', 'forget', 'function'),
        ('memory_writer', 'forget_many', 'function'),
        ('memory_writer', 'clear', 'function'),
        -- memory_worker: the embedding queue
        ('memory_worker', 'version', 'function'),
        ('memory_worker', 'claim_embedding_jobs', 'function'),
        ('memory_worker', 'complete_embedding_jobs', 'function'),
        ('memory_worker', 'fail_embedding_jobs', 'function'),
        ('memory_worker', 'worker_heartbeat', 'function'),
        ('memory_worker', 'worker_stopped', 'function'),
        ('memory_worker', 'release_expired_claims', 'function'),
        ('memory_worker', 'release_claims', 'function'),
        ('memory_worker', 'extend_claims', 'function'),
        ('memory_worker', 'queue_counts', 'function'),
        ('memory_worker', 'run_maintenance', 'function'),
        ('memory_worker', 'queue_status', 'view'),
        ('memory_worker', 'workers', 'view'),
        -- memory_admin (also a memory_writer and a memory_worker): domains and operations
        ('memory_admin', 'create_domain', 'function'),
        ('memory_admin', 'drop_domain', 'function'),
        ('memory_admin', 'create_hnsw_index', 'function'),
        ('memory_admin', 'create_metadata_index', 'function'),
        ('memory_admin', 'bulk_load_begin', 'function'),
        ('memory_admin', 'bulk_load_finish', 'function'),
        ('memory_admin', 'enqueue_missing', 'function'),
        ('memory_admin', 'requeue_dead', 'function'),
        ('memory_admin', 'run_maintenance', 'function'),
        ('memory_admin', 'refresh_text_stats', 'function'),
        ('memory_admin', 'sync_text_index', 'function'),
        ('memory_admin', 'fill_text_index', 'function'),
        ('memory_admin', 'schedule_maintenance', 'function'),
        ('memory_admin', 'adopt_table', 'function'),
        ('memory_admin', 'begin_reembed', 'function'),
        ('memory_admin', 'finish_reembed', 'function'),
        ('memory_admin', 'cancel_reembed', 'function'),
        ('memory_admin', 'import_rows', 'function'),
        ('memory_admin', 'distribute_domain', 'function'),
        ('memory_admin', 'repair_shard_indexes', 'function'),
        ('memory_admin', 'concurrent_index_statements', 'function'),
        ('memory_admin', 'grant_domain', 'function'),
        ('memory_admin', 'revoke_domain', 'function'),
        ('memory_admin', 'set_max_content_bytes', 'function')
    ) AS g (role_name, object_name, object_kind)
$$;

COMMENT ON FUNCTION memory_private._api_grants() IS
'The explicit grant list applied by sql/90_grants.sql: which pgmemo role may call each memory.* '
'function (all overloads) or read each memory.* view. Every name must exist, once per role '
'(pgtap_tests/names.sql checks both).';

DO $grants$
DECLARE
    v_fn regprocedure;
    v_item record;
    v_roles name[];
    v_role name;
    v_unpinned text;
BEGIN
    -- Not a grant, but it must run after every other sql/ file of a migrate: regenerate the
    -- static search branches from the registry and the current search SQL (36_search_static.sql).
    PERFORM memory_private._search_static_refresh();
    -- Nor this: bind the API roles' names to the roles holding them now, the ones granted the
    -- API below (per-domain access matches them by OID; 05_trust.sql).
    PERFORM memory_private._bind_api_roles();

    SELECT coalesce(array_agg(r.rolname ORDER BY r.rolname), '{}') INTO v_roles
    FROM pg_catalog.pg_roles AS r
    WHERE r.rolname IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin');

    -- 1. Nothing for PUBLIC.
    REVOKE ALL ON SCHEMA memory_private FROM PUBLIC;
    REVOKE ALL ON SCHEMA memory_data FROM PUBLIC;
    REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA memory, memory_private FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA memory, memory_private, memory_data FROM PUBLIC;

    -- 2. Definer rights for the public functions, never without a fixed search_path.
    SELECT string_agg(p.oid::regprocedure::text, ', ') INTO v_unpinned
    FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace
      AND p.prokind = 'f'
      AND NOT EXISTS (
          SELECT FROM unnest(p.proconfig) AS c (setting) WHERE c.setting LIKE 'search_path=%'
      );
    IF v_unpinned IS NOT NULL THEN
        RAISE EXCEPTION 'memory functions without a fixed search_path: %', v_unpinned
            USING ERRCODE = '42501',
                  HINT = 'Add SET search_path FROM CURRENT to each: they run with definer rights.';
    END IF;
    -- The path they run with is pg_catalog, pg_temp: pgvector's schema (on the path while the
    -- files above were created, so that signatures could name vector) is left off, since
    -- another role may be able to create better-matching overloads in it; the bodies reach
    -- pgvector by qualified name (memory_private._vector_schema()).
    FOR v_fn IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
          AND EXISTS (SELECT FROM unnest(p.proconfig) AS c (setting)
              WHERE c.setting LIKE 'search_path=%' AND c.setting <> 'search_path=pg_catalog, pg_temp')
    LOOP
        EXECUTE format($sql$ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp$sql$, v_fn);
    END LOOP;
    FOR v_fn IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'memory'::regnamespace AND p.prokind = 'f' AND NOT p.prosecdef
    LOOP
        EXECUTE format($sql$ALTER FUNCTION %s SECURITY DEFINER$sql$, v_fn);
    END LOOP;

    -- 3. The explicit list, and nothing else: what an earlier release granted to the API roles
    --    and this list no longer names is revoked (same transaction: no call sees the gap).
    FOREACH v_role IN ARRAY v_roles LOOP
        EXECUTE format($q$ REVOKE ALL ON ALL ROUTINES IN SCHEMA memory, memory_private FROM %I $q$,
            v_role);
        EXECUTE format($q$ REVOKE ALL ON ALL TABLES IN SCHEMA memory, memory_private FROM %I $q$,
            v_role);
        EXECUTE format($q$ GRANT USAGE ON SCHEMA memory TO %I $q$, v_role);
    END LOOP;
    FOR v_item IN
        SELECT g.role_name, p.oid::regprocedure AS fn
        FROM memory_private._api_grants() AS g
        JOIN pg_catalog.pg_proc AS p
            ON p.pronamespace = 'memory'::regnamespace AND p.proname = g.object_name
        WHERE g.object_kind = 'function' AND g.role_name = ANY (v_roles)
    LOOP
        EXECUTE format($sql$GRANT EXECUTE ON ROUTINE %s TO %I$sql$, v_item.fn, v_item.role_name);
    END LOOP;
    FOR v_item IN
        SELECT g.role_name, c.oid::regclass AS rel
        FROM memory_private._api_grants() AS g
        JOIN pg_catalog.pg_class AS c
            ON c.relnamespace = 'memory'::regnamespace AND c.relname = g.object_name
        WHERE g.object_kind = 'view' AND c.relkind IN ('v', 'm')
          AND g.role_name = ANY (v_roles)
    LOOP
        EXECUTE format($sql$GRANT SELECT ON %s TO %I$sql$, v_item.rel, v_item.role_name);
    END LOOP;

    -- 4. Functions the granted views call run with definer rights, executable by the readers.
    FOR v_item IN
        SELECT DISTINCT p.oid::regprocedure AS fn, p.prosecdef, p.pronamespace, g.role_name,
            EXISTS (
                SELECT FROM unnest(p.proconfig) AS c (setting)
                WHERE c.setting LIKE 'search_path=%'
            ) AS pinned
        FROM pg_catalog.pg_depend AS d
        JOIN pg_catalog.pg_rewrite AS rw ON rw.oid = d.objid
        JOIN pg_catalog.pg_class AS v ON v.oid = rw.ev_class
        JOIN pg_catalog.pg_proc AS p ON p.oid = d.refobjid
        JOIN memory_private._api_grants() AS g
            ON g.object_kind = 'view' AND g.object_name = v.relname
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
          AND d.refclassid = 'pg_catalog.pg_proc'::regclass
          AND v.relnamespace = 'memory'::regnamespace
          AND p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
          AND p.prokind = 'f'
          AND g.role_name = ANY (v_roles)
    LOOP
        IF NOT v_item.pinned THEN
            RAISE EXCEPTION 'function % (called by a memory view) has no fixed search_path', v_item.fn
                USING ERRCODE = '42501', HINT = 'Add SET search_path FROM CURRENT.';
        END IF;
        IF NOT v_item.prosecdef THEN
            EXECUTE format($sql$ALTER FUNCTION %s SECURITY DEFINER$sql$, v_item.fn);
        END IF;
        EXECUTE format($sql$GRANT EXECUTE ON ROUTINE %s TO %I$sql$, v_item.fn, v_item.role_name);
    END LOOP;
END;
$grants$;
