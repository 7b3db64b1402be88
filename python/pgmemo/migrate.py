"""The migration runner, and the single-file psql installer generated from the same files.

`migrate(conn)` runs, in one transaction under an advisory lock:
  1. the bootstrap (python/pgmemo/bootstrap.sql: the ledger table and its helper functions,
     idempotent);
  2. every file in migrations/ that the ledger does not hold, refusing to run when a file the
     ledger holds was edited since (checksum) or when the database is newer than this client;
     the ledger records whether each breaks older clients (`--! breaking-change` at its top);
  3. every file in sql/ (CREATE OR REPLACE), with the search_path the functions capture.
Two migrators at once queue on the lock; the second finds nothing to do. pgmemo's DDL functions
(create_domain, drop_domain, adopt_table, the re-embed and bulk-load ones, ...) hold the same lock
shared (memory_private._lock_ddl): a migrate waits for those under way, and they wait for it.
`bundle()` renders the same steps as one psql script (install.sql), for installs without Python.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from . import resources

# pg_advisory_xact_lock key of every pgmemo migrator; pgmemo's DDL functions take it shared
# (memory_private._lock_ddl, sql/00_private_helpers.sql, which repeats the number)
LOCK_KEY = 7_386_244_001
LOCK = f"DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock({LOCK_KEY}); END $lock$;"
# The ledger and the runner's helper functions (python/pgmemo/bootstrap.sql), run before anything.
BOOTSTRAP_FILE = Path(__file__).with_name("bootstrap.sql")


def bootstrap_sql() -> str:
    return BOOTSTRAP_FILE.read_text()


# Landed migrations that were amended on purpose, with the checksums of their earlier texts and
# why. A database whose ledger holds one of these checksums applied an equivalent file; any
# other difference is still refused as an edit.
SUPERSEDED: dict[str, dict[str, str]] = {
    "0002_roles.sql": {
        "fd3610431435c5d5f595c019b0fa4dc16168417ca1b93efc82d7116779403ffb":
            "issue 11: the first text called pg_has_role() on roles that may not exist, so it "
            "failed for a migrating user without CREATEROLE; where it succeeded, the amended "
            "text does the same.",
    },
    "0025_text_index_sizes.sql": {
        "5cf247cb4544705e769f3b0599a890577ebf319bbdb099f7d31cb8a5454cf05a":
            "stop 25: the first text's comment said the migrate run fills the content sizes "
            "(holding the tables' writers); run_maintenance fills them. Comments only: the "
            "statements are the same.",
    },
}


def superseded(path: Path) -> list[str]:
    return sorted(SUPERSEDED.get(path.name, {}))


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


# Sessions holding locks on pgmemo's tables and views (what a migrate that timed out waited for).
# install.sql only (psql cannot retry a transaction as migrate() does): lock pgmemo's views,
# which every install replaces, before anything else, retrying on lock_timeout (each failed
# attempt withdraws its place in the lock queue, so readers go on meanwhile) and naming who
# blocks. A lock timeout later in the script (an adopted table's trigger, a migration's table)
# ends the install with nothing changed: run it again.
WAIT_FOR_VIEWS = """DO $wait$
DECLARE
    v_retries integer := pg_catalog.current_setting('pgmemo.lock_retries')::integer;
    v_try integer := 0;
    v_rel regclass;
    v_held text;
BEGIN
    LOOP
        BEGIN
            FOR v_rel IN
                SELECT c.oid::regclass FROM pg_catalog.pg_class AS c
                JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = 'memory' AND c.relkind = 'v'
                ORDER BY c.oid
            LOOP
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_rel);
            END LOOP;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            v_try := v_try + 1;
            SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('pid %s (%s, %s, %s: %s)', a.pid,
                    a.usename, a.state, pg_catalog.date_trunc('second', pg_catalog.now() - a.xact_start),
                    pg_catalog.left(a.query, 80)), '; ')
            INTO v_held
            FROM pg_catalog.pg_locks AS l JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
            WHERE l.granted AND l.relation = v_rel AND l.pid <> pg_catalog.pg_backend_pid();
            IF v_try > v_retries THEN
                RAISE EXCEPTION 'pgmemo install: no lock on % within lock_timeout, % times; '
                    'blocking: %', v_rel, v_try, coalesce(v_held, 'nobody any more')
                    USING ERRCODE = '55P03',
                          HINT = 'Nothing was changed. End those sessions (or wait for them) and '
                              || 'run install.sql again.';
            END IF;
            RAISE WARNING 'pgmemo install: waiting for a lock on % (blocking: %); retrying (%/%)',
                v_rel, coalesce(v_held, 'nobody any more'), v_try, v_retries;
            PERFORM pg_catalog.pg_sleep(LEAST(v_try, 5) * 0.2);
        END;
    END LOOP;
END
$wait$;"""

BLOCKERS = """
SELECT DISTINCT a.pid, a.usename, a.state, l.relation::regclass::text AS relation, l.mode,
    date_trunc('second', now() - coalesce(a.xact_start, a.query_start)) AS for_how_long,
    left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) AS query
