-- Importing memories from another store (pgmemo import-sqlite): memory.import_rows writes a
-- batch with its own ids and timestamps, idempotently, and memory.get_many reads rows back with
-- their embeddings so the import can be verified field by field and vector by vector.

CREATE OR REPLACE FUNCTION memory.import_rows(
    domain text,
    ids text[],
    contents text[],
    metadatas jsonb[] DEFAULT NULL,
    embeddings vector[] DEFAULT NULL,
    created_ats timestamptz[] DEFAULT NULL,
    updated_ats timestamptz[] DEFAULT NULL
)
RETURNS TABLE (inserted bigint, updated bigint, unchanged bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'write');
    v_n integer := coalesce(cardinality(ids), 0);
    v_bad record;
    v_inserted bigint;
    v_updated bigint;
    v_existing bigint;
BEGIN
    IF v_d.adopted THEN
        RAISE EXCEPTION 'domain "%" is adopted: import into a domain made by memory.create_domain',
            v_d.domain
            USING ERRCODE = '0A000';
    END IF;
    IF cardinality(contents) IS DISTINCT FROM v_n
        OR (metadatas IS NOT NULL AND cardinality(metadatas) <> v_n)
        OR (embeddings IS NOT NULL AND cardinality(embeddings) <> v_n)
        OR (created_ats IS NOT NULL AND cardinality(created_ats) <> v_n)
        OR (updated_ats IS NOT NULL AND cardinality(updated_ats) <> v_n) THEN
        RAISE EXCEPTION 'ids has % elements: contents, metadatas, embeddings, created_ats and '
            'updated_ats must have as many (or be NULL)', v_n
            USING ERRCODE = '2202E';
    END IF;
    PERFORM memory_private._check_batch('ids', v_n);
    IF v_n = 0 THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    SELECT u.ord INTO v_bad FROM unnest(ids, contents) WITH ORDINALITY AS u (i, c, ord)
    WHERE u.i IS NULL OR u.c IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ids[%] or contents[%] is NULL', v_bad.ord, v_bad.ord USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_rows(v_d, metadatas, embeddings, ids);
    PERFORM memory_private._check_contents(v_d, contents);
    -- The optional arrays as arrays of NULLs, so both statements below unnest them alike.
    metadatas := coalesce(metadatas, array_fill(NULL::jsonb, ARRAY[v_n]));
    embeddings := coalesce(embeddings, array_fill(embeddings[1], ARRAY[v_n]));
    created_ats := coalesce(created_ats, array_fill(NULL::timestamptz, ARRAY[v_n]));
    updated_ats := coalesce(updated_ats, array_fill(NULL::timestamptz, ARRAY[v_n]));

    -- Existing rows: written only where something differs (so a re-run changes nothing). An
    -- embedding given replaces the stored one; none keeps it unless the content changed (then
    -- the row is queued, like any content change).
    EXECUTE format(
        'UPDATE %1$I.%2$I AS t SET content = s.content, metadata = s.metadata, '
        'embedding = coalesce(s.embedding, t.embedding), '
        'embedding_model = CASE WHEN s.embedding IS NOT NULL THEN $7 ELSE t.embedding_model END, '
        'created_at = coalesce(s.created_at, t.created_at) '
        'FROM (SELECT u.id, u.content, coalesce(u.metadata, ''{}'') AS metadata, u.embedding, '
        '      u.created_at FROM unnest($1, $2, $3, $4, $5) AS u (id, content, metadata, embedding, '
        '      created_at)) AS s '
        'WHERE t.id = s.id AND ((t.content, t.metadata, t.created_at) IS DISTINCT FROM '
        '(s.content, s.metadata, coalesce(s.created_at, t.created_at)) '
        'OR (s.embedding IS NOT NULL '
        '    AND (t.embedding IS NULL OR NOT t.embedding OPERATOR(%3$s.=) s.embedding)))',
        v_d.table_schema, v_d.table_name, memory_private._vector_schema())
    USING ids, contents, metadatas, embeddings, created_ats, updated_ats, v_d.embedding_model;
    GET DIAGNOSTICS v_updated = ROW_COUNT;

    IF v_d.distributed THEN
        EXECUTE format('SELECT count(*) FROM %I.%I AS t WHERE t.id = ANY ($1)',
            v_d.table_schema, v_d.table_name)
        INTO v_existing USING ids;
    END IF;
    -- New rows keep their own timestamps (updated_at defaults to created_at, then now()).
    EXECUTE format(
        'INSERT INTO %I.%I AS t (id, content, metadata, embedding, embedding_model, created_at, '
        'updated_at) '
        'SELECT u.id, u.content, coalesce(u.metadata, ''{}''), u.embedding, '
        'CASE WHEN u.embedding IS NOT NULL THEN $7 END, coalesce(u.created_at, now()), '
        'coalesce(u.updated_at, u.created_at, now()) '
        'FROM unnest($1, $2, $3, $4, $5, $6) AS u (id, content, metadata, embedding, created_at, '
        'updated_at) '
        'ON CONFLICT (id) DO NOTHING',
        v_d.table_schema, v_d.table_name)
    USING ids, contents, metadatas, embeddings, created_ats, updated_ats, v_d.embedding_model;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_d.distributed THEN
        -- Citus reports the rows it sent to the shards, not those ON CONFLICT kept.
        v_inserted := v_n - v_existing;
        PERFORM memory_private._dist_sync_jobs(v_d, ids);
    END IF;
    RETURN QUERY SELECT v_inserted, v_updated, v_n - v_inserted - v_updated;
END;
$$;

COMMENT ON FUNCTION memory.import_rows(
    text, text[], text[], jsonb[], vector[], timestamptz[], timestamptz[]
) IS
'Import a batch of memories with their own ids (and optionally metadata, embeddings, '
'created_at, updated_at; arrays of the same length as ids), in one transaction, idempotently: '
'new ids are inserted with their timestamps, existing ones are updated only where content, '
'metadata, created_at or a given embedding differ. Rows without an embedding are queued. '
'Returns the counts inserted, updated and unchanged. Domains made by create_domain only.';

CREATE OR REPLACE FUNCTION memory.get_many(
    domain text, ids text[], with_embeddings boolean DEFAULT TRUE
)
RETURNS TABLE (
    id text, content text, metadata jsonb, embedding vector, embedding_model text,
    created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain_for(domain, 'read');
BEGIN
    PERFORM memory_private._check_batch('ids', cardinality(ids));
    RETURN QUERY EXECUTE format(
        'SELECT t.id, t.content, t.metadata, CASE WHEN $2 THEN t.embedding::%3$s.vector END, t.embedding_model, '
        't.created_at, t.updated_at '
        'FROM (SELECT u.id, min(u.ord) AS ord FROM unnest($1) WITH ORDINALITY AS u (id, ord) '
        'GROUP BY u.id) AS w '
        'JOIN %1$I.%2$I AS t ON t.id = w.id ORDER BY w.ord',
        v_d.table_schema, v_d.table_name, memory_private._vector_schema())
    USING ids, coalesce(with_embeddings, true);
END;
$$;

COMMENT ON FUNCTION memory.get_many(text, text[], boolean) IS
'Fetch memories by id with everything stored: content, metadata, the embedding itself (NULL '
'when with_embeddings is false, to move less data), its model and the timestamps, in the order '
'of ids (an id asked twice comes back once, where first asked; ids that do not exist are '
'absent). What '
'`pgmemo import-sqlite` reads back to verify an import. At most 100,000 ids per call (54000).';
