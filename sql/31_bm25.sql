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
-- * df per lexeme: each candidate lexeme's rows are read through the GIN index (one index search
--   per lexeme, no tsvector read), which counts its df exactly. Rare lexemes (not among the
--   planner's most common elements of the tsvector as copied into text_stats by the last
--   refresh) are always candidates; common ones join rarest first while their estimated rows fit
--   pgmemo.bm25_budget; the others bring their best rows as of the last refresh
--   (memory_private.text_top: the 100 rows where BM25 weighs the word most) and add to the score
--   of every candidate, with df = frequency * N (reading all their rows would cost the most and
--   add rows that score little). Nothing is maintained per write: a row written since the last
--   refresh is found by its rare words and, in a query of common words only, by the rarest.
-- * The candidates best by a cheap estimate (_bm25_sql) are scored exactly: at most
--   max(k, pgmemo.bm25_rerank) tsvectors are read per call, and at most 100 best rows per common
--   word (64 words at most).
-- * Unfiltered searches of every domain but a distributed one run a plan cached per session
--   (_search_text_static, generated per domain).

-- The tsvector of a domain's content, as SQL text: the stored generated column of factory
-- tables, and the text index of adopted tables, are both built from this expression.
CREATE OR REPLACE FUNCTION memory_private._tsvector_sql(text_config regconfig, content_sql text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('to_tsvector(%L::regconfig, %s)', text_config::text, content_sql)
$$;

-- An adopted table's content as its tsvector reads it: the first _adopted_text_chars()
-- characters (issue 11). A tsvector holds at most 1 MB of distinct lexemes, and a longer row would
-- make the application's INSERT fail with "string is too long for tsvector" (the text index's
-- trigger computes it in that INSERT). A character gives at most 4 bytes, lower-cased at most 4,
-- and the parser emits it at most twice (a hyphenated word and its parts, a URL and its host or
-- path): 100,000 characters stay under the limit whatever the text.
CREATE OR REPLACE FUNCTION memory_private._adopted_text_chars()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 100000 $$;

CREATE OR REPLACE FUNCTION memory_private._adopted_content_sql(content_sql text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT format('left(%s, %s)', content_sql, memory_private._adopted_text_chars()) $$;

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

-- The stored tsvector of an adopted table's row, as SQL text (content_sql: its content column):
-- a factory table's stored tsvector over the bounded prefix. The rows of an adopted domain's text
-- index (memory_data.<domain>_text, sql/45_adopt.sql) hold it, written by the domain's text
-- trigger (sql/43_wire.sql) and by memory.sync_text_index.
CREATE OR REPLACE FUNCTION memory_private._adopted_tsvector_sql(
    text_config regconfig, content_sql text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT memory_private._stored_tsvector_sql(text_config,
        memory_private._adopted_content_sql(content_sql))
$$;

-- The row of an adopted domain's text index for row `alias` of its table, as a select list in the
-- order of its columns (id, content_tsv, content_bytes): the id as the view shows it, the stored
-- tsvector, and the size of the content as the view shows it (BM25's first stage reads it as a
-- factory table's octet_length(content)). A NULL content is an empty one.
CREATE OR REPLACE FUNCTION memory_private._text_index_row_sql(d memory_private.domains, alias text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('%1$I.%2$I::text, %3$s, octet_length(%4$s)', alias, d.id_column,
        memory_private._adopted_tsvector_sql(d.text_config, c.content), c.content)
    FROM (SELECT format('coalesce(%I.%I::text, %L)', alias, d.content_column, '') AS content) AS c
$$;

-- The name of an adopted domain's text index: the table memory_data.<domain>_text (id text
-- primary key, content_tsv: the stored tsvector of the source row with that id). Adoption must
-- not alter the application's table, so its tsvectors live beside it, and text search reads them
-- as a factory table's stored column (the domain's view joins them in as content_tsv).
CREATE OR REPLACE FUNCTION memory_private._text_table_name(domain text)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT (domain || '_text')::name $$;

-- An adopted domain's text index, or NULL (a factory domain, a re-embed's shadow domain, a
-- domain over a distributed table, or one whose index could not be made yet).
CREATE OR REPLACE FUNCTION memory_private._text_table(d memory_private.domains)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN d.adopted THEN
        to_regclass(format('memory_data.%I', memory_private._text_table_name(d.domain))) END
$$;

-- An adopted domain's text index when BM25's first stage can read its postings there alone: it
-- holds every row's content size (content_bytes, NOT NULL once filled; an index made by schema
-- 0024 gains it from the next migrate run, or from memory.sync_text_index), else NULL.
CREATE OR REPLACE FUNCTION memory_private._text_postings_table(d memory_private.domains)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT x.rel FROM (SELECT memory_private._text_table(d) AS rel) AS x
    WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = x.rel AND a.attname = 'content_bytes' AND a.attnotnull)
$$;

