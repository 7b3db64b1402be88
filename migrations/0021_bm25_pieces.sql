-- 0021_bm25_pieces: one BM25 query for every kind of domain.
--
-- Why: memory_private._bm25_dist_sql (the BM25 query of a distributed domain) was a near-copy of
-- memory_private._bm25_sql that differed only in its first stage (the postings: Citus cannot
-- push a LIMIT inside a LATERAL subquery to the shards). _bm25_sql now takes that stage from
-- memory_private._bm25_dist_postings_cte for a distributed domain (sql/31_bm25.sql), so the old
-- function is dropped here.
-- Not breaking: the function is private.

DROP FUNCTION IF EXISTS memory_private._bm25_dist_sql(memory_private.domains, text);
