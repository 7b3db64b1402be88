-- 0015_text_static: search_text planned once per session (issue 14, second part).
--
-- Why: sql/31_bm25.sql now runs unfiltered text searches through a generated function with a
-- cached plan (memory_private._search_text_static), reads BM25's knobs through
-- memory_private._bm25_params, and _parse_text_query also returns the query's term frequencies.
-- The helpers below are retired (their SQL text is now built by one template per statement), and
-- _parse_text_query's result type changed, which CREATE OR REPLACE cannot do: each is dropped
-- here, once; sql/ creates the current ones right after this file, in the same transaction.
-- No table changes; not a breaking change for clients.
DROP FUNCTION IF EXISTS memory_private._parse_text_query(regconfig, text, text);
DROP FUNCTION IF EXISTS memory_private._dl_sql(text, text);
DROP FUNCTION IF EXISTS memory_private._text_stats(memory_private.domains);
DROP FUNCTION IF EXISTS memory_private._bm25_sql(memory_private.domains, boolean);
DROP FUNCTION IF EXISTS memory_private._bm25_k1();
DROP FUNCTION IF EXISTS memory_private._bm25_b();
DROP FUNCTION IF EXISTS memory_private._text_candidate_budget();

-- The common lexemes' shares (about 1,000 keys, ~8 kB) are read on every search_text call, a
-- few keys each: stored uncompressed, they are detoasted once per call instead of decompressed
-- once per key looked up. (Takes effect as each domain's statistics are next refreshed.)
ALTER TABLE memory_private.text_stats ALTER COLUMN common_lexemes SET STORAGE EXTERNAL;
