"""The embedding worker: drains memory_private.embedding_queue through an Embedder.

Design: one control thread (the caller of `Worker.run`) holds a LISTEN connection on
`memory_embedding_queue`, sends the heartbeat (`memory.worker_heartbeat`) and runs
`memory.run_maintenance()` periodically; `concurrency` embedding threads each own a connection
and loop claim -> embed -> complete. A NOTIFY wakes the idle threads at once; without one they
poll every `poll` seconds. No two threads (or workers) embed one job: claims are
`FOR UPDATE SKIP LOCKED` with a lease, all in SQL.

Every memory.* call goes through the client's plans (`MemoryStore.claim_embedding_jobs(...,
conn=...)` and so on: arguments bound by name); the first control connection is the one that
verifies the schema version (and, on the embedded server pgmemo owns, migrates it on first use).

Failures:
- TransientEmbeddingError (provider down, 429, timeout): the batch is failed with
  `memory.fail_embedding_jobs` (backoff in SQL; dead after pgmemo.max_attempts).
- PermanentEmbeddingError on a batch: the batch is bisected so only the rows the provider
  rejects fail, each with the provider's message.
- The database going away: each thread reconnects with capped exponential backoff, and a batch
  already embedded is completed once the database is back (if its lease still holds).
- SIGTERM/SIGINT: no new claims; batches in hand are finished within `grace` seconds, else
  given back with `memory.release_claims` (no attempt counted). A second signal gives them back
  at once. `memory.worker_stopped` is recorded on the way out.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .client import MemoryStore, connect_raw, connect_verified
from .embedders import Embedder, PermanentEmbeddingError, TransientEmbeddingError

log = logging.getLogger("pgmemo.worker")

CHANNEL = "memory_embedding_queue"


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerStats:
    """Counters of one Worker run (thread-safe through `lock`)."""

    embedded: int = 0  # embeddings written
    failed: int = 0  # job failures recorded (transient or permanent)
    not_written: int = 0  # content changed in flight (re-queued) or vector refused by SQL
    batches: int = 0
    provider_calls: int = 0
    reconnects: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"embedded": self.embedded, "failed": self.failed, "not_written": self.not_written,
                    "batches": self.batches, "provider_calls": self.provider_calls,
                    "reconnects": self.reconnects,
                    "seconds": round(time.monotonic() - self.started, 3)}


@dataclass
class _Job:
    job_id: int
    domain: str
    row_id: str
    content: str
    dimension: int
    embedding_model: str | None


class Worker:
    """Embeds queued rows. `run()` blocks until stopped (or, with once=True, until no job is ready)."""

    def __init__(
        self,
        dsn: str | None,
        embedder: Embedder,
        *,
        batch_size: int = 32,
        concurrency: int = 1,
        lease: float = 300.0,
        poll: float = 5.0,
        once: bool = False,
        domain: str | None = None,
        name: str | None = None,
        heartbeat_every: float = 5.0,
        maintenance_every: float = 60.0,
        grace: float = 30.0,
        reconnect_max: float = 30.0,
        on_tick: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if batch_size < 1 or batch_size > 10000:
            raise ValueError(f"batch_size must be between 1 and 10000, got {batch_size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if lease <= 0 or poll <= 0:
            raise ValueError("lease and poll must be positive")
        self.dsn = dsn  # None: the configured database, else the embedded default
        self.api = MemoryStore(embedder=None)  # runs the plans on the worker's own connections
        self.embedder = embedder
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.once = once
        self.domain = domain
        self.name = name or default_worker_name()
        self.heartbeat_every = heartbeat_every
        self.maintenance_every = maintenance_every
        self.grace = grace
        self.reconnect_max = reconnect_max
        self.on_tick = on_tick
        self.stats = WorkerStats()
        self._stopping = threading.Event()  # no new claims
        self._abort = threading.Event()  # give back what is in hand now
        self._wake = threading.Condition()
        self._wake_seq = 0
        self._in_hand: dict[int, list[int]] = {}  # thread index -> claimed job ids
        self._in_hand_lock = threading.Lock()
        self._reported = (0, 0)  # (embedded, failed) already sent with a heartbeat
        self._warned_models: set[str] = set()

    # -- control ----------------------------------------------------------------------------
    def stop(self, *, abort: bool = False) -> None:
        """Ask the worker to stop: no new claims; abort=True also gives back batches in hand."""
        self._stopping.set()
        if abort:
            self._abort.set()
        self._notify_threads()

    def _notify_threads(self) -> None:
        with self._wake:
            self._wake_seq += 1
            self._wake.notify_all()

    def _handle_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._stopping.is_set():
            log.warning("second %s: giving back the batches in hand now", name,
                        extra={"event": "abort", "signal": name})
            self.stop(abort=True)
        else:
            log.info("%s: finishing the batches in hand, then stopping (again to abort)", name,
                     extra={"event": "stopping", "signal": name})
            self.stop()

    def run(self) -> WorkerStats:
        """Run until stop() (or a signal); with once=True, until no job is ready. Returns stats."""
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._handle_signal)
        log.info("worker %s starting", self.name, extra={
            "event": "start", "worker": self.name, "embedder": getattr(self.embedder, "name", "?"),
            "model": self.embedder.model, "batch_size": self.batch_size,
            "concurrency": self.concurrency, "lease": self.lease, "poll": self.poll,
            "once": self.once, "domain": self.domain})
        threads = [threading.Thread(target=self._thread_main, args=(i,), daemon=True,
                                    name=f"pgmemo-worker-{i}") for i in range(self.concurrency)]
        ctl: psycopg.Connection | None = None
        try:
            ctl = self._control_connect(first=True)
            for t in threads:
                t.start()
            ctl = self._control_loop(ctl, threads)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if ctl is not None:  # else nothing was claimed or recorded: nothing to give back
                self._shutdown(ctl, threads)
        return self.stats

    def _control_connect(self, *, first: bool = False) -> psycopg.Connection:
        delay = 0.5
        while True:
            try:
                if first:  # the one check: schema version verified on this connection
                    conn, self.dsn = connect_verified(self.dsn)
                else:
                    conn = connect_raw(self.dsn)
                conn.execute(f"LISTEN {CHANNEL}")
                self._beat(conn)
                if not first:
                    log.info("control connection restored", extra={"event": "reconnected"})
                return conn
            except psycopg.OperationalError as exc:
                if first and self.once:
                    raise
                if self._stopping.is_set():
                    raise
                log.warning("database unreachable (%s); retrying in %.1fs", _oneline(exc), delay,
                            extra={"event": "db_unreachable", "retry_in": round(delay, 2)})
                self._sleep(delay)
                delay = min(delay * 2, self.reconnect_max)

    def _control_loop(self, ctl: psycopg.Connection, threads: list[threading.Thread]) -> psycopg.Connection:
        # The leases of batches in hand are extended every third of a lease, so a provider call
        # longer than the lease is never released under the thread that waits for it.
        extend_every = self.lease / 3
        tick = min(0.2 if self.once or self.on_tick else 1.0, extend_every)
        next_beat = time.monotonic() + self.heartbeat_every
        next_maint = time.monotonic()  # once at start, then every maintenance_every
        next_extend = time.monotonic() + extend_every
        while any(t.is_alive() for t in threads) and not self._stopping.is_set():
            try:
                for _ in ctl.notifies(timeout=tick):
                    self._notify_threads()
                now = time.monotonic()
                if now >= next_extend:
                    self._extend_leases(ctl)
                    next_extend = now + extend_every
                if now >= next_beat:
                    self._beat(ctl)
                    next_beat = now + self.heartbeat_every
                if now >= next_maint and self.maintenance_every > 0:
                    next_maint = now + self.maintenance_every
                    self._maintenance(ctl)
            except psycopg.OperationalError as exc:
                log.warning("control connection lost (%s)", _oneline(exc),
                            extra={"event": "db_lost", "worker_thread": "control"})
                _close(ctl)
                self.stats.add(reconnects=1)
                ctl = self._control_connect()
                self._notify_threads()
            except psycopg.Error as exc:
                # Any other database error (a domain dropped or altered under us, a permission
                # taken away): log it and go on with the others; the next tick tries again.
                log.warning("control step failed (%s)", _oneline(exc), extra={
                    "event": "control_error", "sqlstate": getattr(exc, "sqlstate", None)})
                if ctl.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    ctl.rollback()
            if self.on_tick:
                self.on_tick(self.stats.snapshot())
        return ctl

    def _shutdown(self, ctl: psycopg.Connection | None, threads: list[threading.Thread]) -> None:
        self._stopping.set()
        self._notify_threads()
        deadline = time.monotonic() + self.grace
        for t in threads:
            while t.is_alive() and not self._abort.is_set() and time.monotonic() < deadline:
                t.join(timeout=0.2)
        # Batches still in hand (threads past the grace period, or aborted): give them back.
        leftover = self._take_all_in_hand()
        for attempt in range(2):
            try:
                if ctl is None or ctl.closed or attempt:
                    _close(ctl)
                    ctl = connect_raw(self.dsn)
                if leftover:
                    n = self.api.release_claims(leftover, conn=ctl)
                    log.info("gave back %d claimed jobs", n,
                             extra={"event": "released", "jobs": n})
                    leftover = []
                self._beat(ctl)
                self.api.worker_stopped(self.name, conn=ctl)
                break
            except psycopg.Error as exc:
                log.warning("could not record the stop (%s)", _oneline(exc),
                            extra={"event": "stop_unrecorded"})
        _close(ctl)
        if self.on_tick:
            self.on_tick(self.stats.snapshot())
        log.info("worker %s stopped", self.name, extra={"event": "stop", **self.stats.snapshot()})

    def _maintenance(self, ctl: psycopg.Connection) -> None:
        result = self.api.run_maintenance(conn=ctl)
        skipped = result.get("skipped_domains") or {}
        if skipped:
            log.warning("maintenance skipped %d domain(s): %s", len(skipped), ", ".join(
                f"{d} ({e})" for d, e in skipped.items()), extra={
                    "event": "maintenance_skipped", "errors": skipped})
        if result.get("released_claims") or result.get("enqueued_missing"):
            log.info("maintenance", extra={"event": "maintenance", **{
                k: v for k, v in result.items() if k not in ("ran_at", "skipped_domains")}})
            self._notify_threads()

    def _extend_leases(self, ctl: psycopg.Connection) -> None:
        with self._in_hand_lock:
            ids = [i for ids in self._in_hand.values() for i in ids]
        if ids:
            self.api.extend_claims(ids, self.lease, conn=ctl)

    def _beat(self, conn: psycopg.Connection) -> None:
        snap = self.stats.snapshot()
        done, failed = snap["embedded"], snap["failed"]
        self.api.worker_heartbeat(
            self.name, done - self._reported[0], failed - self._reported[1], {
                "pid": os.getpid(), "host": socket.gethostname(),
                "embedder": getattr(self.embedder, "name", None), "model": self.embedder.model,
                "batch_size": self.batch_size, "concurrency": self.concurrency,
                "domain": self.domain, "once": self.once}, conn=conn)
        self._reported = (done, failed)

    def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by stop() (or, once stopping, by an abort)."""
        if self._stopping.is_set():
            self._abort.wait(seconds)
        else:
            self._stopping.wait(seconds)

    # -- embedding threads ------------------------------------------------------------------
    def _thread_main(self, index: int) -> None:
        conn: psycopg.Connection | None = None
        delay = 0.5
        claimer = f"{self.name}/{index}"
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = connect_raw(self.dsn)
                        delay = 0.5
                    with self._wake:
                        seq = self._wake_seq
                    jobs = self._claim(conn, claimer)
                    if not jobs:
                        if self.once:
                            return
                        with self._wake:
                            if self._wake_seq == seq and not self._stopping.is_set():
                                self._wake.wait(self.poll)
                        continue
                    conn = self._process(conn, index, jobs)
                except psycopg.OperationalError as exc:
                    _close(conn)
                    conn = None
                    self.stats.add(reconnects=1)
                    log.warning("database connection lost (%s); reconnecting in %.1fs",
                                _oneline(exc), delay, extra={
                                    "event": "db_lost", "worker_thread": index, "retry_in": round(delay, 2)})
                    self._sleep(delay * random.uniform(0.75, 1.25))
                    delay = min(delay * 2, self.reconnect_max)
                except Exception:
                    log.exception("unexpected error in worker thread %d", index,
                                  extra={"event": "thread_error", "worker_thread": index})
                    self._sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)
        finally:
            _close(conn)

    def _claim(self, conn: psycopg.Connection, claimer: str) -> list[_Job]:
        rows = self.api.claim_embedding_jobs(self.batch_size, claimer, self.lease, self.domain,
                                             conn=conn)
        return [_Job(**r) for r in rows]

    def _process(self, conn: psycopg.Connection, index: int, jobs: list[_Job]) -> psycopg.Connection:
        """Embed and complete one claimed batch; returns the (possibly renewed) connection."""
        with self._in_hand_lock:
            self._in_hand[index] = [j.job_id for j in jobs]
        finished = False
        try:
            self._warn_model(jobs)
            started = time.monotonic()
            done, permanent, transient = self._embed(jobs)
            if self._abort.is_set():
                return conn  # left in _in_hand: _shutdown gives these claims back
            conn = self._finish(conn, done, permanent, transient)
            finished = True
            self.stats.add(batches=1)
            log.info("batch done", extra={
                "event": "batch", "worker_thread": index, "jobs": len(jobs), "embedded": len(done),
                "permanent_failures": len(permanent), "transient_failures": len(transient),
                "seconds": round(time.monotonic() - started, 3)})
            return conn
        finally:
            if finished or not self._abort.is_set():
                with self._in_hand_lock:
                    self._in_hand.pop(index, None)

    def _take_all_in_hand(self) -> list[int]:
        with self._in_hand_lock:
            ids = [i for ids in self._in_hand.values() for i in ids]
            self._in_hand.clear()
            return ids

    def _warn_model(self, jobs: Sequence[_Job]) -> None:
        for job in jobs:
            want = job.embedding_model
            if want and want != self.embedder.model and job.domain not in self._warned_models:
                self._warned_models.add(job.domain)
                log.warning("domain %s expects model %s, this worker embeds with %s", job.domain,
                            want, self.embedder.model, extra={
                                "event": "model_mismatch", "domain": job.domain,
                                "domain_model": want, "model": self.embedder.model})

    def _embed(self, jobs: list[_Job]) -> tuple[list[tuple[_Job, list[float]]],
                                                 list[tuple[_Job, str]], list[tuple[_Job, str]]]:
        """Embed a batch. Returns (done, permanent failures, transient failures).

        A PermanentEmbeddingError on several texts bisects the batch, so only the texts the
        provider rejects fail (each with the provider's message).
        """
        done: list[tuple[_Job, list[float]]] = []
        permanent: list[tuple[_Job, str]] = []
        transient: list[tuple[_Job, str]] = []
        pending = [jobs]
        while pending:
            part = pending.pop()
            if self._abort.is_set():
                break
            try:
                self.stats.add(provider_calls=1)
                vectors = self.embedder.embed([j.content for j in part])
            except TransientEmbeddingError as exc:
                transient.extend((j, str(exc)) for j in part)
            except PermanentEmbeddingError as exc:
                if len(part) == 1:
                    permanent.append((part[0], str(exc)))
                else:
                    half = len(part) // 2
                    pending.extend([part[half:], part[:half]])
            except Exception as exc:  # a bug or an unexpected library error: count an attempt
                log.exception("embedder raised %s", type(exc).__name__,
                              extra={"event": "embedder_error"})
                transient.extend((j, f"{type(exc).__name__}: {exc}") for j in part)
            else:
                done.extend(zip(part, vectors))
        return done, permanent, transient

    def _finish(self, conn: psycopg.Connection, done: list[tuple[_Job, list[float]]],
                permanent: list[tuple[_Job, str]], transient: list[tuple[_Job, str]]) -> psycopg.Connection:
        """Write the results; if the database went away meanwhile, reconnect and try again while
        the lease holds (the calls are idempotent: a job already completed is simply gone)."""
        deadline = time.monotonic() + self.lease
        delay = 0.5
        while True:
            try:
                written = 0
                if done:
                    written = self.api.complete_embedding_jobs(
                        [j.job_id for j, _ in done], [v for _, v in done], self.embedder.model,
                        conn=conn)
                failed = 0
                for job, message in permanent:
                    failed += self.api.fail_embedding_jobs([job.job_id], message, conn=conn)
                    log.warning("row %s/%s failed: %s", job.domain, job.row_id, message, extra={
                        "event": "job_failed", "kind": "permanent", "domain": job.domain,
                        "row_id": job.row_id, "job_id": job.job_id, "error": message})
                by_message: dict[str, list[int]] = {}
                for job, message in transient:
                    by_message.setdefault(message, []).append(job.job_id)
                for message, ids in by_message.items():
                    failed += self.api.fail_embedding_jobs(ids, message, conn=conn)
                    log.warning("%d jobs will be retried: %s", len(ids), message, extra={
                        "event": "job_failed", "kind": "transient", "jobs": len(ids),
                        "error": message})
                self.stats.add(embedded=written, failed=failed, not_written=len(done) - written)
                return conn
            except psycopg.OperationalError as exc:
                _close(conn)
                if time.monotonic() + delay > deadline or self._abort.is_set():
                    raise
                log.warning("database lost while completing a batch (%s); retrying in %.1fs",
                            _oneline(exc), delay, extra={"event": "db_lost", "retry_in": delay})
                self._sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
                try:
                    conn = connect_raw(self.dsn)
                    self.stats.add(reconnects=1)
                except psycopg.OperationalError:
                    pass  # conn stays closed: the next execute raises and we wait again


def _close(conn: psycopg.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- logging -----------------------------------------------------------------------------------
_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class KeyValueFormatter(logging.Formatter):
    """`ts level msg key=value ...` (logfmt-like) for humans and grep."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        parts = [ts, f"level={record.levelname.lower()}", f"msg={_kv(record.getMessage())}"]
        parts += [f"{k}={_kv(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _kv(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


def setup_logging(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    """Log pgmemo's records to stderr as JSON lines or key=value lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger("pgmemo")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
