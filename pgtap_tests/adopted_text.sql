-- An adopted domain's text index (migration 0024): the tsvectors of an application's table kept
-- beside it in memory_data.<domain>_text, so search_text never computes one at query time.
-- Made at adoption with every row; follows the application's own inserts, updates (content, id),
-- deletes and TRUNCATE through statement triggers; ranks exactly as a factory table holding the
-- same rows; diagnose reports it out of line (triggers disabled, a replica's writes, a partition
-- written on its own) and memory.sync_text_index brings it back; a domain adopted before 0024
-- gets it from the next migrate run (memory_private._after_migrate); drop_domain removes it.
-- (The interleavings with concurrent writers: python/tests/test_adopted_text.py.)
BEGIN;
SELECT plan(96);

CREATE SCHEMA app;
CREATE TABLE app.notes (
    id bigint PRIMARY KEY,
    body varchar NOT NULL,
    emb vector(3),
    metadata jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO app.notes (id, body)
SELECT g, (ARRAY['the quick brown fox jumps', 'a lazy dog sleeps all day',
                 'quick thinking saves the day', 'brown bread and butter',
                 'the fox and the hound'])[1 + g % 5] || ' note ' || g
FROM generate_series(1, 40) AS g;

SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb');
SELECT has_table('memory_data', 'notes_text', 'adoption made the text index beside the table');
SELECT is((SELECT count(*) FROM memory_data.notes_text), 40::bigint, '... with every row');
SELECT is((SELECT count(*) FROM app.notes AS n JOIN memory_data.notes_text AS x ON x.id = n.id::text
           WHERE x.content_tsv = to_tsvector('english', n.body::text) || ''' dl'':1'::tsvector
              || ''::tsvector),
    40::bigint, '... each the stored tsvector of a factory table (the length marker included)');
SELECT is((SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indexrelid
           WHERE i.indrelid = 'memory_data.notes_text'::regclass),
    'notes_text_gin,notes_text_pkey', '... with its GIN index');
SELECT is((SELECT count(*) FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
           JOIN pg_am AS a ON a.oid = c.relam
           WHERE i.indrelid = 'app.notes'::regclass AND a.amname = 'gin'),
    0::bigint, 'no full-text index on the application''s table');
SELECT is((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
           WHERE tgrelid = 'app.notes'::regclass AND tgname LIKE 'pgmemo_notes_text%'),
    'pgmemo_notes_text_delete,pgmemo_notes_text_insert,pgmemo_notes_text_truncate,pgmemo_notes_text_update',
    'four statement triggers keep it');
SELECT has_column('memory_data', 'notes_memories', 'content_tsv', 'the view has content_tsv');

-- Ranks exactly as a factory table holding the same rows.
SELECT memory.create_domain('twin', 3);
SELECT memory.store_many('twin', array_agg(body::text ORDER BY id), NULL, NULL,
    array_agg(id::text ORDER BY id)) FROM app.notes;
SELECT memory.refresh_text_stats('twin');
SELECT memory.refresh_text_stats('notes');
SELECT is((SELECT documents || '/' || avg_length || '/' || common_lexemes::text
           FROM memory_private.text_stats WHERE domain = 'notes'),
    (SELECT documents || '/' || avg_length || '/' || common_lexemes::text
     FROM memory_private.text_stats WHERE domain = 'twin'),
    'the same statistics (N, average length, common words from ANALYZE of the text index)');
SELECT is(
    (SELECT array_agg(s.id || ':' || round(s.rank::numeric, 9) ORDER BY s.rank DESC, s.id)
     FROM memory.search_text('notes', q.q, 10) AS s),
    (SELECT array_agg(s.id || ':' || round(s.rank::numeric, 9) ORDER BY s.rank DESC, s.id)
     FROM memory.search_text('twin', q.q, 10) AS s),
    'search_text: the same rows and scores as the factory table for "' || q.q || '"')
FROM (VALUES ('quick fox'), ('"brown bread"'), ('day -lazy'), ('fox OR butter')) AS q (q);
SELECT is((SELECT array_agg((SELECT count(*) FROM memory.search_text('notes', q.q, 10)) ORDER BY q.q)
           FROM (VALUES ('quick fox'), ('"brown bread"'), ('day -lazy'), ('fox OR butter')) AS q (q)),
    ARRAY[8, 8, 10, 10]::bigint[], '... each finding rows');
SELECT is(
    (SELECT array_agg(s.id ORDER BY s.rank DESC, s.id)
     FROM memory.search_text('notes', 'quick fox', 10, match => 'all') AS s),
    (SELECT array_agg(s.id ORDER BY s.rank DESC, s.id)
     FROM memory.search_text('twin', 'quick fox', 10, match => 'all') AS s),
    'match => all: the same rows');

-- search_hybrid on an adopted domain: its branch (cached plan, postings from the text index)
-- ranks as the factory twin's, and as its own general path (taken with with_embeddings).
UPDATE app.notes SET emb = ARRAY[1 + id % 3, 1 + id % 5, 1 + id % 7]::real[]::vector;
UPDATE memory_data.twin_memories
SET embedding = ARRAY[1 + id::int % 3, 1 + id::int % 5, 1 + id::int % 7]::real[]::vector;
DELETE FROM memory_private.embedding_queue;
SET LOCAL hnsw.ef_search = 1000;
SELECT is(
    (SELECT array_agg(s.id || ':' || round(s.score::numeric, 9) ORDER BY s.score DESC, s.id)
     FROM memory.search_hybrid('notes', q.q, '[2,3,4]', 10) AS s),
    (SELECT array_agg(s.id || ':' || round(s.score::numeric, 9) ORDER BY s.score DESC, s.id)
     FROM memory.search_hybrid('twin', q.q, '[2,3,4]', 10) AS s),
    'search_hybrid: the same rows and scores as the factory table for "' || q.q || '"')
FROM (VALUES ('quick fox'), ('brown bread butter')) AS q (q);
SELECT is(
    (SELECT array_agg(s.id || ':' || round(s.score::numeric, 9) ORDER BY s.score DESC, s.id)
     FROM memory.search_hybrid('notes', 'quick fox', '[2,3,4]', 10) AS s),
    (SELECT array_agg(s.id || ':' || round(s.score::numeric, 9) ORDER BY s.score DESC, s.id)
     FROM memory.search_hybrid('notes', 'quick fox', '[2,3,4]', 10, with_embeddings => true) AS s),
    '... and as its general path');
SELECT ok(position('WHEN ''notes''' IN (SELECT prosrc FROM pg_proc WHERE proname = 'search_hybrid')) > 0,
    'search_hybrid has a branch for the adopted domain');
RESET hnsw.ef_search;

-- The stored tsvector is what is searched and ranked (none computed from the content).
UPDATE memory_data.notes_text SET content_tsv = 'zebra:1 '' dl'':2'::tsvector WHERE id = '7';
SELECT is((SELECT array_agg(s.id) FROM memory.search_text('notes', 'zebra') AS s), ARRAY['7'],
    'search_text reads the text index, not the content');
SELECT is(memory.sync_text_index('notes'), 1::bigint,
    'sync_text_index puts back the one row that was not the content''s');
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'zebra')), 0::bigint, '... and it is gone');

