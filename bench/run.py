"""pgmemo benchmark suite: every contender on the same data in the same run.

    python bench/run.py            # `make bench`: 100K real passages, ~10 minutes on 2 cores
    python bench/run.py --full     # `make bench-full`: adds the 1M-row synthetic runs
    python bench/run.py --tiny     # seconds: proves the scripts work (used by the tests)

Writes bench/results/<name>.json, bench/results/<name>_recall_latency.png and the section of
BENCHMARKS.md between the `bench:begin` / `bench:end` markers (the rest of the file is kept).
The server is the embedded one, started with pgmemo.embedded.ensure_running(<temp dir>) so it is
sized exactly as users get it; --dsn uses an existing database instead.

Every PostgreSQL connection has psycopg's automatic prepared statements disabled
(prepare_threshold=None), so every contender parses and plans each call the same way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))

import lib  # noqa: E402
import report  # noqa: E402

from pgmemo.client import MemoryStore, connect_raw  # noqa: E402
from pgmemo.migrate import migrate  # noqa: E402

K = 10
DIM = 384
HNSW_M = 16
HNSW_EFC = 64


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- configuration ------------------------------------------------------------------------------
def sizes(args) -> dict[str, Any]:
    if args.tiny:
        s = dict(real_rows=2000, queries=60, real_source="synthetic", ef=[10, 40, 100],
                 seg_domains=3, seg_rows=800, ingest_rows=1000, backfill_rows=64,
                 big_rows=0, exact_queries=20, filter_queries=30, embedder="fake")
    else:
        s = dict(real_rows=100_000, queries=1000, real_source="real",
                 ef=[10, 20, 40, 64, 100, 200], seg_domains=10, seg_rows=20_000,
                 ingest_rows=20_000, backfill_rows=2000, big_rows=0, exact_queries=100,
                 filter_queries=300, embedder="local")
        if args.full:
            s.update(big_rows=1_000_000, backfill_rows=10_000, seg_rows=50_000)
    for key in ("real_rows", "queries", "seg_domains", "seg_rows", "ingest_rows", "backfill_rows",
                "big_rows", "real_source", "embedder"):
        value = getattr(args, key, None)
        if value is not None:
            s[key] = value
    return s


# -- database plumbing ---------------------------------------------------------------------------
def pg_connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    with connect_raw(dsn) as probe:  # register_vector wants dict rows
        info = probe.adapters.types.get("vector")
    from pgvector.psycopg.vector import register_vector_info

    register_vector_info(conn, info)
    return conn


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], ids: list[str],
              texts: list[str], vecs: np.ndarray, metas: list[bytes], extra: list[bytes] | None = None,
              chunk: int = 5000) -> None:
    """Binary COPY of (id text, content text, embedding vector, metadata jsonb[, extra uuid]):
    the fastest path a client has. The stream is encoded here with struct/numpy."""
    n, dim = vecs.shape
    be = vecs.astype(">f4")
    vhead = struct.pack(">ihh", 4 + 4 * dim, dim, 0)
    nfields = len(columns)
    with conn.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)") as cp:
        cp.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for s in range(0, n, chunk):
            parts = []
            for i in range(s, min(n, s + chunk)):
                idb = ids[i].encode()
                tb = texts[i].encode()
                mb = metas[i]
                parts.append(struct.pack(">hi", nfields, len(idb)) + idb
                             + struct.pack(">i", len(tb)) + tb + vhead + be[i].tobytes()
                             + struct.pack(">ib", len(mb) + 1, 1) + mb)
                if extra is not None:
                    parts.append(struct.pack(">i", 16) + extra[i])
            cp.write(b"".join(parts))
        cp.write(struct.pack(">h", -1))


def ef_arg(ef: int | None) -> tuple[str, tuple]:
    """memory.search's named ef_search argument (None: its default, the session's hnsw.ef_search
    raised to 100)."""
    if ef is not None:
        return ", ef_search => %s", (ef,)
    return "", ()


def drop_if_exists(conn, domain: str) -> None:
    """Leftovers of an interrupted run on a --dsn database."""
    if conn.execute("SELECT 1 FROM memory_private.domains WHERE domain = %s", (domain,)).fetchone():
        conn.execute("SELECT memory.drop_domain(%s)", (domain,))


def index_size(conn, table: str) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index AS i"
        " JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS am ON am.oid = c.relam"
        " WHERE i.indrelid = %s::regclass AND am.amname = 'hnsw'", (table,)).fetchone()
    return int(row[0])


def server_settings(conn) -> dict[str, str]:
    names = ["server_version", "shared_buffers", "maintenance_work_mem", "work_mem",
             "max_parallel_maintenance_workers", "effective_cache_size", "jit"]
    out = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}
    out["pgvector"] = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    return out


def metas_for(n: int, seed: int) -> tuple[list[bytes], dict[str, np.ndarray]]:
    """Metadata with filter keys of known selectivity: f1 (1%), f10 (10%), f50 (50%)."""
    rng = np.random.default_rng(seed)
    masks = {"f1": rng.random(n) < 0.01, "f10": rng.random(n) < 0.10, "f50": rng.random(n) < 0.50}
    metas = []
    for i in range(n):
        m = {key: 1 for key, mask in masks.items() if mask[i]}
        m["n"] = i
        metas.append(json.dumps(m).encode())
    return metas, masks


def bulk_load_domain(conn, domain: str, ids, texts, vecs, metas, *, dim: int = DIM) -> dict:
    """create_domain, bulk_load_begin, binary COPY, bulk_load_finish: the documented fast path."""
    drop_if_exists(conn, domain)
    conn.execute("SELECT memory.create_domain(domain => %s, dimension => %s, hnsw_m => %s,"
                 " hnsw_ef_construction => %s)", (domain, dim, HNSW_M, HNSW_EFC))
    conn.execute("SELECT memory.bulk_load_begin(domain => %s)", (domain,))
    t0 = time.perf_counter()
    copy_rows(conn, f"memory_data.{domain}_memories", ["id", "content", "embedding", "metadata"],
              ids, texts, vecs, metas)
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    info = conn.execute("SELECT memory.bulk_load_finish(domain => %s)", (domain,)).fetchone()[0]
    finish_s = time.perf_counter() - t0
    return {"rows": len(ids), "copy_seconds": round(copy_s, 2),
            "copy_rows_per_s": round(len(ids) / copy_s), "finish_seconds": round(finish_s, 2),
            "hnsw_build_seconds": round(float(info["hnsw_seconds"]), 2),
            "secondary_build_seconds": round(float(info["secondary_seconds"]), 2),
            "total_rows_per_s_incl_build": round(len(ids) / (copy_s + finish_s)),
            "index_bytes": index_size(conn, f"memory_data.{domain}_memories")}


# -- contenders ----------------------------------------------------------------------------------
class Contenders:
    """The search contenders over one domain; each returns the row ids (ints) of one query."""

    def __init__(self, dsn: str, domain: str, vecs: np.ndarray | None, faiss_threads: int = 1):
        self.domain = domain
        self.table = f"memory_data.{domain}_memories"
        self.sql = pg_connect(dsn)
        self.hand = pg_connect(dsn)
        self.exact = pg_connect(dsn)
        self.exact.execute("SET enable_indexscan = off")
        self.exact.execute("SET enable_bitmapscan = off")
        self.store = MemoryStore.connect(dsn, embedder=None)
        self.store.conn.prepare_threshold = None
        self.ef = None
        self.faiss = None
        self.faiss_build_s = None
        if vecs is not None:
            try:
                import faiss
            except ImportError:
                faiss = None
            if faiss is not None:
                t0 = time.perf_counter()
                index = faiss.IndexHNSWFlat(vecs.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = HNSW_EFC
                index.add(vecs)
                self.faiss_build_s = round(time.perf_counter() - t0, 2)
                faiss.omp_set_num_threads(faiss_threads)
                self.faiss = index

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        for conn in (self.sql, self.hand, self.store.conn):
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        if self.faiss is not None:
            self.faiss.hnsw.efSearch = ef

    def q_sql(self, q, prepare=None):
        extra, args = ef_arg(self.ef)
        rows = self.sql.execute(
            f"SELECT * FROM memory.search(domain => %s, query_embedding => %s, k => %s{extra})",
            (self.domain, q, K, *args), prepare=prepare).fetchall()
        return [int(r[0]) for r in rows]

    def q_client(self, q):
        return [int(r["id"]) for r in self.store.search(q, domain=self.domain, k=K, ef_search=self.ef)]

    def _hand(self, conn, q):
        rows = conn.execute(
            f"SELECT id, content, metadata, 1 - (embedding <=> %(q)s) AS similarity,"
            f" embedding <=> %(q)s AS distance, created_at, updated_at FROM {self.table}"
            f" ORDER BY embedding <=> %(q)s LIMIT %(k)s", {"q": q, "k": K}).fetchall()
        return [int(r[0]) for r in rows]

    def q_hand(self, q):
        return self._hand(self.hand, q)

    def q_exact(self, q):
        return self._hand(self.exact, q)

    def q_faiss(self, qv):
        _, idx = self.faiss.search(qv.reshape(1, -1), K)
        return [int(i) for i in idx[0]]

    def close(self):
        for c in (self.sql, self.hand, self.exact):
            c.close()
        self.store.close()


def sweep(c: Contenders, qvecs: np.ndarray, truth: np.ndarray, efs: list[int],
          exact_queries: int) -> dict[str, Any]:
    from pgvector import Vector

    qs = [Vector(q) for q in qvecs]
    out: dict[str, list] = {"memory.search (SQL)": [], "MemoryStore.search (Python)": [],
                            "hand-written pgvector query": []}
    if c.faiss is not None:
        out["FAISS HNSW (in process)"] = []
    for ef in efs:
        c.set_ef(ef)
        fns = {"memory.search (SQL)": lambda i: c.q_sql(qs[i]),
               "MemoryStore.search (Python)": lambda i: c.q_client(qs[i]),
               "hand-written pgvector query": lambda i: c.q_hand(qs[i])}
        if c.faiss is not None:
            fns["FAISS HNSW (in process)"] = lambda i: c.q_faiss(qvecs[i])
        for name, (timing, res) in lib.time_interleaved(fns, len(qs)).items():
            out[name].append({"ef_search": ef, "recall": round(lib.recall(res, truth, K), 4),
                              **vars(timing)})
        log(f"  ef={ef}: " + ", ".join(f"{n.split(' ')[0]} r={out[n][-1]['recall']:.3f} "
                                       f"p50={out[n][-1]['p50_ms']:.2f}ms" for n in out))
    nx = min(exact_queries, len(qs))
    timing, res = lib.time_queries(c.q_exact, qs[:nx], warmup=2)
    out["exact (sequential scan)"] = [{"ef_search": None, "recall": round(lib.recall(res, truth[:nx], K), 4),
                                       **vars(timing)}]
    return out


def overhead_breakdown(c: Contenders, qvecs: np.ndarray, ef: int) -> dict[str, Any]:
    """Where memory.search's time goes beyond the hand-written query, by statement."""
    from pgvector import Vector

    c.set_ef(ef)
    qs = [Vector(q) for q in qvecs]
    conn = c.sql
    # The fixed cost, without the index work: the same calls on an empty domain.
    drop_if_exists(conn, "empty")
    conn.execute("SELECT memory.create_domain(domain => 'empty', dimension => %s)", (DIM,))
    extra, args = ef_arg(ef)
    stmts_empty = {
        "memory.search, empty domain": (lambda q: conn.execute(
            f"SELECT * FROM memory.search(domain => 'empty', query_embedding => %s, k => %s{extra})",
            (q, K, *args)).fetchall()),
        "hand-written query, empty table": (lambda q: c.hand.execute(
            "SELECT id, content, metadata, 1 - (embedding <=> %(q)s) AS similarity,"
            " embedding <=> %(q)s AS distance, created_at, updated_at FROM memory_data.empty_memories"
            " ORDER BY embedding <=> %(q)s LIMIT %(k)s", {"q": q, "k": K}).fetchall()),
    }
    stmts = {
        "round trip (SELECT 1)": (lambda q: conn.execute("SELECT 1").fetchall()),
        "domain lookup (memory_private._domain)": (
            lambda q: conn.execute("SELECT memory_private._domain(%s)", (c.domain,)).fetchall()),
        "hand-written query": c.q_hand,
        "memory.search": c.q_sql,
        # prepare=True: what psycopg does by itself after 5 calls (its default threshold)
        "hand-written query, prepared": (lambda q: c.hand.execute(
            f"SELECT id, content, metadata, 1 - (embedding <=> %(q)s) AS similarity,"
            f" embedding <=> %(q)s AS distance, created_at, updated_at FROM {c.table}"
            f" ORDER BY embedding <=> %(q)s LIMIT %(k)s", {"q": q, "k": K}, prepare=True).fetchall()),
        "memory.search, prepared": (lambda q: c.q_sql(q, prepare=True)),
    }
    stmts.update(stmts_empty)
    res = lib.time_interleaved({name: (lambda i, fn=fn: fn(qs[i])) for name, fn in stmts.items()},
                               len(qs))
    out = {name: vars(t) for name, (t, _) in res.items()}
    conn.execute("SELECT memory.drop_domain('empty')")
    return out


