"""Stop 37's attack review: the hybrid's rows waiting for their embedding, the stale rule for
renamed rows, and the DDL lock."""

from __future__ import annotations

from helpers import one


def test_hybrid_filter_applies_to_the_rows_waiting_for_their_embedding(conn):
    """A row waiting in the queue is read by id, not found by the filtered vector search: the
    filter must hold for it too (a tenant's filter returned another tenant's waiting rows)."""
    conn.execute("SELECT memory.create_domain('tenants', 3)")
    conn.execute("""SELECT memory.store('tenants', 'apple pie recipe', '{"t": "a"}', '[1,0,0]', 'a1')""")
    conn.execute("""SELECT memory.store('tenants', 'banana bread', '{"t": "a"}', '[0,1,0]', 'a2')""")
    conn.execute("""SELECT memory.store('tenants', 'apple plans of tenant b', '{"t": "b"}', NULL, 'b1')""")
    conn.execute("""SELECT memory.store('tenants', 'apple waiting for a', '{"t": "a"}', NULL, 'a3')""")
    conn.execute("SELECT memory.refresh_text_stats('tenants')")
    for args in ("""'{"t": "a"}'""", """'{"t": {"$eq": "a"}}'""", """'{"t": "a"}', fusion => 'rrf'"""):
        ids = {r["id"] for r in conn.execute(
            f"SELECT id FROM memory.search_hybrid('tenants', 'apple', '[1,0,0]', 10, {args})")}
        assert "b1" not in ids, args
        assert {"a1", "a3"} <= ids, args
    # unfiltered: the waiting rows of both
    ids = {r["id"] for r in conn.execute(
        "SELECT id FROM memory.search_hybrid('tenants', 'apple', '[1,0,0]', 10)")}
    assert {"a1", "a3", "b1"} <= ids


def test_ddl_lock_polling_ends_with_lock_timeout(conn, roles):
    """Any role may take the migrators' advisory key in a session of its own: pgmemo's DDL, which
    polls for it, then ends with the caller's lock_timeout (55P03, naming the holder), as a
    wait for a lock would, instead of polling until statement_timeout (or forever)."""
    import psycopg

    conn.execute("SELECT memory.create_domain('held', 3)")
    _, attacker_dsn = roles(None, prefix="holder")
    with psycopg.connect(attacker_dsn, autocommit=True) as attacker:
        attacker.execute("SELECT pg_advisory_lock(7386244001)")
        holder = attacker.info.backend_pid
        conn.execute("SET lock_timeout = '200ms'")
        conn.execute("SET statement_timeout = '20s'")
        for call in ("SELECT memory.create_domain('blocked', 3)",
                     "SELECT memory.drop_domain('held')"):
            try:
                conn.execute(call)
            except psycopg.Error as exc:
                assert exc.sqlstate == "55P03", (call, exc.sqlstate, str(exc))
                assert str(holder) in (exc.diag.message_detail or ""), exc.diag.message_detail
            else:
                raise AssertionError(f"{call} passed a held DDL lock")
        conn.execute("RESET statement_timeout")
        conn.execute("RESET lock_timeout")
        attacker.execute("SELECT pg_advisory_unlock(7386244001)")
    conn.execute("SELECT memory.create_domain('blocked', 3)")
    assert one(conn, "SELECT count(*) FROM memory.domains WHERE domain IN ('held', 'blocked')") == 2
