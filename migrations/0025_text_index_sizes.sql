-- 0025_text_index_sizes: an adopted domain's text index holds each row's content size, so
-- search_text reads its postings there alone.
--
-- Why (issue 14, search_text on adopted tables): BM25's first stage reads, for each posting, the
-- row's id, its tsvector and the size of its content (a factory table's octet_length(content),
-- the length estimate of the first ranking). On an adopted domain it read them through the
-- domain's view, so each posting cost a look-up of the application's table by id (1.78x a
-- factory table's p50 on 3,000 docstrings). memory_data.<domain>_text gains content_bytes; an
-- unfiltered search_text reads the postings from it alone (a filtered one still needs the
-- table's metadata and columns, through the view).
-- In place: the next migrate run (memory_private._text_index_all, after sql/ is applied) adds the
-- column to each text index made by 0024 (instant: the rows written from then on carry their
-- size); memory.run_maintenance fills the others without blocking the table's writers
-- (memory_private._text_sizes_fill). Until a domain's sizes are complete, search_text reads its
-- postings through the view as before; diagnose says so (text_index_out_of_sync).
-- Not breaking: no public signature changes.

-- Retired: the text index's row is one select list (memory_private._text_index_row_sql).
DROP FUNCTION IF EXISTS memory_private._adopted_row_tsvector_sql(memory_private.domains, text);