def filter_cost(c: Contenders, vecs, qvecs, masks, ef: int) -> list[dict]:
    from pgvector import Vector

    c.set_ef(ef)
    qs = [Vector(q) for q in qvecs]
    rows = []
    base_t, base_res = lib.time_queries(c.q_sql, qs)
    rows.append({"filter": "none", "selectivity": 1.0, "recall": round(lib.recall(
        base_res, lib.exact_knn(vecs, qvecs, K), K), 4), "rows_returned": float(np.mean(
            [len(r) for r in base_res])), **vars(base_t)})
    for key, sel in (("f50", 0.5), ("f10", 0.1), ("f1", 0.01)):
        truth = lib.exact_knn(vecs, qvecs, K, mask=masks[key])
        flt = Jsonb({key: 1})

        def fn(q, flt=flt):
            extra, args = ef_arg(ef)
            res = c.sql.execute(
                "SELECT * FROM memory.search(domain => %s, query_embedding => %s, k => %s,"
                f" filter => %s{extra})", (c.domain, q, K, flt, *args)).fetchall()
            return [int(r[0]) for r in res]

        t, res = lib.time_queries(fn, qs)
        rows.append({"filter": json.dumps({key: 1}), "selectivity": sel,
                     "matching_rows": int(masks[key].sum()),
                     "recall": round(lib.recall(res, truth, K), 4),
                     "rows_returned": float(np.mean([len(r) for r in res])), **vars(t)})
        log(f"  filter {key}: recall {rows[-1]['recall']} rows {rows[-1]['rows_returned']} "
            f"p50 {t.p50_ms} ms")
    return rows


