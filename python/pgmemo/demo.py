"""`make demo` (python -m pgmemo.demo): the main job, offline, end to end.

On the embedded PostgreSQL (or DATABASE_URL when set), with the local all-MiniLM-L6-v2 model:
creates the `startup` and `health` domains, stores memories WITHOUT embeddings (the triggers
queue them), runs the embedding worker in --once mode to backfill them, runs semantic searches
and prints the embedding coverage. Safe to run again: a demo domain that holds only demo rows is
dropped and recreated; one holding other memories is left alone (demo rows are upserted by id).
"""

from __future__ import annotations

import sys
import time

import psycopg

MODEL = "all-MiniLM-L6-v2"
DIMENSION = 384

MEMORIES: dict[str, list[str]] = {
    "startup": [
        "Series A funding round completed: $12M led by a top-tier VC firm",
        "Hired our first VP of Engineering, previously at Stripe",
        "Customer churn dropped to 2% after the onboarding redesign",
        "Moved the office to a bigger space downtown",
        "Signed the first enterprise customer, a Fortune 500 bank",
        "Board meeting: agreed to expand into the European market next year",
        "Launched the mobile app on iOS and Android",
        "Monthly burn is $400k; we have 22 months of runway",
        "Pricing disagreement between the cofounders resolved: usage-based plans",
        "Team offsite in Lisbon planned for October",
    ],
    "health": [
        "Ran 5 km in 28 minutes this morning",
        "Blood pressure 118/76 at the annual checkup",
        "Started taking vitamin D during the winter months",
        "Slept only five hours last night and felt exhausted all day",
        "Switched to a Mediterranean diet with more fish and olive oil",
        "Dentist appointment booked for March 3",
        "Resting heart rate is down to 58 beats per minute",
        "Knee pain after long runs; the physiotherapist recommended stretching",
        "Drinking two litres of water a day",
        "Cholesterol test: LDL 2.9 mmol/L, the doctor says it is fine",
    ],
}

SEARCHES: list[tuple[str, str]] = [
    ("startup", "funding strategy"),
    ("startup", "hiring engineers"),
    ("health", "trouble sleeping"),
    ("health", "cardio fitness"),
]


def demo_id(domain: str, i: int) -> str:
    return f"demo-{domain}-{i:02d}"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def step(n: int, msg: str) -> None:
    say(f"\n== {n}. {msg}")


def _prepare_domain(store, domain: str) -> None:
    """Create the domain; if a previous demo run left it, drop and recreate it."""
    existing = {d["domain"]: d for d in store.domains()}
    if domain in existing:
        d = existing[domain]
        ours = sum(1 for i in range(len(MEMORIES[domain])) if store.get(demo_id(domain, i), domain=domain))
        if d["dimension"] == DIMENSION and d["rows"] == ours:
            store.drop_domain(domain)
            say(f"   {domain}: left by an earlier demo run ({ours} rows): dropped, recreating")
        elif d["dimension"] != DIMENSION:
            raise SystemExit(f"domain {domain} exists with dimension {d['dimension']}, the demo needs "
                             f"{DIMENSION}: drop it (pgmemo domain drop {domain}) or use another database")
        else:
            say(f"   {domain}: holds {d['rows']} rows that are not the demo's: keeping them, "
                "upserting the demo rows by id")
    store.create_domain(domain, DIMENSION, embedding_model=MODEL)
    say(f"   {domain}: memory_data.{domain}_memories, vector({DIMENSION}), cosine, model {MODEL}")


def _coverage(store) -> list[dict]:
    try:
        rows = store.coverage()
        return [r for r in rows if r["domain"] in MEMORIES]
    except psycopg.errors.UndefinedTable:  # diagnostics not installed: domains + queue counts
        out = []
        for d in store.domains():
            if d["domain"] in MEMORIES:
                q = store.queue_counts(d["domain"])
                out.append({"domain": d["domain"], "total_rows": d["rows"],
                            "queued_jobs": q["ready"] + q["waiting"] + q["claimed"],
                            "dead_jobs": q["dead"]})
        return out


