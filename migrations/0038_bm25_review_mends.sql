-- 0038_bm25_review_mends (stop 36's attack review of search_text). Not breaking: private
-- functions, whose callers the SQL files make again.
-- memory_private._bm25_df_sql(est, postings, n) becomes
-- _bm25_df_sql(est, postings): a word's df is no longer capped at the N of the last statistics
-- refresh (the IDF raises N to the df instead: sql/31_bm25.sql), so the third argument is gone.
DROP FUNCTION IF EXISTS memory_private._bm25_df_sql(text, text, text);
