"""The compatibility window: a migration that breaks older clients says so in its file
(`--! breaking-change` among its leading comment lines); the ledger records it; a client accepts a
newer schema unless a breaking migration it does not know lies between, and then names the
upgrade to run. A worker of the previous release keeps working across a non-breaking upgrade.

"The next release" is simulated: this checkout's migrations/ and sql/ plus files written by the
test, applied with PGMEMO_MIGRATIONS_DIR / PGMEMO_SQL_DIR; the client and worker under test are
this checkout (the previous release from the database's point of view)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from fake_provider import FakeProvider
from pgmemo import resources
from pgmemo.cli import main as cli_main
from pgmemo.client import MemoryStore, SchemaVersionError, connect_raw
from pgmemo.migrate import bundle, migrate
from pgmemo.worker import Worker
from test_migrate import _psql
from test_worker import Background, wait_until

DIM = 8
NON_BREAKING = ("9000_next.sql", "-- 9000_next: a new table and a column older clients ignore\n"
                "CREATE TABLE memory_private.next_feature (id bigint PRIMARY KEY);\n"
                "ALTER TABLE memory_private.domains ADD COLUMN next_note text;\n")
BREAKING = ("9001_breaks.sql", "-- 9001_breaks: older clients cannot work with this\n"
            "--! breaking-change\n"
            "CREATE TABLE memory_private.breaking_feature (id bigint PRIMARY KEY);\n")
# The next release's sql/ gains a function too (90_grants.sql stays last).
NEXT_SQL = ("85_next.sql", "-- 85_next: a function the next release adds.\n"
            "CREATE OR REPLACE FUNCTION memory.next_feature()\nRETURNS integer\nLANGUAGE sql\n"
            "SET search_path FROM CURRENT\nAS $$ SELECT 1 $$;\n"
            "COMMENT ON FUNCTION memory.next_feature() IS 'Added by the next release.';\n")


def next_release(tmp_path: Path, *migrations: tuple[str, str]) -> dict[str, str]:
    """Folders holding this checkout's SQL plus the given migrations (and 85_next.sql)."""
    mig, sql = tmp_path / "migrations", tmp_path / "sql"
    shutil.copytree(resources.migrations_dir(), mig, dirs_exist_ok=True)
    shutil.copytree(resources.sql_dir(), sql, dirs_exist_ok=True)
    for name, text in migrations:
        (mig / name).write_text(text)
    (sql / NEXT_SQL[0]).write_text(NEXT_SQL[1])
    return {"PGMEMO_MIGRATIONS_DIR": str(mig), "PGMEMO_SQL_DIR": str(sql)}


def upgrade(dsn: str, dirs: dict[str, str], monkeypatch) -> list[str]:
    with monkeypatch.context() as m:
        for key, value in dirs.items():
            m.setenv(key, value)
        return migrate(dsn).applied


def ledger_breaking(dsn: str) -> dict[str, bool | None]:
    with psycopg.connect(dsn) as c:
        return dict(c.execute("SELECT version, breaking FROM memory_private.schema_migrations"
                              " WHERE kind = 'versioned'").fetchall())


def test_marker_is_read_from_the_leading_comment_lines(tmp_path):
    cases = {
        "--! breaking-change\nSELECT 1;\n": True,
        "-- 9000_x: why\n--\n--! breaking-change\n\nSELECT 1;\n": True,
        "-- 9000_x: why\nSELECT 1;\n--! breaking-change\n": False,  # not in the header
        "-- 9000_x: not a --! breaking-change marker\nSELECT 1;\n": False,
        "-- 9000_x: why\nSELECT 1;\n": False,
    }
    for i, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"900{i}_case.sql"
        path.write_text(text)
        assert resources.is_breaking(path) is expected, text
    assert not any(resources.is_breaking(p) for p in resources.migration_files()
                   if p.name[:4] <= "0005")


def test_ledger_records_which_migrations_break(dsn, tmp_path, monkeypatch):
    dirs = next_release(tmp_path, NON_BREAKING, BREAKING)
    assert upgrade(dsn, dirs, monkeypatch) == ["9000_next.sql", "9001_breaks.sql"]
    ledger = ledger_breaking(dsn)
    assert ledger["9000"] is False and ledger["9001"] is True
    with connect_raw(dsn) as c:
        v = c.execute("SELECT memory.version() AS v").fetchone()["v"]
    assert (v["schema_version"], v["breaking_version"], v["breaking_migration"]) == \
        ("9001", "9001", "9001_breaks.sql")


