-- The filter language's public functions besides the searches: memory.count (rows matching a
-- filter) and memory.create_metadata_index (the btree expression indexes that the compiled
-- predicates of sql/32_filter.sql and 33_filter_compile.sql use for ranges on a key).

-- The index name create_metadata_index gives a key of a domain (at most 63 bytes).
CREATE OR REPLACE FUNCTION memory_private._metadata_index_name(
    d memory_private.domains, key text, kind text
)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT (left(CASE WHEN d.adopted THEN 'pgmemo_' || d.domain ELSE d.table_name END, 44)
        || '_f_' || left(md5(key || '/' || kind), 12))::name
$$;

CREATE OR REPLACE FUNCTION memory.create_metadata_index(domain text, key text, type text DEFAULT 'text')
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    -- (read: the caller's access and, on an adopted table, _assert_inert under an ACCESS SHARE
    -- lock, which the SHARE lock of CREATE INDEX extends without a deadlock between two calls)
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
    v_phys record := memory_private._physical(v_d);
    v_field record;
    v_meta name;
    v_kind text;
    v_name name;
    v_alt name;
    v_expr text;
    v_probe record;
    v_found name;
BEGIN
    IF key IS NULL OR type IS NULL THEN
        RAISE EXCEPTION 'key and type must not be NULL' USING ERRCODE = '22004';
    END IF;
    v_field := memory_private._filter_field(key, '$.' || key);
    v_kind := lower(type);
    IF v_field.column_name IS NOT NULL THEN
        IF v_kind <> (CASE WHEN v_field.column_name = 'id' THEN 'text' ELSE 'timestamptz' END) THEN
            RAISE EXCEPTION 'column % is %: create_metadata_index(domain, %L, %L)', key,
                CASE WHEN v_field.column_name = 'id' THEN 'text' ELSE 'timestamptz' END, key,
                CASE WHEN v_field.column_name = 'id' THEN 'text' ELSE 'timestamptz' END
                USING ERRCODE = '22023';
        END IF;
    ELSIF v_kind NOT IN ('number', 'text', 'boolean') THEN
        RAISE EXCEPTION 'unknown metadata index type %', quote_literal(type)
            USING ERRCODE = '22023',
                  HINT = 'Use number ($gt/$lt/$between on JSON numbers), text (on JSON strings, '
                      || 'also LIKE ''prefix%'') or boolean.';
    END IF;
    IF v_phys.relation IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain USING ERRCODE = '42P01';
    END IF;
    -- On an adopted domain the index goes on the source table's columns behind the view.
    IF v_d.adopted THEN
        v_meta := (memory_private._optional_columns(v_d.source_table, v_d.id_column,
            v_d.content_column, v_d.embedding_column))[
            CASE v_field.column_name WHEN 'created_at' THEN 3 WHEN 'updated_at' THEN 4 ELSE 1 END];
        IF v_field.column_name = 'id' THEN
            v_meta := v_d.id_column;
        END IF;
        IF v_meta IS NULL THEN
            RAISE EXCEPTION 'the source table of adopted domain "%" has no % column to index',
                v_d.domain, coalesce(v_field.column_name, 'metadata jsonb')
                USING ERRCODE = '42703';
        END IF;
    ELSE
        v_meta := coalesce(v_field.column_name, 'metadata');
    END IF;
    v_expr := CASE WHEN v_field.column_name IS NOT NULL THEN quote_ident(v_meta)
        ELSE memory_private._filter_typed_expr(quote_ident(v_meta), v_field.path, v_kind) END;
    v_name := memory_private._metadata_index_name(v_d, key, v_kind);
    -- The name when another relation of the schema holds that one (an adopted domain whose name
    -- shares its first 37 characters with another's on a table of the same schema, or the
    -- application's own object): one made unique by the table's oid.
    v_alt := (left(v_name, 40) || '_' || left(md5(v_phys.relation::oid::text || '/' || key
        || '/' || v_kind), 16))::name;
    -- One call at a time per table: two could both find no index and build two.
    PERFORM pg_advisory_xact_lock(hashtext('pgmemo.metadata_index'), v_phys.relation::oid::integer);
    -- Idempotent under either name: a valid index of the table under one of them, on exactly
    -- this expression (the deparsed key, its collation and operator class, no predicate), is the answer and nothing
    -- is built. The first call may have fallen back to v_alt and the relation holding v_name be
    -- gone since: building under v_name then made a second index on the same expression (every
    -- write paid for both). The expression is compared as PostgreSQL deparses it, against an
    -- index built on an empty temporary copy of the table's columns (catalog work only).
    EXECUTE format($q$
        CREATE TEMP TABLE pgmemo_metadata_index_probe (LIKE %1$s)
    $q$, v_phys.relation);
    EXECUTE format($q$
        CREATE INDEX pgmemo_metadata_index_probe_i ON pg_temp.pgmemo_metadata_index_probe ((%1$s))
    $q$, v_expr);
    SELECT pg_catalog.pg_get_indexdef(i.indexrelid, 1, false) AS expr, i.indcollation[0] AS coll,
        i.indclass[0] AS opclass
    INTO v_probe
    FROM pg_catalog.pg_index AS i
    WHERE i.indexrelid = 'pg_temp.pgmemo_metadata_index_probe_i'::regclass;
    DROP TABLE pg_temp.pgmemo_metadata_index_probe;
    SELECT c.relname INTO v_found
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
    WHERE i.indrelid = v_phys.relation AND c.relname IN (v_name, v_alt)
      AND i.indisvalid AND i.indnatts = 1 AND i.indpred IS NULL AND am.amname = 'btree'
      AND pg_catalog.pg_get_indexdef(i.indexrelid, 1, false) = v_probe.expr
      AND i.indcollation[0] = v_probe.coll AND i.indclass[0] = v_probe.opclass
    ORDER BY c.relname = v_name DESC
    LIMIT 1;
    IF FOUND THEN
        RETURN v_found;
    END IF;
    -- A name no relation of the schema holds: v_name, else v_alt (an index there that is not
    -- this one, INVALID or on another expression, keeps its name: diagnose reports an INVALID
    -- one).
    IF EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        WHERE c.relname = v_name
          AND c.relnamespace = (SELECT r.relnamespace FROM pg_catalog.pg_class AS r
                                WHERE r.oid = v_phys.relation)) THEN
        v_name := v_alt;
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        WHERE c.relname = v_name
          AND c.relnamespace = (SELECT r.relnamespace FROM pg_catalog.pg_class AS r
                                WHERE r.oid = v_phys.relation)) THEN
        RAISE EXCEPTION 'relation "%" already exists beside %: no index made for domain "%"',
            v_name, v_phys.relation, v_d.domain
            USING ERRCODE = '42P07',
                  HINT = 'Rename or drop it (an INVALID index: REINDEX or drop it), then try again.';
    END IF;
    -- v_phys.relation: a regclass, quoted; v_expr: the compiled expression (keys as literals)
    EXECUTE format($q$
        CREATE INDEX %1$I ON %2$s ((%3$s)) $q$,
        v_name, v_phys.relation, v_expr);
    RETURN v_name;
