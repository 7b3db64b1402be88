-- Migrations: the ledger holds every versioned migration and every sql/ file with its sha256;
-- an edited migration is refused; a database migrated by a newer pgmemo is refused.
-- (python/tests/test_migrate.py compares the ledger with the files on disk.)
BEGIN;
SELECT plan(20);

SELECT has_table('memory_private', 'schema_migrations', 'the ledger exists');
SELECT col_is_pk('memory_private', 'schema_migrations', 'version', 'one row per version');
SELECT is((SELECT filename FROM memory_private.schema_migrations WHERE version = '0001'),
    '0001_init.sql', '0001_init.sql is recorded');
SELECT is((SELECT count(*) FROM memory_private.schema_migrations
           WHERE kind = 'versioned' AND version !~ '^[0-9]{4}$'), 0::bigint,
    'versioned rows have NNNN versions');
SELECT is((SELECT count(*) FROM memory_private.schema_migrations
           WHERE kind = 'versioned' AND filename !~ ('^' || version || '_[a-z0-9_]+\.sql$')),
    0::bigint, 'each versioned row names its NNNN_slug.sql file');
SELECT is((SELECT count(*) FROM memory_private.schema_migrations
           WHERE kind = 'repeatable' AND version <> 'R:' || filename), 0::bigint,
    'repeatable rows are R:<file>');
SELECT is((SELECT count(*) FROM memory_private.schema_migrations WHERE checksum !~ '^[0-9a-f]{64}$'),
    0::bigint, 'every row has a sha256 checksum');
SELECT ok((SELECT array_agg(filename ORDER BY filename) FROM memory_private.schema_migrations
           WHERE kind = 'repeatable')
    @> ARRAY['00_private_helpers.sql', '01_version.sql', '10_domains.sql', '20_write.sql',
             '30_search.sql', '40_indexes.sql', '50_queue.sql'],
    'every sql/ file is recorded');
SELECT is((memory.version() ->> 'schema_version'),
    (SELECT max(version) FROM memory_private.schema_migrations WHERE kind = 'versioned'),
    'memory.version() reports the newest applied migration');
SELECT is(memory.version() ->> 'pgvector',
    (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector'),
    'and the pgvector version');

-- _migration_needed: false for an applied file with the same checksum, true for a new one,
-- an error for an edited one.
SELECT is(memory_private._migration_needed('0001', '0001_init.sql',
    (SELECT checksum FROM memory_private.schema_migrations WHERE version = '0001')), false,
    'an applied, unchanged migration is not needed');
SELECT is(memory_private._migration_needed('9998', '9998_new.sql', repeat('a', 64)), true,
    'a new migration is needed');
SELECT throws_ok($$SELECT memory_private._migration_needed('0001', '0001_init.sql', repeat('0', 64))$$,
    'P0001', NULL, 'an edited migration is refused');
SELECT throws_like($$SELECT memory_private._migration_needed('0001', '0001_init.sql', repeat('0', 64))$$,
    'migration 0001_init.sql was edited after it was applied%', 'and the message says which and why');

-- _check_known_versions: a database with a migration this pgmemo does not know is refused.
SELECT lives_ok(format('SELECT memory_private._check_known_versions(%L)',
    (SELECT array_agg(version) FROM memory_private.schema_migrations WHERE kind = 'versioned')),
    'all applied versions known: fine');
INSERT INTO memory_private.schema_migrations (version, filename, checksum, kind)
VALUES ('9999', '9999_from_the_future.sql', repeat('f', 64), 'versioned');
SELECT throws_ok(format('SELECT memory_private._check_known_versions(%L)',
    (SELECT array_agg(version) FROM memory_private.schema_migrations
     WHERE kind = 'versioned' AND version <> '9999')),
    'P0001', 'the database has migrations this pgmemo does not know: 9999_from_the_future.sql',
    'an unknown newer version is refused');
SELECT is(memory.version() ->> 'schema_version', '9999', 'memory.version() shows the newer version');
DELETE FROM memory_private.schema_migrations WHERE version = '9999';

-- _record_migration: a repeat with the same checksum changes nothing; a new checksum is recorded.
UPDATE memory_private.schema_migrations SET applied_at = '2000-01-01' WHERE version = 'R:20_write.sql';
SELECT memory_private._record_migration('R:20_write.sql', '20_write.sql',
    (SELECT checksum FROM memory_private.schema_migrations WHERE version = 'R:20_write.sql'),
    'repeatable');
SELECT is((SELECT applied_at FROM memory_private.schema_migrations WHERE version = 'R:20_write.sql'),
    '2000-01-01'::timestamptz, 'recording the same checksum again is a no-op');
SELECT memory_private._record_migration('R:20_write.sql', '20_write.sql', repeat('b', 64), 'repeatable');
SELECT is((SELECT row(checksum, applied_at > '2000-01-01')::text FROM memory_private.schema_migrations
           WHERE version = 'R:20_write.sql'), '(' || repeat('b', 64) || ',t)',
    'a changed sql/ file is recorded with its new checksum');
SELECT is((SELECT count(*) FROM memory_private.schema_migrations WHERE version = 'R:20_write.sql'),
    1::bigint, 'still one row');

SELECT * FROM finish();
ROLLBACK;
