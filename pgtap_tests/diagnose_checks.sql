-- memory.diagnose is made of one function per check: every memory_private function returning
-- diagnose rows (severity, domain, check_name, detail, fix_sql) has its own COMMENT and is
-- combined by memory_private._diagnose; the 335-line _diagnose_domain and the six-check
-- _diagnose_distributed are gone.
BEGIN;
SELECT plan(9);

CREATE TEMP TABLE checks ON COMMIT DROP AS
SELECT p.oid, p.proname::text AS name
FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'memory_private'::regnamespace
  AND p.proname <> '_diagnose'
  AND p.proargnames @> ARRAY['severity', 'domain', 'check_name', 'detail', 'fix_sql']::text[];

SELECT ok((SELECT count(*) FROM checks WHERE name LIKE '\_check\_%') >= 17,
    'the per-domain checks are functions _check_<name> (17 of them and _check_pgvector)');

SELECT hasnt_function('memory_private', '_diagnose_domain', ARRAY['memory_private.domains'],
    'the one function of all per-domain checks is gone');

SELECT hasnt_function('memory_private', '_diagnose_distributed', ARRAY['memory_private.domains'],
    'the one function of the six Citus checks is gone');

SELECT is_empty($$
    SELECT c.name FROM checks AS c WHERE c.name NOT LIKE '\_check\_%'
$$, 'every function returning diagnose rows (but _diagnose) is one check, _check_<name>');

SELECT is_empty($$
    SELECT c.name FROM checks AS c
    WHERE coalesce(obj_description(c.oid, 'pg_proc'), '') = ''
$$, 'every check function has its own COMMENT');

SELECT is_empty($$
    SELECT c.name FROM checks AS c
    WHERE position('memory_private.' || c.name || '(' IN (
        SELECT p.prosrc FROM pg_catalog.pg_proc AS p
        WHERE p.oid = 'memory_private._diagnose(text)'::regprocedure)) = 0
$$, 'memory_private._diagnose combines every check');

-- A check runs on its own and returns its finding (the combination is not the only way in).
SELECT memory.create_domain('lone', 3);
DROP INDEX memory_data.lone_memories_hnsw;
SELECT results_eq($$
    SELECT c.check_name FROM memory_private.domains AS d
    CROSS JOIN LATERAL memory_private._check_no_vector_index(d) AS c
    WHERE d.domain = 'lone'
$$, $$ VALUES ('no_vector_index') $$, 'memory_private._check_no_vector_index finds it alone');

-- A Citus check alone, here without Citus: the registry says distributed, the table is not.
UPDATE memory_private.domains SET distributed = true WHERE domain = 'lone';
SELECT results_eq($$
    SELECT c.check_name, c.fix_sql FROM memory_private.domains AS d
    CROSS JOIN LATERAL memory_private._check_not_distributed(d) AS c
    WHERE d.domain = 'lone'
$$, $$ VALUES ('not_distributed', 'SELECT memory.distribute_domain(''lone'');') $$,
    'memory_private._check_not_distributed finds it alone');
SELECT results_eq($$
    SELECT check_name FROM memory.diagnose('lone') WHERE severity = 'error' ORDER BY 1
$$, $$ VALUES ('no_vector_index'), ('not_distributed') $$,
    'memory.diagnose combines it with the other checks');

SELECT * FROM finish();
ROLLBACK;