# -- sections ------------------------------------------------------------------------------------
def real_data(s) -> dict:
    if s["real_source"] == "real":
        import corpus

        log(f"real corpus: {s['real_rows']} passages + {s['queries']} held-out queries "
            "(cached in bench/cache/ after the first run)")
        d = corpus.embed_cached(s["real_rows"], s["queries"], log=lambda m: log(m))
        d["texts"] = [t.replace("\x00", "") for t in d["texts"]]  # PostgreSQL text has no NUL
        d["source"] = "real"
        return d
    vecs = lib.clustered(s["real_rows"] + s["queries"], DIM, seed=1)
    return {"texts": [f"synthetic passage {i}" for i in range(s["real_rows"])],
            "vectors": vecs[:s["real_rows"]], "queries": vecs[s["real_rows"]:],
            "source": "synthetic"}


def section_search(dsn, conn, s, data) -> dict:
    vecs, qvecs = data["vectors"], data["queries"]
    n = len(vecs)
    log(f"search: loading {n} rows through the bulk path")
    metas, masks = metas_for(n, seed=7)
    load = bulk_load_domain(conn, "real", [str(i) for i in range(n)], data["texts"], vecs, metas)
    log(f"  {load}")
    truth = lib.exact_knn(vecs, qvecs, K)
    c = Contenders(dsn, "real", vecs)
    try:
        log(f"  FAISS HNSW build {c.faiss_build_s} s")
        res = {"rows": n, "queries": len(qvecs), "load": load, "faiss_build_seconds": c.faiss_build_s,
               "sweep": sweep(c, qvecs, truth, s["ef"], s["exact_queries"])}
        ef_ok = pick_ef(res["sweep"]["memory.search (SQL)"], 0.95) or max(s["ef"])
        res["target_ef"] = ef_ok
        log(f"  overhead breakdown at ef={ef_ok}")
        res["overhead"] = overhead_breakdown(c, qvecs[: min(300, len(qvecs))], ef_ok)
        log("  filters")
        nq = min(s["filter_queries"], len(qvecs))
        res["filters"] = filter_cost(c, vecs, qvecs[:nq], masks, ef_ok)
    finally:
        c.close()
    return res


