"""A stale vector is never served, whichever ids an UPDATE moves (sql/43_wire.sql, the unstale
and enqueue triggers).

The statement triggers see the rows an UPDATE changed as two transition tables, old and new,
with nothing that pairs a new row with the old one it was: pairing them by id (as the triggers
did) kept the old content's vector on a row whose id and content one statement changed
(`SET id = 'b', content = 'new text'`), with no job: stale forever. The rule now: a new row's
embedding is stale when some old row of the statement had it and none had it with the new row's
content. An embedding no old row had (the worker's, or one the application wrote) is kept; so
is one that moved with its content (ids swapped or shifted alone). A renamed row that needs an
embedding gets a job under its new id; the job of an id that is gone after the statement goes.
Each test here failed before the rule, except those marked as guards (they passed, and must
still).
"""

from __future__ import annotations

import time

import pytest

from helpers import one
from test_queue_concurrency import (  # noqa: F401
    Session, finished_or_waiting, sessions, wait_until, waiting)


def rows(conn, table: str = "memory_data.s_memories", content: str = "content",
         embedding: str = "embedding", model: str | None = "embedding_model") -> dict:
    """id -> (content, embedding as text or None, model or None)."""
    return {r["id"]: (r["content"], r["embedding"], r["model"]) for r in conn.execute(
        f"SELECT id::text AS id, {content} AS content, {embedding}::text AS embedding, "
        f"{model or 'NULL::text'} AS model FROM {table}").fetchall()}



def jobs(conn, domain: str = "s") -> set[str]:
    return {r["row_id"] for r in conn.execute(
        "SELECT row_id FROM memory_private.embedding_queue WHERE domain = %s", (domain,))}


def factory(conn, *stored: tuple[str, str, str | None]) -> None:
    """Domain s (3 dimensions, model m) holding (id, content, embedding) rows."""
    conn.execute("SELECT memory.create_domain('s', 3, embedding_model => 'm')")
    for rid, content, emb in stored:
        conn.execute("SELECT memory.store('s', %s, embedding => %s::vector, id => %s)",
                     (content, emb, rid))


SWAPPABLE = "public.sw"


def swappable(conn, *stored: tuple[str, str, str | None]) -> None:
    """Domain s on an adopted table whose key is checked at the end of each statement (DEFERRABLE:
    with an immediate key, as a factory table's, ids cannot be swapped in one statement)."""
    conn.execute(f"CREATE TABLE {SWAPPABLE} (id text PRIMARY KEY DEFERRABLE, "
                 "content text NOT NULL, embedding vector(3), embedding_model text)")
    for rid, content, emb in stored:
        conn.execute(f"INSERT INTO {SWAPPABLE} VALUES (%s, %s, %s::vector, "
                     "CASE WHEN %s::vector IS NOT NULL THEN 'm' END)", (rid, content, emb, emb))
    conn.execute(f"SELECT memory.adopt_table('s', '{SWAPPABLE}', 'id', 'content', 'embedding')")


# --- renamed rows ---------------------------------------------------------------------------


def test_a_row_renamed_with_new_content_loses_its_vector_and_is_queued(conn) -> None:
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute("UPDATE memory_data.s_memories SET id = 'c', content = 'gamma' WHERE id = 'a'")
    assert rows(conn) == {"b": ("beta", "[0,1,0]", "m"), "c": ("gamma", None, None)}, \
        "the vector of 'alpha' must not be served for 'gamma'"
    assert jobs(conn) == {"c"}


def test_a_row_renamed_alone_keeps_its_vector(conn) -> None:
    """Guard: the vector moves with its content."""
    factory(conn, ("a", "alpha", "[1,0,0]"))
    conn.execute("UPDATE memory_data.s_memories SET id = 'c' WHERE id = 'a'")
    assert rows(conn) == {"c": ("alpha", "[1,0,0]", "m")}
    assert jobs(conn) == set()


