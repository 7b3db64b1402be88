"""The queue at volume: one store_many of 50,000 rows enqueues 50,000 jobs in one statement-level
pass. The time is printed (bench notes), never asserted."""

from __future__ import annotations

import time

from pgmemo.client import MemoryStore


def test_store_many_50000_rows_enqueues_50000_jobs(store: MemoryStore, conn) -> None:
    store.create_domain("bulk", 3)
    contents = [f"bulk memory {i}" for i in range(50_000)]
    t0 = time.perf_counter()
    ids = store.store_many(contents, domain="bulk")
    elapsed = time.perf_counter() - t0
    print(f"\nbench: store_many of 50,000 rows (with their 50,000 jobs) took {elapsed:.2f}s")
    assert len(ids) == 50_000
    assert conn.execute("SELECT * FROM memory.queue_counts('bulk')").fetchone() == {
        "ready": 50_000, "waiting": 0, "claimed": 0, "dead": 0}
    assert conn.execute("SELECT count(DISTINCT row_id) AS n FROM memory_private.embedding_queue"
                        " WHERE domain = 'bulk'").fetchone()["n"] == 50_000
    # The insert trigger is statement-level: the table has exactly one per operation.
    assert conn.execute(
        "SELECT count(*) AS n FROM pg_catalog.pg_trigger WHERE tgrelid = 'memory_data.bulk_memories'::regclass"
        " AND tgname = 'pgmemo_bulk_enqueue_insert' AND (tgtype & 1) = 0").fetchone()["n"] == 1
