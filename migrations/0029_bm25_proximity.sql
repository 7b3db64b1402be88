-- 0029_bm25_proximity: search_text adds a term-proximity bonus to BM25 (sql/31_bm25.sql:
-- _bm25_row_score_sql's near, the weight pgmemo.bm25_proximity). The functions whose arguments
-- or results changed are dropped here and made again by the SQL files: _bm25_params gained its
-- proximity result, _bm25_row_score_sql and _bm25_score_sql their near / proximity arguments,
-- and _search_text_static the proximity weight before the domain row. Not breaking: private
-- functions.
DROP FUNCTION IF EXISTS memory_private._bm25_params();
DROP FUNCTION IF EXISTS memory_private._bm25_row_score_sql(text, text, text, text, text, text);
DROP FUNCTION IF EXISTS memory_private._bm25_score_sql(memory_private.domains);
DROP FUNCTION IF EXISTS memory_private._search_text_static(
    text[], double precision[], jsonb, tsquery[], tsquery, double precision, double precision,
    double precision, double precision, integer, bigint, double precision[], text[], integer,
    memory_private.domains
);
