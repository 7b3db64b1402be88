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
from test_queue_concurrency import finished_or_waiting, sessions, wait_until  # noqa: F401

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


# Per-domain grants name a role by OID (migration 0037), never by name.

def _secret(conn) -> None:
    """Domain secret, closed to the API roles' default grants."""
    conn.execute("SELECT memory.create_domain('secret', 3)")
    conn.execute("SELECT memory.store('secret', 'the launch codes are 1234')")
    conn.execute("SELECT memory.revoke_domain('secret', 'memory_reader', 'read')")
    conn.execute("SELECT memory.revoke_domain('secret', 'memory_worker', 'read')")


def _reads_secret(dsn: str) -> bool:
    with connect_raw(dsn) as c:
        try:
            return bool(c.execute("SELECT content FROM memory.search_text('secret', 'launch')").fetchall())
        except psycopg.errors.InsufficientPrivilege:
            return False


def test_a_dropped_roles_grant_never_reaches_a_new_role_of_its_name(conn, roles):
    """The attack review's reproducer (test_review_trust.py): a grant outlived DROP ROLE, so a
    role with CREATEROLE (memory_reader's EXECUTE, no grant on the domain) created a role of the
    dropped one's name, granted it to herself and read the domain. Now the grant died with its
    role, and run_maintenance deletes its row."""
    _secret(conn)
    conn.execute("CREATE ROLE pgmemo_contractor")
    conn.execute("SELECT memory.grant_domain('secret', 'pgmemo_contractor', 'read')")
    conn.execute("DROP ROLE pgmemo_contractor")  # the contract ended
    mallory, mallory_dsn = roles("memory_reader", prefix="mallory")
    conn.execute(f'ALTER ROLE "{mallory}" CREATEROLE')
    m = connect_raw(mallory_dsn)
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            m.execute("SELECT * FROM memory.search_text('secret', 'launch')").fetchall()
        m.execute("CREATE ROLE pgmemo_contractor")
        m.execute(f'GRANT pgmemo_contractor TO "{mallory}"')
        try:
            rows = m.execute("SELECT content FROM memory.search_text('secret', 'launch')").fetchall()
        except psycopg.errors.InsufficientPrivilege:
            rows = []
        assert rows == [], f"read another domain through a stale grant: {rows}"
        assert "secret" not in {r["domain"] for r in m.execute("SELECT domain FROM memory.domains")}
        # the dropped role's row counted nowhere; maintenance deletes it (and nothing else)
        out = conn.execute("SELECT memory.run_maintenance() AS m").fetchone()["m"]
        assert out["dropped_role_grants"] == 1, out
        assert conn.execute("SELECT memory.run_maintenance() ->> 'dropped_role_grants' AS n"
                            ).fetchone()["n"] == "0"
        assert conn.execute("SELECT array_agg(role_id::regrole::text ORDER BY role_id::regrole::text) AS r "
                            "FROM memory_private.domain_access WHERE domain = 'secret'"
                            ).fetchone()["r"] == ["memory_worker", "memory_writer"]
    finally:
        m.close()
        conn.execute("DROP ROLE IF EXISTS pgmemo_contractor")


def test_a_grant_follows_its_role_through_a_rename(conn, roles):
    """ALTER ROLE ... RENAME: the renamed role keeps its grant (shown, revoked and matched under
    its new name); a new role of the old name gets nothing."""
    _secret(conn)
    old, new = f"pgmemo_team_{os.getpid()}", f"pgmemo_team_renamed_{os.getpid()}"
    conn.execute(f'CREATE ROLE "{old}"')
    try:
        conn.execute("SELECT memory.grant_domain('secret', %s, 'read')", (old,))
        member, member_dsn = roles("memory_reader", old, prefix="member")
        assert _reads_secret(member_dsn)
        conn.execute(f'ALTER ROLE "{old}" RENAME TO "{new}"')
        assert _reads_secret(member_dsn), "the renamed role lost its grant"
        assert conn.execute("SELECT role_id::regrole::text AS r FROM memory_private.domain_access "
                            "WHERE domain = 'secret' AND access = 'read'").fetchone()["r"] == new
        # a new role under the old name: nothing, and nothing to revoke
        conn.execute(f'CREATE ROLE "{old}"')
        taker, taker_dsn = roles("memory_reader", old, prefix="taker")
        assert not _reads_secret(taker_dsn)
        assert conn.execute("SELECT memory.revoke_domain('secret', %s, 'read') AS r", (old,)).fetchone()["r"] is False
        assert _reads_secret(member_dsn)
        assert conn.execute("SELECT memory.revoke_domain('secret', %s, 'read') AS r", (new,)).fetchone()["r"] is True
        assert not _reads_secret(member_dsn)
        with pytest.raises(psycopg.errors.UndefinedObject, match='role "?pgmemo_nobody"? does not exist'):
            conn.execute("SELECT memory.grant_domain('secret', 'pgmemo_nobody', 'read')")
    finally:
        for r in (old, new):
            conn.execute(f'DROP ROLE IF EXISTS "{r}"')


