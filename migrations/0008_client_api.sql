-- 0008_client_api: what the asyncio, LangChain and MCP clients need from the SQL API.
--
-- Why: memory.search and memory.search_hybrid can return each row's stored vector
-- (with_embeddings => true: MMR re-ranks without a second round trip), so both grew a parameter
-- and an `embedding` column; a changed result type needs the old signature dropped, once, here
-- (sql/30_search.sql then creates the new ones). memory.forget_many, memory.clear and get_many
-- in the order asked are new or changed functions only (sql/20_write.sql, sql/47_import.sql);
-- this version tells clients they are there.

-- Found by name rather than by signature: the vector type may live in any schema.
DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
        JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
        WHERE (n.nspname = 'memory' AND p.proname IN ('search', 'search_hybrid')
                AND NOT 'with_embeddings' = ANY (coalesce(p.proargnames, '{}')))
            OR (n.nspname = 'memory_private' AND p.proname IN ('_search_sql', '_dist_search_sql')
                AND p.pronargs = 2)
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_fn);
    END LOOP;
END;
$$;
