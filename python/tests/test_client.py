"""MemoryStore: thin wrappers over memory.* that round-trip, read rows by name, and surface the
database's errors (with their SQLSTATE) unchanged; DSN resolution."""

from __future__ import annotations

import math

import psycopg
import pytest

from pgmemo import config
from pgmemo.client import MemoryStore


@pytest.fixture
def notes(store):
    store.create_domain("notes", dimension=3)
    return store


def test_round_trip(notes):
    s = notes
    assert s.create_domain("notes", dimension=3) == "memory_data.notes_memories"
    rid = s.store("the quick brown fox", domain="notes", metadata={"src": "a"}, embedding=[1, 0, 0])
    got = s.get(rid, domain="notes")
    assert got["id"] == rid and got["content"] == "the quick brown fox"
    assert got["metadata"] == {"src": "a"} and got["has_embedding"] is True
    assert set(got) == {"id", "content", "metadata", "has_embedding", "created_at", "updated_at"}

    ids = s.store_many(["lazy dog", "brown bread", "no vector"], domain="notes",
                       metadatas=[{"n": 1}, None, {"n": 3}],
                       embeddings=[[0, 1, 0], [0, 0, 1], None], ids=["d1", None, "d3"])
    assert ids[0] == "d1" and ids[2] == "d3" and len(ids[1]) == 36

    hits = s.search([1, 0.1, 0], domain="notes", k=2)
    assert [h["id"] for h in hits] == [rid, "d1"]
    assert set(hits[0]) == {"id", "content", "metadata", "similarity", "distance", "created_at",
                            "updated_at"}
    assert hits[0]["similarity"] > hits[1]["similarity"]
    assert math.isclose(hits[0]["similarity"], 1 - hits[0]["distance"])
    assert s.search([1, 0, 0], domain="notes", k=5, filter={"n": 1})[0]["id"] == "d1"
    assert s.search([1, 0, 0], domain="notes", k=5, min_similarity=0.99)[0]["id"] == rid
    assert len(s.search([1, 0, 0], domain="notes", k=5, min_similarity=0.99)) == 1

    text = s.search_text("brown", domain="notes")
    assert {h["id"] for h in text} == {rid, ids[1]} and "rank" in text[0]
    assert s.search_text("", domain="notes") == []
    hybrid = s.search_hybrid("bread", [0, 0, 1], domain="notes", k=1)
    assert hybrid[0]["id"] == ids[1] and {"score", "similarity", "text_rank"} <= set(hybrid[0])
    assert s.search_hybrid("bread", None, domain="notes", k=1)[0]["id"] == ids[1]

    assert s.update(rid, domain="notes", content="a slow red fox") is True
    assert s.get(rid, domain="notes")["has_embedding"] is False
    assert s.update(rid, domain="notes", metadata={"new": True}, embedding=[1, 0, 0]) is True
    got = s.get(rid, domain="notes")
    assert got["metadata"] == {"new": True} and got["has_embedding"] is True
    assert s.update("missing", domain="notes", content="x") is False

    assert s.forget("d3", domain="notes") is True
    assert s.forget("d3", domain="notes") is False
    assert s.get("d3", domain="notes") is None

    domains = s.domains()
    assert [(d["domain"], d["dimension"], d["distance"], d["rows"]) for d in domains] == [
        ("notes", 3, "cosine", 3)]
    assert s.create_hnsw_index("notes", m=8, ef_construction=32) == "notes_memories_hnsw"
    s.drop_domain("notes")
    assert s.domains() == []


def test_default_domain(store, monkeypatch):
    monkeypatch.setenv("DEFAULT_MEMORY_DOMAIN", "work")
    assert config.default_domain() == "work"
    s = MemoryStore(store.conn, embedder=None)
    assert s.default_domain == "work"
    s.create_domain(dimension=3)
    rid = s.store("in the default domain", embedding=[1, 2, 3])
    assert s.get(rid)["content"] == "in the default domain"
    assert [d["domain"] for d in s.domains()] == ["work"]


