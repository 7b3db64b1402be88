-- 0019_search_plan_count: the filtered-search planner checks an estimate that picks the HNSW
-- scan by counting the matching rows, bounded (issue 13: a stale or correlated estimate sent a
-- filter matching 1% of the rows to the HNSW scan, 5.8x slower than the exact scan); and
-- memory.search's fixed cost per call is lower (issue 13: within 5% of the hand-written query).
--
-- Why a migration: CREATE OR REPLACE can change neither a function's arguments nor its result
-- columns, so the old definitions are dropped once here and sql/ creates the new ones right
-- after, in the same transaction:
-- * memory_private._search_plan (sql/34_search_plan.sql) returns two more columns (planner_rows:
--   the planner's estimate; counted_rows: the rows counted, or NULL);
-- * memory_private._search_static (sql/36_search_static.sql) and memory_private._check_embedding
--   (sql/00_private_helpers.sql) take the few values of the domain they use instead of its
--   registry row (a row argument is built into a tuple on every call); the static branches
--   compare them, so memory_private._search_static_key goes.
-- Not breaking: all are private; no public function changed its signature.

DROP FUNCTION IF EXISTS memory_private._search_plan(
    memory_private.domains, text, jsonb, integer, integer, boolean
);
DROP FUNCTION IF EXISTS memory_private._search_static(
    vector, integer, jsonb, double precision, memory_private.domains, text, integer, integer
);
DROP FUNCTION IF EXISTS memory_private._search_static_key(memory_private.domains);
DROP FUNCTION IF EXISTS memory_private._check_embedding(memory_private.domains, vector, text);
