-- Writing memories: memory.store, memory.store_many, memory.update, memory.forget,
-- memory.forget_many, memory.clear, memory.get.
-- Rows stored without an embedding are queued by the domain table's triggers.

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
    v_id text;
BEGIN
    IF content IS NULL THEN
        RAISE EXCEPTION 'content must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_contents(v_d, ARRAY[content]);
    metadata := memory_private._check_metadata(metadata);
    PERFORM memory_private._check_embedding(v_d, embedding);
    IF id IS NULL THEN
        EXECUTE format(
            'INSERT INTO %I.%I AS t (content, metadata, embedding, embedding_model) '
            'VALUES ($1, $2, $3, CASE WHEN $3 IS NOT NULL THEN $4 END) RETURNING t.id',
            v_d.table_schema, v_d.table_name)
        INTO v_id USING content, metadata, embedding, v_d.embedding_model;
    ELSIF v_d.adopted THEN
        -- The table is a view (INSTEAD OF triggers), which has no ON CONFLICT: update the row,
        -- insert it when there is none. A concurrent insert of the same id fails on the source
        -- table's unique key rather than writing twice.
        EXECUTE format(
            'UPDATE %I.%I AS t SET content = $1, metadata = $2, '
            'embedding = coalesce($3, t.embedding), '
            'embedding_model = CASE WHEN $3 IS NOT NULL THEN $4 ELSE t.embedding_model END '
            'WHERE t.id = $5 RETURNING t.id',
            v_d.table_schema, v_d.table_name)
        INTO v_id USING content, metadata, embedding, v_d.embedding_model, id;
        IF v_id IS NULL THEN
            EXECUTE format(
                'INSERT INTO %I.%I AS t (id, content, metadata, embedding, embedding_model) '
                'VALUES ($5, $1, $2, $3, CASE WHEN $3 IS NOT NULL THEN $4 END) RETURNING t.id',
                v_d.table_schema, v_d.table_name)
            INTO v_id USING content, metadata, embedding, v_d.embedding_model, id;
        END IF;
    ELSE
        EXECUTE format(
            'INSERT INTO %I.%I AS t (id, content, metadata, embedding, embedding_model) '
            'VALUES ($5, $1, $2, $3, CASE WHEN $3 IS NOT NULL THEN $4 END) '
            'ON CONFLICT (id) DO UPDATE SET content = excluded.content, '
            'metadata = excluded.metadata, '
            'embedding = coalesce(excluded.embedding, t.embedding), '
            'embedding_model = CASE WHEN excluded.embedding IS NOT NULL '
            'THEN excluded.embedding_model ELSE t.embedding_model END '
            'RETURNING t.id',
            v_d.table_schema, v_d.table_name)
        INTO v_id USING content, metadata, embedding, v_d.embedding_model, id;
    END IF;
    IF v_d.distributed THEN
        -- Citus: no queue triggers on the shards (sql/48_distributed.sql).
        PERFORM memory_private._dist_sync_jobs(v_d, ARRAY[v_id]);
    END IF;
    RETURN v_id;
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
    EXECUTE format('SELECT u.ord, %1$s.vector_dims(u.e) AS dims '
        'FROM unnest($1) WITH ORDINALITY AS u (e, ord) '
        'WHERE u.e IS NOT NULL AND %1$s.vector_dims(u.e) <> $2 LIMIT 1',
        memory_private._vector_schema())
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
    v_ids text[];
    v_i integer;
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

    IF v_d.adopted THEN
        -- A view over the application's table: its ids come from the table (a bigint identity,
        -- say), and upserts go row by row through memory.store.
        FOR v_i IN 1 .. v_n LOOP
            RETURN NEXT memory.store(v_d.domain, contents[v_i], coalesce(metadatas[v_i], '{}'),
                embeddings[v_i], ids[v_i]);
        END LOOP;
        RETURN;
    END IF;

    -- Ids are decided here so they can be returned in input order. Rows are written (and
    -- locked) in id order, the order in which the embedding queue locks them.
    SELECT array_agg(coalesce(ids[u.ord], gen_random_uuid()::text) ORDER BY u.ord) INTO v_ids
    FROM generate_subscripts(contents, 1) AS u (ord);

    EXECUTE format(
        'INSERT INTO %I.%I AS t (id, content, metadata, embedding, embedding_model) '
        'SELECT u.id, u.content, coalesce(u.metadata, ''{}''), u.embedding, '
        'CASE WHEN u.embedding IS NOT NULL THEN $5 END '
        'FROM unnest($1, $2, $3, $4) AS u (id, content, metadata, embedding) '
        'ORDER BY u.id '
        'ON CONFLICT (id) DO UPDATE SET content = excluded.content, '
        'metadata = excluded.metadata, '
        'embedding = coalesce(excluded.embedding, t.embedding), '
        'embedding_model = CASE WHEN excluded.embedding IS NOT NULL '
        'THEN excluded.embedding_model ELSE t.embedding_model END',
        v_d.table_schema, v_d.table_name)
    USING v_ids, contents,
        coalesce(metadatas, array_fill(NULL::jsonb, ARRAY[v_n])),
        coalesce(embeddings, array_fill(embeddings[1], ARRAY[v_n])),
        v_d.embedding_model;
    IF v_d.distributed THEN
        PERFORM memory_private._dist_sync_jobs(v_d, v_ids);
    END IF;
    RETURN QUERY SELECT unnest(v_ids);
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
BEGIN
    IF metadata IS NOT NULL THEN
        PERFORM memory_private._check_metadata(metadata);
    END IF;
    IF content IS NOT NULL THEN
        PERFORM memory_private._check_contents(v_d, ARRAY[content]);
    END IF;
    PERFORM memory_private._check_embedding(v_d, embedding);
    EXECUTE format(
        'UPDATE %I.%I AS t SET content = coalesce($2, t.content), '
        'metadata = coalesce($3, t.metadata), '
        'embedding = coalesce($4, t.embedding), '
        'embedding_model = CASE WHEN $4 IS NOT NULL THEN $5 ELSE t.embedding_model END '
        'WHERE t.id = $1',
        v_d.table_schema, v_d.table_name)
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

