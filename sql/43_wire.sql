-- The write triggers of every domain, factory or adopted: one family, one template each, wired
-- by memory_private._wire(d) from the domain's column mapping in the registry (relation, id,
-- content, embedding, model columns) and removed by memory_private._unwire(d).
--
-- The rules they carry, in this one place:
-- - A stale embedding is never served: after an UPDATE (per statement, transition tables), a row
--   whose embedding was carried over from a content it was not made for gets its embedding (and
--   model) cleared, whichever ids the statement moved: a new row's embedding is stale when some
--   old row of the statement had it and none had it with the new row's content (rows are not
--   paired by id: a row renamed with new content, or ids swapped with the contents left in
--   place, kept a stale vector that way); and a row whose embedding was cleared loses its model
--   (trigger unstale_update). pgmemo's own writers (memory.update, store, store_many,
--   import_rows) never leave such a row (they clear the embedding in the same statement), so
--   for them it costs at most one comparison per row kept and no UPDATE; it catches the
--   application's own writes to an adopted table. It runs with the rights of whoever wrote the
--   table (SECURITY INVOKER): pgmemo's rights never run the application's code.
-- - Every statement over both transition tables runs through EXECUTE, planned at each firing
--   for the rows at hand (a plan PL/pgSQL keeps is made for the first firing's few rows, and
--   reused over 100,000 rows it was quadratic); statements over one of them stay static (their
--   kept plans scan it once).
-- - AFTER INSERT / UPDATE, per statement: every row that now needs an embedding is queued (an
--   UPDATE: its content changed, its embedding was cleared, or its id is new to the statement, a
--   row renamed), deduplicated per row, and the workers are woken (NOTIFY); a job claimed for
--   the old content goes back to pending (the claim in flight is superseded: its completion
--   finds the content changed, or, once the job is claimed again under a new id, no job, and
--   writes nothing); a row that got an embedding has no job any more, nor has an id the UPDATE
--   took away (a row renamed). A metadata-only update queues nothing.
-- - AFTER DELETE, per statement: the jobs of deleted rows go.
-- - A row whose id is NULL (a NOT NULL the table's owner dropped after adoption, which requires
--   it) is neither queued nor indexed: pgmemo cannot address it, and the application's write of
--   it must not fail in pgmemo's trigger.
-- - An adopted domain's text index (memory_data.<domain>_text) follows its table, per statement:
--   each row inserted or whose content or id changed gets its tsvector, each row deleted loses
--   it, a TRUNCATE removes the rows it emptied (all of them, or, after a TRUNCATE ONLY of a
--   table with inheritance children, those the table no longer has) (trigger function text;
--   the triggers text_*).
-- No BEFORE ROW UPDATE trigger: with one, PostgreSQL recomputes every stored generated column
-- on every UPDATE (a factory table's content_tsv on every embedding the worker writes). The
-- touch column (factory tables: updated_at) is set by the writers.
-- Citus runs no statement triggers with transition tables on a distributed table: there the
-- write functions queue its rows (sql/48_distributed.sql) and the stale rule is a row trigger
-- (before_update), the one row-level template: OLD and NEW are the same row there, whatever
-- its id (which Citus does not let change: the table is distributed by it), so a content
-- changed under the embedding it had clears it; each row sees only its own, so an embedding
-- the same statement copied from another row is kept there.
--
-- Why generated functions: each domain gets its own trigger functions with the column names
-- written into static SQL (so PL/pgSQL plans each statement once per session), instead of one
-- generic function that builds its SQL from TG_ARGV on every call (measured about 2.5x slower
-- per write). They are made from the templates below and nothing else, and re-made by every
-- migrate run (memory_private._after_migrate), so a change of a template reaches every domain.
-- Definer rights (enqueue, dequeue): the application writes an adopted table with its own role,
-- which has no right on memory_private; those functions touch the queue only.
--
-- Each trigger function and trigger is made from one dollar-quoted template, identifiers through
-- %I. The model column is optional in a mapping: its pieces (the rule that a cleared embedding
-- loses its model) are computed first, each from its own small template ('' without a model
-- column), and passed in through %s.

-- The name of one of a domain's trigger functions (and of its trigger): pgmemo_<domain>_<kind>.
CREATE OR REPLACE FUNCTION memory_private._wire_name(domain text, kind text)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT ('pgmemo_' || domain || '_' || kind)::name
$$;

-- The first statement of a domain's statement-trigger functions (PL/pgSQL text): they act only
-- for the domain's table and the relations below it. Their triggers are on each partition and
-- child too (_wire_triggers), and stay on one detached, or attached to another table, until
-- drop_domain: there they return at once (without this a write to the detached table reached
-- the domain's rows of the same ids: their tsvector replaced, their embedding cleared, their
-- job and text-index row deleted; found by an attack at stop 28). The table is named, not
-- numbered: a dump restored elsewhere gives it another oid (an oid here made every trigger of
-- the restored database return at once); renamed, to_regclass finds none and the functions act
-- as before the guard until the next migrate names it again. The relation's ancestors are read
-- from pg_inherits inline: the unstale function runs with the writer's rights, which reach no
-- memory_private function.
CREATE OR REPLACE FUNCTION memory_private._wire_guard_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($g$
    IF TG_RELID IS DISTINCT FROM pg_catalog.to_regclass(%1$L)::oid
            AND pg_catalog.to_regclass(%1$L) IS NOT NULL AND NOT EXISTS (
            WITH RECURSIVE up (oid) AS (
                SELECT TG_RELID
                UNION
                SELECT i.inhparent FROM pg_catalog.pg_inherits AS i JOIN up ON i.inhrelid = up.oid
            )
            SELECT FROM up WHERE up.oid = pg_catalog.to_regclass(%1$L)::oid) THEN
        RETURN NULL;
    END IF;$g$, memory_private._qualified(d.source_table))
$$;

-- Whether a column of type type_oid may be an adopted domain's id, content or embedding column
-- (kind): the one rule of memory.adopt_table's checks and of the column guard of the domain's
-- definer triggers (_wire_columns_guard_sql). Each type's casts to text and its = operator are
-- built in (an id: bigint, integer, smallint, uuid, text, varchar; a content: a text type,
-- whose only types a role without superuser can make are domains over a built-in one;
-- an embedding: pgvector's vector or halfvec).
CREATE OR REPLACE FUNCTION memory_private._adoptable_type(kind text, type_oid oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE kind
        WHEN 'id' THEN type_oid IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype,
            'uuid'::regtype, 'text'::regtype, 'character varying'::regtype)
        WHEN 'content' THEN coalesce((SELECT t.typcategory = 'S' FROM pg_catalog.pg_type AS t
            WHERE t.oid = type_oid), false)
        WHEN 'embedding' THEN memory_private._vector_type(type_oid) IS NOT NULL
    END
$$;

-- The column guard of an adopted domain's definer triggers (enqueue, dequeue, text), spliced
-- after _wire_guard_sql: they read the table's id, content and embedding columns by name, with
-- pgmemo's owner's rights, so a column its owner renamed away and replaced by one of a type of
-- hers (whose cast to text or = operator is her function) would run her code with those rights
-- (an attack of stop 36). The write is refused, naming the column, unless each mapped column
-- still has a type memory.adopt_table accepts (_adoptable_type: built-in casts and operators
-- only). A factory table (pgmemo's own) gets none. One look-up in pg_attribute per statement.
CREATE OR REPLACE FUNCTION memory_private._wire_columns_guard_sql(d memory_private.domains)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN d.adopted THEN format($g$
    IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
        JOIN (VALUES (%1$L::name, 'id'), (%2$L::name, 'content'), (%3$L::name, 'embedding'))
            AS m (col, kind) ON a.attname = m.col
        WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
          AND memory_private._adoptable_type(m.kind, a.atttypid)) <> 3 THEN
        RAISE EXCEPTION 'pgmemo: domain "%%": a column of %% it maps (%%, %%, %%) is gone or of a type pgmemo does not read',
            %4$L, TG_RELID::regclass, %1$L, %2$L, %3$L
            USING ERRCODE = '42804',
                  HINT = 'Give the column back its name and type, or memory.drop_domain(...) the domain.';
    END IF;$g$, d.id_column, d.content_column, d.embedding_column, d.domain)
    ELSE '' END
$$;

-- The CREATE FUNCTION statements of a domain's trigger functions, as (kind, statement).
CREATE OR REPLACE FUNCTION memory_private._wire_functions(d memory_private.domains)
RETURNS TABLE (kind text, ddl text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    -- before_update: a cleared embedding clears the model.
    v_before_model text := CASE WHEN d.model_column IS NULL THEN '' ELSE format(
        $f$IF NEW.%1$I IS NULL AND OLD.%1$I IS NOT NULL THEN NEW.%2$I := NULL; END IF;$f$,
        d.embedding_column, d.model_column) END;
    -- unstale: the model cleared with a stale embedding, and with an embedding cleared.
    v_unstale_model_set text := CASE WHEN d.model_column IS NULL THEN ''
        ELSE format($f$, %I = NULL$f$, d.model_column) END;
    v_unstale_model text := CASE WHEN d.model_column IS NULL THEN '' ELSE format($model$
    IF EXISTS (SELECT FROM new_rows AS n WHERE n.%4$I IS NULL AND n.%3$I IS NOT NULL) THEN
        UPDATE %1$s AS t SET %3$I = NULL
        FROM new_rows AS n
        WHERE t.%2$I = n.%2$I AND n.%4$I IS NULL AND t.%4$I IS NULL AND t.%3$I IS NOT NULL;
    END IF;$model$,
        memory_private._qualified(d.source_table), d.id_column, d.model_column,
        d.embedding_column) END;
    -- text: the hint of its WARNING when a TRUNCATE ONLY cannot read the rows left
    v_truncate_hint text := format($h$SELECT memory.sync_text_index(%L); removes them.$h$,
        d.domain);
BEGIN
    RETURN QUERY
    SELECT 'before_update', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path FROM CURRENT
AS $body$
BEGIN
    -- (as real[]: pgvector's = is not on this function's search_path)
    IF NEW.%2$I IS DISTINCT FROM OLD.%2$I AND NEW.%3$I::real[] IS NOT DISTINCT FROM OLD.%3$I::real[] THEN
        NEW.%3$I := NULL;
    END IF;
    %4$s
    RETURN NEW;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'before_update'), d.content_column,
        d.embedding_column, v_before_model)
    UNION ALL
    SELECT 'unstale', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_stale text[];
BEGIN%8$s
    -- The rule: a new row's embedding is stale when some old row of the statement had it and
    -- none had it with the new row's content: it was carried over from a content it was not
    -- made for. Nothing in the transition tables says which old row became which new one (an
    -- UPDATE may rename rows, swap or shift their ids), so rows are not paired by id: by id, a
    -- row renamed with new content looked new, and ids swapped with the contents left in
    -- place looked unchanged. An embedding no old row had (the worker's, or one the
    -- application wrote with the content) is kept, and so is one that moved with its content
    -- (a row renamed, ids swapped).
    -- Only a statement that read an embedding and leaves one can carry one: two static
    -- look-ups skip the rest for the worker's completions and memory.update of a content.
    IF EXISTS (SELECT FROM old_rows AS o WHERE o.%5$I IS NOT NULL)
            AND EXISTS (SELECT FROM new_rows AS n WHERE n.%5$I IS NOT NULL) THEN
        -- One comparison per common row: a row whose id had this content and this embedding
        -- (a metadata-only update) is kept at once, the two compared bit for bit (*=: a memcmp
        -- of the two records). The others (renamed, or their content or embedding changed) are
        -- looked up among the old rows by the bytes of their embedding (record_send: built in
        -- and hashable; pgvector's = is not on this function's search_path, and a cast to
        -- real[] costs more): EXISTS and NOT EXISTS each stop at one match, however many rows
        -- share an embedding. The same embedding is the same bits. (The contents compared
        -- NULL-safe and hashable: with IS NOT DISTINCT FROM, rows sharing an embedding were
        -- compared pairwise.)
        -- Over both transition tables, so through EXECUTE, planned at each firing for the rows
        -- at hand: a plan kept by PL/pgSQL is made for the first firing's tables (a nested
        -- loop for a few rows), and reused for 100,000 rows it read 10^10 row pairs back from
        -- disk (a one-statement UPDATE of a big domain table never finished).
        EXECUTE $stmt$
            WITH moved AS MATERIALIZED (
                SELECT n.%3$I::text AS id, n.%4$I AS content,
                    pg_catalog.record_send(ROW(n.%5$I)::record) AS embedding
                FROM new_rows AS n
                WHERE n.%5$I IS NOT NULL
                  AND NOT EXISTS (
                    SELECT FROM old_rows AS o
                    WHERE o.%3$I = n.%3$I AND o.%4$I IS NOT DISTINCT FROM n.%4$I
                      AND ROW(o.%5$I)::record *= ROW(n.%5$I)::record)
            ),
            had AS MATERIALIZED (
                SELECT o.%4$I AS content, pg_catalog.record_send(ROW(o.%5$I)::record) AS embedding
                FROM old_rows AS o
                WHERE o.%5$I IS NOT NULL
            )
            SELECT array_agg(m.id)
            FROM moved AS m
            WHERE EXISTS (SELECT FROM had AS h WHERE h.embedding = m.embedding)
              AND NOT EXISTS (
                SELECT FROM had AS h
                WHERE h.embedding = m.embedding AND (h.content IS NULL) = (m.content IS NULL)
                  AND coalesce(h.content::text, '') = coalesce(m.content::text, ''))
        $stmt$ INTO v_stale;
        -- The UPDATE only when a row needs it (an UPDATE of no rows fires this trigger again);
        -- the rows by their id as text, which the table's key (a text id) or its helper index
        -- on id::text serves.
        IF v_stale IS NOT NULL THEN
            EXECUTE $stmt$
                UPDATE %2$s AS t SET %5$I = NULL%6$s
                FROM unnest($1::text[]) AS s (id)
                WHERE t.%3$I::text = s.id AND t.%5$I IS NOT NULL
            $stmt$ USING v_stale;
        END IF;
    END IF;
    %7$s
    RETURN NULL;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'unstale'), memory_private._qualified(d.source_table),
        d.id_column, d.content_column, d.embedding_column, v_unstale_model_set, v_unstale_model,
        memory_private._wire_guard_sql(d))
    UNION ALL
    SELECT 'enqueue', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_count bigint;
