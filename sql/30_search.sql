-- Searching: memory.search (k nearest neighbours through the HNSW index), memory.search_text
-- (full-text, typed queries); memory.search_hybrid (the fusion of the two) is generated in
-- sql/37_search_hybrid.sql; plus the memory-aware ranking (recency, importance) both can apply.

-- The settings memory.search runs its k-NN query under (memory.explain_search uses the same):
-- * hnsw.ef_search, the HNSW candidate list size: the per-call value, else the session's raised
--   to memory_private._default_ef_search() (recall within 2% of exact search on the eval);
--   never below the rows wanted (or the index cannot return them), at most 1000;
-- * with a filter, iterative scans (pgvector >= 0.8) that keep scanning until k rows match;
-- * enable_seqscan off: pgvector's cost estimate grows with ef_search, so on a few thousand rows
--   the planner prefers a sequential scan and sort, measured 10x slower than the index on the
--   eval (bench/quality.py). The index is what memory.search promises; with no usable index the
--   planner still falls back to a scan.
-- They are set with set_config(..., true), which would last until the end of the caller's
-- transaction: _search_settings_begin returns what it changed (NULL elements: untouched) and
-- _search_settings_end puts exactly that back.
-- The HNSW candidate list size memory.search uses by default (hnsw.ef_search is raised to it):
-- on the search-quality eval (bench/quality.py) pgvector's default of 40 lost 2.6% MRR@10
-- against exact search; 100 is within 2% at a fraction of a millisecond more.
CREATE OR REPLACE FUNCTION memory_private._default_ef_search()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 100 $$;

-- The hnsw.ef_search of a call that wants rows_wanted rows: the caller's ef_search, else the
-- session's raised to memory_private._default_ef_search(), clamped to [rows_wanted, 1000]. The
-- rule's one place is this SQL expression over the two expressions given: _search_ef is made
-- from it (below), and memory.search's template splices it into its hot path, where the call of
-- _search_ef (a PL/pgSQL helper with a SET clause: the GUC state saved and restored, its
-- expression set up again in every transaction) cost 9,800 instructions more per search than
-- the expression itself, 15,000 with the default ef_search (callgrind, one search per
-- transaction).
CREATE OR REPLACE FUNCTION memory_private._search_ef_sql(rows_wanted text, ef_search text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($e$least(greatest(coalesce(%2$s, greatest(
        coalesce(nullif(pg_catalog.current_setting('hnsw.ef_search', true), '')::integer, 40),
        %3$s)), %1$s), 1000)$e$,
        rows_wanted, ef_search, memory_private._default_ef_search())
$$;

DO $install$
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._search_ef(rows_wanted integer, ef_search integer)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $body$
BEGIN
    RETURN %s;
END;
$body$$f$, memory_private._search_ef_sql('rows_wanted', 'ef_search'));
END;
$install$;

