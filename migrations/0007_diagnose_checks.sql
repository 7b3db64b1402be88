-- 0007_diagnose_checks: memory.diagnose's checks became one function each.
--
-- Why: memory_private._diagnose_domain ran all fourteen per-domain checks in one 335-line
-- function. sql/61_diagnose.sql now has one memory_private._check_<check_name>(domains) per
-- check, combined by memory_private._diagnose; the old function is retired here, once (sql/
-- holds only CREATE OR REPLACE). memory.diagnose returns the same rows as before.
DROP FUNCTION IF EXISTS memory_private._diagnose_domain(memory_private.domains);
