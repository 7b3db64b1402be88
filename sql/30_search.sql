-- Searching: memory.search (k nearest neighbours through the HNSW index), memory.search_text
-- (full-text fallback) and memory.search_hybrid (reciprocal rank fusion of the two).

CREATE OR REPLACE FUNCTION memory.search(
    domain text,
    query_embedding vector,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL,
    min_similarity double precision DEFAULT NULL
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_old_ef text := current_setting('hnsw.ef_search', true);
    v_old_iter text := current_setting('hnsw.iterative_scan', true);
    v_raise_ef boolean;
    v_iterative boolean;
BEGIN
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'query_embedding must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_embedding(v_d, query_embedding, 'query_embedding');
    PERFORM memory_private._check_k(k);
    PERFORM memory_private._check_filter(filter);

    -- ef_search is the HNSW candidate list size: at least k, or the index cannot return k rows.
    v_raise_ef := coalesce(nullif(v_old_ef, '')::integer, 40) < k;
    IF v_raise_ef THEN
        PERFORM set_config('hnsw.ef_search', k::text, true);
    END IF;
    -- With a filter, iterative scans (pgvector >= 0.8) keep scanning until k rows match.
    v_iterative := filter IS NOT NULL AND memory_private._vector_version() >= ARRAY[0, 8, 0];
    IF v_iterative THEN
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    END IF;

    RETURN QUERY EXECUTE memory_private._search_sql(v_d, filter IS NOT NULL)
    USING query_embedding, k, filter, min_similarity;

    -- Put the caller's settings back: set_config(..., true) would otherwise last until the end
    -- of the caller's transaction.
    IF v_raise_ef THEN
        PERFORM set_config('hnsw.ef_search', coalesce(v_old_ef, '40'), true);
    END IF;
    IF v_iterative THEN
        PERFORM set_config('hnsw.iterative_scan', coalesce(nullif(v_old_iter, ''), 'off'), true);
    END IF;
END;
$$;

COMMENT ON FUNCTION memory.search(text, vector, integer, jsonb, double precision) IS
'The k nearest memories to query_embedding through the domain''s HNSW index, best first. '
'filter keeps rows whose metadata @> filter (iterative index scans on pgvector >= 0.8, so k rows '
'come back when k rows match); hnsw.ef_search is raised to at least k for the call. similarity: '
'1 - cosine distance, 1 / (1 + l2 distance), or the inner product. min_similarity drops weaker '
'rows from the k. k is 1..1000.';

CREATE OR REPLACE FUNCTION memory.search_text(
    domain text,
    query text,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_query tsquery;
BEGIN
    PERFORM memory_private._check_k(k);
    PERFORM memory_private._check_filter(filter);
    v_query := websearch_to_tsquery(v_d.text_config, coalesce(query, ''));
    IF numnode(v_query) = 0 THEN
        RETURN;  -- empty, stop words only, or punctuation: nothing to match
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT t.id, t.content, t.metadata, '
        'ts_rank_cd(to_tsvector(%1$L::regconfig, t.content), $1, 1)::double precision AS rank, '
        't.created_at, t.updated_at FROM %2$I.%3$I AS t '
        'WHERE to_tsvector(%1$L::regconfig, t.content) @@ $1 %4$s '
        'ORDER BY rank DESC, t.updated_at DESC LIMIT $2',
        v_d.text_config::text, v_d.table_schema, v_d.table_name,
        CASE WHEN filter IS NOT NULL THEN 'AND t.metadata @> $3' ELSE '' END)
    USING v_query, k, filter;
END;
$$;

COMMENT ON FUNCTION memory.search_text(text, text, integer, jsonb) IS
'Full-text search (no embedding needed): query is parsed like a web search box '
'(websearch_to_tsquery: "quoted phrases", OR, -exclusion) in the domain''s text configuration, '
'ranked by ts_rank_cd. An empty or stop-word-only query returns no rows.';

CREATE OR REPLACE FUNCTION memory.search_hybrid(
    domain text,
    query text,
    query_embedding vector,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL,
    vector_weight double precision DEFAULT 1.0,
    text_weight double precision DEFAULT 1.0,
    rrf_k integer DEFAULT 60
)
RETURNS TABLE (
    id text, content text, metadata jsonb, score double precision,
    similarity double precision, text_rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_candidates integer;
BEGIN
    PERFORM memory_private._check_k(k);
    IF query_embedding IS NULL AND coalesce(query, '') = '' THEN
        RAISE EXCEPTION 'search_hybrid needs a query text, a query_embedding, or both'
            USING ERRCODE = '22004';
    END IF;
    IF vector_weight IS NULL OR text_weight IS NULL OR vector_weight < 0 OR text_weight < 0
        OR rrf_k IS NULL OR rrf_k < 1 THEN
        RAISE EXCEPTION 'vector_weight and text_weight must be >= 0 and rrf_k >= 1'
            USING ERRCODE = '22023';
    END IF;
    v_candidates := least(greatest(k * 4, 40), 1000);
    RETURN QUERY
    WITH v AS (
        SELECT s.*, row_number() OVER (ORDER BY s.distance) AS r
        -- The lateral call runs only when there is an embedding to search with.
        FROM (SELECT WHERE query_embedding IS NOT NULL) AS guard,
            LATERAL memory.search(domain, query_embedding, v_candidates, filter) AS s
    ),
    t AS (
        SELECT s.*, row_number() OVER (ORDER BY s.rank DESC) AS r
        FROM memory.search_text(domain, query, v_candidates, filter) AS s
    )
    SELECT
        coalesce(v.id, t.id),
        coalesce(v.content, t.content),
        coalesce(v.metadata, t.metadata),
        coalesce(vector_weight / (rrf_k + v.r), 0)
            + coalesce(text_weight / (rrf_k + t.r), 0) AS score,
        v.similarity,
        t.rank,
        coalesce(v.created_at, t.created_at),
        coalesce(v.updated_at, t.updated_at)
    FROM v FULL JOIN t ON t.id = v.id
    ORDER BY score DESC, v.r NULLS LAST, t.r NULLS LAST
    LIMIT k;
END;
$$;

COMMENT ON FUNCTION memory.search_hybrid(
    text, text, vector, integer, jsonb, double precision, double precision, integer
) IS
'Hybrid search: weighted reciprocal rank fusion of memory.search and memory.search_text '
'(score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank)), over '
'max(4k, 40) candidates from each. Either the query text or the embedding may be NULL.';