BEGIN%6$s
    IF TG_OP = 'INSERT' THEN
        INSERT INTO memory_private.embedding_queue AS q (domain, row_id)
        SELECT %2$L, n.%3$I::text FROM new_rows AS n WHERE n.%5$I IS NULL AND n.%3$I IS NOT NULL
        ON CONFLICT (domain, row_id) DO UPDATE
            SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL,
                claimed_at = NULL, lease_until = NULL, updated_at = now();
        GET DIAGNOSTICS v_count = ROW_COUNT;
    ELSE
        -- Over both transition tables: planned at each firing (see the unstale trigger). A row
        -- that needs an embedding is queued when its id is new to the statement (a row
        -- renamed), its embedding was cleared, or its content changed; the jobs of the ids the
        -- statement took away (a row renamed: no row holds them now) go. (The ids gone in a
        -- CTE: a DELETE joined to a transition table carries its whole rows.)
        EXECUTE $stmt$
            WITH gone AS MATERIALIZED (
                SELECT o.%3$I::text AS row_id FROM old_rows AS o
                WHERE NOT EXISTS (SELECT FROM new_rows AS n WHERE n.%3$I = o.%3$I)
            ),
            dropped AS (
                DELETE FROM memory_private.embedding_queue AS q
                USING gone AS g
                WHERE q.domain = %2$L AND q.row_id = g.row_id
            )
            INSERT INTO memory_private.embedding_queue AS q (domain, row_id)
            SELECT %2$L, n.%3$I::text
            FROM new_rows AS n
            LEFT JOIN old_rows AS o ON o.%3$I = n.%3$I
            WHERE n.%5$I IS NULL AND n.%3$I IS NOT NULL
              AND (o.%3$I IS NULL OR o.%5$I IS NOT NULL OR n.%4$I IS DISTINCT FROM o.%4$I)
            ON CONFLICT (domain, row_id) DO UPDATE
                SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL,
                    claimed_at = NULL, lease_until = NULL, updated_at = now()
        $stmt$;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        DELETE FROM memory_private.embedding_queue AS q
        USING new_rows AS n
        WHERE q.domain = %2$L AND q.row_id = n.%3$I::text AND n.%5$I IS NOT NULL;
    END IF;
    IF v_count > 0 THEN
        PERFORM pg_notify('memory_embedding_queue', %2$L);
    END IF;
    RETURN NULL;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'enqueue'), d.domain, d.id_column,
        d.content_column, d.embedding_column,
        memory_private._wire_guard_sql(d) || memory_private._wire_columns_guard_sql(d))
    UNION ALL
    SELECT 'dequeue', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $body$
