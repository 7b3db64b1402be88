"""The embedding queue under hostile interleavings (writers, workers, leases, DDL; stop 36's review):
no deadlock between the queue's own statements (fail, requeue, release, a completion with a bad
vector, clear, run_maintenance's sweep) and a writer changing several rows, and nothing stale.

Every interleaving is driven step by step from separate connections: transactions held open at
chosen points, pg_locks polled until a session is seen waiting (no sleeps as synchronization).
Each test states the promise it checks; a failure is a defect of the queue.
"""

from __future__ import annotations

import psycopg
import pytest

from fake_provider import fake_vector
from helpers import one
from pgmemo.client import MemoryStore, as_vector
from test_queue_concurrency import (  # noqa: F401
    Session, finished_or_waiting, sessions, wait_until, waiting)

DIM = 8


def vec(text: str) -> str:
    return as_vector(fake_vector(text, DIM))



def jobs_in_heap_order(conn, domain: str) -> list[dict]:
    """The jobs of a domain in physical order (the order a scan of the queue locks them in)."""
    return conn.execute("SELECT job_id, row_id, status FROM memory_private.embedding_queue "
                        "WHERE domain = %s ORDER BY ctid", (domain,)).fetchall()


def writer_in_opposite_order(conn, sessions, domain: str, first_row: str, second_row: str,
                             op_sql: str, op_params=None) -> tuple[Session, Session]:
    """A writer transaction edits second_row, then (once op is seen waiting) first_row: the
    opposite of the order op locks their jobs in. Returns (op, writer) after both ended."""
    op, writer = sessions(), sessions()
    writer.run("BEGIN")
    writer.run("SELECT memory.update(%s, %s, content => %s)", (domain, second_row, "edited 2"))
    op.start(op_sql, op_params)
    wait_until(lambda: finished_or_waiting(conn, op), what="the operation to finish or wait")
    writer.start("SELECT memory.update(%s, %s, content => %s) AS ok",
                 (domain, first_row, "edited 1"))
    wait_until(lambda: finished_or_waiting(conn, writer), what="the writer to finish or wait")
    writer.end()
    op.join()
    return op, writer


def assert_no_deadlock(*sessions_: Session) -> None:
    errors = [s.error for s in sessions_ if s.error is not None]
    assert not errors, f"an interleaving of a writer and the queue deadlocked: {errors!r}"


# --- 1. Deadlocks: queue statements that lock jobs before rows, or rows out of id order ------


def test_fail_embedding_jobs_and_a_multi_row_writer_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """A worker fails its whole batch (provider down: worker.py fails every job of the batch)
    while an application transaction edits two of the batch's rows. _fail_each locks the jobs
    (claimed) without SKIP LOCKED and in its own order; the writer's trigger locks each job after
    its row: the writer holds b's job and waits for a's, the failure holds a's and waits for b's."""
    store.create_domain("fw", dimension=DIM)
    conn.execute("SELECT memory.store('fw', 'one', id => 'a')")
    conn.execute("SELECT memory.store('fw', 'two', id => 'b')")
    claimed = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'fw')"
                           ).fetchall()
    assert len(claimed) == 2
    order = jobs_in_heap_order(conn, "fw")
    ids = [j["job_id"] for j in order]
    first, second = order[0]["row_id"], order[1]["row_id"]
    op, writer = writer_in_opposite_order(
        conn, sessions, "fw", first, second,
        "SELECT memory.fail_embedding_jobs(%s, 'provider down') AS n", (ids,))
    assert_no_deadlock(op, writer)


def test_requeue_dead_and_a_multi_row_writer_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """requeue_dead updates every dead job (no SKIP LOCKED) in heap order while an application
    transaction edits two rows whose jobs are dead (a content change revives a dead job through
    the trigger): the writer holds one job and waits for the other, requeue_dead the reverse."""
    store.create_domain("rq", dimension=DIM)
    conn.execute("SET pgmemo.max_attempts = 1")
    conn.execute("SELECT memory.store('rq', 'one', id => 'a')")
    conn.execute("SELECT memory.store('rq', 'two', id => 'b')")
    ids = [r["job_id"] for r in conn.execute(
        "SELECT job_id FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'rq')").fetchall()]
    assert one(conn, "SELECT memory.fail_embedding_jobs(%s, 'bad row')", (ids,)) == 2
    order = jobs_in_heap_order(conn, "rq")
    assert [j["status"] for j in order] == ["dead", "dead"]
    op, writer = writer_in_opposite_order(
        conn, sessions, "rq", order[0]["row_id"], order[1]["row_id"],
        "SELECT memory.requeue_dead('rq') AS n")
    assert_no_deadlock(op, writer)


