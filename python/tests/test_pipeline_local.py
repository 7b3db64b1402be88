"""The local model for real, end to end through the queue and the worker: the demo's startup
memories are stored without embeddings, the worker embeds them with all-MiniLM-L6-v2, and
"funding strategy" finds the Series A memory ahead of unrelated ones."""

from __future__ import annotations

import math

import pytest

from pgmemo.client import MemoryStore
from pgmemo.demo import DIMENSION, MEMORIES, MODEL
from pgmemo.embedders import EmbeddingError
from pgmemo.worker import Worker


@pytest.fixture(scope="module")
def local_embedder():
    from pgmemo.embedders import LocalEmbedder

    try:
        emb = LocalEmbedder()
    except EmbeddingError as exc:
        pytest.skip(f"local model not installed: {exc}")
    yield emb
    emb.close()


def test_funding_strategy_finds_series_a(dsn, conn, local_embedder) -> None:
    with MemoryStore.connect(dsn, embedder=None) as s:
        s.create_domain("startup", DIMENSION, embedding_model=MODEL)
        s.store_many(MEMORIES["startup"], domain="startup")
        assert s.queue_counts("startup")["ready"] == len(MEMORIES["startup"])
    w = Worker(dsn, local_embedder, batch_size=4, once=True, domain="startup")
    assert w.run().embedded == len(MEMORIES["startup"])
    rows = conn.execute("SELECT embedding, embedding_model FROM memory_data.startup_memories").fetchall()
    assert {r["embedding_model"] for r in rows} == {MODEL}
    for r in rows:
        vec = r["embedding"].to_list()
        assert len(vec) == DIMENSION
        assert math.sqrt(sum(x * x for x in vec)) == pytest.approx(1.0, abs=1e-4)
    with MemoryStore.connect(dsn, embedder=local_embedder, default_domain="startup") as s:
        hits = s.search_memories("funding strategy", limit=len(MEMORIES["startup"]),
                               mode="vector")
    assert {h["mode"] for h in hits} == {"vector"}
    assert hits[0]["content"].startswith("Series A funding round completed")
    unrelated = {"Moved the office to a bigger space downtown", "Team offsite in Lisbon planned for October",
                 "Launched the mobile app on iOS and Android"}
    rank = {h["content"]: i for i, h in enumerate(hits)}
    assert all(rank[u] > 0 for u in unrelated)
    assert hits[0]["similarity"] > max(h["similarity"] for h in hits if h["content"] in unrelated) + 0.1
