-- BM25 ranking for memory.search_text, in plain SQL (no extension): the query parsed like a web
-- search box, candidates from the domain's GIN index, and the usual Okapi BM25 score
--   sum over query lexemes of idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),
--   idf = ln(1 + (N - df + 0.5) / (df + 0.5))
-- with tf read from the stored tsvector (its positions), dl the row's length in words (see
-- _stored_tsvector_sql).
--
-- Where the numbers come from (measured in BENCHMARKS.md, "Search quality"):
-- * N and avgdl: memory_private.text_stats, refreshed by memory.refresh_text_stats (and by
--   memory.run_maintenance when a domain changed by more than 10%); a domain without a row is
--   estimated on the fly from at most 1,000 rows (about 10 ms per call at 3,000 rows).
-- * df per lexeme: rare lexemes (not among the planner's most common elements of the tsvector
--   as copied into text_stats by the last refresh; every lexeme before one) generate the
--   candidates, and since every row
--   holding one is then a candidate, their df is counted exactly at query time. Common lexemes
--   (most_common_elems, from ANALYZE) only add to the score of those candidates, with df =
--   frequency * N: a row that holds only common words of the query scores little anyway, and
--   leaving them out of the candidate scan bounds its cost. Nothing is maintained per write.

-- The tsvector of a domain's content, as SQL text: the stored generated column of factory
-- tables, and the expression index of adopted tables, are both built from this expression.
CREATE OR REPLACE FUNCTION memory_private._tsvector_sql(text_config regconfig, content_sql text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('to_tsvector(%L::regconfig, %s)', text_config::text, content_sql)
$$;

-- The length marker's lexeme, quoted as a tsvector/tsquery literal.
CREATE OR REPLACE FUNCTION memory_private._length_marker()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT ''' dl''' $$;

-- The stored tsvector of a factory table: the content's, plus one marker lexeme ' dl' (no
-- parser makes a lexeme with a space) appended with ||, which places it one position after the
-- content's last word: its position - 1 is the document's length in words, BM25's dl, read at
-- query time from the few lexemes a query touches instead of unnesting the whole tsvector.
-- (Length in words beat distinct lexemes on the eval's dev queries: MRR@10 0.510 vs 0.496.)
CREATE OR REPLACE FUNCTION memory_private._stored_tsvector_sql(
    text_config regconfig, content_sql text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('(%s || %L::tsvector)', memory_private._tsvector_sql(text_config, content_sql),
        memory_private._length_marker() || ':1')
$$;

-- A row's length for BM25: the marker's position - 1 on factory tables, the number of distinct
-- lexemes on adopted ones (whose tsvector is the plain expression of their index). hit: the
-- row's tsvector filtered to the query's lexemes and the marker; tsv: the whole tsvector.
CREATE OR REPLACE FUNCTION memory_private._dl_sql(hit_sql text, tsv_sql text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$coalesce((SELECT u.positions[1] - 1 FROM unnest(%1$s) AS u
        WHERE u.lexeme = ' dl'), length(%2$s))$q$, hit_sql, tsv_sql)
$$;

-- The tsvector of row t in search queries: the stored column of a factory table; on an adopted
-- domain (a view over the application's table, never altered) the indexed expression.
CREATE OR REPLACE FUNCTION memory_private._domain_tsvector_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN d.adopted THEN memory_private._tsvector_sql(d.text_config, 't.content')
        ELSE 't.content_tsv' END
$$;

-- BM25 parameters (the usual values, as bm25s and Lucene use).
CREATE OR REPLACE FUNCTION memory_private._bm25_k1()
RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1.2::double precision $$;

CREATE OR REPLACE FUNCTION memory_private._bm25_b()
RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 0.75::double precision $$;

-- How many rows (estimated) the common lexemes of a query may add to the candidate scan.
CREATE OR REPLACE FUNCTION memory_private._text_candidate_budget()
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 2000::bigint $$;

-- At most this many distinct words per query (each costs a GIN lookup and a lookup in every
-- candidate's tsvector): a longer query is refused with error 22023.
CREATE OR REPLACE FUNCTION memory_private._text_max_words()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 64 $$;

-- Hard cap on the candidate rows one search_text call ranks (bounded cost whatever the query).
CREATE OR REPLACE FUNCTION memory_private._text_candidate_cap()
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 20000::bigint $$;

-- A web-search query (the syntax of websearch_to_tsquery: "quoted phrases", OR, -exclusion)
-- split for ranking:
-- * words: the distinct lexemes of every word that is not excluded (phrase words included);
-- * required: what every result must satisfy, or NULL: with match 'all' the whole query as
--   websearch_to_tsquery reads it; with match 'any' only the phrases (each as a phrase) and the
--   exclusions;
-- * phrases: the phrases OR'ed (rows holding a phrase are candidates even when its words are
--   common), or NULL.
CREATE OR REPLACE FUNCTION memory_private._parse_text_query(
    text_config regconfig, query text, match text,
    OUT words text[], OUT required tsquery, OUT phrases tsquery
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_tok text;
    v_neg boolean;
    v_q tsquery;
    v_positive text := '';
BEGIN
    words := ARRAY[]::text[];
    FOR v_tok IN
        SELECT m[1] FROM regexp_matches(coalesce(query, ''), '(-?"[^"]*"?|[^\s"]+)', 'g') AS m
    LOOP
        v_neg := left(v_tok, 1) = '-' AND length(v_tok) > 1;
        IF v_neg THEN
            v_tok := substr(v_tok, 2);
        END IF;
        -- (to_tsvector first: the tsquery parsers raise a NOTICE for stop words)
        CONTINUE WHEN to_tsvector(text_config, btrim(v_tok, '"')) = ''::tsvector;
        IF left(v_tok, 1) = '"' THEN
            v_q := phraseto_tsquery(text_config, btrim(v_tok, '"'));
        ELSIF lower(v_tok) = 'or' AND NOT v_neg THEN
            CONTINUE;  -- the OR operator: with ranking every word is an alternative anyway
        ELSE
            v_q := plainto_tsquery(text_config, v_tok);
        END IF;
        CONTINUE WHEN numnode(v_q) = 0;  -- stop words, punctuation
        IF v_neg THEN
            required := CASE WHEN required IS NULL THEN !! v_q ELSE required && !! v_q END;
        ELSE
            v_positive := v_positive || ' ' || btrim(v_tok, '"');
            IF left(v_tok, 1) = '"' AND v_q::text LIKE '%<%>%' THEN
                required := CASE WHEN required IS NULL THEN v_q ELSE required && v_q END;
                phrases := CASE WHEN phrases IS NULL THEN v_q ELSE phrases || v_q END;
            END IF;
        END IF;
    END LOOP;
    words := ARRAY(
        SELECT DISTINCT w FROM unnest(tsvector_to_array(to_tsvector(text_config, v_positive))) AS w
        ORDER BY w
    );
    IF match = 'all' THEN
        required := websearch_to_tsquery(text_config, coalesce(query, ''));
        IF numnode(required) = 0 THEN
            required := NULL;
        END IF;
    END IF;
END;
$$;

-- N (rows), avgdl (average length, see _dl_sql) and the common lexemes' shares of a domain: the
-- refreshed statistics, else an estimate of N and avgdl from at most 1,000 rows (N then at
-- least the planner's row count) and no common lexemes (every lexeme counted exactly).
CREATE OR REPLACE FUNCTION memory_private._text_stats(
    d memory_private.domains, OUT documents double precision, OUT avg_length double precision,
    OUT common_lexemes jsonb
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT s.documents, s.avg_length, s.common_lexemes INTO documents, avg_length, common_lexemes
    FROM memory_private.text_stats AS s WHERE s.domain = d.domain;
    IF FOUND AND documents > 0 THEN
        RETURN;
    END IF;
    common_lexemes := '{}';
    EXECUTE format(
        $q$SELECT count(*), coalesce(avg(%4$s), 0)
           FROM (SELECT %1$s AS tsv FROM %2$I.%3$I AS t LIMIT 1000) AS v$q$,
        memory_private._domain_tsvector_sql(d), d.table_schema, d.table_name,
        memory_private._dl_sql(
            format('ts_filter(setweight(v.tsv, %L, %L), %L)', 'A', '{" dl"}', '{a}'), 'v.tsv'))
    INTO documents, avg_length;
    documents := greatest(documents, (
        SELECT c.reltuples FROM pg_catalog.pg_class AS c
        WHERE c.oid = coalesce(d.source_table,
            format('%I.%I', d.table_schema, d.table_name)::regclass)));
END;
$$;

-- The planner's most common elements of a domain's tsvector as {lexeme: share of rows}: from
-- ANALYZE of the stored column, or of an adopted table's expression index ({} before any).
CREATE OR REPLACE FUNCTION memory_private._common_lexemes(d memory_private.domains)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((
        SELECT jsonb_object_agg(e.elem, e.freq)
        FROM pg_catalog.pg_stats AS s,
            unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                WITH ORDINALITY AS e (elem, freq, n)
        WHERE CASE WHEN d.adopted
            THEN s.schemaname = (SELECT n.nspname FROM pg_catalog.pg_class AS c
                    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                    WHERE c.oid = d.source_table)
                AND s.tablename = 'pgmemo_' || d.domain || '_fts'
            ELSE s.schemaname = d.table_schema AND s.tablename = d.table_name
                AND s.attname = 'content_tsv' END
          -- the array ends with the minimum, maximum and null frequencies
          AND e.n <= cardinality(s.most_common_elems::text::text[])
    ), '{}'::jsonb)
$$;

-- The BM25 query over one domain. $1 words (text[]), $2 the lexemes' estimated df (NULL: count
-- it over the candidates), $3 the candidate tsquery, $4 required (tsquery or NULL), $5 filter,
-- $6 N, $7 avgdl, $8 k1, $9 b, $10 k, $11 the candidate cap. The tsvector expression appears
-- once per row (a LATERAL) so an adopted table's is computed once per candidate.
CREATE OR REPLACE FUNCTION memory_private._bm25_sql(d memory_private.domains, with_filter boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        WITH cand AS MATERIALIZED (
            SELECT t.id, %5$s AS dl, h.hit,
                ($4::tsquery IS NULL OR v.tsv @@ $4) %4$s AS ok
            FROM %2$I.%3$I AS t
            CROSS JOIN LATERAL (SELECT %1$s AS tsv) AS v
            CROSS JOIN LATERAL (
                SELECT ts_filter(setweight(v.tsv, 'A', $1 || ' dl'::text), '{a}') AS hit) AS h
            WHERE %1$s @@ $3
            LIMIT $11
        ),
        hits AS MATERIALIZED (
            SELECT c.id, c.dl, c.ok, h.lexeme, cardinality(h.positions) AS tf
            FROM cand AS c CROSS JOIN LATERAL unnest(c.hit) AS h
        ),
        w AS MATERIALIZED (
            SELECT q.lexeme, ln(1 + ($6 - x.df + 0.5) / (x.df + 0.5)) AS idf
            FROM unnest($1::text[], $2::double precision[]) AS q (lexeme, est)
            LEFT JOIN (SELECT h.lexeme, count(*) AS n FROM hits AS h GROUP BY h.lexeme) AS c
                ON c.lexeme = q.lexeme
            CROSS JOIN LATERAL (
                SELECT least(greatest(coalesce(q.est, c.n, 0), 1), $6) AS df) AS x
        ),
        scored AS (
            SELECT h.id, sum(w.idf * h.tf * ($8 + 1)
                / (h.tf + $8 * (1 - $9 + $9 * h.dl / greatest($7, 1)))) AS score
            FROM hits AS h JOIN w ON w.lexeme = h.lexeme
            WHERE h.ok
            GROUP BY h.id
            ORDER BY score DESC, h.id
            LIMIT $10 + 16
        )
        SELECT t.id, t.content, t.metadata, s.score::double precision AS rank, t.created_at,
            t.updated_at
        FROM scored AS s JOIN %2$I.%3$I AS t ON t.id = s.id
        ORDER BY s.score DESC, t.updated_at DESC, t.id
        LIMIT $10
    $q$,
    memory_private._domain_tsvector_sql(d), d.table_schema, d.table_name,
    CASE WHEN with_filter THEN 'AND t.metadata @> $5' ELSE '' END,
    memory_private._dl_sql('h.hit', 'v.tsv'))
$$;

-- Ranked full-text search of one domain (memory.search_text does the argument checks).
-- enable_seqscan is off for the call (restored on exit): the planner's estimate of the @@ scan
-- ignores that each row's tsvector is detoasted, and at a few thousand rows it picked a
-- sequential scan over every tsvector instead of the GIN index (measured 10x slower on the eval).
CREATE OR REPLACE FUNCTION memory_private._search_text_bm25(
    d memory_private.domains, query text, k integer, filter jsonb, match text
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
DECLARE
    v_p record;
    v_stats record;
    v_words text[];
    v_est double precision[];
    v_cand text[];
    v_cand_query tsquery;
    -- the filter language (sql/33_filter_compile.sql): its values are $5 here
    v_f record := memory_private._filter_compile(filter);
    v_sql text := memory_private._bm25_sql(d, v_f.predicate IS NOT NULL);
BEGIN
    IF v_f.predicate IS NOT NULL THEN
        v_sql := replace(v_sql, 'AND t.metadata @> $5',
            'AND ' || regexp_replace(v_f.predicate, '\(\$3 -', '($5 -', 'g'));
    END IF;
    SELECT * INTO v_p FROM memory_private._parse_text_query(d.text_config, query, match);
    IF cardinality(v_p.words) = 0 THEN
        RETURN;  -- empty, stop words or exclusions only: nothing to rank by
    END IF;
    IF cardinality(v_p.words) > memory_private._text_max_words() THEN
        RAISE EXCEPTION 'query has % distinct words; search_text takes at most %',
            cardinality(v_p.words), memory_private._text_max_words()
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_stats FROM memory_private._text_stats(d);
    -- Rare lexemes (no planner frequency) generate candidates; common ones join, rarest first,
    -- while their estimated rows fit the budget; the rarest lexeme always does.
    WITH l AS (
        SELECT w.lexeme, (v_stats.common_lexemes ->> w.lexeme)::double precision AS freq
        FROM unnest(v_p.words) AS w (lexeme)
    ),
    f AS (
        SELECT l.lexeme, l.freq, l.freq * v_stats.documents AS est_rows,
            sum(coalesce(l.freq, 0) * v_stats.documents) OVER (
                ORDER BY l.freq NULLS FIRST, l.lexeme) AS running,
            row_number() OVER (ORDER BY l.freq NULLS FIRST, l.lexeme) AS rn
        FROM l
    )
    SELECT array_agg(f.lexeme ORDER BY f.lexeme),
        array_agg(CASE WHEN f.freq IS NULL OR f.running <= memory_private._text_candidate_budget()
                OR f.rn = 1 THEN NULL ELSE f.est_rows END ORDER BY f.lexeme),
        array_agg(f.lexeme ORDER BY f.lexeme) FILTER (WHERE f.freq IS NULL
            OR f.running <= memory_private._text_candidate_budget() OR f.rn = 1)
    INTO v_words, v_est, v_cand
    FROM f;
    -- tsquery literal: each lexeme quoted (quotes doubled, backslashes escaped), OR'ed.
    v_cand_query := (SELECT string_agg(
            '''' || replace(replace(w, E'\\', E'\\\\'), '''', '''''') || '''', ' | ')
        FROM unnest(v_cand) AS w)::tsquery;
    IF v_p.phrases IS NOT NULL THEN
        v_cand_query := v_cand_query || v_p.phrases;
    END IF;
    RETURN QUERY EXECUTE v_sql
    USING v_words, v_est, v_cand_query, v_p.required, v_f.params, v_stats.documents,
        v_stats.avg_length, memory_private._bm25_k1(), memory_private._bm25_b(), k,
        memory_private._text_candidate_cap();
END;
$$;

-- Recompute one domain's N and avgdl (and, on pgmemo's own tables, ANALYZE the tsvector column
-- so the common lexemes' frequencies are current).
CREATE OR REPLACE FUNCTION memory_private._refresh_text_stats(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_docs bigint;
    v_avg double precision;
BEGIN
    IF NOT d.adopted THEN
        -- Never on an adopted table: ANALYZE would run its owner's index expressions with
        -- pgmemo's rights. Autovacuum analyzes it.
        EXECUTE format('ANALYZE %I.%I (content_tsv)', d.table_schema, d.table_name);
    END IF;
    EXECUTE format(
        $q$SELECT count(*), coalesce(avg(%4$s), 0)
           FROM %2$I.%3$I AS t CROSS JOIN LATERAL (SELECT %1$s AS tsv) AS v$q$,
        memory_private._domain_tsvector_sql(d), d.table_schema, d.table_name,
        memory_private._dl_sql(
            format('ts_filter(setweight(v.tsv, %L, %L), %L)', 'A', '{" dl"}', '{a}'), 'v.tsv'))
    INTO v_docs, v_avg;
    INSERT INTO memory_private.text_stats AS s
        (domain, documents, avg_length, common_lexemes, writes_at_refresh, refreshed_at)
    VALUES (d.domain, v_docs, v_avg, memory_private._common_lexemes(d),
            memory_private._text_writes(d), now())
    ON CONFLICT (domain) DO UPDATE
        SET documents = excluded.documents, avg_length = excluded.avg_length,
            common_lexemes = excluded.common_lexemes,
            writes_at_refresh = excluded.writes_at_refresh, refreshed_at = excluded.refreshed_at;
END;
$$;

-- Rows inserted plus rows deleted in a domain's table so far, per the statistics collector
-- (committed work, published within a second or so).
CREATE OR REPLACE FUNCTION memory_private._text_writes(d memory_private.domains)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((
        SELECT st.n_tup_ins + st.n_tup_del FROM pg_catalog.pg_stat_all_tables AS st
        WHERE st.relid = coalesce(d.source_table,
            to_regclass(format('%I.%I', d.table_schema, d.table_name)))
    ), 0)
$$;

-- Whether a domain's text statistics are missing, or more rows than 10% of those counted (+50)
-- were inserted or deleted since they were refreshed. (Content updates are not counted: the
-- queue's embedding writes would make every refresh count twice.)
CREATE OR REPLACE FUNCTION memory_private._text_stats_stale(d memory_private.domains)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((
        SELECT abs(memory_private._text_writes(d) - s.writes_at_refresh)
            > 0.1 * s.documents + 50
        FROM memory_private.text_stats AS s
        WHERE s.domain = d.domain
    ), true)
$$;

CREATE OR REPLACE FUNCTION memory.refresh_text_stats(domain text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_count integer := 0;
BEGIN
    IF domain IS NOT NULL THEN
        PERFORM memory_private._refresh_text_stats(memory_private._domain(domain));
        RETURN 1;
    END IF;
    FOR v_d IN
        SELECT x.* FROM memory_private.domains AS x
        WHERE NOT memory_private._is_shadow(x)
          AND to_regclass(format('%I.%I', x.table_schema, x.table_name)) IS NOT NULL
        ORDER BY x.domain
    LOOP
        CONTINUE WHEN NOT memory_private._text_stats_stale(v_d);
        BEGIN
            PERFORM memory_private._refresh_text_stats(v_d);
            v_count := v_count + 1;
        EXCEPTION WHEN OTHERS THEN
            -- one domain's trouble (dropped under us, a lock) must not stop the maintenance run
            RAISE WARNING 'pgmemo: text statistics of domain "%" not refreshed: %', v_d.domain,
                SQLERRM;
        END;
    END LOOP;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.refresh_text_stats(text) IS
'Refresh the statistics memory.search_text ranks with (BM25''s row count and average length, '
'and an ANALYZE of the stored tsvector so common words'' frequencies are current). With a '
'domain: that one, always. Without: every domain whose statistics are missing or off by more '
'than 10% (memory.run_maintenance calls this). Returns the number of domains refreshed.';
