-- Domains: the factory makes the table, indexes and triggers; bad input fails cleanly.
BEGIN;
SELECT plan(3);
SELECT lives_ok($$SELECT memory.create_domain('startup', 3)$$, 'create_domain works');
SELECT has_table('memory_data', 'startup_memories', 'table made');
SELECT throws_ok($$SELECT memory.create_domain('Bad')$$, '42602', NULL, 'uppercase refused');
SELECT * FROM finish();
ROLLBACK;