BEGIN%4$s
    DELETE FROM memory_private.embedding_queue AS q
    USING old_rows AS o
    WHERE q.domain = %2$L AND q.row_id = o.%3$I::text;
    RETURN NULL;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'dequeue'), d.domain, d.id_column,
        memory_private._wire_guard_sql(d) || memory_private._wire_columns_guard_sql(d))
    UNION ALL
    -- text: an adopted domain's text index (memory_data.<domain>_text, sql/45_adopt.sql) follows
    -- its table: a row inserted, or whose id or content changed, gets its tsvector; a row
    -- deleted (or whose id changed) loses it; a TRUNCATE, the rows it emptied. Definer rights: the
    -- application writes its table with its own role, which has no right on the text index.
    SELECT 'text', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_kept boolean := false;
    v_gone bigint := 0;
BEGIN%7$s
    IF TG_OP = 'INSERT' THEN
        INSERT INTO memory_data.%2$I AS x (id, content_tsv, content_bytes)
        SELECT %4$s FROM new_rows AS n WHERE n.%3$I IS NOT NULL
        ON CONFLICT (id) DO UPDATE
            SET content_tsv = excluded.content_tsv, content_bytes = excluded.content_bytes;
    ELSIF TG_OP = 'UPDATE' THEN
        -- over both transition tables: planned at each firing (see the unstale trigger)
        EXECUTE $stmt$
            DELETE FROM memory_data.%2$I AS x
            USING old_rows AS o
            WHERE x.id = o.%3$I::text
              AND NOT EXISTS (SELECT FROM new_rows AS n WHERE n.%3$I = o.%3$I)
        $stmt$;
        EXECUTE $stmt$
            INSERT INTO memory_data.%2$I AS x (id, content_tsv, content_bytes)
            SELECT %4$s
            FROM new_rows AS n
            LEFT JOIN old_rows AS o ON o.%3$I = n.%3$I
            WHERE n.%3$I IS NOT NULL AND (o.%3$I IS NULL OR n.%5$I IS DISTINCT FROM o.%5$I)
            ON CONFLICT (id) DO UPDATE
                SET content_tsv = excluded.content_tsv, content_bytes = excluded.content_bytes
        $stmt$;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM memory_data.%2$I AS x USING old_rows AS o WHERE x.id = o.%3$I::text;
    ELSE
        -- TRUNCATE (its trigger is on the domain's table alone; see _wire_triggers): the rows
        -- gone lose their tsvector, exactly. With no inheritance child, or none holding a row
        -- (a TRUNCATE without ONLY empties them too), that is every row: the index is emptied.
        -- A TRUNCATE ONLY of a table with inheritance children leaves the children's rows:
        -- then only the index rows whose id the table (children included) no longer has go,
        -- one anti-join over the index and the rows left (emptying it all lost the children's
        -- rows from search_text; stop 29). The rows left are read with pgmemo's rights, so
        -- after _assert_inert (no code of another role runs); a table it refuses, or that
        -- pgmemo's owner may not read, keeps its index as it is, with a WARNING (diagnose:
        -- text_index_out_of_sync; memory.sync_text_index removes the rows gone).
        IF EXISTS (SELECT FROM pg_catalog.pg_inherits AS i WHERE i.inhparent = TG_RELID) THEN
            BEGIN
                PERFORM memory_private._assert_inert(TG_RELID::regclass, false);
                EXECUTE $stmt$SELECT EXISTS (SELECT FROM %8$s AS s)$stmt$ INTO v_kept;
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE WARNING 'pgmemo: the text index of domain "%%" keeps the rows truncated from %%: %%',
                    %6$L, TG_RELID::regclass, SQLERRM
                    USING HINT = %10$L;
                RETURN NULL;
            END;
        END IF;
        IF v_kept THEN
            EXECUTE $stmt$
                DELETE FROM memory_data.%2$I AS x
                WHERE NOT EXISTS (SELECT FROM %8$s AS s WHERE %9$s = x.id)
            $stmt$;
            GET DIAGNOSTICS v_gone = ROW_COUNT;
        ELSIF EXISTS (SELECT FROM memory_data.%2$I) THEN
            TRUNCATE memory_data.%2$I;
            v_gone := 1;
        END IF;
        IF v_gone > 0 THEN
            -- the text statistics counted the rows gone, and a TRUNCATE adds to no counter of
            -- writes (memory_private._text_stats_stale): dropped, so that the next
            -- run_maintenance refreshes them (search_text estimates them meanwhile)
            DELETE FROM memory_private.text_stats WHERE domain = %6$L;
        END IF;
    END IF;
    RETURN NULL;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'text'), memory_private._text_table_name(d.domain),
        d.id_column, memory_private._text_index_row_sql(d, 'n'), d.content_column, d.domain,
        memory_private._wire_guard_sql(d) || memory_private._wire_columns_guard_sql(d),
        memory_private._qualified(d.source_table),
        memory_private._source_id_sql(d, 's'), v_truncate_hint)
    UNION ALL
    -- The queue's statements on the domain's table (sql/51_queue_claim.sql), as functions: static
    -- SQL, so each backend plans them once, not at every batch. Arguments: those of the
    -- statement ($1 ... $4). Not for a distributed domain (its claim is per job).
    SELECT 'claim', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I(text, integer, text, interval)
