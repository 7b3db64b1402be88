-- 0004_halfvec: domains may store their embeddings as halfvec (16-bit floats).
--
-- Why: a halfvec HNSW index is half the size of a vector one (so twice the rows fit in
-- shared_buffers) at a recall cost measured in BENCHMARKS.md, and halfvec indexes reach 4,000
-- dimensions where vector indexes stop at 2,000. memory.create_domain(..., embedding_type =>
-- 'halfvec') makes such a domain; everything else (store, search, the queue) is unchanged, since
-- pgvector casts vector to halfvec implicitly.

ALTER TABLE memory_private.domains
ADD COLUMN embedding_type text NOT NULL DEFAULT 'vector',
ADD CONSTRAINT domains_embedding_type_check CHECK (embedding_type IN ('vector', 'halfvec'));

ALTER TABLE memory_private.domains
DROP CONSTRAINT domains_dimension_check,
ADD CONSTRAINT domains_dimension_check CHECK (
    dimension BETWEEN 1 AND CASE WHEN embedding_type = 'halfvec' THEN 4000 ELSE 2000 END
);