FROM pg_catalog.pg_locks AS l
JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
JOIN pg_catalog.pg_class AS c ON c.oid = l.relation
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND n.nspname IN ('memory', 'memory_private', 'memory_data')
ORDER BY a.pid, relation
"""


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise MigrationError(f"{name} must be a number, got {os.environ[name]!r}") from None


def migrate(conninfo_or_conn: str | psycopg.Connection, *, echo=None,
            lock_timeout: float | None = None, retries: int | None = None) -> MigrateResult:
    """Apply migrations/ then sql/ in one transaction. `echo(msg)` receives progress lines.

    Every lock is taken with lock_timeout (seconds; default PGMEMO_MIGRATE_LOCK_TIMEOUT or 5): a
    migrate waiting behind a long reader would otherwise queue every new reader behind itself.
    On a timeout the transaction rolls back, the sessions holding pgmemo's objects are printed,
    and it tries again, up to `retries` times (PGMEMO_MIGRATE_RETRIES or 10), waiting longer
    each time. The advisory lock between two migrators waits without a timeout.
    """
    say = echo or (lambda msg: None)
    if isinstance(conninfo_or_conn, str):
        with psycopg.connect(conninfo_or_conn, autocommit=True) as conn:
            return migrate(conn, echo=echo, lock_timeout=lock_timeout, retries=retries)
    conn = conninfo_or_conn
    if lock_timeout is None:
        lock_timeout = _env_number("PGMEMO_MIGRATE_LOCK_TIMEOUT", 5)
    if retries is None:
        retries = int(_env_number("PGMEMO_MIGRATE_RETRIES", 10))
    attempt = 0
    while True:
        attempt += 1
        try:
            return _migrate_once(conn, say, lock_timeout)
        except _LockTimeout as exc:
            blockers = conn.cursor(row_factory=tuple_row).execute(BLOCKERS).fetchall()
            held = "; ".join(
                f"pid {b[0]} ({b[1]}, {b[2]}, for {b[5]}) holds {b[4]} on {b[3]}: {b[6]}"
                for b in blockers) or "no session holds pgmemo's objects any more"
            if attempt > retries:
                raise MigrationError(
                    f"migration failed, nothing was changed: a lock was not granted within "
                    f"{lock_timeout:g}s, {attempt} times ({exc}). Blocking: {held}") from None
            wait = min(2 ** (attempt - 1), 30)
            say(f"waiting for a lock ({exc}); blocking: {held}; retrying in {wait}s "
                f"(attempt {attempt + 1} of {retries + 1})")
            time.sleep(wait)


class _LockTimeout(Exception):
    pass


def _migrate_once(conn: psycopg.Connection, say, lock_timeout: float) -> MigrateResult:
    result = MigrateResult()

    def warn(diag) -> None:
        # Server WARNINGs (e.g. roles that could not be created, with the SQL to run) reach the
        # user; NOTICEs (IF NOT EXISTS chatter) do not.
        if diag.severity_nonlocalized == "WARNING":
            hint = f"\n  {diag.message_hint}" if diag.message_hint else ""
            say(f"WARNING: {diag.message_primary}{hint}")

    conn.add_notice_handler(warn)
    migrations = resources.migration_files()
    try:
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    cur.execute(LOCK)
                    cur.execute("SELECT set_config('lock_timeout', %s, true)",
                                (f"{int(lock_timeout * 1000)}ms",))
                    cur.execute(bootstrap_sql())
                    cur.execute("SELECT memory_private._check_known_versions(%s)",
                                ([p.name[:4] for p in migrations],))
                    for path in migrations:
                        version, digest = path.name[:4], checksum(path)
                        cur.execute("SELECT memory_private._migration_needed(%s, %s, %s, %s)",
                                    (version, path.name, digest, superseded(path)))
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
                    # Objects made per domain from templates in sql/ (its trigger functions) are
                    # made again, so a changed template reaches the domains made before it.
                    cur.execute("SELECT to_regprocedure('memory_private._after_migrate()') IS NOT NULL")
                    if cur.fetchone()[0]:
                        cur.execute("SELECT memory_private._after_migrate()")
                    cur.execute("SELECT set_config('search_path', current_setting('search_path'), true)")
        except psycopg.errors.LockNotAvailable as exc:
            raise _LockTimeout(str(exc).splitlines()[0]) from exc
        except psycopg.Error as exc:
            raise MigrationError(f"migration failed, nothing was changed: {exc}") from exc
    finally:
        conn.remove_notice_handler(warn)
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
        "-- Locks are taken with a timeout (psql -v pgmemo_lock_timeout=5s, the default) so the",
        "-- install never queues behind a long transaction with every new reader queued behind it;",
        "-- waiting for pgmemo's views is retried (psql -v pgmemo_lock_retries=10), naming who blocks.",
        "\\if :{?pgmemo_lock_timeout}",
        "\\else",
        "\\set pgmemo_lock_timeout 5s",
        "\\endif",
        "\\if :{?pgmemo_lock_retries}",
        "\\else",
        "\\set pgmemo_lock_retries 10",
        "\\endif",
        "BEGIN;",
        "SET LOCAL client_min_messages = warning;",
        LOCK,
        "SET LOCAL lock_timeout = :'pgmemo_lock_timeout';",
        "SET LOCAL pgmemo.lock_retries = :'pgmemo_lock_retries';",
        WAIT_FOR_VIEWS,
        "-- python/pgmemo/bootstrap.sql",
        bootstrap_sql().rstrip("\n"),
        _quiet(f"memory_private._check_known_versions(ARRAY[{versions}]::text[])"),
    ]
    for path in migrations:
        version, digest = path.name[:4], checksum(path)
        args = f"{_literal(version)}, {_literal(path.name)}, {_literal(digest)}"
        out += [
            f"-- migrations/{path.name}",
            f"SELECT memory_private._migration_needed({args}, "
            f"ARRAY[{', '.join(_literal(c) for c in superseded(path))}]::text[]) AS pgmemo_apply \\gset",
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
        _quiet("memory_private._after_migrate()"),
        "COMMIT;",
        "SELECT format('pgmemo schema version %s installed (pgvector %s in schema %s)',",
        "    v ->> 'schema_version', v ->> 'pgvector', v ->> 'vector_schema') AS pgmemo_installed",
        "FROM memory.version() AS v \\gset",
        "\\echo :pgmemo_installed",
        "",
    ]
    return "\n".join(out)
