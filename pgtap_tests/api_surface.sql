-- The API surface: the exact functions and views of schema memory, each with a COMMENT and a
-- fixed search_path, no tables in it, and a full round trip with an EMPTY search_path (every
-- reference inside the functions is qualified). Adding a public function means adding it here.
BEGIN;
SELECT plan(16);

SELECT functions_are('memory', ARRAY[
    -- domains and indexes
    'create_domain', 'drop_domain', 'create_hnsw_index', 'version',
    -- bulk loading (sql/70_bulk.sql)
    'bulk_load_begin', 'bulk_load_finish',
    -- adopting tables, importing, re-embedding (sql/45_adopt.sql, 46_reembed.sql, 47_import.sql)
    'adopt_table', 'concurrent_index_statements', 'begin_reembed', 'finish_reembed',
    'cancel_reembed', 'reembed_status', 'import_rows', 'get_many',
    -- writing
    'store', 'store_many', 'update', 'forget', 'get',
    -- for the async, LangChain and MCP clients (sql/20_write.sql)
    'forget_many', 'clear',
    -- searching
    'search', 'search_text', 'search_hybrid', 'refresh_text_stats', 'count',
    'sync_text_index',
    'fill_text_index',
    'create_metadata_index',
    -- the embedding queue
    'claim_embedding_jobs', 'complete_embedding_jobs', 'fail_embedding_jobs', 'release_claims', 'extend_claims',
    'enqueue_missing', 'release_expired_claims', 'requeue_dead', 'queue_counts',
    'worker_heartbeat', 'worker_stopped', 'run_maintenance', 'schedule_maintenance',
    -- diagnostics
    'diagnose', 'explain_search',
    -- distributed domains on Citus (sql/48_distributed.sql)
    'distribute_domain', 'repair_shard_indexes',
    -- reference docs (make docs)
    'api_reference',
    -- per-domain access (sql/05_trust.sql)
    'grant_domain', 'revoke_domain', 'set_max_content_bytes'
], 'schema memory has exactly the public functions');
SELECT views_are('memory', ARRAY['domains', 'workers', 'embedding_coverage', 'vector_indexes',
    'queue_status'], 'schema memory has exactly the public views');
SELECT tables_are('memory', ARRAY[]::name[], 'schema memory has no tables');
SELECT is((SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = 'memory'::regnamespace
           AND proname IN ('store', 'search', 'create_domain', 'search_hybrid')), 4::bigint,
    'one signature each (named defaults, no overloads)');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace
      AND coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '') = ''
$$, 'every memory function has a COMMENT');
SELECT is_empty($$
    SELECT c.relname::text FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'memory'::regnamespace
      AND coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '') = ''
$$, 'every memory view has a COMMENT');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c (setting)
                      WHERE c.setting LIKE 'search_path=pg_catalog,%')
$$, 'every memory function has a fixed search_path starting with pg_catalog');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
      AND p.prorettype <> 'trigger'::regtype
      AND p.proname NOT IN ('_migration_needed', '_check_known_versions', '_record_migration',
                            '_set_install_search_path')
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c (setting)
                      WHERE c.setting LIKE 'search_path=%')
$$, 'every private helper has a fixed search_path too (the runner''s bootstrap aside)');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace
      AND length(pg_catalog.obj_description(p.oid, 'pg_proc')) <= 30
$$, 'the comments say something (more than 30 characters)');
SELECT function_returns('memory', 'create_domain',
    ARRAY['text', 'integer', 'text', 'text', 'integer', 'integer', 'regconfig', 'text'], 'regclass',
    'create_domain returns regclass');
SELECT function_returns('memory', 'store', 'text', 'store returns the id');
SELECT function_returns('memory', 'store_many', 'setof text', 'store_many returns SETOF text');

