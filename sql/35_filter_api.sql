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
    v_expr text;
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
    -- The name is taken by another relation of the schema (an adopted domain whose name shares
    -- its first 37 characters with another's on a table of the same schema, or the
    -- application's own object): one made unique by the table's oid. (IF NOT EXISTS alone
    -- skipped the build with a NOTICE and returned the other relation's name.)
    IF EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        WHERE c.relname = v_name
          AND c.relnamespace = (SELECT r.relnamespace FROM pg_catalog.pg_class AS r
                                WHERE r.oid = v_phys.relation)
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_index AS i
                          WHERE i.indexrelid = c.oid AND i.indrelid = v_phys.relation)) THEN
        v_name := (left(v_name, 40) || '_' || left(md5(v_phys.relation::oid::text || '/' || key
            || '/' || v_kind), 16))::name;
    END IF;
    -- v_phys.relation: a regclass, quoted; v_expr: the compiled expression (keys as literals)
    EXECUTE format($q$
        CREATE INDEX IF NOT EXISTS %1$I ON %2$s ((%3$s)) $q$,
        v_name, v_phys.relation, v_expr);
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = v_phys.relation AND c.relname = v_name) THEN
        RAISE EXCEPTION 'relation "%" already exists beside %: no index made for domain "%"',
            v_name, v_phys.relation, v_d.domain
            USING ERRCODE = '42P07';
    END IF;
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
'its source table. It blocks writes to the table while it builds; idempotent; returns the '
'index name (a name another relation of the schema holds gets a suffix unique to the table; '
'42P07 if still none is made).';

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
