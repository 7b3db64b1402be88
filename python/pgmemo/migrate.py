"""The migration runner, and the single-file psql installer generated from the same files.

`migrate(conn)` runs, in one transaction under an advisory lock:
  1. the bootstrap (ledger table and the ledger's helper functions, idempotent);
  2. every file in migrations/ that the ledger does not hold, refusing to run when a file the
     ledger holds was edited since (checksum) or when the database is newer than this client;
  3. every file in sql/ (CREATE OR REPLACE), with the search_path the functions capture.
Two migrators at once queue on the lock; the second finds nothing to do.
`bundle()` renders the same steps as one psql script (install.sql), for installs without Python.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from . import resources

LOCK_KEY = 7_386_244_001  # pg_advisory_xact_lock key shared by every pgmemo migrator

BOOTSTRAP = """\
SELECT pg_advisory_xact_lock(7386244001);
CREATE SCHEMA IF NOT EXISTS memory_private;
CREATE TABLE IF NOT EXISTS memory_private.schema_migrations (
    version text PRIMARY KEY,
    filename text NOT NULL,
    checksum text NOT NULL,
    kind text NOT NULL DEFAULT 'versioned' CHECK (kind IN ('versioned', 'repeatable')),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE memory_private.schema_migrations IS
'pgmemo migration ledger: one row per applied migrations/ file (kind versioned, version NNNN) '
'and per sql/ file (kind repeatable, version R:<file>), with the sha256 of its text.';

CREATE OR REPLACE FUNCTION memory_private._migration_needed(
    p_version text, p_filename text, p_checksum text
) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
    v_checksum text;
BEGIN
    SELECT m.checksum INTO v_checksum FROM memory_private.schema_migrations AS m
    WHERE m.version = p_version AND m.kind = 'versioned';
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    IF v_checksum <> p_checksum THEN
        RAISE EXCEPTION 'migration % was edited after it was applied (checksum % in the database, % in the file)',
            p_filename, left(v_checksum, 12), left(p_checksum, 12)
            USING ERRCODE = 'P0001',
                  HINT = 'Landed migrations are append-only: restore the file and add a new migration.';
    END IF;
    RETURN false;
END;
$f$;

CREATE OR REPLACE FUNCTION memory_private._check_known_versions(p_versions text[])
RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    v_unknown text;
BEGIN
    SELECT string_agg(m.filename, ', ' ORDER BY m.version) INTO v_unknown
    FROM memory_private.schema_migrations AS m
    WHERE m.kind = 'versioned' AND m.version <> ALL (p_versions);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'the database has migrations this pgmemo does not know: %', v_unknown
            USING ERRCODE = 'P0001',
                  HINT = 'The database was migrated by a newer pgmemo: upgrade pgmemo.';
    END IF;
END;
$f$;

CREATE OR REPLACE FUNCTION memory_private._record_migration(
    p_version text, p_filename text, p_checksum text, p_kind text
) RETURNS void LANGUAGE sql AS $f$
    INSERT INTO memory_private.schema_migrations AS m (version, filename, checksum, kind)
    VALUES (p_version, p_filename, p_checksum, p_kind)
    ON CONFLICT (version) DO UPDATE
        SET checksum = excluded.checksum, applied_at = now(), applied_by = current_user
        WHERE m.checksum <> excluded.checksum;
$f$;

-- Functions capture this search_path (SET search_path FROM CURRENT): pg_catalog first, then
-- the schema pgvector lives in (public, extensions, ...), then pg_temp last.
CREATE OR REPLACE FUNCTION memory_private._set_install_search_path()
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    v_schema name;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_catalog.pg_extension AS e
    JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the vector extension (pgvector) is not installed in this database'
            USING ERRCODE = '58P01', HINT = 'Run CREATE EXTENSION vector; as a privileged user.';
    END IF;
    RETURN set_config('search_path', format('pg_catalog, %I, pg_temp', v_schema), true);
END;
$f$;
"""


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class MigrateResult:
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    repeatable: list[str] = field(default_factory=list)
    schema_version: str = "0000"

    def summary(self) -> str:
        if self.applied:
            head = f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}"
        else:
            head = "no new migrations"
        return (f"{head}; {len(self.skipped)} already applied; "
                f"re-applied {len(self.repeatable)} sql/ file(s); schema version {self.schema_version}")


class MigrationError(RuntimeError):
    """A migration could not be applied; nothing was changed."""


def migrate(conninfo_or_conn: str | psycopg.Connection, *, echo=None) -> MigrateResult:
    """Apply migrations/ then sql/ in one transaction. `echo(msg)` receives progress lines."""
    say = echo or (lambda msg: None)
    if isinstance(conninfo_or_conn, str):
        with psycopg.connect(conninfo_or_conn, autocommit=True) as conn:
            return migrate(conn, echo=echo)
    conn = conninfo_or_conn
    result = MigrateResult()
    migrations = resources.migration_files()
    try:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute(BOOTSTRAP)
                cur.execute("SELECT memory_private._check_known_versions(%s)",
                            ([p.name[:4] for p in migrations],))
                for path in migrations:
                    version, digest = path.name[:4], checksum(path)
                    cur.execute("SELECT memory_private._migration_needed(%s, %s, %s)",
                                (version, path.name, digest))
                    if not cur.fetchone()[0]:
                        result.skipped.append(path.name)
                        continue
                    say(f"applying {path.name}")
                    cur.execute(path.read_text())
                    cur.execute("SELECT memory_private._record_migration(%s, %s, %s, 'versioned')",
                                (version, path.name, digest))
                    result.applied.append(path.name)
                cur.execute("SELECT memory_private._set_install_search_path()")
                for path in resources.sql_files():
                    cur.execute(path.read_text())
                    cur.execute("SELECT memory_private._record_migration(%s, %s, %s, 'repeatable')",
                                ("R:" + path.name, path.name, checksum(path)))
                    result.repeatable.append(path.name)
                cur.execute("SELECT set_config('search_path', current_setting('search_path'), true)")
    except psycopg.Error as exc:
        raise MigrationError(f"migration failed, nothing was changed: {exc}") from exc
    result.schema_version = migrations[-1].name[:4] if migrations else "0000"
    return result


def bundle() -> str:
    """One psql script doing what migrate() does: psql -v ON_ERROR_STOP=1 -f install.sql."""
    migrations = resources.migration_files()
    out = [
        "-- pgmemo installer for psql, generated by `make bundle` from migrations/ and sql/.",
        "-- Do not edit: it records the same ledger (memory_private.schema_migrations) as",
        "-- `pgmemo migrate`. Usage: psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -f install.sql",
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        BOOTSTRAP,
        "SELECT memory_private._check_known_versions(ARRAY[{}]::text[]);".format(
            ", ".join(f"'{p.name[:4]}'" for p in migrations)),
    ]
    for path in migrations:
        version, digest = path.name[:4], checksum(path)
        out += [
            f"-- migrations/{path.name}",
            f"SELECT memory_private._migration_needed('{version}', '{path.name}', '{digest}')"
            " AS pgmemo_apply \\gset",
            "\\if :pgmemo_apply",
            path.read_text().rstrip("\n"),
            f"SELECT memory_private._record_migration('{version}', '{path.name}', '{digest}',"
            " 'versioned');",
            "\\endif",
        ]
    out.append("SELECT memory_private._set_install_search_path();")
    for path in resources.sql_files():
        out += [
            f"-- sql/{path.name}",
            path.read_text().rstrip("\n"),
            f"SELECT memory_private._record_migration('R:{path.name}', '{path.name}',"
            f" '{checksum(path)}', 'repeatable');",
        ]
    out += ["COMMIT;", ""]
    return "\n".join(out)
