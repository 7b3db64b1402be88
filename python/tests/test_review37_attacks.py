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