def test_a_renamed_row_without_embedding_gets_a_job_and_its_old_id_loses_its(conn) -> None:
    factory(conn, ("a", "alpha", None), ("b", "beta", None))
    assert jobs(conn) == {"a", "b"}
    conn.execute("UPDATE memory_data.s_memories SET id = 'c' WHERE id = 'a'")
    assert jobs(conn) == {"b", "c"}
    # a claimed job goes back to pending under the new id; the claim in flight writes nothing
    claimed = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w')").fetchall()
    assert {c["row_id"] for c in claimed} == {"b", "c"}
    conn.execute("UPDATE memory_data.s_memories SET id = 'd' WHERE id = 'c'")
    assert one(conn, "SELECT status FROM memory_private.embedding_queue "
                     "WHERE row_id = 'd'") == "pending"
    assert jobs(conn) == {"b", "d"}
    c_job = next(c["job_id"] for c in claimed if c["row_id"] == "c")
    assert one(conn, "SELECT memory.complete_embedding_jobs(%s, ARRAY['[1,1,1]']::vector[])",
               ([c_job],)) == 0
    assert rows(conn)["d"] == ("alpha", None, None)


# --- ids swapped or shifted ------------------------------------------------------------------


SWAP = "CASE id WHEN 'a' THEN 'b' WHEN 'b' THEN 'a' END"


