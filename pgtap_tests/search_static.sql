-- Unfiltered memory.search through the generated static function (sql/36_search_static.sql):
-- create_domain and drop_domain regenerate it, it returns exactly what the dynamic query
-- returns, and a domain it was not generated for (or generated for another table or distance)
-- takes the dynamic path with the same result.
BEGIN;
SELECT plan(11);

SELECT memory.create_domain('st', 4);
SELECT memory.create_domain('st2', 4, 'l2');
INSERT INTO memory_data.st_memories (id, content, embedding)
SELECT 's' || g, 'row ' || g, ARRAY[sin(g), cos(1.3 * g), g % 3, 1]::real[]::vector FROM generate_series(1, 200) AS g;
INSERT INTO memory_data.st2_memories (id, content, embedding)
SELECT 's' || g, 'row ' || g, ARRAY[sin(g), cos(1.3 * g), g % 3, 1]::real[]::vector FROM generate_series(1, 200) AS g;

CREATE FUNCTION pg_temp.src() RETURNS text LANGUAGE sql AS
$$ SELECT p.prosrc FROM pg_catalog.pg_proc AS p WHERE p.oid = 'memory_private._search_static'::regproc $$;
-- The dynamic query (memory_private._search_sql), run directly: what the static branch must equal.
CREATE FUNCTION pg_temp.dynamic(domain text, q vector, k integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_out text;
BEGIN
    EXECUTE 'SELECT string_agg(s.id || '':'' || round(s.similarity::numeric, 6), '','' ORDER BY s.distance, s.id) FROM ('
        || memory_private._search_sql(memory_private._domain(domain), false) || ') AS s'
    INTO v_out USING q, k, NULL::jsonb, NULL::double precision;
    RETURN v_out;
END;
$$;
CREATE FUNCTION pg_temp.got(domain text, q vector, k integer) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(s.id || ':' || round(s.similarity::numeric, 6), ',' ORDER BY s.distance, s.id)
    FROM memory.search(domain, q, k) AS s
$$;

SELECT matches(pg_temp.src(), 'WHEN ''st/memory_data/st_memories/cosine'' THEN',
    'create_domain generated a static branch');
SELECT matches(pg_temp.src(), 'WHEN ''st2/memory_data/st2_memories/l2'' THEN.*<->',
    'each with its own distance operator');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'the static path returns exactly the dynamic query''s rows (cosine)');
SELECT is(pg_temp.got('st2', '[4,6,2,1]', 7), pg_temp.dynamic('st2', '[4,6,2,1]', 7),
    'and for l2');
SELECT is((SELECT count(*) FROM memory.search('st', '[1,2,0,1]', 5, min_similarity => 0.99)),
    (SELECT count(*) FROM memory.search('st', '[1,2,0,1]', 5, filter => '{}', min_similarity => 0.99)),
    'min_similarity applies on the static path');

-- A domain the static function does not know: regenerate while its table is away.
ALTER TABLE memory_data.st_memories RENAME TO st_away;
SELECT memory_private._search_static_refresh();
ALTER TABLE memory_data.st_away RENAME TO st_memories;
SELECT doesnt_match(pg_temp.src(), '''st/memory_data', 'st has no branch now');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'a domain without a branch: the dynamic path, same rows');
SELECT is(current_setting('pgmemo.search_static_miss', true), 'off', 'the miss flag is reset');
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'and again');

SELECT memory.drop_domain('st2');
SELECT doesnt_match(pg_temp.src(), 'st2/', 'drop_domain regenerates: st2 is gone');
SET LOCAL hnsw.iterative_scan = relaxed_order;
SELECT is(pg_temp.got('st', '[1,2,0,1]', 10), pg_temp.dynamic('st', '[1,2,0,1]', 10),
    'with relaxed_order in the session the dynamic (re-sorting) query runs');

SELECT * FROM finish();
ROLLBACK;