-- The application's own writes.
INSERT INTO app.notes (id, body) VALUES (100, 'an aardvark arrives'), (101, 'another aardvark');
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'aardvark') AS s),
    ARRAY['100', '101'], 'an insert is searchable at once');
UPDATE app.notes SET body = 'a badger now' WHERE id = 100;
SELECT is((SELECT array_agg(s.id) FROM memory.search_text('notes', 'badger') AS s), ARRAY['100'],
    'a content update: found by its new words');
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'arrives')), 0::bigint,
    '... and not by its old ones');
CREATE TEMP TABLE before_meta AS SELECT xmin::text AS x FROM memory_data.notes_text WHERE id = '101';
UPDATE app.notes SET metadata = '{"k": 1}', emb = '[1,2,3]' WHERE id = 101;
SELECT is((SELECT xmin::text FROM memory_data.notes_text WHERE id = '101'),
    (SELECT x FROM before_meta), 'a metadata or embedding update does not rewrite its tsvector');
UPDATE app.notes SET id = 102 WHERE id = 101;
SELECT is((SELECT array_agg(x.id) FROM memory_data.notes_text AS x WHERE x.id IN ('101', '102')),
    ARRAY['102'], 'an id change moves its row');
UPDATE app.notes SET id = id + 1000, body = body || ' moved' WHERE id IN (100, 102);
SELECT is((SELECT array_agg(x.id ORDER BY x.id) FROM memory_data.notes_text AS x
           WHERE x.id IN ('100', '102', '1100', '1102') AND x.content_tsv @@ 'move'::tsquery),
    ARRAY['1100', '1102'], 'two rows changing id and content in one statement');