RETURNS TABLE (job_id bigint, row_id text, content text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $body$
#variable_conflict use_column
BEGIN
    RETURN QUERY %2$s;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'claim'), memory_private._claim_sql(d))
    UNION ALL
    SELECT 'complete', format($fn$
CREATE OR REPLACE FUNCTION memory_private.%1$I(bigint[], %3$s.vector[], text, text)
RETURNS TABLE (done bigint[])
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $body$
#variable_conflict use_column
BEGIN
    RETURN QUERY %2$s;
END;
$body$
$fn$,
        memory_private._wire_name(d.domain, 'complete'), memory_private._complete_sql(d),
        memory_private._vector_schema());
END;
$$;

-- The triggers: (trigger name, the relation it is on, CREATE TRIGGER statement); each template
-- takes the trigger's name, the relation and the trigger function's name. The text index's
-- (text_*) only while the domain has one. The statement triggers go on the domain's relation and
-- on each of its partitions and inheritance children at any depth: PostgreSQL fires the
-- statement triggers of the relation a statement names, not its parent's, so a row written
-- straight into a partition was neither queued nor indexed, and an update there served its old
-- embedding and tsvector (stop 28). A write through the parent fires the parent's alone, once.
-- The TRUNCATE trigger stays on the parent: a TRUNCATE of it (with or without ONLY) fires it
-- once, after every relation it names is emptied, and it removes exactly the index rows of the
-- rows gone. A partition or child truncated on its own (it fires no trigger of the parent's) is
-- reported by diagnose (text_index_out_of_sync) and mended by memory.sync_text_index: exact
-- there, the trigger would compare the whole index with the whole table at every such TRUNCATE
-- (no transition table says which rows went), and once per relation of a TRUNCATE of the
-- parent.
CREATE OR REPLACE FUNCTION memory_private._wire_triggers(d memory_private.domains)
RETURNS TABLE (trigger_name name, relid oid, ddl text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT t.trigger_name, r.oid, format(t.template, t.trigger_name,
        memory_private._qualified(r.oid::regclass), memory_private._wire_name(d.domain, t.fn))
    FROM (VALUES
        (memory_private._wire_name(d.domain, 'before_update'), 'before_update', $sql$
            CREATE TRIGGER %I BEFORE UPDATE ON %s
            FOR EACH ROW EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'enqueue_insert'), 'enqueue', $sql$
            CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'enqueue_update'), 'enqueue', $sql$
            CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'dequeue_delete'), 'dequeue', $sql$
            CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        -- (fires after enqueue_update: triggers of one event fire in name order)
        (memory_private._wire_name(d.domain, 'unstale_update'), 'unstale', $sql$
            CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'text_insert'), 'text', $sql$
            CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'text_update'), 'text', $sql$
            CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'text_delete'), 'text', $sql$
            CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$),
        (memory_private._wire_name(d.domain, 'text_truncate'), 'text', $sql$
            CREATE TRIGGER %I AFTER TRUNCATE ON %s
            FOR EACH STATEMENT EXECUTE FUNCTION memory_private.%I()
        $sql$)
    ) AS t (trigger_name, fn, template)
    CROSS JOIN LATERAL (
        SELECT d.source_table::oid AS oid
        UNION
        -- (a distributed table's shards are not its partitions: the parent only; a foreign
        -- table can carry no trigger with transition tables)
        SELECT x.oid FROM memory_private._inheritance_tree(d.source_table) AS x
        JOIN pg_catalog.pg_class AS c ON c.oid = x.oid AND c.relkind IN ('r', 'p')
        WHERE NOT d.distributed
          AND t.trigger_name <> memory_private._wire_name(d.domain, 'text_truncate')
    ) AS r
    WHERE (t.fn <> 'text' OR memory_private._text_table(d) IS NOT NULL)
      -- a distributed table carries the row trigger only; any other table all but it
      AND d.distributed = (t.fn = 'before_update')
