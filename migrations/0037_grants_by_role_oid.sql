-- 0037_grants_by_role_oid: per-domain grants name a role by its OID, not by its name.
--
-- Why: memory_private.domain_access (0011) held role names. A grant outlived DROP ROLE, so a
-- role with CREATEROLE could create a role of the dropped one's name, grant it to herself and
-- read the domain; ALTER ROLE ... RENAME left the grant on the old name (lost to the renamed
-- role, waiting for the next role to take that name). memory_private._can also found
-- memory_admin by name on every call: a dropped memory_admin re-created by such a role was
-- admin of every domain.
--
-- * domain_access.role_id (the role's OID) replaces role_name. A grant follows its role through
--   a rename and dies with it: the readers join pg_roles on the OID, so a dropped role's rows
--   count nowhere, and memory.run_maintenance (and every migrate run) deletes them. The
--   existing rows are resolved by name once, here. A name that was dropped and made again
--   before this migration resolves to the role holding it now: the name is all 0011 kept.
--   Rows whose role does not exist now are deleted: a role made later under that name is
--   another role, and handing it the grant is the attack above. Except:
-- * the default grants of the four API roles (memory_reader, memory_writer, memory_worker,
--   memory_admin) when those roles are missing (an owner without CREATEROLE: 0002 warned, and
--   the roles come when a superuser makes them and migrate runs again). They move to
--   memory_private.domain_access_pending, and memory_private._default_access puts a new
--   domain's there too while a role is missing; every migrate run turns them into grants to the
--   roles it finds under those names (sql/90_grants.sql), the same run that grants those roles
--   EXECUTE on the API by name. Nothing decides access from a pending row.
-- * memory_private.api_roles: the OIDs of the four API roles, recorded by every migrate run.
--   _can's memory_admin rule and _default_access read them, never the names.
-- memory_private._check_grant_args(text, name, text) is replaced by _grant_role_id, which
-- returns the role's OID (grant_domain and revoke_domain resolve the name once).
-- Not breaking: private tables and functions; grant_domain and revoke_domain keep their
-- signatures.

ALTER TABLE memory_private.domain_access ADD COLUMN role_id oid;

UPDATE memory_private.domain_access AS g SET role_id = a.oid
FROM pg_catalog.pg_roles AS a
WHERE a.rolname = g.role_name;

CREATE TABLE memory_private.domain_access_pending (
    domain text NOT NULL REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    role_name name NOT NULL,
    access text NOT NULL,
    CONSTRAINT domain_access_pending_pkey PRIMARY KEY (domain, role_name, access),
    CONSTRAINT domain_access_pending_role_name_check CHECK (
        role_name IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin')
    ),
    CONSTRAINT domain_access_pending_access_check CHECK (access IN ('read', 'write'))
);

COMMENT ON TABLE memory_private.domain_access_pending IS
'A domain''s default grant to an API role that did not exist when the domain was made (or when '
'migration 0037 ran): the next migrate run that finds the role grants it in domain_access and '
'deletes the row. Never read to decide access.';

INSERT INTO memory_private.domain_access_pending (domain, role_name, access)
SELECT
    g.domain,
    g.role_name,
    g.access
FROM memory_private.domain_access AS g
WHERE
    g.role_id IS NULL
    AND g.role_name IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin');

DELETE FROM memory_private.domain_access AS g
WHERE g.role_id IS NULL;

ALTER TABLE memory_private.domain_access
DROP CONSTRAINT domain_access_pkey,
DROP COLUMN role_name,
ALTER COLUMN role_id SET NOT NULL,
ADD CONSTRAINT domain_access_pkey PRIMARY KEY (domain, role_id, access);

COMMENT ON TABLE memory_private.domain_access IS
'Who may read or write each domain (memory.grant_domain / memory.revoke_domain): a role, by OID, '
'and the roles that have its privileges. A renamed role keeps its grants; a dropped role''s rows '
'count nowhere (readers join pg_roles) and memory.run_maintenance deletes them. pgmemo''s owner, '
'superusers and memory_admin members always may.';

COMMENT ON COLUMN memory_private.domain_access.role_id IS
'The role''s OID (pg_roles.oid); its current name is role_id::regrole.';

CREATE TABLE memory_private.api_roles (
    role_name name NOT NULL,
    role_id oid NOT NULL,
    CONSTRAINT api_roles_pkey PRIMARY KEY (role_name),
    CONSTRAINT api_roles_role_name_check CHECK (
        role_name IN ('memory_reader', 'memory_writer', 'memory_worker', 'memory_admin')
    )
);

COMMENT ON TABLE memory_private.api_roles IS
'The roles holding the API roles'' names at the last migrate run (sql/90_grants.sql, which grants '
'them EXECUTE then): memory_private._can''s memory_admin rule and the default grants of new '
'domains use these OIDs, so a role made later under one of those names gains nothing until a '
'migrate run binds it.';

DROP FUNCTION IF EXISTS memory_private._check_grant_args(text, name, text);
