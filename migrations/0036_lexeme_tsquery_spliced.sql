-- 0036_lexeme_tsquery_spliced: memory_private._lexeme_tsquery(text) is gone. Every place that
-- turns a lexeme into a tsquery splices the expression of memory_private._lexeme_tsquery_sql
-- instead (memory.search_hybrid's statement since stop 33; _text_pairs and the candidate picks
-- now): a call of an SQL function with a SET clause is never inlined and cost thousands of
-- instructions per lexeme. The SQL files no longer make it. Not breaking: a private function.
DROP FUNCTION IF EXISTS memory_private._lexeme_tsquery(text);
