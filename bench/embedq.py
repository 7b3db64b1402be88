"""The embedding queue, side by side in one run: pgmemo (this tree), pgmemo as it was before the
set-based queue (git rev --base, its SQL and its worker), and Timescale's pgai vectorizer (PyPI
`pgai`, installed into its own database by its Python library, its worker run in Python).

Every contender embeds the same texts through the same local provider (an HTTP server speaking
OpenAI's /v1/embeddings, fixed latency per request, deterministic vectors: a row's vector is a
hash of its text, so a stale vector is detectable), on the same PostgreSQL server, one contender
at a time, runs interleaved.

Sections (bench/results/queue.json, and the "Embedding queue" section of BENCHMARKS.md):
  throughput  4 workers, batch 50, HNSW index present, provider latency 20 ms: rows/s,
              PostgreSQL CPU seconds and WAL bytes per 1,000 embedded rows.
  backfill    the same with no vector index during the fill (pgmemo: bulk_load_begin, pgai:
              no index), the index built afterwards.
  overhead    zero-latency provider, 1 worker, in the database: milliseconds per row of claim,
              complete and the insert trigger, against a bare UPDATE of the same vectors.
  latency     2 rows/s inserted one by one while a worker waits: insert-to-embedded p50/p90.
  faults      poison rows (HTTP 400 for their text) and 10% HTTP 500s: clean rows embedded,
              poison rows dead with the provider's message, time to settle.
  chaos       pgmemo only: 4 worker processes killed with -9 and restarted, one server
              restart, content updates in flight: rows lost, stale vectors, deadlocks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "python" / "tests"))
sys.path.insert(0, str(HERE))

from fake_provider import FakeProvider, fake_vector  # noqa: E402

import lib  # noqa: E402

DIM = 384
BASE_REV = "376509d"  # schema 0004: the per-job queue, two trigger families
PGAI_VENV = ROOT / ".venv-pgai"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- data and provider -------------------------------------------------------------------------
WORDS = ("memory vector index search query embedding table row column domain worker queue lease "
         "claim complete batch provider latency server client python postgres startup funding "
         "series seed investor market growth revenue product customer support release note").split()


def texts(n: int, seed: int = 0, length: int = 40) -> list[str]:
    rng = random.Random(seed)
    return [f"doc {i}: " + " ".join(rng.choice(WORDS) for _ in range(length)) for i in range(n)]


class Provider(FakeProvider):
    """FakeProvider with a fixed latency and a share of random HTTP 500s. It stands in for a
    remote provider, whose CPU is not this machine's: a reply is assembled from each text's
    encoded vector (JSON floats, or base64 when the client asks for it, as OpenAI does), made
    once per text and kept (`warm` makes them before a timed run), so serving costs the shared
    machine about the same little for every contender, whichever encoding it asks for."""

    _encoded: dict[tuple[str, str | None], bytes] = {}  # (text, encoding) -> JSON of the vector

    def __init__(self, dim: int, delay: float, fail_rate: float = 0.0, bad: str | None = None):
        super().__init__(dim=dim)
        self.delay = delay
        self.fail_rate = fail_rate
        self.bad = bad
        self._rng = random.Random(7)

    def warm(self, rows: list[str]) -> None:
        for t in rows:
            self._vector_json(t, None)
            self._vector_json(t, "base64")

    def _vector_json(self, text: str, encoding: str | None) -> bytes:
        key = (text, "base64" if encoding == "base64" else None)
        got = self._encoded.get(key)
        if got is None:
            from fake_provider import encode_vector

            got = self._encoded[key] = json.dumps(encode_vector(fake_vector(text, self.dim),
                                                                key[1])).encode()
        return got

    def _answer(self, texts, encoding=None):  # noqa: D102 - FakeProvider's hook
        if self.fail_rate and self._rng.random() < self.fail_rate:
            time.sleep(self.delay)
            with self.lock:
                self.requests += 1
            return 500, {"error": {"message": "internal error (injected)"}}
        if self.down or self.hold or (self.bad and any(self.bad in t for t in texts)):
            return super()._answer(texts, encoding)
        with self.lock:
            self.requests += 1
            self.sent.update(texts)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.calls.update(texts)
        items = b",".join(b'{"object":"embedding","index":%d,"embedding":%s}'
                          % (i, self._vector_json(t, encoding)) for i, t in enumerate(texts))
        return 200, b'{"object":"list","model":"fake-embed","data":[' + items + b"]}"


# -- the server --------------------------------------------------------------------------------
class Server:
    def __init__(self, datadir: Path | None, dsn: str | None):
        from pgmemo import embedded

        self.owned = datadir
        if dsn:
            self.admin_dsn = dsn
            self._dsn_for = lambda db: psycopg.conninfo.make_conninfo(dsn, dbname=db)
            self.handle = None
        else:
            self.handle = embedded.ensure_running(datadir)
            self.admin_dsn = self.handle.dsn_for("postgres")
            self._dsn_for = self.handle.dsn_for
        self.datadir = datadir

    def dsn(self, db: str) -> str:
        return self._dsn_for(db)

    def fresh_db(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def cpu_seconds(self) -> float | None:
        """CPU time of every process of this server (postmaster and backends), if local."""
        try:
            import psutil
        except ImportError:
            return None
        with psycopg.connect(self.admin_dsn) as c:
            data = c.execute("SHOW data_directory").fetchone()[0]
        try:
            pid = int(Path(data, "postmaster.pid").read_text().split()[0])
            root = psutil.Process(pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            return total + root.cpu_times().children_user + root.cpu_times().children_system
        except (OSError, ValueError, psutil.Error):
            return None

    def wal_lsn(self) -> int:
        with psycopg.connect(self.admin_dsn) as c:
            return int(c.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])

    def deadlocks(self) -> int:
        with psycopg.connect(self.admin_dsn) as c:
            return int(c.execute("SELECT sum(deadlocks) FROM pg_stat_database").fetchone()[0] or 0)

    def restart(self) -> None:
        from pgmemo import embedded

        embedded._restart(embedded._server(self.datadir))
        self.handle = embedded.status(self.datadir)


# -- contenders --------------------------------------------------------------------------------
class Pgmemo:
    """pgmemo from a source tree: its SQL migrated into a database, its worker as processes."""

    def __init__(self, name: str, tree: Path, python: str, server: Server):
        self.name, self.tree, self.python, self.server = name, tree, python, server

    def env(self, provider: Provider) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PGMEMO_", "DATABASE_URL"))}
        env.update(PYTHONPATH=str(self.tree / "python"), PGMEMO_EMBEDDER="openai",
                   OPENAI_BASE_URL=provider.base_url, OPENAI_API_KEY="bench",
                   OPENAI_EMBEDDING_MODEL="fake-embed",
                   PGMEMO_SQL_DIR=str(self.tree / "sql"),
                   PGMEMO_MIGRATIONS_DIR=str(self.tree / "migrations"))
        return env

    def setup(self, db: str, rows: list[str], *, index: bool) -> str:
        dsn = self.server.fresh_db(db)
        subprocess.run([self.python, "-m", "pgmemo.cli", "--dsn", dsn, "migrate"], check=True,
                       env=self._env_plain(), capture_output=True)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SELECT memory.create_domain('bench', %s)", (DIM,))
            if not index:
                c.execute("SELECT memory.bulk_load_begin('bench')")
            for s in range(0, len(rows), 2000):
                c.execute("SELECT count(*) FROM memory.store_many('bench', %s)", (rows[s:s + 2000],))
            if not index:
                c.execute("SELECT memory.enqueue_missing('bench')")
            c.execute("VACUUM ANALYZE memory_data.bench_memories")
            c.execute("CHECKPOINT")
        return dsn

    def _env_plain(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PGMEMO_", "DATABASE_URL"))}
        env.update(PYTHONPATH=str(self.tree / "python"), PGMEMO_SQL_DIR=str(self.tree / "sql"),
                   PGMEMO_MIGRATIONS_DIR=str(self.tree / "migrations"))
        return env

    def worker(self, dsn: str, provider: Provider, *, concurrency: int, batch: int, once: bool,
               extra: list[str] = ()) -> subprocess.Popen:
        args = [self.python, "-m", "pgmemo.cli", "--dsn", dsn, "worker", "--batch-size", str(batch),
                "--concurrency", str(concurrency), "--poll", "0.5", *extra]
        if once:
            args.append("--once")
        return subprocess.Popen(args, env=self.env(provider), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def finish(self, dsn: str, index: bool) -> None:
        if not index:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("SELECT memory.bulk_load_finish('bench')")

    def missing(self, conn) -> int:
        return conn.execute("SELECT count(*) FROM memory_data.bench_memories "
                            "WHERE embedding IS NULL").fetchone()[0]

    def table(self) -> str:
        return "memory_data.bench_memories"


class Pgai:
    """Timescale's pgai vectorizer: installed by `pgai install`, worker `pgai vectorizer worker`."""

    name = "pgai vectorizer"

    def __init__(self, server: Server, venv: Path):
        self.server = server
        self.bin = venv / "bin" / "pgai"

    def available(self) -> str | None:
        if not self.bin.exists():
            return f"{self.bin} is missing (make bench installs it: pip install 'pgai[vectorizer-worker]')"
        return None

    def setup(self, db: str, rows: list[str], *, index: bool, provider: Provider,
              batch: int = 50, concurrency: int = 4) -> str:
        dsn = self.server.fresh_db(db)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        subprocess.run([str(self.bin), "install", "-d", dsn], check=True, capture_output=True)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE public.bench (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                      "content text NOT NULL, embedding vector(%s))" % DIM)
            if index:
                c.execute("CREATE INDEX ON public.bench USING hnsw (embedding vector_cosine_ops)")
            with c.cursor().copy("COPY public.bench (content) FROM STDIN") as cp:
                for t in rows:
                    cp.write_row((t,))
            c.execute(
                "SELECT ai.create_vectorizer('public.bench'::regclass, name => 'bench', "
                "loading => ai.loading_column('content'), "
                "embedding => ai.embedding_openai('fake-embed', %s, base_url => %s), "
                "destination => ai.destination_column('embedding'), "
                "chunking => ai.chunking_none(), indexing => ai.indexing_none(), "
                "processing => ai.processing_default(batch_size => %s, concurrency => %s))",
                (DIM, provider.base_url, batch, concurrency))
            c.execute("VACUUM ANALYZE public.bench")
            c.execute("CHECKPOINT")
        return dsn

    def worker(self, dsn: str, provider: Provider, *, concurrency: int, batch: int, once: bool,
               extra: list[str] = ()) -> subprocess.Popen:
        env = dict(os.environ, OPENAI_API_KEY="bench", OPENAI_BASE_URL=provider.base_url)
        args = [str(self.bin), "vectorizer", "worker", "-d", dsn, "-c", str(concurrency),
                "--poll-interval", "1", "--log-level", "error"]
        if once:
            args.append("--once")
        self.log = Path(tempfile.mkstemp(prefix="pgai-worker-", suffix=".log")[1])
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                stderr=self.log.open("w"), start_new_session=True)

    def finish(self, dsn: str, index: bool) -> None:
        if not index:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE INDEX ON public.bench USING hnsw (embedding vector_cosine_ops)")

    def missing(self, conn) -> int:
        return conn.execute("SELECT count(*) FROM public.bench WHERE embedding IS NULL").fetchone()[0]

    def table(self) -> str:
        return "public.bench"