def test_ids_swapped_alone_keep_each_contents_vector(conn) -> None:
    """Guard: seen by id, both contents and both vectors changed; each content kept its own."""
    swappable(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute(f"UPDATE {SWAPPABLE} SET id = {SWAP} WHERE id IN ('a', 'b')")
    assert rows(conn, SWAPPABLE) == {"a": ("beta", "[0,1,0]", "m"), "b": ("alpha", "[1,0,0]", "m")}
    assert jobs(conn) == set()


def test_ids_and_contents_swapped_together_clear_both_vectors(conn) -> None:
    """Each id keeps its content, the vectors change places: seen by id, the content is
    unchanged (the id pairing kept both, each serving the other's vector)."""
    swappable(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute(f"UPDATE {SWAPPABLE} SET id = {SWAP}, "
                 "content = CASE content WHEN 'alpha' THEN 'beta' ELSE 'alpha' END "
                 "WHERE id IN ('a', 'b')")
    assert rows(conn, SWAPPABLE) == {"a": ("alpha", None, None), "b": ("beta", None, None)}
    assert jobs(conn) == {"a", "b"}


def test_ids_swapped_with_a_content_change_clear_that_vector(conn) -> None:
    """Seen by id, a's content and vector both changed (the id pairing read that as a new
    vector written with the new content)."""
    swappable(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute(f"UPDATE {SWAPPABLE} SET id = {SWAP}, "
                 "content = CASE id WHEN 'a' THEN 'alpha, edited' ELSE content END "
                 "WHERE id IN ('a', 'b')")
    assert rows(conn, SWAPPABLE) == {"a": ("beta", "[0,1,0]", "m"),
                                     "b": ("alpha, edited", None, None)}
    assert jobs(conn) == {"b"}


def test_ids_shifted_keep_or_clear_by_content(conn) -> None:
    swappable(conn, ("1", "one", "[1,0,0]"), ("2", "two", "[0,1,0]"), ("3", "three", "[0,0,1]"))
    # each row moves up one id, with its content: every vector stays with its content
    conn.execute(f"UPDATE {SWAPPABLE} SET id = (id::int + 1)::text")
    assert rows(conn, SWAPPABLE) == {"2": ("one", "[1,0,0]", "m"), "3": ("two", "[0,1,0]", "m"),
                          "4": ("three", "[0,0,1]", "m")}
    assert jobs(conn) == set()
    # each row moves down one id, the contents stay with the ids: every vector moves onto a
    # content it was not made for (seen by id, ids 2 and 3 kept their content)
    conn.execute(f"UPDATE {SWAPPABLE} SET id = (id::int - 1)::text, "
                 "content = CASE id WHEN '2' THEN 'zero' WHEN '3' THEN 'one' ELSE 'two' END")
    assert rows(conn, SWAPPABLE) == {"1": ("zero", None, None), "2": ("one", None, None),
                          "3": ("two", None, None)}
    assert jobs(conn) == {"1", "2", "3"}


def test_vectors_swapped_between_rows_are_cleared(conn) -> None:
    """An UPDATE that hands row a the vector row b had (same statement, contents unchanged):
    each vector now sits on a content it was not made for."""
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute("UPDATE memory_data.s_memories AS t SET embedding = s.embedding "
                 "FROM memory_data.s_memories AS s "
                 "WHERE (t.id, s.id) IN (('a', 'b'), ('b', 'a'))")
    assert rows(conn) == {"a": ("alpha", None, None), "b": ("beta", None, None)}
    assert jobs(conn) == {"a", "b"}


# --- what must not change ----------------------------------------------------------------------


def test_new_content_with_a_new_vector_is_kept(conn) -> None:
    """Guard: the application writes the content and its new vector in one statement."""
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute("UPDATE memory_data.s_memories SET content = 'gamma', embedding = '[0,0,1]' "
                 "WHERE id = 'a'")
    conn.execute("UPDATE memory_data.s_memories SET id = 'd', content = 'delta', "
                 "embedding = '[1,1,0]' WHERE id = 'b'")
    assert rows(conn) == {"a": ("gamma", "[0,0,1]", "m"), "d": ("delta", "[1,1,0]", "m")}
    assert jobs(conn) == set()


def test_metadata_updates_and_the_worker_keep_vectors(conn) -> None:
    """Guard: the common paths (a metadata-only update, the worker's completion)."""
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", None), ("c", "alpha", "[1,0,0]"))
    conn.execute("UPDATE memory_data.s_memories SET metadata = '{\"k\": 1}'")
    job = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'w')").fetchall()
    assert [j["row_id"] for j in job] == ["b"]
    # the worker writes the vector another row has (a duplicate content would): kept
    assert one(conn, "SELECT memory.complete_embedding_jobs(%s, ARRAY['[1,0,0]']::vector[])",
               ([job[0]["job_id"]],)) == 1
    assert rows(conn) == {"a": ("alpha", "[1,0,0]", "m"), "b": ("beta", "[1,0,0]", "m"),
                          "c": ("alpha", "[1,0,0]", "m")}
    assert jobs(conn) == set()


def test_the_write_functions_keep_their_rules(conn) -> None:
    """Guard: memory.update / store / store_many clear a changed content's vector in their own
    statement and keep a vector given with the content, or an unchanged content's."""
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"), ("c", "gamma", "[0,0,1]"))
    conn.execute("SELECT memory.update('s', 'a', content => 'alpha 2')")
    conn.execute("SELECT memory.update('s', 'b', content => 'beta 2', embedding => '[1,1,0]')")
    conn.execute("SELECT memory.store('s', 'gamma', id => 'c')")  # same content: kept
    conn.execute("SELECT * FROM memory.store_many('s', ARRAY['delta', 'gamma 2'], "
                 "ids => ARRAY['d', 'c'])")
    assert rows(conn) == {"a": ("alpha 2", None, None), "b": ("beta 2", "[1,1,0]", "m"),
                          "c": ("gamma 2", None, None), "d": ("delta", None, None)}
    assert jobs(conn) == {"a", "c", "d"}


# --- adopted, partitioned, upserts --------------------------------------------------------------


def test_an_adopted_table_renamed_by_the_application(conn) -> None:
    """bigint ids (the clearing UPDATE finds rows by the id's own type) and a model column."""
    conn.execute("CREATE TABLE public.notes (id bigint PRIMARY KEY, body text NOT NULL, "
                 "emb vector(3), embedding_model text)")
    conn.execute("INSERT INTO public.notes VALUES (1, 'alpha', '[1,0,0]', 'm'), "
                 "(2, 'beta', '[0,1,0]', 'm'), (3, 'gamma', NULL, NULL)")
    conn.execute("SELECT memory.adopt_table('notes', 'public.notes', 'id', 'body', 'emb')")
    assert jobs(conn, "notes") == {"3"}
    conn.execute("UPDATE public.notes SET id = id + 10, body = body || '!' WHERE id IN (1, 3)")
    conn.execute("UPDATE public.notes SET id = 20 WHERE id = 2")
    assert rows(conn, "public.notes", "body", "emb") == {
        "11": ("alpha!", None, None), "13": ("gamma!", None, None), "20": ("beta", "[0,1,0]", "m")}
    assert jobs(conn, "notes") == {"11", "13"}


def test_a_cross_partition_move_of_an_adopted_table(conn) -> None:
    """A range-partitioned table (by id): renaming a row moves it to another partition, a DELETE
    and an INSERT underneath; the parent's triggers see one UPDATE."""
    conn.execute("""
        CREATE TABLE public.events (id bigint PRIMARY KEY DEFERRABLE, body text NOT NULL,
            emb vector(3))
            PARTITION BY RANGE (id);
        CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES FROM (0) TO (100);
        CREATE TABLE public.events_2 PARTITION OF public.events FOR VALUES FROM (100) TO (1000);
        INSERT INTO public.events VALUES (1, 'alpha', '[1,0,0]'), (2, 'beta', '[0,1,0]'),
            (3, 'gamma', NULL);
    """)
    conn.execute("SELECT memory.adopt_table('events', 'public.events', 'id', 'body', 'emb')")
    conn.execute("UPDATE public.events SET id = id + 100, body = body || '!' WHERE id IN (1, 3)")
    conn.execute("UPDATE public.events SET id = 102 WHERE id = 2")
    assert rows(conn, "public.events", "body", "emb", None) == {
        "101": ("alpha!", None, None), "102": ("beta", "[0,1,0]", None),
        "103": ("gamma!", None, None)}
    assert jobs(conn, "events") == {"101", "103"}
    # written straight into a partition (its own triggers): the ids swapped, each keeping its
    # content, so beta's vector lands on alpha! (seen by id: alpha!'s vector was written)
    conn.execute("UPDATE public.events_2 SET id = CASE id WHEN 101 THEN 102 ELSE 101 END, "
                 "body = CASE body WHEN 'alpha!' THEN 'beta' ELSE 'alpha!' END "
                 "WHERE id IN (101, 102)")
    assert rows(conn, "public.events", "body", "emb", None) == {
        "101": ("alpha!", None, None), "102": ("beta", None, None), "103": ("gamma!", None, None)}
    assert jobs(conn, "events") == {"101", "102", "103"}


def test_insert_on_conflict_do_update_that_renames(conn) -> None:
    factory(conn, ("a", "alpha", "[1,0,0]"), ("b", "beta", "[0,1,0]"))
    conn.execute("INSERT INTO memory_data.s_memories (id, content) VALUES ('a', 'alpha 2') "
                 "ON CONFLICT (id) DO UPDATE SET id = 'z', content = excluded.content")
    conn.execute("INSERT INTO memory_data.s_memories (id, content) VALUES ('b', 'beta') "
                 "ON CONFLICT (id) DO UPDATE SET id = 'y', content = excluded.content")
    assert rows(conn) == {"z": ("alpha 2", None, None), "y": ("beta", "[0,1,0]", "m")}
    assert jobs(conn) == {"z"}


# --- at scale -----------------------------------------------------------------------------------


def test_bulk_renames_and_metadata_updates_stay_linear(conn) -> None:
    """20,000 rows, one statement each: metadata only, then every id renamed (half of them with
    new content). No quadratic plan: seconds (the bound is far below a quadratic join of 20,000
    rows of 64-d vectors), and the rule holds in the big statement. Many rows share a vector
    (duplicate contents): looked up once each, not pairwise."""
    conn.execute("SELECT memory.create_domain('bulk', 64)")
    conn.execute("SELECT memory.bulk_load_begin('bulk')")  # no vector index: the triggers' cost
    conn.execute("""
        INSERT INTO memory_data.bulk_memories (id, content, embedding)
        SELECT g::text, 'row ' || (g % 5000), (SELECT array_agg(((g % 5000) * 64 + k)::real)
            FROM generate_series(1, 64) AS k)::vector
        FROM generate_series(1, 20000) AS g""")
    conn.execute("UPDATE memory_data.bulk_memories SET metadata = '{}' WHERE id = '1'")
    conn.execute("SET statement_timeout = '60s'")
    try:
        t0 = time.monotonic()
        conn.execute("UPDATE memory_data.bulk_memories SET metadata = '{\"k\": 1}'")
        t1 = time.monotonic()
        conn.execute("UPDATE memory_data.bulk_memories SET id = 'r' || id, "
                     "content = CASE WHEN id::int % 2 = 0 THEN content || '!' ELSE content END")
        t2 = time.monotonic()
    finally:
        conn.execute("RESET statement_timeout")
    print(f"metadata-only {t1 - t0:.2f} s, renamed {t2 - t1:.2f} s")
    counts = conn.execute("SELECT count(*) FILTER (WHERE embedding IS NULL) AS cleared, "
                          "count(*) FILTER (WHERE id LIKE 'r%') AS renamed "
                          "FROM memory_data.bulk_memories").fetchone()
    assert counts == {"cleared": 10000, "renamed": 20000}
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue "
                     "WHERE domain = 'bulk' AND row_id LIKE 'r%'") == 10000


# --- the queue's lock order -----------------------------------------------------------------------


QUEUE_OPS = {
    "fail": "SELECT memory.fail_embedding_jobs(%(jobs)s, 'provider down') AS n",
    "release": "SELECT memory.release_claims(%(jobs)s) AS n",
    "complete with a bad vector": "SELECT memory.complete_embedding_jobs(%(jobs)s, "
                                  "ARRAY['[1,2]', '[0,1,0]']::vector[]) AS n",
    "run_maintenance": "SELECT memory.run_maintenance() AS r",
}


@pytest.mark.parametrize("op_name", list(QUEUE_OPS))
def test_a_renaming_writer_and_the_queue_do_not_deadlock(conn, sessions, op_name) -> None:
    """The enqueue trigger now also deletes the jobs of the ids a statement took away and queues
    renamed rows: still only jobs of rows the statement holds, after it holds them (the lock
    order table, rows, jobs). A writer renames b, then (once the queue's statement runs or waits)
    a, the opposite of the job order; the queue's statement works on both jobs."""
    factory(conn, ("a", "alpha", None), ("b", "beta", None))
    claimed = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', '1 microsecond')"
                           ).fetchall()
    ids = [c["job_id"] for c in sorted(claimed, key=lambda c: c["row_id"])]
    rename = ("UPDATE memory_data.s_memories SET id = id || '2', content = content || '!' "
              "WHERE id = %s RETURNING id")
    op, writer = sessions(), sessions()
    writer.run("BEGIN")
    writer.run(rename, ("b",))
    op.start(QUEUE_OPS[op_name], {"jobs": ids})
    wait_until(lambda: finished_or_waiting(conn, op), what="the queue's statement")
    writer.start(rename, ("a",))
    wait_until(lambda: finished_or_waiting(conn, writer), what="the writer")
    writer.end()
    op.join()
    errors = [s.error for s in (op, writer) if s.error is not None]
    assert not errors, f"a renaming writer and the queue deadlocked: {errors!r}"
    assert jobs(conn) == {"a2", "b2"}
    assert one(conn, "SELECT count(*) FROM memory_data.s_memories WHERE embedding IS NULL") == 2


def test_the_write_cost_benchmark_runs_tiny(tmp_path) -> None:
    """bench/stale_rename.py (BENCHMARKS.md, "Stale rule for renamed rows") cannot rot: its tiny
    run, the baseline's triggers against this checkout's; the baseline keeps the stale vectors."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import dsn_for

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "bench"))
    import stale_rename

    try:
        before = stale_rename.extract(stale_rename.BASELINE, tmp_path / "before")
    except subprocess.CalledProcessError:
        pytest.skip(f"git history without {stale_rename.BASELINE}")
    res = stale_rename.run(dsn_for("postgres"), {"before": before, "now": None},
                           rows=200, queued=20, updates=5, reps=1, say=lambda m: None)
    assert res["after_rename_with_new_content"] == {"before": {"stale_vectors_kept": 200},
                                                   "now": {"stale_vectors_kept": 0}}
    assert all(r["wall_ms"] > 0 for per in res["results"].values() for runs in per.values()
               for r in runs)
    assert "| ids renamed with new content, 200 rows |" in stale_rename.markdown(res)
