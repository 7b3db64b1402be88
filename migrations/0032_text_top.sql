-- 0032_text_top: search_text's candidates for common words. Each refresh of a domain's text
-- statistics keeps, per common lexeme, its best rows by BM25's term weight (tf and the row's
-- length); search_text takes them as candidates for the query's common words instead of reading
-- every row of those that fit its budget (sql/31_bm25.sql: _text_top_sql,
-- _text_top_postings_sql). _bm25_postings_cte gained its best_rows argument: dropped here and
-- made again by the SQL files. Not breaking: a private table and functions; the rows come with
-- the next refresh (run_maintenance, memory.refresh_text_stats), search_text reads as before
-- until then.
CREATE TABLE memory_private.text_top (
    domain text NOT NULL REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    lexeme text NOT NULL,
    ids text[] NOT NULL,
    lens integer[] NOT NULL,
    weights real[] NOT NULL,
    PRIMARY KEY (domain, lexeme)
);

COMMENT ON TABLE memory_private.text_top IS
'Per domain and common lexeme (memory_private.text_stats.common_lexemes): its best rows by BM25''s '
'term weight tf / (tf + k1 * (1 - b + b * dl / avgdl)), best first, with their content sizes '
'and weights, at most memory_private._text_top_rows() of them; made by each refresh of the '
'domain''s text statistics. memory.search_text''s candidates for the common words of a query.';

DROP FUNCTION IF EXISTS memory_private._bm25_postings_cte(memory_private.domains, text);
