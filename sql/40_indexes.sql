-- Vector indexes: one consistent HNSW index per domain (memory.create_hnsw_index), and the
-- statements that build it without blocking writes (memory.concurrent_index_statements).

-- Where a domain's vectors physically live: the domain table and its embedding column, or, for
-- an adopted domain (whose table is a view), the source table and its embedding column.
-- relation is NULL when the table is gone.
CREATE OR REPLACE FUNCTION memory_private._physical(
    d memory_private.domains, OUT relation regclass, OUT embedding_column name
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT
        CASE WHEN d.adopted THEN (
                SELECT c.oid::regclass FROM pg_catalog.pg_class AS c WHERE c.oid = d.source_table)
            ELSE to_regclass(format('%I.%I', d.table_schema, d.table_name)) END,
        CASE WHEN d.adopted THEN d.embedding_column ELSE 'embedding'::name END
$$;

-- The name of the HNSW index pgmemo makes for a domain (in the physical table's schema).
CREATE OR REPLACE FUNCTION memory_private._hnsw_name(d memory_private.domains)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT (CASE WHEN d.adopted THEN 'pgmemo_' || d.domain || '_hnsw'
        ELSE d.table_name || '_hnsw' END)::name
$$;

-- The relations that hold a domain's rows: the table itself (an adopted domain's source table,
-- memory_private._physical) and, when it is partitioned, every partition below it
-- (pg_partition_tree returns nothing for a plain table).
CREATE OR REPLACE FUNCTION memory_private._domain_relations(d memory_private.domains)
RETURNS TABLE (relid regclass, is_root boolean, is_leaf boolean)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT c.oid::regclass, true, c.relkind <> 'p'
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = (memory_private._physical(d)).relation
    UNION ALL
    SELECT t.relid, false, t.isleaf
    FROM pg_catalog.pg_partition_tree((memory_private._physical(d)).relation) AS t
    WHERE t.level > 0
$$;

-- Every vector index (hnsw, ivfflat) on the embedding column of the domain's table and of its
-- partitions, with size, scans and the tuple count recorded at build / last vacuum.
-- memory_private._vector_indexes below is the same for the root table alone.
CREATE OR REPLACE FUNCTION memory_private._domain_vector_indexes(d memory_private.domains)
RETURNS TABLE (
    index_oid oid, index_schema name, index_name name, table_oid regclass, on_root boolean,
    method name, opclass name, options text[], is_valid boolean, is_partitioned boolean,
    size_bytes bigint, scans bigint, index_tuples real
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT i.indexrelid, n.nspname, c.relname, r.relid, r.is_root, am.amname, opc.opcname,
        c.reloptions, i.indisvalid, c.relkind = 'I', pg_catalog.pg_relation_size(i.indexrelid),
        s.idx_scan, c.reltuples
    FROM memory_private._domain_relations(d) AS r
    JOIN pg_catalog.pg_index AS i ON i.indrelid = r.relid
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
    LEFT JOIN pg_catalog.pg_stat_all_indexes AS s ON s.indexrelid = i.indexrelid
    WHERE a.attname = (memory_private._physical(d)).embedding_column
      AND am.amname IN ('hnsw', 'ivfflat')
    ORDER BY NOT r.is_root, r.relid::text, c.relname
$$;

-- Every vector index (hnsw, ivfflat) on a domain's embedding column of the physical table
-- itself (not its partitions): the ones memory.create_hnsw_index keeps or drops.
CREATE OR REPLACE FUNCTION memory_private._vector_indexes(d memory_private.domains)
RETURNS TABLE (
    index_oid oid, index_name name, method name, opclass name, options text[],
    is_valid boolean
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT x.index_oid, x.index_name, x.method, x.opclass, x.options, x.is_valid
    FROM memory_private._domain_vector_indexes(d) AS x
    WHERE x.on_root
    ORDER BY x.index_name
$$;

CREATE OR REPLACE FUNCTION memory.create_hnsw_index(
    domain text, m integer DEFAULT 16, ef_construction integer DEFAULT 64
)
RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_opclass text := memory_private._opclass(v_d);
    v_phys record := memory_private._physical(v_d);
    v_name text := memory_private._hnsw_name(v_d);
    v_options text[];
    v_idx record;
    v_keep boolean := false;
BEGIN
    IF m IS NULL OR m < 2 OR m > 100 THEN
        RAISE EXCEPTION 'm must be between 2 and 100, got %', coalesce(m::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF ef_construction IS NULL OR ef_construction < 2 * m OR ef_construction > 1000 THEN
        RAISE EXCEPTION 'ef_construction must be between 2 * m (%) and 1000, got %',
            2 * m, coalesce(ef_construction::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    v_options := ARRAY['m=' || m, 'ef_construction=' || ef_construction];

    FOR v_idx IN SELECT * FROM memory_private._vector_indexes(v_d) LOOP
        IF v_idx.method = 'hnsw' AND v_idx.opclass = v_opclass AND v_idx.is_valid
            AND v_idx.options @> v_options AND v_idx.options <@ v_options AND NOT v_keep THEN
            v_keep := true;
            v_name := v_idx.index_name;
        ELSE
            RAISE NOTICE 'dropping competing vector index % (% %, %)',
                v_idx.index_oid::regclass, v_idx.method, v_idx.opclass,
                CASE WHEN v_idx.is_valid THEN 'valid' ELSE 'INVALID' END;
            EXECUTE format($sql$DROP INDEX %s$sql$, v_idx.index_oid::regclass);
        END IF;
    END LOOP;

    IF NOT v_keep THEN
        IF v_phys.relation IS NULL THEN
            RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain
                USING ERRCODE = '42P01';
        END IF;
        EXECUTE format(
            $sql$CREATE INDEX %I ON %s USING hnsw (%I %s) WITH (m = %s, ef_construction = %s)$sql$,
            v_name, v_phys.relation, v_phys.embedding_column,
            memory_private._vector_schema() || '.' || quote_ident(v_opclass), m, ef_construction);
    END IF;

    UPDATE memory_private.domains AS d
    SET hnsw_m = m, hnsw_ef_construction = ef_construction
    WHERE d.domain = v_d.domain
      AND (d.hnsw_m, d.hnsw_ef_construction) IS DISTINCT FROM (m, ef_construction);
    RETURN v_name;
END;
$$;

COMMENT ON FUNCTION memory.create_hnsw_index(text, integer, integer) IS
'Leave exactly one vector index on the domain''s embedding column (for an adopted domain: the '
'source table''s column): an HNSW index with the operator class of the domain''s distance and '
'the given m / ef_construction. It blocks writes while it builds: on a big live table use '
'memory.concurrent_index_statements (CREATE INDEX CONCURRENTLY) instead. Competing HNSW or '
'IVFFlat indexes (and INVALID ones) are dropped with a NOTICE. Idempotent; returns the index name.';

-- A relation's schema-qualified, quoted name whatever the caller's search_path (the statements
-- below run outside this function's search_path, e.g. through psql's \gexec).
CREATE OR REPLACE FUNCTION memory_private._qualified(rel regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = rel
$$;

-- The statements that build one index on rel without blocking writes. definition is what
-- follows "ON <table>" (e.g. USING hnsw (embedding vector_cosine_ops) WITH (m = 16)); suffix
-- names the partitions' indexes (pgmemo_p<partition oid>_<suffix>). A plain table gets one
-- CREATE INDEX CONCURRENTLY (an INVALID leftover of a failed run with the same name is dropped
-- first). A partitioned table gets the index ON ONLY the parent (and each sub-parent), one
-- CREATE INDEX CONCURRENTLY per leaf partition, and ALTER INDEX ... ATTACH PARTITION for each:
-- once every partition is attached the parent index is valid. Re-running resumes (IF NOT EXISTS;
-- attaching twice is a no-op).
CREATE OR REPLACE FUNCTION memory_private._concurrent_index_statements(
    rel regclass, index_name name, definition text, suffix text
)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_schema name;
    v_kind "char";
    v_part record;
    v_name name;
    v_parent_index text;
BEGIN
    SELECT n.nspname, c.relkind INTO v_schema, v_kind
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = rel;
    IF v_kind <> 'p' THEN
        IF EXISTS (
            SELECT FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
            WHERE c.relname = index_name
              AND c.relnamespace = (SELECT r.relnamespace FROM pg_catalog.pg_class AS r WHERE r.oid = rel)
              AND NOT i.indisvalid
        ) THEN
            RETURN NEXT format($sql$DROP INDEX CONCURRENTLY IF EXISTS %I.%I$sql$, v_schema, index_name);
        END IF;
        RETURN NEXT format($sql$CREATE INDEX CONCURRENTLY IF NOT EXISTS %I ON %s %s$sql$,
            index_name, memory_private._qualified(rel), definition);
        RETURN;
    END IF;
    RETURN NEXT format($sql$CREATE INDEX IF NOT EXISTS %I ON ONLY %s %s$sql$,
        index_name, memory_private._qualified(rel), definition);
    FOR v_part IN
        SELECT t.relid, t.parentrelid, t.isleaf, c.relkind, n.nspname, t.level
        FROM pg_catalog.pg_partition_tree(rel) AS t
        JOIN pg_catalog.pg_class AS c ON c.oid = t.relid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE t.level > 0
        ORDER BY t.level, t.relid
    LOOP
        v_name := format('pgmemo_p%s_%s', v_part.relid::oid, suffix);
        v_parent_index := CASE WHEN v_part.parentrelid = rel
            THEN format('%I.%I', v_schema, index_name)
            ELSE (SELECT format('%I.%I', n.nspname, format('pgmemo_p%s_%s', c.oid, suffix))
                  FROM pg_catalog.pg_class AS c
                  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                  WHERE c.oid = v_part.parentrelid) END;
        IF v_part.relkind = 'p' THEN
            RETURN NEXT format($sql$CREATE INDEX IF NOT EXISTS %I ON ONLY %s %s$sql$,
                v_name, memory_private._qualified(v_part.relid), definition);
        ELSIF v_part.relkind = 'r' THEN
            IF EXISTS (
                SELECT FROM pg_catalog.pg_index AS i
                JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
                WHERE c.relname = v_name
                  AND c.relnamespace = (SELECT r.relnamespace FROM pg_catalog.pg_class AS r
                      WHERE r.oid = v_part.relid)
                  AND NOT i.indisvalid
            ) THEN
                RETURN NEXT format($sql$DROP INDEX CONCURRENTLY IF EXISTS %I.%I$sql$, v_part.nspname, v_name);
            END IF;
            RETURN NEXT format($sql$CREATE INDEX CONCURRENTLY IF NOT EXISTS %I ON %s %s$sql$,
                v_name, memory_private._qualified(v_part.relid), definition);
        ELSE
            CONTINUE;  -- foreign tables cannot have these indexes
        END IF;
        RETURN NEXT format($sql$ALTER INDEX %s ATTACH PARTITION %I.%I$sql$,
            v_parent_index, v_part.nspname, v_name);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION memory.concurrent_index_statements(
    domain text, m integer DEFAULT NULL, ef_construction integer DEFAULT NULL
)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains := memory_private._domain(domain);
    v_phys record := memory_private._physical(v_d);
    v_m integer := coalesce(m, v_d.hnsw_m);
    v_ef integer := coalesce(ef_construction, v_d.hnsw_ef_construction);
    v_opclass text := memory_private._opclass(v_d);
    v_opclass_q text;
    v_options text[];
    v_name name := memory_private._hnsw_name(v_d);
    v_build name;
    v_schema name;
    v_partitioned boolean;
    v_helper record;
    v_idx record;
BEGIN
    IF v_m < 2 OR v_m > 100 OR v_ef < 2 * v_m OR v_ef > 1000 THEN
        RAISE EXCEPTION 'm must be between 2 and 100 and ef_construction between 2 * m and 1000, got % and %',
            v_m, v_ef USING ERRCODE = '22023';
    END IF;
    IF v_phys.relation IS NULL THEN
        RAISE EXCEPTION 'the table of domain "%" does not exist', v_d.domain USING ERRCODE = '42P01';
    END IF;
    SELECT n.nspname, c.relkind = 'p' INTO v_schema, v_partitioned
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = v_phys.relation;
    SELECT format('%I.%I', n.nspname, v_opclass) INTO v_opclass_q
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';
    v_options := ARRAY['m=' || v_m, 'ef_construction=' || v_ef];

    -- An adopted domain's helper index (id lookups), if missing.
    FOR v_helper IN SELECT * FROM memory_private._adopted_helper_indexes(v_d) AS h WHERE NOT h.present LOOP
        RETURN QUERY SELECT * FROM memory_private._concurrent_index_statements(
            v_phys.relation, v_helper.index_name, v_helper.definition, v_helper.suffix);
    END LOOP;

    -- Nothing to build when the one valid matching HNSW index is there already.
    IF NOT EXISTS (
        SELECT FROM memory_private._vector_indexes(v_d) AS x
        WHERE x.method = 'hnsw' AND x.opclass = v_opclass AND x.is_valid
          AND x.options @> v_options AND x.options <@ v_options
    ) THEN
        -- Build under a temporary name when the final one is taken by a competing index.
        v_build := CASE WHEN to_regclass(format('%I.%I', v_schema, v_name)) IS NULL
            THEN v_name ELSE left(v_name, 57) || '_ccnew' END;
        RETURN QUERY SELECT * FROM memory_private._concurrent_index_statements(
            v_phys.relation, v_build,
            format($sql$USING hnsw (%I %s) WITH (m = %s, ef_construction = %s)$sql$,
                v_phys.embedding_column, v_opclass_q, v_m, v_ef),
            'hnsw');
        -- Then the competing vector indexes go (concurrently where PostgreSQL can).
        FOR v_idx IN
            SELECT x.index_name FROM memory_private._vector_indexes(v_d) AS x
            WHERE x.index_name <> v_build
        LOOP
            RETURN NEXT format($sql$DROP INDEX %s %I.%I$sql$,
                CASE WHEN v_partitioned THEN '' ELSE 'CONCURRENTLY IF EXISTS' END,
                v_schema, v_idx.index_name);
        END LOOP;
        IF v_build <> v_name THEN
            RETURN NEXT format($sql$ALTER INDEX %I.%I RENAME TO %I$sql$, v_schema, v_build, v_name);
        END IF;
    END IF;
    -- Records m / ef_construction in the registry; finds nothing left to drop or build.
    RETURN NEXT format($sql$SELECT memory.create_hnsw_index(%L, m => %s, ef_construction => %s)$sql$,
        v_d.domain, v_m, v_ef);
END;
$$;

COMMENT ON FUNCTION memory.concurrent_index_statements(text, integer, integer) IS
'The statements that build the domain''s HNSW index (m, ef_construction: default the domain''s) '
'without blocking writes, in order: CREATE INDEX CONCURRENTLY (for a partitioned table: the '
'index ON ONLY the parent, one concurrent build per partition, ATTACH PARTITION), then DROP of '
'competing vector indexes, then memory.create_hnsw_index to record the settings. For an adopted '
'domain, a missing id-as-text index comes first. CREATE INDEX CONCURRENTLY '
'cannot run inside a function or transaction, so run them one by one outside one: in psql '
'SELECT * FROM memory.concurrent_index_statements(''d'') \gexec, or pgmemo index build '
'--concurrently d. Re-running after a failure resumes (an INVALID leftover is dropped first).';
