-- Domains: the factory makes the table, indexes and triggers; create_domain is idempotent for
-- identical arguments; bad input fails with a stable SQLSTATE and leaves nothing behind.
BEGIN;
SELECT plan(68);

-- What exists before any domain, to prove failed calls leave nothing behind.
CREATE TEMP TABLE before_state AS
SELECT
    (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'memory_data'::regnamespace)
        AS relations,
    (SELECT count(*) FROM memory_private.domains) AS domains;

CREATE FUNCTION pg_temp.nothing_left(what text) RETURNS text LANGUAGE sql AS $$
    SELECT is(
        (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'memory_data'::regnamespace)
            + (SELECT count(*) FROM memory_private.domains),
        (SELECT relations + domains FROM before_state),
        what || ': no table, index or registry row left behind')
$$;

-- The factory.
SELECT is(memory.create_domain('startup', 3)::text, 'memory_data.startup_memories',
    'create_domain returns the table');
SELECT has_table('memory_data', 'startup_memories', 'table made');
SELECT columns_are('memory_data', 'startup_memories',
    ARRAY['id', 'content', 'embedding', 'embedding_model', 'metadata', 'created_at', 'updated_at',
          'content_tsv'],
    'the contract columns (and the stored tsvector search_text ranks)');
SELECT col_is_pk('memory_data', 'startup_memories', 'id', 'id is the primary key');
SELECT col_type_is('memory_data', 'startup_memories', 'embedding',
    (SELECT n.nspname FROM pg_catalog.pg_extension AS e
     JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'vector'),
    'vector(3)', 'embedding is vector(dimension)');
SELECT col_not_null('memory_data', 'startup_memories', 'content', 'content NOT NULL');
SELECT col_is_null('memory_data', 'startup_memories', 'embedding', 'embedding nullable');
SELECT col_not_null('memory_data', 'startup_memories', 'metadata', 'metadata NOT NULL');
SELECT col_default_is('memory_data', 'startup_memories', 'metadata', '{}'::jsonb,
    'metadata defaults to {}');
SELECT col_type_is('memory_data', 'startup_memories', 'updated_at', 'timestamp with time zone',
    'updated_at is timestamptz');

SELECT is(
    (SELECT string_agg(am.amname || ' ' || opc.opcname, ', ' ORDER BY am.amname, opc.opcname)
     FROM pg_catalog.pg_index AS i
     JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
     JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
     JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
     WHERE i.indrelid = 'memory_data.startup_memories'::regclass),
    'btree text_ops, btree timestamptz_ops, gin jsonb_path_ops, gin tsvector_ops, '
    'hnsw vector_cosine_ops',
    'indexes: pkey, updated_at btree, GIN metadata, GIN full-text, one HNSW cosine');
SELECT is(
    (SELECT pg_catalog.pg_get_indexdef(i.indexrelid) ~ 'WITH \(m=''?16''?, ef_construction=''?64''?\)'
     FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'memory_data.startup_memories'::regclass AND c.relam =
         (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'hnsw')),
    true, 'the HNSW index has m = 16, ef_construction = 64');
SELECT triggers_are('memory_data', 'startup_memories',
    ARRAY['pgmemo_startup_unstale_update', 'pgmemo_startup_enqueue_insert',
          'pgmemo_startup_enqueue_update', 'pgmemo_startup_dequeue_delete'],
    'the queue triggers');
SELECT is(
    (SELECT row(domain, table_name, dimension, distance, embedding_model, rows)::text
     FROM memory.domains),
    '(startup,memory_data.startup_memories,3,cosine,,0)',
    'the domains view lists it with 0 rows');

-- Idempotent for identical arguments, an error for different ones.
SELECT is(memory.create_domain('startup', 3)::text, 'memory_data.startup_memories',
    'create_domain twice with identical arguments returns the same table');
SELECT is(memory.create_domain(domain => 'startup', dimension => 3, distance => 'cosine',
    hnsw_m => 16, hnsw_ef_construction => 64, text_config => 'english')::text,
    'memory_data.startup_memories', 'the defaults spelled out are identical too');
