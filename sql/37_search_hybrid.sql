-- memory.search_hybrid's candidates: the rows its fusion (sql/30_search.sql) ranks, each with its
-- similarity and distance (NULL: not among the vector search's rows) and its BM25 score
-- (text_rank; NULL or 0: not a text hit).
--
-- The text half does not run a second, independent search: BM25 scores the vector search's own
-- candidates, read from their stored tsvectors, plus the few rows that hold one of the query's
-- rare words (not among the domain's common lexemes, memory_private.text_stats), which are what
-- brings in a document the embedding misses; df is frequency * N for a common word and the count
-- of its postings for a rare one (bench/quality.py: MRR@10 within 0.015 of fusing two full
-- searches, at 1.8-2.6x less server CPU; BENCHMARKS.md, "The hybrid's text half as a
-- rescoring").
--
-- Two paths:
-- * the common case (an embedding, plain words, match 'any', no filter, no with_embeddings, a
--   domain of pgmemo's own with refreshed text statistics): one statement, k-NN and BM25
--   together (memory_private._hybrid_sql), planned once per session in the generated
--   memory_private._search_hybrid_static (a static branch per domain, as _search_static);
-- * otherwise memory_private._hybrid_candidates: memory.search, then
--   memory_private._search_text_hybrid over its rows (sql/31_bm25.sql).

-- How many rows the text half adds beyond the vector search's (the best by their rare words'
-- IDF, scored exactly), how many postings of one rare word it reads at most, and the rows a
-- common word may have and still count as rare (a word outside the common lexemes always does).
CREATE OR REPLACE FUNCTION memory_private._hybrid_text_rows(
    OUT extra integer, OUT per_lexeme bigint, OUT rare_rows double precision
)
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 5, 100::bigint, 20::double precision $$;

-- The candidates by the general path (any filter, query syntax, match, domain kind).
CREATE OR REPLACE FUNCTION memory_private._hybrid_candidates(
    d memory_private.domains, query text, query_embedding vector, k integer, filter jsonb,
    ef_search integer, text_match text, with_embeddings boolean
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, text_rank double precision, created_at timestamptz,
    updated_at timestamptz, embedding vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH v AS MATERIALIZED (
        SELECT s.*
        -- The lateral call runs only when there is an embedding to search with.
        FROM (SELECT WHERE query_embedding IS NOT NULL) AS guard,
            LATERAL memory.search(d.domain, query_embedding, least(greatest(k * 2, 20), 1000),
                filter, ef_search => ef_search, with_embeddings => with_embeddings) AS s
    ),
    t AS (
        SELECT s.*
        FROM memory_private._search_text_hybrid(d, query,
            (SELECT array_agg(v2.id ORDER BY v2.distance) FROM v AS v2), k, filter, text_match) AS s
    )
    SELECT coalesce(v.id, t.id), coalesce(v.content, t.content), coalesce(v.metadata, t.metadata),
        v.similarity, v.distance, t.rank, coalesce(v.created_at, t.created_at),
        coalesce(v.updated_at, t.updated_at), v.embedding
    FROM v FULL JOIN t ON t.id = v.id;
END;
$$;

-- The common case in one statement, for one domain of pgmemo's own: $1 the query embedding, $2
-- the vector rows wanted, $5 the query's tsvector, $6 the extra text rows, $7 the postings read
-- per rare word, $8 k1, $9 b, $11 the domain's name, $20 the estimated rows under which a common
-- word counts as rare (the arguments of memory_private._search_hybrid_static). The vector rows:
-- _search_sql's k-NN query in its strict-order shape, reading each row's tsvector too (no second
-- lookup by id); the text half: _bm25_rescore_sql's, with the vector rows as the given ids and
-- the rare words as the only candidates.
CREATE OR REPLACE FUNCTION memory_private._hybrid_sql(d memory_private.domains)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    -- (as in _search_sql)
    v_similarity text := CASE d.distance
        WHEN 'cosine' THEN '1 - v.distance'
        WHEN 'l2' THEN '1 / (1 + v.distance)'
        ELSE '- v.distance'
    END;
BEGIN
    RETURN format($q$
        WITH v AS MATERIALIZED (
            SELECT t.id, t.content, t.metadata, t.created_at, t.updated_at, t.content_tsv,
                (t.embedding %4$s $1)::double precision AS distance
            FROM %1$I.%2$I AS t
            WHERE t.embedding IS NOT NULL
            ORDER BY t.embedding %4$s $1 LIMIT $2
        ),
        q AS MATERIALIZED (
            SELECT u.lexeme, cardinality(u.positions)::double precision AS qtf,
                (s.common_lexemes ->> u.lexeme)::double precision * s.documents AS est,
                s.documents::double precision AS n, s.avg_length AS avgdl
            FROM memory_private.text_stats AS s
            CROSS JOIN unnest($5::tsvector) AS u
            WHERE s.domain = $11
        ),
        p AS MATERIALIZED (
            SELECT q.lexeme, x.id, x.len
            FROM q
            CROSS JOIN LATERAL (
                SELECT t.id, octet_length(t.content) AS len
                FROM %1$I.%2$I AS t
                WHERE t.content_tsv @@ memory_private._lexeme_tsquery(q.lexeme)
                LIMIT $7
            ) AS x
            WHERE (q.est IS NULL OR q.est <= $20) AND $6 > 0
        ),
        w AS MATERIALIZED (
            SELECT array_agg(q.lexeme) AS lexemes,
                array_agg(q.qtf * ln(1 + (q.n - x.df + 0.5) / (x.df + 0.5))) AS idf,
                max(q.avgdl) AS avgdl
            FROM q
            LEFT JOIN (SELECT p.lexeme, count(*) AS n FROM p GROUP BY p.lexeme) AS c
                ON c.lexeme = q.lexeme
            CROSS JOIN LATERAL (
                SELECT least(greatest(coalesce(q.est, c.n, 0), 1), q.n) AS df) AS x
        ),
        top AS MATERIALIZED (
            SELECT p.id
            FROM p
            CROSS JOIN w
            CROSS JOIN (SELECT greatest(avg(p.len), 1) AS len FROM p) AS a
            WHERE p.id NOT IN (SELECT v.id FROM v)
            GROUP BY p.id
            ORDER BY sum(w.idf[array_position(w.lexemes, p.lexeme)]
                / (1 + $8 * (1 - $9 + $9 * p.len / a.len))) DESC, p.id
            LIMIT $6
        ),
        c AS (
            SELECT v.id, v.content, v.metadata, %3$s AS similarity, v.distance, v.created_at,
                v.updated_at, v.content_tsv
            FROM v
            UNION ALL
            SELECT x.id, x.content, x.metadata, NULL, NULL, x.created_at, x.updated_at,
                x.content_tsv
            FROM top
            -- one primary-key lookup per row (LIMIT 1 keeps it a nested loop: a generic plan
            -- merge-joined the rows with the whole primary key index)
            CROSS JOIN LATERAL (
                SELECT t.* FROM %1$I.%2$I AS t WHERE t.id = top.id LIMIT 1
            ) AS x
        )
        SELECT c.id, c.content, c.metadata, c.similarity, c.distance,
            CASE WHEN w.lexemes IS NOT NULL THEN sc.score END, c.created_at, c.updated_at,
            NULL::%5$s.vector
        FROM c
        CROSS JOIN w
        CROSS JOIN LATERAL (
            -- (no word of the query: no text score, and no tsvector read)
            SELECT CASE WHEN w.lexemes IS NOT NULL THEN ts_filter(setweight(c.content_tsv, 'A',
                w.lexemes || ' dl'::text), '{a}') END AS hit
        ) AS f
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(w.idf[array_position(w.lexemes, u.lexeme)]
                * cardinality(u.positions) * ($8 + 1) / (cardinality(u.positions)
                    + $8 * (1 - $9 + $9 * l.dl / greatest(w.avgdl, 1)))), 0)::double precision
                AS score
            FROM unnest(f.hit) AS u
            CROSS JOIN (
                SELECT coalesce(max(m.positions[1] - 1), 0) AS dl
                FROM unnest(f.hit) AS m WHERE m.lexeme = ' dl'
            ) AS l
            WHERE u.lexeme <> ' dl'
        ) AS sc
    $q$, d.table_schema, d.table_name, v_similarity,
        memory_private._distance_operator(d.distance), memory_private._vector_schema());
END;
$$;

-- Regenerate memory_private._search_hybrid_static: one branch per domain of pgmemo's own (not
-- adopted, not distributed) running _hybrid_sql; the general path for the rest. Called by
-- memory_private._search_static_refresh (so with iterative scans off: _search_sql's strict
-- shape, as memory.search's cached plan).
CREATE OR REPLACE FUNCTION memory_private._search_hybrid_static_refresh()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_names text[];
    v_branches text[];
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:search_hybrid_static'));
    -- (in the order of the names under COLLATE "C": memory_private._dispatch_sql halves them)
    SELECT array_agg(x.domain ORDER BY x.domain COLLATE "C"), array_agg(format($b$
        WHEN %1$L THEN
            -- (the domain's table and distance as generated: else the general path)
            IF d.table_schema = %3$L AND d.table_name = %4$L AND d.distance = %5$L
               AND EXISTS (SELECT FROM memory_private.text_stats AS s
                           WHERE s.domain = $11 AND s.documents > 0) THEN
                RETURN QUERY %2$s;
                RETURN;
            END IF;
$b$, x.domain, memory_private._hybrid_sql(x), x.table_schema, x.table_name, x.distance)
        ORDER BY x.domain COLLATE "C")
    INTO v_names, v_branches
    FROM memory_private._static_domains() AS x
    WHERE NOT x.adopted;
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._search_hybrid_static(
    query_embedding %1$s.vector, vector_rows integer, unused_filter jsonb,
    unused_min_similarity double precision, query_tsv tsvector, extra integer,
    per_lexeme bigint, k1 double precision, b double precision, fast boolean, domain_name text,
    d memory_private.domains, query text, k integer, filter jsonb, ef_search integer,
    text_match text, with_embeddings boolean, ef integer, rare_rows double precision
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, text_rank double precision, created_at timestamptz,
    updated_at timestamptz, embedding %1$s.vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
-- planned once per session (as memory_private._search_static)
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET hnsw.ef_search = 40%2$s
AS $body$
#variable_conflict use_column
BEGIN
    IF fast THEN
        PERFORM set_config('hnsw.ef_search', ef::text, true);
        %3$s
    END IF;
    RETURN QUERY SELECT * FROM memory_private._hybrid_candidates(d, query, query_embedding, k,
        filter, ef_search, text_match, with_embeddings);
END;
$body$
$f$,
        memory_private._vector_schema(),
        CASE WHEN coalesce(memory_private._vector_version() >= ARRAY[0, 8, 0], false) THEN '
SET hnsw.iterative_scan = off' ELSE '' END,
        memory_private._dispatch_sql('d.domain', v_names, v_branches,
            'NULL;  -- not generated for this domain (yet): the general path below'));
END;
$$;

-- The function before its first generation (a migrate generates it right away): the general
-- path.
CREATE OR REPLACE FUNCTION memory_private._search_hybrid_static(
    query_embedding vector, vector_rows integer, unused_filter jsonb,
    unused_min_similarity double precision, query_tsv tsvector, extra integer,
    per_lexeme bigint, k1 double precision, b double precision, fast boolean, domain_name text,
    d memory_private.domains, query text, k integer, filter jsonb, ef_search integer,
    text_match text, with_embeddings boolean, ef integer, rare_rows double precision
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, text_rank double precision, created_at timestamptz,
    updated_at timestamptz, embedding vector
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN QUERY SELECT * FROM memory_private._hybrid_candidates(d, query, query_embedding, k,
        filter, ef_search, text_match, with_embeddings);
END;
$$;
