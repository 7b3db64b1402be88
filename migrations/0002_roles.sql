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

DO $roles$
DECLARE
    v_role text;
    v_member record;
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
                RAISE WARNING 'pgmemo: cannot create role % (%): only the owner can use pgmemo '
                    'until a superuser runs CREATE ROLE % NOLOGIN and migrate runs again',
                    v_role, sqlerrm, v_role;
            END;
        END IF;
    END LOOP;

    FOR v_member IN
        SELECT m.granted, m.member
        FROM (VALUES
            ('memory_reader', 'memory_writer'),
            ('memory_writer', 'memory_admin'),
            ('memory_worker', 'memory_admin')
        ) AS m (granted, member)
        WHERE EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = m.granted)
          AND EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = m.member)
          AND NOT pg_catalog.pg_has_role(m.member, m.granted, 'MEMBER')
    LOOP
        BEGIN
            EXECUTE format('GRANT %I TO %I', v_member.granted, v_member.member);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'pgmemo: cannot grant role % to % (%)',
                v_member.granted, v_member.member, sqlerrm;
        END;
    END LOOP;
END;
$roles$;

-- Nothing in the bookkeeping and data schemas is for PUBLIC (the functions in schema memory
-- reach them with definer rights).
REVOKE ALL ON SCHEMA memory_private FROM public;
REVOKE ALL ON SCHEMA memory_data FROM public;
