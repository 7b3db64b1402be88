-- Importing memories from another store (pgmemo import-sqlite): memory.import_rows writes a
-- batch with its own ids and timestamps, idempotently, and memory.get_many reads rows back with
-- their embeddings so the import can be verified field by field and vector by vector.
--
-- Dynamic SQL: each statement is one dollar-quoted template, identifiers through %I, values
-- through USING ($n). The optional mapped columns (metadata, model, created, touch) are computed
-- first, each into named pieces from their own small template ('' when the mapping has no such
-- column: _col in the column list, _val the value inserted, _set an assignment, _differs a
-- comparison), and passed into the statement through %s.

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
    -- The optional mapped columns' pieces of the UPDATE ...
    v_metadata_set text := CASE WHEN v_d.metadata_column IS NULL THEN ''
        ELSE format($f$, %I = coalesce(s.metadata, '{}')$f$, v_d.metadata_column) END;
    v_model_set text := CASE WHEN v_d.model_column IS NULL THEN '' ELSE format($f$,
            %1$I = CASE WHEN s.embedding IS NOT NULL THEN $7
                WHEN t.%2$I::text = s.content THEN t.%1$I END$f$,
        v_d.model_column, v_d.content_column) END;
    v_created_set text := CASE WHEN v_d.created_column IS NULL THEN ''
        ELSE format($f$, %1$I = coalesce(s.created_at, t.%1$I)$f$, v_d.created_column) END;
    v_touch_set text := CASE WHEN v_d.touch_column IS NULL THEN ''
        ELSE format($f$, %I = now()$f$, v_d.touch_column) END;
    v_metadata_differs text := CASE WHEN v_d.metadata_column IS NULL THEN '' ELSE format($f$
            OR t.%I IS DISTINCT FROM coalesce(s.metadata, '{}')$f$, v_d.metadata_column) END;
    v_created_differs text := CASE WHEN v_d.created_column IS NULL THEN '' ELSE format($f$
            OR t.%1$I IS DISTINCT FROM coalesce(s.created_at, t.%1$I)$f$, v_d.created_column) END;
    -- ... and of the INSERT.
    v_metadata_col text := CASE WHEN v_d.metadata_column IS NULL THEN ''
        ELSE format($f$, %I$f$, v_d.metadata_column) END;
    v_metadata_val text := CASE WHEN v_d.metadata_column IS NULL THEN ''
        ELSE $f$, coalesce(u.metadata, '{}')$f$ END;
    v_model_col text := CASE WHEN v_d.model_column IS NULL THEN ''
        ELSE format($f$, %I$f$, v_d.model_column) END;
    v_model_val text := CASE WHEN v_d.model_column IS NULL THEN ''
        ELSE $f$, CASE WHEN u.embedding IS NOT NULL THEN $7 END$f$ END;
    v_created_col text := CASE WHEN v_d.created_column IS NULL THEN ''
        ELSE format($f$, %I$f$, v_d.created_column) END;
    v_created_val text := CASE WHEN v_d.created_column IS NULL THEN ''
        ELSE $f$, coalesce(u.created_at, now())$f$ END;
    v_touch_col text := CASE WHEN v_d.touch_column IS NULL THEN ''
        ELSE format($f$, %I$f$, v_d.touch_column) END;
    v_touch_val text := CASE WHEN v_d.touch_column IS NULL THEN ''
        ELSE $f$, coalesce(u.updated_at, u.created_at, now())$f$ END;
