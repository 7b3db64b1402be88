-- 0014_diagnose_distributed_checks: the Citus checks of memory.diagnose are one function each.
--
-- Why: memory_private._diagnose_distributed ran six checks (not_distributed,
-- distributed_outside_pgmemo, worker_unreachable, citus_connection_cache, shard_missing_index,
-- shard_index_settings_differ) in one function. sql/48_distributed.sql now has one
-- memory_private._check_<check_name>(domains) per check, each with its COMMENT, combined by
-- memory_private._diagnose like the others; the old function is retired here, once.
-- memory.diagnose returns the same rows as before.
DROP FUNCTION IF EXISTS memory_private._diagnose_distributed(memory_private.domains);
