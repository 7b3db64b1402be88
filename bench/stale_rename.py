"""What the stale rule that follows renamed rows costs writers: the write triggers of the baseline
(before this change: old and new rows paired by id) against this checkout's, side by side on one
server, the repetitions alternating between the two databases (order rotated), so load on the
shared machine hits both alike.

Per database (768 dimensions, the vector index dropped so that the triggers' share of a write
is as large as it gets; with an HNSW index every non-HOT row UPDATE also inserts into it):
* the worker's completion: claim_embedding_jobs + complete_embedding_jobs of 500 rows
  (factory domain);
* memory.update of one row's content, 200 calls (factory domain);
* a 10,000-row metadata-only UPDATE by the application (factory domain);
* a 10,000-row content UPDATE by the application of an adopted table (every vector goes stale:
  cleared and queued);
* 10,000 rows of the adopted table renamed (UPDATE SET id = id + n), content unchanged, and
  renamed with their content changed (the baseline keeps those vectors: stale).

Each statement is timed in its own transaction: wall-clock ms, the server process's CPU ms
(/proc/<pid>/schedstat) and the ms spent in pgmemo's trigger functions
(pg_stat_get_xact_function_total_time, track_functions = pl). Medians of the repetitions.

    python bench/stale_rename.py                 # a temporary embedded server, 5 repetitions
    python bench/stale_rename.py --tiny          # seconds
    python bench/stale_rename.py --dsn URL       # an existing server (databases are created)
    python bench/stale_rename.py --sql name=DIR  # more variants: DIR holds sql/ and migrations/

Prints a markdown table; --write writes bench/results/stale_rename.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))

import lib  # noqa: E402
import quality  # noqa: E402

# main just before this change (the triggers paired old and new rows by id)
BASELINE = "28a6494"
DIM = 768


def extract(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "sql", "migrations"],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest)
    return dest


def migrate_with(dsn: str, root: Path | None) -> None:
    env = dict(os.environ)
    if root is not None:
        env["PGMEMO_SQL_DIR"] = str(root / "sql")
        env["PGMEMO_MIGRATIONS_DIR"] = str(root / "migrations")
    subprocess.run([sys.executable, "-W", "ignore", "-c",
                    "import sys; from pgmemo.migrate import migrate; migrate(sys.argv[1])", dsn],
                   env=env, check=True, cwd=str(ROOT))


SETUP = """
SELECT setseed(0.42);
SELECT memory.create_domain('f', {dim});
SELECT memory.bulk_load_begin('f');
INSERT INTO memory_data.f_memories (id, content, embedding)
SELECT 'e' || g, 'embedded row ' || g,
    (SELECT array_agg(random()::real) FROM generate_series(1, {dim}) WHERE g > 0)::vector
FROM generate_series(1, {rows}) AS g;
INSERT INTO memory_data.f_memories (id, content)
SELECT 'q' || g, 'queued row ' || g FROM generate_series(1, {queued}) AS g;
SELECT memory.enqueue_missing('f');
CREATE TABLE public.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector({dim}),
    embedding_model text);
INSERT INTO public.docs
SELECT g, 'document ' || g,
    (SELECT array_agg(random()::real) FROM generate_series(1, {dim}) WHERE g > 0)::vector, 'm'
FROM generate_series(1, {rows}) AS g;
CREATE TABLE public.docs_saved AS SELECT id, emb FROM public.docs;
CREATE TABLE public.fill AS SELECT g AS i,
    (SELECT array_agg(random()::real) FROM generate_series(1, {dim}) WHERE g > 0)::vector AS v
