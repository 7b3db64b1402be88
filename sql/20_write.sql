-- Writing memories: memory.store, memory.store_many, memory.update, memory.forget,
-- memory.forget_many, memory.clear, memory.get.
--
-- One write path for every domain: each statement is one template over the domain's column
-- mapping in the registry (relation, id, content, embedding, and the optional metadata, model,
-- created and touch columns), the same for a table pgmemo made and an adopted one. Rows are
-- addressed by id as text (t.<id>::text = $1: an adopted table has an index on that expression
-- unless its id is text); ids given for new rows are cast to the id column's type.
-- The writers never leave a stale embedding: a content change without a new embedding clears
-- it (and its model) in the same statement (the table's unstale trigger, sql/43_wire.sql, is
-- the rule for writes that bypass pgmemo). Rows stored without an embedding are queued by the
-- table's triggers (on Citus by memory_private._dist_sync_jobs).
--
-- Dynamic SQL: each statement is one dollar-quoted template, identifiers through %I, values
-- through USING ($n). The optional mapped columns are computed first, each into named pieces
-- from their own small template ('' when the mapping has no such column: _col in a column
-- list, _val the value written, _set an assignment), and passed into the statement through %s,
-- so the statement reads top to bottom with one placeholder per piece.

-- Metadata can only be stored where the mapping has a metadata column (22023 names the table).
CREATE OR REPLACE FUNCTION memory_private._check_metadata_column(
    d memory_private.domains, metadatas jsonb[]
)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF d.metadata_column IS NULL AND EXISTS (
        SELECT FROM unnest(metadatas) AS u (m) WHERE u.m IS NOT NULL AND u.m <> '{}'::jsonb
    ) THEN
        RAISE EXCEPTION 'table % has no jsonb metadata column: metadata cannot be stored',
            d.source_table
            USING ERRCODE = '0A000',
                  HINT = 'Store without metadata, or add a column metadata jsonb to the table '
                      || 'and adopt it again.';
    END IF;
END;
$$;

-- The upsert of rows with ids: $1 ids, $2 contents, $3 metadatas, $4 embeddings, $5 model,
-- $6 now() (the touch column's value, written and taken from excluded: Citus takes neither a
-- STABLE function nor a parameter in ON CONFLICT DO UPDATE).
-- Written in id order (the order the embedding queue locks rows in). On a conflict, content
-- and metadata are replaced; the embedding given is stored, else the old one is kept only
-- while the content is unchanged. Returns the ids written, as text.
CREATE OR REPLACE FUNCTION memory_private._upsert_sql(d memory_private.domains)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_metadata_col text := CASE WHEN d.metadata_column IS NULL THEN ''
        ELSE format($f$, %I$f$, d.metadata_column) END;
    v_metadata_val text := CASE WHEN d.metadata_column IS NULL THEN ''
        ELSE $f$, coalesce(u.metadata, '{}')$f$ END;
    v_metadata_set text := CASE WHEN d.metadata_column IS NULL THEN ''
        ELSE format($f$, %1$I = excluded.%1$I$f$, d.metadata_column) END;
    v_model_col text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE format($f$, %I$f$, d.model_column) END;
    v_model_val text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE $f$, CASE WHEN u.embedding IS NOT NULL THEN $5 END$f$ END;
    v_model_set text := CASE WHEN d.model_column IS NULL THEN '' ELSE format($f$,
            %1$I = CASE WHEN excluded.%2$I IS NOT NULL THEN excluded.%1$I
                WHEN t.%3$I::text = excluded.%3$I::text THEN t.%1$I END$f$,
        d.model_column, d.embedding_column, d.content_column) END;
    v_touch_col text := CASE WHEN d.touch_column IS NULL THEN ''
        ELSE format($f$, %I$f$, d.touch_column) END;
    v_touch_val text := CASE WHEN d.touch_column IS NULL THEN '' ELSE ', $6' END;
    v_touch_set text := CASE WHEN d.touch_column IS NULL THEN ''
        ELSE format($f$, %1$I = excluded.%1$I$f$, d.touch_column) END;
BEGIN
    RETURN format($sql$
        INSERT INTO %1$s AS t (%2$I, %3$I, %4$I%7$s%8$s%9$s)
        SELECT u.id::%5$s, u.content, u.embedding%10$s%11$s%12$s
        FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::%6$s[])
            AS u (id, content, metadata, embedding)
        ORDER BY u.id::%5$s
        ON CONFLICT (%2$I) DO UPDATE SET
            %3$I = excluded.%3$I,
            %4$I = CASE WHEN excluded.%4$I IS NOT NULL THEN excluded.%4$I
                WHEN t.%3$I::text = excluded.%3$I::text THEN t.%4$I END%13$s%14$s%15$s
        RETURNING t.%2$I::text
    $sql$,
        memory_private._relation(d, true), d.id_column, d.content_column, d.embedding_column,
        memory_private._id_type(d), memory_private._vector_schema() || '.vector',
        v_metadata_col, v_model_col, v_touch_col,
        v_metadata_val, v_model_val, v_touch_val,
        v_metadata_set, v_model_set, v_touch_set);
