"""`pgmemo bench` (a quick benchmark against the configured database) and `pgmemo bulk-load`.

The full side-by-side suite (FAISS, the shared-table layout, ingest, backfill, 1M rows) lives in
bench/run.py of the source checkout (`make bench`); this command needs only the package: it
loads synthetic clustered vectors into a scratch domain through the bulk-load path, measures
memory.search's recall@10 (against exact brute force in numpy) and latency over an ef_search
sweep, then drops the domain.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from . import config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _clustered(n: int, dim: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(10, n // 1000), dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, dim)).astype(
        np.float32) * (0.35 / np.sqrt(dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def quick_bench(dsn: str, rows: int = 10_000, queries: int = 200, dim: int = 384,
                efs: tuple[int, ...] = (10, 40, 100), k: int = 10, keep: bool = False,
                echo=None) -> dict[str, Any]:
    """Load `rows` vectors into a scratch domain and time memory.search; returns the figures."""
    import numpy as np
    from pgvector import Vector

    from .client import MemoryStore

    echo = echo or (lambda m: None)
    data = _clustered(rows + queries, dim, seed=42)
    vecs, qvecs = data[:rows], data[rows:]
    domain = f"pgmemo_bench_{os.getpid()}"
    store = MemoryStore.connect(dsn, embedder=None)
    store.conn.prepare_threshold = None  # every call parsed and planned, as in bench/run.py
    out: dict[str, Any] = {"rows": rows, "queries": queries, "dimension": dim, "k": k,
                           "domain": domain}
    try:
        store.create_domain(domain, dimension=dim)
        store.bulk_load_begin(domain)
        t0 = time.perf_counter()
        batch = 1000
        for s in range(0, rows, batch):
            store.store_many([f"bench row {i}" for i in range(s, min(rows, s + batch))],
                             domain=domain, embeddings=[Vector(v) for v in vecs[s:s + batch]],
                             ids=[str(i) for i in range(s, min(rows, s + batch))])
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.bulk_load_finish(domain)
        build_s = time.perf_counter() - t0
        out["store_many_rows_per_s"] = round(rows / load_s)
        out["index_build_seconds"] = round(build_s, 2)
        echo(f"loaded {rows} x {dim} with store_many: {out['store_many_rows_per_s']} rows/s; "
             f"indexes built in {build_s:.2f} s")

        sims = qvecs @ vecs.T
        truth = np.argsort(-sims, axis=1)[:, :k]
        qs = [Vector(q) for q in qvecs]
        out["sweep"] = []
        for ef in efs:
            for q in qs[:10]:
                store.search(q, domain=domain, k=k, ef_search=ef)
            times, hits = [], 0
            for q, want in zip(qs, truth):
                t0 = time.perf_counter()
                got = store.search(q, domain=domain, k=k, ef_search=ef)
                times.append(time.perf_counter() - t0)
                hits += len({int(r["id"]) for r in got} & set(want.tolist()))
            ms = np.array(times) * 1000
            row = {"ef_search": ef, "recall": round(hits / (len(qs) * k), 4),
                   "p50_ms": round(float(np.percentile(ms, 50)), 3),
                   "p99_ms": round(float(np.percentile(ms, 99)), 3)}
            out["sweep"].append(row)
            echo(f"ef_search={ef:<4} recall@{k} {row['recall']:.3f}  p50 {row['p50_ms']:.2f} ms"
                 f"  p99 {row['p99_ms']:.2f} ms")
    finally:
        if not keep:
            try:
                store.drop_domain(domain)
            except Exception:  # noqa: BLE001 - best effort cleanup, the error above matters
                pass
        store.close()
    return out


def register(main: click.Group) -> None:
    @main.command("bench", context_settings=CONTEXT)
    @click.option("--rows", type=int, default=10_000, show_default=True, help="Rows to load.")
    @click.option("--queries", type=int, default=200, show_default=True, help="Queries to time.")
    @click.option("--dimension", type=int, default=384, show_default=True,
                  help="Dimension of the synthetic vectors.")
    @click.option("--ef", default="10,40,100", show_default=True,
                  help="Comma-separated hnsw.ef_search values to sweep.")
    @click.option("--keep", is_flag=True, help="Keep the scratch domain.")
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def bench(ctx: click.Context, rows: int, queries: int, dimension: int, ef: str, keep: bool,
              as_json: bool) -> None:
        """A quick benchmark of memory.search on the configured database.

        Loads synthetic clustered vectors into a scratch domain (bulk-load path), sweeps
        hnsw.ef_search and prints recall@10 and p50/p99 latency, then drops the domain. The
        full side-by-side suite is `make bench` in the source checkout.
        """
        if rows < 10 or queries < 1:
            raise click.BadParameter("need --rows >= 10 and --queries >= 1")
        try:
            efs = tuple(int(x) for x in ef.split(",") if x.strip())
        except ValueError:
            raise click.BadParameter("a comma-separated list of integers", param_hint="--ef") from None
        dsn = config.resolve_dsn(getattr(ctx.obj, "dsn", None))
        result = quick_bench(dsn, rows=rows, queries=queries, dim=dimension, efs=efs, keep=keep,
                             echo=None if as_json else click.echo)
        if as_json:
            click.echo(json.dumps(result, indent=2))

    @main.group("bulk-load", context_settings=CONTEXT)
    def bulk_load() -> None:
        """Defer a domain's indexes for a bulk load, then build them once."""

    @bulk_load.command("begin")
    @click.argument("domain")
    @click.pass_context
    def bulk_begin(ctx: click.Context, domain: str) -> None:
        """Drop DOMAIN's vector and secondary indexes and pause its enqueue trigger."""
        from .client import MemoryStore

        with MemoryStore.connect(config.resolve_dsn(getattr(ctx.obj, "dsn", None)),
                                 embedder=None) as store:
            dropped = store.bulk_load_begin(domain)
        click.echo(f"bulk load of {domain} started; deferred: {', '.join(dropped) or 'nothing'}")

    @bulk_load.command("finish")
    @click.argument("domain")
    @click.option("--maintenance-work-mem", default=None, help="e.g. 2GB (default: the server's).")
    @click.option("--parallel-workers", type=int, default=None,
                  help="max_parallel_maintenance_workers for the build (default: the server's).")
    @click.pass_context
    def bulk_finish(ctx: click.Context, domain: str, maintenance_work_mem: str | None,
                    parallel_workers: int | None) -> None:
        """Build DOMAIN's indexes once and queue rows loaded without embeddings."""
        from .client import MemoryStore

        with MemoryStore.connect(config.resolve_dsn(getattr(ctx.obj, "dsn", None)),
                                 embedder=None) as store:
            info = store.bulk_load_finish(domain, maintenance_work_mem, parallel_workers)
        click.echo(json.dumps(info))
