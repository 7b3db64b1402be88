-- 0030_wire_partitions: an adopted table's statement triggers (the queue's, the stale-embedding
-- guard's and the text index's) go on each of its partitions and inheritance children too, since
-- PostgreSQL fires only the target's statement triggers: a row written straight into a partition
-- was never queued or indexed, and an update there kept its old embedding and tsvector
-- (sql/43_wire.sql). memory_private._wire_triggers gained the relation of each trigger: dropped
-- here and made again by the SQL files. Not breaking: a private function.
DROP FUNCTION IF EXISTS memory_private._wire_triggers(memory_private.domains);