def test_release_claims_and_a_multi_row_writer_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """A worker shutting down gives its batch back (release_claims: no SKIP LOCKED) while an
    application transaction edits two of the batch's rows in the other order."""
    store.create_domain("rc", dimension=DIM)
    conn.execute("SELECT memory.store('rc', 'one', id => 'a')")
    conn.execute("SELECT memory.store('rc', 'two', id => 'b')")
    conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'rc')")
    order = jobs_in_heap_order(conn, "rc")
    ids = [j["job_id"] for j in order]
    op, writer = writer_in_opposite_order(
        conn, sessions, "rc", order[0]["row_id"], order[1]["row_id"],
        "SELECT memory.release_claims(%s) AS n", (ids,))
    assert_no_deadlock(op, writer)


def test_completion_with_a_bad_vector_and_a_multi_row_writer_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """A batch with one bad vector (wrong dimension: 'fails that job alone'): the completion
    first fails that job (locking it), then locks the rows of the good ones. That is job before
    row, the opposite of the documented order (table, rows, jobs) the writers' triggers keep:
    the writer holds row b and waits for a's job; the completion holds a's job and waits for b."""
    store.create_domain("bv", dimension=DIM)
    conn.execute("SELECT memory.store('bv', 'one', id => 'a')")
    conn.execute("SELECT memory.store('bv', 'two', id => 'b')")
    jobs = {j["row_id"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'bv')").fetchall()}
    bad = as_vector([0.5] * (DIM + 1))
    op, writer = writer_in_opposite_order(
        conn, sessions, "bv", "a", "b",
        "SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
        ([jobs["a"], jobs["b"]], [bad, vec("two")]))
    assert_no_deadlock(op, writer)


def test_clear_and_a_completion_do_not_deadlock(store: MemoryStore, conn, sessions) -> None:
    """The completion locks its rows in id order (the documented row order); memory.clear
    deletes every row with a plain DELETE, i.e. in physical order. Rows stored as b, then a:
    the completion holds a and waits for b, clear holds b and waits for a."""
    store.create_domain("cl", dimension=DIM)
    conn.execute("SELECT memory.store('cl', 'two', id => 'b')")   # physically first
    conn.execute("SELECT memory.store('cl', 'one', id => 'a')")
    jobs = {j["row_id"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'cl')").fetchall()}
    holder, worker, clearer = sessions(), sessions(), sessions()
    holder.run("BEGIN")
    holder.run("SELECT 1 FROM memory_data.cl_memories WHERE id = 'a' FOR UPDATE")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([jobs["a"], jobs["b"]], [vec("one"), vec("two")]))
    wait_until(lambda: waiting(conn, worker.pid), what="the completion to wait for row a")
    clearer.start("SELECT memory.clear('cl') AS n")
    wait_until(lambda: finished_or_waiting(conn, clearer), what="clear to finish or wait")
    holder.run("COMMIT")
    worker.join()
    clearer.join()
    assert_no_deadlock(worker, clearer)
    assert one(conn, "SELECT count(*) FROM memory_data.cl_memories") == 0
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_run_maintenance_and_a_multi_row_writer_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """run_maintenance first releases expired claims (and keeps those jobs locked until it
    commits), then sweeps rows without a job: its INSERT ... ON CONFLICT DO NOTHING waits for a
    writer that is queueing the same row (an uncommitted job the sweep cannot see). That writer
    then edits the row whose lease the sweep released: it waits for the job maintenance holds."""
    store.create_domain("mw", dimension=DIM)
    conn.execute("SELECT memory.store('mw', 'leased', id => 'x')")
    # A row the triggers never saw (loaded with triggers disabled): what the sweep is for.
    conn.execute("SET session_replication_role = replica")
    conn.execute("INSERT INTO memory_data.mw_memories (id, content) VALUES ('r', 'unseen')")
    conn.execute("SET session_replication_role = origin")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE row_id = 'r'") == 0
    # x is claimed by a worker that died: its lease is over, not yet released.
    claimed = conn.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'dead worker', "
                           "'1 microsecond', only_domain => 'mw')").fetchall()
    assert [c["row_id"] for c in claimed] == ["x"]
    # the writer edits r first (queueing it), then x, whose job maintenance released
    maint, writer = writer_in_opposite_order(conn, sessions, "mw", "x", "r",
                                             "SELECT memory.run_maintenance() AS r")
    assert_no_deadlock(maint, writer)


