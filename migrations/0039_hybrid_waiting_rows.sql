-- 0039_hybrid_waiting_rows (stop 37): the hybrid's text half scores the vector rows and the rows
-- waiting for their embedding, and no longer reads the postings of the query's rare words for
-- five more rows (sql/37_search_hybrid.sql). Not breaking: private functions and a column of a
-- private table, whose users the SQL files make again.
-- A rare word's df is now text_stats.rare_df (half the least frequency among the common lexemes,
-- times N), set by each refresh; the existing rows get it here from what they hold.
ALTER TABLE memory_private.text_stats ADD COLUMN rare_df double precision;

UPDATE memory_private.text_stats AS s
SET rare_df = (
    SELECT min(e.value::text::double precision) / 2 * s.documents
    FROM jsonb_each(s.common_lexemes) AS e
    WHERE e.key <> ' dl'
);

-- _text_lexeme_stats gains an OUT column (rare_df): its old shape cannot be replaced in place.
DROP FUNCTION IF EXISTS memory_private._text_lexeme_stats(memory_private.domains, text[]);
-- The rare words' rows are gone: their constants and their candidate pick.
DROP FUNCTION IF EXISTS memory_private._hybrid_text_rows();
DROP FUNCTION IF EXISTS memory_private._text_rare_candidate_pick(
    text[], double precision[], tsquery, double precision
);