-- A full round trip with an EMPTY search_path. pgTAP itself needs its search_path, so the
-- results go into a temp table and are checked afterwards.
CREATE TEMP TABLE esp (step text PRIMARY KEY, result text);
SET LOCAL search_path = '';
INSERT INTO pg_temp.esp VALUES ('create_domain', memory.create_domain('esp', 3)::text);
INSERT INTO pg_temp.esp VALUES ('create_domain again', memory.create_domain('esp', 3)::text);
INSERT INTO pg_temp.esp VALUES ('store',
    memory.store('esp', 'hello empty search path', '{"a": 1}'::jsonb, '[1,0,0]'::public.vector, 'e1'));
INSERT INTO pg_temp.esp VALUES ('store queued', memory.store('esp', 'no embedding yet', id => 'e2'));
INSERT INTO pg_temp.esp
SELECT 'store_many', string_agg(s, ',') FROM memory.store_many('esp', ARRAY['two', 'three'],
    ARRAY['{"b": 2}', '{"b": 3}']::jsonb[], ARRAY['[0,1,0]', '[0,0,1]']::public.vector[],
    ARRAY['e3', 'e4']) AS s;
INSERT INTO pg_temp.esp
SELECT 'search', string_agg(s.id, ',' ORDER BY s.distance)
FROM memory.search('esp', '[1,0.1,0]'::public.vector, 2) AS s;
INSERT INTO pg_temp.esp
SELECT 'search filtered', string_agg(s.id, ',' ORDER BY s.distance)
FROM memory.search('esp', '[1,0.1,0]'::public.vector, 2, '{"b": 3}'::jsonb) AS s;
INSERT INTO pg_temp.esp
SELECT 'search_text', string_agg(s.id, ',') FROM memory.search_text('esp', 'hello path') AS s;
INSERT INTO pg_temp.esp
SELECT 'search_hybrid', string_agg(s.id, ',' ORDER BY s.score DESC)
FROM memory.search_hybrid('esp', 'three', '[1,0,0]'::public.vector, 2) AS s;
INSERT INTO pg_temp.esp SELECT 'get', g.content FROM memory.get('esp', 'e1') AS g;
INSERT INTO pg_temp.esp VALUES ('update', memory.update('esp', 'e1', 'changed', '{"c": 1}'::jsonb)::text);
INSERT INTO pg_temp.esp
SELECT 'after update', g.content || ' ' || g.has_embedding FROM memory.get('esp', 'e1') AS g;
INSERT INTO pg_temp.esp VALUES ('forget', memory.forget('esp', 'e2')::text);
INSERT INTO pg_temp.esp VALUES ('create_hnsw_index', memory.create_hnsw_index('esp', 8, 32));
INSERT INTO pg_temp.esp SELECT 'domains', d.domain || ' ' || d.rows FROM memory.domains AS d;
INSERT INTO pg_temp.esp VALUES ('version', memory.version() ->> 'schema_version');
INSERT INTO pg_temp.esp VALUES ('drop_domain', memory.drop_domain('esp')::text);
INSERT INTO pg_temp.esp VALUES ('search_path', pg_catalog.current_setting('search_path'));
RESET search_path;

SELECT is((SELECT result FROM esp WHERE step = 'search_path'), '""',
    'the calls ran with an empty search_path');
SELECT is(
    (SELECT string_agg(step || '=' || coalesce(result, 'NULL'), '; ' ORDER BY step) FROM esp
     WHERE step NOT IN ('search_path', 'version')),
    'after update=changed false; create_domain=memory_data.esp_memories; '
    || 'create_domain again=memory_data.esp_memories; create_hnsw_index=esp_memories_hnsw; '
    || 'domains=esp 3; drop_domain=; forget=true; get=hello empty search path; search=e1,e3; '
    || 'search filtered=e4; search_hybrid=e1,e4; search_text=e1; store=e1; store queued=e2; '
    || 'store_many=e3,e4; update=true',
    'create_domain, store, store_many, search, search_text, search_hybrid, get, update, forget, '
    || 'create_hnsw_index, domains and drop_domain all work with an empty search_path');
SELECT is((SELECT result FROM esp WHERE step = 'version'),
    (SELECT max(version) FROM memory_private.schema_migrations WHERE kind = 'versioned'),
    'version() too');
SELECT hasnt_table('memory_data', 'esp_memories', 'and the domain is gone');

SELECT * FROM finish();
ROLLBACK;