DELETE FROM app.notes WHERE id IN (1100, 1102);
SELECT is((SELECT count(*) FROM memory_data.notes_text WHERE id IN ('1100', '1102')), 0::bigint,
    'a delete removes its rows');
INSERT INTO app.notes (id, body)
SELECT 200, string_agg('w' || g, ' ') FROM generate_series(1, 30000) AS g;
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'w100')), 1::bigint,
    'a row of 30,000 distinct words (198,887 characters) is written and found by its first ones');
SELECT is((SELECT count(*) FROM memory.search_text('notes', 'w29999')), 0::bigint,
    '... its first 100,000 characters (a bounded prefix: never too long for a tsvector)');

-- Out of line, reported, and brought back.
SELECT is((SELECT count(*) FROM memory.diagnose('notes') WHERE check_name = 'text_index_out_of_sync'),
    0::bigint, 'diagnose: in line');
ALTER TABLE app.notes DISABLE TRIGGER pgmemo_notes_text_insert;
INSERT INTO app.notes (id, body) VALUES (300, 'a capybara unseen');
SELECT is((SELECT detail FROM memory.diagnose('notes') WHERE check_name = 'text_index_out_of_sync'),
    'The text index of adopted table app.notes (memory_data.notes_text) is out of line with it: '
    || 'its triggers pgmemo_notes_text_insert are disabled or missing, so the table''s writes no '
    || 'longer reach it; 1 row of the table is missing from it (memory.search_text does not '
    || 'find it). Rebuild it from the table (the table''s writers wait meanwhile).',
    'diagnose: a disabled trigger and the row it missed');
ALTER TABLE app.notes ENABLE TRIGGER pgmemo_notes_text_insert;
SELECT is((SELECT fix_sql FROM memory.diagnose('notes') WHERE check_name = 'text_index_out_of_sync'),
    'SELECT memory.sync_text_index(''notes'');', '... its fix once the triggers are on');
SET LOCAL session_replication_role = replica;
UPDATE app.notes SET body = 'a capybara replicated' WHERE id = 1;
DELETE FROM app.notes WHERE id = 2;
RESET session_replication_role;
SELECT is(memory.sync_text_index('notes'), 3::bigint,
    'sync_text_index: the missed insert, the replica''s update and its delete');
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'capybara') AS s),
    ARRAY['1', '300'], '... all searchable as they are');
SELECT is(memory.sync_text_index('notes'), 0::bigint, '... and again: nothing to do');
SELECT is(memory.sync_text_index('twin'), 0::bigint, 'a factory domain: nothing to do');
SELECT memory.refresh_text_stats('notes');
TRUNCATE app.notes;
SELECT is((SELECT count(*) FROM memory_data.notes_text), 0::bigint, 'TRUNCATE empties it');
-- (stop 28, an attack: a TRUNCATE adds to no counter of writes, so the statistics of the rows
-- gone stayed until 10% more rows were written, and ranked the new rows by them)
SELECT ok(memory_private._text_stats_stale(memory_private._domain('notes')),
    '... and its text statistics are stale: the next run_maintenance refreshes them');

-- (stop 29) A TRUNCATE ONLY of a table with inheritance children leaves the children's rows:
-- the text index loses only the rows gone (it lost all, and search_text the children's rows).
CREATE TABLE app.fam (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3));
CREATE TABLE app.fam_kid () INHERITS (app.fam);
INSERT INTO app.fam (id, body) VALUES (1, 'a parent walrus'), (2, 'another parent walrus');
INSERT INTO app.fam_kid (id, body) VALUES (3, 'a child walrus');
SELECT memory.adopt_table('fam', 'app.fam', 'id', 'body', 'emb');
SELECT memory.refresh_text_stats('fam');
TRUNCATE ONLY app.fam;
SELECT is((SELECT array_agg(s.id) FROM memory.search_text('fam', 'walrus') AS s), ARRAY['3'],
    'TRUNCATE ONLY of a table with a child: search_text still finds the child''s row');
SELECT is((SELECT array_agg(id) FROM memory_data.fam_text), ARRAY['3'],
    '... the text index lost the table''s own rows alone');
SELECT ok(memory_private._text_stats_stale(memory_private._domain('fam')),
    '... and its text statistics are stale');