# -- sections ----------------------------------------------------------------------------------
def _stop(p: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def fill_run(server: Server, c, rows: list[str], *, index: bool, workers: int, batch: int,
             delay: float, tag: str, timeout: float) -> dict[str, Any]:
    provider = Provider(DIM, delay)
    provider.warm(rows)  # the replies' vectors encoded before the clock starts, for everyone
    try:
        db = f"bq_{tag}"
        if isinstance(c, Pgai):
            dsn = c.setup(db, rows, index=index, provider=provider, batch=batch, concurrency=workers)
        else:
            dsn = c.setup(db, rows, index=index)
        cpu0, wal0 = server.cpu_seconds(), server.wal_lsn()
        t0 = time.perf_counter()
        p = c.worker(dsn, provider, concurrency=workers, batch=batch, once=False)
        left = len(rows)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while left and time.perf_counter() - t0 < timeout:
                time.sleep(0.2)
                left = c.missing(conn)
        fill_s = time.perf_counter() - t0
        cpu1, wal1 = server.cpu_seconds(), server.wal_lsn()
        _stop(p)
        t1 = time.perf_counter()
        c.finish(dsn, index)
        index_s = time.perf_counter() - t1
        done = len(rows) - left
        if done == 0 and getattr(c, "log", None):
            raise RuntimeError("nothing embedded; worker log: " + c.log.read_text()[-1500:])
        out = {"rows": len(rows), "embedded": done, "seconds": round(fill_s, 2),
               "rows_per_s": round(done / fill_s, 1),
               "pg_cpu_s_per_1k_rows": round((cpu1 - cpu0) / done * 1000, 3) if cpu0 is not None and done else None,
               "wal_bytes_per_row": round((wal1 - wal0) / done) if done else None,
               "provider_requests": provider.requests,
               "index_build_seconds": round(index_s, 2) if not index else None}
        with psycopg.connect(server.admin_dsn, autocommit=True) as a:
            a.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        return out
    finally:
        provider.close()


def section_fill(server, contenders, s, *, index: bool) -> dict[str, Any]:
    rows = texts(s["rows"])
    runs: dict[str, list[dict]] = {c.name: [] for c in contenders}
    for r in range(s["runs"]):
        order = contenders if r % 2 == 0 else list(reversed(contenders))
        for c in order:
            log(f"  {'throughput' if index else 'backfill'} run {r + 1}: {c.name}")
            try:
                res = fill_run(server, c, rows, index=index, workers=s["workers"], batch=s["batch"],
                               delay=s["delay"], tag=f"{'t' if index else 'b'}{r}_{c.name.split()[0].replace('-', '_')}",
                               timeout=s["timeout"])
            except Exception as exc:  # noqa: BLE001 - reported
                res = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"    {res}")
            runs[c.name].append(res)
    return {"settings": {k: s[k] for k in ("rows", "workers", "batch", "delay", "runs")},
            "index_present": index, "runs": runs, "summary": _summary(runs)}


