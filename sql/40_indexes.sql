-- Vector indexes: one consistent HNSW index per domain (memory.create_hnsw_index).

-- Every vector index (hnsw, ivfflat) on a domain's embedding column.
CREATE OR REPLACE FUNCTION memory_private._vector_indexes(d memory_private.domains)
RETURNS TABLE (
    index_oid oid, index_name name, method name, opclass name, options text[],
    is_valid boolean
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT i.indexrelid, c.relname, am.amname, opc.opcname, c.reloptions, i.indisvalid
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
    JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[0]
    WHERE i.indrelid = format('%I.%I', d.table_schema, d.table_name)::regclass
      AND a.attname = 'embedding'
      AND am.amname IN ('hnsw', 'ivfflat')
    ORDER BY c.relname
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
    v_opclass text := memory_private._distance_opclass(v_d.distance);
    v_name text := v_d.table_name || '_hnsw';
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
            RAISE NOTICE 'dropping competing vector index %.% (% %, %)',
                v_d.table_schema, v_idx.index_name, v_idx.method, v_idx.opclass,
                CASE WHEN v_idx.is_valid THEN 'valid' ELSE 'INVALID' END;
            EXECUTE format('DROP INDEX %I.%I', v_d.table_schema, v_idx.index_name);
        END IF;
    END LOOP;

    IF NOT v_keep THEN
        EXECUTE format(
            'CREATE INDEX %I ON %I.%I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
            v_name, v_d.table_schema, v_d.table_name, v_opclass, m, ef_construction);
    END IF;

    UPDATE memory_private.domains AS d
    SET hnsw_m = m, hnsw_ef_construction = ef_construction
    WHERE d.domain = v_d.domain
      AND (d.hnsw_m, d.hnsw_ef_construction) IS DISTINCT FROM (m, ef_construction);
    RETURN v_name;
END;
$$;

COMMENT ON FUNCTION memory.create_hnsw_index(text, integer, integer) IS
'Leave exactly one vector index on the domain''s embedding column: an HNSW index with the '
'operator class of the domain''s distance and the given m / ef_construction. Competing HNSW or '
'IVFFlat indexes (and INVALID ones) are dropped with a NOTICE. Idempotent; returns the index name.';