def test_store_memory_and_search_memories_without_embedder(notes):
    rid = notes.store_memory("remember the milk", domain="notes", source="chat", importance=0.5,
                             metadata={"tag": "x"})
    got = notes.get(rid, domain="notes")
    assert got["metadata"] == {"tag": "x", "source": "chat", "importance": 0.5}
    assert got["has_embedding"] is False
    hits = notes.search_memories("milk", domain="notes")
    assert [(h["id"], h["mode"]) for h in hits] == [(rid, "text")]
    for blank in ("", "  \n"):
        with pytest.raises(ValueError, match="query is empty"):
            notes.search_memories(blank, domain="notes")
        with pytest.raises(ValueError, match="content is empty"):
            notes.store_memory(blank, domain="notes")
    with pytest.raises(ValueError, match="importance"):
        notes.store_memory("x", domain="notes", importance=float("nan"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinite_components_are_refused(notes, bad):
    with pytest.raises(psycopg.errors.DataException) as err:
        notes.store("x", domain="notes", embedding=[bad, 0, 0])
    assert err.value.sqlstate == "22000"
    with pytest.raises(psycopg.errors.DataException):
        notes.search([0, bad, 0], domain="notes")
    with pytest.raises(psycopg.errors.DataException):
        notes.store_many(["x"], domain="notes", embeddings=[[0, 0, bad]])
    assert notes.domains()[0]["rows"] == 0


BAD_INPUT = [
    (lambda s: s.store("x", domain="nope"), "42704"),
    (lambda s: s.search([1, 0, 0], domain="nope"), "42704"),
    (lambda s: s.store("x", domain="notes", embedding=[1, 0]), "22000"),
    (lambda s: s.store_many(["x"], domain="notes", embeddings=[[1, 0]]), "22000"),
    (lambda s: s.update("i", domain="notes", embedding=[1, 0]), "22000"),
    (lambda s: s.search([1, 0], domain="notes"), "22000"),
    (lambda s: s.search([1, 0, 0], domain="notes", k=0), "22023"),
    (lambda s: s.search([1, 0, 0], domain="notes", k=10**6), "22023"),
    (lambda s: s.search([1, 0, 0], domain="notes", filter=[1]), "22023"),
    (lambda s: s.store("x", domain="notes", metadata=["not", "an", "object"]), "22023"),
    (lambda s: s.store_many(["x"], domain="notes", metadatas=["s"]), "22023"),
    (lambda s: s.update("i", domain="notes", metadata=[1]), "22023"),
    (lambda s: s.store_many(["x", "y"], domain="notes", ids=["a"]), "2202E"),
    (lambda s: s.store_many(["x", "y"], domain="notes", ids=["a", "a"]), "22023"),
    (lambda s: s.store_many(["x", None], domain="notes"), "22004"),
    (lambda s: s.create_domain("Bad Name", dimension=3), "42602"),
    (lambda s: s.create_domain("notes", dimension=4), "42710"),
    (lambda s: s.create_domain("other", dimension=3, distance="manhattan"), "22023"),
]


def test_bad_input_raises_with_its_sqlstate(notes):
    notes.store("keep", domain="notes", id="i", embedding=[1, 1, 1])
    for n, (call, sqlstate) in enumerate(BAD_INPUT):
        with pytest.raises(psycopg.Error) as err:
            call(notes)
        assert err.value.sqlstate == sqlstate, (n, err.value)
        assert err.value.diag.message_primary  # a message naming the problem
        rows = notes.domains()
        assert [(d["domain"], d["rows"]) for d in rows] == [("notes", 1)], (n, "nothing written")


def test_create_hnsw_index_notices_what_it_drops(notes):
    notices = []
    notes.conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    notes.conn.execute("CREATE INDEX planted_ivf ON memory_data.notes_memories"
                       " USING ivfflat (embedding vector_cosine_ops) WITH (lists = 1)")
    notes.conn.execute("CREATE INDEX planted_hnsw ON memory_data.notes_memories"
                       " USING hnsw (embedding vector_l2_ops)")
    notices.clear()
    assert notes.create_hnsw_index("notes") == "notes_memories_hnsw"
    assert any("dropping competing vector index memory_data.planted_ivf (ivfflat" in n for n in notices)
    assert any("dropping competing vector index memory_data.planted_hnsw (hnsw vector_l2_ops" in n
               for n in notices)
    notices.clear()
    assert notes.create_hnsw_index("notes") == "notes_memories_hnsw"
    assert notices == [], "idempotent: nothing dropped the second time"
    rows = notes.conn.execute(
        "SELECT count(*) AS n FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
        " JOIN pg_am AS am ON am.oid = c.relam WHERE i.indrelid = 'memory_data.notes_memories'::regclass"
        " AND am.amname IN ('hnsw', 'ivfflat')").fetchone()
    assert rows["n"] == 1


def test_search_leaves_session_settings_alone(notes):
    conn = notes.conn
    notes.store_many([f"r{i}" for i in range(50)], domain="notes",
                     embeddings=[[1, i, 0] for i in range(50)])
    with conn.transaction():
        before = conn.execute("SELECT current_setting('hnsw.ef_search') AS ef,"
                              " current_setting('hnsw.iterative_scan') AS it").fetchone()
        assert len(notes.search([1, 0, 0], domain="notes", k=45, filter={})) == 45
        after = conn.execute("SELECT current_setting('hnsw.ef_search') AS ef,"
                             " current_setting('hnsw.iterative_scan') AS it").fetchone()
    assert before == after == {"ef": "40", "it": "off"}


# -- DSN resolution ------------------------------------------------------------------------------
ENV = ("DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
       "POSTGRES_PASSWORD")


@pytest.fixture
def clean_env(monkeypatch):
    for k in ENV:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_dsn_argument_wins(clean_env):
    clean_env.setenv("DATABASE_URL", "postgresql://env/db")
    clean_env.setenv("POSTGRES_HOST", "pghost")
    assert config.configured_dsn("postgresql://arg/db") == "postgresql://arg/db"


def test_dsn_database_url_before_postgres_vars(clean_env):
    clean_env.setenv("DATABASE_URL", "postgresql://env/db")
    clean_env.setenv("POSTGRES_HOST", "pghost")
    assert config.configured_dsn() == "postgresql://env/db"


def test_dsn_from_postgres_vars(clean_env):
    clean_env.setenv("POSTGRES_HOST", "pghost")
    clean_env.setenv("POSTGRES_PORT", "6543")
    clean_env.setenv("POSTGRES_DB", "memories")
    clean_env.setenv("POSTGRES_USER", "app")
    clean_env.setenv("POSTGRES_PASSWORD", "it's s\\ecret")
    dsn = config.configured_dsn()
    assert psycopg.conninfo.conninfo_to_dict(dsn) == {
        "host": "pghost", "port": "6543", "dbname": "memories", "user": "app",
        "password": "it's s\\ecret"}
    assert "s\\ecret" not in config.redact(dsn) and "***" in config.redact(dsn)


def test_dsn_postgres_vars_connect(clean_env, dsn):
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    clean_env.setenv("POSTGRES_HOST", info["host"])
    clean_env.setenv("POSTGRES_PORT", str(info["port"]))
    clean_env.setenv("POSTGRES_DB", info["dbname"])
    clean_env.setenv("POSTGRES_USER", "postgres")
    with MemoryStore.connect(embedder=None) as s:
        assert s.version()["schema_version"]


def test_no_dsn_means_the_embedded_default(clean_env):
    assert config.configured_dsn() is None
    assert config.configured_dsn("") is None


def test_redact_url_password():
    assert config.redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
