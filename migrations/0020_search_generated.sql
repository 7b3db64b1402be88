-- 0020_search_generated: memory.search holds its static branches itself.
--
-- Why (issue 13, memory.search within 5% of the hand-written query): the cached plans of an
-- unfiltered or containment-filtered search were in memory_private._search_static, which
-- memory.search called; a PL/pgSQL call that returns rows costs a query of its own (about 60,000
-- instructions per search, callgrind). memory.search is now generated from its template
-- (memory_private._search_definition, sql/30_search.sql) with a branch per domain, by
-- memory_private._search_static_refresh as before, so the old function is dropped here.
-- Not breaking: memory.search keeps its signature, grants and comment; the dropped function is
-- private.

DROP FUNCTION IF EXISTS memory_private._search_static(
    vector, integer, jsonb, double precision, text, name, name, text, text, integer, integer
);
