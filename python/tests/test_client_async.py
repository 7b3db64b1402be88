"""AsyncMemoryStore, the connection pools of both clients, conn= transactions, and the SQL
additions the clients expose (forget_many, clear, get_many in order, with_embeddings)."""

from __future__ import annotations

import asyncio
import inspect
import time

import psycopg
import pytest

from helpers import one
from pgmemo.client import AsyncMemoryStore, MemoryStore, SchemaVersionError

DIM = 4



def _backends(conn, dbname: str, settle: int | None = None) -> int:
    """Client backends connected to dbname (seen from another connection). settle: wait (up to
    10 s) for that count, since a backend exits a moment after its client closed the socket."""
    for _ in range(1000):
        n = one(conn, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s"
                      " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                (dbname,))
        if settle is None or n == settle:
            return n
        time.sleep(0.01)
    return n


def test_both_clients_have_the_same_methods() -> None:
    public = {n for n in dir(MemoryStore) if not n.startswith("_")}
    apublic = {n for n in dir(AsyncMemoryStore) if not n.startswith("_")}
    assert public == apublic
    for name in public - {"connect", "verify_schema", "close", "connection", "transaction"}:
        sync, asyn = getattr(MemoryStore, name), getattr(AsyncMemoryStore, name)
        if callable(sync):
            assert inspect.iscoroutinefunction(asyn), name
            assert (list(inspect.signature(sync).parameters)
                    == list(inspect.signature(asyn).parameters)), name


def test_sql_additions_through_the_sync_client(store: MemoryStore) -> None:
    store.create_domain("d", DIM)
    ids = store.store_many(["one apple", "two pears", "three apples"], domain="d",
                           embeddings=[[1, 0, 0, 0], [0, 1, 0, 0], None], ids=["a", "b", "c"])
    assert ids == ["a", "b", "c"]
    assert [r["id"] for r in store.get_many(["c", "zz", "a", "b"], domain="d")] == ["c", "a", "b"]
    hits = store.search([1, 0, 0, 0], domain="d", k=2, with_embeddings=True)
    assert [list(h["embedding"].to_list()) for h in hits] == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert "embedding" not in store.search([1, 0, 0, 0], domain="d", k=1)[0]
    hybrid = store.search_hybrid("apples", [0, 1, 0, 0], domain="d", k=3, with_embeddings=True)
    assert {h["id"]: (None if h["embedding"] is None else h["embedding"].to_list())
            for h in hybrid} == {"a": [1, 0, 0, 0], "b": [0, 1, 0, 0], "c": None}
    assert store.forget_many(["a", "nope"], domain="d") == 1
    assert store.clear(domain="d") == 2
    assert store.get_many(["a", "b", "c"], domain="d") == []
    assert [d["rows"] for d in store.domains() if d["domain"] == "d"] == [0]
    with pytest.raises(psycopg.errors.InvalidName) as err:
        store.create_domain("my-docs", DIM)
    assert err.value.diag.message_hint == "Try 'my_docs'."


def test_conn_shares_one_transaction(dsn: str) -> None:
    with MemoryStore.connect(dsn, embedder=None, pool_size=2) as s:
        s.create_domain("t", DIM)
        with pytest.raises(RuntimeError):
            with s.transaction() as tx:
                s.store("kept?", domain="t", id="x", conn=tx)
                assert s.get("x", domain="t", conn=tx)["content"] == "kept?"
                raise RuntimeError("roll back")
        assert s.get("x", domain="t") is None
        with s.transaction() as tx:
            s.store("kept", domain="t", id="y", conn=tx)
            s.update("y", domain="t", content="kept!", conn=tx)
        assert s.get("y", domain="t")["content"] == "kept!"


def test_sync_pool_is_open_before_connect_returns_and_closed_after(dsn: str, conn) -> None:
    dbname = conn.info.dbname
    before = _backends(conn, dbname)
    with MemoryStore.connect(dsn, embedder=None, pool_size=3) as s:
        assert _backends(conn, dbname) == before + 3   # all made before connect returned
        s.create_domain("p", DIM)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: s.store(f"m{i}", domain="p", embedding=[1, i, 0, 0]),
                        range(40)))
        assert one(conn, "SELECT count(*) AS n FROM memory_data.p_memories") == 40
    assert _backends(conn, dbname, settle=before) == before


def test_pool_size_must_be_positive(dsn: str) -> None:
    with pytest.raises(ValueError, match="pool_size"):
        MemoryStore.connect(dsn, embedder=None, pool_size=0)


