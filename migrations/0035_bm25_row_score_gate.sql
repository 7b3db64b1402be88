-- 0035_bm25_row_score_gate: memory_private._bm25_row_score_sql gained its argument gate (DEFAULT
-- NULL): an SQL condition under which a row is scored at all (memory.search_hybrid's statement
-- passes "the row holds a word of the query", so the ~40% of the vector rows without one skip
-- the unnest of their tsvector; a row that fails it scores 0, as it did). Its old signature is
-- dropped here (an eight-argument function beside the new one would make every call without the
-- argument ambiguous) and made again by the SQL files. Not breaking: a private function.
DROP FUNCTION IF EXISTS memory_private._bm25_row_score_sql(text, text, text, text, text, text, text, text);
