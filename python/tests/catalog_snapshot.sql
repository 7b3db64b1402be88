-- The catalog of everything a database holds outside PostgreSQL's own schemas and outside
-- extensions' members, one row per object: (kind, object, detail). Used by test_upgrade.py to
-- compare an upgraded database with a fresh install, row for row.
--
-- Covered: schemas, relations (with options, ACL, owner, comment, view definition, row security),
-- columns (position, type, nullability, default, identity, generated, storage, ACL, comment),
-- indexes, constraints, sequences, types, functions (full definition with its settings, ACL,
-- owner, comment), triggers (on any table, with their comment), policies, default privileges,
-- event triggers, and the extensions present. ACLs are sorted (their order means nothing).
WITH ns AS (
    SELECT n.oid, n.nspname
    FROM pg_catalog.pg_namespace AS n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%'
      AND n.nspname NOT LIKE 'pg\_temp%'
),
ext_member AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend AS d WHERE d.deptype = 'e'
),
rel AS (
    SELECT c.*
    FROM pg_catalog.pg_class AS c
    JOIN ns ON ns.oid = c.relnamespace
    WHERE NOT EXISTS (
        SELECT FROM ext_member AS e
        WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid)
)
SELECT 'schema' AS kind, ns.nspname::text AS object,
    concat_ws(' | ', pg_catalog.pg_get_userbyid(n.nspowner), (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) AS x),
        pg_catalog.obj_description(n.oid, 'pg_namespace')) AS detail
FROM ns JOIN pg_catalog.pg_namespace AS n ON n.oid = ns.oid
WHERE ns.nspname <> 'public' OR n.nspacl IS NOT NULL
UNION ALL
SELECT 'relation', c.oid::regclass::text,
    concat_ws(' | ', c.relkind, c.relpersistence, c.reloptions::text, (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) AS x),
        pg_catalog.pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity,
        c.relreplident, pg_catalog.obj_description(c.oid, 'pg_class'),
        CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END,
        CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END)
FROM rel AS c
WHERE c.relkind <> 'i' AND c.relkind <> 'I'
UNION ALL
SELECT 'column', c.oid::regclass::text || '.' || a.attname,
    format('%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s',
        row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
        pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
        pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
        a.attstorage, a.attcompression, co.collname, (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) AS x),
        pg_catalog.col_description(c.oid, a.attnum))
FROM rel AS c
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation AS co
    ON co.oid = a.attcollation AND a.attcollation <> 100  -- 100: the default collation
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
UNION ALL
SELECT 'index', i.indexrelid::regclass::text,
    concat_ws(' | ', pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,
        i.indisreplident, i.indisclustered, x.reloptions::text,
        pg_catalog.obj_description(i.indexrelid, 'pg_class'))
FROM pg_catalog.pg_index AS i
JOIN rel AS c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class AS x ON x.oid = i.indexrelid
UNION ALL
SELECT 'constraint',
    coalesce(con.conrelid::regclass::text, con.contypid::regtype::text) || '.' || con.conname,
    concat_ws(' | ', con.contype, pg_catalog.pg_get_constraintdef(con.oid), con.condeferrable,
        con.condeferred, con.convalidated,
        pg_catalog.obj_description(con.oid, 'pg_constraint'))
FROM pg_catalog.pg_constraint AS con
JOIN ns ON ns.oid = con.connamespace
WHERE NOT EXISTS (
    SELECT FROM ext_member AS e
    WHERE e.classid = 'pg_catalog.pg_type'::regclass AND e.objid = con.contypid)
UNION ALL
SELECT 'sequence', s.seqrelid::regclass::text,
    concat_ws(' | ', s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
        s.seqcache, s.seqcycle)
FROM pg_catalog.pg_sequence AS s
JOIN rel AS c ON c.oid = s.seqrelid
UNION ALL
SELECT 'type', t.oid::regtype::text,
    concat_ws(' | ', t.typtype, pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull,
        t.typdefault, (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(t.typacl) AS x), pg_catalog.obj_description(t.oid, 'pg_type'),
        (SELECT string_agg(en.enumlabel, ',' ORDER BY en.enumsortorder)
         FROM pg_catalog.pg_enum AS en WHERE en.enumtypid = t.oid))
FROM pg_catalog.pg_type AS t
JOIN ns ON ns.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c'
           AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = t.typrelid) = 'c'))
  AND NOT EXISTS (
      SELECT FROM ext_member AS e
      WHERE e.classid = 'pg_catalog.pg_type'::regclass AND e.objid = t.oid)
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
    concat_ws(' | ', pg_catalog.pg_get_userbyid(p.proowner), (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) AS x),
        pg_catalog.obj_description(p.oid, 'pg_proc'),
        CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END)
FROM pg_catalog.pg_proc AS p
JOIN ns ON ns.oid = p.pronamespace
WHERE NOT EXISTS (
    SELECT FROM ext_member AS e
    WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid)
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text || '.' || t.tgname,
    concat_ws(' | ', pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled,
        pg_catalog.obj_description(t.oid, 'pg_trigger'))
FROM pg_catalog.pg_trigger AS t
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy', pol.polrelid::regclass::text || '.' || pol.polname,
    concat_ws(' | ', pol.polcmd, pol.polpermissive, pol.polroles::regrole[]::text,
        pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
        pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid))
FROM pg_catalog.pg_policy AS pol
UNION ALL
SELECT 'default acl', concat_ws('.', pg_catalog.pg_get_userbyid(da.defaclrole),
        da.defaclnamespace::regnamespace::text, da.defaclobjtype),
    (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(da.defaclacl) AS x)
FROM pg_catalog.pg_default_acl AS da
UNION ALL
SELECT 'event trigger', et.evtname,
    concat_ws(' | ', et.evtevent, et.evtfoid::regproc::text, et.evtenabled, et.evttags::text)
FROM pg_catalog.pg_event_trigger AS et
UNION ALL
SELECT 'extension', x.extname, concat_ws(' | ', x.extversion, x.extnamespace::regnamespace::text)
FROM pg_catalog.pg_extension AS x
ORDER BY 1, 2, 3