def test_api_roles_are_bound_by_oid_at_migrate(conn, roles):
    """memory_admin's rule and new domains' default grants use the roles the last migrate run
    bound (memory_private.api_roles), not whatever holds the names at the call. A domain made
    while an API role is unbound gets a pending row instead, granted by the next binding (the
    run that finds a role a superuser made later; test_install_trust covers that install)."""
    bound = {r["role_name"]: r["role_id"] for r in conn.execute(
        "SELECT role_name, role_id::regrole::text AS role_id FROM memory_private.api_roles")}
    assert bound == {r: r for r in ["memory_admin", "memory_reader", "memory_worker", "memory_writer"]}
    _secret(conn)
    admin, admin_dsn = roles("memory_admin", prefix="admin")
    reader, reader_dsn = roles("memory_reader", prefix="reader")
    assert _reads_secret(admin_dsn) and not _reads_secret(reader_dsn)
    # as if memory_admin and memory_reader had been made after the last migrate run
    conn.execute("DELETE FROM memory_private.api_roles "
                 "WHERE role_name IN ('memory_admin', 'memory_reader')")
    conn.execute("SELECT memory.revoke_domain('secret', 'memory_writer', 'write')")
    assert not _reads_secret(admin_dsn), "memory_admin's rule matched the role by name"
    conn.execute("SELECT memory.create_domain('later', 3)")
    assert conn.execute("SELECT array_agg(role_name || ':' || access ORDER BY role_name) AS p "
                        "FROM memory_private.domain_access_pending WHERE domain = 'later'"
                        ).fetchone()["p"] == ["memory_reader:read"]
    with connect_raw(reader_dsn) as r:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            r.execute("SELECT memory.count('later')")
    conn.execute("SELECT memory_private._bind_api_roles()")
    assert conn.execute("SELECT count(*) AS n FROM memory_private.domain_access_pending").fetchone()["n"] == 0
    assert _reads_secret(admin_dsn)
    with connect_raw(reader_dsn) as r:
        assert r.execute("SELECT memory.count('later') AS n").fetchone()["n"] == 0


def test_a_filtered_searchs_plan_is_never_handed_to_another_role(store, conn, login_role):
    """memory.search keeps its last filter's plan in the session setting pgmemo.filter_estimate
    (with the filter's counts). In a pooled session that switches roles (SET ROLE), the entry of
    one role is never taken by another: the key names who asks."""
    store.create_domain("pooled", 3)
    store.store_many([f"row {i}" for i in range(30)], domain="pooled",
                     embeddings=[[1, i, 0] for i in range(30)],
                     metadatas=[{"user": "alice" if i % 3 else "bob"} for i in range(30)])
    a = login_role("memory_reader").split("user=")[-1].split()[0]
    b = login_role("memory_reader").split("user=")[-1].split()[0]

    def search_as(role: str) -> str:
        conn.execute(f'SET ROLE "{role}"')
        try:
            conn.execute("SELECT count(*) FROM memory.search('pooled', '[1,0,0]', 5, "
                         "'{\"user\": \"alice\"}')")
            return conn.execute("SELECT current_setting('pgmemo.filter_estimate') AS e").fetchone()["e"]
        finally:
            conn.execute("RESET ROLE")

    first = search_as(a)
    assert search_as(a) == first  # the same role, within 10 s: its entry taken, not rewritten
    second = search_as(b)
    assert second.split()[0] != first.split()[0], "another role took the first role's entry"


def test_a_grant_waiting_for_a_dropped_domain_says_the_domain_is_unknown(store, conn, sessions):
    """grant_domain while drop_domain of that domain is not yet committed: the grant's insert
    waits for the domain's row, and once the drop commits it fails as for any unknown domain
    (42704), not with the registry's foreign key (23503)."""
    store.create_domain("going", 3)
    dropper, granter = sessions(), sessions()
    dropper.run("BEGIN")
    dropper.run("SELECT memory.drop_domain('going')")
    granter.start("SELECT memory.grant_domain('going', 'memory_reader', 'read')")
    wait_until(lambda: finished_or_waiting(conn, granter), what="the grant to wait")
    dropper.run("COMMIT")
    granter.join()
    assert isinstance(granter.error, psycopg.errors.UndefinedObject), granter.error
    assert "going" in str(granter.error)
