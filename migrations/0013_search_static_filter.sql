-- 0013_search_static_filter: memory.search's cached plans cover a filtered search too.
--
-- Why a migration: memory_private._search_static (sql/36_search_static.sql) now holds, per
-- domain, the queries of a search with one containment filter on both paths of the planner and
-- sets the call's settings itself, so its arguments changed; memory_private._filter_compile
-- (sql/33_filter_compile.sql) returns one more column (plain: the filter is one containment).
-- CREATE OR REPLACE can change neither, so the old definitions are dropped once here and sql/
-- creates the new ones right after, in the same transaction.
-- Not breaking: both are private; no public function changed its signature.

DROP FUNCTION IF EXISTS memory_private._search_static(
    memory_private.domains, vector, integer, double precision
);
DROP FUNCTION IF EXISTS memory_private._filter_compile(jsonb);
