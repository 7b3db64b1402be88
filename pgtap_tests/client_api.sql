-- What the asyncio, LangChain and MCP clients need: forget_many, clear (rows and jobs gone,
-- domain and indexes kept), with_embeddings on search and search_hybrid, get_many in the
-- order asked, and an invalid domain name answered with a valid one to use instead.
BEGIN;
SELECT plan(28);

SELECT memory.create_domain('ca', 3);
SELECT memory.create_domain('cb', 3, embedding_type => 'halfvec');
SELECT memory.store('ca', 'alpha apples', '{"n": 1}', '[1,0,0]', 'a');
SELECT memory.store('ca', 'beta bananas', '{"n": 2}', '[0,1,0]', 'b');
SELECT memory.store('ca', 'gamma apples waiting', '{"n": 3}', NULL, 'c');  -- queued
SELECT memory.store('ca', 'delta dates', '{"n": 4}', '[0,0,1]', 'd');
SELECT memory.store('cb', 'half', '{}', '[0.5,0.5,0]', 'h');

CREATE FUNCTION pg_temp.jobs(d text) RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM memory_private.embedding_queue AS q WHERE q.domain = d $$;

-- get_many: the order of the ids asked for, duplicates once, unknown ids absent.
SELECT is((SELECT array_agg(g.id ORDER BY ordinality) FROM memory.get_many('ca',
        ARRAY['d', 'nope', 'a', 'c', 'a', 'b']) WITH ORDINALITY AS g),
    ARRAY['d', 'a', 'c', 'b'], 'get_many returns rows in the order asked, each once');
SELECT is((SELECT g.embedding::text FROM memory.get_many('cb', ARRAY['h']) AS g),
    '[0.5,0.5,0]', 'get_many reads a halfvec domain''s vector');

-- search: embedding column NULL unless asked.
SELECT is((SELECT count(*) FROM memory.search('ca', '[1,0.1,0]', 3) AS s WHERE s.embedding IS NULL),
    3::bigint, 'search: embedding is NULL by default');
SELECT is((SELECT array_agg(s.embedding::text ORDER BY s.distance)
           FROM memory.search('ca', '[1,0.1,0]', 2, with_embeddings => true) AS s),
    ARRAY['[1,0,0]', '[0,1,0]'], 'search(with_embeddings => true) returns each stored vector');
SELECT is((SELECT s.embedding::text FROM memory.search('ca', '[1,0,0]', 1, '{"n": 1}',
           with_embeddings => true) AS s),
    '[1,0,0]', 'with a filter too');
SELECT is((SELECT s.embedding::text FROM memory.search('ca', '[1,0,0]', 1,
           importance_weight => 0.1, with_embeddings => true) AS s),
    '[1,0,0]', 'and with memory-aware re-ranking');
SELECT is((SELECT s.embedding::text FROM memory.search('cb', '[1,1,0]', 1,
           with_embeddings => true) AS s),
    '[0.5,0.5,0]', 'a halfvec domain''s vectors come back as vector');

-- search_hybrid: vectors for vector hits, and for rows found by their words alone.
SELECT is((SELECT count(*) FROM memory.search_hybrid('ca', 'apples', '[1,0,0]', 4) AS s
           WHERE s.embedding IS NOT NULL), 0::bigint, 'search_hybrid: embedding NULL by default');
SELECT is((SELECT string_agg(s.id || '=' || coalesce(s.embedding::text, 'null'), ' ' ORDER BY s.id)
           FROM memory.search_hybrid('ca', 'apples', '[1,0,0]', 4, with_embeddings => true) AS s),
    'a=[1,0,0] b=[0,1,0] c=null d=[0,0,1]',
    'search_hybrid(with_embeddings => true): every vector hit''s, NULL for the waiting row');
SELECT is((SELECT string_agg(s.id || '=' || coalesce(s.embedding::text, 'null'), ' ' ORDER BY s.id)
           FROM memory.search_hybrid('ca', 'bananas', NULL, 4, with_embeddings => true) AS s),
    'b=[0,1,0]', 'a text-only hit gets its stored vector');
