-- The filter compiler: memory_private._filter_compile turns a filter (the language described at
-- the top of sql/32_filter.sql) into a SQL predicate on the domain table aliased t and the jsonb
-- array of its values ($3); _filter_node handles one filter object, _filter_op one operator on
-- one field. The helpers they use (typed expressions, errors) are in sql/32_filter.sql.

-- The most values a filter may hold, counted at any depth (memory_private._filter_compile).
CREATE OR REPLACE FUNCTION memory_private._filter_max_values()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 1000 $$;

-- One operator on one field. Appends the values it needs to params and returns the predicate.
CREATE OR REPLACE FUNCTION memory_private._filter_op(
    path text[], column_name text, op text, value jsonb, loc text, INOUT params jsonb,
    OUT sql text
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_col text := CASE WHEN column_name IS NOT NULL THEN 't.' || quote_ident(column_name) END;
    v_ts boolean := column_name IN ('created_at', 'updated_at');
    v_type text := jsonb_typeof(value);
    v_kind text;
    v_p text;                -- the parameter slot: ($3 -> i)
    v_x text;                -- the key's JSON value (metadata fields)
    v_cmp text := CASE op WHEN '$gt' THEN '>' WHEN '$gte' THEN '>=' WHEN '$lt' THEN '<'
        WHEN '$lte' THEN '<=' END;
    v_objs jsonb;
BEGIN
    IF op NOT IN ('$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$between',
                  '$like', '$ilike', '$exists') THEN
        PERFORM memory_private._filter_error(loc, CASE
            WHEN op IN ('$and', '$or', '$not')
                THEN format('%s is a logical operator: it goes where a field could, not inside a '
                    'field''s conditions', op)
            ELSE format('unknown operator %s', to_jsonb(op)) END);
    END IF;
    v_p := '($3 -> ' || jsonb_array_length(params) || ')';

    -- $exists: whether the key is present, even with a JSON null.
    IF op = '$exists' THEN
        IF v_type IS DISTINCT FROM 'boolean' THEN
            PERFORM memory_private._filter_error(loc, format('$exists takes true or false, got %s',
                memory_private._filter_typename(value)));
        END IF;
        v_x := coalesce(v_col, memory_private._filter_key_expr('t.metadata', path));
        sql := v_x || CASE WHEN value::boolean THEN ' IS NOT NULL' ELSE ' IS NULL' END;
        RETURN;
    END IF;

    -- The columns: id (text), created_at and updated_at (timestamptz); values are strings.
    IF column_name IS NOT NULL THEN
        IF op IN ('$in', '$nin') THEN
            IF v_type IS DISTINCT FROM 'array' OR jsonb_array_length(value) = 0 THEN
                PERFORM memory_private._filter_error(loc, format('%s takes a non-empty array, got %s',
                    op, CASE WHEN v_type = 'array' THEN 'an empty array'
                        ELSE memory_private._filter_typename(value) END));
            END IF;
            FOR i IN 0..jsonb_array_length(value) - 1 LOOP
                PERFORM memory_private._filter_column_value(column_name, value -> i,
                    loc || '[' || i || ']');
            END LOOP;
            params := params || jsonb_build_array(value);
            sql := format(CASE WHEN op = '$in' THEN '%s = ANY(%s)' ELSE '%s <> ALL(%s)' END, v_col,
                CASE WHEN v_ts THEN 'memory_private._filter_timestamptz_array' || v_p
                    ELSE 'memory_private._filter_text_array' || v_p END);
        ELSIF op = '$between' THEN
            PERFORM memory_private._filter_between_check(value, loc);
            PERFORM memory_private._filter_column_value(column_name, value -> 0, loc || '[0]');
            PERFORM memory_private._filter_column_value(column_name, value -> 1, loc || '[1]');
            params := params || jsonb_build_array(value -> 0, value -> 1);
            sql := format($e$%1$s BETWEEN ($3 ->> %2$s)%4$s AND ($3 ->> %3$s)%4$s$e$, v_col,
                jsonb_array_length(params) - 2, jsonb_array_length(params) - 1,
                CASE WHEN v_ts THEN '::timestamptz' ELSE '' END);
        ELSIF op IN ('$like', '$ilike') THEN
            IF v_ts THEN
                PERFORM memory_private._filter_error(loc, format('%s applies to strings; %s is a '
                    'timestamp (compare it with $gt, $lt or $between)', op, column_name));
            END IF;
            PERFORM memory_private._filter_like_check(op, value, loc);
            params := params || jsonb_build_array(value);
            sql := format($e$%s %s (%s #>> '{}')$e$, v_col,
                CASE op WHEN '$like' THEN 'LIKE' ELSE 'ILIKE' END, v_p);
        ELSE
            PERFORM memory_private._filter_column_value(column_name, value, loc);
            params := params || jsonb_build_array(value);
            sql := format($e$%s %s (%s #>> '{}')%s$e$, v_col,
                CASE op WHEN '$eq' THEN '=' WHEN '$ne' THEN '<>' ELSE v_cmp END, v_p,
                CASE WHEN v_ts THEN '::timestamptz' ELSE '' END);
        END IF;
        RETURN;
    END IF;

    v_x := memory_private._filter_key_expr('t.metadata', path);
    PERFORM memory_private._filter_value_check(value, loc);
    CASE
    WHEN op = '$eq' THEN
        -- the plain value's meaning: metadata @> {"a": {"b": value}} (GIN index)
        params := params || jsonb_build_array(memory_private._filter_nest(path, value));
        sql := 't.metadata @> ' || v_p;
    WHEN op = '$ne' THEN
        -- present and not equal (a missing key matches neither $eq nor $ne, as in langchain)
        params := params || jsonb_build_array(memory_private._filter_nest(path, value));
        sql := format('(%s IS NOT NULL AND NOT t.metadata @> %s)', v_x, v_p);
    WHEN op IN ('$in', '$nin') THEN
        IF v_type IS DISTINCT FROM 'array' OR jsonb_array_length(value) = 0 THEN
            PERFORM memory_private._filter_error(loc, format('%s takes a non-empty array, got %s',
                op, CASE WHEN v_type = 'array' THEN 'an empty array'
                    ELSE memory_private._filter_typename(value) END));
        END IF;
        -- (one aggregate: appending to a jsonb array copies it, 30 s for 15,000 values)
        SELECT jsonb_agg(memory_private._filter_nest(path, e.v) ORDER BY e.n) INTO v_objs
        FROM jsonb_array_elements(value) WITH ORDINALITY AS e (v, n);
        params := params || jsonb_build_array(v_objs);
        sql := format(CASE WHEN op = '$in' THEN 't.metadata @> ANY(%2$s)'
                ELSE '(%1$s IS NOT NULL AND NOT t.metadata @> ANY(%2$s))' END,
            v_x, 'memory_private._filter_jsonb_array' || v_p);
    WHEN op IN ('$like', '$ilike') THEN
        PERFORM memory_private._filter_like_check(op, value, loc);
        params := params || jsonb_build_array(value);
        -- $like in the "C" collation (the text index's: a 'prefix%' pattern uses it); $ilike in
        -- the database's, whose case folding reaches beyond ASCII ("C" folds only A-Z: 'émile'
        -- did not match "Émile")
        sql := format($e$%s %s (%s #>> '{}')$e$,
            CASE op WHEN '$like' THEN memory_private._filter_typed_expr('t.metadata', path, 'text')
                ELSE format('(%s COLLATE "default")',
                    memory_private._filter_typed_expr('t.metadata', path, 'text')) END,
            CASE op WHEN '$like' THEN 'LIKE' ELSE 'ILIKE' END, v_p);
    WHEN op = '$between' THEN
        PERFORM memory_private._filter_between_check(value, loc);
        v_kind := memory_private._filter_kind(value -> 0, loc || '[0]', op);
        IF jsonb_typeof(value -> 1) IS DISTINCT FROM jsonb_typeof(value -> 0) THEN
            PERFORM memory_private._filter_error(loc, format('$between bounds must have the same '
                'type, got %s and %s', memory_private._filter_typename(value -> 0),
                memory_private._filter_typename(value -> 1)));
        END IF;
        params := params || jsonb_build_array(value -> 0, value -> 1);
        sql := format('%s BETWEEN %s AND %s',
            memory_private._filter_typed_expr('t.metadata', path, v_kind),
            memory_private._filter_param_as('$3', jsonb_array_length(params) - 2, v_kind),
            memory_private._filter_param_as('$3', jsonb_array_length(params) - 1, v_kind));
    ELSE  -- $gt $gte $lt $lte: numbers as numbers, strings in code-point order, false < true
        v_kind := memory_private._filter_kind(value, loc, op);
        params := params || jsonb_build_array(value);
        sql := format('%s %s %s', memory_private._filter_typed_expr('t.metadata', path, v_kind),
            v_cmp, memory_private._filter_param_as('$3', jsonb_array_length(params) - 1, v_kind));
    END CASE;
END;
$$;

-- A filter object (a node of the tree). The plain metadata values of one object become one
-- containment (metadata @> {...}: the GIN index), the rest are ANDed.
CREATE OR REPLACE FUNCTION memory_private._filter_node(
    node jsonb, loc text, depth integer, INOUT params jsonb, OUT sql text
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_key text;
    v_value jsonb;
    v_loc text;
    v_plain jsonb := '{}';
    v_parts text[] := '{}';
    v_sub text[];
    v_r record;
    v_field record;
    v_op text;
BEGIN
    IF depth > 32 THEN
        PERFORM memory_private._filter_error(loc, 'nested more than 32 levels deep');
    END IF;
    IF jsonb_typeof(node) IS DISTINCT FROM 'object' THEN
        PERFORM memory_private._filter_error(loc, format('expected a filter object, got %s',
            memory_private._filter_typename(node)));
    END IF;
    IF node = '{}' THEN
        PERFORM memory_private._filter_error(loc, 'empty filter object');
    END IF;
    FOR v_key, v_value IN SELECT e.key, e.value FROM jsonb_each(node) AS e LOOP
        v_loc := loc || '.' || CASE WHEN v_key ~ '^[$A-Za-z_][A-Za-z0-9_.]*$' THEN v_key
            ELSE to_jsonb(v_key)::text END;
        IF v_key LIKE '$%' THEN
            IF v_key IN ('$and', '$or') THEN
                IF jsonb_typeof(v_value) IS DISTINCT FROM 'array' OR jsonb_array_length(v_value) = 0 THEN
                    PERFORM memory_private._filter_error(v_loc, format('%s takes a non-empty array '
                        'of filters, got %s', v_key, CASE WHEN jsonb_typeof(v_value) = 'array'
                            THEN 'an empty array' ELSE memory_private._filter_typename(v_value) END));
                END IF;
                v_sub := '{}';
                FOR i IN 0..jsonb_array_length(v_value) - 1 LOOP
                    v_r := memory_private._filter_node(v_value -> i, v_loc || '[' || i || ']',
                        depth + 1, params);
                    params := v_r.params;
                    v_sub := v_sub || v_r.sql;
                END LOOP;
                v_parts := v_parts || CASE WHEN cardinality(v_sub) = 1 THEN v_sub[1]
                    ELSE '(' || array_to_string(v_sub, CASE v_key WHEN '$and' THEN ' AND '
                        ELSE ' OR ' END) || ')' END;
            ELSIF v_key = '$not' THEN
                -- NOT p is "p IS NOT TRUE": a row where p is NULL (a missing key) is not p.
                IF jsonb_typeof(v_value) = 'object' THEN
                    v_r := memory_private._filter_node(v_value, v_loc, depth + 1, params);
                    params := v_r.params;
                    v_parts := v_parts || ('(' || v_r.sql || ') IS NOT TRUE');
                ELSIF jsonb_typeof(v_value) = 'array' AND jsonb_array_length(v_value) > 0 THEN
                    FOR i IN 0..jsonb_array_length(v_value) - 1 LOOP
                        v_r := memory_private._filter_node(v_value -> i, v_loc || '[' || i || ']',
                            depth + 1, params);
                        params := v_r.params;
                        v_parts := v_parts || ('(' || v_r.sql || ') IS NOT TRUE');
                    END LOOP;
                ELSE
                    PERFORM memory_private._filter_error(v_loc, format('$not takes a filter object '
                        'or a non-empty array of filters, got %s',
                        CASE WHEN jsonb_typeof(v_value) = 'array' THEN 'an empty array'
                            ELSE memory_private._filter_typename(v_value) END));
                END IF;
            ELSIF v_key IN ('$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin',
                            '$between', '$like', '$ilike', '$exists') THEN
                PERFORM memory_private._filter_error(v_loc, format('operator %s where a field was '
                    'expected (write {"field": {"%s": ...}})', v_key, v_key));
            ELSE
                PERFORM memory_private._filter_error(v_loc, format('unknown operator %s (logical '
                    'operators: $and, $or, $not)', to_jsonb(v_key)));
            END IF;
            CONTINUE;
        END IF;

        v_field := memory_private._filter_field(v_key, v_loc);
        IF jsonb_typeof(v_value) = 'object'
            AND EXISTS (SELECT FROM jsonb_object_keys(v_value) AS k WHERE k LIKE '$%') THEN
            -- an operator object: every key an operator, ANDed
            IF EXISTS (SELECT FROM jsonb_object_keys(v_value) AS k WHERE k NOT LIKE '$%') THEN
                PERFORM memory_private._filter_error(v_loc, 'mixes operators ($...) and plain keys '
                    'in one object (nest the plain keys under "$eq", or use a dotted key)');
            END IF;
            FOR v_op IN SELECT k FROM jsonb_object_keys(v_value) AS k LOOP
                v_r := memory_private._filter_op(v_field.path, v_field.column_name, v_op,
                    v_value -> v_op, v_loc || '.' || v_op, params);
                params := v_r.params;
                v_parts := v_parts || v_r.sql;
            END LOOP;
        ELSIF v_field.column_name IS NULL AND cardinality(v_field.path) = 1 THEN
            PERFORM memory_private._filter_value_check(v_value, v_loc);
            v_plain := v_plain || jsonb_build_object(v_field.path[1], v_value);
        ELSE
            v_r := memory_private._filter_op(v_field.path, v_field.column_name, '$eq', v_value,
                v_loc, params);
            params := v_r.params;
            v_parts := v_parts || v_r.sql;
        END IF;
    END LOOP;

    IF v_plain <> '{}' THEN
        params := params || jsonb_build_array(v_plain);
        v_parts := ('t.metadata @> ($3 -> ' || (jsonb_array_length(params) - 1) || ')') || v_parts;
    END IF;
    sql := CASE WHEN cardinality(v_parts) = 1 THEN v_parts[1]
        ELSE '(' || array_to_string(v_parts, ' AND ') || ')' END;
END;
$$;

-- The predicate of a plain filter (one containment: the filter is $3 -> 0).
CREATE OR REPLACE FUNCTION memory_private._filter_plain_predicate()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 't.metadata @> ($3 -> 0)' $$;

-- The filter as a SQL predicate on the domain table aliased t, and its values (the jsonb array
-- to pass as $3). NULL predicate: no filter (NULL or {}: every row). plain: the filter is one
-- containment, predicate t.metadata @> ($3 -> 0) (memory.search runs it through the cached plans
-- of its static branches, sql/36_search_static.sql).
CREATE OR REPLACE FUNCTION memory_private._filter_compile(
    filter jsonb, OUT predicate text, OUT params jsonb, OUT plain boolean
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_r record;
    v_text text;
BEGIN
    plain := false;
    IF filter IS NULL OR filter = '{}' THEN
        RETURN;
    END IF;
    IF jsonb_typeof(filter) <> 'object' THEN
        PERFORM memory_private._filter_error('$', format('a filter is a JSON object, got %s',
            memory_private._filter_typename(filter)));
    END IF;
    v_text := filter::text;
    IF length(v_text) > 100000 THEN
        PERFORM memory_private._filter_error('$', 'longer than 100000 characters');
    END IF;
    -- Bounded cost per row: every value is a comparison on every row the search reads (an $in
    -- list's a containment each, PostgreSQL cannot hash them here; an array's elements each
    -- against the row's array), so a filter holds at most _filter_max_values() values, counted
    -- at any depth and on every path (33,000 in two $in lists took a reader's search 96 s on
    -- 20,000 rows; 19,001 in a plain array, 41 s: stop 28).
    IF (SELECT count(*) FROM (
            SELECT FROM jsonb_path_query(filter, 'strict $.**') AS v (x)
            WHERE jsonb_typeof(v.x) NOT IN ('object', 'array')
            LIMIT memory_private._filter_max_values() + 1) AS c)
        > memory_private._filter_max_values() THEN
        RAISE EXCEPTION 'invalid filter at $: more than % values (every value in it counts, at '
            'any depth)', memory_private._filter_max_values()
            USING ERRCODE = '54000',
                  HINT = 'Split the search, or give the rows a shared metadata value to filter on.';
    END IF;
    -- The common case, plain values only (no operator, dotted key or column anywhere): one
    -- containment, without walking the tree. Read from the filter's text, without a query
    -- (every filtered search asks): in jsonb's text a key is a string followed by ": ", its
    -- quotes and backslashes escaped by a backslash, so an empty, dotted or column key at any
    -- depth is found, escapes included (a pattern without them missed the key a.b"c: stop 28);
    -- a value that looks like one only sends the filter the longer way, to the same predicate.
    IF strpos(v_text, '$') = 0
       AND v_text !~ '"(|id|created_at|updated_at|(?:[^"\\]|\\.)*\.(?:[^"\\]|\\.)*)": ' THEN
        predicate := memory_private._filter_plain_predicate();
        params := jsonb_build_array(filter);
        plain := true;
        RETURN;
    END IF;
    -- Bounded cost: the walk below grows with the square of the filter's keys (fields and
    -- operators, at any depth: 256 compiled in 11 ms, 1,000 in 0.46 s, 5,000 in 13 s), so a
    -- filter takes at most 256 of them. (One containment of plain values, above, takes any.)
    IF (SELECT count(*) FROM (
            SELECT FROM jsonb_path_query(filter, 'strict $.** ? (@.type() == "object").keyvalue()')
            LIMIT 257) AS k) > 256 THEN
        RAISE EXCEPTION 'invalid filter at $: more than 256 keys (fields and operators)'
            USING ERRCODE = '54000',
                  HINT = 'Use $in for many values of one field, or split the search.';
    END IF;
    v_r := memory_private._filter_node(filter, '$', 1, '[]'::jsonb);
    predicate := v_r.sql;
    params := v_r.params;
END;
$$;

-- The filter compiled for domain d (_filter_compile), refused (22023) when it reads a column an
-- adopted domain's table does not have: the view puts a constant in its place ('{}' for
-- metadata, NULL for created_at / updated_at), so the filter would silently match no row (or,
-- with $ne, $nin or $not, every row). Every search, count and explain compiles through it.
CREATE OR REPLACE FUNCTION memory_private._filter_for(
    d memory_private.domains, filter jsonb, OUT predicate text, OUT params jsonb, OUT plain boolean
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT c.predicate, c.params, c.plain INTO predicate, params, plain
    FROM memory_private._filter_compile(filter) AS c;
    IF NOT d.adopted OR predicate IS NULL THEN
        RETURN;
    END IF;
    SELECT string_agg(m.col, ', ' ORDER BY m.col) INTO v_missing
    FROM (VALUES ('metadata', d.metadata_column), ('created_at', d.created_column),
        ('updated_at', NULL)) AS m (col, source_column)
    WHERE strpos(predicate, 't.' || m.col) > 0
      AND (CASE m.col WHEN 'updated_at' THEN (memory_private._adopted_opt(d))[4]
          ELSE m.source_column END) IS NULL;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'invalid filter for domain "%": its table % has no % column', d.domain,
            d.source_table, v_missing
            USING ERRCODE = '22023',
                  DETAIL = 'An adopted domain reads metadata from a jsonb column named metadata '
                      || 'and created_at / updated_at from timestamptz columns of those names; '
                      || 'without one, a filter on it would match no row (or every row).',
                  HINT = 'Filter on what the table has (id always), or add the column to the '
                      || 'table and adopt it again.';
    END IF;
END;
$$;
