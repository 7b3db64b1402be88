"""Test harness: one embedded PostgreSQL 18 + pgvector server per test session, and a fresh
database per test cloned from a migrated template (pytest-postgresql no-process fixtures).

PGMEMO_TEST_PGDATA keeps the server's data in a folder of your choice (default: a temp dir,
removed at the end).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories

from fake_provider import FakeProvider
from pgmemo import embedded
from pgmemo.client import MemoryStore, connect_raw
from pgmemo.migrate import migrate

PGTAP_CONTROL_PATH = "/usr/share/postgresql/15"

_owned_tmp = None
if os.environ.get("PGMEMO_TEST_PGDATA"):
    _PGDATA = Path(os.environ["PGMEMO_TEST_PGDATA"]).resolve()
else:
    _owned_tmp = tempfile.mkdtemp(prefix="pgmemo-test-")
    os.chmod(_owned_tmp, 0o755)
    _PGDATA = Path(_owned_tmp) / "data"

SERVER = embedded.ensure_running(_PGDATA)


def dsn_for(dbname: str) -> str:
    return SERVER.dsn_for(dbname)


def pgtap_available() -> bool:
    return Path(PGTAP_CONTROL_PATH, "extension", "pgtap.control").exists()


def _load_public(host, port, user, dbname, password=None, **kwargs):
    migrate(dsn_for(dbname))
    if pgtap_available():
        with psycopg.connect(dsn_for(dbname), autocommit=True) as conn:
            conn.execute(f"SET extension_control_path = '{PGTAP_CONTROL_PATH}:$system'")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")


def _load_extensions_schema(host, port, user, dbname, password=None, **kwargs):
    """pgvector in a schema named extensions, as on Supabase, not on the search_path."""
    with psycopg.connect(dsn_for(dbname), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA extensions")
    migrate(dsn_for(dbname))


postgresql_noproc = factories.postgresql_noproc(
    host=str(SERVER.socket_dir), port=SERVER.port, user="postgres", dbname="pgmemo_test",
    load=[_load_public])
postgresql = factories.postgresql("postgresql_noproc")

postgresql_noproc_ext = factories.postgresql_noproc(
    host=str(SERVER.socket_dir), port=SERVER.port, user="postgres", dbname="pgmemo_test_ext",
    load=[_load_extensions_schema])
postgresql_ext = factories.postgresql("postgresql_noproc_ext")


def pytest_sessionfinish(session, exitstatus):
    if _owned_tmp:
        try:
            embedded.stop(_PGDATA)
        finally:
            shutil.rmtree(_owned_tmp, ignore_errors=True)


@pytest.fixture
def dsn(postgresql) -> str:
    """DSN of a fresh, migrated database (pgvector in public)."""
    return dsn_for(postgresql.info.dbname)


@pytest.fixture
def dsn_ext(postgresql_ext) -> str:
    """DSN of a fresh, migrated database whose pgvector lives in schema extensions."""
    return dsn_for(postgresql_ext.info.dbname)


@pytest.fixture(params=["public", "extensions"])
def any_dsn(request) -> str:
    """Both layouts: run the test with pgvector in public and in extensions."""
    return request.getfixturevalue("dsn" if request.param == "public" else "dsn_ext")


@pytest.fixture
def conn(dsn):
    """Autocommit connection, rows as dicts, vector type registered."""
    c = connect_raw(dsn)
    yield c
    c.close()


@pytest.fixture
def store(dsn):
    """A MemoryStore on a fresh database, no embedder."""
    s = MemoryStore.connect(dsn, embedder=None)
    yield s
    s.close()


@pytest.fixture
def provider():
    """A fake OpenAI-compatible embedding server (fake_provider.FakeProvider), 8 dimensions."""
    p = FakeProvider(dim=8)
    yield p
    p.close()


@pytest.fixture
def empty_db():
    """A brand-new database without pgmemo (and without pgvector): yields its DSN."""
    name = f"pgmemo_empty_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield dsn_for(name)
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count():
    n = 0
    while True:
        n += 1
        yield n


_counter = _count()


_role_n = itertools.count()


@pytest.fixture
def roles(conn, dsn):
    """roles('memory_admin', ...) -> (name, DSN) of a new LOGIN role in those groups (none: a
    role with no pgmemo group), dropped with what it owns after the test."""
    made: list[str] = []

    def make(*groups: str | None, prefix: str = "t") -> tuple[str, str]:
        groups = tuple(g for g in groups if g)
        name = f"pgmemo_{prefix}_{os.getpid()}_{next(_role_n)}"
        conn.execute(f'CREATE ROLE "{name}" LOGIN' + (f" IN ROLE {', '.join(groups)}" if groups else ""))
        made.append(name)
        return name, make_conninfo(dsn, user=name)

    yield make
    for name in reversed(made):
        conn.execute(f'DROP OWNED BY "{name}" CASCADE')
        conn.execute(f'DROP ROLE "{name}"')