SELECT is((SELECT array_agg(s.id ORDER BY s.score DESC, s.id)
           FROM memory.search_hybrid('ca', 'apples', '[1,0,0]', 4, with_embeddings => true) AS s),
    (SELECT array_agg(s.id ORDER BY s.score DESC, s.id)
     FROM memory.search_hybrid('ca', 'apples', '[1,0,0]', 4) AS s),
    'with_embeddings does not change the ranking');

-- forget_many.
SELECT is(memory.forget_many('ca', ARRAY['a', 'c', 'nope', NULL]), 2::bigint,
    'forget_many returns how many existed');
SELECT is((SELECT array_agg(g.id ORDER BY g.id) FROM memory.get_many('ca', ARRAY['a', 'b', 'c', 'd']) AS g),
    ARRAY['b', 'd'], 'and deleted exactly those');
SELECT is(pg_temp.jobs('ca'), 0::bigint, 'the forgotten row''s job is gone');
SELECT is(memory.forget_many('ca', ARRAY[]::text[]), 0::bigint, 'an empty array deletes nothing');
SELECT is(memory.forget_many('ca', NULL), 0::bigint, 'NULL ids delete nothing');
SELECT throws_ok($$ SELECT memory.forget_many('nope', ARRAY['x']) $$, '42704', NULL,
    'forget_many on an unknown domain');

-- clear: rows and jobs gone; the domain, its settings and its indexes stay and work.
SELECT memory.store('ca', 'epsilon', '{}', NULL, 'e');
SELECT memory.store('cb', 'kept', '{}', NULL, 'k');
CREATE TEMP TABLE idx AS
SELECT i.indexrelid::regclass::text AS name FROM pg_catalog.pg_index AS i
WHERE i.indrelid = 'memory_data.ca_memories'::regclass;
SELECT is(memory.clear('ca'), 3::bigint, 'clear returns how many rows it deleted');
SELECT is((SELECT count(*) FROM memory_data.ca_memories), 0::bigint, 'the domain is empty');
SELECT is(pg_temp.jobs('ca'), 0::bigint, 'its queued jobs are gone');
SELECT is(pg_temp.jobs('cb'), 1::bigint, 'another domain''s jobs stay');
SELECT is((SELECT d.dimension FROM memory.domains AS d WHERE d.domain = 'ca'), 3,
    'the domain and its settings stay');
SELECT set_eq($$ SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index AS i
                 WHERE i.indrelid = 'memory_data.ca_memories'::regclass $$,
    $$ SELECT name FROM idx $$, 'its indexes stay');
SELECT memory.store('ca', 'after clear', '{}', '[1,0,0]', 'z');
SELECT is((SELECT array_agg(s.id) FROM memory.search('ca', '[1,0,0]', 5) AS s), ARRAY['z'],
    'and it takes new memories');

-- A name that is not valid: the error says so and suggests one that is.
SELECT throws_ok($$ SELECT memory.create_domain('my-docs', 3) $$, '42602',
    'invalid domain name ''my-docs''', 'create_domain refuses my-docs');
SELECT is(memory_private._suggest_domain_name(n), s, 'suggests ' || s || ' for ' || n)
FROM (VALUES ('my-docs', 'my_docs')) AS v (n, s);
SELECT is(
    (SELECT array_agg(memory_private._suggest_domain_name(n) ORDER BY o) FROM unnest(ARRAY[
        'My Docs!', '2024 notes', '--', repeat('x', 60), 'Ärger', 'a' || repeat('_', 50) || 'b'])
        WITH ORDINALITY AS u (n, o)),
    ARRAY['my_docs', 'd_2024_notes', 'memories', repeat('x', 40), 'rger', 'a'],
    'every suggestion is a valid name');
CREATE FUNCTION pg_temp.hint(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v_hint text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN sqlstate || ' ' || v_hint;
END;
$$;
SELECT is(pg_temp.hint($$ SELECT memory.store('my-docs', 'x') $$),
    '42602 Try ''my_docs''.', 'using an invalid name anywhere answers with the valid one to try');

SELECT * FROM finish();
ROLLBACK;