FROM generate_series(1, {queued}) AS g;
SELECT memory.adopt_table('docs', 'public.docs', 'id', 'body', 'emb');
DROP INDEX public.pgmemo_docs_hnsw;
VACUUM ANALYZE memory_data.f_memories;
VACUUM ANALYZE public.docs;
"""

RESTORE_DOCS = [
    "UPDATE public.docs SET id = id - 1000000 WHERE id > 1000000",
    # (the content first: a content changed under the vector it had is stale, cleared)
    "UPDATE public.docs SET body = 'document ' || id WHERE body <> 'document ' || id",
    "UPDATE public.docs AS d SET emb = s.emb, embedding_model = 'm' FROM public.docs_saved AS s "
    "WHERE s.id = d.id AND d.emb IS NULL",
]


class Db:
    def __init__(self, name: str, dsn: str) -> None:
        self.name = name
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SET track_functions = 'pl'")
        # the domains' trigger functions (not their claim and complete functions)
        self.fns = [r[0] for r in self.conn.execute(
            "SELECT p.oid FROM pg_catalog.pg_proc AS p WHERE p.proname LIKE 'pgmemo%' "
            "AND p.pronamespace = 'memory_private'::regnamespace "
            "AND p.prorettype = 'trigger'::regtype").fetchall()]

    def trigger_ms(self) -> float:
        """Time in the trigger functions so far (self time: a trigger fired by another's UPDATE
        is counted once), as the session's pending statistics hold it."""
        return float(self.conn.execute(
            "SELECT coalesce(sum(pg_catalog.pg_stat_get_xact_function_self_time(f)), 0) "
            "FROM unnest(%s::oid[]) AS f", (self.fns,)).fetchone()[0])

    def timed(self, sql: str, params: Any = None, *, repeat: int = 1) -> dict[str, float]:
        """Runs sql (repeat times) in one transaction: wall ms, server CPU ms, trigger ms."""
        c = self.conn
        c.execute("BEGIN")
        trig0 = self.trigger_ms()
        cpu0 = quality.backend_cpu_ms(c)
        t0 = time.perf_counter()
        for i in range(repeat):
            c.execute(sql, params(i) if callable(params) else params)
        wall = (time.perf_counter() - t0) * 1000
        cpu1 = quality.backend_cpu_ms(c)
        trig = self.trigger_ms() - trig0
        c.execute("COMMIT")
        return {"wall_ms": wall, "cpu_ms": None if cpu0 is None else cpu1 - cpu0,
                "trigger_ms": trig}


def workloads(rows: int, queued: int, updates: int):
    """(name, prepare(db), measure(db) -> dict, reset(db)); prepare and reset are not timed."""
    def completion(db: Db) -> dict:
        jobs = db.conn.execute("SELECT array_agg(job_id) FROM memory.claim_embedding_jobs(%s, 'w', "
                               "only_domain => 'f')", (queued,)).fetchone()[0]
        return db.timed("SELECT memory.complete_embedding_jobs(%s, "
                        "(SELECT array_agg(f.v ORDER BY f.i) FROM public.fill AS f))", (jobs,))

    def reset_completion(db: Db) -> None:
        db.conn.execute("UPDATE memory_data.f_memories SET embedding = NULL, "
                        "embedding_model = NULL WHERE id LIKE 'q%'")

    def update(db: Db) -> dict:
        return db.timed("SELECT memory.update('f', %s, content => %s)",
                        lambda i: (f"e{i + 1}", f"changed {i}"), repeat=updates)

    def reset_update(db: Db) -> None:
        db.conn.execute("UPDATE memory_data.f_memories AS t SET content = 'embedded row ' || "
                        "substr(t.id, 2), embedding = (SELECT array_agg(0.5::real) "
                        "FROM generate_series(1, %s))::vector WHERE t.id = ANY (%s)",
                        (DIM, [f"e{i + 1}" for i in range(updates)]))

    def metadata(db: Db) -> dict:
        return db.timed("UPDATE memory_data.f_memories SET metadata = '{\"k\": 1}' "
                        "WHERE id LIKE 'e%'")

    def content(db: Db) -> dict:
        return db.timed("UPDATE public.docs SET body = body || '.'")

    def rename(db: Db) -> dict:
        return db.timed("UPDATE public.docs SET id = id + 1000000")

    def rename_content(db: Db) -> dict:
        return db.timed("UPDATE public.docs SET id = id + 1000000, body = body || '!'")

    def restore(db: Db) -> None:
        for stmt in RESTORE_DOCS:
            db.conn.execute(stmt)

    def nothing(db: Db) -> None:
        pass

    return [
        (f"worker completion, {queued} rows", completion, reset_completion),
        (f"memory.update of the content, {updates} calls", update, reset_update),
        (f"metadata-only UPDATE, {rows:,} rows", metadata, nothing),
        (f"content UPDATE of an adopted table, {rows:,} rows", content, restore),
        (f"ids renamed, {rows:,} rows", rename, restore),
        (f"ids renamed with new content, {rows:,} rows", rename_content, restore),
    ]


