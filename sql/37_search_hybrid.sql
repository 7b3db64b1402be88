-- memory.search_hybrid (generated here, as memory.search is in sql/30_search.sql): its candidates,
-- each with its similarity and distance (NULL: not among the vector search's rows) and its BM25
-- score (text_rank; NULL or 0: not a text hit), and their fusion.
--
-- The text half does not run a second, independent search: BM25 scores the vector search's own
-- candidates (k + 6 rows, at least 16, with ef_search a fortieth of the domain's rows between 40
-- and 100: _hybrid_vector_rows_sql, _hybrid_ef_sql), read from their stored tsvectors, plus the
-- rows waiting for their embedding that hold a word of the query (at most
-- _hybrid_waiting_rows() of the queue's rows), which the vector search cannot find. df is
-- frequency * N for a common word (memory_private.text_stats) and, for any other, half the least
-- frequency of the common ones times N (text_stats.rare_df: PostgreSQL's own estimate for an
-- element outside the most common ones). Measured against the earlier design, which also read
-- the postings of the query's rare words for five more rows (BENCHMARKS.md, "Stop 37"; make
-- eval): MRR@10 1.064x / 1.043x `search`'s against 1.085x / 1.066x, at 1.35x / 1.35x `search`'s
-- p50 against 1.97x / 1.73x (documentation sections / docstrings).
--
-- Two paths:
-- * the common case (an embedding, plain words, match 'any', convex fusion, no filter, no
--   with_embeddings, a domain of pgmemo's own with refreshed text statistics): one statement,
--   k-NN, the waiting rows, BM25 and the fusion together (memory_private._hybrid_sql,
--   _hybrid_fusion_sql), planned once per session in memory.search_hybrid's branch for the
--   domain;
-- * otherwise memory_private._hybrid_candidates: memory.search, then
--   memory_private._search_text_hybrid over its rows and the waiting ones (sql/31_bm25.sql),
--   fused by the same _hybrid_fusion_sql. Without a filter or syntax it ranks as the one
--   statement does (pgtap_tests/bm25.sql compares them, rows waiting or not).

-- The vector half's rows for k results, as an SQL expression over k's: k + 6, at least 16 (on the
-- eval's dev queries 16 lost 0.0003 MRR@10 against 20; BENCHMARKS.md). Spliced into
-- memory.search_hybrid and made into _hybrid_vector_rows (below) for the general path.
CREATE OR REPLACE FUNCTION memory_private._hybrid_vector_rows_sql(k text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT format('least(greatest(%s + 6, 16), 1000)', k) $$;

-- The vector half's ef_search before memory.search's clamp to [rows, 1000], as an SQL expression
-- over the caller's and the domain's rows (text_stats.documents, NULL when unknown): the
-- caller's, else the session's hnsw.ef_search raised to a fortieth of the rows, at least 40
-- (pgvector's default) and at most memory.search's 100 (_default_ef_search). A small graph needs
-- a narrower walk for the same neighbours: on the 505 documentation sections 40, 60 and 100 gave
-- the same test MRR@10 (dev: 40 0.0004 below 60), 40 at 1.30x `search`'s p50 where 60 took
-- 1.38-1.48x; on the 3,000 docstrings 60 / 75 / 100 gave 0.6248 / 0.6260 / 0.6288 on the dev
-- queries, 75 at 1.32x `search`'s p50 where 100 took 1.47x (BENCHMARKS.md, "Stop 37").
CREATE OR REPLACE FUNCTION memory_private._hybrid_ef_sql(ef_search text, documents text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($e$coalesce(%1$s, greatest(
        coalesce(nullif(pg_catalog.current_setting('hnsw.ef_search', true), '')::integer, 40),
        least(greatest(coalesce(%2$s, 0) / 40, 40), %3$s)::integer))$e$,
        ef_search, documents, memory_private._default_ef_search())
$$;

DO $install$
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._hybrid_vector_rows(k integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $body$
BEGIN
    RETURN %s;
END;
$body$$f$, memory_private._hybrid_vector_rows_sql('k'));
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._hybrid_ef(ef_search integer, domain text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $body$
BEGIN
    RETURN %s;
END;
$body$$f$, memory_private._hybrid_ef_sql('ef_search',
        '(SELECT s.documents FROM memory_private.text_stats AS s WHERE s.domain = _hybrid_ef.domain)'));
END;
$install$;

-- How many of the domain's jobs in the embedding queue (rows waiting for their embedding) the text
-- half reads at most, in id order: each is looked up and scored when it holds a word of the
-- query (a bound on the call's cost while a backlog is embedded).
CREATE OR REPLACE FUNCTION memory_private._hybrid_waiting_rows()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 100 $$;

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
            LATERAL memory.search(d.domain, query_embedding,
                memory_private._hybrid_vector_rows(k), filter,
                ef_search => memory_private._hybrid_ef(ef_search, d.domain),
                with_embeddings => with_embeddings) AS s
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

-- The common case's candidates in one statement, for one domain of pgmemo's own, over the
-- arguments and variables of memory.search_hybrid, in whose branch for the domain it runs (its
-- template below): query_embedding, v_candidates (the vector rows wanted), v_tsv (the query's
-- tsvector), v_k1 and v_b, v_d (the domain). The vector rows: _search_sql's k-NN query in its
-- strict-order shape, reading each row's tsvector too (no second lookup by id), and v_waiting's
-- rows waiting for their embedding; the text half: their BM25 scores (_bm25_rescore_sql's, with
-- those rows as the given ids).
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
                (t.embedding %4$s)::double precision AS distance
            FROM %1$I.%2$I AS t
            WHERE t.embedding IS NOT NULL
            ORDER BY t.embedding %4$s LIMIT v_candidates
        ),
        -- (each word's estimate computed in a CTE of its own; the common lexemes fetched once,
        -- #> '{}' in a subquery of its own: the column is a TOAST pointer, fetched again for
        -- every word looked up: 1.6%% of a small domain's hybrid)
        q AS MATERIALIZED (
            SELECT u.lexeme, cardinality(u.positions)::double precision AS qtf,
                coalesce((s.common_lexemes ->> u.lexeme)::double precision * s.documents,
                    s.rare_df) AS est,
                s.documents::double precision AS n, s.avg_length AS avgdl
            FROM (
                SELECT s.common_lexemes #> '{}' AS common_lexemes, s.documents, s.avg_length,
                    s.rare_df
                FROM memory_private.text_stats AS s
                WHERE s.domain = v_d.domain
                OFFSET 0
            ) AS s
            CROSS JOIN unnest(v_tsv::tsvector) AS u
        ),
        w AS MATERIALIZED (
            -- (words: the query's words OR'ed, the scoring's gate)
            SELECT array_agg(q.lexeme) AS lexemes, %7$s AS words, array_agg(%8$s) AS idf,
                max(q.avgdl) AS avgdl
            FROM q
            CROSS JOIN LATERAL (SELECT %9$s AS df) AS x
        ),
        c AS (
            SELECT v.id, v.content, v.metadata, %3$s AS similarity, v.distance, v.created_at,
                v.updated_at, v.content_tsv
            FROM v
            UNION ALL
            -- the rows waiting for their embedding (v_waiting: the domain has jobs), as the
            -- general path takes them: the first _hybrid_waiting_rows() of the queue in id order
            -- but the vector rows, one primary-key lookup each (LIMIT 1 keeps it a nested loop);
            -- none without a vector row (the branch returns nothing, and the general path ranks
            -- by the words alone, as search_text)
            SELECT x.id, x.content, x.metadata, NULL, NULL, x.created_at, x.updated_at,
                x.content_tsv
            FROM (
                SELECT q.row_id FROM memory_private.embedding_queue AS q
                WHERE v_waiting AND q.domain = v_d.domain AND EXISTS (SELECT FROM v)
                  AND q.row_id NOT IN (SELECT v.id FROM v)
                ORDER BY q.row_id
                LIMIT %10$s
            ) AS j
            CROSS JOIN LATERAL (
                SELECT t.* FROM %1$I.%2$I AS t WHERE t.id = j.row_id LIMIT 1
            ) AS x
        )
        SELECT c.id, c.content, c.metadata, c.similarity, c.distance,
            CASE WHEN w.lexemes IS NOT NULL THEN s.score END, c.created_at, c.updated_at,
            NULL::%5$s.vector
        FROM c
        CROSS JOIN w
        -- (no word of the query: no text score, and no tsvector read)
        %6$s
    $q$, d.table_schema, d.table_name, v_similarity,
        memory_private._distance_to_sql(d, 'search_hybrid.query_embedding'),
        memory_private._vector_schema(),
        memory_private._bm25_row_score_sql('c.content_tsv', 'w.lexemes', 'w.idf', 'v_k1', 'v_b',
            'w.avgdl', NULL, NULL, 'c.content_tsv @@ w.words'),
        memory_private._any_word_tsquery_sql('q.lexeme'),
        memory_private._bm25_idf_sql('q.qtf', 'q.n', 'x.df'),
        memory_private._bm25_df_sql('q.est', 'NULL'), memory_private._hybrid_waiting_rows());
END;
$$;

-- memory.search_hybrid's fusion of its candidates (candidates: a query of the columns of
-- _hybrid_candidates), as the statement that returns its rows. Each list's range of scores over
-- the candidates; convex: each list's score min-max normalised (1 when all are equal, 0 when the
-- row is not in that list: the vector list is the rows with a distance, the text list those with
-- a positive BM25 score), weights normalised to sum 1; rrf: from each row's rank in each list;
-- then the memory-aware re-ranking when asked, the best k; with_embeddings, a text-only row's
-- vector. general: the general path's statement, all of that. Otherwise a branch's (convex, no
-- with_embeddings: memory.search_hybrid takes a branch only then), without the parts it never
-- uses, each set up on every call however small (callgrind: the two window orders of the ranks,
-- the embedding's subquery and a second sort cost a tenth of a small domain's hybrid; rrf's
-- expressions 2%): the rows ordered by their distance and score themselves, which orders them
-- as their ranks would.
-- Over memory.search_hybrid's arguments, in each of its branches as part of the one statement,
-- planned once per session (as a statement of its own over the rows of a function it cost a
-- quarter of the hybrid's instructions on a small domain: its executor set up on every call,
-- the rows copied twice more; BENCHMARKS.md).
CREATE OR REPLACE FUNCTION memory_private._hybrid_fusion_sql(candidates text, general boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        %4$s FROM (
                SELECT f.*, CASE WHEN recency_half_life IS NOT NULL
                        OR importance_weight IS NOT NULL
                    -- the fused score scaled to [0, 1] (1: first in both lists), then blended
                    THEN memory_private._blend(%6$s,
                        f.metadata, f.updated_at, recency_half_life, importance_weight)
                    ELSE f.fused END AS score
                FROM (
                    SELECT c.id, c.content, c.metadata, %7$s%8$s%9$s AS fused,
                        c.similarity, CASE WHEN c.tr IS NOT NULL THEN c.text_rank END AS rank,
                        c.created_at, c.updated_at, c.vr, c.tr, c.embedding
                    FROM (
                        -- vr, tr: the row's rank in each list (NULL: not in it), or what orders
                        -- the rows as the ranks would
                        SELECT s.*,
                            CASE WHEN s.distance IS NOT NULL THEN %2$s END AS vr,
                            CASE WHEN s.text_rank > 0 THEN %3$s END AS tr,
                            min(s.similarity) OVER () AS vlo, max(s.similarity) OVER () AS vhi,
                            min(s.text_rank) FILTER (WHERE s.text_rank > 0) OVER () AS tlo,
                            max(s.text_rank) OVER () AS thi
                        FROM (%1$s) AS s (id, content, metadata, similarity, distance, text_rank,
                            created_at, updated_at, embedding)
                    ) AS c
                    WHERE c.vr IS NOT NULL OR c.tr IS NOT NULL
                ) AS f
            ) AS sc
            -- (a row of the vector list is ordered by its vr alone, as by its rank)
            ORDER BY sc.score DESC, sc.vr NULLS LAST,
                CASE WHEN sc.vr IS NULL THEN sc.tr END NULLS LAST, sc.id
            LIMIT k%5$s$q$,
        candidates,
        CASE WHEN general THEN 'row_number() OVER (ORDER BY s.distance, s.id)'
            ELSE 's.distance' END,
        CASE WHEN general THEN 'row_number() OVER (ORDER BY s.text_rank DESC NULLS LAST, s.id)'
            ELSE '- s.text_rank' END,
        -- the select list; general: over the best k (tp), with_embeddings: a text-only hit's
        -- vector read by id (the CASE runs the subquery only then: a join with a guard was
        -- planned with get_many first, which ran on every call); a branch's straight from sc (a
        -- subquery scan less, set up on every call)
        CASE WHEN general THEN $e$SELECT tp.id, tp.content, tp.metadata, tp.score, tp.similarity,
            tp.rank, tp.created_at, tp.updated_at,
            CASE WHEN with_embeddings AND tp.embedding IS NULL
                THEN (SELECT g.embedding FROM memory.get_many(v_d.domain, ARRAY[tp.id]) AS g)
                ELSE tp.embedding END
        FROM (
            SELECT sc.*$e$ ELSE $e$SELECT sc.id, sc.content, sc.metadata, sc.score, sc.similarity,
            sc.rank, sc.created_at, sc.updated_at, sc.embedding$e$ END,
        CASE WHEN general THEN $o$
        ) AS tp
        ORDER BY tp.score DESC, tp.vr NULLS LAST, CASE WHEN tp.vr IS NULL THEN tp.tr END NULLS LAST,
            tp.id$o$ ELSE '' END,
        CASE WHEN general THEN $s$CASE WHEN fusion = 'rrf'
                            THEN f.fused / ((vector_weight + text_weight) / (rrf_k + 1))
                            ELSE f.fused END$s$ ELSE 'f.fused' END,
        -- (the fused score: rrf's, or convex, each list's score min-max normalised, weighted)
        CASE WHEN general THEN $f$CASE WHEN fusion = 'rrf'
                            THEN coalesce(vector_weight / (rrf_k + c.vr), 0)
                                + coalesce(text_weight / (rrf_k + c.tr), 0)
                            ELSE $f$ ELSE '' END,
        $c$(vector_weight * CASE WHEN c.vr IS NULL THEN 0
                                    WHEN c.vhi > c.vlo
                                    THEN (c.similarity - c.vlo) / (c.vhi - c.vlo)
                                    ELSE 1 END
                                + text_weight * CASE WHEN c.tr IS NULL THEN 0
                                    WHEN c.thi > c.tlo
                                    THEN (c.text_rank - c.tlo) / (c.thi - c.tlo)
                                    ELSE 1 END)
                                / (vector_weight + text_weight)$c$,
        CASE WHEN general THEN ' END' ELSE '' END)
$$;

-- memory.search_hybrid is generated, as memory.search is (sql/30_search.sql): its source is the
-- template of memory_private._search_hybrid_definition, made into the function with the branches
-- of every domain not distributed (dispatch, the WHEN clauses of
-- memory_private._dispatch_sql) by memory_private._search_hybrid_static_refresh (called by
-- _search_static_refresh: create_domain, drop_domain, adoption, every migrate), and without
-- branches here. A branch runs the domain's one statement (_hybrid_sql's candidates fused by
-- _hybrid_fusion_sql), planned once per session, when the call takes the common case (an
-- embedding, plain words, match 'any', convex fusion, no filter, no with_embeddings) and the
-- domain's table and distance are still those it was generated for and its text statistics were
-- refreshed; otherwise the general path: memory_private._hybrid_candidates (memory.search, then
-- the BM25 rescoring), fused by the same _hybrid_fusion_sql.
-- The branches are in memory.search_hybrid itself (a PL/pgSQL function returning rows costs a
-- query and a tuple store of its own), and the access check, k's and the embedding's checks,
-- hnsw.ef_search and the word limit are spliced in (a PL/pgSQL helper with a SET clause cost 10,000-17,000
-- instructions a call), as in memory.search. Its settings for the branch (hnsw.ef_search, strict
-- order) are set with set_config and put back after it, as memory.search's.
CREATE OR REPLACE FUNCTION memory_private._search_hybrid_definition(dispatch text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $def$
    SELECT format($template$
CREATE OR REPLACE FUNCTION memory.search_hybrid(
    domain text,
    query text,
    query_embedding %1$s.vector,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL,
    -- Chosen on the dev queries of bench/quality.py (sweep in BENCHMARKS.md): a convex
    -- combination of the min-max normalised similarity and BM25 score, the weights with the best
    -- mean MRR@10 over both corpora's dev queries (0.5 / 0.5 since stop 23: 0.6306 against
    -- 0.6265 for the earlier 0.6 / 0.4).
    vector_weight double precision DEFAULT 0.5,
    text_weight double precision DEFAULT 0.5,
    rrf_k integer DEFAULT 60,
    ef_search integer DEFAULT NULL,
    recency_half_life interval DEFAULT NULL,
    importance_weight double precision DEFAULT NULL,
    text_match text DEFAULT 'any',
    with_embeddings boolean DEFAULT FALSE,
    fusion text DEFAULT 'convex'
)
RETURNS TABLE (
    id text, content text, metadata jsonb, score double precision,
    similarity double precision, text_rank double precision,
    created_at timestamptz, updated_at timestamptz, embedding %1$s.vector
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
-- the branches' statements and the general path's fusion planned once per session (their inputs
-- are variables; a custom plan per call cost about a tenth of the hybrid's time on the eval)
SET plan_cache_mode = force_generic_plan
-- the index is what the vector half promises (see memory_private._search_settings_begin)
SET enable_seqscan = off
AS $body$
#variable_conflict use_column
DECLARE
    v_d memory_private.domains;
    v_r record;
    v_candidates integer;
    v_fast boolean;
    v_tsv tsvector;
    v_k1 double precision;  -- (BM25's, for the branches)
    v_b double precision;
    v_ef integer;
    v_old_ef text;
    v_old_iterative text;
    v_set text;
    v_done boolean := false;  -- a branch ran and returned rows
    v_returned bigint;
    v_docs bigint;
    v_waiting boolean;
BEGIN
    -- v_d := memory_private._domain_for(domain, 'read'), spliced
    %2$s
    -- memory_private._check_k(k), spliced
    %3$s
    -- memory_private._check_text_query(query, text_match, 'text_match'), spliced
    %12$s
    IF query_embedding IS NULL AND coalesce(query, '') = '' THEN
        RAISE EXCEPTION 'search_hybrid needs a query text, a query_embedding, or both'
            USING ERRCODE = '22004';
    END IF;
    IF vector_weight IS NULL OR text_weight IS NULL OR NOT vector_weight >= 0
        OR NOT text_weight >= 0 OR vector_weight = 'NaN' OR text_weight = 'NaN'
        OR vector_weight = 'Infinity' OR text_weight = 'Infinity'
        OR vector_weight + text_weight = 0 OR rrf_k IS NULL OR rrf_k < 1 THEN
        RAISE EXCEPTION 'vector_weight and text_weight must be finite, >= 0 and not both 0; '
            'rrf_k >= 1'
            USING ERRCODE = '22023';
    END IF;
    IF fusion IS NULL OR fusion NOT IN ('convex', 'rrf') THEN
        RAISE EXCEPTION 'fusion must be ''convex'' or ''rrf'', got %%',
            coalesce(quote_literal(fusion), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF recency_half_life IS NOT NULL OR importance_weight IS NOT NULL THEN
        PERFORM memory_private._check_ranking(recency_half_life, importance_weight);
    END IF;
    v_candidates := %16$s;  -- memory_private._hybrid_vector_rows(k), spliced
    -- The branches take plain words: no "phrase", no -exclusion, no OR (websearch syntax goes
    -- through _parse_text_query); and convex fusion (rrf's ranks are the general path's).
    v_fast := query_embedding IS NOT NULL AND filter IS NULL AND text_match = 'any'
        AND fusion = 'convex' AND NOT coalesce(with_embeddings, false) AND NOT v_d.distributed
        AND query !~* %11$L;  -- memory_private._text_syntax_pattern(), spliced
    IF v_fast THEN
        v_tsv := to_tsvector(v_d.text_config, query);
        IF length(v_tsv) > %10$s THEN  -- memory_private._text_max_words(), spliced
            v_fast := false;  -- the general path refuses it (22023)
        END IF;
    END IF;
    IF v_fast THEN
        -- memory_private._check_embedding, spliced
        %4$s
        IF ef_search IS NOT NULL AND ef_search < 1 THEN
            RAISE EXCEPTION 'ef_search must be positive, got %%', ef_search
                USING ERRCODE = '22023';
        END IF;
        IF %13$s THEN  -- memory_private._bm25_unset_sql(), spliced: the defaults
            v_k1 := %14$s;
            v_b := %15$s;
        ELSE
            SELECT p.k1, p.b INTO v_k1, v_b FROM memory_private._bm25_params() AS p;
        END IF;
        -- the domain's rows (NULL: no statistics, no branch), and whether a row of it waits in
        -- the embedding queue (the branch then scores the waiting rows too)
        SELECT s.documents, EXISTS (SELECT FROM memory_private.embedding_queue AS q
                                    WHERE q.domain = v_d.domain)
        INTO v_docs, v_waiting
        FROM memory_private.text_stats AS s
        WHERE s.domain = v_d.domain;
        -- memory_private._search_ef(v_candidates, memory_private._hybrid_ef(ef_search)), spliced
        v_ef := %5$s;
        %8$s
        IF v_old_iterative <> 'off' THEN
            -- the branches' k-NN is _search_sql's strict-order shape
            v_set := set_config('hnsw.iterative_scan', 'off', true);
        END IF;
        -- the domain's branch (memory_private._dispatch_sql: the names halved, then a CASE)
        %6$s
        %9$s
        IF v_done THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY %7$s;
END;
$body$
$template$,
        memory_private._vector_schema(),
        memory_private._domain_for_sql('search_hybrid.domain', '''read''', 'v_d', 'v_r'),
        memory_private._check_k_sql('k'),
        memory_private._check_embedding_sql('v_d.dimension', 'v_d.domain', 'query_embedding',
            '''query_embedding'''),
        memory_private._search_ef_sql('v_candidates',
            memory_private._hybrid_ef_sql('ef_search', 'v_docs')),
        coalesce(dispatch, 'NULL;  -- no branches yet: the general path below'),
        memory_private._hybrid_fusion_sql($c$
            SELECT * FROM memory_private._hybrid_candidates(v_d, query, query_embedding, k,
                filter, ef_search, text_match, with_embeddings)$c$, true),
        memory_private._branch_settings_sql(false), memory_private._branch_settings_sql(true),
        memory_private._text_max_words(), memory_private._text_syntax_pattern(),
        memory_private._check_text_query_sql('query', 'text_match', $s$'text_match'$s$),
        memory_private._bm25_unset_sql(), d.k1, d.b, memory_private._hybrid_vector_rows_sql('k'))
    FROM memory_private._bm25_defaults() AS d
$def$;

-- Regenerate memory.search_hybrid with a branch per domain (not distributed; an adopted one's
-- postings from its text index, _text_postings_source). Called by
-- memory_private._search_static_refresh.
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
            -- (the domain's table and distance as generated, and its text statistics, v_docs:
            -- else the general path)
            IF v_d.table_schema = %3$L AND v_d.table_name = %4$L AND v_d.distance = %5$L
               AND v_docs > 0 THEN
                RETURN QUERY %2$s;
                -- (no row: the domain has no embedded row, so no vector candidate; the general
                -- path then ranks by the words alone, as memory.search_text would)
                GET DIAGNOSTICS v_returned = ROW_COUNT;
                v_done := v_returned > 0;
            END IF;
$b$, x.domain, memory_private._hybrid_fusion_sql(memory_private._hybrid_sql(x), false),
        x.table_schema, x.table_name, x.distance)
        ORDER BY x.domain COLLATE "C")
    INTO v_names, v_branches
    FROM memory_private._static_domains() AS x;
    EXECUTE memory_private._search_hybrid_definition(
        memory_private._dispatch_sql('v_d.domain', v_names, v_branches,
            'NULL;  -- not generated for this domain (yet): the general path below'));
END;
$$;

-- The function before its first generation (a migrate generates it right away): the general
-- path for every call.
DO $install$
BEGIN
    EXECUTE memory_private._search_hybrid_definition(NULL);
END;
$install$;

COMMENT ON FUNCTION memory.search_hybrid(
    text, text, vector, integer, jsonb, double precision, double precision, integer, integer,
    interval, double precision, text, boolean, text
) IS
'Hybrid search, one call: the vector search''s k + 6 nearest rows (at least 16; ef_search, '
'unless given, a fortieth of the domain''s rows between 40 and 100, or the session''s '
'hnsw.ef_search when higher) and their BM25 scores '
'(memory.search_text''s BM25 without its proximity bonus; a word outside the statistics'' common '
'words weighs as one in half as many rows as the least common of them), plus the rows waiting in '
'the embedding queue (at most 100, in id order) that hold a word of the query, fused. '
'fusion => ''convex'' (default): '
'score = (vector_weight * similarity'' + text_weight * rank'') / (vector_weight + text_weight), '
'each min-max normalised over its list (the vector rows; the rows with a positive BM25 score), '
'0 when the row is not in that list; fusion => ''rrf'': weighted reciprocal rank fusion, '
'vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank). The defaults '
'(convex, 0.5 / 0.5, text_match ''any'') come from bench/quality.py (see BENCHMARKS.md). Either '
'the query text or the embedding may be NULL (without an embedding: memory.search_text''s '
'ranking of max(2k, 20) rows). ef_search is passed to the vector search, text_match (''any'' or '
'''all'') to the text half. The query''s "quoted phrases", -exclusions and text_match ''all'' '
'decide which rows the text half ranks (a row that fails them has no text rank); they do not '
'filter the vector search''s rows (use filter for that). recency_half_life and '
'importance_weight re-rank as in memory.search, on the fused score scaled to [0, 1]. '
'similarity is NULL for a row found by its words alone, text_rank for one found by its vector '
'alone. with_embeddings => true fills the embedding column (else NULL).';