SELECT throws_ok($$SELECT memory.create_domain('startup', 4)$$, '42710',
    'domain "startup" already exists with different settings', 'different dimension: 42710');
SELECT throws_ok($$SELECT memory.create_domain('startup', 3, 'l2')$$, '42710', NULL,
    'different distance: 42710');
SELECT throws_ok($$SELECT memory.create_domain('startup', 3, embedding_model => 'm')$$, '42710',
    NULL, 'different embedding_model: 42710');
SELECT is((SELECT count(*) FROM memory_private.domains WHERE domain = 'startup'), 1::bigint,
    'still one registry row');

-- A table in memory_data that is not a registered domain is not adopted.
CREATE TABLE memory_data.orphan_memories (x int);
SELECT throws_ok($$SELECT memory.create_domain('orphan', 3)$$, '42P07', NULL,
    'an unregistered table of that name: 42P07');
SELECT is((SELECT count(*) FROM memory_private.domains WHERE domain = 'orphan'), 0::bigint,
    'no registry row for it');
DROP TABLE memory_data.orphan_memories;

-- The longest name (40 characters) works, and no identifier is truncated.
SELECT lives_ok($$SELECT memory.create_domain(repeat('a', 40), 3)$$, '40-character name accepted');
SELECT is(
    (SELECT count(*) FROM pg_catalog.pg_constraint
     WHERE conrelid = format('memory_data.%I', repeat('a', 40) || '_memories')::regclass
       AND conname IN (repeat('a', 40) || '_memories_pkey', repeat('a', 40) || '_memories_metadata_obj')),
    2::bigint, 'its constraint names are not truncated');
SELECT lives_ok($$SELECT memory.drop_domain(repeat('a', 40))$$, 'and it can be dropped');

-- Snapshot again now that 'startup' exists.
DELETE FROM before_state;
INSERT INTO before_state
SELECT
    (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'memory_data'::regnamespace),
    (SELECT count(*) FROM memory_private.domains);

-- Names that are not identifiers or try injection: 42602, nothing made.
SELECT throws_ok($$SELECT memory.create_domain('x; drop table y', 3)$$, '42602', NULL,
    'injection attempt refused');
SELECT throws_ok($$SELECT memory.create_domain('"quoted"', 3)$$, '42602', NULL,
    'quoted name refused');
SELECT throws_ok($$SELECT memory.create_domain(repeat('a', 41), 3)$$, '42602', NULL,
    '41 characters refused');
SELECT throws_ok($$SELECT memory.create_domain('Bad', 3)$$, '42602',
    'invalid domain name ''Bad''', 'uppercase refused, the message names it');
SELECT throws_ok($$SELECT memory.create_domain('', 3)$$, '42602', NULL, 'empty name refused');
SELECT throws_ok($$SELECT memory.create_domain(NULL, 3)$$, '42602', NULL, 'NULL name refused');
SELECT throws_ok($$SELECT memory.create_domain('1abc', 3)$$, '42602', NULL,
    'leading digit refused');
SELECT throws_ok($$SELECT memory.create_domain('_abc', 3)$$, '42602', NULL,
    'leading underscore refused');
SELECT throws_ok($$SELECT memory.create_domain('a-b', 3)$$, '42602', NULL, 'dash refused');
SELECT throws_ok($$SELECT memory.create_domain('a b', 3)$$, '42602', NULL, 'space refused');
SELECT throws_ok($$SELECT memory.create_domain(E'abc\n', 3)$$, '42602', NULL,
    'trailing newline refused');
SELECT throws_ok($$SELECT memory.create_domain('café', 3)$$, '42602', NULL,
    'non-ASCII refused');
SELECT pg_temp.nothing_left('bad names');

-- Other bad arguments: 22023 (or 22004 for a NULL text_config), nothing made.
SELECT throws_ok($$SELECT memory.create_domain('d1', 3, 'hamming')$$, '22023',
    'unknown distance ''hamming''', 'unknown distance: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 3, NULL)$$, '22023', NULL,
    'NULL distance: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 0)$$, '22023', NULL, 'dimension 0: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 2001)$$, '22023', NULL,
    'dimension 2001: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', NULL)$$, '22023', NULL,
    'NULL dimension: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 3, hnsw_m => 1)$$, '22023', NULL,
    'hnsw_m 1: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 3, hnsw_m => 16, hnsw_ef_construction => 8)$$,
    '22023', NULL, 'ef_construction < 2m: 22023');
