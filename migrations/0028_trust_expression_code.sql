-- 0028_trust_expression_code: the adopted-table code check reads every expression pgmemo's reads
-- and writes evaluate (stop 26's attack reviews; sql/05_trust.sql: _code_objects,
-- _expression_code, _foreign_policy_code). memory_private._code_risk gained its on_read argument:
-- the two-argument version of an intermediate main is dropped. Not breaking: private functions.
DROP FUNCTION IF EXISTS memory_private._code_risk(oid, oid);
