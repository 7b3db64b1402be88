-- 0027_text_fill_one_pass: run_maintenance's passes over adopted domains' text indexes are one.
--
-- memory_private._text_index_fill_all (sql/45_adopt.sql) fills, per domain, the content sizes an
-- index made by 0024 lacks and the rows of an index being filled (adopted without indexes), each
-- domain checked once; it replaces _text_sizes_fill_all (0025) and _text_rows_fill_all (0026),
-- which walked the domains twice with the same loop. Not breaking: private functions only.
DROP FUNCTION IF EXISTS memory_private._text_sizes_fill_all(integer);
DROP FUNCTION IF EXISTS memory_private._text_rows_fill_all(integer);