def _summary(runs: dict[str, list[dict]]) -> dict[str, Any]:
    out = {}
    for name, rs in runs.items():
        ok = [r for r in rs if "rows_per_s" in r]
        if not ok:
            out[name] = {"error": rs[0].get("error") if rs else "no run"}
            continue
        out[name] = {k: round(statistics.mean(r[k] for r in ok), 3) for k in
                     ("rows_per_s", "pg_cpu_s_per_1k_rows", "wal_bytes_per_row") if all(r.get(k) is not None for r in ok)}
        out[name]["runs"] = len(ok)
    return out


class BackendClock:
    """CPU seconds of one connection's server process (/proc/<pid>/schedstat, nanoseconds):
    what a statement costs the database, whatever else the shared machine is doing."""

    def __init__(self, conn) -> None:
        self.path = Path(f"/proc/{conn.execute('SELECT pg_backend_pid()').fetchone()[0]}/schedstat")

    def __call__(self) -> float:
        return int(self.path.read_text().split()[0]) / 1e9


def section_overhead(server, contenders, s) -> dict[str, Any]:
    """Zero latency, one worker loop in this process, vectors precomputed: database CPU time per
    row (of the connection's server process) of claim, complete and the insert trigger, and of a
    bare set-based UPDATE of the same vectors, without the HNSW index (the same for everyone)."""
    from pgvector.psycopg import register_vector
    import numpy as np

    n, batch = s["overhead_rows"], s["batch"]
    rows = texts(n, seed=3)
    vecs = {t: np.array(fake_vector(t, DIM), dtype=np.float32) for t in rows}
    out: dict[str, Any] = {}
    for c in [c for c in contenders if isinstance(c, Pgmemo)]:
        res: dict[str, list[float]] = {"insert_ms_per_row": [], "insert_no_trigger_ms_per_row": [],
                                       "claim_ms_per_row": [], "complete_ms_per_row": [],
                                       "bare_update_ms_per_row": []}
        for r in range(s["runs"]):
            dsn = server.fresh_db(f"bo_{r}_{c.name.split()[0].replace('-', '_')}")
            subprocess.run([c.python, "-m", "pgmemo.cli", "--dsn", dsn, "migrate"], check=True,
                           env=c._env_plain(), capture_output=True)
            with psycopg.connect(dsn, autocommit=True) as conn:
                register_vector(conn)
                clock = BackendClock(conn)
                conn.execute("SELECT memory.create_domain('bench', %s)", (DIM,))
                conn.execute("SELECT memory.create_domain('plain', %s)", (DIM,))
                # The HNSW insert is the same for every design and dwarfs the queue's own cost:
                # measure without it (the other indexes stay).
                for (ix,) in conn.execute("SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c "
                                          "ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                                          "WHERE a.amname = 'hnsw'").fetchall():
                    conn.execute(f"DROP INDEX {ix}")
                t0 = clock()
                for st in range(0, n, 500):
                    conn.execute("SELECT count(*) FROM memory.store_many('bench', %s)", (rows[st:st + 500],))
                res["insert_ms_per_row"].append((clock() - t0) * 1000 / n)
                trig = [r[0] for r in conn.execute(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'memory_data.plain_memories'::regclass "
                    "AND NOT tgisinternal").fetchall()]
                for tg in trig:
                    conn.execute(f'ALTER TABLE memory_data.plain_memories DISABLE TRIGGER "{tg}"')
                t0 = clock()
                for st in range(0, n, 500):
                    conn.execute("SELECT count(*) FROM memory.store_many('plain', %s)", (rows[st:st + 500],))
                res["insert_no_trigger_ms_per_row"].append((clock() - t0) * 1000 / n)
                conn.execute("VACUUM ANALYZE")
                claim_s = complete_s = 0.0
                done = 0
                while True:
                    t0 = clock()
                    jobs = conn.execute("SELECT job_id, content FROM memory.claim_embedding_jobs(%s, 'b')",
                                        (batch,)).fetchall()
                    claim_s += clock() - t0
                    if not jobs:
                        break
                    ids = [j[0] for j in jobs]
                    vv = [vecs[j[1]] for j in jobs]
                    t0 = clock()
                    done += conn.execute("SELECT memory.complete_embedding_jobs(%s, %s)", (ids, vv)).fetchone()[0]
                    complete_s += clock() - t0
                res["claim_ms_per_row"].append(claim_s * 1000 / max(done, 1))
                res["complete_ms_per_row"].append(complete_s * 1000 / max(done, 1))
                ids = [r[0] for r in conn.execute("SELECT id FROM memory_data.plain_memories").fetchall()]
                cont = {r[0]: r[1] for r in conn.execute("SELECT id, content FROM memory_data.plain_memories")}
                t_bare = 0.0
                for st in range(0, len(ids), batch):
                    part = ids[st:st + batch]
                    t0 = clock()
                    conn.execute("UPDATE memory_data.plain_memories AS t SET embedding = u.v "
                                 "FROM unnest(%s::text[], %s::vector[]) AS u (id, v) WHERE t.id = u.id",
                                 (part, [vecs[cont[i]] for i in part]))
                    t_bare += clock() - t0
                res["bare_update_ms_per_row"].append(t_bare * 1000 / len(ids))
            with psycopg.connect(server.admin_dsn, autocommit=True) as a:
                a.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("dbname=", 1)[-1].split()[0]}" WITH (FORCE)')
        summ = {k: round(statistics.median(v), 4) for k, v in res.items()}
        summ["queue_overhead_ms_per_row"] = round(
            summ["claim_ms_per_row"] + summ["complete_ms_per_row"] - summ["bare_update_ms_per_row"]
            + summ["insert_ms_per_row"] - summ["insert_no_trigger_ms_per_row"], 4)
        out[c.name] = summ
        log(f"  overhead {c.name}: {summ}")
    return {"rows": n, "batch": batch, "results": out}