-- a child attached with ALTER TABLE ... INHERIT: its rows are indexed by the next run_maintenance
CREATE TABLE app.fam_late (id bigint NOT NULL, body text NOT NULL, emb vector(3));
INSERT INTO app.fam_late (id, body) VALUES (4, 'a late walrus');
ALTER TABLE app.fam_late INHERIT app.fam;
SELECT is((SELECT (m ->> 'relations_rewired') FROM memory.run_maintenance() AS m), '1',
    'a child attached with INHERIT is wired by run_maintenance');
SELECT set_eq($$SELECT id FROM memory.search_text('fam', 'walrus')$$, ARRAY['3', '4'],
    '... and its rows are then found');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'fam' AND row_id = '4'),
    1::bigint, '... and queued');
-- a child attached while a fill is under way (adopted without indexes): the fill goes on, then
-- reads the child, whose ids lie below the fill's last one
SELECT memory.drop_domain('fam');
INSERT INTO app.fam (id, body) SELECT g, 'a parent seal ' || g FROM generate_series(10, 14) AS g;
SELECT memory.adopt_table('fam', 'app.fam', 'id', 'body', 'emb', create_indexes => false);
SELECT is(memory.fill_text_index('fam', 2), 2::bigint, 'a fill under way (ids 3 and 4)');
CREATE TABLE app.fam_early (id bigint NOT NULL, body text NOT NULL, emb vector(3));
INSERT INTO app.fam_early (id, body) VALUES (1, 'an early seal');
ALTER TABLE app.fam_early INHERIT app.fam;
SELECT is((SELECT (m ->> 'relations_rewired') || '/' || (m ->> 'text_rows_filled')
           FROM memory.run_maintenance() AS m), '1/6',
    '... a child attached meanwhile: run_maintenance ends the fill, then reads the child');
SELECT set_eq($$SELECT id FROM memory.search_text('fam', 'seal', 10)$$,
    ARRAY['1', '10', '11', '12', '13', '14'], '... and every row is found');
SELECT is((SELECT count(*) FROM memory_private.text_fills WHERE domain = 'fam'), 0::bigint,
    '... the fill done');
TRUNCATE app.fam;
SELECT is((SELECT count(*) FROM memory_data.fam_text), 0::bigint,
    'a TRUNCATE of the table and its children empties it');
SELECT memory.drop_domain('fam');

-- A domain adopted before 0024 (the full-text index on the table, no text index) gets it from
-- the next migrate run.
INSERT INTO app.notes (id, body) VALUES (1, 'an old ocelot'), (2, 'an old otter');
ALTER TABLE app.notes DISABLE TRIGGER pgmemo_notes_text_insert;
INSERT INTO app.notes (id, body) VALUES (3, 'a newer ocelot');
ALTER TABLE app.notes ENABLE TRIGGER pgmemo_notes_text_insert;
SELECT memory_private._unwire(d) FROM memory_private.domains AS d WHERE d.domain = 'notes';
DROP VIEW memory_data.notes_memories;
DROP TABLE memory_data.notes_text;
SELECT memory_private._adopted_view(d, memory_private._adopted_opt(d))
FROM memory_private.domains AS d WHERE d.domain = 'notes';
SELECT memory_private._wire(d) FROM memory_private.domains AS d WHERE d.domain = 'notes';
SELECT memory_private._search_static_refresh();
CREATE INDEX pgmemo_notes_fts ON app.notes USING gin (to_tsvector('english', left(body::text, 100000)));
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'ocelot') AS s),
    ARRAY['1', '3'], 'before: search_text computes (no text index)');
SELECT memory_private._after_migrate();
SELECT is((SELECT count(*) FROM memory_data.notes_text), 3::bigint,
    'after migrate: the text index, with every row');
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'ocelot') AS s),
    ARRAY['1', '3'], '... searched through it');
SELECT is(to_regclass('app.pgmemo_notes_fts'), NULL, '... and the old index on the table dropped');

-- Each row's content size (migration 0025), as the view's octet_length(content): BM25's first
-- stage reads an unfiltered search's postings from the text index alone.
UPDATE app.notes SET body = 'an old ocelot, grown longer' WHERE id = 1;
INSERT INTO app.notes (id, body) VALUES (4, 'été à l''hôtel ocelot');
SELECT is((SELECT count(*) FROM app.notes AS n JOIN memory_data.notes_text AS x ON x.id = n.id::text
           WHERE x.content_bytes = octet_length(n.body::text)), 4::bigint,
    'content_bytes: each row''s content size, through inserts and updates (bytes, not characters)');
SELECT is(memory_private._text_postings_table(d), 'memory_data.notes_text'::regclass,
    '... so the postings are read there') FROM memory_private.domains AS d WHERE d.domain = 'notes';
