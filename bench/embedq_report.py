"""Render bench/results/queue.json (bench/embedq.py) as the "Embedding queue" section of
BENCHMARKS.md (the section is replaced, the rest of the file kept)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = "<!-- embedq:start -->"
END = "<!-- embedq:end -->"


def _fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def render(r: dict) -> str:
    s = r["settings"]
    names = r["contenders"]
    out = [START, "## Embedding queue (bench/embedq.py)", "",
           f"Side by side in one run, one contender at a time, runs interleaved: "
           f"{', '.join(names)}. Same texts, same provider stand-in (a local HTTP server speaking "
           f"OpenAI's /v1/embeddings, {s['delay'] * 1000:.0f} ms per request, 384 dimensions, "
           f"deterministic vectors), batch {s['batch']}, {s['workers']} workers, the same "
           f"PostgreSQL server (embedded 18, pgvector). Machine: {r['machine'].get('cpus')} CPUs, "
           f"shared: load average {r.get('loadavg_start')} at the start, {r.get('loadavg_end')} "
           "at the end. PostgreSQL CPU is the CPU time of the server's processes, WAL the LSN "
           "advance, both per embedded row.", ""]
    for key, title in (("throughput", "Fill with the HNSW index present"),
                       ("backfill", "Backfill with the vector index deferred (pgmemo: bulk_load_begin; "
                                    "pgai: no index), index built afterwards")):
        if key not in r:
            continue
        sec = r[key]
        out += [f"### {title}: {sec['settings']['rows']:,} rows, {sec['settings']['runs']} runs each", "",
                "| contender | rows/s (mean) | runs (rows/s) | PG CPU s / 1k rows | WAL bytes / row |",
                "|---|---:|---|---:|---:|"]
        for n in names:
            runs = sec["runs"].get(n, [])
            summ = sec["summary"].get(n, {})
            if "error" in summ:
                out.append(f"| {n} | error: {summ['error']} | | | |")
                continue
            out.append(f"| {n} | {_fmt(summ.get('rows_per_s'))} | "
                       f"{', '.join(_fmt(x.get('rows_per_s')) for x in runs)} | "
                       f"{_fmt(summ.get('pg_cpu_s_per_1k_rows'), 2)} | {_fmt(summ.get('wal_bytes_per_row'), 0)} |")
        if "pgai vectorizer" in sec["summary"] and "pgmemo" in sec["summary"]:
            a, b = sec["summary"]["pgmemo"], sec["summary"]["pgai vectorizer"]
            if a.get("rows_per_s") and b.get("rows_per_s"):
                out += ["", f"pgmemo / pgai: {a['rows_per_s'] / b['rows_per_s']:.2f}x rows/s, "
                        f"{a['pg_cpu_s_per_1k_rows'] / b['pg_cpu_s_per_1k_rows']:.2f}x PostgreSQL CPU per row, "
                        f"{a['wal_bytes_per_row'] / b['wal_bytes_per_row']:.2f}x WAL per row."]
        out.append("")
    if "overhead" in r:
        o = r["overhead"]
        out += [f"### Queue overhead at zero latency, 1 worker, in the database ({o['rows']:,} rows, batch {o['batch']})",
                "", "CPU time of the connection's server process (/proc/<pid>/schedstat), per row, without "
                "the HNSW index (its insert is the same for every design). Overhead = claim + complete "
                "- a bare set-based UPDATE of the same vectors + (insert with the triggers - insert "
                "without them).", "",
                "| contender | claim ms | complete ms | bare UPDATE ms | insert trigger ms | queue overhead ms/row |",
                "|---|---:|---:|---:|---:|---:|"]
        for n, v in o["results"].items():
            out.append(f"| {n} | {v['claim_ms_per_row']:.3f} | {v['complete_ms_per_row']:.3f} | "
                       f"{v['bare_update_ms_per_row']:.3f} | "
                       f"{v['insert_ms_per_row'] - v['insert_no_trigger_ms_per_row']:.3f} | "
                       f"**{v['queue_overhead_ms_per_row']:.3f}** |")
        out.append("")
    if "layout" in r:
        lay = r["layout"]
        out += [f"### What the embedding write costs, by table layout ({lay['rows']:,} rows, batch {lay['batch']})", "",
                "| layout | HNSW present: CPU ms/row | WAL B/row | no vector index: CPU ms/row | WAL B/row | HOT updates (no index) |",
                "|---|---:|---:|---:|---:|---:|"]
        h, n0 = lay["results"].get("hnsw present", {}), lay["results"].get("no vector index", {})
        for name in h:
            out.append(f"| {name} | {h[name]['cpu_ms_per_row']:.3f} | {h[name]['wal_bytes_per_row']:,} | "
                       f"{n0[name]['cpu_ms_per_row']:.3f} | {n0[name]['wal_bytes_per_row']:,} | "
                       f"{_fmt(n0[name]['hot_updates'])} |")
        out.append("")
    if "latency" in r:
        lat = r["latency"]
        out += [f"### Insert-to-embedded latency at {lat['rate_rows_per_s']} rows/s (one row at a time, a waiting worker)", "",
                "| contender | p50 ms | p90 ms |", "|---|---:|---:|"]
        for n, v in lat["results"].items():
            out.append(f"| {n} | {_fmt(v.get('p50_ms'))} | {_fmt(v.get('p90_ms'))} |" if "error" not in v
                       else f"| {n} | error: {v['error']} | |")
        out.append("")
    if "faults" in r:
        f = r["faults"]
        out += [f"### Poison rows (HTTP 400 for their text) and {f['fail_rate']:.0%} random HTTP 500s", "",
                "| contender | rows | poison | clean rows left unembedded | poison rows dead with the provider's message | seconds |",
                "|---|---:|---:|---:|---:|---:|"]
        for n, v in f["results"].items():
            if "error" in v:
                out.append(f"| {n} | error: {v['error']} | | | | |")
                continue
            out.append(f"| {n} | {v['rows']} | {v['poison_rows']} | {v['clean_rows_left']} | "
                       f"{_fmt(v.get('poison_dead_with_message'))} | {v['seconds']} |")
        out.append("")
    if "chaos" in r and "rows" in r["chaos"]:
        c = r["chaos"]
        out += ["### Chaos (pgmemo): 4 worker processes, kill -9, a server restart, content updates in flight", "",
                f"{c['rows']:,} rows, {c['seconds']} s: {c['kills']} workers killed with -9 (and replaced), "
                f"{c['server_restarts']} server restart, {c['content_updates']} content updates while "
                f"the workers ran. Result: **{c['lost']} rows lost, {c['not_embedded']} left unembedded, "
                f"{c['stale_vectors']} stale vectors** (every vector compared with the vector of the "
                f"row's current text), **{c['deadlocks']} deadlocks** (pg_stat_database).", ""]
    if r.get("notes"):
        out += ["Notes: " + "; ".join(f"{k}: {v}" for k, v in r["notes"].items()), ""]
    out.append(END)
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=Path, default=HERE / "results" / "queue.json")
    p.add_argument("--markdown", type=Path, default=HERE.parent / "BENCHMARKS.md")
    p.add_argument("--extra", type=Path, help="a Markdown file appended inside the section")
    args = p.parse_args()
    section = render(json.loads(args.results.read_text()))
    if args.extra:
        section = section.replace(END, args.extra.read_text().rstrip() + "\n" + END)
    text = args.markdown.read_text()
    if START in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    args.markdown.write_text(text)


if __name__ == "__main__":
    main()
