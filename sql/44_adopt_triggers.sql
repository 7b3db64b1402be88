-- The INSTEAD OF trigger of an adopted domain's view (45_adopt.sql): writes through the view go
-- to the source table. The queue triggers on the source table itself are the same family as a
-- factory table's (memory_private._wire, 43_wire.sql).

-- INSTEAD OF INSERT / UPDATE / DELETE on the view. TG_ARGV: [0] source table, [1] id column,
-- [2] id type, [3] content column, [4] embedding column, [5] metadata column ('' = none),
-- [6] embedding model column ('' = none).
CREATE OR REPLACE FUNCTION memory_private._adopted_view_write()
RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_source text := TG_ARGV[0];
    v_id text := TG_ARGV[1];
    v_id_type text := TG_ARGV[2];
    v_content text := TG_ARGV[3];
    v_embedding text := TG_ARGV[4];
    v_metadata text := nullif(TG_ARGV[5], '');
    v_model text := nullif(TG_ARGV[6], '');
    v_cols text[] := ARRAY[]::text[];
    v_vals text[] := ARRAY[]::text[];
    v_set text[] := ARRAY[]::text[];
    v_count integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('DELETE FROM %s AS s WHERE s.%I = $1::%s', v_source, v_id, v_id_type)
        USING OLD.id;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        RETURN CASE WHEN v_count > 0 THEN OLD END;
    END IF;
    IF v_metadata IS NULL AND NEW.metadata IS NOT NULL AND NEW.metadata <> '{}'::jsonb
        AND (TG_OP = 'INSERT' OR NEW.metadata IS DISTINCT FROM OLD.metadata) THEN
        RAISE EXCEPTION 'table % has no jsonb metadata column: metadata cannot be stored', v_source
            USING ERRCODE = '0A000',
                  HINT = 'Store without metadata, or add a column metadata jsonb to the table '
                      || 'and adopt it again.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        v_cols := ARRAY[format('%I', v_content), format('%I', v_embedding)];
        v_vals := ARRAY['$1', '$2'];
        IF NEW.id IS NOT NULL THEN
            v_cols := v_cols || format('%I', v_id);
            v_vals := v_vals || format('$3::%s', v_id_type);
        END IF;
        IF v_metadata IS NOT NULL THEN
            v_cols := v_cols || format('%I', v_metadata);
            v_vals := v_vals || '$4'::text;
        END IF;
        IF v_model IS NOT NULL THEN
            v_cols := v_cols || format('%I', v_model);
            v_vals := v_vals || '$5'::text;
        END IF;
        EXECUTE format('INSERT INTO %s AS s (%s) VALUES (%s) RETURNING s.%I::text', v_source,
            array_to_string(v_cols, ', '), array_to_string(v_vals, ', '), v_id)
        INTO NEW.id
        USING NEW.content, NEW.embedding, NEW.id, coalesce(NEW.metadata, '{}'::jsonb),
            NEW.embedding_model;
        RETURN NEW;
    END IF;
    -- UPDATE: write only what changed, and only while the row still holds the content this
    -- statement read (re-checked under the row lock): an embedding computed for older content
    -- is never written over newer content.
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'the id of an adopted row cannot be changed through pgmemo'
            USING ERRCODE = '0A000';
    END IF;
    IF NEW.content IS DISTINCT FROM OLD.content THEN
        v_set := v_set || format('%I = $1', v_content);
    END IF;
    IF NEW.embedding::real[] IS DISTINCT FROM OLD.embedding::real[] THEN
        v_set := v_set || format('%I = $2', v_embedding);
    END IF;
    IF v_metadata IS NOT NULL AND NEW.metadata IS DISTINCT FROM OLD.metadata THEN
        v_set := v_set || format('%I = $4', v_metadata);
    END IF;
    IF v_model IS NOT NULL AND NEW.embedding_model IS DISTINCT FROM OLD.embedding_model THEN
        v_set := v_set || format('%I = $5', v_model);
    END IF;
    IF cardinality(v_set) = 0 THEN
        RETURN NEW;
    END IF;
    EXECUTE format('UPDATE %s AS s SET %s WHERE s.%I = $3::%s AND s.%I::text IS NOT DISTINCT FROM $6',
        v_source, array_to_string(v_set, ', '), v_id, v_id_type, v_content)
    USING NEW.content, NEW.embedding, OLD.id, NEW.metadata, NEW.embedding_model, OLD.content;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN CASE WHEN v_count > 0 THEN NEW END;
END;
$$;
