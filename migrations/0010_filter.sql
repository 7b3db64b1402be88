-- 0010_filter: the metadata filter language and the filtered-search planner (sql/32_filter.sql,
-- sql/34_search_plan.sql).
--
-- Why a migration: memory.explain_search returns three more columns (path, matching_rows,
-- reason), and CREATE OR REPLACE cannot change a function's result type; the old definition
-- is dropped once here and sql/60_diagnostics.sql creates the new one.

DROP FUNCTION IF EXISTS memory.explain_search(text, integer, jsonb);