CREATE OR REPLACE FUNCTION memory.forget(domain text, id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_count integer;
BEGIN
    EXECUTE format('DELETE FROM %I.%I AS t WHERE t.id = $1', v_d.table_schema, v_d.table_name)
    USING id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_d.distributed THEN
        PERFORM memory_private._dist_drop_jobs(v_d, ARRAY[id]);
    END IF;
    RETURN v_count > 0;
END;
$$;

COMMENT ON FUNCTION memory.forget(text, text) IS
'Delete a memory (and its queued embedding job). Returns false when the id does not exist.';

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
    EXECUTE format('DELETE FROM %I.%I AS t WHERE t.id = ANY ($1)', v_d.table_schema, v_d.table_name)
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
    -- row inserted concurrently survives with its job, and the delete trigger dequeues.
    EXECUTE format('DELETE FROM %I.%I AS t', v_d.table_schema, v_d.table_name);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_d.distributed THEN
        -- Citus: no dequeue trigger on the shards; the domain's (and a re-embed's) jobs go.
        DELETE FROM memory_private.embedding_queue AS q
        WHERE q.domain = v_d.domain OR q.domain IN (
            SELECT r.shadow_domain FROM memory_private.reembeds AS r WHERE r.domain = v_d.domain);
        RETURN v_count;
    END IF;
    -- Jobs whose row is gone (the dequeue trigger is off during a bulk load).
    EXECUTE format(
        'DELETE FROM memory_private.embedding_queue AS q WHERE q.domain = $1 '
        'AND NOT EXISTS (SELECT FROM %I.%I AS t WHERE t.id = q.row_id)',
        v_d.table_schema, v_d.table_name)
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
    RETURN QUERY EXECUTE format(
        'SELECT t.id, t.content, t.metadata, t.embedding IS NOT NULL, t.created_at, t.updated_at '
        'FROM %I.%I AS t WHERE t.id = $1',
        v_d.table_schema, v_d.table_name)
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