SELECT throws_ok($$SELECT memory.create_domain('d1', 3, text_config => NULL)$$, '22004', NULL,
    'NULL text_config: 22004');
SELECT pg_temp.nothing_left('bad arguments');

-- Unknown domain: 42704 with a hint, everywhere a domain is named.
SELECT throws_ok($$SELECT memory.drop_domain('nope')$$, '42704', 'unknown domain "nope"',
    'drop_domain of an unknown domain: 42704');
SELECT throws_ok($$SELECT memory.drop_domain(NULL)$$, '22004', NULL, 'drop_domain(NULL): 22004');
SELECT throws_ok($$SELECT memory.drop_domain('x; drop table y')$$, '42602', NULL,
    'an injection attempt is just an invalid domain name');
SELECT pg_temp.nothing_left('unknown domains');

-- l2 and inner_product domains get the matching opclass.
SELECT lives_ok($$SELECT memory.create_domain('near', 3, 'l2')$$, 'l2 domain');
SELECT lives_ok($$SELECT memory.create_domain('dot', 3, 'inner_product')$$, 'inner_product domain');
SELECT is(
    (SELECT opc.opcname::text FROM pg_catalog.pg_index AS i
     JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
     JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
     JOIN pg_catalog.pg_am AS am ON am.oid = c.relam AND am.amname = 'hnsw'
     WHERE i.indrelid = 'memory_data.near_memories'::regclass),
    'vector_l2_ops', 'l2 domain: vector_l2_ops');
SELECT is(
    (SELECT opc.opcname::text FROM pg_catalog.pg_index AS i
     JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
     JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
     JOIN pg_catalog.pg_am AS am ON am.oid = c.relam AND am.amname = 'hnsw'
     WHERE i.indrelid = 'memory_data.dot_memories'::regclass),
    'vector_ip_ops', 'inner_product domain: vector_ip_ops');
SELECT is((SELECT text_config::text FROM memory_private.domains WHERE domain = 'near'), 'english',
    'text_config defaults to english');
SELECT lives_ok($$SELECT memory.create_domain('fr', 3, text_config => 'french')$$,
    'another text configuration');
SELECT is(
    (SELECT pg_catalog.pg_get_expr(a.adbin, a.adrelid) LIKE '%''french''::regconfig%'
     FROM pg_catalog.pg_attrdef AS a JOIN pg_catalog.pg_attribute AS t
         ON t.attrelid = a.adrelid AND t.attnum = a.adnum
     WHERE a.adrelid = 'memory_data.fr_memories'::regclass AND t.attname = 'content_tsv'),
    true, 'its stored tsvector (the full-text index''s column) uses it');

-- drop_domain removes the table, the registry row and the queued jobs.
SELECT ok(memory.store('startup', 'queued row') IS NOT NULL, 'a row without embedding');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'startup'), 1::bigint,
    'is queued');
SELECT lives_ok($$SELECT memory.drop_domain('startup')$$, 'drop_domain');
SELECT hasnt_table('memory_data', 'startup_memories', 'table gone');
SELECT is((SELECT count(*) FROM memory_private.domains WHERE domain = 'startup'), 0::bigint,
    'registry row gone');
SELECT is((SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'startup'), 0::bigint,
    'queued jobs gone');
SELECT is((SELECT count(*) FROM memory.domains WHERE domain = 'startup'), 0::bigint,
    'not in the view');
SELECT throws_ok($$SELECT memory.drop_domain('startup')$$, '42704', NULL,
    'dropping it again: 42704');
SELECT lives_ok($$SELECT memory.create_domain('startup', 5)$$,
    'the name can be reused with other settings');
SELECT is((SELECT dimension FROM memory.domains WHERE domain = 'startup'), 5, 'with the new ones');

SELECT * FROM finish();
ROLLBACK;
