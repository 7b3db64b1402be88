"""An adopted domain's text index (memory_data.<domain>_text, migration 0024) under concurrent
writers, on separate connections with explicit steps (a backend is seen waiting on its lock
before the next step, never a sleep): no write is lost between adoption's fill and its
triggers, memory.sync_text_index never puts back an old tsvector over a newer write, and two
writers of one row leave the tsvector of the last. Plus the application writing with its own
role (no right on pgmemo's schemas): its writes reach the text index through the definer
trigger. (What the index holds and how search_text reads it: pgtap_tests/adopted_text.sql.)"""

from __future__ import annotations

import threading

import psycopg
from psycopg.rows import dict_row

from helpers import cli, one, wait_for_lock_wait


def _tx(dsn: str) -> psycopg.Connection:
    """A connection whose statements run in one transaction until commit()."""
    return psycopg.connect(dsn, row_factory=dict_row)


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _pid(c) -> int:
    return c.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]


def _found(conn, domain: str, query: str) -> list[str]:
    return sorted(r["id"] for r in conn.execute(
        "SELECT id FROM memory.search_text(%s, %s, 20)", (domain, query)).fetchall())


def _setup(conn) -> None:
    conn.execute("CREATE SCHEMA app")
    conn.execute("CREATE TABLE app.notes (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO app.notes SELECT g, 'note number ' || g FROM generate_series(1, 20) AS g")


def test_insert_during_adoption_is_indexed(conn, dsn):
    """Adoption (fill, then triggers) in one transaction; an application insert arrives while it
    runs, waits for adoption's lock, and lands after: its row is in the text index."""
    _setup(conn)
    adopter, writer = _tx(dsn), _tx(dsn)
    try:
        writer_pid = _pid(writer)
        adopter.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
        t, out = _in_thread(lambda: writer.execute(
            "INSERT INTO app.notes VALUES (99, 'a walrus arrives late')"))
        wait_for_lock_wait(conn, writer_pid)
        adopter.commit()
        t.join(30)
        assert "error" not in out, out
        writer.commit()
    finally:
        adopter.close()
        writer.close()
    assert _found(conn, "notes", "walrus") == ["99"]
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 21
    assert one(conn, "SELECT memory.sync_text_index('notes')") == 0


def test_sync_never_overwrites_a_newer_write(conn, dsn):
    """Both orders of memory.sync_text_index and an application update of the same row: the
    index ends with the update's content either way (sync holds the table's writers, or waits
    for the writer's commit, and reads the row as committed)."""
    _setup(conn)
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")

    # sync first: the update waits for it
    syncer, writer = _tx(dsn), _tx(dsn)
    try:
        writer_pid = _pid(writer)
        conn.execute("UPDATE memory_data.notes_text SET content_tsv = 'stale:1'::tsvector WHERE id = '1'")
        assert syncer.execute("SELECT memory.sync_text_index('notes') AS n").fetchone()["n"] == 1
        t, out = _in_thread(lambda: writer.execute("UPDATE app.notes SET body = 'an otter swims' WHERE id = 1"))
        wait_for_lock_wait(conn, writer_pid)
        syncer.commit()
        t.join(30)
        assert "error" not in out, out
        writer.commit()
    finally:
        syncer.close()
        writer.close()
    assert _found(conn, "notes", "otter") == ["1"]
    assert _found(conn, "notes", "stale") == []

    # the update first, uncommitted: sync waits for it, then sees it
    syncer, writer = _tx(dsn), _tx(dsn)
    try:
        syncer_pid = _pid(syncer)
        writer.execute("UPDATE app.notes SET body = 'a heron waits' WHERE id = 2")
        t, out = _in_thread(lambda: syncer.execute("SELECT memory.sync_text_index('notes') AS n").fetchone())
        wait_for_lock_wait(conn, syncer_pid)
        writer.commit()
        t.join(30)
        assert "error" not in out, out
        assert out["result"]["n"] == 0  # the writer's trigger had it right already
        syncer.commit()
    finally:
        syncer.close()
        writer.close()
    assert _found(conn, "notes", "heron") == ["2"]
    assert _found(conn, "notes", "number") == sorted(str(i) for i in range(3, 21))


