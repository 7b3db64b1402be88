-- 0023_hybrid_one_statement: memory.search_hybrid generated, its fusion inside its one statement.
--
-- Why: memory.search_hybrid called the generated memory_private._search_hybrid_static (a
-- PL/pgSQL function with five SET clauses, its rows copied into a tuple store) and then fused its
-- rows in a statement of its own (two window orders, two sorts, the rows copied twice more), set
-- up on every call: on a small domain a tenth of the hybrid's instructions (callgrind,
-- BENCHMARKS.md). memory.search_hybrid is now generated itself, as memory.search is: a branch
-- per domain runs the candidates and their fusion as one statement planned once per session
-- (memory_private._hybrid_fusion_sql, the fusion's one place, also over the general path's
-- candidates), with the access check and the argument checks spliced in
-- (sql/37_search_hybrid.sql). The old function is dropped here; every migrate regenerates
-- memory.search_hybrid.
-- Not breaking: the dropped function is private; memory.search_hybrid's signature, grants and
-- results are unchanged.

DROP FUNCTION IF EXISTS memory_private._search_hybrid_static(
    vector, integer, jsonb, double precision, tsvector, integer, bigint, double precision,
    double precision, boolean, text, memory_private.domains, text, integer, jsonb, integer, text,
    boolean, integer, double precision
);
