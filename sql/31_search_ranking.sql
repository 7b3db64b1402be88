-- The memory-aware ranking of memory.search and memory.search_hybrid (recency, importance):
-- the knob check, a memory's importance and the blended score. Moved out of 30_search.sql.

-- Validates the memory-aware ranking knobs shared by memory.search and memory.search_hybrid.
CREATE OR REPLACE FUNCTION memory_private._check_ranking(
    recency_half_life interval, importance_weight double precision
)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF recency_half_life IS NOT NULL AND extract(epoch FROM recency_half_life) <= 0 THEN
        RAISE EXCEPTION 'recency_half_life must be a positive interval, got %', recency_half_life
            USING ERRCODE = '22023';
    END IF;
    IF importance_weight IS NOT NULL
        AND (importance_weight < 0 OR importance_weight > 1 OR importance_weight = 'NaN') THEN
        RAISE EXCEPTION 'importance_weight must be between 0 and 1, got %', importance_weight
            USING ERRCODE = '22023';
    END IF;
END;
$$;

-- A memory's importance: metadata->>'importance' when it is a JSON number (clamped to [0, 1]);
-- 0.5 (neutral) when absent or not a number.
CREATE OR REPLACE FUNCTION memory_private._importance(metadata jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN jsonb_typeof(metadata -> 'importance') = 'number'
        THEN least(greatest((metadata ->> 'importance')::double precision, 0), 1)
        ELSE 0.5 END
$$;

-- The memory-aware score: relevance (>= 0) blended with importance, times the recency decay
-- 0.5 ^ (age / recency_half_life), age from updated_at. Either knob may be NULL (off).
CREATE OR REPLACE FUNCTION memory_private._blend(
    relevance double precision, metadata jsonb, updated_at timestamptz,
    recency_half_life interval, importance_weight double precision
)
RETURNS double precision
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT ((1 - coalesce(importance_weight, 0)) * greatest(coalesce(relevance, 0), 0)
            + coalesce(importance_weight, 0) * memory_private._importance(metadata))
        * CASE WHEN recency_half_life IS NULL THEN 1
            -- capped exponent: power() raises an underflow error below ~1e-308
            ELSE power(0.5::double precision, least(
                greatest(extract(epoch FROM now() - updated_at), 0)
                / extract(epoch FROM recency_half_life), 1000)::double precision)
        END
$$;
