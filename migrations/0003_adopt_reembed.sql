-- 0003_adopt_reembed: adopted domains (an application's own table behind a pgmemo domain) and
-- re-embedding into a shadow column.
--
-- Why: users already have tables with an embedding column (memory.adopt_table registers one
-- without copying data: the domain's table is then a VIEW over the source table), and every
-- model change needs a re-embed without downtime (memory.begin_reembed fills a shadow column
-- through the queue while searches keep using the current one). Factory domains keep
-- adopted = false and NULL source columns.

ALTER TABLE memory_private.domains
ADD COLUMN adopted boolean NOT NULL DEFAULT FALSE,
ADD COLUMN source_table regclass,
ADD COLUMN id_column name,
ADD COLUMN content_column name,
ADD COLUMN embedding_column name,
ADD CONSTRAINT domains_adopted_check CHECK (
    NOT adopted
    OR (
        source_table IS NOT NULL
        AND id_column IS NOT NULL
        AND content_column IS NOT NULL
        AND embedding_column IS NOT NULL
    )
);

COMMENT ON COLUMN memory_private.domains.source_table IS
'Adopted domains: the application table behind the view <table_schema>.<table_name>.';

-- One row per re-embed in progress: the shadow domain fills next_column (vector(dimension)).
CREATE TABLE memory_private.reembeds (
    domain text PRIMARY KEY REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    shadow_domain text NOT NULL UNIQUE,
    embedding_model text,
    dimension integer NOT NULL,
    next_column name NOT NULL,
    model_column name,
    started_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reembeds_dimension_check CHECK (dimension BETWEEN 1 AND 2000)
);

COMMENT ON TABLE memory_private.reembeds IS
'Re-embeds in progress (memory.begin_reembed): the shadow domain, the new model and dimension, '
'and the shadow column it fills.';
