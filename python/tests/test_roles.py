"""The pgmemo roles in use, from Python, the way docker/compose.yaml uses them: login roles that
are members of memory_worker / memory_writer / memory_reader (never the owner) do their whole job
and nothing more. Complements pgtap_tests/security.sql (the grants themselves)."""

from __future__ import annotations

import itertools
import os

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from fake_provider import FakeProvider, fake_vector
from pgmemo.client import MemoryStore, as_vector, connect_raw
from pgmemo.worker import Worker

DIM = 8
_n = itertools.count()


@pytest.fixture
def login_role(conn, dsn):
    """login_role('memory_worker') -> DSN of a new login role in that group (dropped after)."""
    made: list[str] = []

    def make(group: str) -> str:
        name = f"pgmemo_t_{group}_{os.getpid()}_{next(_n)}"
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {group}')
        made.append(name)
        return make_conninfo(dsn, user=name)

    yield make
    for name in made:
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


def test_worker_role_drains_the_queue(store, conn, login_role):
    store.create_domain("jobs", DIM, embedding_model="fake-embed")
    ids = store.store_many([f"memory {i}" for i in range(7)], domain="jobs")
    provider = FakeProvider(dim=DIM)
    try:
        worker_dsn = login_role("memory_worker")
        Worker(worker_dsn, provider.embedder(), batch_size=3, once=True).run()
    finally:
        provider.close()
    rows = conn.execute("SELECT id, content, embedding FROM memory_data.jobs_memories").fetchall()
    assert sorted(r["id"] for r in rows) == sorted(ids)
    for r in rows:
        assert r["embedding"].to_list() == pytest.approx(fake_vector(r["content"], DIM), abs=1e-6)
    assert conn.execute("SELECT count(*) AS n FROM memory.workers").fetchone()["n"] >= 1
    # ... and that is all a worker may do
    with connect_raw(worker_dsn) as w:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            w.execute("SELECT * FROM memory.search('jobs', %s)", (as_vector([0.0] * DIM),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            w.execute("SELECT memory.store('jobs', 'not mine to write')")


def test_writer_role_uses_the_client(store, login_role):
    store.create_domain("app", 3)
    with MemoryStore.connect(login_role("memory_writer"), embedder=None) as app:
        row = app.store("written by the application role", domain="app", embedding=[1, 0, 0])
        assert [r["id"] for r in app.search([1, 0, 0], domain="app")] == [row]
        assert app.search_text("application", domain="app")[0]["id"] == row
        assert app.get(row, domain="app")["has_embedding"] is True
        assert [d["domain"] for d in app.domains()] == ["app"]
        assert app.update(row, domain="app", metadata={"k": 1}) is True
        assert app.forget(row, domain="app") is True
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.create_domain("nope", 3)


def test_reader_role_reads_but_cannot_write(store, login_role):
    store.create_domain("ro", 3)
    row = store.store("owner row", domain="ro", embedding=[0, 1, 0])
    with MemoryStore.connect(login_role("memory_reader"), embedder=None) as reader:
        assert [r["id"] for r in reader.search([0, 1, 0], domain="ro")] == [row]
        assert reader.diagnose("ro") is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.store("nope", domain="ro")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.conn.execute("SELECT count(*) FROM memory_data.ro_memories")