def test_pool_on_a_database_without_pgmemo_fails_at_once(empty_db: str) -> None:
    with pytest.raises(SchemaVersionError, match="pgmemo is not installed in this database"):
        MemoryStore.connect(empty_db, embedder=None, pool_size=2, pool_timeout=5)


@pytest.mark.asyncio
async def test_async_store_basics(dsn: str, conn) -> None:
    async with await AsyncMemoryStore.connect(dsn, embedder=None) as s:
        assert (await s.version())["schema_version"]
        await s.create_domain("a", DIM)
        rid = await s.store("hello async world", domain="a", metadata={"k": 1},
                            embedding=[1, 0, 0, 0])
        assert (await s.get(rid, domain="a"))["content"] == "hello async world"
        hits = await s.search([1, 0, 0, 0], domain="a", k=1, with_embeddings=True)
        assert hits[0]["id"] == rid and hits[0]["embedding"].to_list() == [1, 0, 0, 0]
        assert [h["id"] for h in await s.search_text("async", domain="a")] == [rid]
        found = await s.search_memories("async", domain="a")
        assert [(h["id"], h["mode"], h["found_by"]) for h in found] == [(rid, "text", "text")]
        with pytest.raises(ValueError, match="query is empty"):
            await s.search_memories(" ", domain="a")
        with pytest.raises(ValueError, match="content is empty"):
            await s.store_memory("", domain="a")
        assert await s.forget_many([rid], domain="a") == 1
        assert (await s.coverage("a"))[0]["total_rows"] == 0
    assert conn.execute("SELECT 1 AS x").fetchone()["x"] == 1


@pytest.mark.asyncio
async def test_async_not_installed(empty_db: str) -> None:
    with pytest.raises(SchemaVersionError, match="pgmemo is not installed in this database"):
        await AsyncMemoryStore.connect(empty_db, embedder=None)
    with pytest.raises(SchemaVersionError, match="pgmemo is not installed in this database"):
        await AsyncMemoryStore.connect(empty_db, embedder=None, pool_size=2, pool_timeout=5)


@pytest.mark.asyncio
async def test_200_tasks_through_a_pool_of_5(dsn: str, conn, provider) -> None:
    """200 concurrent tasks store and search through one pool of 5 connections (embedding
    through the async HTTP client): nothing lost, no connection leaked, and a task cancelled
    mid-call leaves the pool healthy."""
    dbname = conn.info.dbname
    before = _backends(conn, dbname)
    s = await AsyncMemoryStore.connect(dsn, embedder=provider.embedder(), pool_size=5)
    try:
        assert _backends(conn, dbname) == before + 5       # opened before connect returned
        await s.create_domain("c", provider.dim)

        async def task(i: int) -> tuple[str, list]:
            rid = await s.store_memory(f"memory number {i} about topic{i % 7}", domain="c",
                                       metadata={"i": i})
            hits = await s.search_memories(f"topic{i % 7}", domain="c", limit=3)
            return rid, hits

        results = await asyncio.gather(*(task(i) for i in range(200)))
        ids = [rid for rid, _ in results]
        assert len(set(ids)) == 200
        assert all(hits for _, hits in results)               # each found something
        assert one(conn, "SELECT count(*) AS n FROM memory_data.c_memories"
                         " WHERE embedding IS NOT NULL") == 200    # nothing lost, all embedded
        assert _backends(conn, dbname) == before + 5        # never more than the pool

        # Cancel a task while its query runs on the server (pg_sleep holds it there): the
        # pool replaces or resets that connection, and every other call still works.
        async def slow() -> None:
            async with s.connection() as c:
                await c.execute("SELECT pg_sleep(30)")

        victim = asyncio.create_task(slow())
        for _ in range(1000):
            if one(conn, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s"
                         " AND query = 'SELECT pg_sleep(30)' AND state = 'active'", (dbname,)):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the slow query never started")
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        again = await asyncio.gather(*(s.get(i, domain="c") for i in ids[:50]))
        assert [r["id"] for r in again] == ids[:50]
        stats = s.pool.get_stats()
        assert stats["pool_size"] == 5 and stats.get("requests_waiting", 0) == 0
        for _ in range(1000):   # the cancelled query does not keep running on the server
            if not one(conn, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s"
                             " AND query = 'SELECT pg_sleep(30)' AND state = 'active'",
                       (dbname,)):
                break
            await asyncio.sleep(0.02)   # up to 20 s on a loaded machine, well below the 30 s
        else:
            pytest.fail("the cancelled query is still running")
    finally:
        await s.close()
    assert _backends(conn, dbname, settle=before) == before  # closed by close()