BEGIN
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
    PERFORM memory_private._check_metadata_column(v_d, metadatas);
    -- The optional arrays as arrays of NULLs, so both statements below unnest them alike.
    metadatas := coalesce(metadatas, array_fill(NULL::jsonb, ARRAY[v_n]));
    embeddings := coalesce(embeddings, array_fill(embeddings[1], ARRAY[v_n]));
    created_ats := coalesce(created_ats, array_fill(NULL::timestamptz, ARRAY[v_n]));
    updated_ats := coalesce(updated_ats, array_fill(NULL::timestamptz, ARRAY[v_n]));

    -- Existing rows: written only where something differs (so a re-run changes nothing). An
    -- embedding given replaces the stored one; none keeps it unless the content changed (then
    -- the row is queued, like any content change). The statements are templates over the
    -- domain's column mapping (a column the mapping lacks is neither compared nor written).
    -- $1 ids, $2 contents, $3 metadatas, $4 embeddings, $5 created_ats, $6 updated_ats, $7 model.
    EXECUTE format($sql$
        UPDATE %1$s AS t SET
            %3$I = s.content,
            %4$I = CASE WHEN s.embedding IS NOT NULL THEN s.embedding::%6$s
                WHEN t.%3$I::text = s.content THEN t.%4$I END%7$s%8$s%9$s%10$s
        FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::%5$s.vector[], $5::timestamptz[])
            AS s (id, content, metadata, embedding, created_at)
        WHERE t.%2$I::text = s.id AND (t.%3$I::text IS DISTINCT FROM s.content%11$s%12$s
            OR (s.embedding IS NOT NULL AND (t.%4$I IS NULL
                OR NOT t.%4$I OPERATOR(%5$s.=) s.embedding::%6$s)))
    $sql$,
        memory_private._relation(v_d, true), v_d.id_column, v_d.content_column,
        v_d.embedding_column, memory_private._vector_schema(),
        memory_private._embedding_column_type(v_d.embedding_type, v_d.dimension),
        v_metadata_set, v_model_set, v_created_set, v_touch_set,
        v_metadata_differs, v_created_differs)
    USING ids, contents, metadatas, embeddings, created_ats, updated_ats, v_d.embedding_model;
    GET DIAGNOSTICS v_updated = ROW_COUNT;

    IF v_d.distributed THEN
        EXECUTE format($sql$
            SELECT count(*) FROM %1$s AS t WHERE t.%2$I::text = ANY ($1)
        $sql$, memory_private._relation(v_d), v_d.id_column)
        INTO v_existing USING ids;
    END IF;
    -- New rows keep their own timestamps (updated_at defaults to created_at, then now()).
    EXECUTE format($sql$
        INSERT INTO %1$s AS t (%2$I, %3$I, %4$I%7$s%8$s%9$s%10$s)
        SELECT u.id::%5$s, u.content, u.embedding%11$s%12$s%13$s%14$s
        FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::%6$s.vector[], $5::timestamptz[],
            $6::timestamptz[]) AS u (id, content, metadata, embedding, created_at, updated_at)
        ON CONFLICT (%2$I) DO NOTHING
    $sql$,
        memory_private._relation(v_d, true), v_d.id_column, v_d.content_column,
        v_d.embedding_column, memory_private._id_type(v_d), memory_private._vector_schema(),
        v_metadata_col, v_model_col, v_created_col, v_touch_col,
        v_metadata_val, v_model_val, v_created_val, v_touch_val)
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
'Returns the counts inserted, updated and unchanged. An adopted domain takes what its mapping '
'has columns for (metadata, created_at; its own updated_at is the application''s).';

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
    RETURN QUERY EXECUTE format($sql$
        SELECT t.id, t.content, t.metadata, CASE WHEN $2 THEN t.embedding::%3$s.vector END,
            t.embedding_model, t.created_at, t.updated_at
        FROM (
            SELECT u.id, min(u.ord) AS ord FROM unnest($1) WITH ORDINALITY AS u (id, ord)
            GROUP BY u.id
        ) AS w
        JOIN %1$I.%2$I AS t ON t.id = w.id ORDER BY w.ord
    $sql$, v_d.table_schema, v_d.table_name, memory_private._vector_schema())
    USING ids, coalesce(with_embeddings, true);
END;
$$;

COMMENT ON FUNCTION memory.get_many(text, text[], boolean) IS
'Fetch memories by id with everything stored: content, metadata, the embedding itself (NULL '
'when with_embeddings is false, to move less data), its model and the timestamps, in the order '
'of ids (an id asked twice comes back once, where first asked; ids that do not exist are '
'absent). What '
'`pgmemo import-sqlite` reads back to verify an import. At most 100,000 ids per call (54000).';