def pick_ef(rows: list[dict], target: float) -> int | None:
    for r in rows:
        if r["recall"] >= target:
            return r["ef_search"]
    return None


def section_segmentation(dsn, conn, s) -> dict:
    """D domains x R rows (memory_data tables) vs one LangChain-style shared table."""
    from pgvector import Vector

    D, R = s["seg_domains"], s["seg_rows"]
    rng = np.random.default_rng(11)
    # Domains share one embedding space: each draws from 60 of the same 100 topic centres
    # (per-user or per-agent memories overlap in topic; that is when a shared table filters most).
    centers = lib.normalize(rng.standard_normal((100, DIM)).astype(np.float32))
    per_q = max(1, s["queries"] // (2 * D))
    data, queries = [], []
    for d in range(D):
        mine = centers[rng.choice(len(centers), 60, replace=False)]
        v = lib.clustered(R + per_q, DIM, centers=mine, seed=100 + d)
        data.append(v[:R])
        queries.append(v[R:])
    log(f"segmentation: {D} domains x {R} rows vs one shared table of {D * R}")
    seg_load_s = 0.0
    for d in range(D):
        ids = [str(i) for i in range(R)]
        metas = [b"{}"] * R
        t0 = time.perf_counter()
        bulk_load_domain(conn, f"seg{d}", ids, [f"doc {i}" for i in range(R)], data[d], metas)
        seg_load_s += time.perf_counter() - t0
    # LangChain PGVector's layout: langchain_pg_collection + langchain_pg_embedding
    conn.execute("DROP SCHEMA IF EXISTS bench_langchain CASCADE")
    conn.execute("CREATE SCHEMA bench_langchain")
    conn.execute("CREATE TABLE bench_langchain.langchain_pg_collection (uuid uuid PRIMARY KEY,"
                 " name varchar NOT NULL UNIQUE, cmetadata json)")
    conn.execute(f"CREATE TABLE bench_langchain.langchain_pg_embedding (id varchar PRIMARY KEY,"
                 f" collection_id uuid REFERENCES bench_langchain.langchain_pg_collection (uuid)"
                 f" ON DELETE CASCADE, embedding vector({DIM}), document varchar, cmetadata jsonb)")
    conn.execute("CREATE INDEX ix_cmetadata_gin ON bench_langchain.langchain_pg_embedding"
                 " USING gin (cmetadata jsonb_path_ops)")
    import uuid

    cids = [uuid.UUID(int=d + 1) for d in range(D)]
    for d in range(D):
        conn.execute("INSERT INTO bench_langchain.langchain_pg_collection VALUES (%s, %s, '{}')",
                     (cids[d], f"seg{d}"))
    t0 = time.perf_counter()
    for d in range(D):
        ids = [f"{d}:{i}" for i in range(R)]
        copy_rows(conn, "bench_langchain.langchain_pg_embedding",
                  ["id", "document", "embedding", "cmetadata", "collection_id"], ids,
                  [f"doc {i}" for i in range(R)], data[d], [b"{}"] * R,
                  extra=[cids[d].bytes] * R)
    conn.execute(f"CREATE INDEX ON bench_langchain.langchain_pg_embedding USING hnsw"
                 f" (embedding vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EFC})")
    conn.execute("ANALYZE bench_langchain.langchain_pg_embedding")
    shared_load_s = time.perf_counter() - t0
    log(f"  loaded: domains {seg_load_s:.1f} s, shared table {shared_load_s:.1f} s")

    truths = [lib.exact_knn(data[d], queries[d], K) for d in range(D)]
    qlist = [(d, Vector(q)) for d in range(D) for q in queries[d]]
    truth_all = np.concatenate(truths)
    a = pg_connect(dsn)
    cur_ef = [None]
    modes = {"off": pg_connect(dsn), "strict_order": pg_connect(dsn),
             "relaxed_order": pg_connect(dsn)}
    for mode, conn_m in modes.items():
        conn_m.execute(f"SET hnsw.iterative_scan = {mode}")

    def q_domain(i):
        d, q = qlist[i]
        extra, args = ef_arg(cur_ef[0])
        rows = a.execute("SELECT * FROM memory.search(domain => %s, query_embedding => %s,"
                         f" k => %s{extra})", (f"seg{d}", q, K, *args)).fetchall()
        return [int(r[0]) for r in rows]

    def q_shared(i, conn_m):
        d, q = qlist[i]
        rows = conn_m.execute(
            "SELECT e.id, e.document, e.cmetadata, e.embedding <=> %(q)s AS distance"
            " FROM bench_langchain.langchain_pg_embedding AS e"
            " WHERE e.collection_id = %(c)s ORDER BY e.embedding <=> %(q)s LIMIT %(k)s",
            {"q": q, "c": cids[d], "k": K}).fetchall()
        return [int(r[0].split(":")[1]) for r in rows]

    out = {"domains": D, "rows_per_domain": R, "queries": len(qlist),
           "load_seconds": {"domains": round(seg_load_s, 1), "shared": round(shared_load_s, 1)},
           "index_bytes": {"domains": sum(index_size(conn, f"memory_data.seg{d}_memories") for d in range(D)),
                           "shared": index_size(conn, "bench_langchain.langchain_pg_embedding")},
           "runs": []}
    for ef in (40, 100, 200):
        cur_ef[0] = ef
        for c_ in [a, *modes.values()]:
            c_.execute(f"SET hnsw.ef_search = {ef}")
        fns = {"domain table (memory.search)": q_domain}
        for mode, conn_m in modes.items():
            fns[f"shared table, iterative scan {mode}"] = (lambda i, cm=conn_m: q_shared(i, cm))
        for name, (t, res) in lib.time_interleaved(fns, len(qlist)).items():
            out["runs"].append({"engine": name, "ef_search": ef,
                                "recall": round(lib.recall(res, truth_all, K), 4),
                                "rows_returned": round(float(np.mean([len(r) for r in res])), 2),
                                "short_results_pct": round(100 * float(np.mean(
                                    [len(r) < K for r in res])), 1), **vars(t)})
            r = out["runs"][-1]
            log(f"  ef={ef} {name}: recall {r['recall']} rows {r['rows_returned']} p50 {r['p50_ms']}"
                f" p99 {r['p99_ms']}")
    for c_ in [a, *modes.values()]:
        c_.close()
    conn.execute("DROP SCHEMA bench_langchain CASCADE")
    for d in range(D):
        conn.execute("SELECT memory.drop_domain(%s)", (f"seg{d}",))
    return out


def section_ingest(dsn, conn, s, data) -> dict:
    from pgvector import Vector

    n = min(s["ingest_rows"], len(data["vectors"]))
    vecs = data["vectors"][:n]
    texts = data["texts"][:n]
    metas_b = [b'{"source": "bench"}'] * n
    store = MemoryStore.connect(dsn, embedder=None)
    store.conn.prepare_threshold = None
    vec_objs = [Vector(v) for v in vecs]
    out = {"rows": n, "runs": []}
    batch = 1000
    for with_index in (True, False):
        methods = ("store_many", "binary COPY") if with_index else (
            "store_many", "binary COPY", "INSERT ... SELECT unnest (no function)")
        for method in methods:
            dom = f"ingest_{'idx' if with_index else 'noidx'}_{method.split()[0].lower()}"
            drop_if_exists(conn, dom)
            conn.execute("SELECT memory.create_domain(domain => %s, dimension => %s)", (dom, DIM))
            if not with_index:
                conn.execute("SELECT memory.bulk_load_begin(%s)", (dom,))
            ids = [f"r{i}" for i in range(n)]
            t0 = time.perf_counter()
            if method == "store_many":
                for st in range(0, n, batch):
                    store.store_many(texts[st:st + batch], domain=dom,
                                     metadatas=[{"source": "bench"}] * len(ids[st:st + batch]),
                                     embeddings=vec_objs[st:st + batch], ids=ids[st:st + batch])
            elif method.startswith("INSERT"):
                for st in range(0, n, batch):
                    conn.execute(
                        f"INSERT INTO memory_data.{dom}_memories (id, content, metadata, embedding)"
                        " SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[], %b::vector[])",
                        (ids[st:st + batch], texts[st:st + batch],
                         [Jsonb({"source": "bench"})] * len(ids[st:st + batch]),
                         vec_objs[st:st + batch]))
            else:
                copy_rows(conn, f"memory_data.{dom}_memories",
                          ["id", "content", "embedding", "metadata"], ids, texts, vecs, metas_b)
            secs = time.perf_counter() - t0
            row = {"method": method, "index_present": with_index, "seconds": round(secs, 2),
                   "rows_per_s": round(n / secs)}
            if not with_index:
                t0 = time.perf_counter()
                conn.execute("SELECT memory.bulk_load_finish(%s)", (dom,))
                row["build_seconds"] = round(time.perf_counter() - t0, 2)
                row["rows_per_s_incl_build"] = round(n / (secs + row["build_seconds"]))
            out["runs"].append(row)
            log(f"  ingest {row}")
            conn.execute("SELECT memory.drop_domain(%s)", (dom,))
    store.close()
    return out


class FakeEmbedder:
    """Deterministic hash embedder for --embedder fake (the tiny test run): no model needed."""

    name = "fake"
    model = "fake-hash"
    dimension = DIM

    def embed(self, texts):
        out = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % 2**32)
            v = rng.standard_normal(DIM).astype(np.float32)
            out.append((v / np.linalg.norm(v)).tolist())
        return out

    def close(self):
        pass


