-- 0002_roles: the NOLOGIN roles pgmemo grants its API to, created when missing.
--
-- Why: applications should not connect as the owner of the schema. Grant one of these roles to
-- a login role instead (GRANT memory_writer TO app_user):
--   memory_reader  search, search_text, search_hybrid, get, version, the read-only views
--   memory_writer  memory_reader + store, store_many, update, forget
--   memory_worker  the embedding queue: claim / complete / fail jobs, heartbeats, maintenance
--   memory_admin   memory_writer + memory_worker + domains, indexes, backfill, scheduling
-- Roles are cluster-wide, so another database of the same cluster may have made them already.
-- A migrating user without CREATEROLE gets a WARNING instead of an error: the roles stay
-- missing, EXECUTE stays revoked from PUBLIC, and only the owner can use pgmemo until a
-- superuser creates them. The grants themselves live in sql/90_grants.sql, re-applied by every
-- migrate run, so a replaced function never loses them.
--
-- Amended after release (issue 11): the first version called pg_has_role() on role names that
-- may not exist, so it failed ("role memory_writer does not exist") for exactly the migrating
-- user it meant to warn (no CREATEROLE, as on managed services). The runner accepts the first
-- version's checksum for installs that applied it (python/pgmemo/migrate.py, SUPERSEDED): its
-- effect on a database where it succeeded is the same.

DO $roles$
DECLARE
    v_role text;
    v_member record;
    v_missing text[] := ARRAY[]::text[];
BEGIN
    FOREACH v_role IN ARRAY ARRAY[
        'memory_reader', 'memory_writer', 'memory_worker', 'memory_admin'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
                EXECUTE format('COMMENT ON ROLE %I IS %L', v_role,
                    'pgmemo API role (see docs/SECURITY.md); NOLOGIN: grant it to a login role');
            EXCEPTION WHEN insufficient_privilege THEN
                v_missing := v_missing || v_role;
            END;
        END IF;
    END LOOP;

    IF cardinality(v_missing) > 0 THEN
        RAISE WARNING 'pgmemo: could not create the roles % (no CREATEROLE): only the owner can '
            'use pgmemo until they exist', array_to_string(v_missing, ', ')
            USING HINT = 'As a superuser (or a role with CREATEROLE), run: '
                || (SELECT string_agg(format('CREATE ROLE %I NOLOGIN;', r), ' ')
                    FROM unnest(v_missing) AS r)
                || ' GRANT memory_reader TO memory_writer; GRANT memory_writer TO memory_admin; '
                || 'GRANT memory_worker TO memory_admin; then run pgmemo migrate again.';
    END IF;

    -- Joined on pg_roles first, so pg_has_role only ever sees roles that exist.
    FOR v_member IN
        SELECT g.rolname AS granted, w.rolname AS member
        FROM (VALUES
            ('memory_reader', 'memory_writer'),
            ('memory_writer', 'memory_admin'),
            ('memory_worker', 'memory_admin')
        ) AS m (granted, member)
        JOIN pg_catalog.pg_roles AS g ON g.rolname = m.granted
        JOIN pg_catalog.pg_roles AS w ON w.rolname = m.member
        WHERE NOT pg_catalog.pg_has_role(w.oid, g.oid, 'MEMBER')
    LOOP
        BEGIN
            EXECUTE format('GRANT %I TO %I', v_member.granted, v_member.member);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'pgmemo: cannot grant role % to % (%)',
                v_member.granted, v_member.member, sqlerrm
                USING HINT = format('As a superuser, run: GRANT %I TO %I;', v_member.granted,
                    v_member.member);
        END;
    END LOOP;
END;
$roles$;

-- Nothing in the bookkeeping and data schemas is for PUBLIC (the functions in schema memory
-- reach them with definer rights).
REVOKE ALL ON SCHEMA memory_private FROM public;
REVOKE ALL ON SCHEMA memory_data FROM public;
