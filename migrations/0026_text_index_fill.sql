-- 0026_text_index_fill: adoption without indexes (create_indexes => false) fills its text index
-- later, in batches, without blocking the table's writers.
--
-- Why (issue 14, adopted tables): since 0024 adoption computed every row's tsvector in its own
-- transaction, holding the table's writers (SHARE ROW EXCLUSIVE, taken by CREATE TRIGGER) until
-- it committed, also with create_indexes => false, whose point is not to block a big live table
-- (measured: 32 s per 100,000 rows of 650 bytes, the machine busy). Now adopt_table(...,
-- create_indexes => false) makes the text index empty, with its triggers (every row written from
-- then on is indexed), and registers the domain here; memory.fill_text_index(domain, max_rows)
-- (`pgmemo adopt --concurrently` calls it until done) and memory.run_maintenance fill the other
-- rows, batch by batch, each batch locking only its own rows (FOR KEY SHARE) for its short
-- transaction. Until a domain's fill is done, search_text finds only the rows filled so far;
-- memory.diagnose says so (text_index_out_of_sync).
-- Not breaking: adopt_table with create_indexes => true (the default) fills at once, as before.

CREATE TABLE memory_private.text_fills (
    domain text PRIMARY KEY REFERENCES memory_private.domains (domain) ON DELETE CASCADE ON UPDATE CASCADE,
    started_at timestamptz NOT NULL DEFAULT now(),
    rows_filled bigint NOT NULL DEFAULT 0,
    last_id text
);

COMMENT ON TABLE memory_private.text_fills IS
'Adopted domains whose text index (memory_data.<domain>_text) is still being filled from their '
'table (adopt_table with create_indexes => false): memory.fill_text_index and '
'memory.run_maintenance add the rows in batches, in id order after last_id (the last batch''s '
'last id, as text), counting them in rows_filled, and delete the domain''s row when done.';

-- The text index's maker takes whether to fill it (sql/45_adopt.sql).
DROP FUNCTION IF EXISTS memory_private._text_index_make(memory_private.domains);
