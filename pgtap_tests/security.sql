-- Security: roles, grants, definer rights, and a search_path hijack attempt.
-- A reader cannot write, a writer cannot create domains, a worker cannot search, no role but the
-- owner touches memory_private or memory_data, every memory.* function and view is granted to a
-- role (and never to PUBLIC), and functions running with the owner's rights never execute a
-- function or operator the caller planted in a schema it put first in its search_path.
BEGIN;
SELECT plan(63);

-- Roles and memberships ----------------------------------------------------------------------
SELECT has_role('memory_reader');
SELECT has_role('memory_writer');
SELECT has_role('memory_worker');
SELECT has_role('memory_admin');
SELECT is_member_of('memory_reader', 'memory_writer');
SELECT is_member_of('memory_writer', 'memory_admin');
SELECT is_member_of('memory_worker', 'memory_admin');
SELECT ok(NOT pg_has_role('memory_worker', 'memory_reader', 'MEMBER'),
          'a worker is not a reader: it sees content only through claimed jobs');
SELECT ok(NOT r.rolcanlogin, r.rolname || ' is NOLOGIN')
FROM pg_roles AS r
WHERE r.rolname IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin')
ORDER BY r.rolname;

-- Schemas --------------------------------------------------------------------------------------
SELECT schema_privs_are('memory', r, ARRAY['USAGE'], r || ' may use schema memory')
FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r;
SELECT schema_privs_are('memory_private', r, '{}'::text[], r || ' has nothing on memory_private')
FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r;
SELECT schema_privs_are('memory_data', r, '{}'::text[], r || ' has nothing on memory_data')
FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r;
SELECT is_empty($$
    SELECT r, s FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r,
        unnest(ARRAY['memory', 'memory_private', 'memory_data', (
            SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
            WHERE e.extname = 'vector')]) AS s
    WHERE has_schema_privilege(r, s, 'CREATE')
$$, 'no pgmemo role can CREATE in the schemas on the functions'' search_path');

-- Tables -----------------------------------------------------------------------------------------
SELECT lives_ok($$SELECT memory.create_domain('sec', 3)$$, 'domain for the privilege tests');
SELECT table_privs_are('memory_private', 'domains', 'memory_admin', '{}'::text[],
                       'admin cannot touch memory_private.domains directly');
SELECT table_privs_are('memory_private', 'embedding_queue', 'memory_worker', '{}'::text[],
                       'worker cannot touch the queue table directly');
SELECT table_privs_are('memory_private', 'workers', 'memory_worker', '{}'::text[],
                       'worker cannot touch the workers table directly');
SELECT table_privs_are('memory_data', 'sec_memories', 'memory_writer', '{}'::text[],
                       'writer cannot touch a domain table directly');
SELECT table_privs_are('memory', 'domains', 'memory_reader', ARRAY['SELECT'],
                       'reader may read the domains view');