def section_backfill(dsn, conn, s, data) -> dict:
    from pgmemo.worker import Worker

    n = min(s["backfill_rows"], len(data["texts"]))
    texts = data["texts"][:n]
    if s["embedder"] == "local":
        import torch

        from pgmemo.embedders.local import LocalEmbedder

        import os

        torch.set_num_threads(os.cpu_count() or 1)
        emb = LocalEmbedder(batch_size=64)
    else:
        emb = FakeEmbedder()
    batch = 64
    emb.embed(texts[:batch])  # warm up at full batch shape

    def embed_only() -> float:
        t0 = time.perf_counter()
        for st in range(0, n, batch):
            emb.embed(texts[st:st + batch])
        return time.perf_counter() - t0

    # Embedding alone before and after the worker run: the faster of the two is the reference
    # (the conservative choice on a machine whose load drifts).
    embed_runs = [embed_only()]
    drop_if_exists(conn, "backfill")
    conn.execute("SELECT memory.create_domain(domain => 'backfill', dimension => %s)", (DIM,))
    store = MemoryStore.connect(dsn, embedder=None)
    for st in range(0, n, 1000):
        store.store_many(texts[st:st + 1000], domain="backfill")
    store.close()
    t0 = time.perf_counter()
    w = Worker(dsn, emb, batch_size=batch, concurrency=2, once=True, poll=0.2,
               heartbeat_every=5, maintenance_every=3600)
    stats = w.run()
    worker_s = time.perf_counter() - t0
    embed_runs.append(embed_only())
    embed_s = min(embed_runs)
    done = conn.execute("SELECT count(*) FROM memory_data.backfill_memories"
                        " WHERE embedding IS NOT NULL").fetchone()[0]
    conn.execute("SELECT memory.drop_domain('backfill')")
    out = {"rows": n, "embedder": getattr(emb, "model", "?"), "embed_only_seconds": round(embed_s, 2),
           "embed_only_per_s": round(n / embed_s, 1), "embed_only_runs": [round(x, 2) for x in embed_runs],
           "worker_seconds": round(worker_s, 2),
           "worker_per_s": round(n / worker_s, 1), "ratio": round(worker_s / embed_s, 3),
           "embedded_rows": int(done), "worker_batch_size": batch, "worker_concurrency": 2,
           "worker_stats": stats.snapshot() if hasattr(stats, "snapshot") else None}
    log(f"  backfill {out}")
    return out