$$;

-- Wire a domain: (re)make its trigger functions and make sure its relation carries its
-- triggers (four, four more for an adopted domain's text index; one on a distributed table).
-- Idempotent and cheap when nothing changed (a trigger that exists is kept, with its enabled
-- state: bulk_load_begin pauses the insert trigger; no lock on the table then).
CREATE OR REPLACE FUNCTION memory_private._wire(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_item record;
    v_unsafe text;
BEGIN
    IF memory_private._qualified(d.source_table) IS NULL THEN
        RETURN;  -- the table is gone: nothing to wire (diagnose reports it)
    END IF;
    PERFORM memory_private._lock_ddl();  -- never beside a migrate (the callers took it first)
    FOR v_item IN SELECT * FROM memory_private._wire_functions(d) LOOP
        CONTINUE WHEN v_item.kind = 'before_update' AND NOT d.distributed;
        CONTINUE WHEN v_item.kind IN ('claim', 'complete') AND d.distributed;
        CONTINUE WHEN v_item.kind = 'text' AND memory_private._text_table(d) IS NULL;
        EXECUTE v_item.ddl;
        EXECUTE format($sql$REVOKE ALL ON FUNCTION memory_private.%I FROM PUBLIC$sql$,
            memory_private._wire_name(d.domain, v_item.kind));
    END LOOP;
    IF d.distributed THEN
        -- Citus runs no statement triggers with transition tables on a distributed table: the
        -- write functions queue its rows (sql/48_distributed.sql); the row trigger, which only
        -- changes NEW, runs on every shard.
        v_unsafe := current_setting('citus.enable_unsafe_triggers', true);
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    FOR v_item IN SELECT * FROM memory_private._wire_triggers(d) LOOP
        CONTINUE WHEN EXISTS (
            SELECT FROM pg_catalog.pg_trigger AS t
            WHERE t.tgrelid = v_item.relid AND t.tgname = v_item.trigger_name);
        EXECUTE v_item.ddl;
        -- The insert trigger made again during a bulk load is paused, as bulk_load_begin paused
        -- it. One that exists keeps the state bulk_load_begin / _finish gave it: pausing it at
        -- every migrate took the table's lock (a migrate waited for a bulk load's COPY, and the
        -- table's writers waited behind it), and a migrate that had read the domain as bulk
        -- loading paused it again just after bulk_load_finish resumed it (stop 37's review).
        IF d.bulk_loading AND NOT d.distributed
            AND v_item.trigger_name = memory_private._wire_name(d.domain, 'enqueue_insert') THEN
            EXECUTE format($sql$ALTER TABLE %s DISABLE TRIGGER %I$sql$,
                memory_private._qualified(v_item.relid::regclass), v_item.trigger_name);
        END IF;
    END LOOP;
    IF d.distributed THEN
        PERFORM set_config('citus.enable_unsafe_triggers', coalesce(v_unsafe, 'off'), true);
    END IF;
END;
$$;

-- Every domain, wired again from the templates (idempotent): so that a change of a template
-- reaches the domains made before it. A domain whose text configuration pgmemo does not trust
-- any more gets a WARNING and is wired all the same (see the loop).
CREATE OR REPLACE FUNCTION memory_private._wire_all()
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_count integer := 0;
BEGIN
    FOR v_d IN SELECT d.* FROM memory_private.domains AS d ORDER BY d.domain LOOP
        -- A text configuration pgmemo does not trust any more (05_trust.sql) is said, not
        -- refused: the functions made again run it no more than the ones they replace, and a
        -- domain left with an older template's functions could fail every write to its table.
        IF memory_private._text_table(v_d) IS NOT NULL AND EXISTS (
            SELECT FROM memory_private._text_config_untrusted(v_d.text_config)) THEN
            RAISE WARNING 'pgmemo: domain "%": %', v_d.domain,
                (SELECT u.detail FROM memory_private._text_config_untrusted(v_d.text_config) AS u
                 LIMIT 1)
                USING HINT = 'See SELECT * FROM memory.diagnose() (untrusted_text_config).';
        END IF;
        PERFORM memory_private._wire(v_d);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END;
$$;

-- The adopted domains with a partition or inheritance child that lacks one of pgmemo's statement
-- triggers (created or attached after the domain was wired: its rows would be written unseen),
-- wired again by memory.run_maintenance, each in a subtransaction: a relation pgmemo's owner may
-- not change, or a domain whose text configuration pgmemo does not trust any more (the text
-- trigger runs it; 05_trust.sql), is skipped with a WARNING, and diagnose
-- (text_index_out_of_sync, untrusted_text_config) names the triggers missing and why. The rows
-- such a relation held when it was attached (ATTACH PARTITION and
-- INHERIT fire no trigger), or got before this run, are in no text index: the relations that
-- lacked the text index's insert trigger (the topmost of them: each is read with what is under
-- it) are registered in memory_private.text_fills, whose batched fill (_text_rows_fill, run by
-- run_maintenance right after this) adds those of their rows the index lacks. Those without an
-- embedding are queued by enqueue_missing's sweep, which reads the whole table, attached
-- relations included, on every run. Returns how many domains were wired and how many relations
-- were registered for the fill.
CREATE OR REPLACE FUNCTION memory_private._wire_missing_all(OUT domains integer, OUT relations integer)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_d memory_private.domains;
    v_new regclass[];
BEGIN
    domains := 0;
    relations := 0;
    FOR v_d IN
        SELECT d.* FROM memory_private.domains AS d
        WHERE d.adopted AND NOT d.distributed
          AND memory_private._qualified(d.source_table) IS NOT NULL
          AND EXISTS (
            SELECT FROM memory_private._wire_triggers(d) AS t
            WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                              WHERE g.tgrelid = t.relid AND g.tgname = t.trigger_name))
        ORDER BY d.domain
    LOOP
        BEGIN
            -- the table before its partitions, as ALTER TABLE ... DETACH / ATTACH PARTITION
            -- lock them: CREATE TRIGGER on a partition first, then the table, deadlocked with a
            -- DETACH (found by an attack at stop 28)
            EXECUTE format($sql$LOCK TABLE %s IN ACCESS SHARE MODE$sql$,
                memory_private._qualified(v_d.source_table));
            -- (the text trigger put on a new relation runs the domain's text configuration)
            IF memory_private._text_table(v_d) IS NOT NULL THEN
                PERFORM memory_private._check_text_config(v_d.text_config);
            END IF;
            WITH lacking AS MATERIALIZED (
                SELECT t.relid FROM memory_private._wire_triggers(v_d) AS t
                WHERE t.trigger_name = memory_private._wire_name(v_d.domain, 'text_insert')
                  AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                                  WHERE g.tgrelid = t.relid AND g.tgname = t.trigger_name)
            )
            SELECT array_agg(l.relid::regclass ORDER BY l.relid) INTO v_new
            FROM lacking AS l
            WHERE NOT EXISTS (
                SELECT FROM pg_catalog.pg_inherits AS i JOIN lacking AS p ON p.relid = i.inhparent
                WHERE i.inhrelid = l.relid);
            PERFORM memory_private._wire(v_d);
            IF v_new IS NOT NULL THEN
                -- (a fill under way, of the whole table, goes on first: the relations follow it)
                INSERT INTO memory_private.text_fills AS f (domain, relations)
                VALUES (v_d.domain, v_new)
                ON CONFLICT (domain) DO UPDATE
                    SET relations = coalesce(f.relations, ARRAY[v_d.source_table::regclass])
                        || excluded.relations;
                relations := relations + cardinality(v_new);
            END IF;
            domains := domains + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pgmemo: the triggers of domain "%" could not be put on its partitions: %',
                v_d.domain, SQLERRM;
        END;
    END LOOP;
END;
$$;

-- What the migrate runner (pgmemo migrate, install.sql) calls once sql/ is applied, in the same
-- transaction: the per-domain objects made from templates are made again, and an adopted
-- domain without its text index gets it (sql/45_adopt.sql).
CREATE OR REPLACE FUNCTION memory_private._after_migrate()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM memory_private._wire_all();
    PERFORM memory_private._text_index_all();
END;
$$;

-- Unwire a domain: its triggers (when its relation still exists) and its trigger functions.
CREATE OR REPLACE FUNCTION memory_private._unwire(d memory_private.domains)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rel text := memory_private._qualified(d.source_table);
    v_item record;
BEGIN
    PERFORM memory_private._lock_ddl();  -- never beside a migrate (the callers took it first)
    -- every trigger that calls one of the domain's functions, on whatever relation (the table,
    -- its partitions and children, and one detached since: its triggers stay until now)
    FOR v_item IN
        SELECT tg.tgname, tg.tgrelid
        FROM pg_catalog.pg_trigger AS tg
        JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
        WHERE p.pronamespace = 'memory_private'::regnamespace
          AND p.proname IN (SELECT memory_private._wire_name(d.domain, f.kind)
                            FROM memory_private._wire_functions(d) AS f)
          AND NOT tg.tgisinternal
    LOOP
        EXECUTE format($sql$DROP TRIGGER IF EXISTS %I ON %s$sql$, v_item.tgname,
            memory_private._qualified(v_item.tgrelid::regclass));
    END LOOP;
    -- the ones that exist (a domain has only the kinds its table needs: a DROP of each possible
    -- name IF EXISTS printed a notice per missing one on every drop_domain)
    FOR v_item IN
        SELECT p.oid::pg_catalog.regprocedure AS fn
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'memory_private'::regnamespace
          AND p.proname IN (SELECT memory_private._wire_name(d.domain, f.kind)
                            FROM memory_private._wire_functions(d) AS f)
    LOOP
        EXECUTE format($sql$DROP FUNCTION IF EXISTS %s$sql$, v_item.fn);
    END LOOP;
END;
$$;