SELECT is_empty($$
    SELECT c.oid::regclass, r
    FROM pg_class AS c,
        unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r
    WHERE c.relnamespace IN ('memory_private'::regnamespace, 'memory_data'::regnamespace)
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND (has_table_privilege(r, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           OR (c.relkind = 'S' AND has_sequence_privilege(r, c.oid, 'USAGE, SELECT, UPDATE')))
$$, 'no role but the owner has any privilege on a memory_private or memory_data relation');

-- Functions ----------------------------------------------------------------------------------------
SELECT function_privs_are('memory', 'search', ARRAY['text', 'vector', 'integer', 'jsonb', 'double precision', 'integer', 'interval', 'double precision', 'boolean'],
                          'memory_reader', ARRAY['EXECUTE'], 'reader may search');
SELECT function_privs_are('memory', 'get', ARRAY['text', 'text'], 'memory_reader', ARRAY['EXECUTE'],
                          'reader may get');
SELECT function_privs_are('memory', 'store', ARRAY['text', 'text', 'jsonb', 'vector', 'text'],
                          'memory_reader', '{}'::text[], 'reader cannot store');
SELECT function_privs_are('memory', 'forget', ARRAY['text', 'text'], 'memory_reader', '{}'::text[],
                          'reader cannot forget');
SELECT function_privs_are('memory', 'store', ARRAY['text', 'text', 'jsonb', 'vector', 'text'],
                          'memory_writer', ARRAY['EXECUTE'], 'writer may store');
SELECT function_privs_are('memory', 'search', ARRAY['text', 'vector', 'integer', 'jsonb', 'double precision', 'integer', 'interval', 'double precision', 'boolean'],
                          'memory_writer', ARRAY['EXECUTE'], 'writer may search (it is a reader)');
SELECT function_privs_are('memory', 'create_domain',
                          ARRAY['text', 'integer', 'text', 'text', 'integer', 'integer', 'regconfig', 'text'],
                          'memory_writer', '{}'::text[], 'writer cannot create domains');
SELECT function_privs_are('memory', 'drop_domain', ARRAY['text'], 'memory_writer', '{}'::text[],
                          'writer cannot drop domains');
SELECT function_privs_are('memory', 'create_domain',
                          ARRAY['text', 'integer', 'text', 'text', 'integer', 'integer', 'regconfig', 'text'],
                          'memory_admin', ARRAY['EXECUTE'], 'admin may create domains');
SELECT function_privs_are('memory', 'fail_embedding_jobs', ARRAY['bigint[]', 'text'],
                          'memory_worker', ARRAY['EXECUTE'], 'worker may fail jobs');
SELECT function_privs_are('memory', 'fail_embedding_jobs', ARRAY['bigint[]', 'text'],
                          'memory_writer', '{}'::text[], 'writer cannot fail jobs');
SELECT function_privs_are('memory', 'search', ARRAY['text', 'vector', 'integer', 'jsonb', 'double precision', 'integer', 'interval', 'double precision', 'boolean'],
                          'memory_worker', '{}'::text[], 'worker cannot search');
SELECT function_privs_are('memory_private', '_domain', ARRAY['text'], 'memory_admin', '{}'::text[],
                          'admin cannot call private helpers');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc AS p, aclexplode(p.proacl) AS a
    WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
      AND a.grantee = 0
    UNION ALL
    SELECT p.oid::regprocedure FROM pg_proc AS p
    WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
      AND p.proacl IS NULL
$$, 'no memory or memory_private routine is executable by PUBLIC');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace
      AND NOT EXISTS (
          SELECT FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r
          WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
$$, 'every memory.* function is granted to a pgmemo role (add it to memory_private._api_grants)');
SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class AS c
    WHERE c.relnamespace = 'memory'::regnamespace AND c.relkind IN ('v', 'm')
      AND NOT EXISTS (
          SELECT FROM unnest(ARRAY['memory_reader', 'memory_writer', 'memory_worker', 'memory_admin']) AS r
          WHERE has_table_privilege(r, c.oid, 'SELECT'))
$$, 'every memory.* view is granted to a pgmemo role (add it to memory_private._api_grants)');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc AS p
    WHERE p.pronamespace = 'memory'::regnamespace AND p.prokind = 'f'
      AND (NOT p.prosecdef OR NOT EXISTS (
          SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=pg_catalog,%'))
$$, 'every memory.* function runs with definer rights and a search_path starting with pg_catalog');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc AS p
    WHERE p.prosecdef AND p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE '%pg_temp' OR c LIKE '%pg_temp"')
$$, 'every definer function puts pg_temp last in its search_path');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc AS p
    WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
      AND p.prokind = 'f'
      -- the migration runner's ledger bootstrap (python/pgmemo/bootstrap.sql): invoker rights,
      -- executed only by the migrating owner, outside any definer call
      AND NOT (NOT p.prosecdef AND p.proname IN ('_check_known_versions', '_migration_needed',
                                                 '_record_migration', '_set_install_search_path'))
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c
                      WHERE c IN ('search_path=pg_catalog, pg_temp', 'search_path=pg_catalog, "pg_temp"'))
$$, 'every pgmemo function (generated per-domain ones included) runs with search_path exactly '
    'pg_catalog, pg_temp: no schema others may CREATE in can hold a better-matching overload');

-- Behaviour: what each role can and cannot do ---------------------------------------------------
SELECT lives_ok($$SELECT memory.store('sec', 'the owner wrote this', '{"team": "a"}', '[1,0,0]', 'r1')$$,
                'owner stores a row');
CREATE ROLE pgmemo_test_reader LOGIN IN ROLE memory_reader;
CREATE ROLE pgmemo_test_attacker LOGIN IN ROLE memory_writer;
DO $$ BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO pgmemo_test_attacker', current_database());
END $$;

SET ROLE pgmemo_test_reader;
SELECT results_eq($$SELECT id FROM memory.search('sec', '[1,0,0]', 5)$$, ARRAY['r1'],
                  'a reader searches');
SELECT throws_ok($$SELECT memory.store('sec', 'x')$$, '42501', NULL, 'a reader cannot store');
SELECT throws_ok($$SELECT memory.forget('sec', 'r1')$$, '42501', NULL, 'a reader cannot forget');
SELECT throws_ok($$SELECT * FROM memory_private.domains$$, '42501', NULL,
                 'a reader cannot read memory_private');
RESET ROLE;

SET ROLE pgmemo_test_attacker;
SELECT throws_ok($$SELECT memory.create_domain('evil', 3)$$, '42501', NULL,
                 'a writer cannot create domains');
SELECT throws_ok($$INSERT INTO memory_data.sec_memories (content) VALUES ('direct')$$, '42501', NULL,
                 'a writer cannot write a domain table directly');
