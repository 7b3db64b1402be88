-- Trust: who a call is checked as, per-domain access, and the guard that keeps pgmemo's definer
-- rights away from code another role controls (docs/SECURITY.md explains the model).
--
-- * memory_private._caller(): the role a call of memory.* is checked as. Inside a SECURITY
--   DEFINER function current_user is pgmemo's owner, so the caller is read from the session:
--   the role of SET ROLE when one is set, else the login role (session_user).
-- * memory_private._can(domain, access): per-domain access ('read' or 'write') of the caller,
--   from memory_private.domain_access (memory.grant_domain / memory.revoke_domain); pgmemo's
--   owner, superusers and memory_admin members may always. Roles are matched by OID, never by
--   name (migration 0037): the names of the API roles are read once per migrate run
--   (_bind_api_roles), those of grant_domain's roles once per call.
-- * memory_private._assert_inert(rel, for_write): an adopted table is read and written with the
--   rights of pgmemo's owner, so it must not run code of another role: triggers, rules,
--   row-level security, defaults, generated columns, constraints, index expressions and the
--   columns' types may only call code owned by pgmemo's owner or a superuser that computes a
--   value (memory_private._code_risk), and a domain another role owns is refused. Checked at
--   adoption and, with the table locked, on every call that touches it.
-- * memory_private._domain_for(domain, access): the domain row for a public function, after
--   both checks. Every public function that takes a domain starts with it.

-- pgmemo's owner: the role that owns its schemas (the migrating user).
CREATE OR REPLACE FUNCTION memory_private._owner()
RETURNS oid
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT n.nspowner FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'memory_private'
$$;

-- The caller. Refused within a security-restricted operation: an index expression evaluated by
-- ANALYZE, VACUUM, REINDEX or autovacuum, a materialized view's refresh. PostgreSQL runs those as
-- the owner of the table or view, while the session (what is read here) stays that of whoever
-- started them: a superuser's ANALYZE, or autovacuum's bootstrap superuser, with nobody's action.
-- A reader's index function calling memory.search_text read every domain that way (stop 36's
-- attack review). PostgreSQL refuses UNLISTEN there, and only there within a definer function
-- (error 42501, "cannot execute UNLISTEN within security-restricted operation"); elsewhere
-- UNLISTEN of a channel nobody listens to does nothing (about 3,000 instructions), on a standby
-- too. Volatile: a stable function may run no UNLISTEN. (PL/pgSQL: every call of memory.* asks,
-- and a SQL function with a SET clause is never inlined and costs a new executor per call, about
-- four times this.)
CREATE OR REPLACE FUNCTION memory_private._caller()
RETURNS name
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    UNLISTEN pgmemo_refuses_security_restricted_operations;
    RETURN CASE WHEN pg_catalog.current_setting('role') = 'none' THEN session_user
        ELSE pg_catalog.current_setting('role')::name END;
END;
$$;