def check(db: Db) -> dict:
    """What the last rename with new content left: vectors still served for the new text."""
    return {"stale_vectors_kept": db.conn.execute(
        "SELECT count(*) FROM public.docs WHERE id > 1000000 AND emb IS NOT NULL").fetchone()[0]}


def run(dsn: str, variants: dict[str, Path | None], *, rows: int, queued: int, updates: int,
        reps: int, say) -> dict:
    dbs: dict[str, Db] = {}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name, root in variants.items():
            db = f"stale_bench_{name}"
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{db}"')
            url = make_conninfo(dsn, dbname=db)
            migrate_with(url, root)
            say(f"{name}: migrated, loading {rows:,} rows of {DIM} dimensions twice")
            with psycopg.connect(url, autocommit=True) as c:
                for stmt in SETUP.format(dim=DIM, rows=rows, queued=queued).split(";\n"):
                    if stmt.strip():
                        c.execute(stmt)
            dbs[name] = Db(name, url)
    names = list(dbs)
    results: dict[str, dict[str, list[dict]]] = {}
    stale: dict[str, Any] = {}
    for wname, measure, reset in workloads(rows, queued, updates):
        results[wname] = {n: [] for n in names}
        for rep in range(reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for n in order:
                results[wname][n].append(measure(dbs[n]))
                if wname.startswith("ids renamed with new content") and rep == reps - 1:
                    stale[n] = check(dbs[n])
                reset(dbs[n])
        say(wname + ": " + ", ".join(
            f"{n} {statistics.median(r['wall_ms'] for r in results[wname][n]):.1f} ms"
            for n in names))
    for db in dbs.values():
        db.conn.close()
    return {"rows": rows, "queued": queued, "updates": updates, "reps": reps, "dim": DIM,
            "loadavg": lib.loadavg(), "results": results, "after_rename_with_new_content": stale,
            "variants": {n: (str(p) if p else "checkout") for n, p in variants.items()}}


def med(xs: list[dict], key: str) -> float | None:
    vals = [x[key] for x in xs if x[key] is not None]
    return statistics.median(vals) if vals else None


def markdown(res: dict) -> str:
    names = list(res["variants"])
    head = "| write | " + " | ".join(
        f"{n} wall ms | {n} CPU ms | {n} in triggers ms" for n in names) + " |"
    lines = [head, "|---|" + "---:|" * (3 * len(names))]
    for wname, per in res["results"].items():
        cells = []
        for n in names:
            cells += [f"{med(per[n], k):.1f}" if med(per[n], k) is not None else "-"
                      for k in ("wall_ms", "cpu_ms", "trigger_ms")]
        lines.append(f"| {wname} | " + " | ".join(cells) + " |")
    stale = ", ".join(f"{n}: {v['stale_vectors_kept']:,}"
                      for n, v in res["after_rename_with_new_content"].items())
    lines.append("")
    lines.append(f"Vectors left on renamed rows whose content changed (stale): {stale}. "
                 f"Medians of {res['reps']} repetitions; load average {res['loadavg']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="an existing server (default: a temporary embedded one)")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--sql", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--write", action="store_true", help="write bench/results/stale_rename.json")
    args = ap.parse_args(argv)
    rows, queued, updates = (500, 50, 20) if args.tiny else (10_000, 500, 200)
    with tempfile.TemporaryDirectory(prefix="pgmemo-stale-") as tmp:
        variants: dict[str, Path | None] = {
            "before": extract(args.baseline, Path(tmp) / "before"), "now": None}
        for item in args.sql:
            name, _, path = item.partition("=")
            variants[name] = Path(path)
        res = lib.on_server(args.dsn, "pgmemo-stale-bench-", lambda dsn: run(
            dsn, variants, rows=rows, queued=queued, updates=updates,
            reps=2 if args.tiny else args.reps, say=lambda m: print(m, flush=True)))
    res["baseline"] = args.baseline
    print(markdown(res))
    if args.write:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "stale_rename.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
