"""Search quality evaluation: does the right memory come back first?

Real text, available offline, with known answers and no hand labelling: the docstrings of the
Python standard library and installed packages. For a function or class with a docstring,
the *query* is its one-line summary and the one *relevant document* is the rest of the
docstring (prefixed with the qualified name), so the query's words are never copied verbatim
into its answer. Summaries that occur more than once, duplicate bodies and short ones are
dropped; documents and queries are sampled deterministically (seeded).

Documents are stored WITHOUT embeddings into a fresh domain and embedded by the local model
(all-MiniLM-L6-v2) through the real queue and worker; queries are embedded by the same model.
Then every query runs through memory.search_text, memory.search (HNSW), memory.search_hybrid,
and exact vector search (memory.search with index scans disabled: a sequential scan, the
ceiling HNSW approximates). Reported: MRR@10, nDCG@10, recall@10 and client-side p50 latency.

Weights and knobs are tuned on a separate *dev* query set (other documents' summaries) and
reported on the *test* query set, so the defaults are not fitted to the numbers shown.

    python bench/quality.py              # full run: BENCHMARKS.md + bench/results/quality.json
    python bench/quality.py --tiny       # 200 documents, 50 queries, prints only
    python bench/quality.py --dsn URL    # a database of yours (domain quality_eval, dropped after)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import platform
import random
import re
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "quality_eval"
EVAL_DATABASE = "pgmemo_eval"
MODES = ("search_text", "search_text_any", "search", "search_hybrid", "exact")
MODE_PARAMS: dict[str, dict[str, Any]] = {"search_text_any": {"match": "any"}}
K = 10

# Sources of docstrings: the standard library plus packages pgmemo depends on (always present
# where pgmemo is installed) and a few common ones when installed. The tiny run uses a part.
PACKAGES = ("numpy", "click", "httpx", "psycopg", "jinja2", "networkx")
TINY_PACKAGES = ("click", "httpx", "psycopg")
SKIP_PARTS = {"test", "tests", "testing", "idlelib", "lib2to3", "site-packages", "turtledemo",
              "ensurepip", "__pycache__", "_vendor", "tkinter", "pydoc_data"}
MAX_DOC_CHARS = 1500


@dataclass(frozen=True)
class Item:
    source: str
    qualname: str
    summary: str
    body: str

    @property
    def content(self) -> str:
        text = f"{self.qualname}: {self.body}"
        if len(text) > MAX_DOC_CHARS:
            text = text[:MAX_DOC_CHARS].rsplit(" ", 1)[0]
        return text


# -- corpus -----------------------------------------------------------------------------------
def _roots(tiny: bool) -> list[tuple[str, Path]]:
    site = Path(sysconfig.get_paths()["purelib"])
    roots: list[tuple[str, Path]] = []
    if not tiny:
        roots.append(("stdlib", Path(sysconfig.get_paths()["stdlib"])))
    for name in TINY_PACKAGES if tiny else PACKAGES:
        if (site / name).is_dir():
            roots.append((name, site / name))
    return roots


def _walk_docstrings(source: str, root: Path):
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP_PARTS for part in rel.parts) or path.stat().st_size > 400_000:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(rel.with_suffix("").parts)
        if source != "stdlib":
            module = source + "." + module
        module = module.removesuffix(".__init__")

        def visit(node: ast.AST, prefix: str):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qual = f"{prefix}.{child.name}"
                    doc = ast.get_docstring(child)
                    if doc:
                        yield qual, doc
                    if isinstance(child, ast.ClassDef):
                        yield from visit(child, qual)

        yield from visit(tree, module)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def load_corpus(tiny: bool) -> tuple[list[Item], dict[str, str]]:
    """Every usable (summary, body) pair, sorted deterministically, and the source versions."""
    raw: list[Item] = []
    versions: dict[str, str] = {}
    for source, root in _roots(tiny):
        versions[source] = (platform.python_version() if source == "stdlib"
                            else _version(source))
        for qual, doc in _walk_docstrings(source, root):
            lines = doc.strip().splitlines()
            if not lines:
                continue
            summary = lines[0].strip()
            body = " ".join(" ".join(lines[1:]).split())
            n_words = len(summary.split())
            if not (4 <= n_words <= 25) or len(body.split()) < 15 or summary.endswith(":"):
                continue
            raw.append(Item(source, qual, summary, body))
    # Ambiguous queries (a summary shared by several functions) and copies are dropped.
    summaries: dict[str, int] = {}
    bodies: dict[str, int] = {}
    for it in raw:
        summaries[_norm(it.summary)] = summaries.get(_norm(it.summary), 0) + 1
        bodies[_norm(it.body)[:300]] = bodies.get(_norm(it.body)[:300], 0) + 1
    items = [it for it in raw
             if summaries[_norm(it.summary)] == 1 and bodies[_norm(it.body)[:300]] == 1]
    items.sort(key=lambda it: (it.source, it.qualname))
    return items, versions


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "?"


def sample(items: list[Item], n_docs: int, n_test: int, n_dev: int, seed: int):
    """n_docs documents; test and dev queries drawn from disjoint documents among them."""
    if len(items) < n_docs:
        raise SystemExit(f"only {len(items)} usable docstrings, {n_docs} documents wanted")
    rng = random.Random(seed)
    docs = rng.sample(items, n_docs)
    order = list(range(n_docs))
    rng.shuffle(order)
    test = order[:n_test]
    dev = order[n_test:n_test + n_dev]
    return docs, test, dev


# -- database ---------------------------------------------------------------------------------
def prepare_database(dsn: str | None, keep: bool = False) -> tuple[str, bool]:
    """(DSN to evaluate in, whether it is our own throw-away database)."""
    import psycopg

    from pgmemo import config, embedded

    given = config.configured_dsn(dsn)
    if given:
        return given, False
    server = embedded.ensure_running()
    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (EVAL_DATABASE,)).fetchone()
        if exists and not keep:
            conn.execute(f'DROP DATABASE "{EVAL_DATABASE}" WITH (FORCE)')
        if not exists or not keep:
            conn.execute(f'CREATE DATABASE "{EVAL_DATABASE}"')
    return server.dsn_for(EVAL_DATABASE), True


def load_documents(dsn: str, docs: list[Item], embedder, log, reuse: bool = False) -> dict[str, Any]:
    """Store the documents without embeddings, then let the queue worker embed them."""
    from pgmemo.client import connect_raw
    from pgmemo.migrate import migrate

    migrate(dsn)
    with connect_raw(dsn) as conn:
        if reuse and conn.execute("SELECT 1 FROM memory.domains WHERE domain = %s",
                                  (DOMAIN,)).fetchone():
            row = conn.execute(
                f"SELECT md5(string_agg(content, E'\\x1e' ORDER BY id)) AS h, "
                f"count(*) FILTER (WHERE embedding IS NULL) AS missing "
                f"FROM memory_data.{DOMAIN}_memories").fetchone()
            want = hashlib.md5("\x1e".join(d.content for d in docs).encode()).hexdigest()
            if row["h"] == want and row["missing"] == 0:
                log("reusing the embedded documents already in the database (--reuse)")
                info = {"embed_seconds": None, "worker": "reused"}
                previous = ROOT / "bench" / "results" / "quality.json"
                if previous.exists():  # how they were embedded, when it was this corpus
                    old = json.loads(previous.read_text()).get("config", {})
                    if old.get("corpus_sha1") == hashlib.sha1(
                            "\n".join(d.content for d in docs).encode()).hexdigest()[:12]:
                        info = {"embed_seconds": old.get("embed_seconds"),
                                "worker": old.get("worker")}
                return info
        if conn.execute("SELECT 1 FROM memory.domains WHERE domain = %s", (DOMAIN,)).fetchone():
            conn.execute("SELECT memory.drop_domain(%s)", (DOMAIN,))
        conn.execute("SELECT memory.create_domain(%s, 384, 'cosine', %s)", (DOMAIN, embedder.model))
        ids = [f"d{i:05d}" for i in range(len(docs))]
        for start in range(0, len(docs), 500):
            chunk = slice(start, start + 500)
            conn.execute("SELECT count(*) FROM memory.store_many(%s, %s, ids => %s)",
                         (DOMAIN, [d.content for d in docs[chunk]], ids[chunk]))
    started = time.perf_counter()
    how = run_worker(dsn, embedder, log)
    seconds = time.perf_counter() - started
    with connect_raw(dsn) as conn:
        missing = conn.execute(
            f"SELECT count(*) AS n FROM memory_data.{DOMAIN}_memories WHERE embedding IS NULL"
        ).fetchone()["n"]
        if missing:
            raise SystemExit(f"{missing} documents were not embedded by the worker")
        conn.execute(f"ANALYZE memory_data.{DOMAIN}_memories")
    log(f"embedded {len(docs)} documents through the queue ({how}) in {seconds:.1f}s")
    return {"embed_seconds": round(seconds, 1), "worker": how}


def run_worker(dsn: str, embedder, log) -> str:
    """The real queue worker (pgmemo.worker, once); a minimal claim/complete loop without it."""
    try:
        from pgmemo.worker import Worker
    except ImportError:
        Worker = None  # noqa: N806
    if Worker is not None:
        import logging

        logging.getLogger("pgmemo.worker").setLevel(logging.WARNING)
        Worker(dsn, embedder, once=True, batch_size=64, domain=DOMAIN).run()
        return "pgmemo.worker.Worker(once=True)"
    from pgmemo.client import as_vector, connect_raw

    with connect_raw(dsn) as conn:
        while True:
            jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(64)").fetchall()
            if not jobs:
                return "claim/complete loop"
            vectors = embedder.embed([j["content"] for j in jobs])
            conn.execute("SELECT memory.complete_embedding_jobs(%s, %s)",
                         ([j["job_id"] for j in jobs], [as_vector(v) for v in vectors]))


# -- running queries --------------------------------------------------------------------------
def mode_sql(mode: str, params: dict[str, Any] | None = None) -> str:
    extra = "".join(f", {name} => %({name})s" for name in (params or {}))
    if mode in ("search_text", "search_text_any"):
        return f"SELECT id FROM memory.search_text(%(domain)s, %(q)s, k => %(k)s{extra})"
    if mode == "search":
        return f"SELECT id FROM memory.search(%(domain)s, %(v)s, k => %(k)s{extra})"
    if mode == "exact":
        # The same distance, without memory.search (which asks the planner for the index):
        # on the exact connection index scans are off, so this is a sequential scan and sort.
        return (f"SELECT id FROM memory_data.{DOMAIN}_memories WHERE embedding IS NOT NULL "
                f"ORDER BY embedding <=> %(v)s, id LIMIT %(k)s")
    if mode == "search_hybrid":
        return f"SELECT id FROM memory.search_hybrid(%(domain)s, %(q)s, %(v)s, k => %(k)s{extra})"
    raise ValueError(mode)


def run_mode(conn, mode: str, queries: list[tuple[str, Any, str]],
             params: dict[str, Any] | None = None) -> tuple[list[int | None], list[float]]:
    """Rank of the relevant document (None when not in the top K) and latency per query."""
    params = {**MODE_PARAMS.get(mode, {}), **(params or {})}
    sql = mode_sql(mode, params)
    ranks: list[int | None] = []
    times: list[float] = []
    for text, vec, relevant in queries:
        args = {"domain": DOMAIN, "q": text, "v": vec, "k": K, **(params or {})}
        started = time.perf_counter()
        rows = conn.execute(sql, args, prepare=False).fetchall()
        times.append(time.perf_counter() - started)
        ids = [r["id"] for r in rows]
        ranks.append(ids.index(relevant) + 1 if relevant in ids else None)
    return ranks, times


def metrics(ranks: list[int | None], times: list[float] | None = None) -> dict[str, float]:
    n = len(ranks)
    out = {
        "mrr@10": sum(1 / r for r in ranks if r) / n,
        "ndcg@10": sum(1 / math.log2(r + 1) for r in ranks if r) / n,  # one relevant document
        "recall@10": sum(1 for r in ranks if r) / n,
    }
    out = {k: round(v, 4) for k, v in out.items()}
    if times:
        ms = sorted(t * 1000 for t in times)
        out["p50_ms"] = round(statistics.median(ms), 2)
        out["p95_ms"] = round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2)
    return out


def exact_connection(dsn: str):
    """A connection on which memory.search cannot use an index: the exact (seq scan) ceiling."""
    from pgmemo.client import connect_raw

    conn = connect_raw(dsn)
    conn.execute("SET enable_indexscan = off")
    conn.execute("SET enable_bitmapscan = off")
    return conn


def check_exact_plan(conn) -> bool:
    """True when the k-NN query of the domain plans as a sequential scan on this connection."""
    d = conn.execute("SELECT d FROM memory_private.domains AS d WHERE d.domain = %s",
                     (DOMAIN,)).fetchone()
    if d is None:
        return False
    zero = "[" + ",".join(["0"] * 383 + ["1"]) + "]"
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + mode_sql("exact"),
                        {"v": zero, "k": K}, prepare=False).fetchone()
    text = json.dumps(plan)
    return "Seq Scan" in text and "Index Scan" not in text


# -- the evaluation ---------------------------------------------------------------------------
def evaluate(dsn: str | None = None, *, tiny: bool = False, n_docs: int | None = None,
             n_queries: int | None = None, seed: int = 8, sweep: bool = True,
             reuse: bool = False, log=None) -> dict[str, Any]:
    log = log or (lambda msg: print(msg, flush=True))
    from pgmemo.client import as_vector, connect_raw
    from pgmemo.embedders.local import LocalEmbedder

    n_docs = n_docs or (200 if tiny else 3000)
    n_queries = n_queries or (50 if tiny else 400)
    n_dev = 0 if tiny or not sweep else min(400, n_docs - n_queries)

    t0 = time.perf_counter()
    items, versions = load_corpus(tiny)
    docs, test_idx, dev_idx = sample(items, n_docs, n_queries, n_dev, seed)
    log(f"corpus: {len(items)} usable docstrings from {', '.join(versions)}; "
        f"{n_docs} documents, {len(test_idx)} test + {len(dev_idx)} dev queries "
        f"({time.perf_counter() - t0:.1f}s)")

    embedder = LocalEmbedder()
    eval_dsn, own_db = (dsn, False) if dsn else prepare_database(None, keep=reuse)
    load_info = load_documents(eval_dsn, docs, embedder, log, reuse)

    def queries(idx: list[int]):
        vecs = embedder.embed([docs[i].summary for i in idx])
        return [(docs[i].summary, as_vector(v), f"d{i:05d}") for i, v in zip(idx, vecs)]

    test_q = queries(test_idx)
    dev_q = queries(dev_idx) if dev_idx else []

    results: dict[str, Any] = {"modes": {}, "sweeps": {}}
    conn = connect_raw(eval_dsn)
    exact = exact_connection(eval_dsn)
    try:
        if not check_exact_plan(exact):
            raise SystemExit("exact vector search did not plan as a sequential scan")
        # Warm caches (index pages, the tsvector work) before timing anything.
        for mode in MODES:
            run_mode(exact if mode == "exact" else conn, mode, test_q[:20])

        if dev_q and sweep:
            results["sweeps"] = run_sweeps(conn, exact, dev_q, log)

        # Round robin over the modes, query by query, so a burst of load on the machine hits
        # every mode alike (the latency ratios are what the targets compare).
        per_mode: dict[str, tuple[list, list]] = {mode: ([], []) for mode in MODES}
        for q in test_q:
            for mode in MODES:
                ranks, times = run_mode(exact if mode == "exact" else conn, mode, [q])
                per_mode[mode][0].extend(ranks)
                per_mode[mode][1].extend(times)
        for mode in MODES:
            results["modes"][mode] = metrics(*per_mode[mode])
        # Per-query ranks of the defaults, for the record.
        results["random_mrr@10"] = round(sum(1 / r for r in range(1, K + 1)) / n_docs, 4)
    finally:
        conn.close()
        exact.close()
        if not own_db and dsn is None:
            pass
    if dsn:  # a database of the caller's: leave it as it was
        with connect_raw(eval_dsn) as c:
            c.execute("SELECT memory.drop_domain(%s)", (DOMAIN,))

    results["config"] = {
        "documents": n_docs, "test_queries": len(test_q), "dev_queries": len(dev_q),
        "seed": seed, "k": K, "usable_docstrings": len(items), "sources": versions,
        "model": embedder.model, "max_doc_chars": MAX_DOC_CHARS, "tiny": tiny,
        "corpus_sha1": hashlib.sha1("\n".join(d.content for d in docs).encode()).hexdigest()[:12],
        "python": platform.python_version(), "machine": platform.machine(),
        **load_info,
    }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def run_sweeps(conn, exact, dev_q, log) -> dict[str, Any]:
    """On the dev queries: hybrid weights, and HNSW ef_search against exact search."""
    out: dict[str, Any] = {}
    base = {m: metrics(run_mode(exact if m == "exact" else conn, m, dev_q)[0])
            for m in ("search_text", "search_text_any", "search", "exact")}
    out["dev_baselines"] = base
    rows = []
    for vw, tw, match in HYBRID_GRID:
        ranks, times = run_mode(conn, "search_hybrid", dev_q,
                                {"vector_weight": vw, "text_weight": tw, "text_match": match})
        rows.append({"vector_weight": vw, "text_weight": tw, "text_match": match,
                     **metrics(ranks, times)})
        log(f"  hybrid vector_weight={vw} text_weight={tw} text_match={match}: "
            f"MRR@10 {rows[-1]['mrr@10']} p50 {rows[-1]['p50_ms']}ms")
    out["hybrid"] = rows
    best = max(rows, key=lambda r: (r["mrr@10"], -abs(r["vector_weight"] - 1)))
    log(f"dev sweep: best hybrid weights vector={best['vector_weight']} "
        f"text={best['text_weight']} text_match={best['text_match']} MRR@10={best['mrr@10']} "
        f"(text {base['search_text']['mrr@10']}, vector {base['search']['mrr@10']})")
    ef_rows = []
    for ef in EF_GRID:
        ranks, times = run_mode(conn, "search", dev_q, {"ef_search": ef} if ef else None)
        ef_rows.append({"ef_search": ef, **metrics(ranks, times)})
        log(f"  ef_search={ef}: MRR@10 {ef_rows[-1]['mrr@10']} p50 {ef_rows[-1]['p50_ms']}ms")
    out["ef_search"] = ef_rows
    return out


HYBRID_GRID = [(1.0, 0.0, "all"), (1.0, 0.25, "all"), (1.0, 0.5, "all"), (1.0, 0.75, "all"),
               (1.0, 1.0, "all"), (0.75, 1.0, "all"), (0.5, 1.0, "all"), (1.0, 1.5, "all"),
               (1.0, 2.0, "all"), (1.0, 0.25, "any"), (1.0, 0.5, "any"), (1.0, 1.0, "any")]
EF_GRID = [None, 10, 20, 40, 100, 200]


# -- reporting --------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    lines = ["| mode | MRR@10 | nDCG@10 | recall@10 | p50 ms | p95 ms |",
             "|---|---:|---:|---:|---:|---:|"]
    names = {"search_text": "`search_text` (full text)",
             "search_text_any": "`search_text(match => 'any')`", "search": "`search` (HNSW)",
             "search_hybrid": "`search_hybrid`", "exact": "exact vector (seq scan, ceiling)"}
    for mode in MODES:
        m = results["modes"][mode]
        lines.append(f"| {names[mode]} | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | "
                     f"{m['recall@10']:.3f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    c = results["config"]
    src = ", ".join(f"{k} {v}" for k, v in c["sources"].items())
    out = [
        "## Search quality",
        "",
        f"`make eval` (bench/quality.py): {c['documents']} documents and {c['test_queries']} test "
        f"queries from the docstrings of {src} (query: a function's one-line summary; relevant "
        f"document: the rest of its docstring with the qualified name; seed {c['seed']}, corpus "
        f"{c['corpus_sha1']}). Embedded by {c['model']} through the queue ({c['worker']}, "
        f"{c['embed_seconds']}s). Defaults of every function; latency measured from the client "
        f"on the same machine (Python {c['python']}, {c['machine']}). Random ranking would score "
        f"MRR@10 {results['random_mrr@10']}.",
        "",
        table(results),
        "",
    ]
    sw = results.get("sweeps") or {}
    if sw.get("hybrid"):
        out += [f"Hybrid weight sweep on {c['dev_queries']} separate dev queries (the defaults "
                f"come from here; dev baselines: text MRR@10 "
                f"{sw['dev_baselines']['search_text']['mrr@10']:.3f}, vector "
                f"{sw['dev_baselines']['search']['mrr@10']:.3f}, exact "
                f"{sw['dev_baselines']['exact']['mrr@10']:.3f}):", "",
                "| vector_weight | text_weight | text_match | MRR@10 | nDCG@10 | recall@10 | p50 ms |",
                "|---:|---:|---|---:|---:|---:|---:|"]
        for r in sw["hybrid"]:
            out.append(f"| {r['vector_weight']} | {r['text_weight']} | {r['text_match']} | "
                       f"{r['mrr@10']:.3f} | "
                       f"{r['ndcg@10']:.3f} | {r['recall@10']:.3f} | {r['p50_ms']:.1f} |")
        out.append("")
    if sw.get("ef_search"):
        out += ["`memory.search(..., ef_search => N)` on the dev queries (NULL: the default):", "",
                "| ef_search | MRR@10 | recall@10 | p50 ms |", "|---:|---:|---:|---:|"]
        for r in sw["ef_search"]:
            out.append(f"| {r['ef_search'] if r['ef_search'] else 'NULL'} | {r['mrr@10']:.3f} | "
                       f"{r['recall@10']:.3f} | {r['p50_ms']:.1f} |")
        out.append("")
    out += targets(results) + [""]
    out += [
        "Findings behind the defaults (measured on this eval):", "",
        "- `search_text` keeps every word (`websearch_to_tsquery`): precise but a one-line "
        "summary rarely shares all its words with the answer (recall@10 0.17). "
        "`match => 'any'` ORs the words after dropping those in more than 5% of rows (from the "
        "full-text index's planner statistics, an IDF stand-in): 2.8x the MRR@10, at the price "
        "of ranking many more rows (each candidate's tsvector is computed; a stored tsvector "
        "column would remove that cost). ts_rank beat ts_rank_cd for OR queries (0.46 vs 0.17 "
        "on the dev set with all words kept) and a heavy start-of-memory weight hurt "
        "(0.36 with +0.5), so the start bonus is small (+0.1 of the first 200 characters' "
        "cover density) and applies to `match => 'all'` only.",
        "- Hybrid: equal-weight RRF already edged out the vector search here, but a lighter "
        "text weight (0.25) wins on the dev queries; the text list then only reorders close "
        "vector candidates. Using `match => 'any'` inside the hybrid made it worse and 5x slower.",
        "- HNSW: pgvector's default `hnsw.ef_search` 40 is 1-2.6% below exact MRR@10 here; 100 "
        "reaches exact on the dev queries. But pgvector's cost estimate grows with ef_search and "
        "at 3,000 rows the planner then chose a sequential scan + sort, 10x slower than the "
        "index (measured 21.9 ms vs 1.4 ms); `memory.search` therefore disables seq scans for "
        "its k-NN query (restored after the call).",
        "- Latencies in the sweeps ran mode after mode on a shared 2-core machine and are noisy; "
        "the main table runs the modes round-robin, query by query, so they share the load.",
        "",
    ]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets, each met or its miss stated with the measured numbers."""
    m = results["modes"]
    best_single = max(m["search"]["mrr@10"], m["search_text"]["mrr@10"])
    gap = (m["exact"]["mrr@10"] - m["search"]["mrr@10"]) / m["exact"]["mrr@10"]
    ratio = m["search_hybrid"]["p50_ms"] / m["search"]["p50_ms"]
    lines = ["Targets:", "",
             f"- hybrid MRR@10 {m['search_hybrid']['mrr@10']:.3f} >= best of search / search_text "
             f"{best_single:.3f}: {'met' if m['search_hybrid']['mrr@10'] >= best_single else 'MISSED'}.",
             f"- HNSW within 2% of exact MRR@10: {gap * 100:+.1f}% below exact: "
             f"{'met' if gap <= 0.02 else 'MISSED'}.",
             f"- hybrid p50 within 2x of search: {ratio:.2f}x "
             f"({m['search_hybrid']['p50_ms']:.1f} ms vs {m['search']['p50_ms']:.1f} ms): "
             f"{'met' if ratio <= 2 else 'MISSED'}."]
    if ratio > 2:
        lines.append(
            "  Cause, measured: at this size `search` is ~1 ms, most of it fixed cost (plpgsql, "
            "the domain lookup, planning the per-domain dynamic query). The hybrid pays that "
            "for its vector half (2k candidates) plus the same fixed cost again for "
            "`search_text` (~1 ms even when few rows match: tsquery parsing, GIN scan, planning) "
            "plus the fusion (~0.3 ms). The text half does not grow with the vector index, so "
            "the ratio falls as domains grow.")
    return lines