def test_two_writers_of_one_row_leave_the_last(conn, dsn):
    """Two application updates of one row: the second waits for the first's row lock and then
    updates the committed version; the index holds the second's words only."""
    _setup(conn)
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
    first, second = _tx(dsn), _tx(dsn)
    try:
        second_pid = _pid(second)
        first.execute("UPDATE app.notes SET body = 'a lynx first' WHERE id = 5")
        t, out = _in_thread(lambda: second.execute(
            "UPDATE app.notes SET body = body || ' then a puma' WHERE id = 5"))
        wait_for_lock_wait(conn, second_pid)
        first.commit()
        t.join(30)
        assert "error" not in out, out
        second.commit()
    finally:
        first.close()
        second.close()
    assert _found(conn, "notes", "lynx") == ["5"]
    assert _found(conn, "notes", "puma") == ["5"]
    assert one(conn, "SELECT body FROM app.notes WHERE id = 5") == "a lynx first then a puma"
    assert one(conn, "SELECT memory.sync_text_index('notes')") == 0


def test_application_role_writes_reach_the_index(conn, dsn, roles):
    """The application writes its table with a role that has no right on pgmemo's schemas or its
    text index: the trigger (definer rights) keeps the index; the role still cannot touch it."""
    app_role, app_dsn = roles(None, prefix="app")
    _setup(conn)
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
    conn.execute(f'GRANT USAGE ON SCHEMA app TO "{app_role}"')
    conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO "{app_role}"')
    app = psycopg.connect(app_dsn, autocommit=True)
    try:
        app.execute("INSERT INTO app.notes VALUES (50, 'a gecko climbs')")
        app.execute("UPDATE app.notes SET body = 'a newt swims' WHERE id = 3")
        app.execute("DELETE FROM app.notes WHERE id = 4")
        try:
            app.execute("UPDATE memory_data.notes_text SET content_tsv = 'x:1'")
            raise AssertionError("the application role wrote pgmemo's text index")
        except psycopg.errors.InsufficientPrivilege:
            pass
    finally:
        app.close()
    assert _found(conn, "notes", "gecko") == ["50"]
    assert _found(conn, "notes", "newt") == ["3"]
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text WHERE id = '4'") == 0
    assert one(conn, "SELECT memory.sync_text_index('notes')") == 0


def _sizes(conn) -> dict[str, int | None]:
    return {r["id"]: r["content_bytes"] for r in conn.execute(
        "SELECT id, content_bytes FROM memory_data.notes_text").fetchall()}


def test_size_fill_never_overwrites_a_newer_write(conn, dsn):
    """A text index made by schema 0024 gets its rows' content sizes from run_maintenance
    (memory_private._text_sizes_fill), which reads the table without blocking its writers. Both
    orders against an application update of one row: the row ends with the update's size."""
    _setup(conn)
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
    # as made by 0024: no sizes
    conn.execute("ALTER TABLE memory_data.notes_text ALTER COLUMN content_bytes DROP NOT NULL")
    conn.execute("UPDATE memory_data.notes_text SET content_bytes = NULL")
    conn.execute("SELECT memory_private._search_static_refresh()")
    fill = ("SELECT memory_private._text_sizes_fill(d, %s) AS n FROM memory_private.domains AS d "
            "WHERE d.domain = 'notes'")

    # the update first, uncommitted: the fill waits for its row, then leaves it to the trigger
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        filler_pid = _pid(filler)
        writer.execute("UPDATE app.notes SET body = 'an otter swims far away' WHERE id = 1")
        t, out = _in_thread(lambda: filler.execute(fill, (100,)).fetchone())
        wait_for_lock_wait(conn, filler_pid)
        writer.commit()
        t.join(30)
        assert "error" not in out, out
        assert out["result"]["n"] == 19  # the other rows; the updated one had its size
        filler.commit()
    finally:
        filler.close()
        writer.close()
    assert _sizes(conn)["1"] == len("an otter swims far away")
    assert one(conn, "SELECT count(*) FROM app.notes AS n JOIN memory_data.notes_text AS x "
                     "ON x.id = n.id::text WHERE x.content_bytes = octet_length(n.body)") == 20
    assert one(conn, "SELECT memory_private._text_postings_table(d)::text FROM memory_private.domains "
                     "AS d WHERE d.domain = 'notes'") == "memory_data.notes_text", "complete: NOT NULL"

    # the fill first, uncommitted: the update's trigger waits for its row, then writes over it
    conn.execute("ALTER TABLE memory_data.notes_text ALTER COLUMN content_bytes DROP NOT NULL")
    conn.execute("UPDATE memory_data.notes_text SET content_bytes = NULL WHERE id IN ('2', '3')")
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        writer_pid = _pid(writer)
        assert filler.execute(fill, (2,)).fetchone()["n"] == 2
        t, out = _in_thread(lambda: writer.execute(
            "UPDATE app.notes SET body = 'a heron waits by the river' WHERE id = 2"))
        wait_for_lock_wait(conn, writer_pid)
        filler.commit()
        t.join(30)
        assert "error" not in out, out
        writer.commit()
    finally:
        filler.close()
        writer.close()
    assert _sizes(conn)["2"] == len("a heron waits by the river")
    assert _sizes(conn)["3"] == len("note number 3")
    assert one(conn, "SELECT (memory.run_maintenance() ->> 'text_sizes_filled')::int") == 0
    assert one(conn, "SELECT memory_private._text_postings_table(d)::text FROM memory_private.domains "
                     "AS d WHERE d.domain = 'notes'") == "memory_data.notes_text"
    assert _found(conn, "notes", "heron") == ["2"]


