-- 0031_text_fill_relations: the rows of a partition or inheritance child attached to an adopted
-- table (ALTER TABLE ... ATTACH PARTITION, ALTER TABLE ... INHERIT) fire no trigger, so they were
-- never put in the domain's text index: memory.search_text did not find them. Now
-- memory.run_maintenance, which puts the domain's triggers on such a relation
-- (memory_private._wire_missing_all), also registers it in memory_private.text_fills, and the
-- batched fill that completes an index adopted without indexes (memory.fill_text_index, 50,000
-- rows a run) adds its rows, reading that relation only.
-- text_fills.relations: the relations a fill reads, in order (NULL: the domain's table, a fill of
-- adoption); _wire_missing_all returns the relations it registered too (OUT parameters), so it
-- is dropped here and made again by the SQL files. Not breaking: a private table and function.

ALTER TABLE memory_private.text_fills ADD COLUMN relations regclass[];

COMMENT ON TABLE memory_private.text_fills IS
'Adopted domains whose text index (memory_data.<domain>_text) is still being filled from their '
'table (adopt_table with create_indexes => false), or from partitions or inheritance children '
'attached with rows (relations, registered by run_maintenance when it wires them; NULL: the '
'whole table): memory.fill_text_index and memory.run_maintenance add the rows in batches, '
'relation by relation, in id order after last_id (the last batch''s last id, as text, in '
'relations[1]), counting them in rows_filled, and delete the domain''s row when done.';

DROP FUNCTION IF EXISTS memory_private._wire_missing_all();
