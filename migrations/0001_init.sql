-- 0001_init: the three schemas, the domain registry, the embedding queue and worker heartbeats.
--
-- Why: pgmemo keeps every piece of logic in SQL. Tables live in memory_private (bookkeeping)
-- and memory_data (the domain tables the factory makes); the public API in schema memory is
-- functions and views only, re-created from sql/ by every migrate run.
-- The migration ledger (memory_private.schema_migrations) is created by the runner's bootstrap,
-- before this file, so that it can record this file too.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS memory;
CREATE SCHEMA IF NOT EXISTS memory_data;

COMMENT ON SCHEMA memory IS
'pgmemo public API: functions and views for AI memories (text, embedding, metadata).';
COMMENT ON SCHEMA memory_private IS
'pgmemo bookkeeping tables. Not a public interface: use the functions in schema memory.';
COMMENT ON SCHEMA memory_data IS
'pgmemo domain tables (<domain>_memories), made by memory.create_domain().';

-- The registry: one row per domain.
CREATE TABLE memory_private.domains (
    domain text PRIMARY KEY,
    table_schema name NOT NULL DEFAULT 'memory_data',
    table_name name NOT NULL,
    dimension integer NOT NULL,
    distance text NOT NULL,
    embedding_model text,
    hnsw_m integer NOT NULL DEFAULT 16,
    hnsw_ef_construction integer NOT NULL DEFAULT 64,
    text_config regconfig NOT NULL DEFAULT 'english',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domains_name_check CHECK (domain ~ '^[a-z][a-z0-9_]{0,39}$'),
    CONSTRAINT domains_dimension_check CHECK (dimension BETWEEN 1 AND 2000),
    CONSTRAINT domains_distance_check CHECK (distance IN ('cosine', 'l2', 'inner_product')),
    CONSTRAINT domains_table_unique UNIQUE (table_schema, table_name)
);

-- The embedding queue: at most one job per row waiting for an embedding.
-- status: pending (attempts = 0: new; > 0: retrying after a failure), claimed (leased to a
-- worker until lease_until), dead (retry limit reached; kept with last_error, re-queueable).
CREATE TABLE memory_private.embedding_queue (
    job_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain text NOT NULL REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    row_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_at timestamptz,
    lease_until timestamptz,
    content_md5 text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT embedding_queue_row_unique UNIQUE (domain, row_id),
    CONSTRAINT embedding_queue_status_check CHECK (status IN ('pending', 'claimed', 'dead')),
    CONSTRAINT embedding_queue_claim_check CHECK (
        status <> 'claimed' OR (claimed_at IS NOT NULL AND lease_until IS NOT NULL)
    )
);

CREATE INDEX embedding_queue_ready_idx
ON memory_private.embedding_queue (run_after, job_id) WHERE status = 'pending';
CREATE INDEX embedding_queue_lease_idx
ON memory_private.embedding_queue (lease_until) WHERE status = 'claimed';
CREATE INDEX embedding_queue_dead_idx
ON memory_private.embedding_queue (domain) WHERE status = 'dead';

-- Worker heartbeats, so diagnostics can tell whether anything drains the queue.
CREATE TABLE memory_private.workers (
    worker text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    jobs_done bigint NOT NULL DEFAULT 0,
    jobs_failed bigint NOT NULL DEFAULT 0,
    info jsonb NOT NULL DEFAULT '{}'
);