def _adopt_unfilled(conn) -> None:
    conn.execute("SELECT memory.drop_domain('notes') FROM memory.domains WHERE domain = 'notes'")
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb', "
                 "create_indexes => false)")
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 0


def test_batched_fill_never_loses_or_resurrects_a_row(conn, dsn):
    """Adopted without indexes, the text index is filled in batches (memory.fill_text_index)
    while the application writes. Each batch locks the rows it reads FOR KEY SHARE until it
    commits: a DELETE of one waits, and its trigger then removes the row just added (without the
    lock the deleted row would stay in the index for good); a DELETE first makes the batch skip
    it; a content UPDATE is not blocked, waits only for the added row, and its tsvector wins."""
    _setup(conn)

    # the batch first: a delete of one of its rows waits for it, then removes its index row
    _adopt_unfilled(conn)
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        writer_pid = _pid(writer)
        assert filler.execute("SELECT memory.fill_text_index('notes', 100) AS n").fetchone()["n"] == 20
        t, out = _in_thread(lambda: writer.execute("DELETE FROM app.notes WHERE id = 5"))
        wait_for_lock_wait(conn, writer_pid)
        filler.commit()
        t.join(30)
        assert "error" not in out, out
        writer.commit()
    finally:
        filler.close()
        writer.close()
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text WHERE id = '5'") == 0
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 19
    assert one(conn, "SELECT count(*) FROM memory_private.text_fills") == 0

    # the delete first, uncommitted: the batch waits for its row, then skips it
    _adopt_unfilled(conn)
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        filler_pid = _pid(filler)
        writer.execute("DELETE FROM app.notes WHERE id = 6")
        t, out = _in_thread(lambda: filler.execute(
            "SELECT memory.fill_text_index('notes', 100) AS n").fetchone())
        wait_for_lock_wait(conn, filler_pid)
        writer.commit()
        t.join(30)
        assert "error" not in out, out
        # (the rows the batch went through, the deleted one included: a batch that counted only
        # the rows it locked ended the fill early whenever one of a full batch was deleted)
        assert out["result"]["n"] == 19
        filler.commit()
    finally:
        filler.close()
        writer.close()
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text WHERE id = '6'") == 0
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 18

    # the batch first, a content update of one of its rows: not blocked by the row lock, its
    # trigger waits for the row the batch added, then writes its own tsvector
    _adopt_unfilled(conn)
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        writer_pid = _pid(writer)
        assert filler.execute("SELECT memory.fill_text_index('notes', 100) AS n").fetchone()["n"] == 18
        t, out = _in_thread(lambda: writer.execute(
            "UPDATE app.notes SET body = 'a kestrel hovers' WHERE id = 7"))
        wait_for_lock_wait(conn, writer_pid)
        filler.commit()
        t.join(30)
        assert "error" not in out, out
        writer.commit()
    finally:
        filler.close()
        writer.close()
    assert _found(conn, "notes", "kestrel") == ["7"]
    assert "7" not in _found(conn, "notes", "number")
    assert one(conn, "SELECT memory.sync_text_index('notes')") == 0, "nothing out of line"


