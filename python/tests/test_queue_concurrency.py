"""The embedding queue under concurrency: interleavings driven step by step from separate
connections (row and table locks held by a third session, pg_locks polled until a session is
seen waiting), never by sleeping and hoping.

1. One lock order everywhere: a worker's completion and a writer's update, a claim and a
   drop_domain, never deadlock.
2. A completion carries its proof (the job id the claim handed out is renewed at every claim):
   one that lost its lease to a newer claim writes nothing.
3. Leases of batches in hand are extended by the worker; a job the lease sweep made dead stays
   dead until requeued.
4. A worker survives a domain dropped under it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from fake_provider import FakeProvider, fake_vector
from helpers import one
from pgmemo.client import MemoryStore, as_vector, connect_raw
from pgmemo.worker import Worker

DIM = 8


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Session:
    """A connection whose statements may run in the background, one at a time."""

    def __init__(self, dsn: str) -> None:
        self.conn = connect_raw(dsn)
        self.conn.execute("SET deadlock_timeout = '50ms'")
        self.pid = one(self.conn, "SELECT pg_backend_pid()")
        self._thread: threading.Thread | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql, params).fetchall() if sql.lstrip().upper().startswith(
            ("SELECT", "WITH")) else self.conn.execute(sql, params)

    def start(self, sql: str, params: Any = None) -> None:
        """Run sql in the background (results in .result / .error after join())."""
        def target() -> None:
            try:
                self.result = self.conn.execute(sql, params).fetchall()
            except BaseException as exc:  # noqa: BLE001 - checked by the test
                self.error = exc
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 30.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "statement did not finish"

    def end(self) -> None:
        """join(), then end the transaction: COMMIT when the statement succeeded, else roll back."""
        self.join()
        if self.error is None:
            self.run("COMMIT")
        else:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def waiting(observer: psycopg.Connection, pid: int) -> bool:
    """Whether backend pid is blocked on a lock (a heavyweight lock not granted)."""
    return bool(one(observer, "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks "
                              "WHERE pid = %s AND NOT granted)", (pid,)))


def finished_or_waiting(conn, s: Session,
                        blocked: Callable[[psycopg.Connection, int], bool] = waiting) -> bool:
    """Whether s's background statement has ended, or is blocked (blocked(conn, pid))."""
    return s._thread is not None and (not s._thread.is_alive() or blocked(conn, s.pid))


@pytest.fixture
def sessions(dsn):
    opened: list[Session] = []

    def make() -> Session:
        s = Session(dsn)
        opened.append(s)
        return s
    yield make
    for s in opened:
        s.close()


def vec(text: str) -> str:
    return as_vector(fake_vector(text, DIM))


def test_complete_and_update_take_locks_in_one_order(store: MemoryStore, conn, sessions) -> None:
    """Worker completes rows r1, r2 while a writer updates r2: on the old order (job, then row)
    the worker held r2's job and waited for r2 while the writer held r2 and waited for its job."""
    store.create_domain("lk", dimension=DIM)
    conn.execute("SELECT memory.store('lk', 'one', id => 'r1')")
    conn.execute("SELECT memory.store('lk', 'two', id => 'r2')")
    jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'lk') "
                        "ORDER BY row_id").fetchall()
    assert [j["row_id"] for j in jobs] == ["r1", "r2"]
    holder, worker, writer = sessions(), sessions(), sessions()
    holder.run("BEGIN")
    holder.run("SELECT 1 FROM memory_data.lk_memories WHERE id = 'r1' FOR UPDATE")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([j["job_id"] for j in jobs], [vec("one"), vec("two")]))
    wait_until(lambda: waiting(conn, worker.pid), what="the completion to wait for r1")
    writer.start("SELECT memory.update('lk', 'r2', content => 'two, changed') AS ok")
    # The writer either finishes (new order) or waits for the job the worker holds (old order).
    wait_until(lambda: writer._thread is not None and (not writer._thread.is_alive()
                                                       or waiting(conn, writer.pid)),
               what="the writer to finish or wait")
    holder.run("COMMIT")
    worker.join()
    writer.join()
    assert worker.error is None, f"completion failed: {worker.error!r}"
    assert writer.error is None, f"update failed: {writer.error!r}"
    rows = {r["id"]: r for r in conn.execute(
        "SELECT id, content, embedding::text AS e FROM memory_data.lk_memories").fetchall()}
    assert rows["r1"]["e"] is not None
    assert rows["r2"]["content"] == "two, changed" and rows["r2"]["e"] is None, \
        "the vector of the old text was written over the new text"
    job = conn.execute("SELECT status FROM memory_private.embedding_queue "
                       "WHERE domain = 'lk' AND row_id = 'r2'").fetchone()
    assert job is not None and job["status"] == "pending", "the changed row is queued again"


