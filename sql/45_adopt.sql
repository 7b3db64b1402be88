-- Adopted domains: memory.adopt_table puts an application's own table (with an id, a text column
-- and a vector(n) column) behind a pgmemo domain without copying a row.
--
-- How: the domain's table memory_data.<domain>_memories is a VIEW over the source table that
-- exposes the standard columns (id as text, content, embedding, embedding_model, metadata,
-- created_at, updated_at) for reading: reads through the view inline to the source (the HNSW
-- index on the source column serves ORDER BY embedding <=> $1). Writes go to the source table
-- itself through the domain's column mapping in the registry, the same statements as for a
-- factory table (sql/20_write.sql), and the same triggers sit on it (sql/43_wire.sql), so the
-- application's own inserts and updates are queued too. The same machinery serves the shadow
-- domains of a re-embed (46_reembed.sql).
--
-- Dynamic SQL: one template per statement (dollar-quoted unless it is a one-line DDL without
-- quotes), identifiers through %I. What varies with the mapping (the view's optional columns,
-- the full-text index's expression) is computed first, each piece from its own small template,
-- and passed in through %s.

-- A column of rel: its type and typmod, or NULL.
CREATE OR REPLACE FUNCTION memory_private._column(rel regclass, col name)
RETURNS TABLE (type_oid oid, type_name text, typmod integer, category text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT a.atttypid, a.atttypid::regtype::text, a.atttypmod, t.typcategory::text
    FROM pg_catalog.pg_attribute AS a
    JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
    WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- The id of row `alias` of an adopted domain's table as the domain's view shows it (text), as SQL:
-- the column itself when it is text (so its primary key index serves a look-up by it), else
-- cast (the helper index <id>::text serves it, _adopted_helper_indexes).
CREATE OR REPLACE FUNCTION memory_private._source_id_sql(d memory_private.domains, alias text)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN coalesce((SELECT c.type_name
            FROM memory_private._column(d.source_table, d.id_column) AS c), 'text') = 'text'
        THEN format('%I.%I', alias, d.id_column) ELSE format('%I.%I::text', alias, d.id_column) END
$$;

-- The optional standard columns a source table may have, mapped by name and type:
-- {metadata jsonb, embedding_model text, created_at timestamptz, updated_at timestamptz}
-- (NULL where absent or already used as id, content or embedding).
CREATE OR REPLACE FUNCTION memory_private._optional_columns(
    rel regclass, id_column name, content_column name, embedding_column name
)
RETURNS name[]
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT array_agg(CASE WHEN c.type_oid = o.type_oid
            AND o.col NOT IN (id_column, content_column, embedding_column) THEN o.col END
        ORDER BY o.ord)
    FROM (VALUES
        (1, 'metadata'::name, 'jsonb'::regtype::oid),
        (2, 'embedding_model'::name, 'text'::regtype::oid),
        (3, 'created_at'::name, 'timestamp with time zone'::regtype::oid),
        (4, 'updated_at'::name, 'timestamp with time zone'::regtype::oid)
    ) AS o (ord, col, type_oid)
    LEFT JOIN LATERAL memory_private._column(rel, o.col) AS c ON true
$$;

-- Whether d is the shadow domain of a re-embed.
CREATE OR REPLACE FUNCTION memory_private._is_shadow(d memory_private.domains)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT EXISTS (SELECT FROM memory_private.reembeds AS r WHERE r.shadow_domain = d.domain)
$$;

-- The helper index an adopted domain needs on its source table: id as text (the view's id is
-- <id column>::text, so lookups by id, and the text index's rows joined back to the table, need
-- this expression index unless the id is text or varchar). Full text needs none on the table:
-- its tsvectors are the domain's text index, beside it (memory_data.<domain>_text).
-- present: exists and is valid.
CREATE OR REPLACE FUNCTION memory_private._adopted_helper_indexes(d memory_private.domains)
RETURNS TABLE (index_name name, definition text, suffix text, present boolean)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT h.index_name, h.definition, h.suffix, coalesce((
        SELECT i.indisvalid FROM pg_catalog.pg_index AS i
        JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = d.source_table AND c.relname = h.index_name
    ), false)
    FROM (
        SELECT ('pgmemo_' || d.domain || '_id_text')::name AS index_name,
            format($f$((%I::text))$f$, d.id_column) AS definition, 'id_text' AS suffix
        WHERE (SELECT c.type_oid FROM memory_private._column(d.source_table, d.id_column) AS c)
            NOT IN ('text'::regtype, 'character varying'::regtype)
    ) AS h
    WHERE d.adopted AND NOT memory_private._is_shadow(d)
$$;

-- The view memory_data.<domain>_memories over an adopted domain's source, for reading (pgmemo
-- writes the source itself, through the domain's column mapping: sql/20_write.sql). opt: the
-- optional columns (see _optional_columns; [1] metadata, [2] model, [3] created, [4] updated).
-- Its content_tsv is the row's tsvector from the domain's text index (joined by id: a query that
-- does not read content_tsv plans without the join), or before there is one (a re-embed's shadow
-- domain), computed from the content. Made again (CREATE OR REPLACE) when the text index comes.
-- Computed, the domain's text configuration is checked again first (42501 when pgmemo does not
-- trust it any more: memory_private._check_text_config).
CREATE OR REPLACE FUNCTION memory_private._adopted_view(d memory_private.domains, opt name[])
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_view_q text := format('%I.%I', d.table_schema, d.table_name);
    v_source text := memory_private._qualified(d.source_table);
    v_text regclass := memory_private._text_table(d);
    -- The view's columns read from the source: the id as text, and each optional column, or
    -- without one a constant of the standard column's type.
    v_id text := memory_private._source_id_sql(d, 's');
    v_model text := CASE WHEN opt[2] IS NULL THEN 'NULL::text' ELSE format($f$s.%I$f$, opt[2]) END;
    v_metadata text := CASE WHEN opt[1] IS NULL THEN $f$'{}'::jsonb$f$
        ELSE format($f$s.%I$f$, opt[1]) END;
    v_created text := CASE WHEN opt[3] IS NULL THEN 'NULL::timestamptz'
        ELSE format($f$s.%I$f$, opt[3]) END;
    v_updated text := CASE WHEN opt[4] IS NULL THEN 'NULL::timestamptz'
        ELSE format($f$s.%I$f$, opt[4]) END;
    v_tsv text := CASE WHEN v_text IS NULL
        THEN memory_private._adopted_tsvector_sql(d.text_config, format($f$s.%I::text$f$,
            d.content_column))
        ELSE 'x.content_tsv' END;
    v_join text := CASE WHEN v_text IS NULL THEN ''
        ELSE format($f$LEFT JOIN %s AS x ON x.id = %s$f$, v_text, v_id) END;
    v_comment text := format('pgmemo domain %s, adopted: a view over %s (%s -> id, %s -> content, '
        '%s -> embedding). Write through memory.store() or the table itself.', d.domain, v_source,
        d.id_column, d.content_column, d.embedding_column);
BEGIN
    IF v_text IS NULL THEN
        -- (the view then depends on the domain's text configuration, and runs it: checked again)
        PERFORM memory_private._check_text_config(d.text_config);
    END IF;
    EXECUTE format($sql$
        CREATE OR REPLACE VIEW %1$s AS
        SELECT %2$s AS id, s.%3$I::text AS content, s.%4$I AS embedding,
            %5$s AS embedding_model, %6$s AS metadata, %7$s AS created_at, %8$s AS updated_at,
            %10$s AS content_tsv
        FROM %9$s AS s
        %11$s
    $sql$,
        v_view_q, v_id, d.content_column, d.embedding_column, v_model, v_metadata, v_created,
        v_updated, v_source, v_tsv, v_join);
    EXECUTE format($sql$
        COMMENT ON VIEW %1$s IS %2$L
    $sql$, v_view_q, v_comment);
END;
$$;

-- The lock that keeps an adopted table's writers out while pgmemo compares or wires its text
-- index: SHARE ROW EXCLUSIVE, as CREATE TRIGGER takes it (source: the table, qualified). Taken
-- before any weaker lock of the same transaction on the table where it can be (adopt_table,
-- memory_private._lock_for_sync): an upgrade from ROW EXCLUSIVE deadlocked two of them.
CREATE OR REPLACE FUNCTION memory_private._lock_out_writers(source text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    EXECUTE format($sql$LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE$sql$, source);
END;
$$;

-- Make an adopted domain's text index, memory_data.<domain>_text (see _text_table_name), when it
-- has none: the table, its text trigger on the source (sql/43_wire.sql), every row's tsvector,
-- a GIN index over them, the view's content_tsv from it, and the full-text index pgmemo used to
-- put on the source (pgmemo_<domain>_fts, before 0024) dropped. Nothing for a domain that is not
-- adopted, a re-embed's shadow, or over a distributed table (their content_tsv is computed).
-- The source is locked against writes (SHARE ROW EXCLUSIVE, as CREATE TRIGGER takes it) before
-- its rows are read, until the caller's transaction ends: no write falls between the fill and
-- the trigger. It reads the source with pgmemo's rights, so the caller has checked it is inert.
-- fill false: the index is made empty (with its trigger: every row written from then on is
-- indexed) and the domain registered in memory_private.text_fills; its other rows are added
-- later, in batches that never block the table's writers (_text_rows_fill).
CREATE OR REPLACE FUNCTION memory_private._text_index_make(
    d memory_private.domains, fill boolean DEFAULT TRUE
)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_name name := memory_private._text_table_name(d.domain);
    v_source text := memory_private._qualified(d.source_table);
    v_comment text := format('pgmemo domain %s: the text index of %s (each row''s tsvector, kept '
        'by the trigger %s; memory.sync_text_index rebuilds it)', d.domain, v_source,
        memory_private._wire_name(d.domain, 'text'));
    v_old regclass;
BEGIN
    IF NOT d.adopted OR v_source IS NULL OR memory_private._is_shadow(d)
        OR memory_private._is_distributed_table(d.source_table)
        OR memory_private._text_table(d) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- (every row's tsvector, and the trigger's, from the domain's text configuration: checked
    -- again, before the table is locked)
    PERFORM memory_private._check_text_config(d.text_config);
    PERFORM memory_private._lock_out_writers(v_source);
    EXECUTE format($sql$
        CREATE TABLE memory_data.%1$I (
            id text PRIMARY KEY,
            content_tsv tsvector NOT NULL,
            content_bytes integer NOT NULL
        )
    $sql$, v_name);
    EXECUTE format($sql$
        COMMENT ON TABLE memory_data.%1$I IS %2$L
    $sql$, v_name, v_comment);
    -- (explicit: no role but pgmemo's owner reads or writes it, whenever it was made)
    EXECUTE format($sql$REVOKE ALL ON memory_data.%I FROM PUBLIC$sql$, v_name);
    PERFORM memory_private._wire(d);
    IF fill THEN
        EXECUTE format($sql$
            INSERT INTO memory_data.%1$I (id, content_tsv, content_bytes)
            SELECT %2$s
            FROM %3$s AS s
            WHERE s.%4$I IS NOT NULL
        $sql$, v_name, memory_private._text_index_row_sql(d, 's'), v_source, d.id_column);
    ELSE
        -- filled later, in batches (memory.fill_text_index, run_maintenance)
        INSERT INTO memory_private.text_fills AS f (domain) VALUES (d.domain)
        ON CONFLICT (domain) DO NOTHING;
    END IF;
    EXECUTE format($sql$
        CREATE INDEX %1$I ON memory_data.%2$I USING gin (content_tsv)
        WITH (gin_pending_list_limit = %3$s)
    $sql$, v_name || '_gin', v_name, memory_private._gin_pending_list_kb());
    EXECUTE format($sql$ANALYZE memory_data.%I$sql$, v_name);
    PERFORM memory_private._adopted_view(d, memory_private._adopted_opt(d));
    SELECT c.oid INTO v_old
    FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    WHERE i.indrelid = d.source_table AND c.relname = 'pgmemo_' || d.domain || '_fts';
    IF FOUND THEN
        EXECUTE format($sql$DROP INDEX %s$sql$, memory_private._qualified(v_old));
    END IF;
    PERFORM memory_private._search_static_refresh();  -- search_text's branch reads it now
    RETURN true;
END;
$$;

-- Register a view-backed domain over source and wire its triggers. Shared by memory.adopt_table
-- and memory.begin_reembed (which passes the shadow column as embedding_column and the shadow
-- model column as opt[2]).
CREATE OR REPLACE FUNCTION memory_private._adopt(
    domain text, source regclass, id_column name, content_column name, embedding_column name,
    opt name[], distance text, embedding_model text, dimension integer
)
RETURNS memory_private.domains
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_source text := memory_private._qualified(source);
BEGIN
    IF to_regclass(format('memory_data.%I', domain || '_memories')) IS NOT NULL THEN
        RAISE EXCEPTION 'table memory_data.% already exists but is not a registered domain',
            domain || '_memories'
            USING ERRCODE = '42P07', HINT = 'Rename or drop it, then try again.';
    END IF;
    INSERT INTO memory_private.domains AS d
        (domain, table_schema, table_name, dimension, distance, embedding_model, adopted,
         source_table, id_column, content_column, embedding_column, model_column,
         metadata_column, created_column, embedding_type)
    VALUES (domain, 'memory_data', domain || '_memories', dimension, distance, embedding_model,
            true, source, id_column, content_column, embedding_column, opt[2], opt[1], opt[3],
            (SELECT t.typname FROM pg_catalog.pg_attribute AS a
             JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
             WHERE a.attrelid = source AND a.attname = embedding_column))
    RETURNING d.* INTO v_d;
    PERFORM memory_private._default_access(domain);
    PERFORM memory_private._adopted_view(v_d, opt);

    IF memory_private._is_distributed_table(source) THEN
        -- Citus (a re-embed of a distributed domain): the row trigger on every shard, the queue
        -- kept by the write functions (memory_private._dist_sync_jobs), as for the domain itself.
        RETURN memory_private._dist_adopt_triggers(v_d, opt);
    END IF;
    PERFORM memory_private._wire(v_d);
    PERFORM memory_private._search_static_refresh();  -- the cached search plan (36_...sql)
    RETURN v_d;
END;
$$;

-- The optional columns of an adopted domain's view (see _optional_columns) as its registry
-- maps them (a shadow domain's model column is the re-embed's), updated_at found by name.
CREATE OR REPLACE FUNCTION memory_private._adopted_opt(d memory_private.domains)
RETURNS name[]
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT ARRAY[d.metadata_column, d.model_column, d.created_column,
        (memory_private._optional_columns(d.source_table, d.id_column, d.content_column,
            d.embedding_column))[4]]
$$;

-- Every adopted domain's text index, made where missing (memory_private._after_migrate: the
-- domains adopted before 0024, and one whose index could not be made then), and a view made
-- before 0024 given its content_tsv (computed, where there is no text index). A domain whose
-- table is not inert (05_trust.sql) or cannot be locked is left with a WARNING (diagnose reports
-- it).
CREATE OR REPLACE FUNCTION memory_private._text_index_all()
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_count integer := 0;
BEGIN
    -- A text index made by schema 0024 has no content sizes: the column only (instant; the
    -- domain's trigger, made again by this migrate run, writes it for every row written from
    -- now on). The rows' sizes are filled later, without blocking the table's writers, by
    -- memory.run_maintenance (memory_private._text_sizes_fill); until then BM25 reads the
    -- domain's postings through its view.
    FOR v_d IN
        SELECT x.* FROM memory_private.domains AS x
        WHERE x.adopted AND memory_private._text_table(x) IS NOT NULL
          AND memory_private._text_postings_table(x) IS NULL
        ORDER BY x.domain
    LOOP
        EXECUTE format($sql$ALTER TABLE %s ADD COLUMN IF NOT EXISTS content_bytes integer$sql$,
            memory_private._text_table(v_d));
    END LOOP;
    FOR v_d IN
        SELECT x.* FROM memory_private.domains AS x
        WHERE x.adopted AND memory_private._text_table(x) IS NULL
          AND memory_private._qualified(x.source_table) IS NOT NULL
        ORDER BY x.domain
    LOOP
        BEGIN
            IF NOT memory_private._is_shadow(v_d)
                AND NOT memory_private._is_distributed_table(v_d.source_table) THEN
                PERFORM memory_private._assert_inert(v_d.source_table, false);
                PERFORM memory_private._text_index_make(v_d);
                v_count := v_count + 1;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pgmemo: the text index of domain "%" was not made: %', v_d.domain,
                SQLERRM;
        END;
        IF memory_private._text_table(v_d) IS NULL AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = to_regclass(format('%I.%I', v_d.table_schema, v_d.table_name))
              AND a.attname = 'content_tsv' AND NOT a.attisdropped
        ) THEN
            BEGIN
                PERFORM memory_private._adopted_view(v_d, memory_private._adopted_opt(v_d));
            EXCEPTION WHEN insufficient_privilege THEN
                -- (a text configuration pgmemo does not trust any more: diagnose reports it)
                RAISE WARNING 'pgmemo: the view of domain "%" was not made again: %', v_d.domain,
                    SQLERRM;
            END;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

-- The content sizes of up to max_rows rows of an adopted domain's text index that have none (an
-- index made by schema 0024), read from the table; once none is left, content_bytes is made NOT
-- NULL and the search branches regenerated (BM25 then reads the postings from the text index
-- alone). Returns the rows filled. Writers of the table never wait for it: it reads the table
-- (ACCESS SHARE, after _assert_inert) and only fills sizes that are still NULL, so a row a
-- writer changes meanwhile, whose size the domain's trigger writes, is left to the trigger: when
-- the writer commits first, the UPDATE re-checks the row (READ COMMITTED) and finds a size;
-- when this UPDATE comes first, the writer's trigger waits for it and writes over it. A row of
-- the index whose table row is gone (an index out of line) is removed.
CREATE OR REPLACE FUNCTION memory_private._text_sizes_fill(d memory_private.domains, max_rows integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_text regclass := memory_private._text_table(d);
    v_source text := memory_private._qualified(d.source_table);
    v_id text := memory_private._source_id_sql(d, 's');
    v_filled bigint;
    v_left boolean;
BEGIN
    IF v_text IS NULL OR v_source IS NULL OR memory_private._text_postings_table(d) IS NOT NULL
    THEN
        RETURN 0;
    END IF;
    PERFORM memory_private._assert_inert(d.source_table, false);
    EXECUTE format($sql$
        UPDATE %1$s AS x
        SET content_bytes = octet_length(coalesce(s.%4$I::text, ''))
        FROM %2$s AS s
        WHERE %3$s = x.id AND x.content_bytes IS NULL
          AND x.id IN (SELECT y.id FROM %1$s AS y WHERE y.content_bytes IS NULL LIMIT $1)
    $sql$, v_text, v_source, v_id, d.content_column) USING max_rows;
    GET DIAGNOSTICS v_filled = ROW_COUNT;
    IF v_filled < max_rows THEN
        EXECUTE format($sql$
            DELETE FROM %1$s AS x
            WHERE x.content_bytes IS NULL AND NOT EXISTS (SELECT FROM %2$s AS s WHERE %3$s = x.id)
        $sql$, v_text, v_source, v_id);
        EXECUTE format($sql$
            SELECT EXISTS (SELECT FROM %1$s AS x WHERE x.content_bytes IS NULL)
        $sql$, v_text) INTO v_left;
        IF NOT v_left THEN
            -- (the trigger never writes a row without its size)
            EXECUTE format($sql$ALTER TABLE %s ALTER COLUMN content_bytes SET NOT NULL$sql$, v_text);
            PERFORM memory_private._search_static_refresh();  -- the branches read it now
        END IF;
    END IF;
    RETURN v_filled;
END;
$$;

-- The next max_rows rows of an adopted domain's table, in id order after the last batch's
-- (memory_private.text_fills.last_id: the table's unique index on its id reads from there, so
-- each batch costs its own rows, not the table), added to its text index where missing; returns
-- how many rows it went through. Fewer than max_rows: the fill is done, the domain leaves
-- text_fills and the index is analyzed. (A row written since adoption is indexed by the trigger
-- whatever its id, so the rows behind last_id are all there.) A fill of partitions or
-- inheritance children attached with rows (text_fills.relations, registered by
-- memory_private._wire_missing_all) reads each of them in turn, with what is under it, in the
-- same way, last_id then being in the first; one detached or dropped since is passed over (the
-- caller's check covered only the table and what is under it). A row already in the index is
-- neither read nor locked further (a relation attached and written since its wiring). Never
-- blocks the table's writers: each row read is locked FOR KEY SHARE until the batch's
-- transaction ends, so a concurrent DELETE (or id change) of it waits, then its trigger removes
-- the row just added (no row of a deleted row is left behind); a concurrent content UPDATE is not
-- blocked and its trigger's tsvector wins either way (ON CONFLICT DO NOTHING here, DO UPDATE
-- there; a row updated before its lock is read at its newest version). The caller has checked
-- the table (_assert_inert for a write: locking rows is one).
CREATE OR REPLACE FUNCTION memory_private._text_rows_fill(d memory_private.domains, max_rows integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_text regclass := memory_private._text_table(d);
    v_source text := memory_private._qualified(d.source_table);
    v_type text := memory_private._id_type(d);
    v_last text;
    v_rels regclass[];
    v_rel text;
    v_max bigint;
    v_seen bigint;
    v_total bigint := 0;
    v_done boolean := false;
BEGIN
    SELECT f.last_id, f.relations INTO v_last, v_rels
    FROM memory_private.text_fills AS f WHERE f.domain = d.domain;
    IF v_text IS NULL OR v_source IS NULL OR NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM memory_private._check_text_config(d.text_config);  -- the rows' tsvectors come from it
    LOOP
        IF v_rels IS NOT NULL AND cardinality(v_rels) = 0 THEN
            v_done := true;
            EXIT;
        END IF;
        -- the relation this batch reads: the table, or the first relation still under it
        v_rel := CASE WHEN v_rels IS NULL THEN v_source
            WHEN v_rels[1]::oid IN (
                SELECT t.oid FROM memory_private._inheritance_tree(d.source_table) AS t)
            THEN memory_private._qualified(v_rels[1]) END;
        IF v_rel IS NULL THEN
            v_rels := v_rels[2:];
            v_last := NULL;
            CONTINUE;
        END IF;
        v_max := max_rows - v_total;
        -- The batch is the ids after the last one up to the max_rows-th, as the statement's
        -- snapshot has them (k, unlocked); the rows are then locked within that range. A row
        -- whose id a concurrent UPDATE moved is re-read at its new id by the lock and dropped by
        -- the range (its trigger indexed it under the new id), so the next batch starts after
        -- k's last id: taking the last id of the locked rows instead made the keyset jump past
        -- every row below a moved-up id (stop 26's attack review: 90 of 100 rows never indexed,
        -- the fill "done").
        EXECUTE format($sql$
            WITH k AS MATERIALIZED (
                SELECT s.%3$I AS sid
                FROM %2$s AS s
                WHERE s.%3$I IS NOT NULL AND ($2::text IS NULL OR s.%3$I > $2::%4$s)
                ORDER BY s.%3$I
                LIMIT $1
            ),
            hi AS MATERIALIZED (SELECT k.sid FROM k ORDER BY k.sid DESC LIMIT 1),
            b AS MATERIALIZED (
                SELECT r.*
                FROM %2$s AS s
                CROSS JOIN LATERAL (SELECT %5$s) AS r (id, content_tsv, content_bytes)
                WHERE s.%3$I IS NOT NULL AND ($2::text IS NULL OR s.%3$I > $2::%4$s)
                  AND s.%3$I <= (SELECT hi.sid FROM hi)
                  AND NOT EXISTS (SELECT FROM %1$s AS y WHERE y.id = %6$s)
                FOR KEY SHARE OF s
            ),
            added AS (
                INSERT INTO %1$s AS x (id, content_tsv, content_bytes)
                SELECT b.id, b.content_tsv, b.content_bytes FROM b
                ON CONFLICT (id) DO NOTHING
            )
            SELECT (SELECT count(*) FROM k), (SELECT hi.sid::text FROM hi)
        $sql$, v_text, v_rel, d.id_column, v_type, memory_private._text_index_row_sql(d, 's'),
            memory_private._source_id_sql(d, 's'))
        INTO v_seen, v_last USING v_max, v_last;
        v_total := v_total + v_seen;
        EXIT WHEN v_seen >= v_max;  -- this call's rows are used up: the next goes on from v_last
        -- this relation is done: the next one, or the fill
        IF v_rels IS NULL OR cardinality(v_rels) <= 1 THEN
            v_done := true;
            EXIT;
        END IF;
        v_rels := v_rels[2:];
        v_last := NULL;
    END LOOP;
    IF v_done THEN
        DELETE FROM memory_private.text_fills AS f WHERE f.domain = d.domain;
        EXECUTE format($sql$ANALYZE %s$sql$, v_text);
    ELSE
        UPDATE memory_private.text_fills AS f
        SET rows_filled = f.rows_filled + v_total, last_id = v_last, relations = v_rels
        WHERE f.domain = d.domain;
    END IF;
    RETURN v_total;
END;
$$;

CREATE OR REPLACE FUNCTION memory.fill_text_index(domain text, max_rows integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be positive, got %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF max_rows > memory_private._max_batch() THEN
        RAISE EXCEPTION 'max_rows is %; one call fills at most % rows', max_rows,
            memory_private._max_batch()
            USING ERRCODE = '54000', HINT = 'Call it again until it returns fewer than max_rows.';
    END IF;
    RETURN memory_private._text_rows_fill(v_d, max_rows);
END;
$$;

COMMENT ON FUNCTION memory.fill_text_index(text, integer) IS
'Index the next max_rows (1 to the batch limit) rows of an adopted domain''s table, in id order, '
'after adopt_table(..., create_indexes => false), which makes its text index empty so as not to '
'block the table''s writers, or of the partitions and inheritance children attached with rows '
'that run_maintenance wired since (relations_rewired; only the rows the index lacks); returns '
'how many rows it went through (0 when the index is '
'complete, or the domain is not being filled). Call it until it returns fewer than max_rows, '
'each call in its own '
'transaction (`pgmemo adopt --concurrently` does; run_maintenance adds 50,000 a run). Writers '
'never wait for it beyond a row it is adding. Until the fill is done, search_text finds only the '
'rows filled so far (diagnose: text_index_out_of_sync).';

-- memory.run_maintenance's part of the text indexes: content sizes where an index made by schema
-- 0024 lacks them (_text_sizes_fill) and rows where an index is being filled (_text_rows_fill),
-- at most max_rows of each in all, never blocking the tables' writers; a domain whose table
-- cannot be written is left with a WARNING (diagnose reports it: text_index_out_of_sync).
CREATE OR REPLACE FUNCTION memory_private._text_index_fill_all(
    max_rows integer, OUT sizes bigint, OUT text_rows bigint
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
BEGIN
    sizes := 0;
    text_rows := 0;
    FOR v_d IN
        SELECT x.* FROM memory_private.domains AS x
        WHERE x.adopted AND memory_private._text_table(x) IS NOT NULL
          AND (memory_private._text_postings_table(x) IS NULL
               OR EXISTS (SELECT FROM memory_private.text_fills AS f WHERE f.domain = x.domain))
        ORDER BY x.domain
    LOOP
        BEGIN
            PERFORM memory_private._assert_inert(v_d.source_table, true);
            IF sizes < max_rows THEN
                sizes := sizes + memory_private._text_sizes_fill(v_d, (max_rows - sizes)::integer);
            END IF;
            IF text_rows < max_rows THEN
                text_rows := text_rows
                    + memory_private._text_rows_fill(v_d, (max_rows - text_rows)::integer);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pgmemo: the text index of domain "%" was not completed further: %',
                v_d.domain, SQLERRM;
        END;
    END LOOP;
END;
$$;

-- The SHARE ROW EXCLUSIVE lock memory.sync_text_index needs on an adopted domain's table, taken
-- before _domain_for's ROW EXCLUSIVE (taking it after, an upgrade, deadlocked two syncs, or a
-- write and a sync in one transaction; stop 26's attack review), and only for a caller who may
-- write the domain (a lock taken for anyone would let a reader hold the application's writers).
CREATE OR REPLACE FUNCTION memory_private._lock_for_sync(domain text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_source text;
BEGIN
    SELECT memory_private._qualified(d.source_table) INTO v_source
    FROM memory_private.domains AS d
    WHERE d.domain = _lock_for_sync.domain AND d.adopted
      AND NOT memory_private._is_distributed_table(d.source_table);
    IF v_source IS NULL OR NOT memory_private._can(domain, 'write') THEN
        RETURN false;
    END IF;
    PERFORM memory_private._lock_out_writers(v_source);
    RETURN true;
END;
$$;

CREATE OR REPLACE FUNCTION memory.sync_text_index(domain text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_locked boolean;
    v_d memory_private.domains;
    v_text regclass;
    v_source text;
    v_set bigint;
BEGIN
    -- (the migrators' lock only, before the table's: not the domain's, see _lock_ddl)
    PERFORM memory_private._lock_ddl();
    v_locked := memory_private._lock_for_sync(domain);
    v_d := memory_private._domain_for(domain, 'write');
    v_text := memory_private._text_table(v_d);
    v_source := memory_private._qualified(v_d.source_table);
    IF NOT v_d.adopted OR memory_private._is_shadow(v_d)
        OR memory_private._is_distributed_table(v_d.source_table) THEN
        RETURN 0;  -- the stored column of pgmemo's own table, or computed: nothing to keep
    END IF;
    IF v_source IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain USING ERRCODE = '42P01';
    END IF;
    -- (every row's tsvector is computed again from the domain's text configuration)
    PERFORM memory_private._check_text_config(v_d.text_config);
    IF v_text IS NULL THEN
        PERFORM memory_private._text_index_make(v_d);
        EXECUTE format($sql$SELECT count(*) FROM %s$sql$, memory_private._text_table(v_d))
        INTO v_set;
        RETURN v_set;
    END IF;
    RETURN memory_private._text_index_sync(v_d, v_text);
END;
$$;

-- memory.sync_text_index's work on an existing text index (the caller has checked the table):
-- rows gone from the table removed, every row's tsvector and size computed and written where
-- they differ, and content_bytes made NOT NULL (an index made by schema 0024 had no sizes).
-- Returns the rows written or removed.
CREATE OR REPLACE FUNCTION memory_private._text_index_sync(d memory_private.domains, text_index regclass)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := d;
    v_text regclass := text_index;
    v_source text := memory_private._qualified(d.source_table);
    v_id text;
    v_gone bigint;
    v_set bigint;
BEGIN
    -- Writers wait while every row is compared (a write between the read and the upsert below
    -- would be overwritten by the tsvector of its old content).
    PERFORM memory_private._lock_out_writers(v_source);
    v_id := memory_private._source_id_sql(v_d, 's');
    EXECUTE format($sql$
        DELETE FROM %1$s AS x
        WHERE NOT EXISTS (SELECT FROM %2$s AS s WHERE %3$s = x.id)
    $sql$, v_text, v_source, v_id);
    GET DIAGNOSTICS v_gone = ROW_COUNT;
    EXECUTE format($sql$
        INSERT INTO %1$s AS x (id, content_tsv, content_bytes)
        SELECT %3$s
        FROM %2$s AS s
        WHERE s.%4$I IS NOT NULL
        ON CONFLICT (id) DO UPDATE
            SET content_tsv = excluded.content_tsv, content_bytes = excluded.content_bytes
            WHERE (x.content_tsv, x.content_bytes)
                IS DISTINCT FROM (excluded.content_tsv, excluded.content_bytes)
    $sql$, v_text, v_source, memory_private._text_index_row_sql(v_d, 's'), v_d.id_column);
    GET DIAGNOSTICS v_set = ROW_COUNT;
    IF memory_private._text_postings_table(v_d) IS NULL THEN
        EXECUTE format($sql$ALTER TABLE %s ALTER COLUMN content_bytes SET NOT NULL$sql$, v_text);
        PERFORM memory_private._search_static_refresh();  -- search_text's branch reads it now
    END IF;
    DELETE FROM memory_private.text_fills AS f WHERE f.domain = v_d.domain;  -- complete now
    RETURN v_gone + v_set;
END;
$$;

COMMENT ON FUNCTION memory.sync_text_index(text) IS
'Bring an adopted domain''s text index (memory_data.<domain>_text: each row''s tsvector, kept by a '
'trigger on the table) back in line with the table: after writes its triggers did not see '
'(triggers disabled, session_replication_role = replica as on a logical replica, a partition '
'attached, detached or truncated on its own), or to make it where it is missing. Every row''s '
'tsvector is computed and compared; the table''s writers wait meanwhile. Returns the rows '
'written or removed (0 when it was in line; 0 for a domain that is not adopted). diagnose '
'reports when it is needed (text_index_out_of_sync).';

-- Undo _adopt: the view (with its triggers), the triggers on the source, the helper indexes.
-- Never the source table, its data, or its HNSW index (see memory.drop_domain).
CREATE OR REPLACE FUNCTION memory_private._unadopt(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_source text := memory_private._qualified(d.source_table);  -- NULL when it was dropped
    v_helper record;
BEGIN
    EXECUTE format($sql$DROP VIEW IF EXISTS %I.%I$sql$, d.table_schema, d.table_name);
    PERFORM memory_private._unwire(d);
    EXECUTE format($sql$DROP TABLE IF EXISTS memory_data.%I$sql$,
        memory_private._text_table_name(d.domain));
    IF v_source IS NULL THEN
        RETURN;
    END IF;
    FOR v_helper IN
        SELECT c.oid::regclass AS idx
        FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = d.source_table
          AND c.relname IN ('pgmemo_' || d.domain || '_id_text', 'pgmemo_' || d.domain || '_fts')
    LOOP
        EXECUTE format($sql$DROP INDEX IF EXISTS %s$sql$, memory_private._qualified(v_helper.idx));
    END LOOP;
END;
$$;

-- Adoption hands the table to every role that may use the domain, with pgmemo's rights: the
-- caller (memory_private._caller(), checked as itself, not as pgmemo's owner) must own it and
-- reach its schema; pgmemo's owner must own it too (or be a member of its owner: triggers and
-- indexes need that) to wire it.
CREATE OR REPLACE FUNCTION memory_private._check_adopter(source regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_caller name := memory_private._caller();
    v_rel record;
BEGIN
    SELECT c.relowner, c.relnamespace, n.nspname INTO v_rel
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = source;
    IF NOT pg_catalog.has_schema_privilege(v_caller, v_rel.relnamespace, 'USAGE')
        OR NOT pg_catalog.pg_has_role(v_caller, v_rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: only the owner of % can adopt it (% is not)',
            source, v_caller
            USING ERRCODE = '42501',
                  DETAIL = 'Adopting a table lets every role granted the domain read and write '
                      || 'it through pgmemo.',
                  HINT = pg_catalog.format('Adopt it as %s (or a member of it).',
                      v_rel.relowner::regrole);
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, v_rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'pgmemo''s owner % cannot wire % (owned by %): triggers and indexes on a '
            'table need its owner''s rights', current_user, source, v_rel.relowner::regrole
            USING ERRCODE = '42501',
                  HINT = pg_catalog.format('As a superuser or the table owner: GRANT %s TO %s;',
                      v_rel.relowner::regrole, current_user);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.adopt_table(
    domain text,
    source regclass,
    id_column name,
    content_column name,
    embedding_column name,
    distance text DEFAULT 'cosine',
    embedding_model text DEFAULT NULL,
    create_indexes boolean DEFAULT TRUE
)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_existing memory_private.domains;
    v_d memory_private.domains;
    v_kind "char";
    v_schema name;
    v_id record;
    v_content record;
    v_embedding record;
    v_other text;
    v_helper record;
BEGIN
    PERFORM memory_private._check_domain_name(domain);
    IF source IS NULL OR id_column IS NULL OR content_column IS NULL OR embedding_column IS NULL THEN
        RAISE EXCEPTION 'source, id_column, content_column and embedding_column must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_distance(distance);
    PERFORM memory_private._lock_ddl(domain);

    SELECT d.* INTO v_existing FROM memory_private.domains AS d WHERE d.domain = adopt_table.domain;
    IF FOUND THEN
        IF v_existing.adopted AND (v_existing.source_table, v_existing.id_column,
            v_existing.content_column, v_existing.embedding_column, v_existing.distance,
            v_existing.embedding_model) IS NOT DISTINCT FROM
            (source, id_column, content_column, embedding_column, distance, embedding_model) THEN
            RETURN;  -- the same adoption again
        END IF;
        RAISE EXCEPTION 'domain "%" already exists', domain
            USING ERRCODE = '42710',
                  HINT = 'Choose another name, or drop it first with memory.drop_domain().';
    END IF;

    SELECT c.relkind, n.nspname INTO v_kind, v_schema
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = source;
    IF v_kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table (only tables and partitioned tables can be adopted)', source
            USING ERRCODE = '0A000';
    END IF;
    IF v_schema IN ('memory', 'memory_private', 'memory_data') THEN
        RAISE EXCEPTION '% belongs to pgmemo: only application tables can be adopted', source
            USING ERRCODE = '22023';
    END IF;
    PERFORM memory_private._check_adopter(source);
    -- (the lock the text index's triggers need, taken before _assert_inert's ROW EXCLUSIVE:
    -- taking it after, an upgrade, deadlocked two adoptions of one table)
    IF NOT memory_private._is_distributed_table(source) THEN
        PERFORM memory_private._lock_out_writers(source::text);
    END IF;
    PERFORM memory_private._assert_inert(source, true);

    SELECT * INTO v_id FROM memory_private._column(source, id_column);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no column %', source, quote_ident(id_column)
            USING ERRCODE = '42703';
    END IF;
    IF NOT memory_private._adoptable_type('id', v_id.type_oid) THEN
        RAISE EXCEPTION 'id column %.% is %, which cannot be a pgmemo id', source,
            quote_ident(id_column), v_id.type_name
            USING ERRCODE = '0A000', HINT = 'Supported: bigint, integer, smallint, uuid, text, varchar.';
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = source AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
          AND i.indexprs IS NULL AND a.attname = id_column
          -- (an index that serves ORDER BY id: the column's collation, the default operator
          -- class; the text index's batched fill walks the ids in that order, and with another
          -- index each batch sorted the whole table: stop 26's attack review)
          AND i.indcollation[0] = a.attcollation
          AND EXISTS (SELECT FROM pg_catalog.pg_opclass AS oc
              WHERE oc.oid = i.indclass[0] AND oc.opcdefault)
    ) THEN
        RAISE EXCEPTION 'id column %.% has no primary key or unique constraint of its own',
            source, quote_ident(id_column)
            USING ERRCODE = '0A000',
                  HINT = 'pgmemo addresses rows by id: it must be unique, by an index with the '
                      || 'column''s collation and default operator class (a partitioned table '
                      || 'needs the partition key in its primary key, so adopt it by a unique id '
                      || 'column of each row only when that column alone is unique).';
    END IF;
    -- (a unique column may hold NULLs: such a row cannot be addressed, and pgmemo's triggers
    -- would have nothing to queue or index it by)
    IF NOT (SELECT a.attnotnull FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = source AND a.attname = id_column) THEN
        RAISE EXCEPTION 'id column %.% may be NULL', source, quote_ident(id_column)
            USING ERRCODE = '0A000',
                  HINT = format('pgmemo addresses rows by id: ALTER TABLE %s ALTER COLUMN %I SET '
                      'NOT NULL; (a primary key is NOT NULL already)', source, id_column);
    END IF;

    SELECT * INTO v_content FROM memory_private._column(source, content_column);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no column %', source, quote_ident(content_column)
            USING ERRCODE = '42703';
    END IF;
    IF NOT memory_private._adoptable_type('content', v_content.type_oid) THEN
        RAISE EXCEPTION 'content column %.% is %, not a text type', source,
            quote_ident(content_column), v_content.type_name
            USING ERRCODE = '0A000';
    END IF;

    SELECT * INTO v_embedding FROM memory_private._column(source, embedding_column);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no column %', source, quote_ident(embedding_column)
            USING ERRCODE = '42703';
    END IF;
    IF NOT memory_private._adoptable_type('embedding', v_embedding.type_oid) THEN
        RAISE EXCEPTION 'embedding column %.% is %, not vector(n) or halfvec(n)', source,
            quote_ident(embedding_column), v_embedding.type_name
            USING ERRCODE = '0A000';
    END IF;
    IF v_embedding.typmod IS NULL OR v_embedding.typmod < 1 THEN
        RAISE EXCEPTION 'embedding column %.% is vector without a dimension', source,
            quote_ident(embedding_column)
            USING ERRCODE = '22023',
                  HINT = format('Give it one first: ALTER TABLE %s ALTER COLUMN %I TYPE vector(1536);',
                      source, embedding_column);
    END IF;
    IF v_embedding.typmod > (CASE WHEN memory_private._vector_type(v_embedding.type_oid) = 'halfvec' THEN 4000
        ELSE 2000 END) THEN
        RAISE EXCEPTION 'embedding column %.% is %: too many dimensions for an HNSW index '
            '(vector: 2000, halfvec: 4000)',
            source, quote_ident(embedding_column), v_embedding.type_name
            USING ERRCODE = '22023';
    END IF;

    SELECT d.domain INTO v_other FROM memory_private.domains AS d
    WHERE d.source_table = source AND d.embedding_column = adopt_table.embedding_column;
    IF FOUND THEN
        RAISE EXCEPTION 'column %.% is already adopted by domain "%"', source,
            quote_ident(embedding_column), v_other
            USING ERRCODE = '42710';
    END IF;

    v_d := memory_private._adopt(domain, source, id_column, content_column, embedding_column,
        memory_private._optional_columns(source, id_column, content_column, embedding_column),
        distance, embedding_model, v_embedding.typmod);
    -- (without indexes, the text index is filled later, without blocking the table's writers)
    PERFORM memory_private._text_index_make(v_d, create_indexes);
    IF create_indexes THEN
        FOR v_helper IN SELECT * FROM memory_private._adopted_helper_indexes(v_d) AS h
            WHERE NOT h.present
        LOOP
            IF to_regclass(format('%I.%I', v_schema, v_helper.index_name)) IS NOT NULL THEN
                EXECUTE format($sql$DROP INDEX %I.%I$sql$, v_schema, v_helper.index_name);  -- INVALID
            END IF;
            EXECUTE format($sql$CREATE INDEX %I ON %s %s$sql$, v_helper.index_name,
                memory_private._qualified(source), v_helper.definition);
        END LOOP;
        PERFORM memory.create_hnsw_index(domain, v_d.hnsw_m, v_d.hnsw_ef_construction);
        PERFORM memory.enqueue_missing(domain);
    END IF;
    -- (without indexes, the rows without an embedding are queued outside this transaction, which
    -- holds the table's writers from CREATE TRIGGER on: by memory.enqueue_missing, which `pgmemo
    -- adopt --concurrently` runs, or by run_maintenance)
END;
$$;

COMMENT ON FUNCTION memory.adopt_table(text, regclass, name, name, name, text, text, boolean) IS
'Make an existing table a pgmemo domain without copying data: id_column (bigint, integer, uuid, '
'text or varchar; primary key, or unique and NOT NULL), content_column (text) and '
'embedding_column '
'(vector(n): n is the dimension) of source. memory_data.<domain>_memories becomes a view over '
'it, so search, search_text, get, update, forget, the queue, the worker and diagnostics work '
'unchanged; columns named metadata (jsonb), embedding_model (text), created_at and updated_at '
'(timestamptz) are mapped too. Queue triggers go on the source (the application''s own writes '
'are queued) and its rows without an embedding are queued now (with create_indexes => true). '
'Full text: each row''s tsvector (of its content''s first 100,000 characters, where a factory '
'domain reads all of it: a longer row would make the application''s insert fail on the tsvector''s '
'1 MB limit) is kept beside the table, in pgmemo''s memory_data.<domain>_text (computed now for every row, '
'then by a trigger on the table; the table itself gets no full-text index). create_indexes: '
'build the HNSW and id-as-text indexes and fill the text index now (blocks writes meanwhile); '
'false: build them later without blocking, with memory.concurrent_index_statements, and fill '
'the text index in batches that never block writes (memory.fill_text_index, run_maintenance; '
'search_text finds only the rows filled so far until then), and leave the rows without an '
'embedding to memory.enqueue_missing or run_maintenance (queuing them all holds writes too). '
'The table (and each partition / child) must belong to pgmemo''s owner, a member of it or a '
'superuser, and run no code of another role''s (42501: pgmemo reads and writes it with its '
'owner''s rights; docs/SECURITY.md). Idempotent for the same '
'arguments. memory.drop_domain releases the table and never drops it.';