def test_batched_fill_survives_an_id_moved_during_a_batch(conn, dsn):
    """An id UPDATE that commits while a batch waits for that row's lock: the lock reads the row
    at its new id, beyond the batch. The next batch starts where the batch's own ids ended, not
    at the moved id (stop 26's attack review: the keyset jumped to it, and every row in between
    was never indexed while the fill said it was done)."""
    _setup(conn)
    _adopt_unfilled(conn)
    filler, writer = _tx(dsn), _tx(dsn)
    try:
        filler_pid = _pid(filler)
        writer.execute("UPDATE app.notes SET id = 1000 WHERE id = 3")
        t, out = _in_thread(lambda: filler.execute(
            "SELECT memory.fill_text_index('notes', 5) AS n").fetchone())
        wait_for_lock_wait(conn, filler_pid)
        writer.commit()
        t.join(30)
        assert "error" not in out, out
        assert out["result"]["n"] == 5
        filler.commit()
    finally:
        filler.close()
        writer.close()
    assert one(conn, "SELECT last_id FROM memory_private.text_fills") == "5"
    while one(conn, "SELECT memory.fill_text_index('notes', 5)") == 5:
        pass
    assert one(conn, "SELECT count(*) FROM memory_private.text_fills") == 0
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 20
    assert sorted(_found(conn, "notes", "number"), key=int) == [
        str(i) for i in [1, 2] + list(range(4, 21)) + [1000]]
    assert one(conn, "SELECT memory.sync_text_index('notes')") == 0, "nothing out of line"


def test_a_write_then_a_sync_never_deadlocks_with_another_sync(conn, dsn):
    """sync_text_index takes the lock it compares the table under (SHARE ROW EXCLUSIVE) before the
    write check's ROW EXCLUSIVE: taking it after, an upgrade, made a sync waiting for a
    transaction that had written the domain and then synced deadlock with it (stop 26's attack
    review)."""
    _setup(conn)
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
    first, second = _tx(dsn), _tx(dsn)
    try:
        second_pid = _pid(second)
        first.execute("SELECT memory.store('notes', 'a heron', id => '21')")
        t, out = _in_thread(lambda: second.execute(
            "SELECT memory.sync_text_index('notes') AS n").fetchone())
        wait_for_lock_wait(conn, second_pid)
        assert first.execute("SELECT memory.sync_text_index('notes') AS n").fetchone()["n"] == 0
        first.commit()
        t.join(30)
        assert "error" not in out, out
        assert out["result"]["n"] == 0
        second.commit()
    finally:
        first.close()
        second.close()
    assert _found(conn, "notes", "heron") == ["21"]


def test_cli_adopt_concurrently_fills_the_text_index(conn, dsn):
    """`pgmemo adopt --concurrently`: indexes built without blocking writes, and the text index
    filled batch by batch to the end, with its progress printed."""
    _setup(conn)
    code, out = cli(dsn, "adopt", "notes", "--table", "app.notes", "--content-column", "body",
                    "--embedding-column", "emb", "--concurrently")
    assert code == 0, out
    assert "text index of notes: 20 rows" in out, out
    assert one(conn, "SELECT count(*) FROM memory_data.notes_text") == 20
    assert one(conn, "SELECT count(*) FROM memory_private.text_fills") == 0
    assert _found(conn, "notes", "number") == sorted(str(i) for i in range(1, 21))
    assert "20 rows queued for embedding" in out, "queued after the fill, in their own transaction"
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'notes'") == 20


def test_hybrid_finds_an_adopted_tables_rows_waiting_for_their_embedding(conn):
    """An adopted table (bigint ids) whose application inserts rows without a vector: the hybrid
    finds them by their words beside its vector rows (the general path, the queue's row ids as
    text); once they have vectors, its branch ranks them as the vector rows they are."""
    _setup(conn)
    conn.execute("UPDATE app.notes SET emb = ('[1,' || id || ',0]')::vector")
    conn.execute("SELECT memory.adopt_table('notes', 'app.notes', 'id', 'body', 'emb')")
    conn.execute("SELECT memory.refresh_text_stats('notes')")
    conn.execute("INSERT INTO app.notes (id, body) VALUES (1000, 'a walrus on the ice'), "
                 "(1001, 'nothing to see')")
    hits = conn.execute("SELECT id, similarity, text_rank FROM memory.search_hybrid("
                        "'notes', 'walrus', '[1,1,0]', 5)").fetchall()
    walrus = [h for h in hits if h["id"] == "1000"]
    assert walrus and walrus[0]["similarity"] is None and walrus[0]["text_rank"] > 0, hits
    assert "1001" not in {h["id"] for h in hits}
    conn.execute("UPDATE app.notes SET emb = '[1,1,0]' WHERE id IN (1000, 1001)")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'notes'") == 0
    hits = conn.execute("SELECT id, similarity, text_rank FROM memory.search_hybrid("
                        "'notes', 'walrus', '[1,1,0]', 5)").fetchall()
    assert hits[0]["id"] == "1000" and hits[0]["similarity"] is not None, hits