def write_benchmarks(section: str, path: Path) -> None:
    """Replace (or append) the '## Search quality' section, leaving other sections alone."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Search quality\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="200 documents, 50 queries, no files written")
    ap.add_argument("--dsn", help="evaluate in this database (default: a throw-away database "
                    "on the embedded server)")
    ap.add_argument("--docs", type=int)
    ap.add_argument("--queries", type=int)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--from-json", action="store_true",
                    help="only re-render BENCHMARKS.md from bench/results/quality.json")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the evaluation database and reuse its embeddings when the corpus "
                    "is unchanged (for iterating on ranking; the queue is then not exercised)")
    args = ap.parse_args(argv)
    if args.from_json:
        results = json.loads((ROOT / "bench" / "results" / "quality.json").read_text())
        write_benchmarks(markdown(results), ROOT / "BENCHMARKS.md")
        print(table(results))
        return 0
    results = evaluate(args.dsn, tiny=args.tiny, n_docs=args.docs, n_queries=args.queries,
                       seed=args.seed, sweep=not args.no_sweep,
                       reuse=args.reuse)
    print()
    print(table(results))
    if not args.tiny and not args.no_write:
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
        write_benchmarks(markdown(results), ROOT / "BENCHMARKS.md")
        print("\nwritten: BENCHMARKS.md (## Search quality), bench/results/quality.json")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "python"))
    sys.exit(main())
