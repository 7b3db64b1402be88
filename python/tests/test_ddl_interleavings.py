"""pgmemo's DDL interleaved with everything else (stop 37's attack review): migrate, create_domain,
drop_domain, adopt_table, begin/finish/cancel_reembed, bulk_load_begin/finish and run_maintenance
against writers, workers, searches and each other. No interleaving may lose a row or a job,
serve a stale vector or deadlock; a side that must wait waits, or fails with a clear error.

Every interleaving is driven step by step from separate connections: transactions held open at
chosen points, pg_locks polled until a session is seen waiting (no sleeps as synchronization).
A migrate is held half-way by a reader of one of the views it replaces (memory.queue_status,
sql/60_diagnostics.sql): by then it has replaced memory.search (sql/30_search.sql), not yet
regenerated it (sql/90_grants.sql) nor re-wired the domains (_after_migrate).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from fake_provider import fake_vector
from helpers import one
from pgmemo.client import MemoryStore, as_vector
from pgmemo.migrate import MigrationError, migrate
from test_queue_concurrency import Session, sessions, wait_until, waiting  # noqa: F401
from test_queue_concurrency import finished_or_waiting as _finished_or_waiting

DIM = 8


def vec(text: str) -> str:
    return as_vector(fake_vector(text, DIM))


def blocked(conn, pid: int) -> bool:
    """Waiting for a lock, or for a migrate (memory_private._lock_ddl polls for its lock)."""
    return waiting(conn, pid) or one(conn, "SELECT wait_event = 'PgSleep' FROM pg_stat_activity "
                                           "WHERE pid = %s", (pid,)) is True


def finished_or_waiting(conn, s: Session) -> bool:
    return _finished_or_waiting(conn, s, blocked)


class Migrator:
    """`pgmemo migrate` on a connection of its own, in the background (its pid known)."""

    def __init__(self, dsn: str, lock_timeout: float = 60, retries: int = 0) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.error: BaseException | None = None
        self.result: Any = None

        def target() -> None:
            try:
                self.result = migrate(self.conn, lock_timeout=lock_timeout, retries=retries)
            except BaseException as exc:  # noqa: BLE001 - checked by the test
                self.error = exc
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "migrate did not finish"
        self.conn.close()


@pytest.fixture
def migrate_held(dsn, conn, sessions) -> Callable[[], tuple[Migrator, Session]]:
    """A migrate held half-way (see the module's docstring); returns (migrator, holder): the
    holder's COMMIT lets it go on."""
    started: list[Migrator] = []

    def start() -> tuple[Migrator, Session]:
        holder = sessions()
        holder.run("BEGIN")
        holder.run("SELECT * FROM memory.queue_status LIMIT 0")
        m = Migrator(dsn)
        started.append(m)
        wait_until(lambda: waiting(conn, m.pid), what="the migrate to wait for the view")
        return m, holder

    yield start
    for m in started:
        m._thread.join(60)
        m.conn.close()


def assert_no_deadlock(*errors: BaseException | None) -> None:
    bad = [e for e in errors if e is not None]
    assert not bad, f"an interleaving of DDL deadlocked or failed: {bad!r}"


# --- 1. migrate against DDL, bulk loads and workers --------------------------------------------


def test_migrate_and_create_domain_do_not_deadlock(store: MemoryStore, conn, sessions,
                                                   migrate_held) -> None:
    """The migrate has replaced memory.search (its pg_proc row, until it commits); create_domain
    takes the lock of the search regeneration, then waits to replace memory.search; the migrate
    goes on to its own regeneration and waits for that lock: deadlock. Now create_domain waits
    for the migrate from its start (the migrators' lock, shared), and both succeed."""
    m, holder = migrate_held()
    creator = sessions()
    creator.start("SELECT memory.create_domain('nd', 8)::text AS t")
    wait_until(lambda: finished_or_waiting(conn, creator), what="create_domain to finish or wait")
    holder.run("COMMIT")
    m.join()
    creator.join()
    assert_no_deadlock(m.error, creator.error)
    assert creator.result == [{"t": "memory_data.nd_memories"}]
    # the new domain has its branch of memory.search, and works
    assert "'nd'" in one(conn, "SELECT prosrc FROM pg_proc WHERE oid = 'memory.search'::regproc")
    conn.execute("SELECT memory.store('nd', 'x', embedding => %s)", (vec("x"),))
    assert one(conn, "SELECT count(*) FROM memory.search('nd', %s, 1)", (vec("x"),)) == 1


def test_migrate_and_drop_domain_do_not_deadlock(store: MemoryStore, conn, sessions,
                                                 migrate_held) -> None:
    """drop_domain in a transaction left open (as an application's does) during a migrate: the
    same cycle as create_domain's, or, once drop_domain commits first, a migrate failing on
    "tuple concurrently updated" (the trigger functions it made again were dropped)."""
    store.create_domain("md", dimension=DIM)
    m, holder = migrate_held()
    dropper = sessions()
    dropper.run("BEGIN")
    dropper.start("SELECT memory.drop_domain('md')")
    wait_until(lambda: finished_or_waiting(conn, dropper), what="drop_domain to finish or wait")
    holder.run("COMMIT")
    dropper.end()
    m.join()
    assert_no_deadlock(m.error, dropper.error)
    assert one(conn, "SELECT count(*) FROM memory_private.domains") == 0
    assert one(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'pgmemo_md_%'") == 0


def test_a_transaction_that_read_a_view_then_creates_a_domain_during_a_migrate(
        store: MemoryStore, conn, dsn, sessions) -> None:
    """The application read memory.domains, then calls create_domain in the same transaction,
    while a migrate (holding the migrators' lock) waits to replace that view: create_domain must
    not wait for the migrate in the lock graph (a cycle: deadlock). It polls; the migrate's lock
    timeout ends its attempt, create_domain goes on, the migrate's next attempt succeeds."""
    app = sessions()
    app.run("BEGIN")
    app.run("SELECT count(*) FROM memory.domains")
    m = Migrator(dsn, lock_timeout=1, retries=10)
    wait_until(lambda: waiting(conn, m.pid), what="the migrate to wait for memory.domains")
    app.start("SELECT memory.create_domain('rv', 8)::text AS t")
    app.join()
    assert app.error is None, app.error
    app.run("COMMIT")
    m.join()
    assert_no_deadlock(m.error)
    assert one(conn, "SELECT count(*) FROM memory_private.domains WHERE domain = 'rv'") == 1


def test_migrate_after_bulk_load_finish_leaves_the_insert_trigger_on(
        store: MemoryStore, conn, dsn, sessions) -> None:
    """A migrate read the domain as bulk loading while bulk_load_finish (not yet committed) was
    resuming its insert trigger, waited for the table, then paused the trigger again: the
    registry said 'not loading' and no row inserted from then on was ever queued."""
    store.create_domain("bl", dimension=DIM)
    conn.execute("SELECT memory.bulk_load_begin('bl')")
    conn.execute("SELECT memory.store('bl', 'loaded')")
    finisher = sessions()
    finisher.run("BEGIN")
    finisher.run("SELECT memory.bulk_load_finish('bl')")
    m = Migrator(dsn)
    wait_until(lambda: not m.alive() or waiting(conn, m.pid), what="the migrate to finish or wait")
    finisher.run("COMMIT")
    m.join()
    assert m.error is None, m.error
    assert one(conn, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'pgmemo_bl_enqueue_insert'") \
        == "O"
    assert one(conn, "SELECT bulk_loading FROM memory_private.domains WHERE domain = 'bl'") is False
    conn.execute("SELECT memory.store('bl', 'after the load', id => 'after')")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue "
                     "WHERE domain = 'bl' AND row_id = 'after'") == 1, "a new row was not queued"


def test_migrate_does_not_wait_for_a_bulk_load_under_way(store: MemoryStore, conn, dsn,
                                                         sessions) -> None:
    """Every migrate paused the insert trigger of each bulk-loading domain again (ALTER TABLE:
    the table's SHARE ROW EXCLUSIVE lock): it waited for the loader's open COPY transaction
    (failing after its lock timeout and retries), and the table's writers queued behind it."""
    store.create_domain("bw", dimension=DIM)
    conn.execute("SELECT memory.bulk_load_begin('bw')")
    loader = sessions()
    loader.run("BEGIN")
    loader.run("SELECT memory.store_many('bw', ARRAY['a', 'b', 'c'])")
    try:
        migrate(dsn, lock_timeout=1, retries=0)
    except MigrationError as exc:
        pytest.fail(f"migrate waited for the bulk load: {exc}")
    loader.run("COMMIT")
    assert one(conn, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'pgmemo_bw_enqueue_insert'") \
        == "D", "the load goes on with its insert trigger paused"
    assert conn.execute("SELECT memory.bulk_load_finish('bw')").fetchone()
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'bw'") == 3


def test_migrate_does_not_wait_for_a_worker_batch(store: MemoryStore, conn, dsn,
                                                   sessions) -> None:
    """A worker's completion left open (its transaction holding its rows and jobs) while a
    migrate makes the domain's claim and completion functions again: the migrate neither waits
    for it nor changes what it writes; the vector lands, the job goes."""
    store.create_domain("wb", dimension=DIM)
    conn.execute("SELECT memory.store('wb', 'one', id => 'r')")
    job = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'w')").fetchone()
    worker = sessions()
    worker.run("BEGIN")
    assert worker.run("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                      ([job["job_id"]], [vec("one")]))[0]["n"] == 1
    try:
        migrate(dsn, lock_timeout=1, retries=0)
    except MigrationError as exc:
        pytest.fail(f"migrate waited for a worker's completion: {exc}")
    worker.run("COMMIT")
    assert one(conn, "SELECT embedding::text FROM memory_data.wb_memories") == \
        one(conn, "SELECT %s::vector::text", (vec("one"),))
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_run_maintenance_during_a_migrate_returns_at_once(conn, sessions, migrate_held) -> None:
    """run_maintenance re-wires adopted tables' partitions (making trigger functions again) and
    regenerates the search functions after a text fill: beside a migrate, the same cycles as
    create_domain's. It is skipped (busy) while a migrate runs, without waiting: a worker runs
    it, and a migrate may itself wait for a long DDL."""
    m, holder = migrate_held()
    maint = sessions()
    maint.run("SET lock_timeout = '2s'")
    r = maint.run("SELECT memory.run_maintenance() AS r")[0]["r"]
    assert r.get("busy") == "a migrate is running"
    holder.run("COMMIT")
    m.join()
    assert m.error is None, m.error
    assert "busy" not in one(conn, "SELECT memory.run_maintenance()")


# --- 2. DDL of one domain against DDL of the same domain ---------------------------------------


def test_create_domain_during_drop_domain_of_the_same_name(store: MemoryStore, conn,
                                                           sessions) -> None:
    """create_domain with the same settings during a drop_domain not yet committed answered
    "exists" (idempotent) from the registry row being deleted: after both, no domain, and the
    caller's next store failed. It waits for the drop and makes the domain again."""
    store.create_domain("dc", dimension=DIM)
    dropper, creator = sessions(), sessions()
    dropper.run("BEGIN")
    dropper.run("SELECT memory.drop_domain('dc')")
    creator.start("SELECT memory.create_domain('dc', 8)::text AS t")
    wait_until(lambda: finished_or_waiting(conn, creator), what="create_domain to finish or wait")
    dropper.run("COMMIT")
    creator.join()
    assert creator.error is None, creator.error
    assert one(conn, "SELECT count(*) FROM memory_private.domains WHERE domain = 'dc'") == 1
    conn.execute("SELECT memory.store('dc', 'kept', id => 'k')")
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 1


def test_drop_domain_during_begin_reembed_cancels_it(store: MemoryStore, conn, sessions) -> None:
    """drop_domain read 'no re-embed' while begin_reembed (not yet committed) made the shadow
    domain, then failed on the shadow's view ("other objects depend on it"); had the table gone,
    the shadow domain and its jobs were left over a table that no longer exists."""
    store.create_domain("db", dimension=DIM)
    conn.execute("SELECT memory.store('db', 'one')")
    starter, dropper = sessions(), sessions()
    starter.run("BEGIN")
    starter.run("SELECT memory.begin_reembed('db', 'new', 8)")
    dropper.start("SELECT memory.drop_domain('db')")
    wait_until(lambda: finished_or_waiting(conn, dropper), what="drop_domain to finish or wait")
    starter.run("COMMIT")
    dropper.join()
    assert dropper.error is None, dropper.error
    assert one(conn, "SELECT count(*) FROM memory_private.domains") == 0
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0
    assert one(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'pgmemo_db%'") == 0


def test_finish_and_cancel_reembed_do_not_deadlock(store: MemoryStore, conn, sessions) -> None:
    """finish_reembed holds the table (ACCESS SHARE, then ACCESS EXCLUSIVE) and drops the shadow's
    view; cancel_reembed dropped that view first, then waited for the table: deadlock. One waits
    for the other now; the second says there is no re-embed any more (42704)."""
    store.create_domain("fc", dimension=DIM)
    conn.execute("SELECT memory.store('fc', 'one', embedding => %s)", (vec("one"),))
    conn.execute("SELECT memory.begin_reembed('fc', 'new', 8)")
    jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'w', "
                        "only_domain => 'fc__next')").fetchall()
    conn.execute("SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
                 ([j["job_id"] for j in jobs], [vec("new one")]))
    reader, finisher, canceller = sessions(), sessions(), sessions()
    reader.run("BEGIN")
    reader.run("SELECT count(*) FROM memory_data.fc_memories")
    finisher.start("SELECT memory.finish_reembed('fc') AS r")
    wait_until(lambda: waiting(conn, finisher.pid), what="finish to wait for the reader")
    canceller.start("SELECT memory.cancel_reembed('fc')")
    wait_until(lambda: finished_or_waiting(conn, canceller), what="cancel to finish or wait")
    reader.run("COMMIT")
    finisher.join()
    canceller.join()
    errors = [e for e in (finisher.error, canceller.error) if e is not None]
    assert not any(isinstance(e, psycopg.errors.DeadlockDetected) for e in errors), errors
    assert finisher.error is None, finisher.error
    assert isinstance(canceller.error, psycopg.errors.UndefinedObject), canceller.error
    assert [r["domain"] for r in conn.execute("SELECT domain FROM memory_private.domains")] == ["fc"]
    assert one(conn, "SELECT embedding_model FROM memory_private.domains") == "new"


def test_two_create_domain_at_once_both_get_their_search_branches(conn, sessions) -> None:
    """Both regenerate memory.search, search_text's and search_hybrid's cached-plan branches: the
    second, after waiting for the first, from a registry that holds the first's domain (else the
    first's domain lost its branches: the dynamic path, planned at every call)."""
    first, second = sessions(), sessions()
    first.run("BEGIN")
    first.run("SELECT memory.create_domain('ca', 8)")
    second.start("SELECT memory.create_domain('cb', 8)")
    wait_until(lambda: finished_or_waiting(conn, second), what="the second to finish or wait")
    first.run("COMMIT")
    second.join()
    assert second.error is None, second.error
    search = one(conn, "SELECT prosrc FROM pg_proc WHERE oid = 'memory.search'::regproc")
    hybrid = one(conn, "SELECT prosrc FROM pg_proc WHERE proname = 'search_hybrid' "
                       "AND pronamespace = 'memory'::regnamespace")
    text = one(conn, "SELECT string_agg(prosrc, ' ') FROM pg_proc "
                     "WHERE proname = '_search_text_static'")
    for domain in ("ca", "cb"):
        assert f"'{domain}'" in search and f"'{domain}'" in hybrid and f"'{domain}/" in text, domain


# --- 3. DDL against writers, workers and searches ----------------------------------------------


def test_searches_do_not_wait_for_create_domain(store: MemoryStore, conn, sessions) -> None:
    """create_domain (uncommitted) has regenerated memory.search and the text and hybrid
    searches: searches of the other domains run meanwhile, without waiting for it."""
    store.create_domain("sr", dimension=DIM)
    conn.execute("SELECT memory.store('sr', 'the cat sat', embedding => %s)", (vec("cat"),))
    creator, searcher = sessions(), sessions()
    creator.run("BEGIN")
    creator.run("SELECT memory.create_domain('other', 8)")
    searcher.run("SET lock_timeout = '2s'")
    assert len(searcher.run("SELECT * FROM memory.search('sr', %s, 1)", (vec("cat"),))) == 1
    assert len(searcher.run("SELECT * FROM memory.search_text('sr', 'cat', 1)")) == 1
    assert len(searcher.run("SELECT * FROM memory.search_hybrid('sr', 'cat', %s, 1)",
                            (vec("cat"),))) == 1
    creator.run("COMMIT")


def test_completion_across_a_drop_domain_writes_the_other_domains(store: MemoryStore, conn,
                                                                  sessions) -> None:
    """A worker's batch holds jobs of two domains; one is dropped while the completion waits for
    its table: the whole completion failed (42P01), the other domain's vectors with it (the worker
    logged an unexpected error and its jobs waited for their lease to end)."""
    store.create_domain("aa", dimension=DIM)
    store.create_domain("zz", dimension=DIM)
    conn.execute("SELECT memory.store('aa', 'one', id => 'a')")
    conn.execute("SELECT memory.store('zz', 'two', id => 'z')")
    jobs = {j["domain"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(5, 'w')").fetchall()}
    dropper, worker = sessions(), sessions()
    dropper.run("BEGIN")
    dropper.run("SELECT memory.drop_domain('zz')")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([jobs["aa"], jobs["zz"]], [vec("one"), vec("two")]))
    wait_until(lambda: finished_or_waiting(conn, worker), what="the completion to finish or wait")
    dropper.run("COMMIT")
    worker.join()
    assert worker.error is None, worker.error
    assert worker.result == [{"n": 1}]
    assert one(conn, "SELECT embedding IS NOT NULL FROM memory_data.aa_memories") is True
    assert one(conn, "SELECT count(*) FROM memory_private.embedding_queue") == 0


def test_completion_across_a_cancel_reembed_writes_the_other_domains(store: MemoryStore, conn,
                                                                     sessions) -> None:
    """The same with a re-embed cancelled under a batch holding one of its shadow jobs: the
    completion waited for the table, then called the shadow's completion function, dropped
    meanwhile (42883), and failed whole."""
    store.create_domain("aa", dimension=DIM)
    store.create_domain("xx", dimension=DIM)
    conn.execute("SELECT memory.store('aa', 'one', id => 'a')")
    conn.execute("SELECT memory.store('xx', 'two', id => 'x', embedding => %s)", (vec("two"),))
    conn.execute("SELECT memory.begin_reembed('xx', 'new', 8)")
    jobs = {j["domain"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(5, 'w', only_domain => 'xx__next')").fetchall()}
    jobs.update({j["domain"]: j["job_id"] for j in conn.execute(
        "SELECT * FROM memory.claim_embedding_jobs(5, 'w', only_domain => 'aa')").fetchall()})
    canceller, worker = sessions(), sessions()
    canceller.run("BEGIN")
    canceller.run("SELECT memory.cancel_reembed('xx')")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([jobs["aa"], jobs["xx__next"]], [vec("one"), vec("new two")]))
    wait_until(lambda: finished_or_waiting(conn, worker), what="the completion to finish or wait")
    canceller.run("COMMIT")
    worker.join()
    assert worker.error is None, worker.error
    assert worker.result == [{"n": 1}]
    assert one(conn, "SELECT embedding IS NOT NULL FROM memory_data.aa_memories") is True
    assert one(conn, "SELECT embedding::text FROM memory_data.xx_memories") == \
        one(conn, "SELECT %s::vector::text", (vec("two"),)), "the old model's vector is kept"


def test_finish_reembed_during_a_completion_of_the_old_model(store: MemoryStore, conn,
                                                             sessions) -> None:
    """A row edited during a re-embed has a job for each model; the new model's is done, the old
    model's claimed. finish_reembed switches (same dimension: the old vector would fit the new
    column) while the old model's completion waits for the table: it must write nothing."""
    store.create_domain("fo", dimension=DIM, embedding_model="old")
    conn.execute("SELECT memory.store('fo', 'one', id => 'r', embedding => %s)", (vec("old one"),))
    conn.execute("SELECT memory.begin_reembed('fo', 'new', 8)")
    conn.execute("SELECT memory.update('fo', 'r', content => 'two')")
    shadow = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'new', "
                          "only_domain => 'fo__next')").fetchall()
    conn.execute("SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
                 ([j["job_id"] for j in shadow], [vec("new two")]))
    old = conn.execute("SELECT * FROM memory.claim_embedding_jobs(5, 'old', "
                       "only_domain => 'fo')").fetchall()
    assert len(old) == 1
    finisher, worker = sessions(), sessions()
    finisher.run("BEGIN")
    finisher.run("SELECT memory.finish_reembed('fo')")
    worker.start("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                 ([old[0]["job_id"]], [vec("old two")]))
    wait_until(lambda: waiting(conn, worker.pid), what="the completion to wait for the switch")
    finisher.run("COMMIT")
    worker.join()
    assert worker.error is None, worker.error
    assert worker.result == [{"n": 0}]
    assert one(conn, "SELECT embedding::text FROM memory_data.fo_memories") == \
        one(conn, "SELECT %s::vector::text", (vec("new two"),)), "a vector of the old model"


def test_bulk_load_finish_during_a_store_queues_the_row(store: MemoryStore, conn,
                                                        sessions) -> None:
    """A row stored during the load (insert trigger paused: no job), its transaction still open
    when bulk_load_finish starts: finish waits for it, then queues it."""
    store.create_domain("bs", dimension=DIM)
    conn.execute("SELECT memory.bulk_load_begin('bs')")
    writer, finisher = sessions(), sessions()
    writer.run("BEGIN")
    writer.run("SELECT memory.store('bs', 'during', id => 'd')")
    finisher.start("SELECT memory.bulk_load_finish('bs') AS r")
    wait_until(lambda: waiting(conn, finisher.pid), what="finish to wait for the writer")
    writer.run("COMMIT")
    finisher.join()
    assert finisher.error is None, finisher.error
    assert [r["row_id"] for r in conn.execute(
        "SELECT row_id FROM memory_private.embedding_queue")] == ["d"]


def test_adopt_table_during_an_application_write_queues_every_row(store: MemoryStore, conn,
                                                                  sessions) -> None:
    """The application inserts a row (no trigger yet) and has not committed when adopt_table
    starts: adoption waits for it, then queues it with the rows before; rows after are queued by
    the triggers."""
    conn.execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL, "
                 "embedding vector(8))")
    conn.execute("INSERT INTO notes VALUES (1, 'before', NULL)")
    app, adopter = sessions(), sessions()
    app.run("BEGIN")
    app.run("INSERT INTO notes VALUES (2, 'pelican', NULL)")
    adopter.start("SELECT memory.adopt_table('nt', 'notes', 'id', 'body', 'embedding')")
    wait_until(lambda: waiting(conn, adopter.pid), what="adoption to wait for the application")
    app.run("COMMIT")
    adopter.join()
    assert adopter.error is None, adopter.error
    conn.execute("INSERT INTO notes VALUES (3, 'after', NULL)")
    assert [r["row_id"] for r in conn.execute(
        "SELECT row_id FROM memory_private.embedding_queue ORDER BY row_id")] == ["1", "2", "3"]
    assert one(conn, "SELECT count(*) FROM memory_data.nt_text") == 3, "each row in the text index"
    assert one(conn, "SELECT count(*) FROM memory.search_text('nt', 'pelican', 5)") == 1


def test_the_ddl_lock_is_the_migrators_lock(sessions) -> None:
    """memory_private._lock_ddl repeats migrate.py's LOCK_KEY: the two must name one lock."""
    from pgmemo.migrate import LOCK_KEY
    s = sessions()
    s.run("BEGIN")
    s.run("SELECT memory_private._lock_ddl()")
    held = s.run("SELECT (classid::bigint << 32) | objid::bigint AS key, mode FROM pg_locks "
                 "WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()")
    s.run("ROLLBACK")
    assert held == [{"key": LOCK_KEY, "mode": "ShareLock"}]
