"""Issue 11 (trust): what the checks cost, main's SQL against this checkout's, side by side.

    python bench/trust.py --main-sql <folder with main's sql/ and migrations/> [--calls N]

Two databases on the embedded server, one migrated with each tree; the same domain (5,000 rows,
32 dimensions) in both; each call timed N times per round, rounds interleaved (main, branch, then
branch, main), medians of 7 rounds. Also search_text's cost by query shape on the branch (the
term cap and the exclusion rule). Prints a Markdown table; BENCHMARKS.md quotes it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
from pgmemo import embedded  # noqa: E402


def setup(server, db: str, tree: Path, rows: int) -> str:
    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{db}"')
    env = dict(os.environ, PGMEMO_SQL_DIR=str(tree / "sql"), PGMEMO_MIGRATIONS_DIR=str(tree / "migrations"))
    subprocess.run([sys.executable, "-m", "pgmemo.cli", "--dsn", server.dsn_for(db), "migrate"],
                   env=env, check=True, capture_output=True)
    with psycopg.connect(server.dsn_for(db), autocommit=True) as c:
        c.execute("SELECT memory.create_domain('b', 32)")
        c.execute("""SELECT count(*) FROM memory.store_many('b',
            ARRAY(SELECT 'memory number ' || i || ' about topic' || (i % 50) || ' and subject'
                  || (i % 997) FROM generate_series(1, %s) i), NULL,
            ARRAY(SELECT array_fill(random()::real, ARRAY[32])::vector FROM generate_series(1, %s)))""",
                  (rows, rows))
        c.execute("ANALYZE")
    return server.dsn_for(db)


def timed(conn, sql, args, n):
    t = time.perf_counter()
    for _ in range(n):
        conn.execute(sql, args, prepare=False)
    return (time.perf_counter() - t) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--main-sql", type=Path, required=True)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pgmemo-bench-trust-"))
    os.chmod(tmp, 0o755)
    server = embedded.ensure_running(tmp / "data", tune=False)
    try:
        dsns = {"main": setup(server, "bench_main", a.main_sql, a.rows),
                "branch": setup(server, "bench_branch", ROOT, a.rows)}
        q = "[" + ",".join("0.5" for _ in range(32)) + "]"
        calls = {
            "search k=10": ("SELECT count(*) FROM memory.search('b', %s::vector, 10)", (q,)),
            "search_text, 2 words": ("SELECT count(*) FROM memory.search_text('b', 'topic7 subject5')", None),
            "get": ("SELECT count(*) FROM memory.get('b', 'nope')", None),
            "store (with embedding)": ("SELECT memory.store('b', 'a new memory', '{}', %s::vector)", (q,)),
            "domains view": ("SELECT count(*) FROM memory.domains", None),
        }
        conns = {v: psycopg.connect(d, autocommit=True) for v, d in dsns.items()}
        res = {(k, v): [] for k in calls for v in conns}
        for rnd in range(a.rounds):
            order = ["main", "branch"] if rnd % 2 == 0 else ["branch", "main"]
            for k, (sql, args) in calls.items():
                for v in order:
                    res[(k, v)].append(timed(conns[v], sql, args, a.calls))
        print("| call | main (ms) | issue 11 (ms) | ratio |\n|---|---|---|---|")
        for k in calls:
            m, b = statistics.median(res[(k, "main")]), statistics.median(res[(k, "branch")])
            print(f"| {k} | {m:.3f} | {b:.3f} | {b / m:.2f} |")
        # search_text by query shape (main runs them all; the branch refuses the last two)
        shapes = {
            "2 words": "topic7 subject5",
            "32 OR'ed words": " OR ".join(f"subject{i}" for i in range(32)),
            "200 OR'ed words": " OR ".join(f"subject{i}" for i in range(200)),
            "exclusion only": "-topic7",
        }
        print("\n| search_text query | main (ms) | issue 11 |\n|---|---|---|")
        for name, text in shapes.items():
            out = {}
            for v, c in conns.items():
                try:
                    out[v] = f"{statistics.median(timed(c, 'SELECT count(*) FROM memory.search_text(%s, %s)', ('b', text), 3) for _ in range(3)):.1f} ms"
                except psycopg.Error as exc:
                    out[v] = f"refused ({exc.sqlstate})"
            print(f"| {name} | {out['main']} | {out['branch']} |")
        for c in conns.values():
            c.close()
    finally:
        embedded.stop(tmp / "data")


if __name__ == "__main__":
    main()
