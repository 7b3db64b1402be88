-- Private helpers shared by the public API: domain lookup, argument checks and the SQL text
-- of the vector search (so memory.search and memory.explain_search run exactly the same query).
-- Every function here is created with the search_path the installer sets
-- (pg_catalog, the vector extension's schema, pg_temp) via SET search_path FROM CURRENT.

CREATE OR REPLACE FUNCTION memory_private._domain(domain text)
RETURNS memory_private.domains
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_row memory_private.domains;
BEGIN
    IF domain IS NULL THEN
        RAISE EXCEPTION 'domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT d.* INTO v_row FROM memory_private.domains AS d WHERE d.domain = _domain.domain;
    IF NOT FOUND THEN
        PERFORM memory_private._check_domain_name(domain);  -- 'my-docs': say what is valid
        RAISE EXCEPTION 'unknown domain "%"', domain
            USING ERRCODE = '42704',
                  HINT = 'Create it with memory.create_domain(''' || left(domain, 40)
                      || '''); list domains with SELECT * FROM memory.domains.';
    END IF;
    RETURN v_row;
END;
$$;

-- The locks of pgmemo's DDL, taken first (before any other lock of the call):
-- 1. The migrators' advisory lock (python/pgmemo/migrate.py, LOCK_KEY, taken by every migrate
--    and install.sql before anything), shared, by every operation that makes, changes or drops
--    a domain's objects or the functions generated from the registry (memory.search's branches,
--    the domains' trigger functions): create_domain, drop_domain, adopt_table,
--    begin/finish/cancel_reembed, bulk_load_begin/finish, sync_text_index, distribute_domain;
--    run_maintenance tries it (busy while a migrate runs). A migrate replaces every function of
--    sql/ and every domain's generated ones, so it waits for those operations and they wait for
--    it. Without it, a create_domain that regenerated memory.search while a migrate had replaced
--    it (each waiting on the other's pg_proc row or search lock) deadlocked, and one that
--    committed first made the migrate fail on "tuple concurrently updated" (stop 37's review).
--    Polled for (tried every 50 ms), not waited on: the caller's transaction may already hold
--    what the migrate will wait for (a read of memory.domains, which it replaces), and a wait
--    would close a cycle; polled, the migrate's lock_timeout ends its attempt, the caller goes
--    on, and the migrate tries again (python/pgmemo/migrate.py). A migrate queued for it makes
--    the try fail too: no new caller passes it. The polling ends with the caller's lock_timeout
--    (55P03, naming the holders), as a wait would.
-- 2. With a domain: that domain's, by the operations that take its table ACCESS EXCLUSIVE or
--    make it (create_domain, adopt_table, drop_domain, begin/finish/cancel_reembed,
--    distribute_domain): a second one waits, then reads the registry again. Without it,
--    drop_domain during a begin_reembed failed on the shadow's view (or left the shadow domain
--    behind), create_domain during a drop_domain answered "exists" for a domain about to go,
--    finish_reembed and cancel_reembed deadlocked. Not by those a transaction may well run after
--    writing the domain (sync_text_index, bulk_load_begin/finish, grant_domain): one holding it
--    while it waits for the table that transaction holds would deadlock with it (stop 26's
--    write-then-sync, python/tests/test_adopted_text.py).
-- Writers, workers and searches take neither: no DDL waits for them here, nor they for it.
-- wait false: only try 1 (no domain), and say whether it was granted (run_maintenance skips its
-- run rather than queue behind a migrate that waits for a long DDL).
CREATE OR REPLACE FUNCTION memory_private._lock_ddl(
    domain text DEFAULT NULL, wait boolean DEFAULT TRUE
)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_until timestamptz;
    v_timeout bigint;
    v_holders text;
BEGIN
    IF NOT wait THEN
        RETURN pg_catalog.pg_try_advisory_xact_lock_shared(7386244001);  -- migrate.py's LOCK_KEY
    END IF;
    WHILE NOT pg_catalog.pg_try_advisory_xact_lock_shared(7386244001) LOOP
        -- Within the caller's lock_timeout, as a wait for the lock would be: the key is an
        -- advisory lock any role may take, and one held in a session of its own (or a migrate
        -- stuck behind a long DDL) made every caller poll forever, deaf to lock_timeout and seen
        -- waiting for no lock (stop 37's attack review). The holders named in the error.
        IF v_until IS NULL THEN
            SELECT s.setting::bigint INTO v_timeout
            FROM pg_catalog.pg_settings AS s WHERE s.name = 'lock_timeout';
            v_until := CASE WHEN v_timeout > 0
                THEN pg_catalog.clock_timestamp() + v_timeout * interval '1 millisecond'
                ELSE 'infinity' END;
        ELSIF pg_catalog.clock_timestamp() >= v_until THEN
            SELECT string_agg(DISTINCT l.pid::text, ', ') INTO v_holders
            FROM pg_catalog.pg_locks AS l
            WHERE l.locktype = 'advisory' AND l.database = (
                    SELECT b.oid FROM pg_catalog.pg_database AS b
                    WHERE b.datname = pg_catalog.current_database())
              AND l.classid = (7386244001 >> 32)::oid
              AND l.objid = (7386244001 & 4294967295)::oid AND l.objsubid = 1
              AND l.mode = 'ExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid();
            RAISE EXCEPTION 'pgmemo: no DDL lock within lock_timeout: a migrate holds or waits for '
                'it (advisory lock 7386244001)'
                USING ERRCODE = '55P03',
                      DETAIL = format('Held or awaited exclusively by process(es) %s.',
                          coalesce(v_holders, 'unknown')),
                      HINT = 'Retry once the migrate ends; pg_stat_activity shows those processes.';
        END IF;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
    IF domain IS NOT NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmemo.domain'),
            pg_catalog.hashtext(domain));
    END IF;
    RETURN true;
END;
$$;

-- A valid domain name close to the one given ('My-Docs' -> 'my_docs', '2024 notes' ->
-- 'd_2024_notes'): lowercase, every run of other characters one underscore, a letter first,
-- at most 40 characters. For the hint of the invalid-name error.
CREATE OR REPLACE FUNCTION memory_private._suggest_domain_name(domain text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT rtrim(left(CASE WHEN s ~ '^[a-z]' THEN s ELSE 'd_' || s END, 40), '_')
    FROM (SELECT coalesce(nullif(btrim(regexp_replace(lower(coalesce(domain, '')),
        '[^a-z0-9_]+', '_', 'g'), '_'), ''), 'memories') AS s) AS n
$$;

CREATE OR REPLACE FUNCTION memory_private._check_domain_name(domain text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF domain IS NULL OR domain !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'invalid domain name %', coalesce(quote_literal(domain), 'NULL')
            USING ERRCODE = '42602',
                  DETAIL = 'A domain name is 1 to 40 characters: a lowercase letter, then '
                      || 'lowercase letters, digits or underscores (^[a-z][a-z0-9_]{0,39}$).',
                  HINT = format('Try %L.', memory_private._suggest_domain_name(domain));
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._check_distance(distance text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF distance IS NULL OR distance NOT IN ('cosine', 'l2', 'inner_product') THEN
        RAISE EXCEPTION 'unknown distance %', coalesce(quote_literal(distance), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use one of: cosine, l2, inner_product.';
    END IF;
END;
$$;

-- pgvector's schema, quoted for SQL text. Functions run with search_path = pg_catalog, pg_temp
-- (sql/90_grants.sql): pgvector's schema is never on it, since another role may be able to
-- create better-matching overloads there; its types, functions and operators are reached by
-- qualified name (OPERATOR(<schema>.<=>), <schema>.vector).
CREATE OR REPLACE FUNCTION memory_private._vector_schema()
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT pg_catalog.quote_ident(n.nspname)
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector'
$$;

-- 'vector' or 'halfvec' when type_oid is that pgvector type, else NULL.
CREATE OR REPLACE FUNCTION memory_private._vector_type(type_oid oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT t.typname::text
    FROM pg_catalog.pg_type AS t
    JOIN pg_catalog.pg_extension AS e ON e.extnamespace = t.typnamespace AND e.extname = 'vector'
    WHERE t.oid = type_oid AND t.typname IN ('vector', 'halfvec')
$$;

-- Operator, opclass and similarity expression for each distance (the operator qualified).
CREATE OR REPLACE FUNCTION memory_private._distance_operator(distance text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT pg_catalog.format('OPERATOR(%s.%s)', memory_private._vector_schema(), CASE distance
        WHEN 'cosine' THEN '<=>'
        WHEN 'l2' THEN '<->'
        WHEN 'inner_product' THEN '<#>'
    END)
$$;

-- The distance from a domain's stored embedding (the SQL before it) to a query vector (query_sql,
-- an expression of type vector), as the SQL that follows the embedding: pgvector's operator,
-- schema-qualified, with its right operand of the column's type. A halfvec domain's query is
-- cast to halfvec: pgvector has no halfvec-vector operator, and PostgreSQL would pick the best
-- match among the operators of the extension's schema, where a role allowed to create objects
-- could plant an exact match that wins over pgvector's own (run with the owner's rights).
CREATE OR REPLACE FUNCTION memory_private._distance_to_sql(d memory_private.domains, query_sql text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT memory_private._distance_operator(d.distance) || ' ' || CASE
        WHEN d.embedding_type = 'halfvec'
        THEN format('(%s)::%s.halfvec', query_sql, memory_private._vector_schema())
        ELSE query_sql END
$$;

CREATE OR REPLACE FUNCTION memory_private._distance_opclass(distance text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE distance
        WHEN 'cosine' THEN 'vector_cosine_ops'
        WHEN 'l2' THEN 'vector_l2_ops'
        WHEN 'inner_product' THEN 'vector_ip_ops'
    END
$$;

-- A valid embedding type and a dimension its HNSW index supports.
CREATE OR REPLACE FUNCTION memory_private._check_dimension(embedding_type text, dimension integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_max integer := CASE embedding_type WHEN 'halfvec' THEN 4000 ELSE 2000 END;
BEGIN
    IF embedding_type IS NULL OR embedding_type NOT IN ('vector', 'halfvec') THEN
        RAISE EXCEPTION 'unknown embedding_type %', coalesce(quote_literal(embedding_type), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Use vector (32-bit floats) or halfvec (16-bit: half the index size).';
    END IF;
    IF dimension IS NULL OR dimension < 1 OR dimension > v_max THEN
        RAISE EXCEPTION 'dimension must be between 1 and % (the HNSW limit for %), got %',
            v_max, embedding_type, coalesce(dimension::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
END;
$$;

-- The operator class of a domain's HNSW index: its distance, on its embedding type
-- (vector_cosine_ops, or halfvec_cosine_ops for a halfvec domain).
CREATE OR REPLACE FUNCTION memory_private._opclass(d memory_private.domains)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN d.embedding_type = 'halfvec'
        THEN replace(memory_private._distance_opclass(d.distance), 'vector_', 'halfvec_')
        ELSE memory_private._distance_opclass(d.distance)
    END
$$;

-- The column type of a domain's embeddings, e.g. public.vector(768) or extensions.halfvec(1536).
CREATE OR REPLACE FUNCTION memory_private._embedding_column_type(
    embedding_type text, dimension integer
)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('%s.%s(%s)', memory_private._vector_schema(), embedding_type, dimension)
$$;

-- A check function made from its statements (a *_sql template's, over its own arguments): the
-- one shape of _check_embedding, _check_k and _check_text_query, each also spliced where a call
-- would cost too much. signature: the name and arguments after "memory_private.", pgmemo's own
-- constant text.
CREATE OR REPLACE FUNCTION memory_private._check_function_sql(signature text, statements text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT format($f$
CREATE OR REPLACE FUNCTION memory_private.%s
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $body$
BEGIN
    %s
END;
$body$ $f$, signature, statements)
$fn$;

-- That embedding has the domain's dimension (22000 otherwise; what names it in the message).
-- Every search pays for this check, so it takes the two values it needs, not the registry row
-- (a row passed to a PL/pgSQL function is built into a tuple for the call: about 10,000
-- instructions, callgrind). A vector's datum is 8 bytes of header and dimensions and 4 bytes
-- per element, never compressed (pgvector's types have STORAGE external), so its size answers
-- without copying it into an array (28,000 instructions at 384 dimensions); the count of the
-- elements decides when the size differs.
-- The check's one place is the PL/pgSQL statement of _check_embedding_sql, over the expressions
-- given: _check_embedding is made from it, and memory.search splices it into its hot path (the
-- call of a PL/pgSQL helper with a SET clause cost about 17,000 instructions per search,
-- whatever its body: the GUC state saved and restored, its expressions set up again in each
-- transaction; callgrind).
CREATE OR REPLACE FUNCTION memory_private._check_embedding_sql(
    dimension text, domain text, embedding text, what text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($s$IF %3$s IS NOT NULL AND pg_catalog.pg_column_size(%3$s) <> 8 + 4 * %1$s
        AND pg_catalog.cardinality(%3$s::real[]) <> %1$s THEN
        RAISE EXCEPTION '%% has %% dimensions, domain "%%" expects %%',
            %4$s, pg_catalog.cardinality(%3$s::real[]), %2$s, %1$s
            USING ERRCODE = '22000';
    END IF;$s$, dimension, domain, embedding, what)
$$;

DO $install$
BEGIN
    EXECUTE memory_private._check_function_sql(
        '_check_embedding(dimension integer, domain text, embedding vector, '
            'what text DEFAULT ''embedding'')',
        memory_private._check_embedding_sql('dimension', 'domain', 'embedding', 'what'));
END;
$install$;

-- The pending list of pgmemo's GIN indexes (full-text, metadata), in kB: 1024 (PostgreSQL's
-- default is 4 MB). With fastupdate, new entries wait in an unsorted list that every search of
-- the index reads in full, and memory.search_text searches the index once per candidate word
-- (at most 64): after a few thousand writes, a 32-word query read the 4 MB list 32 times (21 ms
-- per call on 5,000 rows, against 4.3 ms with the list merged). The smaller the list, the more
-- often writers merge it, in smaller batches: each merge descends the index once per distinct
-- word, so small merges cost writes. Measured on 5,000 docstrings with the list just under its
-- limit (worst case), a 64-word search_text: 3.3 ms merged, 4.3 ms at 64 kB, 7.5 ms at 256 kB,
-- 19.6 ms at 1 MB, 70 ms at 4 MB. Over the list's whole cycle (3,000 docstrings, then 150
-- rounds of 20 rows written and three searches), 1 MB against 256 kB: 3 words p50 2.55 / 2.49
-- ms, 8 words 3.30 / 3.18 ms, 64 words 7.72 / 7.17 ms (max 14.2 / 11.0). store_many of 500
-- rows without embeddings, the merges it leaves for later counted, against the pre-text-search
-- baseline: 0.75x at 64 kB, 0.81x-0.93x at 256 kB across runs and machines, 0.98x at 1 MB in a
-- side-by-side of the sizes and 0.87x in make eval's run (server CPU per row; with
-- _toast_tuple_target; BENCHMARKS.md "Text search write cost"). 1 MB keeps writes within issue
-- 14's 15% and still bounds the search (issue 11);
-- refresh_text_stats (run_maintenance) merges the list. WITH (gin_pending_list_limit = <this>)
-- on every GIN index pgmemo makes (memory_private._secondary_indexes, _adopted_helper_indexes;
-- migrations 0018, 0022 and 0034).
CREATE OR REPLACE FUNCTION memory_private._gin_pending_list_kb()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1024 $$;

-- The toast_tuple_target of the tables create_domain makes, in bytes: a row is compressed (or
-- moved to TOAST) only above 4080 bytes, two rows per 8 kB page, instead of PostgreSQL's
-- 2032. A row holds the content and its stored tsvector (about as large again), so at 2032 a
-- memory of a few hundred words was compressed with pglz on every insert and on every
-- embedding the worker wrote (the new row version), and decompressed on every read of its
-- content or tsvector: 5% of store_many's instructions (callgrind, 3,000 docstrings in batches
-- of 500). Cost: a heap a third larger for rows between 2 and 4 kB (3,000 docstrings without
-- embeddings: 4.0 MB against 3.0 MB; 5.8 against 5.2 MB with the indexes). Adopted tables keep
-- their own setting (the application's table).
CREATE OR REPLACE FUNCTION memory_private._toast_tuple_target()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 4080 $$;

-- The largest metadata of one memory (bytes, as stored): 1 MB. Bounded cost (issue 11): a
-- metadata is indexed key by key (GIN), so its size bounds the work of every write.
CREATE OR REPLACE FUNCTION memory_private._max_metadata_bytes()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1048576 $$;

CREATE OR REPLACE FUNCTION memory_private._check_metadata(metadata jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF metadata IS NULL THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, got a JSON %', jsonb_typeof(metadata)
            USING ERRCODE = '22023';
    END IF;
    IF pg_column_size(metadata) > memory_private._max_metadata_bytes() THEN
        RAISE EXCEPTION 'metadata is % bytes; at most % are accepted', pg_column_size(metadata),
            memory_private._max_metadata_bytes()
            USING ERRCODE = '54000';
    END IF;
    RETURN metadata;
END;
$$;

-- k, the rows a search returns: 1 to 1000. The check's one place is the PL/pgSQL statement of
-- _check_k_sql, over the expression given: _check_k is made from it, and memory.search splices
-- it (as _check_embedding_sql, above).
CREATE OR REPLACE FUNCTION memory_private._check_k_sql(k text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($s$IF %1$s IS NULL OR %1$s < 1 OR %1$s > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000, got %%', coalesce(%1$s::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;$s$, k)
$$;

DO $install$
BEGIN
    EXECUTE memory_private._check_function_sql('_check_k(k integer)',
        memory_private._check_k_sql('k'));
END;
$install$;

CREATE OR REPLACE FUNCTION memory_private._check_filter(filter jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'filter must be a JSON object (matched with metadata @> filter), got a JSON %',
            jsonb_typeof(filter)
            USING ERRCODE = '22023';
    END IF;
END;
$$;

-- pgvector's version as an integer array, e.g. {0,8,1}.
CREATE OR REPLACE FUNCTION memory_private._vector_version()
RETURNS integer[]
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT string_to_array(split_part(extversion, '-', 1), '.')::integer[]
    FROM pg_catalog.pg_extension WHERE extname = 'vector'
$$;

-- The k-NN query memory.search runs: $1 query vector, $2 k, $3 filter (only when with_filter),
-- $4 min_similarity (may be NULL). The innermost query is the plain ORDER BY distance LIMIT k
-- that the HNSW index serves; the outer one computes similarity and applies min_similarity to
-- those k rows. Iterative scans in relaxed_order (memory.search turns them on for filters) may
-- return rows slightly out of order, and the planner drops an outer ORDER BY on a column equal
-- to the inner sort key (also through a MATERIALIZED CTE on PostgreSQL 17+): so in that case the
-- distance is recomputed outside the LIMIT query, from its embedding, which forces a real sort.
-- Otherwise the index order is strict and the cheaper shape is used (bench/run.py measured the
-- recomputing shape at about +10% of a search's server time on 100K x 384).
CREATE OR REPLACE FUNCTION memory_private._search_sql(
    d memory_private.domains, with_filter boolean, with_embeddings boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    -- the embedding column: the stored vector (halfvec read as vector), or NULL
    v_embedding text := CASE WHEN with_embeddings THEN 's.embedding::' ELSE 'NULL::' END
        || memory_private._vector_schema() || '.vector';  -- _vector_schema() is quoted
    v_op text := memory_private._distance_to_sql(d, '$1');
    v_similarity text := CASE d.distance
        WHEN 'cosine' THEN '1 - s.distance'
        WHEN 'l2' THEN '1 / (1 + s.distance)'
        ELSE '- s.distance'
    END;
    -- the filter (a fixed predicate on $3), or none
    v_where text := CASE WHEN with_filter THEN 'AND t.metadata @> $3' ELSE '' END;
BEGIN
    IF d.distributed THEN  -- Citus: one flat k-NN query, LIMIT pushed to every shard
        RETURN memory_private._dist_search_sql(d, with_filter, with_embeddings);
    END IF;
    IF with_filter OR current_setting('hnsw.iterative_scan', true) = 'relaxed_order' THEN
        RETURN format($q$
            SELECT s.id, s.content, s.metadata, %1$s AS similarity, s.distance, s.created_at,
                s.updated_at, %6$s AS embedding
            FROM (
                SELECT n.id, n.content, n.metadata,
                    (n.embedding %2$s)::double precision AS distance, n.created_at,
                    n.updated_at, n.embedding
                FROM (
                    SELECT t.id, t.content, t.metadata, t.embedding, t.created_at, t.updated_at
                    FROM %3$I.%4$I AS t WHERE t.embedding IS NOT NULL %5$s
                    ORDER BY t.embedding %2$s LIMIT $2
                ) AS n
            ) AS s
            WHERE $4::double precision IS NULL OR %1$s >= $4
            ORDER BY s.distance $q$,
            v_similarity, v_op, d.table_schema, d.table_name, v_where, v_embedding);
    END IF;
    RETURN format($q$
        SELECT s.id, s.content, s.metadata, %1$s AS similarity, s.distance, s.created_at,
            s.updated_at, %6$s AS embedding
        FROM (
            SELECT t.id, t.content, t.metadata,
                (t.embedding %2$s)::double precision AS distance, t.created_at, t.updated_at,
                t.embedding
            FROM %3$I.%4$I AS t WHERE t.embedding IS NOT NULL %5$s
            ORDER BY t.embedding %2$s LIMIT $2
        ) AS s
        WHERE $4::double precision IS NULL OR %1$s >= $4
        ORDER BY s.distance $q$,
        v_similarity, v_op, d.table_schema, d.table_name, v_where, v_embedding);
END;
$$;
