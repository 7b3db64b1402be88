-- Names that point at something: every entry of the grant list (sql/90_grants.sql) is a function
-- or view that exists, listed once per role; every memory.x / memory_private.x that a COMMENT
-- names exists; the generated reference (memory.api_reference(), docs/SQL_REFERENCE.md) names
-- nothing that does not exist.
BEGIN;
SELECT plan(6);

-- Functions and relations of pgmemo's two schemas, by schema-qualified name.
CREATE TEMP TABLE known ON COMMIT DROP AS
SELECT n.nspname || '.' || p.proname AS name
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('memory', 'memory_private')
UNION
SELECT n.nspname || '.' || c.relname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('memory', 'memory_private');

-- Every comment on an object of memory / memory_private, and the names each one mentions.
CREATE TEMP TABLE commented ON COMMIT DROP AS
SELECT d.objoid::regprocedure::text AS object, d.description
FROM pg_catalog.pg_description AS d
JOIN pg_catalog.pg_proc AS p ON d.classoid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objoid
WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
UNION ALL
SELECT d.objoid::regclass::text || coalesce('.' || a.attname, ''), d.description
FROM pg_catalog.pg_description AS d
JOIN pg_catalog.pg_class AS c ON d.classoid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objoid
LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = d.objsubid
WHERE c.relnamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace);

SELECT ok((SELECT count(*) FROM memory_private._api_grants()) > 20,
    'the grant list is not empty');

SELECT is_empty($$
    SELECT g.role_name, g.object_name, g.object_kind
    FROM memory_private._api_grants() AS g
    WHERE NOT EXISTS (
        SELECT FROM pg_catalog.pg_proc AS p
        WHERE g.object_kind = 'function'
          AND p.pronamespace = 'memory'::regnamespace AND p.proname = g.object_name)
      AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        WHERE g.object_kind = 'view' AND c.relkind IN ('v', 'm')
          AND c.relnamespace = 'memory'::regnamespace AND c.relname = g.object_name)
$$, 'every name in the grant list is a memory function or view of that kind');

SELECT is_empty($$
    SELECT g.role_name, g.object_name, g.object_kind, count(*)
    FROM memory_private._api_grants() AS g
    GROUP BY g.role_name, g.object_name, g.object_kind
    HAVING count(*) > 1
$$, 'no name is listed twice for one role');

SELECT ok((SELECT count(*) FROM commented WHERE description ~ '\mmemory\.[a-z_]') > 10,
    'comments do name memory functions (the check below has something to check)');

SELECT is_empty($$
    SELECT c.object, m[1] AS named
    FROM commented AS c
    CROSS JOIN LATERAL regexp_matches(c.description,
        '\m(memory(?:_private)?\.[a-z_][a-z0-9_]*)', 'g') AS m
    WHERE m[1] NOT IN (SELECT k.name FROM known AS k)
$$, 'every memory.x / memory_private.x named in a COMMENT exists');

SELECT is_empty($$
    SELECT m[1] AS named
    FROM regexp_matches(memory.api_reference(),
        '\m(memory(?:_private)?\.[a-z_][a-z0-9_]*)', 'g') AS m
    WHERE m[1] NOT IN (SELECT k.name FROM known AS k)
$$, 'the generated SQL reference names nothing that does not exist');

SELECT * FROM finish();
ROLLBACK;