-- Where BM25's first stage reads a domain's postings (rel, as SQL text: a relation aliased t with
-- id and content_tsv) and each posting's content size (len, an expression on t). Without a
-- filter, an adopted domain's come from its text index alone (the same rows, sizes and order as
-- through the view, without a look-up of the application's table per posting); otherwise the
-- domain's table or view (a filter reads its metadata and columns).
CREATE OR REPLACE FUNCTION memory_private._text_postings_source(
    d memory_private.domains, predicate text
)
RETURNS TABLE (rel text, len text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce(x.rel::text, format('%I.%I', d.table_schema, d.table_name)),
        CASE WHEN x.rel IS NOT NULL THEN 't.content_bytes' ELSE 'octet_length(t.content)' END
    FROM (SELECT CASE WHEN predicate = 'true'
        THEN memory_private._text_postings_table(d) END AS rel) AS x
$$;

-- The tsvector of row t that search queries match and BM25 reads tf and the length from: the
-- stored column content_tsv of a factory table, and of an adopted domain's view (its text index,
-- memory_data.<domain>_text, joined in; on a re-embed's shadow domain, computed).
CREATE OR REPLACE FUNCTION memory_private._domain_tsvector_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 't.content_tsv' $$;

-- BM25's knobs: k1 (tf saturation) and b (length normalisation), the candidate budget (how many
-- rows, estimated, the common lexemes of a query may add to the candidate scan) and rerank (how
-- many rows at least are scored exactly from their tsvector). k1 and b are the usual values
-- (bm25s, Lucene): on the dev sweeps of bench/quality.py other values moved MRR@10 by less than
-- the sweep's noise. budget: 200 for a search that takes the common words' best rows as
-- candidates (best_rows: memory_private.text_top; search_text unfiltered, without a required
-- part, not distributed), which scored MRR@10 at or above 700 without them on both corpora's
-- dev queries for less CPU; 700 for the others (200 left the rows of a word in 200..700 rows
-- out of a filtered search that every row passed). rerank 50: 20 lost 0.006 MRR@10 against
-- exact scoring on 2,200 docstring summaries no sweep had used (stop 30; BENCHMARKS.md,
-- "Search quality").
-- proximity: the weight of the
-- term-proximity bonus search_text adds to a row's BM25 score (_bm25_row_score_sql; 0: plain
-- BM25), the best mean of both corpora's dev queries in the first sweep (within 0.001 of 0.5
-- since: BENCHMARKS.md). A session may set pgmemo.bm25_k1 (0..10),
-- pgmemo.bm25_b (0..1), pgmemo.bm25_budget (rows, >= 0), pgmemo.bm25_rerank (1..10000) and
-- pgmemo.bm25_proximity (0..10) for its corpus (out of range, not finite or unreadable: 22023).
-- The defaults' one place is _bm25_defaults; _bm25_unset_sql is the condition that the session
-- set none of the settings (spliced into memory.search_hybrid, which then takes k1 and b from
-- the defaults without calling _bm25_params: 1.7% of a small domain's hybrid, stop 33).
CREATE OR REPLACE FUNCTION memory_private._bm25_defaults(
    OUT k1 double precision, OUT b double precision, OUT budget_best_rows double precision,
    OUT budget double precision, OUT rerank integer, OUT proximity double precision
)
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1.2::double precision, 0.75::double precision, 200::double precision,
    700::double precision, 50, 0.7::double precision $$;

CREATE OR REPLACE FUNCTION memory_private._bm25_unset_sql()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT string_agg(format($c$coalesce(current_setting(%L, true), '') = ''$c$, n.name), ' AND ')
    FROM unnest(ARRAY['pgmemo.bm25_k1', 'pgmemo.bm25_b', 'pgmemo.bm25_budget',
        'pgmemo.bm25_rerank', 'pgmemo.bm25_proximity']) AS n (name)
$$;

DO $install$
DECLARE
    d record := memory_private._bm25_defaults();
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._bm25_params(
    best_rows boolean DEFAULT TRUE,
    OUT k1 double precision, OUT b double precision, OUT budget double precision,
    OUT rerank integer, OUT proximity double precision
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_k1 text;
    v_b text;
    v_budget text;
    v_rerank text;
    v_proximity text;
BEGIN
    k1 := %1$s;
    b := %2$s;
    budget := CASE WHEN best_rows THEN %3$s ELSE %4$s END;
    rerank := %5$s;
    proximity := %6$s;
    IF %7$s THEN
        RETURN;  -- the defaults (no exception block: it costs a subtransaction per call)
    END IF;
    v_k1 := nullif(current_setting('pgmemo.bm25_k1', true), '');
    v_b := nullif(current_setting('pgmemo.bm25_b', true), '');
    v_budget := nullif(current_setting('pgmemo.bm25_budget', true), '');
    v_rerank := nullif(current_setting('pgmemo.bm25_rerank', true), '');
    v_proximity := nullif(current_setting('pgmemo.bm25_proximity', true), '');
    BEGIN
        k1 := coalesce(v_k1::double precision, k1);
        b := coalesce(v_b::double precision, b);
        budget := coalesce(v_budget::double precision, budget);
        rerank := coalesce(v_rerank::integer, rerank);
        proximity := coalesce(v_proximity::double precision, proximity);
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        k1 := 'NaN';
    END;
    -- (NaN passes >= 0 in PostgreSQL's order: refused by name, with infinity)
    IF NOT (k1 BETWEEN 0 AND 10 AND b BETWEEN 0 AND 1 AND budget >= 0
            AND budget < 'Infinity' AND rerank BETWEEN 1 AND 10000
            AND proximity BETWEEN 0 AND 10) THEN
        RAISE EXCEPTION 'pgmemo.bm25_k1 must be in [0, 10], pgmemo.bm25_b in [0, 1], '
            'pgmemo.bm25_budget >= 0, pgmemo.bm25_rerank in [1, 10000] and '
            'pgmemo.bm25_proximity in [0, 10]; got %%, %%, %%, %%, %%',
            v_k1, v_b, v_budget, v_rerank, v_proximity
            USING ERRCODE = '22023';
    END IF;
END;
$body$$f$, d.k1, d.b, d.budget_best_rows, d.budget, d.rerank, d.proximity,
        memory_private._bm25_unset_sql());
END;
$install$;

-- At most this many distinct words per query (each costs a GIN lookup and a lookup in every
-- candidate's tsvector): a longer query is refused with error 22023.
CREATE OR REPLACE FUNCTION memory_private._text_max_words()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 64 $$;

-- At most this many quoted phrases and -exclusions per query (22023 beyond): each is checked
-- against every candidate row (the query's requirement) and the phrases are candidates
-- themselves, one GIN search of all of them whose every item is checked against their OR, so
-- their number multiplies the cost (1,000 phrases of common words took 12.6 s at 100,000 rows).
CREATE OR REPLACE FUNCTION memory_private._text_max_phrases()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 16 $$;

-- What makes a query more than plain words, as a regular expression (matched ignoring case):
-- a quote, a word starting with '-' (a '-' alone, as in 'pip - the package installer', excludes
-- nothing: _parse_text_query skips it, and the parser gives it no position), the word OR
-- (websearch_to_tsquery's syntax). Without it _parse_text_query takes the words as they are, and
-- memory.search_hybrid may take its branch.
CREATE OR REPLACE FUNCTION memory_private._text_syntax_pattern()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT '"|(^|\s)-\S|(^|\s)or(\s|$)' $$;

-- Hard cap on the index rows one search_text call reads in all (shared among its candidate
-- lexemes; a lexeme's document frequency is counted up to its share): bounded cost whatever
-- the query and whatever the state of the statistics.
CREATE OR REPLACE FUNCTION memory_private._text_candidate_cap()
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 20000::bigint $$;

-- The text arguments of search_text and search_hybrid: match (named match_name in the error)
-- is 'all' or 'any', the query at most 10,000 characters (error 22023). The rule's one place is
-- _check_text_query_sql, PL/pgSQL statements over the expressions given: _check_text_query is
-- made from it, and memory.search_hybrid splices it (as _check_k_sql: a PERFORM of the helper
-- cost a query of its own per call, 2% of a small domain's hybrid; callgrind, stop 33).
CREATE OR REPLACE FUNCTION memory_private._check_text_query_sql(
    query text, match text, match_name text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($s$IF %2$s IS NULL OR %2$s NOT IN ('all', 'any') THEN
        RAISE EXCEPTION '%% must be ''all'' or ''any'', got %%', %3$s,
            coalesce(quote_literal(%2$s), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF length(%1$s) > 10000 THEN
        RAISE EXCEPTION 'query is %% characters long; search_text takes at most 10000',
            length(%1$s)
            USING ERRCODE = '22023';
    END IF;$s$, query, match, match_name)
$$;

DO $install$
BEGIN
    EXECUTE memory_private._check_function_sql(
        '_check_text_query(query text, match text, match_name text)',
        memory_private._check_text_query_sql('query', 'match', 'match_name'));
END;
$install$;

-- A web-search query (the syntax of websearch_to_tsquery: "quoted phrases", OR, -exclusion)
-- split for ranking:
-- * words: the distinct lexemes of every word that is not excluded (phrase words included),
--   in the order of their first occurrence (consecutive ones are the pairs search_text's
--   proximity bonus looks for); qtf: how often each occurs in the query (BM25 sums a term once
--   per occurrence);
-- * required: what every result must satisfy, or NULL: with match 'all' the whole query as
--   websearch_to_tsquery reads it; with match 'any' the same structure (OR between groups of
--   terms side by side, a group needing all of its terms) with each plain word read as true
--   (ranked, never required): each group requires its phrases and exclusions, and a row must
--   satisfy one group. So '"a b" c' requires the phrase, '"a b" OR "c d"' either phrase,
--   '"a b" OR c' nothing, '-a OR -b' to miss one of the words;
-- * phrases: the phrases OR'ed (rows holding a phrase are candidates even when its words are
--   common), or NULL.
CREATE OR REPLACE FUNCTION memory_private._parse_text_query(
    text_config regconfig, query text, match text,
    OUT words text[], OUT qtf double precision[], OUT required tsquery, OUT phrases tsquery
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_tok text;
    v_neg boolean;
    v_q tsquery;
    v_positive text := '';
    v_group tsquery;  -- the current group's phrases and exclusions, ANDed (NULL: none)
    v_terms boolean := false;  -- the current group has a term
    v_groups tsquery;  -- the closed groups' requirements, ORed
    v_free boolean := false;  -- a closed group requires nothing: the query requires nothing
    v_syntax integer := 0;  -- phrases and exclusions so far
BEGIN
    IF coalesce(query, '') !~* memory_private._text_syntax_pattern() THEN
        v_positive := coalesce(query, '');  -- plain words only: ranked, nothing required
    ELSE
        -- (a NULL token closes the last group)
        FOR v_tok IN
            SELECT m[1] FROM regexp_matches(query, '(-?"[^"]*"?|[^\s"]+)', 'g') AS m
            UNION ALL SELECT NULL
        LOOP
            IF v_tok IS NULL OR lower(v_tok) = 'or' THEN  -- the end of a group
                IF v_terms THEN
                    v_free := v_free OR v_group IS NULL;
                    v_groups := CASE WHEN v_groups IS NULL THEN v_group
                        ELSE v_groups || v_group END;
                END IF;
                v_group := NULL;
                v_terms := false;
                CONTINUE;
            END IF;
            v_neg := left(v_tok, 1) = '-' AND length(v_tok) > 1;
            IF v_neg THEN
                v_tok := substr(v_tok, 2);
            END IF;
            -- (only what the configuration keeps is a term, as for websearch_to_tsquery; and
            -- to_tsvector first: the tsquery parsers raise a NOTICE for stop words)
            CONTINUE WHEN to_tsvector(text_config, btrim(v_tok, '"')) = ''::tsvector;
            IF NOT v_neg THEN
                v_positive := v_positive || ' ' || btrim(v_tok, '"');
            END IF;
            IF v_neg OR left(v_tok, 1) = '"' THEN
                v_syntax := v_syntax + 1;
                IF v_syntax > memory_private._text_max_phrases() THEN
                    RAISE EXCEPTION 'query has more than % quoted phrases and -exclusions; '
                        'search_text takes at most %', memory_private._text_max_phrases(),
                        memory_private._text_max_phrases()
                        USING ERRCODE = '22023';
                END IF;
            END IF;
            v_q := NULL;
            IF v_neg THEN
                v_q := !! CASE WHEN left(v_tok, 1) = '"'
                    THEN phraseto_tsquery(text_config, btrim(v_tok, '"'))
                    ELSE plainto_tsquery(text_config, v_tok) END;
            ELSIF left(v_tok, 1) = '"' THEN
                v_q := phraseto_tsquery(text_config, btrim(v_tok, '"'));
                IF v_q::text LIKE '%<%>%' THEN
                    phrases := CASE WHEN phrases IS NULL THEN v_q ELSE phrases || v_q END;
                ELSE
                    v_q := NULL;  -- a quoted single word: a plain word
                END IF;
            END IF;
            v_terms := true;
            IF v_q IS NOT NULL THEN
                v_group := CASE WHEN v_group IS NULL THEN v_q ELSE v_group && v_q END;
            END IF;
        END LOOP;
        required := CASE WHEN NOT v_free THEN v_groups END;
    END IF;
    SELECT coalesce(array_agg(u.lexeme ORDER BY u.positions[1]), ARRAY[]::text[]),
        coalesce(array_agg(cardinality(u.positions)::double precision ORDER BY u.positions[1]),
            ARRAY[]::double precision[])
    INTO words, qtf
    FROM unnest(to_tsvector(text_config, v_positive)) AS u;
    IF match = 'all' THEN
        required := websearch_to_tsquery(text_config, coalesce(query, ''));
        IF numnode(required) = 0 THEN
            required := NULL;
        END IF;
        -- (websearch_to_tsquery makes a phrase of a word the parser splits, data_type or a.b/c,
        -- quoted or not: its phrase operators count against the cap too; 999 of them took 2.4 s
        -- at 100,000 rows, stop 28)
        IF length(required::text) - length(replace(required::text, '<', ''))
                > memory_private._text_max_phrases() THEN
            RAISE EXCEPTION 'query makes more than % phrases (quoted, or words the parser '
                'splits such as data_type); search_text takes at most %',
                memory_private._text_max_phrases(), memory_private._text_max_phrases()
                USING ERRCODE = '22023';
        END IF;
    END IF;
END;
$$;

-- The average length of a domain's rows, and how many were counted: every row (limit NULL) or
-- the first `limit`. One statement: the same tsvector and length rule as the ranking.
CREATE OR REPLACE FUNCTION memory_private._text_length_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        SELECT count(*), coalesce(avg(x.dl), 0)
        FROM (SELECT %3$s AS tsv FROM %1$I.%2$I AS t LIMIT $1) AS v
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(u.positions[1] - 1), 0) AS dl
            FROM unnest(ts_filter(setweight(v.tsv, 'A', '{" dl"}'), '{a}')) AS u
        ) AS x
    $q$, d.table_schema, d.table_name, memory_private._domain_tsvector_sql(d))
$$;

-- For the lexemes of a query: N (rows) and avgdl of the domain, and each lexeme's estimated
-- number of rows (frequency * N; NULL: rare, not among the common lexemes), and rare_df, the
-- estimate for a rare one (text_stats.rare_df; NULL: none). N and avgdl come from the refreshed
-- statistics, else an estimate from at most 1,000 rows (N at least the planner's row count) with
-- no common lexemes.
CREATE OR REPLACE FUNCTION memory_private._text_lexeme_stats(
    d memory_private.domains, words text[],
    OUT documents double precision, OUT avg_length double precision,
    OUT est_rows double precision[], OUT rare_df double precision
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_common jsonb;
BEGIN
    -- (common_lexemes is stored uncompressed, migration 0015, out of line: #> '{}' returns it
    -- fetched once, and each lookup below is a binary search; the variable alone held the
    -- TOAST pointer, fetched again for every word: 8 words 54 us a call, 22 us so, stop 33)
    SELECT s.documents, s.avg_length, s.common_lexemes #> '{}', s.rare_df
    INTO documents, avg_length, v_common, rare_df
    FROM memory_private.text_stats AS s WHERE s.domain = d.domain;
    IF FOUND AND documents > 0 THEN
        est_rows := ARRAY(SELECT (v_common ->> w.lexeme)::double precision * documents
                          FROM unnest(words) WITH ORDINALITY AS w (lexeme, n) ORDER BY w.n);
    ELSE
        EXECUTE memory_private._text_length_sql(d) USING 1000 INTO documents, avg_length;
        documents := greatest(documents, (
            SELECT c.reltuples FROM pg_catalog.pg_class AS c
            WHERE c.oid = coalesce(d.source_table,
                format('%I.%I', d.table_schema, d.table_name)::regclass)));
        est_rows := array_fill(NULL::double precision, ARRAY[cardinality(words)]);
    END IF;
END;
$$;

-- One lexeme as a tsquery that matches exactly it (quoted: quotes doubled, backslashes escaped),
-- as the SQL expression over the SQL expression of a lexeme: spliced where a lexeme becomes a
-- tsquery (memory.search_hybrid's statement, _text_pairs, the candidate picks), never called (a
-- call of an SQL function with a SET clause, never inlined, cost 1,000s of instructions per
-- lexeme; callgrind, stop 33; _text_pairs and the picks spliced it at stop 35: search_text 1.2%
-- fewer instructions).
CREATE OR REPLACE FUNCTION memory_private._lexeme_tsquery_sql(lexeme text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($e$('''' || replace(replace(%s, E'\\', E'\\\\'), '''', '''''') || '''')::tsquery$e$,
        lexeme)
$$;

-- A query's words OR'ed into one tsquery (what a row holds when it holds any of them), as an
-- aggregate over the rows of its words (lexeme: the SQL expression of one).
CREATE OR REPLACE FUNCTION memory_private._any_word_tsquery_sql(lexeme text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($e$string_agg((%s)::text, ' | ')::tsquery$e$,
        memory_private._lexeme_tsquery_sql(lexeme))
$$;

-- Which lexemes of a query bring candidates in, as an SQL expression over a row per lexeme
-- (est: its estimated rows, NULL when rare; lexeme; budget): rare ones always; common ones join,
-- rarest first, while their estimated rows fit the budget. Its one place: _text_candidate_pick
-- (search_text, which also takes the rarest word always: _text_rarest_sql) reads it from here.
CREATE OR REPLACE FUNCTION memory_private._text_candidate_rule_sql(
    est text, lexeme text, budget text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($r$(%1$s IS NULL
        OR sum(coalesce(%1$s, 0)) OVER (ORDER BY %1$s NULLS FIRST, %2$s) <= %3$s)$r$,
        est, lexeme, budget)
$$;

-- The rarest lexeme of a query (in _text_candidate_rule_sql's order), as an SQL expression.
CREATE OR REPLACE FUNCTION memory_private._text_rarest_sql(est text, lexeme text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($r$(row_number() OVER (ORDER BY %1$s NULLS FIRST, %2$s) = 1)$r$, est, lexeme)
$$;

-- The lexemes of a query that bring candidates in; the others only add to the candidates'
-- scores with their estimated df (df_estimates: NULL for a candidate, whose df its postings
-- count). The phrases are candidates too. Candidates as tsqueries (_lexeme_tsquery_sql) and as
-- lexemes (NULL for a phrase). _text_candidate_pick, search_text's: _text_candidate_rule_sql, and
-- the rarest word always (a query of common words still ranks by its rarest; its postings are
-- read up to the call's cap on index rows, in the index's order: serving a rarest word above the
-- cap by its best rows alone instead lost every row when those were deleted and capped the
-- results at 100, stop 36's reviews). (The hybrid's text half reads no postings since stop 37:
-- its candidates are the vector rows and the rows waiting for their embedding.)
DO $install$
DECLARE
    v_f record;
BEGIN
    FOR v_f IN
        SELECT * FROM (VALUES
            ('_text_candidate_pick', format('(%s OR %s)',
                memory_private._text_candidate_rule_sql('f.est', 'f.lexeme', 'budget'),
                memory_private._text_rarest_sql('f.est', 'f.lexeme')))
        ) AS x (name, rule)
    LOOP
        EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private.%I(
    words text[], est_rows double precision[], phrases tsquery, budget double precision,
    OUT df_estimates double precision[], OUT candidates tsquery[], OUT candidate_lexemes text[]
)
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $body$
BEGIN
    WITH c AS (
        SELECT f.*, %s AS candidate
        FROM (
            SELECT w.lexeme, w.n, est_rows[w.n] AS est
            FROM unnest(words) WITH ORDINALITY AS w (lexeme, n)
        ) AS f
    )
    SELECT array_agg(CASE WHEN c.candidate THEN NULL ELSE c.est END ORDER BY c.n),
        array_agg(%s ORDER BY c.n)
            FILTER (WHERE c.candidate),
        array_agg(c.lexeme ORDER BY c.n) FILTER (WHERE c.candidate)
    INTO df_estimates, candidates, candidate_lexemes
    FROM c;
    IF phrases IS NOT NULL THEN
        candidates := candidates || phrases;
        candidate_lexemes := candidate_lexemes || NULL::text;
    END IF;
END;
$body$$f$, v_f.name, v_f.rule, memory_private._lexeme_tsquery_sql('c.lexeme'));
    END LOOP;
END;
$install$;

-- For the lexemes of a query: N and avgdl (_text_lexeme_stats), the candidates within the budget
-- and the other lexemes' estimated df (_text_candidate_pick).
CREATE OR REPLACE FUNCTION memory_private._text_candidates(
    d memory_private.domains, words text[], phrases tsquery, budget double precision,
    OUT documents double precision, OUT avg_length double precision,
    OUT df_estimates double precision[], OUT candidates tsquery[], OUT candidate_lexemes text[]
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_est double precision[];
BEGIN
    SELECT s.documents, s.avg_length, s.est_rows INTO documents, avg_length, v_est
    FROM memory_private._text_lexeme_stats(d, words) AS s;
    SELECT p.df_estimates, p.candidates, p.candidate_lexemes
    INTO df_estimates, candidates, candidate_lexemes
    FROM memory_private._text_candidate_pick(words, v_est, phrases, budget) AS p;
END;
$$;

-- How many rows each common lexeme keeps in memory_private.text_top: its best rows by BM25's
-- term weight (tf and the row's length), made by each refresh of the domain's statistics. On the
-- eval's dev queries (BENCHMARKS.md, "Search quality") 100 rows brought search_text's MRR@10 to
-- the level of reading every row of the common words that fit a budget of 700, for a third less
-- CPU; 50 lost 0.02.
CREATE OR REPLACE FUNCTION memory_private._text_top_rows()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 100 $$;

-- The statement that makes a domain's rows of memory_private.text_top: for each of its common
-- lexemes ($3, their jsonb: text_stats.common_lexemes), the _text_top_rows() rows ($4) with the
-- highest BM25 term weight tf / (tf + k1 * (1 - b + b * dl / avgdl)) ($5 k1, $6 b, $2 avgdl),
-- best first (ties by id),
-- with their content sizes (the postings' len); $1 the domain. One pass over the rows' stored
-- tsvectors, where the postings come from (_text_postings_source: a factory table, an adopted
-- domain's text index).
CREATE OR REPLACE FUNCTION memory_private._text_top_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        INSERT INTO memory_private.text_top (domain, lexeme, ids, lens, weights)
        SELECT $1, y.lexeme, array_agg(y.id ORDER BY y.n), array_agg(y.len ORDER BY y.n),
            array_agg(y.weight ORDER BY y.n)
        FROM (
            SELECT x.*, row_number() OVER (PARTITION BY x.lexeme ORDER BY x.weight DESC, x.id) AS n
            FROM (
                SELECT u.lexeme, t.id, %2$s AS len,
                    (u.tf / (u.tf + $5 * (1 - $6 + $6 * u.dl / greatest($2, 1))))::real AS weight
                FROM %1$s AS t
                CROSS JOIN LATERAL (
                    SELECT v.lexeme, cardinality(v.positions) AS tf,
                        coalesce(max(v.positions[1] - 1) FILTER (WHERE v.lexeme = ' dl') OVER (), 0)
                            AS dl
                    FROM unnest(%3$s) AS v
                ) AS u
                -- (each of the row's lexemes looked up in the jsonb of the common ones, a binary
                -- search: setweight with an array of them took 11.8 s at 100,000 rows, a join
                -- with them sorted every lexeme of every row)
                WHERE $3::jsonb ? u.lexeme AND u.lexeme <> ' dl'
                -- (OFFSET 0: the rows sorted below are these four columns, not the row's
                -- content carried along to compute len after the sort)
                OFFSET 0
            ) AS x
        ) AS y
        WHERE y.n <= $4
        GROUP BY y.lexeme
    $q$, r.rel, r.len, memory_private._domain_tsvector_sql(d))
    FROM memory_private._text_postings_source(d, 'true') AS r
$$;

-- How many best rows a query takes in all, shared among its common words (each at most
-- _text_top_rows()): 64 common words took 40 ms at 30,000 rows with 100 each (6,400 rows scored
-- by their estimate), against 16 ms before the best rows.
CREATE OR REPLACE FUNCTION memory_private._text_top_query_rows()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1000 $$;

-- p's rows for the best rows of the query's common words ($1 the lexemes, $2 their estimated df:
-- not NULL for a common word that brings no candidates by its postings), from
-- memory_private.text_top, as of the domain's last refresh: a row written since is found by its
-- other words (the rare ones, and the rarest word of a query of common words: its postings are
-- all read), as before. Their weight is the row's tf and length then (its score is computed
-- again in stage 2, and a row deleted since is skipped there). Not with required words ($5: each
-- would need its row read). One row of p per word, its arrays sliced from text_top's.
CREATE OR REPLACE FUNCTION memory_private._text_top_postings_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
            UNION ALL
            SELECT q.n, b.ids[1:n.per], b.lens[1:n.per], b.weights[1:n.per],
                cardinality(b.ids[1:n.per]), (SELECT sum(l.l) FROM unnest(b.lens[1:n.per]) AS l (l))
            FROM (
                SELECT greatest(%2$s / greatest(count(*), 1), 1)::integer AS per
                FROM unnest($2::double precision[]) AS e (est) WHERE e.est IS NOT NULL
            ) AS n
            CROSS JOIN unnest($1::text[], $2::double precision[]) WITH ORDINALITY AS q (lexeme, est, n)
            JOIN memory_private.text_top AS b ON b.domain = %1$L AND b.lexeme = q.lexeme
            WHERE q.est IS NOT NULL AND $5::tsquery IS NULL$q$, d.domain,
        memory_private._text_top_query_rows())
$$;

-- The BM25 query over one domain, one statement, in two stages:
-- 1. postings: the rows of each candidate lexeme (and phrase) through the GIN index, one index
--    search per lexeme (no tsvector is read), each with the filter flag; their counts are the
--    lexemes' exact document frequencies (corpus-wide, whatever the filter);
--    without a filter, search_text adds each common word's best rows as of the last refresh
--    (memory_private.text_top: the word's tf and the row's length already weighed);
-- 2. the rows that pass the filter, best first by the BM25 score they would have (phrase rows
--    first; a posting of the index as if the row held its lexeme once, with its length estimated
--    from the content's size against the candidates' average; a best row with its weight), the
--    first `rerank` of them that still exist scored exactly: tf from the positions of their
--    tsvector, length from its marker lexeme ' dl' (position - 1).
-- Parameters: $1 the query's lexemes (text[]), $2 their estimated df (NULL: counted in stage 1),
-- $3 the filter's values (the filter language, sql/33_filter_compile.sql), $4 the candidate
-- tsqueries (tsquery[]), $5 required (tsquery or NULL), $6 N, $7 avgdl, $8 k1, $9 b, $10 k,
-- $11 the cap on rows per candidate lexeme (the call's cap divided among them), $12 the
-- lexemes' query frequencies, $13 the candidates' lexemes (text[], NULL for a phrase),
-- $14 rerank; _bm25_sql only: $15 the proximity weight, $16 the query's pairs of words
-- (_text_pairs). predicate: the compiled filter on t ('true' for none).
-- The pieces the BM25 queries share (_bm25_sql, _bm25_rescore_sql), each from
-- its own template and put into theirs through %s; their parameters are _bm25_sql's.

-- p's columns over the postings y (id, ok, len) of one candidate: what stage 2 and the df need of
-- them (_bm25_postings_cte).
CREATE OR REPLACE FUNCTION memory_private._bm25_postings_agg_sql()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'array_agg(y.id) FILTER (WHERE y.ok) AS ids, '
        'array_agg(y.len) FILTER (WHERE y.ok) AS lens, NULL::real[] AS weights, '
        'count(*) AS postings, sum(y.len) AS len_sum'
$$;

-- p (_bm25_postings_cte's columns) from rows, a query of postings with their candidate's lexeme
-- (lexeme, id, ok, len), grouped by lexeme (a phrase's, NULL, with every phrase's).
CREATE OR REPLACE FUNCTION memory_private._bm25_postings_rows_sql(rows text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$p AS MATERIALIZED (
            SELECT array_position($1::text[], y.lexeme) AS n, %2$s
            FROM (%1$s) AS y
            GROUP BY y.lexeme
        )$q$, rows, memory_private._bm25_postings_agg_sql())
$$;

-- p, stage 1: the rows of each candidate lexeme (and phrase) through the GIN index, one index
-- search per lexeme capped at $11 rows (no tsvector is read), with the filter flag and the
-- content's size. With a filter (predicate not 'true'), a lexeme whose postings reached the cap
-- is searched again for the rows that pass the filter (capped alike; the GIN index and the
-- filter's index together): the cap would otherwise cut off every matching row beyond it (a
-- filter matching 67 of 50,000 rows that all hold the word found none). Its df is then its
-- capped count plus those rows, as before a lower bound. best_rows (search_text, no filter):
-- the best rows of the query's common words that bring no candidates themselves are candidates
-- too (_text_top_postings_sql), with their weight.
-- p has one row per candidate (_bm25_postings_agg_sql; with a filter, and on Citus, per
-- candidate with postings read): n, its lexeme's position in $1 (NULL for a phrase); ids and
-- lens, its postings that pass the filter, as arrays; weights, a best row's weights (NULL for
-- the index's postings); postings, how many it read, and len_sum their sizes. (A row per
-- posting, some 400 a query on the eval's docstrings, was formed into p's tuplestore and read
-- back four times: as arrays, search_text 19% fewer instructions, the ranks identical;
-- callgrind, stop 35.) Without a filter each candidate's postings are aggregated as its index
-- search returns them; with one, from the rows of both searches.
CREATE OR REPLACE FUNCTION memory_private._bm25_postings_cte(
    d memory_private.domains, predicate text, best_rows boolean
)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    -- One CTE's template, over each candidate c: %1$s its name, %2$s its columns besides y's,
    -- %3$s y (the candidate's postings, a scan's or their aggregates), %4$s more rows.
    -- One scan's: the candidate's postings, at most $11; %5$s more conditions on them.
    WITH t (cte, scan) AS (
        SELECT $c$
        %1$s AS MATERIALIZED (
            SELECT %2$s, y.*
            FROM unnest($4::tsquery[], $13::text[]) AS c (q, lexeme)
            CROSS JOIN LATERAL (%3$s
            ) AS y%4$s
        )$c$::text, $s$
                SELECT t.id, (%4$s) AND ($5::tsquery IS NULL OR %3$s @@ $5) AS ok,
                    %2$s AS len
                FROM %1$s AS t
                WHERE %3$s @@ c.q%5$s
                LIMIT $11$s$::text
    ),
    s (cte, scan, scan_cut) AS (
        SELECT t.cte,
            format(t.scan, r.rel, r.len, memory_private._domain_tsvector_sql(d), predicate, ''),
            -- (with a filter: a lexeme's second search, only if its first reached the cap)
            format(t.scan, r.rel, r.len, memory_private._domain_tsvector_sql(d), predicate,
                format($c$
                AND (%1$s) AND ($5::tsquery IS NULL OR %2$s @@ $5)
                -- (a one-time test per lexeme: only one its first search cut off)
                AND (SELECT count(*) FROM p_all
                     WHERE p_all.lexeme IS NOT DISTINCT FROM c.lexeme) >= $11$c$,
                predicate, memory_private._domain_tsvector_sql(d)))
        FROM t CROSS JOIN memory_private._text_postings_source(d, predicate) AS r
    )
    SELECT CASE WHEN predicate = 'true'
        THEN format(s.cte, 'p', 'array_position($1::text[], c.lexeme) AS n',
            format($a$
                SELECT %s
                FROM (%s
                ) AS y$a$, memory_private._bm25_postings_agg_sql(), s.scan),
            CASE WHEN best_rows THEN memory_private._text_top_postings_sql(d) ELSE '' END)
        ELSE format(s.cte, 'p_all', 'c.lexeme', s.scan, '') || ','
            || format(s.cte, 'p_cut', 'c.lexeme', s.scan_cut, '') || ',
        '
            || memory_private._bm25_postings_rows_sql('SELECT * FROM p_all UNION SELECT * FROM p_cut')
        END
    FROM s
$$;

-- p for a distributed (Citus) domain: Citus cannot push a LIMIT inside a LATERAL subquery over
-- the candidate lexemes down to the shards, so this joins the lexemes with the table and caps
-- the postings of all of them together ($11 per lexeme on average) instead of per lexeme.
CREATE OR REPLACE FUNCTION memory_private._bm25_dist_postings_cte(
    d memory_private.domains, predicate text
)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        p_rows AS MATERIALIZED (
            SELECT c.lexeme, x.id, x.ok, x.len
            FROM unnest($4::tsquery[], $13::text[]) AS c (q, lexeme)
            JOIN LATERAL (
                SELECT t.id, (%4$s) AND ($5::tsquery IS NULL OR %3$s @@ $5) AS ok,
                    octet_length(t.content) AS len, %3$s AS tsv
                FROM %1$I.%2$I AS t
            ) AS x ON x.tsv @@ c.q
            LIMIT $11 * cardinality($4::tsquery[])
        ),
        %5$s$q$, d.table_schema, d.table_name, memory_private._domain_tsvector_sql(d), predicate,
        memory_private._bm25_postings_rows_sql('SELECT * FROM p_rows'))
$$;

-- A query word's df and idf, as SQL expressions: df its estimate (est, frequency * N) when it
-- has one, else the count of its postings read (postings), at least 1; idf BM25's, times the
-- word's query frequency (qtf), with N at least df: rows written since the statistics were
-- refreshed can hold a word in more rows than the N counted then, and df capped at N gave every
-- such word the same, least weight (ranks inverted against fresh statistics; stop 36's attack
-- review), where N raised to the word's df keeps the rarer word the weightier. Their one place:
-- search_text's w (_bm25_idf_cte) and the hybrid's (_hybrid_sql).
CREATE OR REPLACE FUNCTION memory_private._bm25_df_sql(est text, postings text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT format($e$greatest(coalesce(%s, %s, 0), 1)$e$, est, postings) $$;

CREATE OR REPLACE FUNCTION memory_private._bm25_idf_sql(qtf text, n text, df text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($e$%1$s * ln(1 + (greatest(%2$s, %3$s) - %3$s + 0.5) / (%3$s + 0.5))$e$,
        qtf, n, df)
$$;

-- w: each query lexeme's idf (times its query frequency; df: _bm25_df_sql over its estimate,
-- $2, and the count of its postings in p, p.postings). wa: the same as two arrays (lexemes,
-- idfs) in the query's order ($1's), once per query for every row scored.
CREATE OR REPLACE FUNCTION memory_private._bm25_idf_cte()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        w AS MATERIALIZED (
            SELECT q.lexeme, %1$s AS idf, q.n
            FROM unnest($1::text[], $2::double precision[], $12::double precision[])
                WITH ORDINALITY AS q (lexeme, est, qtf, n)
            LEFT JOIN p ON p.n = q.n
            CROSS JOIN LATERAL (SELECT %2$s AS df) AS x
        ),
        wa AS MATERIALIZED (
            SELECT array_agg(w.lexeme ORDER BY w.n) AS lexemes, array_agg(w.idf ORDER BY w.n) AS idfs
            FROM w
        )$q$, memory_private._bm25_idf_sql('q.qtf', '$6', 'x.df'),
        memory_private._bm25_df_sql('q.est', 'p.postings'))
$$;

-- top: the rows in p's arrays (those that pass the filter), with est, the BM25 score they
-- would have, summed over their postings: a posting of the index as if its row held the lexeme
-- once (length estimated from the content's size against the candidates' average), a best row
-- (_text_top_postings_sql) by its weight.
-- best_only: the row came only as a best row (its content may have changed since the refresh).
-- without_ids (the hybrid's rescoring): the $14 best but those of $15 (its own rows); else
-- (search_text) the $14 best plus as many as p has best rows, of which _bm25_sql scores the $14
-- best that still exist and match.
CREATE OR REPLACE FUNCTION memory_private._bm25_top_cte(without_ids boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        top AS MATERIALIZED (
            SELECT u.id, sum(coalesce(wa.idfs[u.n], 1e6)
                * coalesce(u.weight, 1 / (1 + $8 * (1 - $9 + $9 * u.len / a.len)))) AS est,
                bool_and(u.weight IS NOT NULL) AS best_only
            -- (p's arrays unnested in the select list, each posting's idf by its lexeme's
            -- position in wa, a phrase's NULL: no tuplestore of the unnest, no join)
            FROM (
                SELECT p.n, unnest(p.ids) AS id, unnest(p.lens) AS len,
                    unnest(p.weights) AS weight
                FROM p
            ) AS u
            CROSS JOIN wa
            -- (as a double: a numeric average was cast for every posting, through its text)
            CROSS JOIN (
                SELECT greatest(sum(p.len_sum)::numeric / nullif(sum(p.postings), 0), 1)
                    ::double precision AS len
                FROM p
            ) AS a%1$s
            GROUP BY u.id%2$s
        )$q$, CASE WHEN without_ids THEN '
            WHERE u.id <> ALL ($15::text[])' ELSE '' END,
        CASE WHEN without_ids THEN $l$
            ORDER BY est DESC, u.id
            LIMIT $14$l$ ELSE $l$
            -- (the rows _bm25_sql may pass over are best rows: at most one per element of
            -- p.weights)
            ORDER BY est DESC, u.id
            LIMIT $14 + (SELECT coalesce(sum(cardinality(p.weights)), 0) FROM p)$l$ END)
$$;

-- A row's exact BM25 score as s.score, from its tsvector (tsv: an SQL expression of it): tf from
-- the positions of the query's lexemes (lexemes: an expression of them, a text[]; f.hit, the
-- tsvector with only those; no tsvector read when it is NULL), length f.dl from the marker lexeme
-- ' dl' (position - 1; 0 without one), read as the text of the tsvector filtered to the marker
-- alone (' dl':81A, in a tsvector's documented output format): per row one more pass over
-- the tsvector in C, where the marker's position carried to every lexeme of f.hit through a
-- window cost a window and a subquery set up again for every row (stop 33, callgrind: the
-- hybrid 5.5% fewer instructions on documentation sections; a subquery computing f.hit once
-- for both cost more than the second pass; a second unnest of the tsvector cost 12,000
-- instructions a row, stop 22). idfs: the IDF of each of
-- lexemes, in the same order (an array: each term's IDF by its position, x.j; a join with the
-- lexemes' rows built a hash table for every row scored); k1, b, avgdl: expressions.
-- near (NULL: none, plain BM25): an expression of the tsqueries of the pairs of consecutive
-- lexemes (_text_pairs; lexemes in the query's order); near_weight: the proximity weight. For
-- each pair, w = near_weight * the smaller of its two words' idfs (each times the word's query
-- frequency, as BM25's term); the score gains w for a pair
-- found side by side (either order), w / 4 two positions apart, w / 9 three apart
-- (a term-proximity bonus in the manner of BM25TP, Rasolofo and Savoy 2003: on the eval's dev
-- queries MRR@10 +0.008 on docstrings, +0.004 on documentation sections; BENCHMARKS.md). The
-- pairs are matched on f.hit, a few positions of the query's words, in C (tsquery's phrase
-- operator), not on the whole tsvector. The one place of the per-row score: search_text's
-- stage 2 (_bm25_score_sql) and the hybrid's one statement (_hybrid_sql, without near).
-- gate (NULL: none): an SQL condition on the row; a row that fails it scores 0 without its
-- tsvector unnested (the hybrid's: the row holds a word of the query, one lookup per word in C,
-- where about 40% of its vector rows hold none: the unnest of an empty tsvector, its aggregate
-- and their set-up cost 2.7% of a small domain's hybrid, stop 33).
CREATE OR REPLACE FUNCTION memory_private._bm25_row_score_sql(
    tsv text, lexemes text, idfs text, k1 text, b text, avgdl text, near text, near_weight text,
    gate text DEFAULT NULL
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        CROSS JOIN LATERAL (
            SELECT CASE WHEN %2$s IS NOT NULL
                    THEN ts_filter(setweight(%1$s, 'A', %2$s), '{a}') END AS hit,
                CASE WHEN %2$s IS NOT NULL
                    THEN coalesce(nullif(split_part(split_part(
                        ts_filter(setweight(%1$s, 'A', '{" dl"}'), '{a}')::text, ':', 2), 'A', 1),
                        '')::integer - 1, 0) END AS dl%8$s
        ) AS f
        CROSS JOIN LATERAL (
            SELECT CASE WHEN %9$s THEN (
                SELECT coalesce(sum((%3$s)[x.j] * x.tf * (%4$s + 1)
                    / (x.tf + %4$s * (1 - %5$s + %5$s * f.dl / greatest(%6$s, 1)))%7$s),
                    0)::double precision
                FROM (
                    SELECT cardinality(u.positions) AS tf, array_position(%2$s, u.lexeme) AS j
                    FROM unnest(f.hit) AS u
                ) AS x
            ) ELSE 0 END AS score
        ) AS s$q$, tsv, lexemes, idfs, k1, b, avgdl,
        -- (each word of the row that starts a pair, x.j: its pair's bonus)
        CASE WHEN near IS NOT NULL THEN format($n$
                + coalesce(%3$s * least((%4$s)[x.j], (%4$s)[x.j + 1])
                    * CASE WHEN f.hit @@ (%1$s)[3 * x.j - 2] THEN 1
                        WHEN f.hit @@ (%1$s)[3 * x.j - 1] THEN 0.25
                        WHEN f.hit @@ (%1$s)[3 * x.j] THEN 1.0 / 9 END, 0)$n$,
            near, lexemes, near_weight, idfs) ELSE '' END,
        -- (read more than once with near: OFFSET 0 keeps f a subquery computed once per row;
        -- pulled up, each reference of f.hit computed it again from the whole tsvector: 8.9
        -- million instructions more per query on the eval's docstrings, callgrind)
        CASE WHEN near IS NOT NULL THEN ' OFFSET 0' ELSE '' END,
        coalesce(gate, 'true'))
$$;

-- search_text's proximity bonus: the pairs of a query's consecutive words (words, in the
-- query's order) as tsqueries, three per pair: element 3i - 2, 3i - 1, 3i matches words i and
-- i + 1 one, two, three positions apart, in either order (NULL: fewer than two words). Made
-- once per query, before the statement, which only reads them (_bm25_row_score_sql's near).
DO $install$
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._text_pairs(words text[])
RETURNS tsquery[]
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_prev tsquery;
    v_cur tsquery;
    v_pairs tsquery[];
BEGIN
    -- (a loop of simple expressions: as one SQL statement, planned and run by the SQL function
    -- executor on every call, it cost 1.3 million instructions a query; callgrind)
    FOR i IN 1 .. coalesce(cardinality(words), 0) LOOP
        v_cur := %s;
        IF i > 1 THEN
            v_pairs := v_pairs || ARRAY[
                tsquery_phrase(v_prev, v_cur, 1) || tsquery_phrase(v_cur, v_prev, 1),
                tsquery_phrase(v_prev, v_cur, 2) || tsquery_phrase(v_cur, v_prev, 2),
                tsquery_phrase(v_prev, v_cur, 3) || tsquery_phrase(v_cur, v_prev, 3)];
        END IF;
        v_prev := v_cur;
    END LOOP;
    RETURN v_pairs;
END;
$body$$f$, memory_private._lexeme_tsquery_sql('words[i]'));
END;
$install$;

-- Stage 2 for a row t: its exact BM25 score s.score (_bm25_row_score_sql over its tsvector, the
-- query's words as wa.lexemes and their IDF from w as wa.idfs, in the query's order: the CTE wa
-- of _bm25_idf_cte); with proximity, plus the bonus of the query's consecutive words found near
-- each other in the row ($16, _text_pairs, weighted by $15).
CREATE OR REPLACE FUNCTION memory_private._bm25_score_sql(
    d memory_private.domains, proximity boolean
)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        CROSS JOIN wa%s$q$,
        memory_private._bm25_row_score_sql(memory_private._domain_tsvector_sql(d),
            'wa.lexemes', 'wa.idfs', '$8', '$9', '$7', CASE WHEN proximity THEN '$16' END,
            CASE WHEN proximity THEN '$15' END))
$$;

CREATE OR REPLACE FUNCTION memory_private._bm25_sql(d memory_private.domains, predicate text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        WITH %3$s,
        %4$s,
        %5$s
        SELECT t.id, t.content, t.metadata, s.score AS rank, t.created_at, t.updated_at
        FROM (
            -- the $14 best by est that still exist and hold a word of the query (a best row may
            -- have been deleted or rewritten since the refresh), looked up by their primary key
            -- in that order until $14 are found (the sorted subquery stays the outer side of the
            -- nested loop, whose order the ORDER BY keeps without a sort; under another join it
            -- is sorted, still right)
            SELECT t.*
            FROM (SELECT top.id, top.est, top.best_only FROM top ORDER BY top.est DESC, top.id)
                AS c
            CROSS JOIN LATERAL (
                SELECT t.* FROM %1$I.%2$I AS t
                WHERE t.id = c.id AND (NOT c.best_only OR %7$s @@ (
                    SELECT %8$s FROM unnest($1::text[]) AS l (l)))
            ) AS t
            ORDER BY c.est DESC, c.id
            LIMIT $14
        ) AS t
        %6$s
        ORDER BY s.score DESC, t.updated_at DESC, t.id
        LIMIT $10
    $q$, d.table_schema, d.table_name,
        CASE WHEN d.distributed THEN memory_private._bm25_dist_postings_cte(d, predicate)
            ELSE memory_private._bm25_postings_cte(d, predicate, true) END,
        memory_private._bm25_idf_cte(), memory_private._bm25_top_cte(false),
        memory_private._bm25_score_sql(d, true), memory_private._domain_tsvector_sql(d),
        memory_private._any_word_tsquery_sql('l.l'))
$$;

-- The text half of memory.search_hybrid when it has vector candidates: BM25 scores of the rows
-- $15 names (the vector rows and the rows waiting for their embedding), read from their tsvectors
-- as in _bm25_sql's stage 2, plus at most $14 rows from the postings of the candidate lexemes $4
-- (the hybrid passes none since stop 37: $14 0, $4 empty).
-- Each lexeme's df is its estimate (frequency * N) when it is a common one, else the count of
-- its postings. Parameters as _bm25_sql's ($10 unused; $2: the estimates of every common
-- lexeme, not only of the non-candidates), plus $15. Returns every scored row that passes the
-- filter (predicate, on $15's rows too) and satisfies required ($5), with its score (0 when it
-- holds none of the words).
CREATE OR REPLACE FUNCTION memory_private._bm25_rescore_sql(d memory_private.domains, predicate text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($q$
        WITH %4$s,
        %5$s,
        %6$s,
        c AS (
            SELECT top.id FROM top
            UNION ALL
            SELECT v.id FROM unnest($15::text[]) AS v (id)
        )
        SELECT t.id, t.content, t.metadata, s.score AS rank, t.created_at, t.updated_at
        FROM c
        -- one primary-key lookup per row (LIMIT 1 keeps it a nested loop); the filter on each:
        -- the rows waiting for their embedding come from the queue, not from a filtered search
        -- (without it, search_hybrid's filter let them all through, stop 37's attack review)
        CROSS JOIN LATERAL (
            SELECT t.* FROM %1$I.%2$I AS t WHERE t.id = c.id AND (%8$s) LIMIT 1
        ) AS t
        %7$s
        WHERE $5::tsquery IS NULL OR %3$s @@ $5
    $q$, d.table_schema, d.table_name, memory_private._domain_tsvector_sql(d),
        memory_private._bm25_postings_cte(d, predicate, false), memory_private._bm25_idf_cte(),
        memory_private._bm25_top_cte(true), memory_private._bm25_score_sql(d, false), predicate)
$$;

-- The text half of memory.search_hybrid (the arguments checked by it): with the vector search's
-- candidates (ids, not empty) on a domain that is not distributed, the BM25 scores of those rows
-- and of the rows waiting for their embedding (the domain's jobs in the embedding queue, at most
-- _hybrid_waiting_rows() in id order; _bm25_rescore_sql with no candidate words: the given rows
-- alone, a word outside the common lexemes at df text_stats.rare_df, as the one statement of
-- sql/37_search_hybrid.sql does); otherwise (no embedding, no vector hit, or Citus)
-- memory.search_text's ranking of max(2k, 20) rows.
CREATE OR REPLACE FUNCTION memory_private._search_text_hybrid(
    d memory_private.domains, query text, ids text[], k integer, filter jsonb, match text
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
    v_s record;
    v_k record := memory_private._bm25_params();
    v_f record;
    v_est double precision[];
    v_ids text[];
BEGIN
    IF cardinality(ids) IS NULL OR cardinality(ids) = 0 OR d.distributed THEN
        RETURN QUERY SELECT * FROM memory_private._search_text_bm25(d, query,
            least(greatest(k * 2, 20), 1000), filter, match);
        RETURN;
    END IF;
    SELECT * INTO v_p FROM memory_private._parse_text_query(d.text_config, query, match);
    IF cardinality(v_p.words) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(v_p.words) > memory_private._text_max_words() THEN
        RAISE EXCEPTION 'query has % distinct words; search_text takes at most %',
            cardinality(v_p.words), memory_private._text_max_words()
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_s FROM memory_private._text_lexeme_stats(d, v_p.words);
    v_est := ARRAY(SELECT coalesce(e.est, v_s.rare_df)
                   FROM unnest(v_s.est_rows) WITH ORDINALITY AS e (est, n) ORDER BY e.n);
    -- the rows waiting for their embedding (the vector search cannot find them)
    v_ids := ids || ARRAY(
        SELECT q.row_id FROM memory_private.embedding_queue AS q
        WHERE q.domain = d.domain AND q.row_id <> ALL (ids)
        ORDER BY q.row_id
        LIMIT memory_private._hybrid_waiting_rows());
    v_f := memory_private._filter_for(d, filter);
    IF v_f.predicate IS NULL THEN
        RETURN QUERY SELECT * FROM memory_private._search_text_hybrid_static(v_p.words,
            v_est, NULL, ARRAY[]::tsquery[], v_p.required, v_s.documents,
            v_s.avg_length, v_k.k1, v_k.b, k, 0::bigint, v_p.qtf,
            ARRAY[]::text[], 0, v_ids, d);
    ELSE
        RETURN QUERY EXECUTE memory_private._bm25_rescore_sql(d, coalesce(v_f.predicate, 'true'))
        USING v_p.words, v_est, v_f.params, ARRAY[]::tsquery[], v_p.required,
            v_s.documents, v_s.avg_length, v_k.k1, v_k.b, k, 0::bigint, v_p.qtf,
            ARRAY[]::text[], 0, v_ids;
    END IF;
END;
$$;

-- Ranked full-text search of one domain (memory.search_text does the argument checks).
-- Unfiltered searches of pgmemo's own tables run the plan cached in
-- memory_private._search_text_static; the others run _bm25_sql dynamically.
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
    v_c record;
    v_k record;
    -- the filter language (sql/33_filter_compile.sql): its values are $3 here
    v_f record := memory_private._filter_for(d, filter);
    v_cap bigint;
    v_near tsquery[];
BEGIN
    SELECT * INTO v_p FROM memory_private._parse_text_query(d.text_config, query, match);
    IF cardinality(v_p.words) = 0 THEN
        RETURN;  -- empty, stop words or exclusions only: nothing to rank by
    END IF;
    IF cardinality(v_p.words) > memory_private._text_max_words() THEN
        RAISE EXCEPTION 'query has % distinct words; search_text takes at most %',
            cardinality(v_p.words), memory_private._text_max_words()
            USING ERRCODE = '22023';
    END IF;
    -- (the common words' best rows, memory_private.text_top, only without a filter or a
    -- required part, and not distributed: their default budget differs, _bm25_params)
    v_k := memory_private._bm25_params(
        v_f.predicate IS NULL AND v_p.required IS NULL AND NOT d.distributed);
    SELECT * INTO v_c
    FROM memory_private._text_candidates(d, v_p.words, v_p.phrases, v_k.budget);
    -- the call's cap on index rows, shared among its candidate lexemes (at most 64 of them)
    v_cap := greatest(memory_private._text_candidate_cap()
        / greatest(cardinality(v_c.candidates), 1), 1);
    IF v_k.proximity > 0 AND cardinality(v_p.words) > 1 THEN
        v_near := memory_private._text_pairs(v_p.words);
    END IF;
    IF v_f.predicate IS NULL AND NOT d.distributed THEN
        RETURN QUERY SELECT * FROM memory_private._search_text_static(v_p.words,
            v_c.df_estimates, NULL, v_c.candidates, v_p.required, v_c.documents,
            v_c.avg_length, v_k.k1, v_k.b, k, v_cap, v_p.qtf,
            v_c.candidate_lexemes, greatest(v_k.rerank, k), v_k.proximity, v_near, d);
    ELSE
        RETURN QUERY EXECUTE memory_private._bm25_sql(d, coalesce(v_f.predicate, 'true'))
        USING v_p.words, v_c.df_estimates, v_f.params, v_c.candidates, v_p.required,
            v_c.documents, v_c.avg_length, v_k.k1, v_k.b, k, v_cap, v_p.qtf,
            v_c.candidate_lexemes, greatest(v_k.rerank, k), v_k.proximity, v_near;
    END IF;
END;
$$;

-- Unfiltered search_text without re-planning: memory_private._search_text_static holds, for
-- every domain not distributed (an adopted one's postings from its text index: the branch is
-- made again when that index comes or gains its content sizes), _bm25_sql's query as static SQL in
-- one generated PL/pgSQL function, so PostgreSQL plans it once per session (a dynamic EXECUTE is
-- parsed and planned on every call). Its parameters are in the order of _bm25_sql's ($1..$16,
-- which PL/pgSQL reads as the function's own), the domain row last. A branch is chosen by
-- _text_static_key (what the query depends on), so a stale branch is never used; a domain
-- without one runs the same query dynamically. Regenerated with memory.search's static branches
-- (memory_private._search_static_refresh: create_domain, drop_domain, adoption, every migrate).
CREATE OR REPLACE FUNCTION memory_private._text_static_key(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT concat_ws('/', d.domain, d.table_schema, d.table_name, d.adopted, d.distributed)
$$;

CREATE OR REPLACE FUNCTION memory_private._search_text_static_refresh()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_keys text[];
    v_branches text[];
    v_hybrid_branches text[];
BEGIN
    -- one regeneration at a time, each from the committed registry
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:search_text_static'));
    -- (in the order of the keys under COLLATE "C": memory_private._dispatch_sql halves them)
    SELECT array_agg(y.key ORDER BY y.key COLLATE "C"),
        array_agg(format($b$
        WHEN %1$L THEN
            RETURN QUERY %2$s;
$b$, y.key, memory_private._bm25_sql(y.x, 'true')) ORDER BY y.key COLLATE "C"),
        array_agg(format($b$
        WHEN %1$L THEN
            RETURN QUERY %2$s;
$b$, y.key, memory_private._bm25_rescore_sql(y.x, 'true')) ORDER BY y.key COLLATE "C")
    INTO v_keys, v_branches, v_hybrid_branches
    FROM (
        SELECT x, memory_private._text_static_key(x) AS key
        FROM memory_private._static_domains() AS x
    ) AS y;
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._search_text_static(
    text[], double precision[], jsonb, tsquery[], tsquery, double precision, double precision,
    double precision, double precision, integer, bigint, double precision[], text[], integer,
    double precision, tsquery[], memory_private.domains
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
-- one generic plan per session, reused (with LIMIT and the tsquery parameters the planner would
-- otherwise re-plan on every call)
SET plan_cache_mode = force_generic_plan
AS $body$
#variable_conflict use_column
DECLARE
    v_key text := memory_private._text_static_key($17);
BEGIN
    %1$s
END;
$body$
$f$, memory_private._dispatch_sql('v_key', v_keys, v_branches, $s$RETURN QUERY EXECUTE memory_private._bm25_sql($17, 'true')
        USING $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16;$s$));
    -- the same for the hybrid's text half (_bm25_rescore_sql: one more parameter, the ids)
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._search_text_hybrid_static(
    text[], double precision[], jsonb, tsquery[], tsquery, double precision, double precision,
    double precision, double precision, integer, bigint, double precision[], text[], integer,
    text[], memory_private.domains
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $body$
#variable_conflict use_column
DECLARE
    v_key text := memory_private._text_static_key($16);
BEGIN
    %1$s
END;
$body$
$f$, memory_private._dispatch_sql('v_key', v_keys, v_hybrid_branches, $s$RETURN QUERY EXECUTE memory_private._bm25_rescore_sql($16, 'true')
        USING $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15;$s$));
END;
$$;

-- The function before its first generation: every domain runs the dynamic query.
CREATE OR REPLACE FUNCTION memory_private._search_text_static(
    text[], double precision[], jsonb, tsquery[], tsquery, double precision, double precision,
    double precision, double precision, integer, bigint, double precision[], text[], integer,
    double precision, tsquery[], memory_private.domains
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN QUERY EXECUTE memory_private._bm25_sql($17, 'true')
    USING $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16;
END;
$$;

-- The function before its first generation: every domain runs the dynamic query.
CREATE OR REPLACE FUNCTION memory_private._search_text_hybrid_static(
    text[], double precision[], jsonb, tsquery[], tsquery, double precision, double precision,
    double precision, double precision, integer, bigint, double precision[], text[], integer,
    text[], memory_private.domains
)
RETURNS TABLE (
    id text, content text, metadata jsonb, rank double precision,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN QUERY EXECUTE memory_private._bm25_rescore_sql($16, 'true')
    USING $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15;
END;
$$;

-- The planner's most common elements of a domain's tsvector as {lexeme: share of rows}: from
-- ANALYZE of the stored column (a factory table's, or an adopted domain's text index's; {} before
-- any).
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
        WHERE s.schemaname = d.table_schema AND s.attname = 'content_tsv'
          AND s.tablename = CASE WHEN d.adopted THEN memory_private._text_table_name(d.domain)
              ELSE d.table_name END
          -- the array ends with the minimum, maximum and null frequencies
          AND e.n <= cardinality(s.most_common_elems::text::text[])
    ), '{}'::jsonb)
$$;

-- Recompute one domain's N and avgdl, and ANALYZE its stored tsvector column (a factory table's,
-- or an adopted domain's text index: pgmemo's own tables, which run no code of another role) so
-- the common lexemes' frequencies are current; then each common lexeme's best rows
-- (memory_private.text_top, _text_top_sql: one more pass over the stored tsvectors, under the
-- session's k1 and b).
CREATE OR REPLACE FUNCTION memory_private._refresh_text_stats(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_docs bigint;
    v_avg double precision;
    v_common jsonb;
    v_k record := memory_private._bm25_params();
    v_text regclass := memory_private._text_table(d);
BEGIN
    -- one refresh of a domain at a time: two would both replace its text_top rows (the second
    -- waits and then makes them again from what it sees)
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo:text_stats:' || d.domain));
    IF NOT d.adopted THEN
        EXECUTE format($sql$ANALYZE %I.%I (content_tsv)$sql$, d.table_schema, d.table_name);
    ELSIF v_text IS NOT NULL THEN
        -- (never the adopted table itself: ANALYZE would run its owner's index expressions with
        -- pgmemo's rights)
        EXECUTE format($sql$ANALYZE %s (content_tsv)$sql$, v_text);
    END IF;
    -- Merge the pending lists of the table's GIN indexes (pgmemo's: a factory table's, or an
    -- adopted domain's text index beside its table): rows written since wait there unsorted, and
    -- every search of the index reads all of it, search_text once per query word (6 pending
    -- pages left by the eval's load cost 5% of search_text's instructions; the list grows to
    -- memory_private._gin_pending_list_kb() before an insert merges it). Bounded by that size.
    PERFORM pg_catalog.gin_clean_pending_list(i.indexrelid)
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_am AS a ON a.oid = c.relam
    WHERE a.amname = 'gin' AND NOT d.distributed
      AND i.indrelid = CASE WHEN d.adopted THEN v_text
          ELSE to_regclass(format('%I.%I', d.table_schema, d.table_name)) END;
    EXECUTE memory_private._text_length_sql(d) USING NULL::bigint
    INTO v_docs, v_avg;
    v_common := memory_private._common_lexemes(d);
    -- each common lexeme's best rows (search_text's candidates for its common words)
    DELETE FROM memory_private.text_top AS b WHERE b.domain = d.domain;
    IF NOT d.distributed AND v_common <> '{}' THEN
        EXECUTE memory_private._text_top_sql(d)
        USING d.domain, v_avg, v_common, memory_private._text_top_rows(), v_k.k1, v_k.b;
    END IF;
    -- rare_df: the rows of a lexeme outside the common ones, estimated as PostgreSQL's planner
    -- does (half the least frequency among them; ts_selectivity.c), times N
    INSERT INTO memory_private.text_stats AS s
        (domain, documents, avg_length, common_lexemes, writes_at_refresh, refreshed_at, rare_df)
    VALUES (d.domain, v_docs, v_avg, v_common, memory_private._text_writes(d), now(),
        (SELECT min(e.value::text::double precision) / 2 * v_docs
         FROM jsonb_each(v_common) AS e WHERE e.key <> ' dl'))
    ON CONFLICT (domain) DO UPDATE
        SET documents = excluded.documents, avg_length = excluded.avg_length,
            common_lexemes = excluded.common_lexemes,
            writes_at_refresh = excluded.writes_at_refresh, refreshed_at = excluded.refreshed_at,
            rare_df = excluded.rare_df;
END;
$$;

-- The writes of a domain's text so far (rows inserted, updated or deleted), per the statistics
-- collector (committed work, published within a second or so): of an adopted domain's text index
-- (memory_data.<domain>_text), which its table's triggers and the text fill write exactly when a
-- row's text comes, changes or goes, whatever the table's layout (a partitioned table's own
-- counters stay at 0: its partitions hold them); else of the domain's table with its partitions.
-- A factory table's updates include the queue's embedding writes, which change no text: an
-- embedding backfill refreshes the statistics about once per 10% of the domain embedded (each
-- refresh an ANALYZE and two passes over the tsvectors, run_maintenance's work), where not
-- counting updates kept the statistics of rewritten content forever (stop 36's attack review);
-- counting content changes alone would take a write per statement to a shared counter.
CREATE OR REPLACE FUNCTION memory_private._text_writes(d memory_private.domains)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((
        SELECT sum(st.n_tup_ins + st.n_tup_upd + st.n_tup_del)
        FROM (SELECT coalesce(memory_private._text_table(d), d.source_table::regclass,
                  to_regclass(format('%I.%I', d.table_schema, d.table_name))) AS rel) AS r
        -- (pg_partition_tree lists nothing for a table outside any partition tree)
        CROSS JOIN LATERAL (
            SELECT r.rel AS relid
            UNION
            SELECT t.relid FROM pg_catalog.pg_partition_tree(r.rel) AS t
        ) AS x
        JOIN pg_catalog.pg_stat_all_tables AS st ON st.relid = x.relid
    ), 0)::bigint
$$;

-- Whether a domain's text statistics are missing, or more rows than 10% of those counted (+50)
-- were written (_text_writes) since they were refreshed. Or they have common lexemes but no
-- best rows (memory_private.text_top; not made for a distributed domain): refreshed before
-- migration 0032, when search_text's defaults count on them.
CREATE OR REPLACE FUNCTION memory_private._text_stats_stale(d memory_private.domains)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((
        SELECT abs(memory_private._text_writes(d) - s.writes_at_refresh)
            > 0.1 * s.documents + 50
            OR (NOT d.distributed AND s.common_lexemes - ' dl' <> '{}'::jsonb
                AND NOT EXISTS (SELECT FROM memory_private.text_top AS b
                                WHERE b.domain = d.domain))
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
        -- (_domain_for: an adopted table is read with pgmemo's rights, so it must be inert:
        -- a row-level security policy of its owner would run as pgmemo's owner)
        PERFORM memory_private._refresh_text_stats(memory_private._domain_for(domain, 'read'));
        RETURN 1;
    END IF;
    FOR v_d IN
        SELECT x.* FROM memory_private.domains AS x
        WHERE NOT memory_private._is_shadow(x)
          AND to_regclass(format('%I.%I', x.table_schema, x.table_name)) IS NOT NULL
        ORDER BY x.domain
    LOOP
        CONTINUE WHEN NOT memory_private._text_stats_stale(v_d);
        -- an adopted table pgmemo may not read (diagnose reports it) is skipped
        CONTINUE WHEN NOT memory_private._readable(v_d);
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
'and an ANALYZE of the stored tsvector so common words'' frequencies are current), keep each '
'common word''s 100 best rows by its BM25 weight (search_text''s candidates for it; one pass over '
'the stored tsvectors), and merge '
'the pending lists of the domain''s GIN indexes (rows written since, which every search of the '
'index reads in full). One refresh of a domain at a time (a second waits). With a '
'domain: that one, always. Without: every domain whose statistics are missing or off by more '
'than 10% (memory.run_maintenance calls this). Returns the number of domains refreshed.';
