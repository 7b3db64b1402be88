"""The migration runner, and the single-file psql installer generated from the same files.

`migrate(conn)` runs, in one transaction under an advisory lock:
  1. the bootstrap (python/pgmemo/bootstrap.sql: the ledger table and its helper functions,
     idempotent);
  2. every file in migrations/ that the ledger does not hold, refusing to run when a file the
     ledger holds was edited since (checksum) or when the database is newer than this client;
     the ledger records whether each breaks older clients (`--! breaking-change` at its top);
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
LOCK = f"DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock({LOCK_KEY}); END $lock$;"
# The ledger and the runner's helper functions (python/pgmemo/bootstrap.sql), run before anything.
BOOTSTRAP_FILE = Path(__file__).with_name("bootstrap.sql")


def bootstrap_sql() -> str:
    return BOOTSTRAP_FILE.read_text()


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
                cur.execute(LOCK)
                cur.execute(bootstrap_sql())
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
                    cur.execute("SELECT memory_private._record_breaking(%s, %s)",
                                (version, resources.is_breaking(path)))
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


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quiet(*calls: str) -> str:
    """Function calls as one DO block: psql prints no result row for it."""
    return "DO $pgmemo$ BEGIN " + " ".join(f"PERFORM {c};" for c in calls) + " END $pgmemo$;"


def bundle() -> str:
    """One psql script doing what migrate() does: psql -v ON_ERROR_STOP=1 -f install.sql.

    Under `psql -q` it prints one line, the version installed: no result rows (calls are DO
    blocks, checks go through \\gset), no NOTICEs (client_min_messages = warning; WARNINGs and
    errors still show).
    """
    migrations = resources.migration_files()
    versions = ", ".join(_literal(p.name[:4]) for p in migrations)
    out = [
        "-- pgmemo installer for psql, generated by `make bundle` from migrations/ and sql/.",
        "-- Do not edit: it records the same ledger (memory_private.schema_migrations) as",
        "-- `pgmemo migrate`. Usage: psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -f install.sql",
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        "SET LOCAL client_min_messages = warning;",
        LOCK,
        "-- python/pgmemo/bootstrap.sql",
        bootstrap_sql().rstrip("\n"),
        _quiet(f"memory_private._check_known_versions(ARRAY[{versions}]::text[])"),
    ]
    for path in migrations:
        version, digest = path.name[:4], checksum(path)
        args = f"{_literal(version)}, {_literal(path.name)}, {_literal(digest)}"
        out += [
            f"-- migrations/{path.name}",
            f"SELECT memory_private._migration_needed({args}) AS pgmemo_apply \\gset",
            "\\if :pgmemo_apply",
            path.read_text().rstrip("\n"),
            _quiet(f"memory_private._record_migration({args}, 'versioned')",
                   f"memory_private._record_breaking({_literal(version)}, "
                   f"{str(resources.is_breaking(path)).lower()})"),
            "\\endif",
        ]
    out.append(_quiet("memory_private._set_install_search_path()"))
    for path in resources.sql_files():
        out += [
            f"-- sql/{path.name}",
            path.read_text().rstrip("\n"),
            _quiet(f"memory_private._record_migration({_literal('R:' + path.name)}, "
                   f"{_literal(path.name)}, {_literal(checksum(path))}, 'repeatable')"),
        ]
    out += [
        "COMMIT;",
        "SELECT format('pgmemo schema version %s installed (pgvector %s in schema %s)',",
        "    v ->> 'schema_version', v ->> 'pgvector', v ->> 'vector_schema') AS pgmemo_installed",
        "FROM memory.version() AS v \\gset",
        "\\echo :pgmemo_installed",
        "",
    ]
    return "\n".join(out)