END;
$$;

-- The insert of new rows without ids (the table's default makes them): $1 contents,
-- $2 metadatas, $3 embeddings, $4 model. Returns the new ids as text[], in input order (into a
-- local table, rows are inserted, and RETURNING emits them, in the order of the SELECT; not
-- used for a distributed table, see _write_rows).
CREATE OR REPLACE FUNCTION memory_private._insert_sql(d memory_private.domains)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_metadata_col text := CASE WHEN d.metadata_column IS NULL THEN ''
        ELSE format($f$, %I$f$, d.metadata_column) END;
    v_metadata_val text := CASE WHEN d.metadata_column IS NULL THEN ''
        ELSE $f$, coalesce(u.metadata, '{}')$f$ END;
    v_model_col text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE format($f$, %I$f$, d.model_column) END;
    v_model_val text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE $f$, CASE WHEN u.embedding IS NOT NULL THEN $4 END$f$ END;
BEGIN
    RETURN format($sql$
        WITH written AS (
            INSERT INTO %1$s AS t (%3$I, %4$I%6$s%7$s)
            SELECT u.content, u.embedding%8$s%9$s
            FROM unnest($1::text[], $2::jsonb[], $3::%5$s[])
                WITH ORDINALITY AS u (content, metadata, embedding, ord)
            ORDER BY u.ord
            RETURNING t.%2$I::text AS id
        )
        SELECT array_agg(w.id) FROM written AS w
    $sql$,
        memory_private._relation(d, true), d.id_column, d.content_column, d.embedding_column,
        memory_private._vector_schema() || '.vector',
        v_metadata_col, v_model_col,
        v_metadata_val, v_model_val);
END;
$$;

-- Write rows (the checks done): those with an id upserted, those without inserted; returns
-- every id in input order. Shared by memory.store and memory.store_many.
CREATE OR REPLACE FUNCTION memory_private._write_rows(
    d memory_private.domains, contents text[], metadatas jsonb[], embeddings vector[], ids text[]
)
RETURNS text[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_n integer := cardinality(contents);
    v_new text[];
    v_out text[];
BEGIN
    metadatas := coalesce(metadatas, array_fill(NULL::jsonb, ARRAY[v_n]));
    embeddings := coalesce(embeddings, array_fill(embeddings[1], ARRAY[v_n]));  -- (NULL vectors)
    ids := coalesce(ids, array_fill(NULL::text, ARRAY[v_n]));
    IF d.distributed THEN
        -- Citus routes the rows of one INSERT to many shards and returns them in any order:
        -- the ids are made here (a distributed domain's ids are text, made like its default).
        ids := ARRAY(SELECT coalesce(u.i, gen_random_uuid()::text)
            FROM unnest(ids) WITH ORDINALITY AS u (i, o) ORDER BY u.o);
    END IF;
    IF EXISTS (SELECT FROM unnest(ids) AS u (i) WHERE u.i IS NOT NULL) THEN
        EXECUTE memory_private._upsert_sql(d)
        USING
            (SELECT array_agg(u.i) FROM unnest(ids) AS u (i) WHERE u.i IS NOT NULL),
            (SELECT array_agg(u.c ORDER BY u.o) FROM unnest(ids, contents) WITH ORDINALITY
                AS u (i, c, o) WHERE u.i IS NOT NULL),
            (SELECT array_agg(u.m ORDER BY u.o) FROM unnest(ids, metadatas) WITH ORDINALITY
                AS u (i, m, o) WHERE u.i IS NOT NULL),
            (SELECT array_agg(u.e ORDER BY u.o) FROM unnest(ids, embeddings) WITH ORDINALITY
                AS u (i, e, o) WHERE u.i IS NOT NULL),
            d.embedding_model, now();
    END IF;
    IF EXISTS (SELECT FROM unnest(ids) AS u (i) WHERE u.i IS NULL) THEN
        EXECUTE memory_private._insert_sql(d)
        INTO v_new
        USING
            (SELECT array_agg(u.c ORDER BY u.o) FROM unnest(ids, contents) WITH ORDINALITY
                AS u (i, c, o) WHERE u.i IS NULL),
            (SELECT array_agg(u.m ORDER BY u.o) FROM unnest(ids, metadatas) WITH ORDINALITY
                AS u (i, m, o) WHERE u.i IS NULL),
            (SELECT array_agg(u.e ORDER BY u.o) FROM unnest(ids, embeddings) WITH ORDINALITY
                AS u (i, e, o) WHERE u.i IS NULL),
            d.embedding_model;
    END IF;
    -- The ids in input order: given ones as given, new ones in the order they were made.
    SELECT array_agg(coalesce(w.i, v_new[w.k]) ORDER BY w.o)
    INTO v_out
    FROM (
        SELECT u.i, u.o, (count(*) FILTER (WHERE u.i IS NULL) OVER (ORDER BY u.o))::integer AS k
        FROM unnest(ids) WITH ORDINALITY AS u (i, o)
    ) AS w;
    IF d.distributed THEN
        -- Citus: no queue triggers on the shards (sql/48_distributed.sql).
        PERFORM memory_private._dist_sync_jobs(d, v_out);
    END IF;
    RETURN v_out;
END;
$$;

CREATE OR REPLACE FUNCTION memory.store(
    domain text,
    content text,
    metadata jsonb DEFAULT '{}',
    embedding vector DEFAULT NULL,
    id text DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
BEGIN
    IF content IS NULL THEN
        RAISE EXCEPTION 'content must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_contents(v_d, ARRAY[content]);
    metadata := memory_private._check_metadata(metadata);
    PERFORM memory_private._check_metadata_column(v_d, ARRAY[metadata]);
    PERFORM memory_private._check_embedding(v_d.dimension, v_d.domain, embedding);
    RETURN (memory_private._write_rows(v_d, ARRAY[content], ARRAY[metadata], ARRAY[embedding],
        ARRAY[id]))[1];
END;
$$;

COMMENT ON FUNCTION memory.store(text, text, jsonb, vector, text) IS
'Store one memory and return its id. With id, upsert: content and metadata are replaced; an '
'embedding given is stored, otherwise the old one is kept only when the content is unchanged. '
'Without an embedding the row is queued for the embedding workers.';

-- The per-row arrays of memory.store_many and memory.import_rows: every metadata a JSON object
-- of at most 1 MB (64 MB together), every embedding of the domain's dimension (NULL elements
-- allowed), no id twice.
CREATE OR REPLACE FUNCTION memory_private._check_rows(
    d memory_private.domains, metadatas jsonb[], embeddings vector[], ids text[]
)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_bad record;
BEGIN
    SELECT u.ord, jsonb_typeof(u.m) AS t INTO v_bad
    FROM unnest(metadatas) WITH ORDINALITY AS u (m, ord)
    WHERE u.m IS NOT NULL AND jsonb_typeof(u.m) <> 'object' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'metadatas[%] must be a JSON object, got a JSON %', v_bad.ord, v_bad.t
            USING ERRCODE = '22023';
    END IF;
    SELECT u.ord, pg_column_size(u.m) AS bytes INTO v_bad
    FROM unnest(metadatas) WITH ORDINALITY AS u (m, ord)
    WHERE pg_column_size(u.m) > memory_private._max_metadata_bytes() LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'metadatas[%] is % bytes; at most % are accepted', v_bad.ord, v_bad.bytes,
            memory_private._max_metadata_bytes()
            USING ERRCODE = '54000';
    END IF;
    IF (SELECT sum(pg_column_size(u.m)) FROM unnest(metadatas) AS u (m)) > 67108864 THEN
        RAISE EXCEPTION 'metadatas are % bytes together; one call takes at most 67108864',
            (SELECT sum(pg_column_size(u.m)) FROM unnest(metadatas) AS u (m))
            USING ERRCODE = '54000', HINT = 'Split the batch into smaller calls.';
    END IF;
    EXECUTE format($sql$
        SELECT u.ord, %1$s.vector_dims(u.e) AS dims
        FROM unnest($1) WITH ORDINALITY AS u (e, ord)
        WHERE u.e IS NOT NULL AND %1$s.vector_dims(u.e) <> $2 LIMIT 1
    $sql$, memory_private._vector_schema())
    INTO v_bad USING embeddings, d.dimension;
    IF v_bad.ord IS NOT NULL THEN
        RAISE EXCEPTION 'embeddings[%] has % dimensions, domain "%" expects %',
            v_bad.ord, v_bad.dims, d.domain, d.dimension
            USING ERRCODE = '22000';
    END IF;
    SELECT u.i INTO v_bad FROM unnest(ids) AS u (i) WHERE u.i IS NOT NULL
    GROUP BY u.i HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'duplicate id % in ids', quote_literal(v_bad.i) USING ERRCODE = '22023';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.store_many(
    domain text,
    contents text[],
    metadatas jsonb[] DEFAULT NULL,
    embeddings vector[] DEFAULT NULL,
    ids text[] DEFAULT NULL
)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_n integer := coalesce(cardinality(contents), 0);
    v_bad record;
BEGIN
    IF v_n = 0 THEN
        RETURN;
    END IF;
    PERFORM memory_private._check_batch('contents', v_n);
    IF metadatas IS NOT NULL AND cardinality(metadatas) <> v_n THEN
        RAISE EXCEPTION 'metadatas has % elements, contents has %', cardinality(metadatas), v_n
            USING ERRCODE = '2202E';
    END IF;
    IF embeddings IS NOT NULL AND cardinality(embeddings) <> v_n THEN
        RAISE EXCEPTION 'embeddings has % elements, contents has %', cardinality(embeddings), v_n
            USING ERRCODE = '2202E';
    END IF;
    IF ids IS NOT NULL AND cardinality(ids) <> v_n THEN
        RAISE EXCEPTION 'ids has % elements, contents has %', cardinality(ids), v_n
            USING ERRCODE = '2202E';
    END IF;

    SELECT u.ord INTO v_bad FROM unnest(contents) WITH ORDINALITY AS u (c, ord)
    WHERE u.c IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'contents[%] is NULL', v_bad.ord USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_rows(v_d, metadatas, embeddings, ids);
    PERFORM memory_private._check_contents(v_d, contents);

    PERFORM memory_private._check_metadata_column(v_d, metadatas);
    RETURN QUERY SELECT unnest(memory_private._write_rows(v_d, contents, metadatas, embeddings, ids));
END;
$$;

COMMENT ON FUNCTION memory.store_many(text, text[], jsonb[], vector[], text[]) IS
'Store many memories in one statement; returns their ids in input order. metadatas, embeddings '
'and ids are optional arrays of the same length as contents (NULL elements allowed). Rows '
'without embeddings are queued in one statement-level pass. At most 100,000 contents and 64 MB '
'per call (54000).';

CREATE OR REPLACE FUNCTION memory.update(
    domain text,
    id text,
    content text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    embedding vector DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_count integer;
    v_metadata_set text := CASE WHEN v_d.metadata_column IS NULL THEN ''
        ELSE format($f$, %1$I = coalesce($3, t.%1$I)$f$, v_d.metadata_column) END;
    v_model_set text := CASE WHEN v_d.model_column IS NULL THEN '' ELSE format($f$,
            %1$I = CASE WHEN $4 IS NOT NULL THEN $5
                WHEN $2 IS NULL OR $2 = t.%2$I::text THEN t.%1$I END$f$,
        v_d.model_column, v_d.content_column) END;
    v_touch_set text := CASE WHEN v_d.touch_column IS NULL THEN ''
        ELSE format($f$, %I = now()$f$, v_d.touch_column) END;
BEGIN
    IF metadata IS NOT NULL THEN
        PERFORM memory_private._check_metadata(metadata);
        PERFORM memory_private._check_metadata_column(v_d, ARRAY[metadata]);
    END IF;
    IF content IS NOT NULL THEN
        PERFORM memory_private._check_contents(v_d, ARRAY[content]);
    END IF;
    PERFORM memory_private._check_embedding(v_d.dimension, v_d.domain, embedding);
    -- $1 id, $2 content, $3 metadata, $4 embedding, $5 model.
    EXECUTE format($sql$
        UPDATE %1$s AS t SET
            %3$I = coalesce($2, t.%3$I),
            %4$I = CASE WHEN $4 IS NOT NULL THEN $4::%5$s
                WHEN $2 IS NULL OR $2 = t.%3$I::text THEN t.%4$I END%6$s%7$s%8$s
        WHERE t.%2$I::text = $1
    $sql$,
        memory_private._relation(v_d, true), v_d.id_column, v_d.content_column,
        v_d.embedding_column,
        memory_private._embedding_column_type(v_d.embedding_type, v_d.dimension),
        v_metadata_set, v_model_set, v_touch_set)
    USING id, content, metadata, embedding, v_d.embedding_model;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_d.distributed AND v_count > 0 AND (content IS NOT NULL OR embedding IS NOT NULL) THEN
        PERFORM memory_private._dist_sync_jobs(v_d, ARRAY[id]);
    END IF;
    RETURN v_count > 0;
END;
$$;

COMMENT ON FUNCTION memory.update(text, text, text, jsonb, vector) IS
'Update a memory; NULL arguments leave that field as it is (metadata is replaced, not merged). '
'Changing the content without a new embedding clears the old embedding and queues the row, so a '
'stale embedding is never served. Returns false when the id does not exist.';

CREATE OR REPLACE FUNCTION memory.forget_many(domain text, ids text[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_count bigint;
BEGIN
    PERFORM memory_private._check_batch('ids', cardinality(ids));
    EXECUTE format($sql$
        DELETE FROM %1$s AS t WHERE t.%2$I::text = ANY ($1)
    $sql$, memory_private._relation(v_d, true), v_d.id_column)
    USING ids;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_d.distributed THEN
        PERFORM memory_private._dist_drop_jobs(v_d, ids);
    END IF;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.forget_many(text, text[]) IS
'Delete the memories with these ids (and their queued embedding jobs) in one statement. '
'Returns how many existed; unknown and NULL ids are ignored. At most 100,000 ids per call '
'(54000).';

CREATE OR REPLACE FUNCTION memory.forget(domain text, id text)
RETURNS boolean
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT memory.forget_many(domain, ARRAY[id]) > 0
$$;

COMMENT ON FUNCTION memory.forget(text, text) IS
'Delete a memory (and its queued embedding job). Returns false when the id does not exist.';

CREATE OR REPLACE FUNCTION memory.clear(domain text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_count bigint;
BEGIN
    IF v_d.adopted THEN
        RAISE EXCEPTION 'domain "%" is adopted: its rows belong to %, which memory.clear '
            'does not empty', v_d.domain, v_d.source_table
            USING ERRCODE = '42809',
                  HINT = 'Delete them in the application''s table, or use memory.forget_many.';
    END IF;
    -- A DELETE, not a TRUNCATE: readers and writers keep going (no ACCESS EXCLUSIVE lock), a
    -- row inserted concurrently survives with its job, and the delete trigger dequeues. The rows
    -- locked in id order first, as every writer of several rows locks them (a plain DELETE
    -- locked them in the table's physical order and deadlocked with a worker's completion;
    -- stop 36's review); Citus refuses FOR UPDATE over shards: there a plain DELETE.
    EXECUTE format(CASE WHEN v_d.distributed THEN $sql$
        DELETE FROM %1$s AS t
    $sql$ ELSE $sql$
        DELETE FROM %1$s AS t
        WHERE t.id IN (SELECT l.id FROM %1$s AS l ORDER BY l.id FOR UPDATE)
    $sql$ END, memory_private._relation(v_d, true));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_d.distributed THEN
        -- Citus: no dequeue trigger on the shards; the domain's (and a re-embed's) jobs go.
        DELETE FROM memory_private.embedding_queue AS q
        WHERE q.domain = v_d.domain OR q.domain IN (
            SELECT r.shadow_domain FROM memory_private.reembeds AS r WHERE r.domain = v_d.domain);
        RETURN v_count;
    END IF;
    -- Jobs whose row is gone (the dequeue trigger is off during a bulk load).
    EXECUTE format($sql$
        DELETE FROM memory_private.embedding_queue AS q
        WHERE q.domain = $1 AND NOT EXISTS (SELECT FROM %1$s AS t WHERE t.%2$I::text = q.row_id)
    $sql$, memory_private._relation(v_d, true), v_d.id_column)
    USING v_d.domain;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION memory.clear(text) IS
'Delete every memory of a domain and its queued embedding jobs; the domain, its settings and '
'its indexes stay. Returns how many rows were deleted. Refused for adopted domains (their '
'rows belong to the application''s table).';

-- plpgsql cannot have an input and an output parameter both named id, so the public
-- memory.get (whose contract names both id) is an SQL wrapper over this function.
CREATE OR REPLACE FUNCTION memory_private._get(domain text, row_id text)
RETURNS TABLE (
    id text, content text, metadata jsonb, has_embedding boolean,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT t.id, t.content, t.metadata, t.embedding IS NOT NULL, t.created_at, t.updated_at
        FROM %1$I.%2$I AS t WHERE t.id = $1
    $sql$, v_d.table_schema, v_d.table_name)
    USING row_id;
END;
$$;

CREATE OR REPLACE FUNCTION memory.get(domain text, id text)
RETURNS TABLE (
    id text, content text, metadata jsonb, has_embedding boolean,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT * FROM memory_private._get($1, $2)
$$;

COMMENT ON FUNCTION memory.get(text, text) IS
'Fetch one memory by id: content, metadata, whether it has an embedding, timestamps. '
'No row when the id does not exist.';