SELECT throws_ok($$UPDATE memory_private.embedding_queue SET status = 'dead'$$, '42501', NULL,
                 'a writer cannot touch the queue table');

-- The hijack attempt: a schema the attacker owns, with look-alikes of what the API calls ----------
CREATE SCHEMA evil;
CREATE TABLE evil.tripped (phase text, who text, what text);
CREATE FUNCTION evil.trip(what text) RETURNS void LANGUAGE sql SET search_path = pg_catalog AS $$
    INSERT INTO evil.tripped VALUES
        (coalesce(current_setting('evil.phase', true), ''), current_user::text, what)
$$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('jsonb_typeof'); RETURN pg_catalog.jsonb_typeof($1); END $$;
CREATE FUNCTION evil.vector_dims(public.vector) RETURNS integer LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $$
BEGIN PERFORM evil.trip('vector_dims'); RETURN public.vector_dims($1); END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('current_setting'); RETURN pg_catalog.current_setting($1, $2); END $$;
CREATE FUNCTION evil.websearch_to_tsquery(regconfig, text) RETURNS tsquery LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('websearch_to_tsquery'); RETURN pg_catalog.websearch_to_tsquery($1, $2); END $$;
CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('md5'); RETURN pg_catalog.md5($1); END $$;
CREATE FUNCTION evil._check_k(integer) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('_check_k'); END $$;
CREATE FUNCTION evil.fake_distance(public.vector, public.vector) RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN PERFORM evil.trip('<=>'); RETURN public.cosine_distance($1, $2); END $$;
CREATE OPERATOR evil.<=> (
    LEFTARG = public.vector, RIGHTARG = public.vector, FUNCTION = evil.fake_distance
);
CREATE FUNCTION evil.fake_contains(jsonb, jsonb) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM evil.trip('@>'); RETURN pg_catalog.jsonb_contains($1, $2); END $$;
CREATE OPERATOR evil.@> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.fake_contains);
CREATE TABLE evil.results (what text, n bigint);

SET search_path = evil, pg_catalog, public;
-- Control: the plants work for the attacker's own unqualified calls.
SET evil.phase = 'control';
INSERT INTO evil.results
SELECT 'control', count(*) FROM (
    SELECT jsonb_typeof('{}'::jsonb), '[1,0,0]'::vector <=> '[0,1,0]'::vector,
           '{"a": 1}'::jsonb @> '{"a": 1}'::jsonb, now(), vector_dims('[1,2]'::vector)
) AS s;
-- The attack: every kind of API call, with the caller's search_path poisoned.
SET evil.phase = 'attack';
INSERT INTO evil.results SELECT 'search', count(*) FROM memory.search('sec', '[1,0,0]', 5);
INSERT INTO evil.results
SELECT 'search filtered', count(*) FROM memory.search('sec', '[1,0,0]', 50, '{"team": "a"}');
INSERT INTO evil.results SELECT 'search_text', count(*) FROM memory.search_text('sec', 'owner wrote');
INSERT INTO evil.results
SELECT 'search_hybrid', count(*) FROM memory.search_hybrid('sec', 'owner', '[1,0,0]', 5, '{"team": "a"}');
INSERT INTO evil.results SELECT 'get', count(*) FROM memory.get('sec', 'r1');
INSERT INTO evil.results SELECT 'store', count(*) FROM memory.store('sec', 'attacker row', '{"team": "b"}');
INSERT INTO evil.results
SELECT 'update', count(*) FROM memory.update('sec', 'r1', 'changed by the writer', '{"team": "a"}') AS u (ok)
WHERE u.ok;
INSERT INTO evil.results SELECT 'domains', count(*) FROM memory.domains;
INSERT INTO evil.results SELECT 'version', count(*) FROM memory.version();
RESET evil.phase;
RESET search_path;

SELECT isnt_empty($$SELECT * FROM evil.tripped WHERE phase = 'control' AND what = 'jsonb_typeof'$$,
                  'control: the planted jsonb_typeof catches the attacker''s own unqualified call');
SELECT isnt_empty($$SELECT * FROM evil.tripped WHERE phase = 'control' AND what = '<=>'$$,
                  'control: the planted <=> operator catches the attacker''s own call');
SELECT is_empty($$SELECT * FROM evil.tripped WHERE phase = 'attack'$$,
                'no planted function or operator ran inside the API (definer rights, fixed search_path)');
SELECT results_eq($$SELECT what, n FROM evil.results WHERE what <> 'control' ORDER BY what$$,
                  $$VALUES ('domains', 1::bigint), ('get', 1), ('search', 1), ('search filtered', 1),
                           ('search_hybrid', 1), ('search_text', 1), ('store', 1), ('update', 1),
                           ('version', 1)$$,
                  'the API answered correctly under the poisoned search_path');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
