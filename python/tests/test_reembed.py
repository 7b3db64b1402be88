"""Switching a domain's model and dimension without downtime (memory.begin_reembed /
finish_reembed / cancel_reembed, `pgmemo reembed`), with real workers on two fake providers of
different dimensions: searches keep answering with the old embeddings during the re-embed,
finish is refused until coverage is complete, then switches atomically."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from fake_provider import FakeProvider, fake_vector
from helpers import cli, drain, one
from pgmemo.client import as_vector

OLD, NEW = 8, 16


@pytest.fixture
def old_provider() -> Iterator[FakeProvider]:
    p = FakeProvider(dim=OLD)
    yield p
    p.close()


@pytest.fixture
def new_provider() -> Iterator[FakeProvider]:
    p = FakeProvider(dim=NEW)
    yield p
    p.close()


def search_ids(conn, domain: str, text: str, dim: int, k: int = 1) -> list[str]:
    return [r["id"] for r in conn.execute("SELECT id FROM memory.search(%s, %s, %s)",
                                          (domain, as_vector(fake_vector(text, dim)), k)).fetchall()]


def test_reembed_factory_domain_switches_atomically(conn, dsn, old_provider, new_provider) -> None:
    conn.execute("SELECT memory.create_domain('notes', %s, embedding_model => 'old-model')", (OLD,))
    texts = [f"note {i} about {'cats' if i % 2 else 'dogs'}" for i in range(40)]
    ids = [r["s"] for r in conn.execute("SELECT s FROM memory.store_many('notes', %s) AS s",
                                        (texts,)).fetchall()]
    drain(dsn, old_provider)
    assert search_ids(conn, "notes", texts[7], OLD) == [ids[7]]

    code, out = cli(dsn, "reembed", "start", "notes", "--model", "new-model", "--dimension", str(NEW))
    assert code == 0 and "40 rows queued on shadow domain notes__next" in out, out
    with pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute("SELECT memory.begin_reembed('notes', 'x', 4)")
    status = conn.execute("SELECT * FROM memory.reembed_status('notes')").fetchone()
    assert (status["total_rows"], status["embedded_rows"], status["queued_jobs"]) == (40, 0, 40)

    # During the re-embed: searches answer from the old embeddings; writes go on, and a worker
    # without --domain (the old model's) embeds the domain's own jobs but never the shadow's.
    new_id = one(conn, "SELECT memory.store('notes', 'a note written during the re-embed')")
    conn.execute("SELECT memory.update('notes', %s, content => 'note 3, rewritten')", (ids[3],))
    drain(dsn, old_provider)
    assert old_provider.sent["a note written during the re-embed"] == 1
    assert search_ids(conn, "notes", "note 3, rewritten", OLD) == [ids[3]]
    assert one(conn, "SELECT ready FROM memory.queue_counts('notes__next')") == 41
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=r"0 of 41 rows .*\(0\.00%\)"):
        conn.execute("SELECT memory.finish_reembed('notes')")
    code, out = cli(dsn, "reembed", "finish", "notes")
    assert code != 0 and "not complete" in out and "[55000]" in out

    # The new model's worker drains the shadow domain; the shadow can be searched already.
    drain(dsn, new_provider, "notes__next")
    assert set(new_provider.sent.values()) == {1} and len(new_provider.sent) == 41
    assert search_ids(conn, "notes__next", texts[11], NEW) == [ids[11]]
    assert search_ids(conn, "notes", texts[11], OLD) == [ids[11]]
    code, out = cli(dsn, "reembed", "status", "notes")
    assert "41/41 rows (100.00%)" in out, out

    code, out = cli(dsn, "reembed", "finish", "notes", "--wait")
    assert code == 0 and "notes now uses new-model (16 dimensions, 41 rows" in out, out
    assert search_ids(conn, "notes", texts[11], NEW) == [ids[11]]
    assert search_ids(conn, "notes", "note 3, rewritten", NEW) == [ids[3]]
    with pytest.raises(psycopg.errors.DataException) as err:
        search_ids(conn, "notes", texts[11], OLD)
    assert err.value.sqlstate == "22000"
    for r in conn.execute("SELECT content, embedding, embedding_model FROM memory_data.notes_memories"):
        assert r["embedding"].to_list() == pytest.approx(fake_vector(r["content"], NEW), abs=1e-6)
        assert r["embedding_model"] == "fake-embed"
    d = conn.execute("SELECT dimension, embedding_model FROM memory.domains WHERE domain = 'notes'").fetchone()
    assert d == {"dimension": NEW, "embedding_model": "new-model"}
    assert [r["domain"] for r in conn.execute("SELECT domain FROM memory.domains")] == ["notes"]
    cols = [r["attname"] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'memory_data.notes_memories'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attname")]
    assert cols == ["content", "content_tsv", "created_at", "embedding", "embedding_model", "id",
                    "metadata", "updated_at"]
    assert [r["index_name"] for r in conn.execute(
        "SELECT index_name FROM memory.vector_indexes WHERE domain = 'notes'")] == ["notes_memories_hnsw"]
    assert conn.execute("SELECT * FROM memory.diagnose('notes') WHERE severity = 'error'").fetchall() == []
    # The domain works as before: a new row is queued and embedded by the new model's worker.
    conn.execute("SELECT memory.store('notes', 'after the switch')")
    drain(dsn, new_provider, "notes")
    assert search_ids(conn, "notes", "after the switch", NEW) != []


def test_reembed_adopted_table_and_cancel(conn, dsn, old_provider, new_provider) -> None:
    conn.execute("CREATE TABLE docs (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                 " body text NOT NULL, embedding vector(8), embedding_model text)")
    conn.execute("INSERT INTO docs (body) SELECT 'doc ' || g FROM generate_series(1, 25) AS g")
    conn.execute("SELECT memory.adopt_table('docs', 'docs', 'id', 'body', 'embedding')")
    drain(dsn, old_provider)

    # Cancel leaves nothing behind.
    assert one(conn, "SELECT memory.begin_reembed('docs', 'new-model', %s)", (NEW,)) == "docs__next"
    assert one(conn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'docs'::regclass"
                     " AND attname IN ('embedding_next', 'embedding_model_next')") == 2
    drain(dsn, new_provider, "docs__next")
    code, out = cli(dsn, "reembed", "cancel", "docs", "--yes")
    assert code == 0, out
    assert one(conn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'docs'::regclass"
                     " AND attname LIKE '%%next%%' AND NOT attisdropped") == 0
    assert one(conn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgmemo_docs__next%%'") == 0
    assert one(conn, "SELECT count(*) FROM memory_private.domains WHERE domain = 'docs__next'") == 0
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0
    assert one(conn, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemo_docs__next_hnsw'") == 0
    assert search_ids(conn, "docs", "doc 4", OLD) == ["4"]
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT memory.cancel_reembed('docs')")

    # Again, to the end: the adopted table's column is switched and the view follows it.
    code, out = cli(dsn, "reembed", "start", "docs", "--model", "new-model", "--dimension", str(NEW),
                    "--concurrently")
    assert code == 0 and "CREATE INDEX CONCURRENTLY IF NOT EXISTS pgmemo_docs__next_hnsw" in out, out
    assert conn.execute("SELECT index_name, is_valid FROM memory.vector_indexes WHERE domain = 'docs__next'"
                        ).fetchall() == [{"index_name": "pgmemo_docs__next_hnsw", "is_valid": True}]
    conn.execute("UPDATE docs SET body = 'doc 9, edited by the app' WHERE id = 9")  # both queues
    drain(dsn, old_provider)
    drain(dsn, new_provider, "docs__next")
    result = one(conn, "SELECT memory.finish_reembed('docs')")
    assert result["dimension"] == NEW and result["hnsw_index"] == "pgmemo_docs_hnsw"
    assert one(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                     " WHERE attrelid = 'docs'::regclass AND attname = 'embedding'") == "vector(16)"
    assert search_ids(conn, "docs", "doc 9, edited by the app", NEW) == ["9"]
    assert one(conn, "SELECT embedding_model FROM docs WHERE id = 9") == "fake-embed"
    # The app's writes are still queued for the domain, now with the new dimension.
    conn.execute("INSERT INTO docs (body) VALUES ('late doc')")
    drain(dsn, new_provider, "docs")
    assert search_ids(conn, "docs", "late doc", NEW) == ["26"]
    assert one(conn, "SELECT count(*) FROM memory.diagnose('docs') WHERE severity = 'error'") == 0
    # Dropping the domain during a re-embed cancels it first; the table stays.
    conn.execute("SELECT memory.begin_reembed('docs', 'x', 4)")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="cancel_reembed"):
        conn.execute("SELECT memory.drop_domain('docs__next')")
    conn.execute("SELECT memory.drop_domain('docs')")
    assert one(conn, "SELECT count(*) FROM docs WHERE embedding IS NOT NULL") == 26
    assert one(conn, "SELECT count(*) FROM memory_private.domains") == 0