def section_big(dsn, conn, s) -> dict:
    n = s["big_rows"]
    nq = 200
    log(f"big: {n} synthetic clustered rows")
    vecs = lib.clustered(n + nq, DIM, clusters=1000, seed=5)
    qvecs, vecs = vecs[n:], vecs[:n]
    metas = [b"{}"] * n
    load = bulk_load_domain(conn, "big", [str(i) for i in range(n)], [f"doc {i}" for i in range(n)],
                            vecs, metas)
    log(f"  {load}")
    truth = lib.exact_knn(vecs, qvecs, K)
    c = Contenders(dsn, "big", None)
    try:
        sw = sweep(c, qvecs, truth, [40, 100, 200, 400], 20)
    finally:
        c.close()
    conn.execute("SELECT memory.drop_domain('big')")
    return {"rows": n, "queries": nq, "load": load, "sweep": sw}


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="add the 1M-row synthetic runs (bench-full)")
    p.add_argument("--tiny", action="store_true", help="seconds-long run on synthetic data (tests)")
    p.add_argument("--dsn", help="use this database instead of a fresh embedded server")
    p.add_argument("--name", help="results name (default: bench, bench-full or tiny)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="file whose bench:begin/end section is regenerated ('-' for none)")
    p.add_argument("--sections", default="search,segmentation,ingest,backfill,big",
                   help="comma-separated subset to run")
    for key, typ in (("real_rows", int), ("queries", int), ("seg_domains", int), ("seg_rows", int),
                     ("ingest_rows", int), ("backfill_rows", int), ("big_rows", int)):
        p.add_argument("--" + key.replace("_", "-"), type=typ, dest=key)
    p.add_argument("--real-source", choices=["real", "synthetic"], dest="real_source")
    p.add_argument("--embedder", choices=["local", "fake"], dest="embedder")
    args = p.parse_args(argv)
    s = sizes(args)
    name = args.name or ("tiny" if args.tiny else "bench-full" if args.full else "bench")
    sections = set(args.sections.split(","))

    tmp = None
    started = time.time()
    if args.dsn:
        dsn = args.dsn
    else:
        from pgmemo import embedded

        tmp = tempfile.mkdtemp(prefix="pgmemo-bench-")
        log(f"starting the embedded server in {tmp}")
        server = embedded.ensure_running(Path(tmp) / "data")
        dsn = server.dsn
    try:
        migrate(dsn)
        conn = pg_connect(dsn)
        result: dict[str, Any] = {"name": name, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "sizes": s, "machine": lib.machine_info(),
                                  "server": server_settings(conn), "loadavg_start": lib.loadavg(),
                                  "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EFC}, "k": K}
        data = None
        if sections & {"search", "ingest", "backfill"}:
            data = real_data(s)
            result["corpus"] = {k: v for k, v in data.items()
                                if k not in ("texts", "vectors", "query_texts", "queries")}
        if "search" in sections:
            result["search"] = section_search(dsn, conn, s, data)
            result["loadavg_after_search"] = lib.loadavg()
        if "segmentation" in sections and s["seg_domains"] > 0:
            result["segmentation"] = section_segmentation(dsn, conn, s)
        if "ingest" in sections:
            log("ingest")
            result["ingest"] = section_ingest(dsn, conn, s, data)
        if "backfill" in sections and s["backfill_rows"] > 0:
            log("backfill")
            result["backfill"] = section_backfill(dsn, conn, s, data)
        if "big" in sections and s["big_rows"] > 0:
            result["big"] = section_big(dsn, conn, s)
        result["loadavg_end"] = lib.loadavg()
        result["seconds"] = round(time.time() - started, 1)
        conn.close()
    finally:
        if tmp:
            from pgmemo import embedded

            embedded.stop(Path(tmp) / "data")
            shutil.rmtree(tmp, ignore_errors=True)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    png = report.plot(result, args.results_dir / f"{name}_recall_latency.png")
    if str(args.markdown) != "-":
        report.write_markdown(result, args.markdown, png)
    log(f"done in {result['seconds']} s: {args.results_dir / (name + '.json')}")
    return result


if __name__ == "__main__":
    main()
