"""The embedding worker against the real server and a real (local) HTTP provider.

Each test drives pgmemo.worker.Worker (or `pgmemo worker` as a subprocess) over real queue
rows and checks the rows, the queue and the provider's per-text call counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from fake_provider import FakeProvider, fake_vector
from pgmemo.cli import main as cli_main
from pgmemo.client import MemoryStore, connect_raw
from pgmemo.worker import Worker

DIM = 8
PGMEMO = Path(sys.executable).with_name("pgmemo")


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def set_db(conn: psycopg.Connection, **settings: object) -> None:
    """ALTER DATABASE ... SET pgmemo.<name> (seen by the worker's new connections)."""
    db = conn.execute("SELECT current_database() AS d").fetchone()["d"]
    for key, value in settings.items():
        conn.execute(f'ALTER DATABASE "{db}" SET pgmemo.{key} = {value!s}')


def counts(conn: psycopg.Connection, domain: str) -> dict[str, int]:
    return conn.execute("SELECT * FROM memory.queue_counts(%s)", (domain,)).fetchone()


def missing(conn: psycopg.Connection, domain: str) -> int:
    return conn.execute(
        f"SELECT count(*) AS n FROM memory_data.{domain}_memories WHERE embedding IS NULL").fetchone()["n"]


class Background:
    """A Worker running in a thread (no signal handlers there); stop() joins it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error:
            raise self.error


def test_four_workers_embed_5000_rows_exactly_once(store: MemoryStore, conn, dsn, provider) -> None:
    store.create_domain("bulk", DIM, embedding_model="fake-embed")
    texts = [f"memory number {i}" for i in range(5000)]
    store.store_many(texts, domain="bulk")
    assert counts(conn, "bulk")["ready"] == 5000
    workers = [Worker(dsn, provider.embedder(), batch_size=50, once=True, poll=0.2,
                      name=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    # Every row was sent to the provider exactly once, across the four workers.
    assert len(provider.sent) == 5000
    assert set(provider.sent.values()) == {1}
    assert sum(w.stats.embedded for w in workers) == 5000
    assert all(w.stats.embedded > 0 for w in workers), [w.stats.embedded for w in workers]
    assert counts(conn, "bulk") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}
    assert missing(conn, "bulk") == 0
    # Each row holds the vector of its own content, with the model recorded.
    rows = conn.execute("SELECT content, embedding, embedding_model FROM memory_data.bulk_memories"
                        " ORDER BY random() LIMIT 20").fetchall()
    for r in rows:
        assert r["embedding"].to_list() == pytest.approx(fake_vector(r["content"], DIM), abs=1e-6)
        assert r["embedding_model"] == "fake-embed"
    # Heartbeats: each worker recorded its work and its clean stop.
    ws = conn.execute("SELECT worker, jobs_done, alive, stopped_at FROM memory.workers"
                      " ORDER BY worker").fetchall()
    assert [w["worker"] for w in ws] == ["w0", "w1", "w2", "w3"]
    assert sum(w["jobs_done"] for w in ws) == 5000
    assert all(w["stopped_at"] is not None and not w["alive"] for w in ws)


def test_stale_vector_is_not_written(store: MemoryStore, conn, dsn, provider) -> None:
    store.create_domain("notes", DIM)
    rid = store.store("original text", domain="notes")
    provider.hold = "original"
    bg = Background(Worker(dsn, provider.embedder(), batch_size=5, poll=0.1))
    try:
        assert provider.held.wait(20), "the worker never sent the row"
        # The job is in flight: change the content under it.
        assert store.update(rid, domain="notes", content="rewritten text")
        provider.release()
        wait_until(lambda: store.get(rid, domain="notes")["has_embedding"], what="re-embedding")
    finally:
        bg.stop()
    row = conn.execute("SELECT content, embedding FROM memory_data.notes_memories").fetchone()
    assert row["content"] == "rewritten text"
    assert row["embedding"].to_list() == pytest.approx(fake_vector("rewritten text", DIM), abs=1e-6)
    assert provider.calls["original text"] == 1  # embedded, but its vector was refused
    assert provider.calls["rewritten text"] == 1
    assert bg.worker.stats.not_written == 1
    assert counts(conn, "notes")["ready"] + counts(conn, "notes")["claimed"] == 0


def test_provider_down_backs_off_then_succeeds(store: MemoryStore, conn, dsn, provider) -> None:
    set_db(conn, retry_base_seconds=0.2, retry_max_seconds=1, max_attempts=50)
    store.create_domain("notes", DIM)
    store.store_many([f"note {i}" for i in range(30)], domain="notes")
    provider.down = True
    bg = Background(Worker(dsn, provider.embedder(), batch_size=10, poll=0.1))
    try:
        wait_until(lambda: conn.execute(
            "SELECT count(*) AS n FROM memory_private.embedding_queue WHERE attempts >= 2"
        ).fetchone()["n"] == 30, what="every job to fail twice")
        row = conn.execute("SELECT min(attempts) AS a, min(last_error) AS e,"
                           " bool_and(status <> 'dead') AS p FROM memory_private.embedding_queue"
                           ).fetchone()
        assert row["p"], "failed jobs are back in the queue, not dead"
        assert "HTTP 503" in row["e"] and "overloaded" in row["e"]
        assert missing(conn, "notes") == 30
        provider.down = False
        wait_until(lambda: missing(conn, "notes") == 0, what="recovery")
    finally:
        bg.stop()
    assert counts(conn, "notes") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}
    assert bg.worker.stats.failed >= 60


def test_bad_row_fails_alone_then_dead_then_requeued(store: MemoryStore, conn, dsn, provider) -> None:
    set_db(conn, retry_base_seconds=0, max_attempts=2)
    store.create_domain("notes", DIM)
    ids = store.store_many([f"good {i}" for i in range(15)] + ["this one has POISON in it"],
                           domain="notes")
    provider.bad = "POISON"
    Worker(dsn, provider.embedder(), batch_size=16, once=True).run()
    # The batch was bisected: the 15 good rows are embedded, the bad one alone failed.
    assert missing(conn, "notes") == 1
    assert all(provider.calls[f"good {i}"] == 1 for i in range(15))
    job = conn.execute("SELECT row_id, status, attempts, last_error FROM memory_private.embedding_queue"
                       ).fetchone()
    assert job["row_id"] == ids[-1]
    assert job["status"] == "dead" and job["attempts"] == 2
    assert "HTTP 400" in job["last_error"]
    assert "forbidden token POISON" in job["last_error"]  # the provider's own message
    assert counts(conn, "notes")["dead"] == 1
    # Fixed at the provider: requeue_dead brings the row back and it gets embedded.
    provider.bad = None
    assert store.requeue_dead("notes") == 1
    Worker(dsn, provider.embedder(), batch_size=16, once=True).run()
    assert missing(conn, "notes") == 0
    assert counts(conn, "notes") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}


def _cli_env(dsn: str, provider: FakeProvider) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=dsn, PGMEMO_EMBEDDER="openai",
                OPENAI_BASE_URL=provider.base_url, OPENAI_API_KEY="test",
                OPENAI_EMBEDDING_MODEL="fake-embed")


def test_kill_9_mid_batch_then_another_worker_finishes(store: MemoryStore, conn, dsn, provider) -> None:
    set_db(conn, retry_base_seconds=0)
    store.create_domain("notes", DIM)
    store.store_many([f"slow {i}" for i in range(20)], domain="notes")
    provider.hold = "slow"
    proc = subprocess.Popen(
        [str(PGMEMO), "worker", "--batch-size", "10", "--lease", "2", "--poll", "0.2",
         "--name", "doomed", "--log-json"],
        env=_cli_env(dsn, provider), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert provider.held.wait(30), "the subprocess worker never called the provider"
        claimed = counts(conn, "notes")["claimed"]
        assert claimed == 10
    finally:
        proc.kill()  # SIGKILL: no cleanup, the claim stays behind
        proc.wait(10)
    provider.release()
    assert proc.returncode == -signal.SIGKILL
    assert counts(conn, "notes")["claimed"] == 10
    alive = conn.execute("SELECT alive, stopped_at FROM memory.workers WHERE worker = 'doomed'").fetchone()
    assert alive["stopped_at"] is None  # it never said goodbye
    wait_until(lambda: conn.execute("SELECT bool_and(lease_until < now()) AS x FROM"
                                    " memory_private.embedding_queue WHERE status = 'claimed'"
                                    ).fetchone()["x"], timeout=10, what="the lease to expire")
    w = Worker(dsn, provider.embedder(), batch_size=10, once=True)
    w.run()
    assert missing(conn, "notes") == 0
    assert counts(conn, "notes") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}
    assert w.stats.embedded == 20


def test_sigterm_gives_claims_back_without_an_attempt(store: MemoryStore, conn, dsn, provider) -> None:
    store.create_domain("notes", DIM)
    store.store_many([f"slow {i}" for i in range(5)], domain="notes")
    provider.hold = "slow"
    proc = subprocess.Popen(
        [str(PGMEMO), "worker", "--batch-size", "10", "--grace", "0", "--name", "polite", "--log-json"],
        env=_cli_env(dsn, provider), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert provider.held.wait(30)
        assert counts(conn, "notes")["claimed"] == 5
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        provider.release()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"event": "released", "jobs": 5, "msg": "gave back 5 claimed jobs"}.items() <= next(
        e for e in events if e.get("event") == "released").items()
    assert [e["event"] for e in events if e.get("event") in ("start", "stopping", "stop")] == [
        "start", "stopping", "stop"]
    rows = conn.execute("SELECT status, attempts, claimed_by FROM memory_private.embedding_queue").fetchall()
    assert [(r["status"], r["attempts"], r["claimed_by"]) for r in rows] == [("pending", 0, None)] * 5
    w = conn.execute("SELECT alive, stopped_at FROM memory.workers WHERE worker = 'polite'").fetchone()
    assert w["stopped_at"] is not None and not w["alive"]


def test_worker_reconnects_after_database_restart(tmp_path, provider) -> None:
    from pgmemo import embedded
    from pgmemo.migrate import migrate

    os.chmod(tmp_path, 0o755)
    path = tmp_path / "data"
    server = embedded.ensure_running(path, tune=False)
    try:
        dsn = server.dsn
        migrate(dsn)
        with MemoryStore.connect(dsn, embedder=None) as s:
            s.create_domain("notes", DIM)
            s.store_many([f"before {i}" for i in range(40)], domain="notes")
        provider.delay = 0.15  # batches in flight when the server goes down
        w = Worker(dsn, provider.embedder(), batch_size=5, concurrency=2, poll=0.2,
                   heartbeat_every=0.5, reconnect_max=1.0)
        bg = Background(w)
        try:
            wait_until(lambda: w.stats.embedded >= 5, what="the first batches")
            embedded._restart(embedded._server(path))
            server = embedded.status(path)
            assert server is not None
            with MemoryStore.connect(server.dsn, embedder=None) as s:
                s.store_many([f"after {i}" for i in range(10)], domain="notes")
            c = connect_raw(server.dsn)
            try:
                wait_until(lambda: missing(c, "notes") == 0, timeout=40, what="the queue to drain")
                assert counts(c, "notes") == {"ready": 0, "waiting": 0, "claimed": 0, "dead": 0}
                # The heartbeat resumed after the restart.
                wait_until(lambda: c.execute("SELECT alive FROM memory.workers").fetchone()["alive"],
                           what="a heartbeat")
            finally:
                c.close()
        finally:
            bg.stop()
        assert w.stats.reconnects >= 1
        assert provider.calls["after 9"] == 1
    finally:
        embedded.stop(path)


def test_cli_needs_an_embedder(dsn, monkeypatch) -> None:
    monkeypatch.delenv("PGMEMO_EMBEDDER", raising=False)
    for args in (["worker", "--once"], ["backfill"]):
        result = CliRunner().invoke(cli_main, ["--dsn", dsn, *args])
        assert result.exit_code == 2, result.output
        assert "no embedder configured: set PGMEMO_EMBEDDER" in result.output


def test_cli_backfill_enqueues_missing_and_reports(store: MemoryStore, conn, dsn, provider,
                                                   monkeypatch) -> None:
    store.create_domain("notes", DIM)
    store.create_domain("other", DIM)
    store.store_many([f"n {i}" for i in range(30)], domain="notes")
    store.store_many([f"o {i}" for i in range(5)], domain="other")
    # Rows that never got a job (e.g. loaded with triggers off): only enqueue_missing finds them.
    conn.execute("DELETE FROM memory_private.embedding_queue WHERE domain = 'notes'")
    for k, v in _cli_env(dsn, provider).items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(cli_main, ["backfill", "--domain", "notes", "--batch-size", "7",
                                           "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["enqueued"] == 30
    assert summary["embedded"] == 30
    assert summary["dead"] == 0 and summary["failed"] == 0
    assert missing(conn, "notes") == 0
    assert missing(conn, "other") == 5  # --domain kept the worker to notes
