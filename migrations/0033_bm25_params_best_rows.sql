-- 0033_bm25_params_best_rows: memory_private._bm25_params gained its argument best_rows (DEFAULT
-- true): the default candidate budget of a search_text that takes the common words' best rows
-- (200) and of one that does not (700) are its, instead of search_text overriding the budget
-- after reading the session's setting a second time. Its old signature is dropped here (a
-- zero-argument function beside the new one would make every call without an argument
-- ambiguous) and made again by the SQL files. Not breaking: a private function.
DROP FUNCTION IF EXISTS memory_private._bm25_params();