END;
$$;

COMMENT ON FUNCTION memory.create_metadata_index(text, text, text) IS
'A btree index for filters on one key of the domain''s metadata (dotted keys reach nested '
'values), on exactly the expression the compiled filter uses for type: number ($gt, $gte, $lt, '
'$lte, $between on JSON numbers), text (the same on JSON strings, in the "C" collation, and '
'$like ''prefix%''), or boolean. Equality, $in and plain values use the GIN index every domain '
'of pgmemo''s own has already (an adopted table has none unless its owner made one: pgmemo does '
'not add it to the application''s table). key may also be created_at or updated_at (type '
'timestamptz) or id (type text): a '
'plain index on that column (updated_at has one already). An adopted domain''s index goes on '
'its source table. It blocks writes to the table while it builds; returns the index name. '
'Idempotent: a valid index of the table on the same expression under either of its names is '
'returned and nothing is built (an INVALID one or another relation keeps the first name, and '
'the index gets the second, with a suffix unique to the table; 42P07 when both are taken).';

CREATE OR REPLACE FUNCTION memory.count(domain text, filter jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
    v_f record := memory_private._filter_for(v_d, filter);
    v_count bigint;
BEGIN
    -- the compiled predicate reads its values from $3 (memory_private._filter_compile)
    EXECUTE format($q$
        SELECT count(*) FROM %1$I.%2$I AS t WHERE %3$s $q$,
        v_d.table_schema, v_d.table_name, coalesce(v_f.predicate, 'true'))
    INTO v_count
    USING NULL::integer, NULL::integer, v_f.params;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.count(text, jsonb) IS
'The number of memories in the domain that match filter (the filter language of memory.search; '
'NULL or {}: every row), embedded or not. Uses the filter''s indexes like a search does; an '
'unselective filter on a big domain reads the table.';