-- Whether role r counts as pgmemo itself: a superuser, or a member of pgmemo's owner that has its
-- privileges (USAGE: a membership granted WITH INHERIT FALSE, SET FALSE gives none, and counted
-- as trust it let such a member's trigger run as pgmemo's owner; stop 26's third review).
-- The one place of the rule: it accepts the bootstrap superuser (10, who owns the built-ins) and
-- pgmemo's owner too. The checks below test "IN (10, pgmemo's owner)" before calling it only to
-- skip the call for the objects nearly every row names (a SQL function with a SET clause costs a
-- call per row), never to decide otherwise.
CREATE OR REPLACE FUNCTION memory_private._trusted(r oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce((SELECT a.rolsuper FROM pg_catalog.pg_roles AS a WHERE a.oid = r), false)
        OR pg_catalog.pg_has_role(r, memory_private._owner(), 'USAGE')
$$;

-- A text search configuration a domain may use (create_domain's text_config): it and every
-- dictionary it maps words to belong to a role pgmemo trusts (_trusted). The one place of the
-- rule: one row per object of the configuration that breaks it (none: the configuration may be
-- used), for the check that refuses (_check_text_config) and for diagnose
-- (_check_untrusted_text_config, 61_diagnose.sql). Another role's could be changed under the
-- domain: a mapping dropped changes what is indexed and searched without a word, and DROP ...
-- CASCADE drops the domain's stored tsvector column and its GIN index (then every text search
-- of the domain fails); and its parser and dictionaries run with pgmemo's rights in the
-- domain's triggers and text index. A configuration handed to another role later (ALTER TEXT
-- SEARCH CONFIGURATION ... OWNER TO), or given a mapping to another role's dictionary, breaks
-- it then: every call that makes objects from an existing domain's configuration checks again.
-- kind is CONFIGURATION or DICTIONARY (as ALTER TEXT SEARCH spells it), object the qualified
-- name, detail the sentence.
CREATE OR REPLACE FUNCTION memory_private._text_config_untrusted(text_config regconfig)
RETURNS TABLE (kind text, object text, owner name, detail text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT x.kind, x.object, pg_catalog.pg_get_userbyid(x.owner),
        pg_catalog.format('%s belongs to %s, a role pgmemo does not trust', x.what,
            pg_catalog.pg_get_userbyid(x.owner))
    FROM (
        SELECT 0 AS ord, 'CONFIGURATION' AS kind, c.oid::regconfig::text AS object,
            pg_catalog.format('text search configuration %s', c.oid::regconfig) AS what,
            c.cfgowner AS owner
        FROM pg_catalog.pg_ts_config AS c WHERE c.oid = text_config
        UNION
        SELECT 1, 'DICTIONARY', t.oid::regdictionary::text,
            pg_catalog.format('text search dictionary %s (of configuration %s)',
                t.oid::regdictionary, text_config), t.dictowner
        FROM pg_catalog.pg_ts_config_map AS m
        JOIN pg_catalog.pg_ts_dict AS t ON t.oid = m.mapdict
        WHERE m.mapcfg = text_config
    ) AS x
    WHERE NOT memory_private._trusted(x.owner)
    ORDER BY x.ord, x.object
$$;

-- The configuration may be used (_text_config_untrusted finds nothing), or 42501 naming the
-- first object of it that breaks the rule. Called by create_domain, and again on an existing
-- domain's configuration wherever pgmemo makes objects or text-index rows from it
-- (begin_reembed, an adopted domain's view and text index, sync_text_index, fill_text_index,
-- run_maintenance's wiring of new partitions).
CREATE OR REPLACE FUNCTION memory_private._check_text_config(text_config regconfig)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_detail text;
BEGIN
    SELECT u.detail INTO v_detail FROM memory_private._text_config_untrusted(text_config) AS u
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%', v_detail
            USING ERRCODE = '42501',
                  HINT = 'Use a configuration and dictionaries owned by pgmemo''s owner or a '
                      || 'superuser (the built-in ones: english, simple, ...); for an existing '
                      || 'domain, see memory.diagnose() (untrusted_text_config).';
    END IF;
END;
$$;

-- rel and its partitions / inheritance children, at any depth.
CREATE OR REPLACE FUNCTION memory_private._inheritance_tree(rel regclass)
RETURNS TABLE (oid oid)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    WITH RECURSIVE tree (oid) AS (
        SELECT rel::oid
        UNION
        SELECT i.inhrelid FROM pg_catalog.pg_inherits AS i JOIN tree AS t ON i.inhparent = t.oid
    )
    SELECT tree.oid FROM tree
$$;

-- A type and the types it is made from, at any depth: the element type of an array, the base
-- type of a domain, the subtype of a range, the range of a multirange, the attribute types of a
-- composite (a domain over a domain over an array of a composite holding a range of a domain ...).
CREATE OR REPLACE FUNCTION memory_private._type_closure(t oid)
RETURNS TABLE (oid oid)
LANGUAGE sql STABLE
ROWS 2
SET search_path FROM CURRENT
AS $$
    WITH RECURSIVE closure (oid) AS (
        SELECT t
        UNION
        SELECT v.made_of
        FROM closure AS c
        JOIN pg_catalog.pg_type AS ty ON ty.oid = c.oid
        CROSS JOIN LATERAL (
            VALUES (ty.typelem), (ty.typbasetype),
                ((SELECT r.rngsubtype FROM pg_catalog.pg_range AS r WHERE r.rngtypid = ty.oid)),
                ((SELECT r.rngtypid FROM pg_catalog.pg_range AS r WHERE r.rngmultitypid = ty.oid))
            UNION ALL
            SELECT a.atttypid FROM pg_catalog.pg_attribute AS a
            WHERE ty.typrelid <> 0 AND a.attrelid = ty.typrelid AND a.attnum > 0
              AND NOT a.attisdropped
        ) AS v (made_of)
        WHERE v.made_of <> 0
    )
    SELECT closure.oid FROM closure
$$;

-- Why function f may not run in what pgmemo's writes evaluate on an adopted table (defaults,
-- generated columns, constraints, index expressions, the types of its columns), or NULL. Owned
-- by a role _trusted does not accept: its owner can change it at any time. And even a built-in
-- or a superuser's function, when it does more than compute a value from its arguments: a
-- volatile one (ts_rewrite(tsquery, text) and query_to_xml run the query they are given,
-- set_config changes the settings pgmemo's statements run with, dblink_exec or cron.schedule
-- would run SQL as pgmemo's owner), and the stable ones that read a relation named by their
-- argument (table_to_xml and its kin: a security_invoker view's functions run as the caller).
-- Volatile ones that only make a value are accepted: sequences, random values and UUIDs, the
-- clock. on_read: for what a read's planning runs (it folds no volatile function).
CREATE OR REPLACE FUNCTION memory_private._code_risk(f oid, me oid, on_read boolean DEFAULT FALSE)
RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN p.proowner NOT IN (10, me) AND NOT memory_private._trusted(p.proowner)
            THEN pg_catalog.format('owned by %s', p.proowner::regrole)
        WHEN p.provolatile = 'v' AND NOT on_read AND NOT (
                (p.oid < 16384 AND p.proname = ANY (ARRAY['nextval', 'gen_random_uuid', 'uuidv4',
                    'uuidv7', 'random', 'random_normal', 'clock_timestamp', 'timeofday']::name[]))
                OR (p.proname = ANY (ARRAY['uuid_generate_v1', 'uuid_generate_v1mc',
                    'uuid_generate_v4']::name[]) AND EXISTS (
                    SELECT FROM pg_catalog.pg_depend AS d
                    JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid
                    WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
                      AND e.extname = 'uuid-ossp')))
            THEN 'a volatile function (it may do more than compute a value)'
        WHEN p.oid < 16384 AND p.proname ~ '^(table|schema|database|query|cursor)_to_xml'
            THEN 'a function that reads the relations it is given'
        WHEN 'pg_catalog.cstring'::regtype::oid = ANY (p.proargtypes)
            OR 'pg_catalog.internal'::regtype::oid = ANY (p.proargtypes)
            THEN 'a type''s input or support function (domain_in, record_in ... run the code of '
                || 'the type whose oid they are given)'
        WHEN p.oid < 16384 AND p.proname IN ('pg_input_is_valid', 'pg_input_error_info')
            THEN 'a function that runs the input function (and a domain''s constraints) of the '
                || 'type it is given by name'
    END
    FROM pg_catalog.pg_proc AS p WHERE p.oid = f
$$;

-- The objects of rel (and its partitions / children) whose expressions are code run on its rows,
-- with their expression (a node tree: built-in functions, pinned, are never in pg_depend) and
-- whether READING the table runs it too: the planner folds the expressions of indexes (and
-- partial indexes' predicates), of extended statistics and the CHECK constraints of children
-- (constraint exclusion) when it plans a query on the table, so an IMMUTABLE function called
-- there with constant arguments runs in pgmemo's read (stop 26's second attack review).
CREATE OR REPLACE FUNCTION memory_private._code_objects(rel regclass)
RETURNS TABLE (relid oid, classid oid, objid oid, what text, expr text, on_read boolean)
LANGUAGE sql STABLE
ROWS 4
SET search_path FROM CURRENT
AS $$
    WITH tree AS MATERIALIZED (SELECT t.oid FROM memory_private._inheritance_tree(rel) AS t)
    SELECT c.oid, 'pg_catalog.pg_attrdef'::regclass::oid, ad.oid,
        pg_catalog.format('default or generated expression of column %I', a.attname),
        ad.adbin::text, false
    FROM tree AS c
    JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = c.oid
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    UNION ALL
    SELECT c.oid, 'pg_catalog.pg_constraint'::regclass::oid, k.oid,
        pg_catalog.format('constraint %I', k.conname), k.conbin::text,
        k.contype = 'c'  -- (constraint exclusion folds them: children, or any table when a
                         -- session sets constraint_exclusion = on)
    FROM tree AS c JOIN pg_catalog.pg_constraint AS k ON k.conrelid = c.oid
    UNION ALL
    SELECT c.oid, 'pg_catalog.pg_class'::regclass::oid, i.indexrelid,
        pg_catalog.format('index %s', i.indexrelid::regclass),
        pg_catalog.concat(i.indexprs::text, ' ', i.indpred::text),
        i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
    FROM tree AS c JOIN pg_catalog.pg_index AS i ON i.indrelid = c.oid
    UNION ALL
    SELECT c.oid, 'pg_catalog.pg_statistic_ext'::regclass::oid, x.oid,
        pg_catalog.format('statistics object %I.%I',
            (SELECT n.nspname FROM pg_catalog.pg_namespace AS n WHERE n.oid = x.stxnamespace),
            x.stxname),
        x.stxexprs::text, x.stxexprs IS NOT NULL
    FROM tree AS c JOIN pg_catalog.pg_statistic_ext AS x ON x.stxrelid = c.oid
    UNION ALL
    -- a trigger's WHEN clause (its function is checked by owner below)
    SELECT c.oid, 'pg_catalog.pg_trigger'::regclass::oid, tg.oid,
        pg_catalog.format('the WHEN clause of trigger %I', tg.tgname), tg.tgqual::text, false
    FROM tree AS c JOIN pg_catalog.pg_trigger AS tg ON tg.tgrelid = c.oid
    WHERE tg.tgenabled <> 'D' AND tg.tgqual IS NOT NULL
$$;

-- The code (functions, operators' functions, domains) objs' expressions call, and the findings:
-- functions memory_private._code_risk refuses, and domains another role owns that an expression
-- casts to (or to a type made of one: an array, composite or range of it). objs: the rows of
-- memory_private._code_objects to examine (a read passes those with on_read). Types: the columns'
-- types when with_columns (a write: a domain's default and constraints run on INSERT, a range's
-- subtype_diff on an index insertion), and the types the expressions depend on.
CREATE OR REPLACE FUNCTION memory_private._expression_code(rel regclass, on_read_only boolean)
RETURNS TABLE (relation regclass, what text, detail text)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    WITH tree AS MATERIALIZED (SELECT t.oid FROM memory_private._inheritance_tree(rel) AS t),
    me (o) AS MATERIALIZED (SELECT memory_private._owner()),
    base AS MATERIALIZED (
        SELECT o.* FROM memory_private._code_objects(rel) AS o
        WHERE o.on_read OR NOT on_read_only
    ),
    -- the types that are not built in (the bootstrap superuser owns those) of the columns (on a
    -- write) and of the expressions, and what they are made of
    roots (relid, what, root) AS (
        SELECT c.oid, pg_catalog.format('column %I', a.attname), a.atttypid
        FROM tree AS c
        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0
            AND NOT a.attisdropped
        WHERE NOT on_read_only
        UNION
        SELECT b.relid, b.what, d.refobjid
        FROM base AS b
        JOIN pg_catalog.pg_depend AS d ON d.classid = b.classid AND d.objid = b.objid
            AND d.refclassid = 'pg_catalog.pg_type'::regclass
    ),
    types (relid, what, root, typ) AS MATERIALIZED (
        SELECT r.relid, r.what, r.root, u.oid
        FROM roots AS r
        JOIN pg_catalog.pg_type AS ty ON ty.oid = r.root AND ty.typowner <> 10
        CROSS JOIN LATERAL memory_private._type_closure(r.root) AS u
    ),
    objs (relid, classid, objid, what, expr) AS (
        SELECT b.relid, b.classid, b.objid, b.what, b.expr FROM base AS b
        UNION ALL
        -- a domain's constraints (contypid is 0 for a table's own) and the type itself (a
        -- domain's default, a range's subtype_diff and canonical functions)
        SELECT t.relid, 'pg_catalog.pg_constraint'::regclass::oid, k.oid,
            pg_catalog.format('%s (type %s, constraint %I of %s)', t.what, t.root::regtype,
                k.conname, t.typ::regtype), k.conbin::text
        FROM types AS t JOIN pg_catalog.pg_constraint AS k ON k.contypid = t.typ
        UNION ALL
        SELECT t.relid, 'pg_catalog.pg_type'::regclass::oid, t.typ,
            pg_catalog.format('%s (type %s, made of %s)', t.what, t.root::regtype,
                t.typ::regtype), ty.typdefaultbin::text
        FROM types AS t JOIN pg_catalog.pg_type AS ty ON ty.oid = t.typ
    ),
    code (relid, what, fn) AS (
        SELECT o.relid, o.what, d.refobjid
        FROM objs AS o
        JOIN pg_catalog.pg_depend AS d ON d.classid = o.classid AND d.objid = o.objid
        WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
        UNION ALL
        SELECT o.relid, o.what, op.oprcode::oid
        FROM objs AS o
        JOIN pg_catalog.pg_depend AS d ON d.classid = o.classid AND d.objid = o.objid
        JOIN pg_catalog.pg_operator AS op ON op.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass
        UNION ALL
        -- every function and operator function the expression calls, built-ins included
        SELECT o.relid, o.what, m.f[1]::oid
        FROM objs AS o
        CROSS JOIN LATERAL pg_catalog.regexp_matches(o.expr, ':(?:func|opfunc)id ([0-9]+)', 'g')
            AS m (f)
        WHERE o.expr IS NOT NULL
    )
    -- a domain another role owns: its default and constraints can change at any time without a
    -- lock on the table (ALTER DOMAIN ... SET DEFAULT, ADD CONSTRAINT ... NOT VALID), between
    -- the check and the statement it guards, so what they call now does not matter
    SELECT DISTINCT t.relid::regclass, 'type',
        pg_catalog.format('%s on %s has type %s, made of domain %s, owned by %s', t.what,
            t.relid::regclass, t.root::regtype, ty.oid::regtype, ty.typowner::regrole)
    FROM types AS t JOIN pg_catalog.pg_type AS ty ON ty.oid = t.typ
    WHERE ty.typtype = 'd' AND ty.typowner NOT IN (10, (SELECT me.o FROM me))
      AND NOT memory_private._trusted(ty.typowner)
    UNION ALL
    SELECT DISTINCT c.relid::regclass, 'function',
        pg_catalog.format('%s on %s calls %s, %s', c.what, c.relid::regclass,
            p.oid::regprocedure, r.risk)
    FROM code AS c JOIN pg_catalog.pg_proc AS p ON p.oid = c.fn
    CROSS JOIN LATERAL (SELECT memory_private._code_risk(p.oid, (SELECT me.o FROM me), on_read_only)
        AS risk) AS r
    WHERE r.risk IS NOT NULL
$$;

-- Row-level security (its policies) and rules of rel and its partitions / children: what any
-- statement on it runs of another role's before its expressions.
CREATE OR REPLACE FUNCTION memory_private._foreign_policy_code(rel regclass)
RETURNS TABLE (relation regclass, what text, detail text)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    WITH tree AS MATERIALIZED (SELECT t.oid FROM memory_private._inheritance_tree(rel) AS t)
    SELECT c.oid::regclass, 'row-level security',
        pg_catalog.format('row-level security is enabled on %s%s: its policies would run as '
            'pgmemo''s owner (or be bypassed by it)', c.oid::regclass,
            CASE WHEN c.relforcerowsecurity THEN ' (forced)' ELSE '' END)
    FROM tree AS t CROSS JOIN LATERAL (
        SELECT x.oid, x.relrowsecurity, x.relforcerowsecurity FROM pg_catalog.pg_class AS x
        WHERE x.oid = t.oid) AS c
    WHERE c.relrowsecurity OR c.relforcerowsecurity
    UNION ALL
    SELECT r.ev_class::regclass, 'rule',
        pg_catalog.format('rule %I on %s rewrites the statements pgmemo runs', r.rulename,
            r.ev_class::regclass)
    FROM tree AS t CROSS JOIN LATERAL (
        SELECT x.ev_class, x.rulename FROM pg_catalog.pg_rewrite AS x
        WHERE x.ev_class = t.oid AND x.rulename <> '_RETURN') AS r
$$;

-- The tables of rel's tree (partitions / children included) owned by a role _trusted does not
-- accept. Their owner can add code that pgmemo's statements would run with its owner's rights at
-- any moment, without waiting for them: an index built CONCURRENTLY (its expressions are folded
-- when a read is planned), extended statistics, a partition attached or a child inherited
-- between pgmemo's check and its statement (they take SHARE UPDATE EXCLUSIVE, which pgmemo's
-- ROW EXCLUSIVE does not block), each with her code (stop 26's second attack review: a race
-- held open by locking an index of the table made a BEFORE INSERT trigger of an attached
-- partition run in a plain writer's memory.store). No lock pgmemo could take short of
-- serialising its own reads and writes closes that, so such a table is refused outright; its
-- owner may hand it to pgmemo's owner (ALTER TABLE ... OWNER TO) or be made a member of it.
CREATE OR REPLACE FUNCTION memory_private._foreign_owner(rel regclass)
RETURNS TABLE (relation regclass, what text, detail text)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    SELECT c.oid::regclass, 'owner',
        pg_catalog.format('%s is owned by %s, a role pgmemo does not trust: its owner can add code '
            'to it (an index, statistics, a partition or child with triggers) at any moment, '
            'without waiting for pgmemo''s statements', c.oid::regclass, c.relowner::regrole)
    FROM memory_private._inheritance_tree(rel) AS t
    JOIN pg_catalog.pg_class AS c ON c.oid = t.oid
    WHERE c.relowner <> memory_private._owner() AND NOT memory_private._trusted(c.relowner)
$$;

-- What READING rel (and its partitions / children) would run of another role's: row-level
-- security, rules, and what the planner folds (_code_objects' on_read).
-- (Casts: pgmemo converts only the columns it maps, whose types adoption checks (built-in id
-- types, a string content column, vector, the optional columns' exact types) and the domain's
-- view then pins: PostgreSQL refuses ALTER COLUMN ... TYPE on a column a view reads, so a cast
-- of the table owner's on a type of hers is never on pgmemo's path.)
CREATE OR REPLACE FUNCTION memory_private._foreign_read_code(rel regclass)
RETURNS TABLE (relation regclass, what text, detail text)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    SELECT * FROM memory_private._foreign_policy_code(rel)
    UNION ALL
    SELECT * FROM memory_private._expression_code(rel, true)
    UNION ALL
    SELECT * FROM memory_private._foreign_owner(rel)
$$;

-- The code (functions, and the functions behind operators) that writing or reading rel would
-- run and that is owned by a role _trusted does not accept, or that does more than compute a
-- value (_code_risk): one row per finding, with what calls it. rel and every partition /
-- inheritance child are examined.
CREATE OR REPLACE FUNCTION memory_private._foreign_code(rel regclass)
RETURNS TABLE (relation regclass, what text, detail text)
LANGUAGE sql STABLE
ROWS 1
SET search_path FROM CURRENT
AS $$
    WITH tree AS MATERIALIZED (SELECT t.oid FROM memory_private._inheritance_tree(rel) AS t),
    -- pgmemo's owner, once (the owners accepted without asking _trusted: it and the bootstrap
    -- superuser, who owns the built-in functions)
    me (o) AS MATERIALIZED (SELECT memory_private._owner())
    SELECT * FROM memory_private._foreign_policy_code(rel)
    UNION ALL
    SELECT tg.tgrelid::regclass, 'trigger',
        pg_catalog.format('trigger %I on %s calls %s, owned by %s', tg.tgname,
            tg.tgrelid::regclass, tg.tgfoid::regprocedure, p.proowner::regrole)
    FROM pg_catalog.pg_trigger AS tg
    JOIN tree AS t ON t.oid = tg.tgrelid
    JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
    WHERE tg.tgenabled <> 'D' AND p.proowner NOT IN (10, (SELECT me.o FROM me))
      AND NOT memory_private._trusted(p.proowner)
    UNION ALL
    SELECT * FROM memory_private._expression_code(rel, false)
    UNION ALL
    SELECT * FROM memory_private._foreign_owner(rel)
$$;

COMMENT ON FUNCTION memory_private._foreign_code(regclass) IS
'What reading or writing the table (and its partitions / children) would run of roles pgmemo '
'does not trust: the tables'' owners themselves, row-level security, rules, triggers (and their '
'WHEN clauses), domains another role owns, and functions called by defaults, generated columns, '
'constraints, index expressions, statistics and the columns'' types (memory_private._code_risk: '
'another role''s, volatile ones beyond sequences, random values, UUIDs and the clock, readers '
'of named relations, type input functions). memory_private._assert_inert refuses a table with any.';

-- Whether an expression a read's planning folds (expr, a node tree, of object objid of catalog
-- classid) may run anything of another role's: a function _code_risk refuses, or any function,
-- operator or type that is not built in (then _expression_code decides). _assert_inert's read
-- fast path: an indexed look-up and a regular expression instead of _expression_code's walk.
CREATE OR REPLACE FUNCTION memory_private._folds_foreign_code(expr text, classid oid, objid oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT EXISTS (
            SELECT FROM pg_catalog.regexp_matches(expr, ':(?:func|opfunc)id ([0-9]+)', 'g')
                AS m (f)
            WHERE memory_private._code_risk(m.f[1]::oid, memory_private._owner(), true)
                IS NOT NULL)
        OR EXISTS (
            SELECT FROM pg_catalog.pg_depend AS d
            WHERE d.classid = _folds_foreign_code.classid AND d.objid = _folds_foreign_code.objid
              AND d.refclassid IN ('pg_catalog.pg_type'::regclass, 'pg_catalog.pg_proc'::regclass,
                  'pg_catalog.pg_operator'::regclass))
$$;

-- Lock rel (ACCESS SHARE to read, ROW EXCLUSIVE to write; partitions and children included) and
-- refuse it when it would run foreign code. The lock comes first: every DDL that could add such
-- code (CREATE TRIGGER, CREATE RULE, CREATE POLICY, ALTER TABLE, CREATE INDEX) conflicts with
-- ROW EXCLUSIVE, and the read-side ones (policies, rules) with ACCESS SHARE, so nothing can be
-- added between this check and the statement that follows it in the same transaction.
CREATE OR REPLACE FUNCTION memory_private._assert_inert(rel regclass, for_write boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found record;
BEGIN
    IF rel IS NULL THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format($sql$LOCK TABLE %s IN %s MODE$sql$, rel,
        CASE WHEN for_write THEN 'ROW EXCLUSIVE' ELSE 'ACCESS SHARE' END);
    -- A read of a table without rules, row-level security or children (pg_class's flags, set
    -- whenever one is added, never cleared too early) runs nothing of another role's: one
    -- look-up instead of _foreign_read_code's walk (a quarter of a millisecond a call).
    IF NOT for_write AND EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        WHERE c.oid = rel AND NOT c.relhasrules AND NOT c.relrowsecurity
          AND NOT c.relforcerowsecurity AND NOT c.relhassubclass
          AND (c.relowner = memory_private._owner() OR memory_private._trusted(c.relowner))
    ) AND NOT EXISTS (
        -- nor expressions the planner folds (_code_objects' on_read: indexes, CHECKs) that
        -- may run anything of another role's (_folds_foreign_code; pgmemo's own id-as-text
        -- index calls no function, and the full walk, _expression_code, cost 1.1 ms a read)
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indrelid = rel AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
          AND memory_private._folds_foreign_code(
              pg_catalog.concat(i.indexprs::text, ' ', i.indpred::text),
              'pg_catalog.pg_class'::regclass, i.indexrelid)
    ) AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_constraint AS k
        WHERE k.conrelid = rel AND k.contype = 'c'
          AND memory_private._folds_foreign_code(k.conbin::text,
              'pg_catalog.pg_constraint'::regclass, k.oid)
    ) AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_statistic_ext AS x
        WHERE x.stxrelid = rel AND x.stxexprs IS NOT NULL
    ) THEN
        RETURN;
    END IF;
    IF for_write THEN
        SELECT * INTO v_found FROM memory_private._foreign_code(rel) AS f LIMIT 1;
    ELSE
        SELECT * INTO v_found FROM memory_private._foreign_read_code(rel) AS f LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'pgmemo will not touch %: %', rel, v_found.detail
            USING ERRCODE = '42501',
                  DETAIL = 'pgmemo reads and writes adopted tables with its owner''s rights, so '
                      || 'it refuses tables that would run code another role controls.',
                  HINT = CASE v_found.what
                      WHEN 'trigger' THEN 'Drop or disable the trigger (ALTER TABLE ... DISABLE '
                          || 'TRIGGER), or have pgmemo''s owner or a superuser own its function.'
                      WHEN 'row-level security' THEN 'Disable row-level security on the table '
                          || '(ALTER TABLE ... DISABLE ROW LEVEL SECURITY), or do not adopt it.'
                      WHEN 'rule' THEN 'Drop the rule.'
                      WHEN 'owner' THEN 'Have pgmemo''s owner own the table (ALTER TABLE ... '
                          || 'OWNER TO), or make its owner a member of pgmemo''s owner.'
                      WHEN 'type' THEN 'Have pgmemo''s owner or a superuser own the domain '
                          || '(ALTER DOMAIN ... OWNER TO), or use its base type.'
                      ELSE 'Use built-in functions only, or have pgmemo''s owner or a superuser '
                          || 'own the function.'
                  END;
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._assert_inert(regclass, boolean) IS
'Lock the table (ACCESS SHARE to read, ROW EXCLUSIVE to write) and raise 42501 when a role '
'pgmemo does not trust owns it (or a partition or child), or when reading (row-level security, '
'rules, the index expressions, statistics and CHECKs a read''s planning folds) or writing (also '
'triggers and their WHEN clauses, defaults, generated columns, constraints, the columns'' types) '
'would run code memory_private._code_risk refuses. Called at adoption and on every call that '
'touches an adopted table.';

-- The caller's access to a domain: 'read' or 'write'. A re-embed's shadow domain answers for its
-- domain. Roles are matched by OID, never by name (migration 0037): a grant (and memory_admin,
-- bound by the last migrate run in api_roles) follows its role through a rename, and a role
-- made later under a dropped one's name gains nothing. The joins on pg_roles make a dropped
-- role's rows count nowhere before run_maintenance deletes them (its OID could, after the OID
-- counter wraps, be given to a new role).
CREATE OR REPLACE FUNCTION memory_private._can(domain text, access text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH c AS (SELECT memory_private._caller() AS who),
    target AS (
        SELECT coalesce((SELECT r.domain FROM memory_private.reembeds AS r
            WHERE r.shadow_domain = _can.domain), _can.domain) AS domain
    )
    SELECT pg_catalog.pg_has_role(c.who, memory_private._owner(), 'USAGE')
        OR EXISTS (SELECT FROM memory_private.api_roles AS r
            JOIN pg_catalog.pg_roles AS a ON a.oid = r.role_id
            WHERE r.role_name = 'memory_admin' AND pg_catalog.pg_has_role(c.who, a.oid, 'USAGE'))
        OR EXISTS (
            SELECT FROM memory_private.domain_access AS g
            JOIN pg_catalog.pg_roles AS a ON a.oid = g.role_id
            WHERE g.domain = (SELECT target.domain FROM target) AND g.access = _can.access
              AND pg_catalog.pg_has_role(c.who, a.oid, 'USAGE'))
    FROM c
$$;

COMMENT ON FUNCTION memory_private._can(text, text) IS
'Whether the caller (memory_private._caller()) may read or write a domain: pgmemo''s owner, '
'superusers and members of memory_admin (the role bound in memory_private.api_roles) always; '
'other roles through a grant in memory_private.domain_access to a role (by OID) they have the '
'privileges of (memory.grant_domain).';

CREATE OR REPLACE FUNCTION memory_private._check_access(domain text, access text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT memory_private._can(domain, access) THEN
        RAISE EXCEPTION 'permission denied: role % may not % domain "%"',
            memory_private._caller(), access, domain
            USING ERRCODE = '42501',
                  HINT = pg_catalog.format('An admin grants it: SELECT memory.grant_domain(%L, %L, %L);',
                      domain, memory_private._caller(), access);
    END IF;
END;
$$;

-- The domain row for a public function: the domain exists, the caller may access it, and an
-- adopted domain's table is locked and inert (see _assert_inert).
-- Every search pays for this, so the common case is one statement: the registry row and whether
-- the caller is a member of pgmemo's owner (_can's first rule: pgmemo's owner and superusers),
-- read together. Anyone else goes through _check_access (the same rules, all of them).
-- The check's one place is _domain_for_sql: its statements, over the domain and access
-- expressions given, set target (a memory_private.domains variable) with scratch (a record) as
-- their work space. _domain_for is made from them, and memory.search splices them into its hot
-- path (the helper's call cost about 10,000 instructions per search; callgrind).
CREATE OR REPLACE FUNCTION memory_private._domain_for_sql(
    domain text, access text, target text, scratch text
)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT format($s$SELECT d AS d, pg_catalog.pg_has_role(memory_private._caller(),
        (SELECT n.nspowner FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'memory_private'),
        'USAGE') AS owner
    INTO %4$s
    FROM memory_private.domains AS d
    WHERE d.domain = %1$s;
    IF FOUND THEN
        %3$s := %4$s.d;
    ELSE
        -- raises for NULL, a bad name, an unknown domain; else it was created meanwhile (and the
        -- owner test is NULL: the full check below)
        %3$s := memory_private._domain(%1$s);
    END IF;
    IF %4$s.owner IS NOT TRUE THEN
        IF %2$s = 'claim' THEN
            PERFORM memory_private._check_access(%3$s.domain, 'read');
            PERFORM memory_private._check_access(%3$s.domain, 'write');
        ELSE
            PERFORM memory_private._check_access(%3$s.domain, %2$s);
        END IF;
    END IF;
    IF %3$s.adopted THEN
        PERFORM memory_private._assert_inert(%3$s.source_table, %2$s = 'write');
    END IF;$s$, domain, access, target, scratch)
$$;

DO $install$
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION memory_private._domain_for(domain text, access text)
RETURNS memory_private.domains
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $body$
DECLARE
    v_d memory_private.domains;
    v_r record;
BEGIN
    %s
    RETURN v_d;
END;
$body$$f$, memory_private._domain_for_sql('_domain_for.domain', '_domain_for.access', 'v_d', 'v_r'));
END;
$install$;

COMMENT ON FUNCTION memory_private._domain_for(text, text) IS
'The domain row every public function that takes a domain starts with: unknown domain 42704; '
'access (read, write, or claim = read and write) checked for the caller (42501); an adopted '
'domain''s table locked and checked by _assert_inert (for writing when access is write).';

-- A new domain starts open to the API roles (the roles reach each other through their
-- memberships: a writer is a reader, an admin is everything). Called by memory.create_domain
-- and memory_private._adopt when they register a domain; migration 0011 did it for the domains
-- that existed. The roles are the ones the last migrate run bound (api_roles), by OID. A role
-- missing then (an owner without CREATEROLE; 0002 warned) gets a pending row instead, granted
-- by the migrate run that finds it (_bind_api_roles): the domain opens to the API roles when
-- they can use the API at all.
CREATE OR REPLACE FUNCTION memory_private._default_access(domain text)
RETURNS void
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    WITH v (role_name, access) AS (
        VALUES
        ('memory_reader'::name, 'read'), ('memory_writer', 'write'),
        ('memory_worker', 'read'), ('memory_worker', 'write')
    ),
    bound AS (
        SELECT v.role_name, v.access, a.oid AS role_id
        FROM v
        LEFT JOIN memory_private.api_roles AS r ON r.role_name = v.role_name
        LEFT JOIN pg_catalog.pg_roles AS a ON a.oid = r.role_id
    ),
    granted AS (
        INSERT INTO memory_private.domain_access AS g (domain, role_id, access)
        SELECT _default_access.domain, b.role_id, b.access FROM bound AS b
        WHERE b.role_id IS NOT NULL
        ON CONFLICT DO NOTHING
    )
    INSERT INTO memory_private.domain_access_pending AS p (domain, role_name, access)
    SELECT _default_access.domain, b.role_name, b.access FROM bound AS b
    WHERE b.role_id IS NULL
    ON CONFLICT DO NOTHING
$$;

-- Deletes the grants of roles that no longer exist (they already count nowhere: every reader
-- joins pg_roles), so that a dropped role's OID, were it ever given to a new role, brings no
-- grant with it. Called by memory.run_maintenance and every migrate run; returns how many.
CREATE OR REPLACE FUNCTION memory_private._forget_dropped_role_grants()
RETURNS bigint
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    WITH gone AS (
        DELETE FROM memory_private.domain_access AS g
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS a WHERE a.oid = g.role_id)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

-- Every migrate run (sql/90_grants.sql, before it grants the API to the roles by name): binds
-- the API roles' names to the roles holding them now (api_roles), turns the pending default
-- grants of roles that now exist into grants, and deletes the grants of dropped roles. The
-- one moment pgmemo reads those names: the EXECUTE grants that follow name the same roles.
CREATE OR REPLACE FUNCTION memory_private._bind_api_roles()
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM memory_private.api_roles AS r
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS a
        WHERE a.oid = r.role_id AND a.rolname = r.role_name);
    INSERT INTO memory_private.api_roles AS r (role_name, role_id)
    SELECT a.rolname, a.oid FROM pg_catalog.pg_roles AS a
    WHERE a.rolname IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin')
    ON CONFLICT (role_name) DO NOTHING;
    WITH done AS (
        DELETE FROM memory_private.domain_access_pending AS p
        USING memory_private.api_roles AS r
        WHERE r.role_name = p.role_name
        RETURNING p.domain, r.role_id, p.access
    )
    INSERT INTO memory_private.domain_access AS g (domain, role_id, access)
    SELECT done.domain, done.role_id, done.access FROM done
    ON CONFLICT DO NOTHING;
    PERFORM memory_private._forget_dropped_role_grants();
END;
$$;

-- grant_domain's and revoke_domain's arguments checked, and the role's OID: the name is
-- resolved here, once; what is stored and matched is the OID.
CREATE OR REPLACE FUNCTION memory_private._grant_role_id(
    domain text, role name, access text
)
RETURNS oid
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_role_id oid;
BEGIN
    PERFORM memory_private._domain(domain);
    IF access IS NULL OR access NOT IN ('read', 'write') THEN
        RAISE EXCEPTION 'access must be ''read'' or ''write'', got %',
            coalesce(quote_literal(access), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT a.oid INTO v_role_id FROM pg_catalog.pg_roles AS a WHERE a.rolname = role;
    IF v_role_id IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', coalesce(quote_ident(role), 'NULL')
            USING ERRCODE = '42704';
    END IF;
    RETURN v_role_id;
END;
$$;

CREATE OR REPLACE FUNCTION memory.grant_domain(domain text, role name, access text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO memory_private.domain_access AS g (domain, role_id, access)
    VALUES (domain, memory_private._grant_role_id(domain, role, access), access)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count > 0;
EXCEPTION WHEN foreign_key_violation THEN
    -- the domain was dropped while the grant waited for it (a drop_domain not yet committed when
    -- _grant_role_id found the domain): the error of an unknown domain, not the key's
    PERFORM memory_private._domain(domain);
    RAISE;
END;
$$;

COMMENT ON FUNCTION memory.grant_domain(text, name, text) IS
'Let role (and every role with its privileges) read or write a domain: access ''read'' (search, '
'search_text, search_hybrid, get, get_many, the views) or ''write'' (store, store_many, update, '
'forget, ...; a worker needs read and write to claim the domain''s jobs). New domains are open '
'to memory_reader (read), memory_writer (write) and memory_worker (read, write). The grant is '
'to the role itself, not its name: it follows the role through ALTER ROLE ... RENAME and ends '
'with DROP ROLE (a new role of the same name gets nothing). Returns false when the grant existed.';

CREATE OR REPLACE FUNCTION memory.revoke_domain(domain text, role name, access text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_role_id oid;
    v_count integer;
BEGIN
    v_role_id := memory_private._grant_role_id(domain, role, access);
    DELETE FROM memory_private.domain_access AS g
    WHERE g.domain = revoke_domain.domain AND g.role_id = v_role_id
      AND g.access = revoke_domain.access;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count > 0;
END;
$$;

COMMENT ON FUNCTION memory.revoke_domain(text, name, text) IS
'Take back a grant of memory.grant_domain (or a default one: revoke_domain(''health'', '
'''memory_reader'', ''read'') closes the domain to plain readers). A role keeps the access it '
'has through another role''s grant; pgmemo''s owner, superusers and memory_admin members always '
'have it. Returns false when there was no such grant.';

-- For the views: whether an adopted table can be read (locked, and _assert_inert passes), so a
-- table that became unsafe shows NULL counts instead of failing the whole view for everyone.
CREATE OR REPLACE FUNCTION memory_private._readable(d memory_private.domains)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF d.adopted THEN
        PERFORM memory_private._assert_inert(d.source_table, false);
    END IF;
    RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN false;
END;
$$;

-- diagnose: a schema pgmemo's functions resolve names in (their search_path, and pgmemo's own
-- schemas, whose functions they call by qualified name) where a role other than pgmemo's owner
-- or a superuser can CREATE: it could plant a better-matching overload that runs with pgmemo's
-- rights.
CREATE OR REPLACE FUNCTION memory_private._check_schema_create()
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH path AS (
        SELECT DISTINCT pg_catalog.btrim(s.name) AS nspname
        FROM pg_catalog.pg_proc AS p
        CROSS JOIN LATERAL unnest(p.proconfig) AS c (setting)
        CROSS JOIN LATERAL unnest(string_to_array(substr(c.setting, 13), ',')) AS s (name)
        WHERE p.pronamespace IN ('memory'::regnamespace, 'memory_private'::regnamespace)
          AND c.setting LIKE 'search_path=%'
        UNION
        SELECT x.nspname FROM (VALUES ('memory'), ('memory_private'), ('memory_data')) AS x (nspname)
    ),
    bad AS (
        SELECT n.nspname, pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', '
            ORDER BY r.rolname) AS who
        FROM path
        JOIN pg_catalog.pg_namespace AS n ON n.nspname = pg_catalog.btrim(path.nspname, '"')
        CROSS JOIN pg_catalog.pg_roles AS r
        WHERE NOT memory_private._trusted(r.oid)
          AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE')
        GROUP BY n.nspname
    )
    SELECT 'error'::text, NULL::text, 'schema_create_on_path'::text,
        pg_catalog.format('Role(s) %s can create objects in schema %I, where pgmemo''s functions '
            'resolve names: a better-matching function or operator planted there would run with '
            'pgmemo''s owner''s rights.', b.who, b.nspname),
        pg_catalog.format($sql$REVOKE CREATE ON SCHEMA %I FROM PUBLIC, %s;$sql$, b.nspname, b.who)
    FROM bad AS b
$$;

COMMENT ON FUNCTION memory_private._check_schema_create() IS
'diagnose check schema_create_on_path (error): a role other than pgmemo''s owner or a superuser '
'can CREATE in a schema on pgmemo''s functions'' search_path or in memory, memory_private, '
'memory_data.';

-- Bounded cost of a write: content over the domain's max_content_bytes (default 1 MB; set with
-- memory.set_max_content_bytes) is refused before any work (a 50 MB store took ~800 MB in one
-- backend). contents: one text (store, update) or many (store_many, import_rows); the error
-- names the first one too long. A batch's contents together are bounded too (64 MB, or the
-- domain's maximum when larger). Contents over 256 kB are also checked against the full-text
-- limit (a tsvector holds at most 1 MB of distinct lexemes, and one byte of content can give up
-- to 4: a lower-cased letter grows, a hyphenated word is indexed whole and in parts), so the
-- domain's full-text column never fails a write with "string is too long for tsvector".
CREATE OR REPLACE FUNCTION memory_private._check_contents(d memory_private.domains, contents text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_max bigint := coalesce(d.max_content_bytes, 1048576);
    v_bad record;
BEGIN
    SELECT u.ord, octet_length(u.c) AS bytes INTO v_bad
    FROM unnest(contents) WITH ORDINALITY AS u (c, ord)
    WHERE octet_length(u.c) > v_max
    ORDER BY u.ord LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'content% is % bytes; domain "%" takes at most % bytes',
            CASE WHEN cardinality(contents) > 1 THEN format('s[%s]', v_bad.ord) ELSE '' END,
            v_bad.bytes, d.domain, v_max
            USING ERRCODE = '54000',
                  HINT = format('Split it into smaller memories, or raise the limit: SELECT '
                      'memory.set_max_content_bytes(%L, <bytes>);', d.domain);
    END IF;
    IF cardinality(contents) > 1 AND (SELECT sum(octet_length(u.c)) FROM unnest(contents) AS u (c))
        > greatest(v_max, 67108864) THEN
        RAISE EXCEPTION 'contents are % bytes together; one call takes at most % bytes',
            (SELECT sum(octet_length(u.c)) FROM unnest(contents) AS u (c)), greatest(v_max, 67108864)
            USING ERRCODE = '54000', HINT = 'Split the batch into smaller calls.';
    END IF;
    FOR v_bad IN
        SELECT u.ord, u.c FROM unnest(contents) WITH ORDINALITY AS u (c, ord)
        WHERE octet_length(u.c) > 262144
    LOOP
        BEGIN
            PERFORM to_tsvector(d.text_config, v_bad.c);
        EXCEPTION WHEN program_limit_exceeded THEN
            RAISE EXCEPTION 'content% has too many distinct words for full-text search (%)',
                CASE WHEN cardinality(contents) > 1 THEN format('s[%s]', v_bad.ord) ELSE '' END,
                SQLERRM
                USING ERRCODE = '54000',
                      HINT = 'A tsvector holds at most 1 MB of distinct words: split the content.';
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION memory_private._check_contents(memory_private.domains, text[]) IS
'Refuses (54000) content over the domain''s max_content_bytes (default 1 MB), a batch over 64 MB '
'(or that maximum) together, or content with more distinct words than a tsvector holds, before '
'any work. Called by every write of content.';

-- The most elements an array argument of a public function may hold (ids, contents, job ids):
-- the cost of a call grows with it (1,000,000 ids: forget_many 2.8 s, get_many 3.7 s on 2,000
-- rows; 100,000: 0.1-0.4 s, under load). 100,000: a store_many of 50,000 rows is tested.
CREATE OR REPLACE FUNCTION memory_private._max_batch()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT 100000 $$;

-- Refuses (54000) an array argument with more than _max_batch() elements, before any work.
-- what: the argument's name, for the error.
CREATE OR REPLACE FUNCTION memory_private._check_batch(what text, n integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF n > memory_private._max_batch() THEN
        RAISE EXCEPTION '% has % elements; one call takes at most %', what, n,
            memory_private._max_batch()
            USING ERRCODE = '54000', HINT = 'Split it into several calls.';
    END IF;
END;
$$;

COMMENT ON FUNCTION memory_private._check_batch(text, integer) IS
'Refuses (54000) an array argument (ids, contents, job ids) of more than 100,000 elements before '
'any work: every call has a bounded cost.';

-- Refuses (54000) a text or jsonb argument longer than max_bytes (e.g. a worker's name, its
-- heartbeat info), before any work.
CREATE OR REPLACE FUNCTION memory_private._check_bytes(what text, n bigint, max_bytes bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF n > max_bytes THEN
        RAISE EXCEPTION '% is % bytes; at most % are accepted', what, n, max_bytes
            USING ERRCODE = '54000';
    END IF;
END;
$$;

-- The jobs among job_ids (at most _max_batch()) of domains the caller may write: the only jobs
-- a worker's extend_claims, release_claims and fail_embedding_jobs touch. _can runs once per
-- domain, not per job.
CREATE OR REPLACE FUNCTION memory_private._writable_jobs(job_ids bigint[])
RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM memory_private._check_batch('job_ids', cardinality(job_ids));
    RETURN (
        WITH j AS MATERIALIZED (
            SELECT q.job_id, q.domain FROM memory_private.embedding_queue AS q
            WHERE q.job_id = ANY (job_ids)
        ),
        domains AS MATERIALIZED (SELECT DISTINCT j.domain FROM j)
        SELECT coalesce(array_agg(j.job_id ORDER BY j.job_id), ARRAY[]::bigint[])
        FROM j JOIN domains AS d ON d.domain = j.domain
        WHERE memory_private._can(d.domain, 'write'));
END;
$$;

-- Refuses (22023) a lease longer than a day: a worker holds a claim for at most its lease, and
-- a longer one would keep a job from every other worker long after its holder died.
CREATE OR REPLACE FUNCTION memory_private._check_lease(lease interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 day, got %',
            coalesce(lease::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION memory.set_max_content_bytes(domain text, max_bytes integer)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM memory_private._domain(domain);
    IF max_bytes IS NOT NULL AND (max_bytes < 1 OR max_bytes > 104857600) THEN
        RAISE EXCEPTION 'max_bytes must be between 1 and 104857600 (100 MB), got %', max_bytes
            USING ERRCODE = '22023';
    END IF;
    UPDATE memory_private.domains AS d SET max_content_bytes = max_bytes
    WHERE d.domain = set_max_content_bytes.domain;
END;
$$;

COMMENT ON FUNCTION memory.set_max_content_bytes(text, integer) IS
'The largest content (in bytes) store, store_many, update and import_rows accept for a domain; '
'NULL restores the default, 1 MB (1048576). Larger content is refused with error 54000 before '
'any work.';

-- diagnose: an adopted table that would run another role's code (see _assert_inert). pgmemo
-- refuses to write it, and, for row-level security or rules, to read it; diagnose's checks that
-- read rows skip it then (_readable).
CREATE OR REPLACE FUNCTION memory_private._check_adopted_foreign_code(d memory_private.domains)
RETURNS TABLE (severity text, domain text, check_name text, detail text, fix_sql text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT 'error'::text, d.domain, 'adopted_table_runs_foreign_code'::text,
        pg_catalog.format('pgmemo refuses to %s %s: %s (see docs/SECURITY.md).',
            CASE WHEN f.what IN ('row-level security', 'rule', 'owner') THEN 'read or write'
                ELSE 'write' END, d.source_table, f.detail),
        NULL::text
    FROM memory_private._foreign_code(d.source_table) AS f
    WHERE d.adopted AND d.source_table IS NOT NULL
$$;

COMMENT ON FUNCTION memory_private._check_adopted_foreign_code(memory_private.domains) IS
'diagnose check adopted_table_runs_foreign_code (error): an adopted table whose triggers, rules, '
'row-level security or expressions would run code owned by a role other than pgmemo''s owner or '
'a superuser; every call that writes it (or, for RLS and rules, reads it) is refused.';
