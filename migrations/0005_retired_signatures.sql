-- 0005_retired_signatures: drop, once, the function signatures earlier releases retired.
--
-- Why: until now the re-applied files in sql/ carried these DROP FUNCTION IF EXISTS lines and ran
-- them on every migrate. A retired signature belongs to the versioned history: dropped here,
-- once, so that sql/ holds only CREATE OR REPLACE (see docs/UPGRADING.md, "Changing a function's
-- signature"). Each was replaced by a signature with one more defaulted parameter (or, for
-- _column, a different result type, which CREATE OR REPLACE cannot change); without the drop
-- the old one would stay behind as a second overload. sql/ creates the current ones right after
-- this file, in the same transaction.

-- create_domain: embedding_type added (0004_halfvec).
DROP FUNCTION IF EXISTS memory.create_domain(text, integer, text, text, integer, integer, regconfig);
-- search, search_text, search_hybrid: ef_search, recency/importance ranking, match.
DROP FUNCTION IF EXISTS memory.search(text, vector, integer, jsonb, double precision);
DROP FUNCTION IF EXISTS memory.search_text(text, text, integer, jsonb);
DROP FUNCTION IF EXISTS memory.search_hybrid(
    text, text, vector, integer, jsonb, double precision, double precision, integer
);
-- begin_reembed: create_index added.
DROP FUNCTION IF EXISTS memory.begin_reembed(text, text, integer);
-- claim_embedding_jobs: only_domain added.
DROP FUNCTION IF EXISTS memory.claim_embedding_jobs(integer, text, interval);
-- memory_private._column: an early build returned category as "char" (now text); same arguments,
-- so this drops the current definition too, and sql/45_adopt.sql creates it again.
DROP FUNCTION IF EXISTS memory_private._column(regclass, name);
