-- 0012_queue_mapping: one write path for every domain, and a queue that claims per domain.
--
-- Why: factory domains and adopted tables had two trigger families and two ways to find a
-- domain's rows. The registry now holds the column mapping of every domain (a factory domain is
-- a mapping of the table pgmemo made: id, content, embedding, embedding_model, updated_at), so
-- the queue, the triggers and the writers read one mapping. Claims are made per domain in one
-- statement, so the ready index leads with the domain.
-- Not breaking: the public functions keep their signatures (claim_embedding_jobs renews a job's
-- id at every claim: the id a worker completes with is its proof of that claim).

ALTER TABLE memory_private.domains
ADD COLUMN model_column name,
ADD COLUMN touch_column name;

COMMENT ON COLUMN memory_private.domains.model_column IS
'The column that records the model of each embedding (NULL: none).';
COMMENT ON COLUMN memory_private.domains.touch_column IS
'The column the write triggers set to now() on every update (factory tables: updated_at; '
'adopted tables: NULL, the application keeps its own).';

-- Factory domains: the table pgmemo made. (A table dropped out of band keeps a NULL relation.)
UPDATE memory_private.domains AS d
SET
    source_table = to_regclass(format('%I.%I', d.table_schema, d.table_name)),
    id_column = 'id', content_column = 'content', embedding_column = 'embedding',
    model_column = 'embedding_model', touch_column = 'updated_at'
WHERE NOT d.adopted;

-- Adopted domains: the model column they were adopted with (the re-embed's own column for a
-- shadow domain; else a text column named embedding_model that is none of the mapped ones).
UPDATE memory_private.domains AS d
SET
    model_column = coalesce(
        (
            SELECT r.model_column FROM memory_private.reembeds AS r
            WHERE r.shadow_domain = d.domain
        ),
        (
            SELECT a.attname FROM pg_catalog.pg_attribute AS a
            WHERE
                a.attrelid = d.source_table AND a.attname = 'embedding_model'
                AND a.atttypid = 'text'::regtype AND a.attnum > 0 AND NOT a.attisdropped
                AND NOT EXISTS (
                    SELECT FROM memory_private.reembeds AS r
                    WHERE r.shadow_domain = d.domain
                )
                AND a.attname NOT IN (d.id_column, d.content_column, d.embedding_column)
        )
    )
WHERE d.adopted;

-- Claims are made per domain, oldest first: the ready index leads with the domain.
DROP INDEX memory_private.embedding_queue_ready_idx;
CREATE INDEX embedding_queue_ready_idx
ON memory_private.embedding_queue (domain, run_after, job_id) WHERE status = 'pending';

-- A bulk load in progress (memory.bulk_load_begin) pauses the domain's insert trigger: the
-- registry says so, so that re-wiring a domain keeps it paused.
ALTER TABLE memory_private.domains
ADD COLUMN bulk_loading boolean NOT NULL DEFAULT FALSE;

-- The two trigger families of 0004 and before (factory tables: memory_before_update,
-- memory_enqueue_insert, memory_enqueue_update, memory_dequeue_delete on shared functions;
-- adopted tables: pgmemo_<domain>_* on generic TG_ARGV functions) go; the one family
-- (sql/43_wire.sql) is wired for every domain by memory_private._after_migrate(), which the
-- migrate runner calls once sql/ is applied, in the same transaction.
DO $legacy$
DECLARE
    v_old regprocedure[] := ARRAY[
        to_regprocedure('memory_private._before_update()'),
        to_regprocedure('memory_private._enqueue_rows()'),
        to_regprocedure('memory_private._dequeue_rows()'),
        to_regprocedure('memory_private._adopted_before_update()'),
        to_regprocedure('memory_private._adopted_enqueue()'),
        to_regprocedure('memory_private._adopted_dequeue()')];
    v_trigger record;
    v_fn regprocedure;
BEGIN
    -- Citus: triggers of a distributed table are changed on its shards too.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    FOR v_trigger IN
        SELECT t.tgrelid::regclass AS rel, t.tgname, t.tgenabled, t.tgfoid
        FROM pg_catalog.pg_trigger AS t
        WHERE t.tgfoid = ANY (v_old) AND NOT t.tgisinternal
    LOOP
        IF v_trigger.tgenabled = 'D' AND v_trigger.tgname = 'memory_enqueue_insert' THEN
            UPDATE memory_private.domains AS d SET bulk_loading = TRUE
            WHERE d.source_table = v_trigger.rel AND NOT d.adopted;
        END IF;
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
    END LOOP;
    FOREACH v_fn IN ARRAY v_old LOOP
        IF v_fn IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION %s', v_fn);
        END IF;
    END LOOP;
END;
$legacy$;