def section_layout(server, contenders, s) -> dict[str, Any]:
    """What the embedding write costs the database per row (backend CPU, WAL), by table layout:
    the factory table as made (GIN full-text, GIN metadata, btree updated_at, the touch trigger),
    without its full-text GIN, with fillfactor 70 and no index on a touched column (so HOT is
    possible), and the vectors in a narrow table of their own (id, embedding). With the HNSW
    index present no layout is HOT (the embedding is indexed); without it, as in bulk mode."""
    from pgvector.psycopg import register_vector
    import numpy as np

    n, batch = s["overhead_rows"], s["batch"]
    rows = texts(n, seed=4)
    vecs = [np.array(fake_vector(t, DIM), dtype=np.float32) for t in rows]
    ids = [f"r{i}" for i in range(n)]
    dsn = server.fresh_db("bq_layout")
    c = next(c for c in contenders if isinstance(c, Pgmemo))
    subprocess.run([c.python, "-m", "pgmemo.cli", "--dsn", dsn, "migrate"], check=True,
                   env=c._env_plain(), capture_output=True)
    variants = {
        "factory table (as made)": [],
        "no full-text GIN": ["DROP INDEX memory_data.{t}_fts"],
        "no full-text GIN, no updated_at index, fillfactor 70 (HOT possible)": [
            "DROP INDEX memory_data.{t}_fts", "DROP INDEX memory_data.{t}_updated_at",
            "DROP INDEX memory_data.{t}_metadata_gin", "ALTER TABLE memory_data.{t} SET (fillfactor = 70)"],
        "vectors in a side table (id, embedding)": None,
    }
    out: dict[str, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        clock = BackendClock(conn)
        for hnsw in (True, False):
            res = {}
            for k, (name, ddl) in enumerate(variants.items()):
                dom = f"lay{k}{'h' if hnsw else 'n'}"
                conn.execute("SELECT memory.create_domain(%s, %s)", (dom, DIM))
                t = f"{dom}_memories"
                if not hnsw:
                    conn.execute(f"DROP INDEX memory_data.{t}_hnsw")
                target = f"memory_data.{t}"
                if ddl is None:
                    conn.execute(f"CREATE TABLE memory_data.{dom}_vec (id text PRIMARY KEY, "
                                 f"embedding vector({DIM}) STORAGE PLAIN)")
                    if hnsw:
                        conn.execute(f"CREATE INDEX ON memory_data.{dom}_vec USING hnsw "
                                     "(embedding vector_cosine_ops)")
                else:
                    for d in ddl:
                        conn.execute(d.format(t=t))
                conn.execute(f"INSERT INTO {target} (id, content) SELECT * FROM unnest(%s::text[], %s::text[])",
                             (ids, rows))
                conn.execute(f"VACUUM ANALYZE {target}")
                w0 = server.wal_lsn()
                t0 = clock()
                for st in range(0, n, batch):
                    if ddl is None:
                        conn.execute(f"INSERT INTO memory_data.{dom}_vec (id, embedding) "
                                     "SELECT * FROM unnest(%s::text[], %s::vector[])",
                                     (ids[st:st + batch], vecs[st:st + batch]))
                    else:
                        conn.execute(f"UPDATE {target} AS t SET embedding = u.v FROM "
                                     "unnest(%s::text[], %s::vector[]) AS u (id, v) WHERE t.id = u.id",
                                     (ids[st:st + batch], vecs[st:st + batch]))
                cpu = clock() - t0
                wal = server.wal_lsn() - w0
                hot = conn.execute("SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass",
                                   (target,)).fetchone()[0] if ddl is not None else None
                res[name] = {"cpu_ms_per_row": round(cpu * 1000 / n, 4), "wal_bytes_per_row": round(wal / n),
                             "hot_updates": hot}
            out["hnsw present" if hnsw else "no vector index"] = res
            log(f"  layout ({'hnsw' if hnsw else 'no index'}): {res}")
    with psycopg.connect(server.admin_dsn, autocommit=True) as a:
        a.execute('DROP DATABASE IF EXISTS "bq_layout" WITH (FORCE)')
    return {"rows": n, "batch": batch, "results": out}


def _latency_run(c, s, n: int, tag: str) -> list[float]:
    """n rows inserted one at a time at s['rate'] rows/s while one worker of c waits: the
    milliseconds from each insert's commit to its row holding a vector."""
    provider = Provider(DIM, s["delay"])
    try:
        dsn = (c.setup(tag, [], index=True, provider=provider) if isinstance(c, Pgai)
               else c.setup(tag, [], index=True))
        p = c.worker(dsn, provider, concurrency=1, batch=s["batch"], once=False)
        time.sleep(2)  # the worker is up and waiting
        lat = []
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for i in range(n):
                    text = f"low rate {i} " + " ".join(random.choice(WORDS) for _ in range(20))
                    if isinstance(c, Pgai):
                        rid = conn.execute("INSERT INTO public.bench (content) VALUES (%s) RETURNING id",
                                           (text,)).fetchone()[0]
                        q = "SELECT embedding IS NOT NULL FROM public.bench WHERE id = %s"
                    else:
                        rid = conn.execute("SELECT memory.store('bench', %s)", (text,)).fetchone()[0]
                        q = "SELECT embedding IS NOT NULL FROM memory_data.bench_memories WHERE id = %s"
                    t0 = time.perf_counter()
                    while not conn.execute(q, (rid,)).fetchone()[0]:
                        if time.perf_counter() - t0 > 30:
                            break
                        time.sleep(0.005)
                    lat.append((time.perf_counter() - t0) * 1000)
                    time.sleep(max(0.0, 1.0 / s["rate"] - lat[-1] / 1000))
        finally:
            _stop(p)
        return lat
    finally:
        provider.close()


def section_latency(server, contenders, s) -> dict[str, Any]:
    """Rows inserted one at a time at s['rate'] rows/s while a worker waits: time from the
    insert's commit to the row holding its vector (polled every 5 ms). The rows are split into
    rounds that alternate the contenders' order (so neither always runs first, on a warm or a
    cold machine)."""
    rounds = max(2, s["runs"])
    per_round = max(1, s["latency_rows"] // rounds)
    lats: dict[str, list[float]] = {c.name: [] for c in contenders}
    errors: dict[str, str] = {}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else list(reversed(contenders))
        for c in order:
            if c.name in errors:
                continue
            try:
                lats[c.name] += _latency_run(c, s, per_round,
                                             f"bl{r}_{c.name.split()[0].replace('-', '_')}")
            except Exception as exc:  # noqa: BLE001 - reported
                errors[c.name] = f"{type(exc).__name__}: {exc}"
    out = {}
    for c in contenders:
        lat = sorted(lats[c.name])
        if c.name in errors or not lat:
            out[c.name] = {"error": errors.get(c.name, "no rows")}
        else:
            out[c.name] = {"rows": len(lat), "rounds": rounds, "p50_ms": round(statistics.median(lat), 1),
                           "p90_ms": round(lat[int(0.9 * (len(lat) - 1))], 1)}
        log(f"  latency {c.name}: {out[c.name]}")
    return {"rate_rows_per_s": s["rate"], "provider_delay_s": s["delay"],
            "order": "alternating per round", "results": out}


def section_faults(server, contenders, s) -> dict[str, Any]:
    """Poison rows (their text makes the provider answer HTTP 400) and 10% random HTTP 500s."""
    out = {}
    n = s["fault_rows"]
    rows = texts(n, seed=11)
    poison = set(range(0, n, max(1, n // 10)))
    rows = [("POISON " + t) if i in poison else t for i, t in enumerate(rows)]
    for c in contenders:
        provider = Provider(DIM, s["delay"], fail_rate=0.10, bad="POISON")
        try:
            tag = f"bf_{c.name.split()[0].replace('-', '_')}"
            if isinstance(c, Pgai):
                dsn = c.setup(tag, rows, index=True, provider=provider, batch=s["batch"], concurrency=4)
            else:
                dsn = c.setup(tag, rows, index=True)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    db = conn.execute("SELECT current_database()").fetchone()[0]
                    conn.execute(f'ALTER DATABASE "{db}" SET pgmemo.retry_base_seconds = 0.2')
                    conn.execute(f'ALTER DATABASE "{db}" SET pgmemo.max_attempts = 8')
            t0 = time.perf_counter()
            p = c.worker(dsn, provider, concurrency=4, batch=s["batch"], once=False)
            clean_left = n - len(poison)
            with psycopg.connect(dsn, autocommit=True) as conn:
                while time.perf_counter() - t0 < s["fault_timeout"]:
                    clean_left = conn.execute(
                        f"SELECT count(*) FROM {c.table()} WHERE embedding IS NULL "
                        "AND content NOT LIKE 'POISON%%'").fetchone()[0]
                    if clean_left == 0:
                        break
                    time.sleep(0.5)
                settle = time.perf_counter() - t0
                res = {"rows": n, "poison_rows": len(poison), "clean_rows_left": clean_left,
                       "seconds": round(settle, 1), "provider_requests": provider.requests}
                if isinstance(c, Pgmemo):
                    # Poison rows: dead with the provider's message once their attempts are spent.
                    deadline = time.perf_counter() + s["fault_timeout"]
                    while time.perf_counter() < deadline:
                        dead = conn.execute("SELECT count(*) FROM memory_private.embedding_queue "
                                            "WHERE status = 'dead'").fetchone()[0]
                        if dead >= len(poison):
                            break
                        time.sleep(0.5)
                    res["poison_dead"] = dead
                    res["poison_dead_with_message"] = conn.execute(
                        "SELECT count(*) FROM memory_private.embedding_queue WHERE status = 'dead' "
                        "AND last_error LIKE '%%forbidden token POISON%%'").fetchone()[0]
                else:
                    res["pgai_errors_logged"] = conn.execute(
                        "SELECT count(*) FROM ai.vectorizer_errors").fetchone()[0] if conn.execute(
                        "SELECT to_regclass('ai.vectorizer_errors') IS NOT NULL").fetchone()[0] else None
            _stop(p)
            out[c.name] = res
        except Exception as exc:  # noqa: BLE001 - reported
            out[c.name] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            provider.close()
        log(f"  faults {c.name}: {out[c.name]}")
    return {"fail_rate": 0.10, "results": out}


def section_chaos(server, contenders, s) -> dict[str, Any]:
    """pgmemo: 4 worker processes, one killed with -9 (and replaced) every second, one server
    restart half-way, a writer changing contents in flight. Then: every row embedded with the
    vector of its current content, no deadlock."""
    c = next(c for c in contenders if isinstance(c, Pgmemo))
    if server.datadir is None:
        return {"skipped": "needs the embedded server (no --dsn): it restarts it"}
    n = s["chaos_rows"]
    rows = texts(n, seed=21)
    provider = Provider(DIM, s["delay"])
    stop = threading.Event()
    updates = [0]
    try:
        dsn = c.setup("bc_chaos", rows, index=True)
        dl0 = server.deadlocks()
        procs = [c.worker(dsn, provider, concurrency=1, batch=s["batch"], once=False,
                          extra=["--lease", "3", "--maintenance-every", "1"]) for _ in range(4)]

        def writer() -> None:
            rng = random.Random(5)
            while not stop.is_set():
                try:
                    with psycopg.connect(dsn, autocommit=True) as w:
                        ids = [r[0] for r in w.execute("SELECT id FROM memory_data.bench_memories")]
                        while not stop.is_set():
                            # one row, or two in one transaction (in id order, as pgmemo's
                            # own writers lock rows): each edit changes the content in flight
                            pick = sorted(rng.sample(ids, rng.choice((1, 2))))
                            with w.transaction():
                                for rid in pick:
                                    w.execute("SELECT memory.update('bench', %s, content => content || ' (edited)') "
                                              "FROM memory_data.bench_memories WHERE id = %s", (rid, rid))
                            updates[0] += len(pick)
                            time.sleep(0.02)
                except psycopg.OperationalError:
                    time.sleep(0.5)

        wt = threading.Thread(target=writer, daemon=True)
        wt.start()
        kills = restarts = 0
        t0 = time.perf_counter()
        rng = random.Random(9)
        while time.perf_counter() - t0 < s["chaos_seconds"]:
            time.sleep(1)
            k = rng.randrange(len(procs))
            _stop(procs[k], signal.SIGKILL)
            kills += 1
            procs[k] = c.worker(dsn, provider, concurrency=1, batch=s["batch"], once=False,
                                extra=["--lease", "3", "--maintenance-every", "1"])
            if restarts == 0 and time.perf_counter() - t0 > s["chaos_seconds"] / 2:
                server.restart()
                restarts += 1
        stop.set()
        wt.join(30)
        # Let the workers drain what is left (expired leases of killed workers included).
        deadline = time.perf_counter() + s["timeout"]
        while time.perf_counter() < deadline:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    if conn.execute("SELECT count(*) FROM memory_data.bench_memories "
                                    "WHERE embedding IS NULL").fetchone()[0] == 0:
                        break
            except psycopg.OperationalError:
                pass
            time.sleep(1)
        for p in procs:
            _stop(p)
        from pgvector.psycopg import register_vector

        with psycopg.connect(dsn, autocommit=True) as conn:
            register_vector(conn)
            got = conn.execute("SELECT content, embedding FROM memory_data.bench_memories").fetchall()
            queue = conn.execute("SELECT status, count(*) FROM memory_private.embedding_queue "
                                 "GROUP BY status").fetchall()
        deadlock_details = []
        try:
            from pgmemo import embedded

            text = Path(embedded._server(server.datadir).log).read_text(errors="replace")
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if "deadlock detected" in line:
                    deadlock_details.append("\n".join(lines[i:i + 8]))
        except Exception as exc:  # noqa: BLE001 - best effort
            deadlock_details.append(f"(server log unreadable: {exc})")
        missing = sum(1 for _, e in got if e is None)
        stale = sum(1 for t, e in got if e is not None and
                    max(abs(a - b) for a, b in zip(e.to_list(), fake_vector(t, DIM))) > 1e-4)
        return {"rows": n, "rows_present": len(got), "lost": n - len(got), "not_embedded": missing,
                "stale_vectors": stale, "deadlocks": server.deadlocks() - dl0, "kills": kills,
                "server_restarts": restarts, "content_updates": updates[0],
                "queue_left": {k: v for k, v in queue}, "seconds": round(time.perf_counter() - t0, 1),
                "deadlock_details": deadlock_details[:5]}
    finally:
        stop.set()
        provider.close()


# -- main --------------------------------------------------------------------------------------
SIZES = {
    "default": dict(rows=20000, runs=2, workers=4, batch=50, delay=0.02, timeout=600,
                    overhead_rows=5000, latency_rows=40, rate=2.0, fault_rows=2000,
                    fault_timeout=180, chaos_rows=3000, chaos_seconds=30),
    "tiny": dict(rows=300, runs=1, workers=4, batch=50, delay=0.005, timeout=120,
                 overhead_rows=200, latency_rows=3, rate=5.0, fault_rows=100, fault_timeout=60,
                 chaos_rows=200, chaos_seconds=4),
}


def export_tree(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "sql", "migrations", "python/pgmemo"],
                          capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="a seconds-long run (tests)")
    p.add_argument("--sections", default="overhead,layout,throughput,backfill,latency,faults,chaos")
    p.add_argument("--contenders", default="pgmemo,base,pgai")
    p.add_argument("--base", default=BASE_REV, help="git rev of the 'before' pgmemo")
    p.add_argument("--pgai-venv", type=Path, default=PGAI_VENV)
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--name", default=None)
    for key in SIZES["default"]:
        p.add_argument("--" + key.replace("_", "-"), type=type(SIZES["default"][key]), dest=key)
    args = p.parse_args(argv)
    s = dict(SIZES["tiny" if args.tiny else "default"])
    s.update({k: v for k, v in vars(args).items() if k in s and v is not None})
    name = args.name or ("queue-tiny" if args.tiny else "queue")

    work = Path(tempfile.mkdtemp(prefix="pgmemo-bench-queue-"))
    os.chmod(work, 0o755)
    server = Server(work / "data", None)
    wanted = args.contenders.split(",")
    contenders: list[Any] = []
    notes: dict[str, str] = {}
    try:
        if "pgmemo" in wanted:
            contenders.append(Pgmemo("pgmemo", ROOT, sys.executable, server))
        if "base" in wanted:
            try:
                tree = export_tree(args.base, work / "base")
                contenders.append(Pgmemo(f"pgmemo-before ({args.base})", tree, sys.executable, server))
            except subprocess.CalledProcessError as exc:
                notes["base"] = f"git archive {args.base} failed: {exc.stderr!r}"
        if "pgai" in wanted:
            pg = Pgai(server, args.pgai_venv)
            why = pg.available()
            if why:
                notes["pgai"] = why
            else:
                contenders.append(pg)
        results: dict[str, Any] = {"machine": lib.machine_info(), "loadavg_start": lib.loadavg(),
                                   "settings": s, "contenders": [c.name for c in contenders],
                                   "notes": notes}
        for section in args.sections.split(","):
            log(f"{section}")
            if section == "overhead":
                results["overhead"] = section_overhead(server, contenders, s)
            elif section == "throughput":
                results["throughput"] = section_fill(server, contenders, s, index=True)
            elif section == "backfill":
                results["backfill"] = section_fill(server, contenders, s, index=False)
            elif section == "layout":
                results["layout"] = section_layout(server, contenders, s)
            elif section == "latency":
                results["latency"] = section_latency(server, contenders, s)
            elif section == "faults":
                results["faults"] = section_faults(server, contenders, s)
            elif section == "chaos":
                results["chaos"] = section_chaos(server, contenders, s)
        results["loadavg_end"] = lib.loadavg()
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.results_dir / (name + '.json')}")
        return results
    finally:
        from pgmemo import embedded

        try:
            embedded.stop(work / "data")
        except Exception:  # noqa: BLE001 - best effort
            pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