-- A text index made by 0024, without sizes: searched through the view until migrate fills it.
SELECT memory_private._unwire(d) FROM memory_private.domains AS d WHERE d.domain = 'notes';
ALTER TABLE memory_data.notes_text DROP COLUMN content_bytes;
SELECT memory_private._search_static_refresh();
SELECT is(memory_private._text_postings_table(d), NULL, 'an index of 0024: postings through the view')
FROM memory_private.domains AS d WHERE d.domain = 'notes';
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'ocelot') AS s),
    ARRAY['1', '3', '4'], '... and found alike');
SELECT matches((SELECT detail FROM memory.diagnose('notes') WHERE check_name = 'text_index_out_of_sync'),
    'lacks the rows'' content sizes', 'diagnose: the sizes are missing');
SELECT memory_private._after_migrate();
SELECT is((SELECT count(*) FROM memory_data.notes_text WHERE content_bytes IS NULL), 4::bigint,
    'after migrate: the column, no size filled yet (the fill would block the table''s writers)');
INSERT INTO app.notes (id, body) VALUES (6, 'an ocelot written after the upgrade');
SELECT is((SELECT content_bytes FROM memory_data.notes_text WHERE id = '6'),
    octet_length('an ocelot written after the upgrade'), '... a row written since has its size');
SELECT is(memory_private._text_postings_table(d), NULL, '... postings still through the view')
FROM memory_private.domains AS d WHERE d.domain = 'notes';
SELECT is((memory.run_maintenance() ->> 'text_sizes_filled')::bigint, 4::bigint,
    'run_maintenance fills the sizes');
SELECT is((SELECT count(*) FROM app.notes AS n JOIN memory_data.notes_text AS x ON x.id = n.id::text
           WHERE x.content_bytes = octet_length(n.body::text)), 5::bigint, '... every row''s');
SELECT is(memory_private._text_postings_table(d), 'memory_data.notes_text'::regclass,
    '... NOT NULL, read by the postings') FROM memory_private.domains AS d WHERE d.domain = 'notes';
SELECT is((SELECT count(*) FROM memory.diagnose('notes') WHERE check_name = 'text_index_out_of_sync'),
    0::bigint, '... and diagnose is content');
SELECT is((memory.run_maintenance() ->> 'text_sizes_filled')::bigint, 0::bigint, '... and again: nothing');
INSERT INTO app.notes (id, body) VALUES (5, 'ocelot five');
SELECT is((SELECT array_agg(s.id ORDER BY s.id) FROM memory.search_text('notes', 'ocelot') AS s),
    ARRAY['1', '3', '4', '5', '6'], '... the trigger writes sizes again');

-- A NOT NULL on the id dropped after adoption (which requires it): the application's write of a
-- row without an id still succeeds; pgmemo cannot address that row, so neither queues nor
-- indexes it.
ALTER TABLE app.notes ADD CONSTRAINT notes_id_key UNIQUE (id);
ALTER TABLE app.notes DROP CONSTRAINT notes_pkey;
ALTER TABLE app.notes ALTER COLUMN id DROP NOT NULL;
SELECT lives_ok($$INSERT INTO app.notes (id, body) VALUES (NULL, 'an ocelot without an id')$$,
    'a row without an id: the application''s write succeeds');
SELECT lives_ok($$UPDATE app.notes SET body = 'an ocelot still without an id' WHERE id IS NULL$$,
    '... and its update');
SELECT is((SELECT count(*) FROM memory_data.notes_text WHERE id IS NULL), 0::bigint,
    '... not indexed');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE row_id IS NULL), 0::bigint,
    '... nor queued');
SELECT is((SELECT fix_sql FROM memory.diagnose('notes') WHERE check_name = 'adopted_id_nullable'),
    'ALTER TABLE app.notes ALTER COLUMN id SET NOT NULL;', 'diagnose: the id may be NULL');
DELETE FROM app.notes WHERE id IS NULL;

-- Adopted without indexes (create_indexes => false): the text index is made empty, with its
-- triggers, and filled later in batches (memory.fill_text_index, run_maintenance) that never
-- block the table's writers (the interleavings: python/tests/test_adopted_text.py).
CREATE TABLE app.big (id integer PRIMARY KEY, body text, emb vector(3));
INSERT INTO app.big SELECT g, 'a quiet row ' || g FROM generate_series(1, 23) AS g;
SELECT memory.adopt_table('big', 'app.big', 'id', 'body', 'emb', create_indexes => false);
SELECT is((SELECT count(*) FROM memory_data.big_text), 0::bigint,
    'create_indexes => false: the text index is made empty');