def test_psql_installer_records_the_marker_too(empty_db, tmp_path, monkeypatch):
    dirs = next_release(tmp_path, NON_BREAKING, BREAKING)
    with monkeypatch.context() as m:
        for key, value in dirs.items():
            m.setenv(key, value)
        (tmp_path / "install.sql").write_text(bundle())
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
    proc = _psql(empty_db, "-f", str(tmp_path / "install.sql"))
    assert proc.returncode == 0, proc.stderr
    ledger = ledger_breaking(empty_db)
    assert ledger["9000"] is False and ledger["9001"] is True
    assert all(ledger[p.name[:4]] is False for p in resources.migration_files())


def test_client_accepts_a_newer_schema_without_a_breaking_migration(dsn, tmp_path, monkeypatch):
    assert upgrade(dsn, next_release(tmp_path, NON_BREAKING), monkeypatch) == ["9000_next.sql"]
    with MemoryStore.connect(dsn, embedder=None) as s:  # this client ships an older schema
        assert s.version()["schema_version"] == "9000"
        s.create_domain("ok", dimension=3)
        rid = s.store("still works", domain="ok", embedding=[1, 0, 0])
        assert s.search([1, 0, 0], domain="ok", k=1)[0]["id"] == rid
    code, out = _cli(dsn, "status")
    assert code == 0, out


def test_client_refuses_across_a_breaking_migration_and_names_the_upgrade(dsn, tmp_path,
                                                                          monkeypatch):
    upgrade(dsn, next_release(tmp_path, NON_BREAKING, BREAKING), monkeypatch)
    with pytest.raises(SchemaVersionError) as err:
        MemoryStore.connect(dsn, embedder=None)
    message = str(err.value)
    assert "9001_breaks.sql" in message and "breaks older clients" in message
    assert "upgrade pgmemo to a release with schema version 9001 or newer" in message
    code, out = _cli(dsn, "worker", "--once", env={
        "PGMEMO_EMBEDDER": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "test"})
    assert code == 1 and "9001_breaks.sql" in out and "Traceback" not in out


def test_client_still_says_run_migrate_on_an_older_schema(dsn, tmp_path, monkeypatch):
    dirs = next_release(tmp_path, NON_BREAKING)  # this client is the next release here
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", dirs["PGMEMO_MIGRATIONS_DIR"])
    with pytest.raises(SchemaVersionError, match=r"needs 9000: run `pgmemo migrate`"):
        MemoryStore.connect(dsn, embedder=None)


def _cli(dsn: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(cli_main, ["--dsn", dsn, *args], env=env)
    return r.exit_code, r.output


def test_previous_release_worker_keeps_working_across_a_non_breaking_upgrade(
        dsn, tmp_path, monkeypatch):
    provider = FakeProvider(dim=DIM)
    store = MemoryStore.connect(dsn, embedder=None)
    try:
        store.create_domain("w", DIM, embedding_model="fake-embed")
        running = Background(Worker(dsn, provider.embedder(), batch_size=10, poll=0.1,
                                    name="previous-release", maintenance_every=0.2))
        before = store.store_many([f"before the upgrade {i}" for i in range(20)], domain="w")

        def embedded(ids: list[str]) -> bool:
            return all(r["embedding"] is not None for r in store.get_many(ids, domain="w"))

        wait_until(lambda: embedded(before), what="rows stored before the upgrade embedded")
        # The next release is installed while the worker runs.
        assert upgrade(dsn, next_release(tmp_path, NON_BREAKING), monkeypatch) == ["9000_next.sql"]
        assert store.version()["schema_version"] == "9000"
        after = store.store_many([f"after the upgrade {i}" for i in range(20)], domain="w")
        wait_until(lambda: embedded(after), what="rows stored after the upgrade embedded")
        running.stop()
        assert running.worker.stats.embedded == 40
        # A worker of the previous release started after the upgrade (a restart, a rollout
        # that is not finished): it passes the schema check and works.
        late = store.store_many([f"late {i}" for i in range(5)], domain="w")
        env = {"PGMEMO_EMBEDDER": "openai", "OPENAI_BASE_URL": provider.base_url,
               "OPENAI_API_KEY": "test", "OPENAI_EMBEDDING_MODEL": "fake-embed"}
        code, out = _cli(dsn, "worker", "--once", env=env)
        assert code == 0, out
        assert embedded(late)
        assert store.queue_counts("w") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}
    finally:
        store.close()
        provider.close()


def test_documented_marker_is_the_one_the_runner_reads():
    text = (Path(__file__).resolve().parents[2] / "docs" / "UPGRADING.md").read_text()
    assert resources.BREAKING_MARKER in text