# --- 2. Stale vectors from writes that bypass memory.* ---------------------------------------


ADOPTED = """
CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL, embedding vector(8));
"""


def test_update_and_update_back_during_a_claim_writes_a_vector_of_the_current_text(
        store: MemoryStore, conn) -> None:
    store.create_domain("ub", dimension=DIM)
    conn.execute("SELECT memory.store('ub', 'X', id => 'r')")
    job = conn.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'w')").fetchone()
    conn.execute("SELECT memory.update('ub', 'r', content => 'Y')")
    conn.execute("SELECT memory.update('ub', 'r', content => 'X')")
    assert one(conn, "SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
               ([job["job_id"]], [vec("X")])) == 1
    assert one(conn, "SELECT embedding::text FROM memory_data.ub_memories") == \
        one(conn, "SELECT %s::vector::text", (vec("X"),))
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_delete_reinsert_and_upsert_during_claims_write_nothing_stale(
        store: MemoryStore, conn) -> None:
    store.create_domain("dr", dimension=DIM)
    conn.execute("SELECT memory.store_many('dr', ARRAY['old p', 'old q'], ids => ARRAY['p', 'q'])")
    jobs = {j["row_id"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(5, 'w')").fetchall()}
    conn.execute("SELECT memory.forget('dr', 'p')")
    conn.execute("SELECT memory.store('dr', 'new p', id => 'p')")
    conn.execute("SELECT * FROM memory.store_many('dr', ARRAY['new q'], ids => ARRAY['q'])")
    assert one(conn, "SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
               ([jobs["p"], jobs["q"]], [vec("old p"), vec("old q")])) == 0
    assert one(conn, "SELECT count(*) FROM memory_data.dr_memories WHERE embedding IS NOT NULL") == 0
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE status = 'pending'") == 2


def test_release_racing_a_slow_completer_and_a_second_worker(store: MemoryStore, conn,
                                                             sessions) -> None:
    """A's completion is held on the row; the sweep releases A's job and B claims it meanwhile:
    A writes the vector of the unchanged text, B's completion writes the same, nothing stale."""
    store.create_domain("sl", dimension=DIM)
    conn.execute("SET pgmemo.retry_base_seconds = 0")
    conn.execute("SELECT memory.store('sl', 'text', id => 'r')")
    job_a = conn.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'A', '1 microsecond')"
                         ).fetchone()
    holder, a, b = sessions(), sessions(), sessions()
    holder.run("BEGIN")
    holder.run("SELECT 1 FROM memory_data.sl_memories WHERE id = 'r' FOR UPDATE")
    a.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
            ([job_a["job_id"]], [vec("text")]))
    wait_until(lambda: waiting(conn, a.pid), what="A to wait on the row")
    b.run("SET pgmemo.retry_base_seconds = 0")
    wait_until(lambda: one(conn, "SELECT memory.release_expired_claims()") == 1, what="release")
    job_b = b.run("SELECT * FROM memory.claim_embedding_jobs(1, 'B')")
    holder.run("COMMIT")
    a.join()
    assert a.error is None
    if job_b:
        b.run("SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
              ([job_b[0]["job_id"]], [vec("text")]))
    assert one(conn, "SELECT embedding::text FROM memory_data.sl_memories") == \
        one(conn, "SELECT %s::vector::text", (vec("text"),))
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0