CREATE OR REPLACE FUNCTION memory_private._search_settings_begin(
    rows_wanted integer, ef_search integer, with_filter boolean
)
RETURNS text[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_old_ef text := current_setting('hnsw.ef_search', true);
    v_cur_ef integer := coalesce(nullif(v_old_ef, '')::integer, 40);
    v_ef integer := memory_private._search_ef(rows_wanted, ef_search);
    v_saved text[] := ARRAY[NULL, NULL, NULL]::text[];
BEGIN
    IF v_ef <> v_cur_ef THEN
        v_saved[1] := coalesce(nullif(v_old_ef, ''), '40');
        PERFORM set_config('hnsw.ef_search', v_ef::text, true);
    END IF;
    IF with_filter AND memory_private._vector_version() >= ARRAY[0, 8, 0] THEN
        v_saved[2] := coalesce(nullif(current_setting('hnsw.iterative_scan', true), ''), 'off');
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    END IF;
    IF current_setting('enable_seqscan') <> 'off' THEN
        v_saved[3] := current_setting('enable_seqscan');
        PERFORM set_config('enable_seqscan', 'off', true);
    END IF;
    IF memory_private._citus_version() IS NOT NULL THEN
        PERFORM memory_private._citus_push_settings();  -- to the shards' queries too
    END IF;
    RETURN v_saved;
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._search_settings_end(saved text[])
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF saved[1] IS NOT NULL THEN
        PERFORM set_config('hnsw.ef_search', saved[1], true);
    END IF;
    IF saved[2] IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', saved[2], true);
    END IF;
    IF saved[3] IS NOT NULL THEN
        PERFORM set_config('enable_seqscan', saved[3], true);
    END IF;
    IF saved[4] IS NOT NULL THEN  -- memory_private._search_settings_scan
        PERFORM set_config('hnsw.max_scan_tuples', saved[4], true);
    END IF;
    IF memory_private._citus_version() IS NOT NULL THEN
        PERFORM memory_private._citus_push_settings();
    END IF;
END;
$$;

-- The statements of a generated search's branch around its query, over its variables v_ef
-- (the hnsw.ef_search wanted), v_old_ef, v_old_iterative and v_set: put_back false, the settings
-- read and hnsw.ef_search set when it differs (a GUC change and its undo saved; assigned, not
-- PERFORMed: see memory.search below); put_back true, hnsw.ef_search and hnsw.iterative_scan
-- put back as they were. Spliced into memory.search and memory.search_hybrid
-- (sql/37_search_hybrid.sql), which set hnsw.iterative_scan for their branches in between.
CREATE OR REPLACE FUNCTION memory_private._branch_settings_sql(put_back boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN put_back
        THEN $s$IF v_old_ef IS DISTINCT FROM current_setting('hnsw.ef_search', true) THEN
            v_set := set_config('hnsw.ef_search', coalesce(v_old_ef, '40'), true);
        END IF;
        IF v_old_iterative IS DISTINCT FROM current_setting('hnsw.iterative_scan', true) THEN
            v_set := set_config('hnsw.iterative_scan', v_old_iterative, true);
        END IF;$s$
    ELSE $s$v_old_ef := current_setting('hnsw.ef_search', true);
        v_old_iterative := current_setting('hnsw.iterative_scan', true);  -- pgvector >= 0.8
        IF v_old_ef IS DISTINCT FROM v_ef::text THEN
            v_set := set_config('hnsw.ef_search', v_ef::text, true);
        END IF;$s$ END
$$;

-- memory.search is generated: its source is the template of memory_private._search_definition,
-- made into the function with the static branches of every domain (the k-NN queries of
-- _search_sql and _knn_sql, one branch per domain, planned once per session and reused) by
-- memory_private._search_static_refresh (36_search_static.sql: create_domain, drop_domain,
-- adoption and every migrate), and without branches here (then every search takes the dynamic
-- path, with the same queries). The branches are in memory.search itself rather than in a
-- function it calls: a PL/pgSQL call returning rows costs a query of its own (about 60,000
-- instructions per search measured with callgrind, 1.5% of an unfiltered search on 100,000 rows,
-- a third of what memory.search added to the hand-written query).
-- Its unfiltered path is written for the fixed cost per call (callgrind, one search per
-- transaction as an application runs it, 2,000 x 384, ef_search 40: 145,000 instructions over
-- the same hand-written query, 70,000 after; a statement of a PL/pgSQL function costs most in a
-- fresh transaction, where each expression is set up again): no helper call for the access
-- check, the argument checks and hnsw.ef_search (the statements of _domain_for_sql,
-- _check_embedding_sql and _check_k_sql and the expression of _search_ef_sql spliced in, each
-- rule's one place: a PL/pgSQL helper with a SET clause cost 10,000-17,000 instructions a call
-- whatever its body), no PERFORM (a query of its own through the executor: set_config is
-- assigned to v_set, PL/pgSQL's fast path for simple expressions), hnsw.ef_search set and put
-- back only when it differs, conditions nested so that an unfiltered call skips the filter's.
-- What is left: the access check's query (the registry row and the owner test, with _caller),
-- PL/pgSQL's own call and statements, RETURN QUERY's tuple store.
CREATE OR REPLACE FUNCTION memory_private._search_definition(branches text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $def$
    SELECT format($template$
CREATE OR REPLACE FUNCTION memory.search(
    domain text,
    query_embedding %2$s.vector,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL,
    min_similarity double precision DEFAULT NULL,
    ef_search integer DEFAULT NULL,
    recency_half_life interval DEFAULT NULL,
    importance_weight double precision DEFAULT NULL,
    with_embeddings boolean DEFAULT FALSE
)
RETURNS TABLE (
    id text, content text, metadata jsonb, similarity double precision,
    distance double precision, created_at timestamptz, updated_at timestamptz,
    embedding %2$s.vector
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
-- The cached plans of the static branches (below) once, reused: with LIMIT k a parameter, the
-- planner prices the generic plan at 10%% of the rows and would otherwise re-plan every call.
-- (EXECUTE plans afresh whatever this says.)
SET plan_cache_mode = force_generic_plan
-- The index is what memory.search promises (see _search_settings_begin).
SET enable_seqscan = off
AS $body$
<<memory_search>>  -- (the static branches name v_params through it)
DECLARE
    v_d memory_private.domains;
    v_r record;
    v_saved text[];
    -- the compiled filter (memory_private._filter_compile; not called without one)
    v_pred text;
    v_params jsonb;
    v_plain boolean;
    v_path text;            -- NULL (no filter), 'exact' or 'hnsw' (34_search_plan.sql)
    v_ef integer;
    v_max_scan integer;
    v_plan record;
    v_sql text;
    v_static boolean;       -- NULL: a static branch below ran the search; false: none did
    v_old_ef text;
    v_old_iterative text;
    v_old_max_scan text;
    v_set text;
    v_returned bigint;
BEGIN
    -- v_d := memory_private._domain_for(domain, 'read'), spliced (see above)
    %6$s
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'query_embedding must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- memory_private._check_embedding and _check_k, spliced (see above)
    %4$s
    %5$s
    IF ef_search IS NOT NULL AND ef_search < 1 THEN
        RAISE EXCEPTION 'ef_search must be positive, got %%', ef_search USING ERRCODE = '22023';
    END IF;
    IF recency_half_life IS NOT NULL OR importance_weight IS NOT NULL THEN
        -- Memory-aware ranking re-ranks a larger candidate set: the search without it.
        PERFORM memory_private._check_ranking(recency_half_life, importance_weight);
        RETURN QUERY
        SELECT c.* FROM memory.search(domain, query_embedding, least(greatest(4 * k, 40), 1000),
            filter, min_similarity, ef_search, with_embeddings => with_embeddings) AS c
        ORDER BY memory_private._blend(c.similarity, c.metadata, c.updated_at,
            recency_half_life, importance_weight) DESC, c.distance
        LIMIT k;
        RETURN;
    END IF;
    IF filter IS NOT NULL THEN
        SELECT c.predicate, c.params, c.plain INTO v_pred, v_params, v_plain
        FROM memory_private._filter_for(v_d, filter) AS c;
        -- A filtered search on one node: exact scan or HNSW iterative scan (34_search_plan.sql).
        IF v_pred IS NOT NULL AND NOT v_d.distributed THEN
            v_plan := memory_private._search_plan(v_d, v_pred, v_params, k, ef_search,
                true);
            v_path := v_plan.path;
            v_ef := v_plan.ef;
            v_max_scan := v_plan.max_scan_tuples;
        END IF;
    END IF;

    -- No filter or one containment: the domain's static branch (its queries planned once per
    -- session; generated by memory_private._search_static_refresh, 36_search_static.sql), under
    -- the call's settings, put back after it (an error rolls them back with the transaction or
    -- the caller's subtransaction).
    IF (v_pred IS NULL OR v_plain) AND NOT v_d.distributed AND with_embeddings IS NOT TRUE THEN
        v_ef := %3$s;  -- memory_private._search_ef(k, coalesce(v_ef, ef_search)), spliced
        %7$s
        IF v_path = 'hnsw' THEN
            v_old_max_scan := current_setting('hnsw.max_scan_tuples', true);
            v_set := set_config('hnsw.iterative_scan', 'relaxed_order', true);
            v_set := set_config('hnsw.max_scan_tuples', v_max_scan::text, true);
        ELSIF v_old_iterative <> 'off' THEN
            -- the unfiltered branch is _search_sql's strict-order shape
            v_set := set_config('hnsw.iterative_scan', 'off', true);
        END IF;
        -- the domain's branch (memory_private._dispatch_sql: the names halved, then a CASE)
        %1$s
        %8$s
        IF v_old_max_scan IS NOT NULL THEN
            v_set := set_config('hnsw.max_scan_tuples', v_old_max_scan, true);
        END IF;
        IF v_static IS NULL THEN
            RETURN;
        END IF;
    END IF;

    IF v_d.distributed THEN
        -- Citus: the flat query, every shard's HNSW index (48_distributed.sql); no planner.
        v_saved := memory_private._search_settings_begin(k, ef_search,
            v_pred IS NOT NULL);
        v_sql := memory_private._dist_knn_sql(v_d, v_pred, with_embeddings IS TRUE);
    ELSIF v_pred IS NULL THEN
        v_saved := memory_private._search_settings_begin(k, ef_search, false);
        v_sql := memory_private._search_sql(v_d, false, with_embeddings IS TRUE);
    ELSE
        v_saved := memory_private._search_settings_begin(k, v_ef, v_path = 'hnsw');
        IF v_path = 'hnsw' THEN
            v_saved := memory_private._search_settings_scan(v_saved, v_max_scan);
        END IF;
        -- (the HNSW query alone; the exact one below only when it returns no row)
        v_sql := memory_private._knn_sql(v_d, v_pred,
            CASE WHEN v_path = 'hnsw' THEN 'hnsw_first' ELSE v_path END, with_embeddings IS TRUE);
    END IF;

    RETURN QUERY EXECUTE v_sql USING query_embedding, k, v_params, min_similarity;
    IF v_path = 'hnsw' THEN  -- (never set for a distributed domain)
        GET DIAGNOSTICS v_returned = ROW_COUNT;
        IF v_returned = 0 THEN
            -- fewer than k rows from the HNSW scan (or none at min_similarity): the exact query
            RETURN QUERY EXECUTE memory_private._knn_sql(v_d, v_pred, 'exact',
                with_embeddings IS TRUE)
            USING query_embedding, k, v_params, min_similarity;
        END IF;
    END IF;
    PERFORM memory_private._search_settings_end(v_saved);
END;
$body$

$template$,
        coalesce(nullif(branches, ''), '
        v_static := false;  -- no domain yet: the dynamic path below'),
        memory_private._vector_schema(),
        memory_private._search_ef_sql('k', 'coalesce(v_ef, ef_search)'),
        memory_private._check_embedding_sql('v_d.dimension', 'v_d.domain', 'query_embedding',
            '''query_embedding'''),
        memory_private._check_k_sql('k'),
        memory_private._domain_for_sql('search.domain', '''read''', 'v_d', 'v_r'),
        memory_private._branch_settings_sql(false), memory_private._branch_settings_sql(true))
$def$;

DO $install$
BEGIN
    EXECUTE memory_private._search_definition('');
END;
$install$;

COMMENT ON FUNCTION memory.search(
    text, vector, integer, jsonb, double precision, integer, interval, double precision, boolean
) IS
'The k nearest memories to query_embedding through the domain''s HNSW index, best first. '
'filter: the filter language (README; $eq $ne $gt $gte $lt $lte $in $nin $between $like $ilike '
'$exists $and $or $not, dotted keys, id/created_at/updated_at; malformed: 22023; more than '
'256 keys outside one plain containment, or more than 1000 values at any depth: 54000). A '
'filtered '
'search is planned per call (explain_search): an exact scan of few matching rows, else the HNSW '
'iterative scan with the exact scan as fallback (an estimate that picks it is checked first by '
'a bounded count through the filter''s index); k rows come back when k rows match. '
'ef_search (HNSW candidate list, recall against speed) defaults to '
'the session''s hnsw.ef_search raised to 100, is clamped to [k, 1000] and restored after the '
'call. similarity: 1 - cosine distance, 1 / (1 + l2 distance), or the inner product. '
'min_similarity drops weaker rows. Memory-aware ranking (off when both are NULL): '
'recency_half_life halves a memory''s score per half-life of age (updated_at); '
'importance_weight in [0, 1] blends in metadata->>''importance'' (a number in [0, 1], 0.5 when '
'absent): score = ((1 - w) * similarity + w * importance) * 0.5 ^ (age / half-life), over '
'max(4k, 40) index candidates; similarity stays the raw similarity. k is 1..1000. '
'with_embeddings => true fills the embedding column (for MMR), else it is NULL.';

CREATE OR REPLACE FUNCTION memory.search_text(
    domain text,
    query text,
    k integer DEFAULT 5,
    filter jsonb DEFAULT NULL,
    match text DEFAULT 'any'
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
BEGIN
    PERFORM memory_private._check_k(k);
    PERFORM memory_private._check_text_query(query, match, 'match');
    RETURN QUERY SELECT * FROM memory_private._search_text_bm25(v_d, query, k, filter, match);
END;
$$;

COMMENT ON FUNCTION memory.search_text(text, text, integer, jsonb, text) IS
'Full-text search (no embedding needed), ranked by BM25 over the domain''s stored tsvector: '
'query is read like a web search box ("quoted phrases", OR, -exclusion) in the domain''s text '
'configuration; a word typed twice counts twice. match => ''any'' (default) ranks every row '
'holding any of the words (a "phrase" must be present, an -excluded word absent; OR between '
'them, as websearch_to_tsquery reads it, makes either do: "a b" OR "c d", -x OR -y); match => '
'''all'' keeps only rows with every word (websearch_to_tsquery). rank is the BM25 score plus '
'a term-proximity bonus: each pair of consecutive query words found near each other in the row '
'(1, 2 or 3 positions apart, either order) adds pgmemo.bm25_proximity x the smaller IDF of the '
'two, x 1, 1/4 or 1/9. '
'Each word''s rows come from the full-text index; a word in more rows than the candidate budget '
'(by the planner''s statistics) brings only its 100 best rows as of the last '
'memory.refresh_text_stats (run_maintenance), and a row written since is found by its other '
'words (in a query of common words only, and a one-word query, by the rarest, whose rows are '
'read up to 20,000 in the index''s order: in a domain where it is in more, the rows past them '
'are not seen and its df is taken as 20,000); the best max(k, rerank) candidates by '
'an estimate of their score are scored exactly. Session settings: '
'pgmemo.bm25_k1 (default 1.2), pgmemo.bm25_b (0.75), pgmemo.bm25_budget (200 rows; 700 for a '
'filtered search or a query with a required part, which take no best rows), '
'pgmemo.bm25_rerank (50), pgmemo.bm25_proximity (0.7; 0: plain BM25). At most 64 distinct '
'words and 16 quoted phrases and -exclusions (error 22023). An empty, stop-word-only, '
'exclusion-only or punctuation-only query returns no rows; a query over 10000 characters is '
'error 22023. PostgreSQL''s tsvector keeps word positions up to 16,383 and 256 of them per '
'word: in a longer row the words past that share the last position (its length counts as '
'16,382 words) and a word''s repeats past 256 are not counted.';
