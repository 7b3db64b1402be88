-- The metadata filter language of memory.search, search_text, search_hybrid, count and
-- explain_search: what it is, and the helpers of its compiler (sql/33_filter_compile.sql,
-- memory_private._filter_compile) and of memory.create_metadata_index (sql/35_filter_api.sql).
--
-- A filter is a JSON object:
--   {"user": "ann"}                      plain value: equality for scalars, containment
--                                        (metadata @> ...) for arrays and objects
--   {"n": {"$gt": 5, "$lte": 9}}         $eq $ne $gt $gte $lt $lte $in $nin $between $like
--                                        $ilike $exists; several operators in one object: AND
--   {"a": 1, "b": 2}                     several fields: AND
--   {"$and": [...]}, {"$or": [...]}      non-empty arrays of filters
--   {"$not": {...}}, {"$not": [...]}     NOT a filter; NOT each of an array of filters
--   {"specs.screen": "OLED"}             dotted keys reach nested objects
--   {"created_at": {"$gte": "2025-01-01"}}   the columns id, created_at, updated_at
--   {"metadata.id": 7}                   the metadata key "id" (not the column)
--
-- The predicate never contains a value: every value goes into one jsonb array passed as $3
-- (EXECUTE ... USING), which the predicate indexes into ($3 -> 0, $3 ->> 1, ...). Keys are
-- names, written into the SQL as quoted literals (quote_literal) so that expression indexes on
-- them can match. Plain equality goes through metadata @> (the domain's GIN index); the typed
-- comparisons use exactly the expressions memory.create_metadata_index indexes
-- (memory_private._filter_typed_expr is the one place that spells them).
-- A malformed filter raises SQLSTATE 22023 naming the bad part ("invalid filter at $.a.$gt: ...").

-- The key's JSON value: <col> -> 'a' -> 'b' (NULL when a key on the way is missing).
CREATE OR REPLACE FUNCTION memory_private._filter_key_expr(col text, path text[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT '(' || col || string_agg(' -> ' || quote_literal(p.seg), '' ORDER BY p.ord) || ')'
    FROM unnest(path) WITH ORDINALITY AS p (seg, ord)
$$;

-- The key's value as a SQL number, text or boolean, NULL when it has another JSON type (so a
-- string never reaches a numeric comparison and nothing raises a cast error). Texts compare in
-- the "C" collation: code-point order, the same on every server, and LIKE 'prefix%' can use a
-- text index. memory.create_metadata_index builds its index on exactly this expression.
CREATE OR REPLACE FUNCTION memory_private._filter_typed_expr(col text, path text[], kind text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE kind
        WHEN 'number' THEN format(
            $e$(CASE WHEN jsonb_typeof(%1$s) = 'number' THEN (%1$s)::numeric END)$e$, x.e)
        WHEN 'text' THEN format(
            $e$((CASE WHEN jsonb_typeof(%1$s) = 'string' THEN (%1$s #>> '{}') END) COLLATE "C")$e$,
            x.e)
        WHEN 'boolean' THEN format(
            $e$(CASE WHEN jsonb_typeof(%1$s) = 'boolean' THEN (%1$s)::boolean END)$e$, x.e)
    END
    FROM (SELECT memory_private._filter_key_expr(col, path) AS e) AS x
$$;

-- The JSON value {"a": {"b": value}} for path {a, b}: what metadata @> needs for a nested key.
CREATE OR REPLACE FUNCTION memory_private._filter_nest(path text[], value jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_out jsonb := value;
BEGIN
    FOR i IN REVERSE cardinality(path)..1 LOOP
        v_out := jsonb_build_object(path[i], v_out);
    END LOOP;
    RETURN v_out;
END;
$$;

-- Arrays out of a JSON array parameter ($in, $nin). IMMUTABLE (STABLE for timestamps, whose
-- input depends on TimeZone): the planner evaluates them once on the call's values, so the
-- condition is a constant array an index (or GIN's bitmap scan) can use.
CREATE OR REPLACE FUNCTION memory_private._filter_jsonb_array(a jsonb)
RETURNS jsonb[]
LANGUAGE sql IMMUTABLE STRICT
SET search_path FROM CURRENT
AS $$ SELECT array_agg(e.v ORDER BY e.n) FROM jsonb_array_elements(a) WITH ORDINALITY AS e (v, n) $$;

CREATE OR REPLACE FUNCTION memory_private._filter_text_array(a jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT
SET search_path FROM CURRENT
AS $$
    SELECT array_agg(e.v ORDER BY e.n) FROM jsonb_array_elements_text(a) WITH ORDINALITY AS e (v, n)
$$;

CREATE OR REPLACE FUNCTION memory_private._filter_timestamptz_array(a jsonb)
RETURNS timestamptz[]
LANGUAGE sql STABLE STRICT
SET search_path FROM CURRENT
AS $$
    SELECT array_agg(e.v::timestamptz ORDER BY e.n)
    FROM jsonb_array_elements_text(a) WITH ORDINALITY AS e (v, n)
$$;

-- One error for every malformed filter: SQLSTATE 22023, the location of the bad part as a
-- JSON path ($ is the filter, $.a.$gt the $gt of field a, $.$or[1] the second branch of an $or).
CREATE OR REPLACE FUNCTION memory_private._filter_error(loc text, message text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    RAISE EXCEPTION 'invalid filter at %: %', loc, message
        USING ERRCODE = '22023',
              HINT = 'A filter is a JSON object of fields ({"key": value} or {"key": {"$op": '
                  || 'value}}) and logic ($and, $or: non-empty arrays of filters; $not: a filter '
                  || 'or an array of filters). Operators: $eq $ne $gt $gte $lt $lte $in $nin '
                  || '$between $like $ilike $exists.';
END;
$$;

-- The short name of a JSON value's type for error messages (an object, a string, ...).
CREATE OR REPLACE FUNCTION memory_private._filter_typename(v jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE jsonb_typeof(v) WHEN 'object' THEN 'an object' WHEN 'array' THEN 'an array'
        WHEN 'string' THEN 'a string' WHEN 'number' THEN 'a number'
        WHEN 'boolean' THEN 'a boolean' ELSE 'null' END
$$;

-- A key of the filter as a path: dots separate nested keys; a leading "metadata." addresses
-- metadata explicitly (for keys named like the columns: "metadata.id"). column: 'id',
-- 'created_at' or 'updated_at' when the key is one of the columns, else NULL.
CREATE OR REPLACE FUNCTION memory_private._filter_field(
    key text, loc text, OUT path text[], OUT column_name text
)
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF key = '' THEN
        PERFORM memory_private._filter_error(loc, 'empty field name');
    END IF;
    path := string_to_array(key, '.');
    IF path[1] = 'metadata' AND cardinality(path) > 1 THEN
        path := path[2:];
    ELSIF cardinality(path) = 1 AND key IN ('id', 'created_at', 'updated_at') THEN
        column_name := key;
    END IF;
    IF '' = ANY(path) THEN
        PERFORM memory_private._filter_error(loc,
            format('field name %s has an empty part (two dots, or a dot at an end)',
                to_jsonb(key)));
    END IF;
END;
$$;

-- The comparison kind of an ordered operator's value: number, text (a JSON string) or boolean.
CREATE OR REPLACE FUNCTION memory_private._filter_kind(value jsonb, loc text, op text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'number' THEN RETURN 'number';
    WHEN 'string' THEN RETURN 'text';
    WHEN 'boolean' THEN RETURN 'boolean';
    ELSE
        PERFORM memory_private._filter_error(loc, format('%s compares with a number, a string or '
            'a boolean, got %s', op, memory_private._filter_typename(value)));
    END CASE;
    RETURN NULL;
END;
$$;

-- Parameter element i of p as a SQL value of the kind (the right side of a typed comparison).
CREATE OR REPLACE FUNCTION memory_private._filter_param_as(p text, i integer, kind text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE kind
        WHEN 'number' THEN format('(%s -> %s)::numeric', p, i)
        WHEN 'boolean' THEN format('(%s -> %s)::boolean', p, i)
        ELSE format('(%s ->> %s)', p, i)
    END
$$;

-- The operand of $like or $ilike (op): a string pattern that PostgreSQL's LIKE accepts whatever
-- the rows, checked here (22023) rather than on the first row that reaches its end: a pattern
-- ending in an unfinished escape (a lone trailing backslash) failed with 22025 only on some rows,
-- so the outcome hung on the data and on the order of $or's branches; and at most
-- _filter_max_wildcards() % wildcards (the matcher recurses once per %: 30,000 of them exceeded
-- the stack on long values, again only on some rows).
CREATE OR REPLACE FUNCTION memory_private._filter_like_check(op text, value jsonb, loc text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'string' THEN
        PERFORM memory_private._filter_error(loc, format('%s takes a string pattern, got %s',
            op, memory_private._filter_typename(value)));
    END IF;
    IF (value #>> '{}') ~ '(^|[^\\])(\\\\)*\\$' THEN
        PERFORM memory_private._filter_error(loc, format('%s pattern ends with an unfinished '
            'escape (a lone backslash; write \\ for a backslash)', op));
    END IF;
    IF length(value #>> '{}') - length(replace(value #>> '{}', '%', ''))
            > memory_private._filter_max_wildcards() THEN
        PERFORM memory_private._filter_error(loc, format('%s pattern has more than %s %% '
            'wildcards', op, memory_private._filter_max_wildcards()));
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory_private._filter_max_wildcards()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 32 $$;

CREATE OR REPLACE FUNCTION memory_private._filter_between_check(value jsonb, loc text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'array' OR jsonb_array_length(value) <> 2 THEN
        PERFORM memory_private._filter_error(loc, format('$between takes a two-element array '
            '[low, high] (inclusive), got %s', CASE WHEN jsonb_typeof(value) = 'array'
                THEN 'an array of ' || jsonb_array_length(value) || ' elements'
                ELSE memory_private._filter_typename(value) END));
    END IF;
END;
$$;

-- A plain value, or the operand of $eq, $ne, $in or $nin, holds no key that starts with $: an
-- operator below a plain value would be read as data and match nothing ({"o": {"p": {"$gt":
-- 1}}}) or every row holding the key ({"n": {"$ne": {"$gt": 1}}}), silently. loc: where the
-- value is.
CREATE OR REPLACE FUNCTION memory_private._filter_value_check(value jsonb, loc text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_key jsonb;
BEGIN
    IF jsonb_typeof(value) IN ('object', 'array') THEN
        SELECT k.v INTO v_key
        FROM jsonb_path_query(value,
            'strict $.** ? (@.type() == "object").keyvalue() ? (@.key starts with "$").key')
            AS k (v)
        LIMIT 1;
        IF v_key IS NOT NULL THEN
            PERFORM memory_private._filter_error(loc, format('%s inside a value: an operator '
                'applies to a field (for a nested key write {"a.b": {"$gt": 1}}), and a value '
                'is matched as data, where a key starting with $ is refused', v_key));
        END IF;
    END IF;
END;
$$;

-- A value compared with a column: a string; for created_at / updated_at a valid timestamp.
CREATE OR REPLACE FUNCTION memory_private._filter_column_value(column_name text, value jsonb, loc text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ts timestamptz;
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'string' THEN
        PERFORM memory_private._filter_error(loc, format('%s is compared with a string%s, got %s',
            column_name, CASE WHEN column_name = 'id' THEN ''
                ELSE ' (a timestamp such as "2025-01-31" or "2025-01-31T12:00:00Z")' END,
            memory_private._filter_typename(value)));
    END IF;
    IF column_name <> 'id' THEN
        BEGIN
            v_ts := (value #>> '{}')::timestamptz;
        EXCEPTION WHEN data_exception THEN  -- (bad format, out of range, a zone offset...)
            PERFORM memory_private._filter_error(loc, format('%s is not a timestamp',
                value));
        END;
    END IF;
END;
$$;
