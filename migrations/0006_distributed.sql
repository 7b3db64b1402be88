-- 0006_distributed: domains distributed over a Citus cluster (memory.distribute_domain).
--
-- Why: a domain that outgrows one server can be sharded by id across Citus workers, with one
-- HNSW index per shard. Citus runs no statement triggers with transition tables on distributed
-- tables, so for a distributed domain the write functions queue rows themselves; the registry
-- says which domains take that path. Factory domains keep distributed = false: nothing changes
-- for them, and nothing changes on a server without Citus.

ALTER TABLE memory_private.domains
ADD COLUMN distributed boolean NOT NULL DEFAULT FALSE;

COMMENT ON COLUMN memory_private.domains.distributed IS
'The domain table is a Citus distributed table (memory.distribute_domain): rows are queued by '
'the write functions instead of statement triggers.';