def test_completion_and_a_transaction_editing_several_rows_do_not_deadlock(
        store: MemoryStore, conn, sessions) -> None:
    """Found by the chaos run: a completion whose row 'a' changed since the claim writes 'b',
    then puts a's job back to pending; meanwhile one transaction edits a (holding a's job) and
    then b (held by the completion). The completion used to wait for a's job: deadlock."""
    store.create_domain("ml", dimension=DIM)
    conn.execute("SELECT memory.store('ml', 'one', id => 'a')")
    conn.execute("SELECT memory.store('ml', 'two', id => 'b')")
    jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'ml') "
                        "ORDER BY row_id").fetchall()
    assert [j["row_id"] for j in jobs] == ["a", "b"]
    conn.execute("SELECT memory.update('ml', 'a', content => 'one, edited')")  # in flight
    worker, writer = sessions(), sessions()
    writer.run("BEGIN")
    writer.run("SELECT memory.update('ml', 'a', content => 'one, edited again')")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([j["job_id"] for j in jobs], [vec("one"), vec("two")]))
    # The completion either finishes (new) or waits for a's job, held by the writer (old).
    wait_until(lambda: worker._thread is not None and (not worker._thread.is_alive()
                                                       or waiting(conn, worker.pid)),
               what="the completion to finish or wait")
    writer.start("SELECT memory.update('ml', 'b', content => 'two, edited') AS ok")
    wait_until(lambda: writer._thread is not None and (not writer._thread.is_alive()
                                                       or waiting(conn, writer.pid)),
               what="the writer to finish or wait")
    worker.join()
    writer.join()
    assert worker.error is None, f"completion failed: {worker.error!r}"
    assert writer.error is None, f"update failed: {writer.error!r}"
    writer.run("COMMIT")
    assert worker.result[0]["n"] == 1, "b was written"
    rows = {r["id"]: r for r in conn.execute(
        "SELECT id, content, embedding FROM memory_data.ml_memories").fetchall()}
    assert rows["a"]["content"] == "one, edited again" and rows["a"]["embedding"] is None
    assert rows["b"]["content"] == "two, edited" and rows["b"]["embedding"] is None
    assert [tuple(r.values()) for r in conn.execute(
        "SELECT row_id, status FROM memory_private.embedding_queue ORDER BY row_id")] == [
        ("a", "pending"), ("b", "pending")], "both edited rows wait for a worker, none stuck claimed"


def test_drop_domain_and_claim_take_locks_in_one_order(store: MemoryStore, conn, sessions) -> None:
    """A claim across two domains while one of them is dropped: the old claim locked the jobs
    of both, then read the tables; drop_domain held its table and waited for its jobs."""
    store.create_domain("ya", dimension=DIM)
    store.create_domain("xb", dimension=DIM)
    conn.execute("SELECT memory.store('ya', 'first', id => 'y1')")
    conn.execute("SELECT memory.store('xb', 'second', id => 'x1')")
    holder, claimer, dropper = sessions(), sessions(), sessions()
    holder.run("BEGIN")
    holder.run("LOCK TABLE memory_data.ya_memories IN ACCESS EXCLUSIVE MODE")
    claimer.start("SELECT * FROM memory.claim_embedding_jobs(10, 'w')")
    wait_until(lambda: waiting(conn, claimer.pid), what="the claim to wait for ya's table")
    dropper.start("SELECT memory.drop_domain('xb')")
    wait_until(lambda: dropper._thread is not None and (not dropper._thread.is_alive()
                                                        or waiting(conn, dropper.pid)),
               what="drop_domain to finish or wait")
    holder.run("COMMIT")
    claimer.join()
    dropper.join()
    assert claimer.error is None, f"claim failed: {claimer.error!r}"
    assert dropper.error is None, f"drop_domain failed: {dropper.error!r}"
    assert [r["row_id"] for r in claimer.result] == ["y1"]
    assert one(conn, "SELECT count(*) FROM memory_private.domains WHERE domain = 'xb'") == 0