SELECT is((SELECT rows_filled FROM memory_private.text_fills WHERE domain = 'big'), 0::bigint,
    '... and registered to be filled');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'big'), 0::bigint,
    '... and its rows without an embedding not queued in adoption''s transaction');
INSERT INTO app.big VALUES (100, 'a loud row arrives');
SELECT is((SELECT array_agg(s.id) FROM memory.search_text('big', 'loud') AS s), ARRAY['100'],
    'a row written after adoption is indexed at once (its trigger)');
SELECT matches((SELECT detail FROM memory.diagnose('big') WHERE check_name = 'text_index_out_of_sync'),
    'is being filled \(0 rows so far', 'diagnose: being filled');
SELECT is(memory.fill_text_index('big', 10), 10::bigint, 'fill_text_index adds a batch');
SELECT is(memory.fill_text_index('big', 10), 10::bigint, '... and the next');
SELECT is((SELECT rows_filled FROM memory_private.text_fills WHERE domain = 'big'), 20::bigint,
    '... counted');
SELECT is((SELECT last_id FROM memory_private.text_fills WHERE domain = 'big'), '20',
    '... in id order, from the last batch''s last id');
SELECT is(memory.fill_text_index('big', 10), 4::bigint,
    '... fewer than asked (the rows went through, the one its trigger indexed included): done');
SELECT is((SELECT count(*) FROM memory_private.text_fills WHERE domain = 'big'), 0::bigint,
    '... and the domain leaves text_fills');
SELECT is((SELECT count(*) FROM app.big AS b JOIN memory_data.big_text AS x ON x.id = b.id::text
           WHERE x.content_tsv = to_tsvector('english', b.body) || ''' dl'':1'::tsvector || ''::tsvector
             AND x.content_bytes = octet_length(b.body)), 24::bigint,
    'every row, as the immediate fill makes it');
SELECT is(memory.fill_text_index('big', 10), 0::bigint, 'a complete index: nothing to do');
SELECT is(memory.fill_text_index('twin', 10), 0::bigint, 'a factory domain: nothing to do');
SELECT is((SELECT count(*) FROM memory.search_text('big', 'quiet', 30)), 23::bigint, 'searched: every row');
SELECT throws_ok($$SELECT memory.fill_text_index('big', 0)$$, '22023',
    'max_rows must be positive, got 0', 'max_rows 0 is refused');
SELECT throws_ok($$SELECT memory.fill_text_index('big', 200000)$$, '54000',
    'max_rows is 200000; one call fills at most 100000 rows', '... and a batch above the limit');
SELECT throws_ok($$SELECT memory.fill_text_index('nope', 10)$$, '42704', NULL,
    '... and an unknown domain');
-- ids of other types go in their own order (uuid here; text and varchar compare in the column's
-- collation)
CREATE TABLE app.uu (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text NOT NULL, emb vector(3));
INSERT INTO app.uu (body) SELECT 'a uuid row ' || g FROM generate_series(1, 7) AS g;
SELECT memory.adopt_table('uu', 'app.uu', 'id', 'body', 'emb', create_indexes => false);
SELECT is(ARRAY[memory.fill_text_index('uu', 3), memory.fill_text_index('uu', 3),
                memory.fill_text_index('uu', 3)], ARRAY[3, 3, 1]::bigint[],
    'a uuid id: batches in its order');
SELECT is((SELECT count(*) FROM memory_data.uu_text), 7::bigint, '... every row');
SELECT memory.drop_domain('uu');
-- run_maintenance fills too
SELECT memory.drop_domain('big');
SELECT memory.adopt_table('big', 'app.big', 'id', 'body', 'emb', create_indexes => false);
SELECT is((SELECT (m ->> 'text_rows_filled')::bigint || '/' || (m ->> 'enqueued_missing')
           FROM memory.run_maintenance() AS m), '24/24',
    'run_maintenance fills a text index being filled, and queues its rows');
SELECT is((SELECT count(*) FROM memory_private.text_fills), 0::bigint, '... to the end');
SELECT memory.drop_domain('big');

SELECT memory.drop_domain('notes');
SELECT is(to_regclass('memory_data.notes_text'), NULL, 'drop_domain removes the text index');

SELECT * FROM finish();
ROLLBACK;
