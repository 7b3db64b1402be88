-- Domains: the table factory (memory.create_domain), memory.drop_domain and the memory.domains
-- view.

-- The row triggers of a domain's table are made by memory_private._wire (sql/43_wire.sql).

CREATE OR REPLACE FUNCTION memory.create_domain(
    domain text,
    dimension integer DEFAULT 768,
    distance text DEFAULT 'cosine',
    embedding_model text DEFAULT NULL,
    hnsw_m integer DEFAULT 16,
    hnsw_ef_construction integer DEFAULT 64,
    text_config regconfig DEFAULT 'english',
    embedding_type text DEFAULT 'vector'
)
RETURNS regclass
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_existing memory_private.domains;
    v_table name;
    v_regclass regclass;
    v_comment text;
    v_ddl text;
BEGIN
    PERFORM memory_private._check_domain_name(domain);
    PERFORM memory_private._check_dimension(embedding_type, dimension);
    PERFORM memory_private._check_distance(distance);
    IF hnsw_m IS NULL OR hnsw_m < 2 OR hnsw_m > 100 THEN
        RAISE EXCEPTION 'hnsw_m must be between 2 and 100, got %', coalesce(hnsw_m::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF hnsw_ef_construction IS NULL OR hnsw_ef_construction < 2 * hnsw_m
        OR hnsw_ef_construction > 1000 THEN
        RAISE EXCEPTION 'hnsw_ef_construction must be between 2 * hnsw_m (%) and 1000, got %',
            2 * hnsw_m, coalesce(hnsw_ef_construction::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF text_config IS NULL THEN
        RAISE EXCEPTION 'text_config must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM memory_private._check_text_config(text_config);

    -- Serialise concurrent create_domain calls for the same name, and with a migrate and the
    -- other DDL of this domain (a drop_domain under way: the registry below is read after it).
    PERFORM memory_private._lock_ddl(domain);

    SELECT d.* INTO v_existing FROM memory_private.domains AS d WHERE d.domain = create_domain.domain;
    IF FOUND THEN
        IF (v_existing.dimension, v_existing.distance, v_existing.embedding_model,
            v_existing.hnsw_m, v_existing.hnsw_ef_construction, v_existing.text_config,
            v_existing.embedding_type)
            IS NOT DISTINCT FROM
            (dimension, distance, embedding_model, hnsw_m, hnsw_ef_construction, text_config,
             embedding_type) THEN
            RETURN format('%I.%I', v_existing.table_schema, v_existing.table_name)::regclass;
        END IF;
        RAISE EXCEPTION 'domain "%" already exists with different settings', domain
            USING ERRCODE = '42710',
                  DETAIL = format(
                      'existing: dimension=%s distance=%s embedding_model=%s hnsw_m=%s '
                      'hnsw_ef_construction=%s text_config=%s embedding_type=%s; requested: '
                      'dimension=%s distance=%s embedding_model=%s hnsw_m=%s '
                      'hnsw_ef_construction=%s text_config=%s embedding_type=%s',
                      v_existing.dimension, v_existing.distance,
                      coalesce(v_existing.embedding_model, 'NULL'), v_existing.hnsw_m,
                      v_existing.hnsw_ef_construction, v_existing.text_config,
                      v_existing.embedding_type,
                      dimension, distance, coalesce(embedding_model, 'NULL'), hnsw_m,
                      hnsw_ef_construction, text_config, embedding_type),
                  HINT = 'Drop it first with memory.drop_domain(), or call create_domain with '
                      || 'the existing settings.';
    END IF;

    v_table := domain || '_memories';
    IF to_regclass(format('memory_data.%I', v_table)) IS NOT NULL THEN
        RAISE EXCEPTION 'table memory_data.% already exists but is not a registered domain', v_table
            USING ERRCODE = '42P07',
                  HINT = 'Rename or drop that table, then create the domain again.';
    END IF;


    -- content_tsv: the tsvector search_text ranks (sql/31_bm25.sql), recomputed only when
    -- content changes. toast_tuple_target: a row is compressed only when two no longer fit in a
    -- page (memory_private._toast_tuple_target). '_metadata_obj' keeps the longest name (40 +
    -- '_memories' + 13) within 63 characters.
    EXECUTE format($q$
        CREATE TABLE memory_data.%I (
            id text NOT NULL DEFAULT gen_random_uuid()::text,
            content text NOT NULL,
            embedding %s,
            embedding_model text,
            metadata jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            content_tsv tsvector GENERATED ALWAYS AS (%s) STORED,
            CONSTRAINT %I PRIMARY KEY (id),
            CONSTRAINT %I CHECK (jsonb_typeof(metadata) = 'object'))
        WITH (toast_tuple_target = %s)
    $q$,
        v_table, memory_private._embedding_column_type(embedding_type, dimension),
        memory_private._stored_tsvector_sql(text_config, 'content'),
        v_table || '_pkey', v_table || '_metadata_obj', memory_private._toast_tuple_target());
    v_regclass := format('memory_data.%I', v_table)::regclass;
    -- The registry row: a column mapping of the table just made.
    INSERT INTO memory_private.domains AS d
        (domain, table_schema, table_name, dimension, distance, embedding_model,
         hnsw_m, hnsw_ef_construction, text_config, embedding_type,
         source_table, id_column, content_column, embedding_column, model_column, touch_column,
         metadata_column, created_column)
    VALUES (domain, 'memory_data', v_table, dimension, distance, embedding_model,
            hnsw_m, hnsw_ef_construction, text_config, embedding_type,
            v_regclass, 'id', 'content', 'embedding', 'embedding_model', 'updated_at',
            'metadata', 'created_at');
    PERFORM memory_private._default_access(domain);
    EXECUTE format($sql$ALTER TABLE %s ALTER COLUMN embedding SET STORAGE %s$sql$, v_regclass,
        memory_private._embedding_storage(embedding_type, dimension));

    -- COMMENT takes no parameters: the text goes in as a literal (%L).
    v_comment := format('pgmemo domain %s (%s dimensions, %s distance). Write through '
        || 'memory.store().', domain, dimension, distance);
    EXECUTE format($q$ COMMENT ON TABLE %s IS %L $q$, v_regclass, v_comment);
    -- The secondary indexes (metadata, full-text, updated_at: sql/70_bulk.sql, one list).
    FOR v_ddl IN SELECT s.ddl FROM memory_private._secondary_indexes(memory_private._domain(domain)) AS s
    LOOP
        EXECUTE v_ddl;
    END LOOP;

    -- The write triggers (one family for every domain, from the registry's column mapping).
    PERFORM memory_private._wire(memory_private._domain(domain));

    PERFORM memory.create_hnsw_index(domain, hnsw_m, hnsw_ef_construction);
    PERFORM memory_private._search_static_refresh();  -- the cached search plan (36_...sql)
    RETURN v_regclass;
END;
$$;

COMMENT ON FUNCTION memory.create_domain(
    text, integer, text, text, integer, integer, regconfig, text
) IS
'Create a memory domain: the table memory_data.<domain>_memories (id, content, embedding, '
'metadata, created_at, updated_at) with one HNSW index matching the distance, GIN indexes on '
'metadata and full-text content, a btree on updated_at, and the embedding-queue triggers. '
'Idempotent for identical arguments; error 42710 when the domain exists with other settings. '
'Names match ^[a-z][a-z0-9_]{0,39}$; distance is cosine, l2 or inner_product. embedding_type '
'vector (default, up to 2,000 dimensions) or halfvec (16-bit floats: half the index size, up '
'to 4,000 dimensions). Embeddings are kept inline in the row (STORAGE PLAIN) when they fit; '
'a row is compressed only above 4080 bytes (toast_tuple_target: two rows per page). '
'text_config (default english) must belong, with its dictionaries, to pgmemo''s owner or a '
'superuser (42501 otherwise: another role could change or drop it under the domain).';

-- Column storage for the embedding: PLAIN (inline in the heap row, never TOASTed) when the value
-- leaves room in an 8 kB page, else pgvector's default EXTERNAL. Inline vectors spare a TOAST
-- fetch per row wherever the heap's embedding is read: HNSW builds, exact (sequential) search,
-- the re-sort of filtered searches (measured in BENCHMARKS.md).
CREATE OR REPLACE FUNCTION memory_private._embedding_storage(
    embedding_type text, dimension integer
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN CASE embedding_type WHEN 'halfvec' THEN 2 ELSE 4 END * dimension + 8 <= 6000
            THEN 'PLAIN'
        ELSE 'EXTERNAL'
    END
$$;

CREATE OR REPLACE FUNCTION memory.drop_domain(domain text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_parent text;
    v_hnsw text;
BEGIN
    -- (the registry read after the lock: a begin_reembed under way has committed its shadow)
    PERFORM memory_private._lock_ddl(domain);
    v_d := memory_private._domain(domain);
    SELECT r.domain INTO v_parent FROM memory_private.reembeds AS r
    WHERE r.shadow_domain = v_d.domain;
    IF FOUND THEN
        RAISE EXCEPTION 'domain "%" is the shadow of a re-embed of "%"', v_d.domain, v_parent
            USING ERRCODE = '0A000',
                  HINT = format('Cancel the re-embed: SELECT memory.cancel_reembed(%L);', v_parent);
    END IF;
    IF EXISTS (SELECT FROM memory_private.reembeds AS r WHERE r.domain = v_d.domain) THEN
        PERFORM memory.cancel_reembed(v_d.domain);
    END IF;
    IF v_d.adopted THEN
        -- Release the application's table: pgmemo's view, triggers and helper indexes go; the
        -- table, its rows and its HNSW index stay (the index serves the application's own
        -- queries and is costly to rebuild).
        PERFORM memory_private._unadopt(v_d);
        SELECT string_agg(x.index_oid::regclass::text, ', ') INTO v_hnsw
        FROM memory_private._vector_indexes(v_d) AS x;
        IF v_hnsw IS NOT NULL THEN
            RAISE NOTICE 'domain "%" released; table % and its vector index % are kept',
                v_d.domain, v_d.source_table, v_hnsw
                USING HINT = 'Drop the index yourself if nothing else searches that column.';
        END IF;
    ELSE
        EXECUTE format($sql$DROP TABLE IF EXISTS %I.%I$sql$, v_d.table_schema, v_d.table_name);
        PERFORM memory_private._unwire(v_d);  -- the trigger functions (the triggers went with it)
    END IF;
    DELETE FROM memory_private.domains AS d WHERE d.domain = v_d.domain;
    PERFORM memory_private._search_static_refresh();
END;
$$;

COMMENT ON FUNCTION memory.drop_domain(text) IS
'Drop a domain: its table, its queued embedding jobs and its registry row. An adopted domain '
'is released instead: pgmemo''s view, triggers and helper indexes go, the application''s table, '
'its data and its vector index stay. A re-embed in progress is cancelled first. '
'Error 42704 for an unknown domain.';

-- Exact row count of a domain table (for the domains view).
CREATE OR REPLACE FUNCTION memory_private._row_count(table_schema name, table_name name)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF to_regclass(format('%I.%I', table_schema, table_name)) IS NULL
        OR NOT memory_private._readable((
            SELECT d FROM memory_private.domains AS d
            WHERE d.table_schema = _row_count.table_schema AND d.table_name = _row_count.table_name
        )) THEN
        RETURN NULL;
    END IF;
    EXECUTE format($sql$SELECT count(*) FROM %I.%I$sql$, table_schema, table_name) INTO v_count;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE VIEW memory.domains AS
SELECT
    d.domain,
    format('%I.%I', d.table_schema, d.table_name) AS table_name,
    d.dimension,
    d.distance,
    d.embedding_model,
    memory_private._row_count(d.table_schema, d.table_name) AS rows,
    d.created_at,
    d.adopted,
    d.source_table::text AS source_table
FROM memory_private.domains AS d
WHERE memory_private._can(d.domain, 'read');

COMMENT ON VIEW memory.domains IS
'Registered memory domains: table, dimension, distance, embedding model, exact row count, and '
'for adopted domains (memory.adopt_table) the application table behind the view. Only the '
'domains the caller may read (memory.grant_domain).';