def test_completion_after_a_newer_claim_writes_nothing(store: MemoryStore, conn, sessions) -> None:
    """Worker A claims, stalls past its lease; the content changes; worker B claims the new
    content. A's late completion must not write A's vector (of the old text)."""
    store.create_domain("st", dimension=DIM)
    conn.execute("SET pgmemo.retry_base_seconds = 0")
    conn.execute("SELECT memory.store('st', 'old text', id => 'r')")
    a, b = sessions(), sessions()
    job_a = a.run("SELECT * FROM memory.claim_embedding_jobs(1, 'A', '1 microsecond')")[0]
    assert job_a["content"] == "old text"
    wait_until(lambda: one(conn, "SELECT memory.release_expired_claims()") == 1,
               what="A's lease to be released")
    conn.execute("SELECT memory.update('st', 'r', content => 'new text')")
    b.run("SET pgmemo.retry_base_seconds = 0")
    job_b = b.run("SELECT * FROM memory.claim_embedding_jobs(1, 'B')")[0]
    assert job_b["content"] == "new text"
    n_a = a.run("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                ([job_a["job_id"]], [vec("old text")]))[0]["n"]
    n_b = b.run("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                ([job_b["job_id"]], [vec("new text")]))[0]["n"]
    assert (n_a, n_b) == (0, 1), "the completion of the older claim must lose"
    assert one(conn, "SELECT embedding::text FROM memory_data.st_memories WHERE id = 'r'") \
        == one(conn, "SELECT %s::vector::text", (vec("new text"),))
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_late_completion_leaves_a_dead_job_dead(store: MemoryStore, conn, sessions) -> None:
    """A job the lease sweep made dead is not set back to pending by its worker's late
    completion (it cycled forever); the job stays dead until requeue_dead."""
    store.create_domain("dd", dimension=DIM)
    conn.execute("SET pgmemo.max_attempts = 1")
    conn.execute("SELECT memory.store('dd', 'text', id => 'r')")
    a = sessions()
    job = a.run("SELECT * FROM memory.claim_embedding_jobs(1, 'A', '1 microsecond')")[0]
    wait_until(lambda: one(conn, "SELECT memory.release_expired_claims()") == 1,
               what="the lease to be released")
    assert one(conn, "SELECT status FROM memory_private.embedding_queue") == "dead"
    conn.execute("SELECT memory.update('dd', 'r', metadata => '{\"k\": 1}')")
    assert one(conn, "SELECT status FROM memory_private.embedding_queue") == "dead", \
        "a metadata change does not revive a dead job"
    # The late completion of the first claim, for content that changed since: nothing written,
    # and the dead job is not revived.
    conn.execute("SELECT memory.update('dd', 'r', content => 'other text')")
    conn.execute("UPDATE memory_private.embedding_queue SET status = 'dead'")  # as if it died again
    n = a.run("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
              ([job["job_id"]], [vec("text")]))[0]["n"]
    assert n == 0
    assert one(conn, "SELECT status FROM memory_private.embedding_queue") == "dead"
    a.run("SELECT memory.fail_embedding_jobs(%s, 'late failure') AS n", ([job["job_id"]],))
    assert one(conn, "SELECT status FROM memory_private.embedding_queue") == "dead"
    assert one(conn, "SELECT count(*) FROM memory.claim_embedding_jobs(5, 'B')") == 0
    assert one(conn, "SELECT memory.requeue_dead('dd')") == 1
    assert one(conn, "SELECT count(*) FROM memory.claim_embedding_jobs(5, 'B')") == 1


def test_worker_extends_the_lease_of_a_batch_in_hand(store: MemoryStore, conn, dsn,
                                                      provider: FakeProvider) -> None:
    """A provider call longer than the lease: the worker's heartbeat keeps the lease ahead, so
    the sweep releases nothing and the one provider call is written (it was thrown away and
    retried forever)."""
    store.create_domain("hb", dimension=DIM)
    conn.execute("SELECT memory.store_many('hb', ARRAY['slow one', 'slow two'])")
    provider.hold = "slow"
    w = Worker(dsn, provider.embedder(), batch_size=10, lease=1.0, poll=0.1, maintenance_every=0)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert provider.held.wait(20), "the provider was not called"
        first = one(conn, "SELECT max(lease_until) FROM memory_private.embedding_queue")
        # The lease moves forward while the provider holds the request, and nothing expires.
        wait_until(lambda: one(conn, "SELECT min(lease_until) FROM memory_private.embedding_queue")
                   > first, what="the lease to be extended")
        second = one(conn, "SELECT min(lease_until) FROM memory_private.embedding_queue")
        wait_until(lambda: one(conn, "SELECT min(lease_until) FROM memory_private.embedding_queue")
                   > second, what="the lease to be extended again")
        wait_until(lambda: one(conn, "SELECT now() > %s::timestamptz", (first,)),
                   what="the first lease to be over")
        assert one(conn, "SELECT memory.release_expired_claims()") == 0
        provider.release()
        wait_until(lambda: one(conn, "SELECT count(*) FROM memory_data.hb_memories "
                                     "WHERE embedding IS NULL") == 0, what="rows embedded")
    finally:
        provider.release()
        w.stop()
        t.join(30)
    assert provider.requests == 1, "one provider call, not thrown away"
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_run_maintenance_survives_a_domain_dropped_meanwhile(store: MemoryStore, conn,
                                                             sessions) -> None:
    """run_maintenance read the registry, then the domain was dropped before it reached the
    table: it raised 42P01 (and `pgmemo worker` exited)."""
    store.create_domain("gone", dimension=DIM)
    store.create_domain("kept", dimension=DIM)
    conn.execute("SELECT memory.store('kept', 'x', id => 'k')")
    dropper, maint = sessions(), sessions()
    dropper.run("BEGIN")
    dropper.run("SELECT memory.drop_domain('gone')")
    maint.start("SELECT memory.run_maintenance() AS r")
    wait_until(lambda: waiting(conn, maint.pid), what="maintenance to wait for the dropped table")
    dropper.run("COMMIT")
    maint.join()
    assert maint.error is None, f"run_maintenance failed: {maint.error!r}"


def test_worker_survives_a_domain_whose_table_vanished(store: MemoryStore, conn, dsn,
                                                       provider: FakeProvider, caplog) -> None:
    """A domain's table dropped under a running worker (registry row left behind): maintenance
    and claims meet 42P01; the worker logs it and keeps embedding the other domains."""
    store.create_domain("van", dimension=DIM)
    store.create_domain("ok", dimension=DIM)
    conn.execute("SELECT memory.store('van', 'lost', id => 'v')")
    caplog.set_level("INFO", logger="pgmemo.worker")
    w = Worker(dsn, provider.embedder(), batch_size=10, poll=0.1, maintenance_every=0.2)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: one(conn, "SELECT count(*) FROM memory_data.van_memories "
                                     "WHERE embedding IS NOT NULL") == 1, what="first row embedded")
        conn.execute("DROP TABLE memory_data.van_memories")
        conn.execute("INSERT INTO memory_private.embedding_queue (domain, row_id) "
                     "VALUES ('van', 'v2')")
        wait_until(lambda: any("van" in r.getMessage() + str(getattr(r, "errors", ""))
                               for r in caplog.records if r.levelname == "WARNING"),
                   what="the worker to report the missing table")
        conn.execute("SELECT memory.store('ok', 'still served', id => 'o')")
        wait_until(lambda: one(conn, "SELECT count(*) FROM memory_data.ok_memories "
                                     "WHERE embedding IS NOT NULL") == 1, what="other domain embedded")
        assert t.is_alive(), "the worker exited"
    finally:
        w.stop()
        t.join(30)


def test_lease_extension_never_waits_for_a_completion(store: MemoryStore, conn, sessions) -> None:
    """extend_claims (the worker's control thread) and complete (its embedding thread) on the
    same jobs: the extension locked jobs in another order than the completion and deadlocked
    (found by bench/embedq.py's chaos run). A job being completed is skipped, not waited for."""
    store.create_domain("ex", dimension=DIM)
    conn.execute("SELECT memory.store_many('ex', ARRAY['a', 'b'])")
    ids = [r["job_id"] for r in conn.execute(
        "SELECT job_id FROM memory.claim_embedding_jobs(5, 'w') ORDER BY job_id").fetchall()]
    completing, control = sessions(), sessions()
    completing.run("BEGIN")
    completing.run("SELECT 1 FROM memory_private.embedding_queue WHERE job_id = %s FOR UPDATE",
                   (ids[1],))
    control.run("SET lock_timeout = '5s'")
    assert control.run("SELECT memory.extend_claims(%s, '1 minute') AS n", (ids,))[0]["n"] == 1
    completing.run("ROLLBACK")


def test_run_maintenance_runs_once_at_a_time(conn, sessions) -> None:
    """Every worker runs maintenance: two runs at once (each holding the jobs its sweep released
    while queueing missing rows) could wait for each other. A second run returns at once."""
    first, second = sessions(), sessions()
    first.run("BEGIN")
    first.run("SELECT memory.run_maintenance()")
    second.run("SET lock_timeout = '5s'")
    r = second.run("SELECT memory.run_maintenance() AS r")[0]["r"]
    assert r.get("busy") and r["released_claims"] == 0
    first.run("COMMIT")
    assert "busy" not in one(conn, "SELECT memory.run_maintenance()")