def main() -> int:
    from . import config
    from .client import MemoryStore
    from .embedders import EmbeddingError, LocalEmbedder
    from .worker import Worker

    say("pgmemo demo: AI memories in PostgreSQL + pgvector, embedded offline by a queue worker")

    step(1, "Connect (and migrate)")
    where = config.configured_dsn()
    say("   database: " + (config.redact(where) if where else "the embedded PostgreSQL server "
                           "(no DATABASE_URL set; `pgmemo db url` prints it)"))
    t0 = time.perf_counter()
    store = MemoryStore.connect(migrate=True, embedder=None)
    v = store.version()
    say(f"   connected in {time.perf_counter() - t0:.1f}s: pgmemo schema {v.get('schema_version')}, "
        f"pgvector {v.get('pgvector')}, PostgreSQL {v.get('postgres')}")

    step(2, f"Load the local embedding model ({MODEL}, {DIMENSION} dimensions, CPU, no download)")
    try:
        embedder = LocalEmbedder()
        t0 = time.perf_counter()
        probe = embedder.embed(["warm-up"])[0]
    except EmbeddingError as exc:
        say(f"   cannot load the local model: {exc}")
        return 1
    say(f"   loaded in {time.perf_counter() - t0:.1f}s; vectors have {len(probe)} dimensions")

    try:
        step(3, "Create the domains")
        for domain in MEMORIES:
            _prepare_domain(store, domain)

        step(4, "Store memories WITHOUT embeddings (the insert trigger queues each row)")
        for domain, texts in MEMORIES.items():
            store.store_many(texts, domain=domain,
                             metadatas=[{"source": "demo"}] * len(texts),
                             ids=[demo_id(domain, i) for i in range(len(texts))])
            q = store.queue_counts(domain)
            say(f"   {domain}: stored {len(texts)} memories; {q['ready']} jobs waiting in the queue")

        step(5, "Backfill: run the embedding worker once (pgmemo worker --once)")
        for domain in MEMORIES:
            store.enqueue_missing(domain)  # rows of an earlier run that have no job yet
            w = Worker(store.dsn, embedder, batch_size=32, once=True, domain=domain,
                       name=f"demo-{domain}", maintenance_every=0)
            stats = w.run().snapshot()
            q = store.queue_counts(domain)
            say(f"   {domain}: embedded {stats['embedded']} rows in {stats['seconds']:.2f}s "
                f"({stats['batches']} batches); queue now: {q['ready'] + q['claimed']} ready, "
                f"{q['waiting']} retrying, {q['dead']} dead")

        step(6, "Semantic search (the query is embedded by the same model)")
        store.embedder = embedder
        for domain, query in SEARCHES:
            hits = store.search_memories(query, domain=domain, limit=3)
            say(f"   [{domain}] \"{query}\"  ({hits[0]['mode'] if hits else 'no'} search)")
            for h in hits:
                sim = h.get("similarity")
                say(f"      {sim:6.3f}  {h['content']}" if sim is not None else f"      {h['content']}")

        step(7, "Coverage")
        for r in _coverage(store):
            if "coverage_pct" in r:
                say(f"   {r['domain']}: {r['embedded_rows']}/{r['total_rows']} rows embedded "
                    f"({r['coverage_pct']}%), {r['queued_jobs']} queued, {r['dead_jobs']} dead")
            else:
                say(f"   {r['domain']}: {r['total_rows']} rows, {r['queued_jobs']} still queued, "
                    f"{r['dead_jobs']} dead")
    finally:
        store.embedder = None
        embedder.close()
        store.close()

    say("\nDone. Try: pgmemo search -d startup \"raising money\"  (with PGMEMO_EMBEDDER=local)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
