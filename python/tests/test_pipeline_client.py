"""MemoryStore.store_memory / search_memories (the API users of the old store call) with a real
HTTP provider: synchronous embedding, a write never lost when the provider fails, and the
full-text fallback that says so in `mode`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from fake_provider import fake_vector
from pgmemo.client import MemoryStore

DIM = 8


@pytest.fixture
def mstore(dsn, provider) -> Iterator[MemoryStore]:
    s = MemoryStore.connect(dsn, embedder=provider.embedder(), default_domain="notes")
    s.create_domain("notes", DIM)
    yield s
    s.close()


def _jobs(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM memory_private.embedding_queue").fetchone()["n"]


def test_store_memory_embeds_in_the_same_call(mstore: MemoryStore, conn, provider) -> None:
    rid = mstore.store_memory("Series A closed", source="chat", importance=0.8, metadata={"k": 1})
    row = conn.execute("SELECT embedding, embedding_model, metadata FROM memory_data.notes_memories"
                       " WHERE id = %s", (rid,)).fetchone()
    assert row["embedding"].to_list() == pytest.approx(fake_vector("Series A closed", DIM), abs=1e-6)
    assert row["metadata"] == {"k": 1, "source": "chat", "importance": 0.8}
    assert _jobs(conn) == 0  # nothing left for the queue
    assert provider.calls["Series A closed"] == 1


def test_store_memory_when_the_provider_is_down_stores_and_queues(mstore: MemoryStore, conn, provider,
                                                                  caplog) -> None:
    provider.down = True
    with caplog.at_level(logging.WARNING, logger="pgmemo"):
        rid = mstore.store_memory("written while the provider was down")
    assert mstore.get(rid)["content"] == "written while the provider was down"
    assert mstore.get(rid)["has_embedding"] is False
    assert _jobs(conn) == 1  # the queue will embed it
    assert any("row stored without embedding" in r.getMessage() for r in caplog.records)


def test_store_memory_with_an_id_upserts_and_embeds(mstore: MemoryStore, conn) -> None:
    assert mstore.store_memory("first draft", id="note-1") == "note-1"
    assert mstore.store_memory("second draft", id="note-1") == "note-1"
    row = mstore.get("note-1")
    assert (row["content"], row["has_embedding"]) == ("second draft", True)
    assert _jobs(conn) == 0


def test_store_memory_rejects_a_bad_importance(mstore: MemoryStore, conn) -> None:
    with pytest.raises(ValueError, match="importance must be a number"):
        mstore.store_memory("x", importance="high")  # type: ignore[arg-type]
    assert conn.execute("SELECT count(*) AS n FROM memory_data.notes_memories").fetchone()["n"] == 0


def test_search_memories_vector_then_text_fallback(mstore: MemoryStore, provider, caplog) -> None:
    for text in ("the cat sat on the mat", "quarterly revenue grew", "a dog in the park"):
        mstore.store_memory(text)
    # With an embedder the default is the hybrid; each result says how it was found.
    hits = mstore.search_memories("quarterly revenue grew", limit=2)
    assert [h["mode"] for h in hits] == ["hybrid", "hybrid"]
    assert hits[0]["content"] == "quarterly revenue grew"
    assert hits[0]["found_by"] == "vector+text"
    assert hits[1]["found_by"] == "vector"
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-6)
    hits = mstore.search_memories("quarterly revenue grew", limit=2, mode="vector")
    assert [(h["mode"], h["found_by"]) for h in hits] == [("vector", "vector")] * 2
    assert hits[0]["content"] == "quarterly revenue grew"
    provider.down = True
    with caplog.at_level(logging.WARNING, logger="pgmemo"):
        hits = mstore.search_memories("revenue", limit=5)
    assert hits and all(h["mode"] == "text" for h in hits)
    assert [h["content"] for h in hits] == ["quarterly revenue grew"]
    assert any("falling back to full-text search" in r.getMessage() for r in caplog.records)


def test_search_memories_without_an_embedder_is_text(store: MemoryStore) -> None:
    store.create_domain("notes", DIM)
    store.store("plain words here", domain="notes")
    hits = store.search_memories("words", domain="notes")
    assert [(h["content"], h["mode"]) for h in hits] == [("plain words here", "text")]
