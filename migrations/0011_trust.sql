-- 0011_trust: per-domain access and a per-domain maximum content size.
--
-- Why: every memory_reader read every domain, and one store of a 50 MB text took most of a
-- gigabyte in one backend. memory_private.domain_access holds who may read or write each domain
-- (memory.grant_domain / memory.revoke_domain); a new domain starts open to the API roles
-- (memory_reader read, memory_writer write, memory_worker read and write: the roles reach each
-- other through their memberships), and so do the domains that exist now, so an upgraded
-- install behaves as before. domains.max_content_bytes bounds what store, store_many, update and
-- import accept (NULL: the pgmemo.max_content_bytes setting, default 1 MB).

CREATE TABLE memory_private.domain_access (
    domain text NOT NULL REFERENCES memory_private.domains (domain) ON DELETE CASCADE,
    role_name name NOT NULL,
    access text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domain_access_pkey PRIMARY KEY (domain, role_name, access),
    CONSTRAINT domain_access_access_check CHECK (access IN ('read', 'write'))
);

COMMENT ON TABLE memory_private.domain_access IS
'Who may read or write each domain (memory.grant_domain / memory.revoke_domain): a role and the '
'roles that have its privileges. pgmemo''s owner, superusers and memory_admin members always may.';

INSERT INTO memory_private.domain_access (domain, role_name, access)
SELECT
    d.domain,
    g.role_name,
    g.access
FROM memory_private.domains AS d
CROSS JOIN (
    VALUES
    ('memory_reader', 'read'),
    ('memory_writer', 'write'),
    ('memory_worker', 'read'),
    ('memory_worker', 'write')
) AS g (role_name, access);

ALTER TABLE memory_private.domains
ADD COLUMN max_content_bytes integer,
ADD CONSTRAINT domains_max_content_bytes_check CHECK (max_content_bytes > 0);
