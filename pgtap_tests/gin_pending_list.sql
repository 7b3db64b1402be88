-- Bounded cost of text and metadata searches after many writes: every GIN index pgmemo makes
-- keeps a bounded pending list (memory_private._gin_pending_list_kb, 1 MB; migrations 0018, 0022
-- and 0034), on a domain table as made, after a bulk load rebuilt its indexes, and on an adopted
-- domain's text index (memory_data.<domain>_text, migration 0024). Write cost (migration 0022): a domain table compresses rows
-- only above memory_private._toast_tuple_target() bytes; an adopted table keeps its own setting.
BEGIN;
SELECT plan(8);

CREATE FUNCTION pg_temp.gin_limits(rel regclass) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.relname || ':' || coalesce(array_to_string(c.reloptions, ','), '-'),
        ' ' ORDER BY c.relname), '')
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_am AS a ON a.oid = c.relam
    WHERE i.indrelid = rel AND a.amname = 'gin'
$$;

SELECT is(memory_private._gin_pending_list_kb(), 1024, 'the pending list limit is 1 MB');

SELECT memory.create_domain('ginlimit', 3);
SELECT is(pg_temp.gin_limits('memory_data.ginlimit_memories'),
    'ginlimit_memories_fts:gin_pending_list_limit=1024 '
    'ginlimit_memories_metadata_gin:gin_pending_list_limit=1024',
    'create_domain: both GIN indexes have the bounded pending list');

SELECT memory.bulk_load_begin('ginlimit');
SELECT is(pg_temp.gin_limits('memory_data.ginlimit_memories'), '',
    'bulk_load_begin dropped them');
SELECT memory.bulk_load_finish('ginlimit');
SELECT is(pg_temp.gin_limits('memory_data.ginlimit_memories'),
    'ginlimit_memories_fts:gin_pending_list_limit=1024 '
    'ginlimit_memories_metadata_gin:gin_pending_list_limit=1024',
    'bulk_load_finish rebuilt them with the bounded pending list');

CREATE TABLE public.gin_docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3));
SELECT memory.adopt_table('gindocs', 'public.gin_docs', 'id', 'body', 'emb');
SELECT is(pg_temp.gin_limits('public.gin_docs') || '|' || pg_temp.gin_limits('memory_data.gindocs_text'),
    '|gindocs_text_gin:gin_pending_list_limit=1024',
    'adopt_table: no GIN index on the table; its text index has the bounded pending list');

SELECT is(memory_private._toast_tuple_target(), 4080, 'rows are compressed above 4080 bytes');
SELECT is((SELECT c.reloptions FROM pg_catalog.pg_class AS c
           WHERE c.oid = 'memory_data.ginlimit_memories'::regclass),
    ARRAY['toast_tuple_target=4080'],
    'create_domain: the table compresses rows only above two per page');
SELECT is((SELECT c.reloptions FROM pg_catalog.pg_class AS c
           WHERE c.oid = 'public.gin_docs'::regclass), NULL,
    'adopt_table: the application''s table keeps its storage settings');

SELECT * FROM finish();
ROLLBACK;
