"""`pgmemo doctor` (memory.diagnose() as a report, with --fix) and `pgmemo status` (one screen:
coverage, queue and indexes per domain, live workers). All checks and fixes are SQL in the
database; this module only prints them and, with --fix, runs the fix_sql they carry."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

import click
import psycopg

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}
EXIT_CLEAN, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2


def register(main: click.Group) -> None:
    main.add_command(doctor)
    main.add_command(status)


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {sev: sum(1 for r in rows if r["severity"] == sev) for sev in ("error", "warning", "info")}


def _exit_code(rows: list[dict[str, Any]], strict: bool) -> int:
    counts = _counts(rows)
    if counts["error"]:
        return EXIT_ERRORS
    if strict and counts["warning"]:
        return EXIT_WARNINGS
    return EXIT_CLEAN


def _fixes(rows: list[dict[str, Any]]) -> list[str]:
    """The distinct fix_sql statements, in report order (errors first)."""
    seen: list[str] = []
    for r in rows:
        if r["fix_sql"] and r["fix_sql"] not in seen:
            seen.append(r["fix_sql"])
    return seen


def _print_report(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo(click.style("healthy: no findings", fg="green"))
        return
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    sev_w = 8
    dom_w = max([len("domain")] + [len(r["domain"] or "-") for r in rows])
    chk_w = max([len("check")] + [len(r["check_name"]) for r in rows])
    indent = " " * (sev_w + dom_w + chk_w + 6)
    click.echo(click.style(f"{'severity':<{sev_w}}  {'domain':<{dom_w}}  {'check':<{chk_w}}  detail",
                           bold=True))
    for r in rows:
        head = (click.style(f"{r['severity']:<{sev_w}}", fg=COLOURS.get(r["severity"]), bold=True)
                + f"  {r['domain'] or '-':<{dom_w}}  {r['check_name']:<{chk_w}}  ")
        lines = textwrap.wrap(r["detail"], max(30, width - len(indent))) or [""]
        click.echo(head + lines[0])
        for line in lines[1:]:
            click.echo(indent + line)
        if r["fix_sql"]:
            click.echo(indent + click.style("fix: " + r["fix_sql"], fg="green"))
    c = _counts(rows)
    click.echo(f"\n{c['error']} error(s), {c['warning']} warning(s), {c['info']} info")


@click.command(context_settings=CONTEXT)
@click.option("--domain", "-d", default=None, help="Check one domain (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (errors always exit 2).")
@click.option("--fix", "fix", is_flag=True,
              help="Show the fix_sql statements, apply them after confirmation, then check again.")
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask for confirmation.")
@click.pass_obj
def doctor(obj: Any, domain: str | None, as_json: bool, strict: bool, fix: bool, yes: bool) -> None:
    """Check pgmemo's health (memory.diagnose()): vector indexes, the embedding queue, workers,
    statistics, dimensions, pgvector.

    Exit status: 0 clean, 2 on errors, 1 on warnings with --strict. With --fix, the fixes the
    database proposes (one SQL statement each) are shown, applied after confirmation (--yes for
    scripts), and the checks run again.
    """
    store = obj.store(embedder=False)
    rows = store.diagnose(domain)
    applied: list[dict[str, Any]] = []
    if fix:
        statements = _fixes(rows)
        if not statements:
            if not as_json:
                click.echo("nothing to fix automatically" if rows else "nothing to fix")
        else:
            if not as_json:
                _print_report(rows)
                click.echo("\nfixes to apply:")
                for sql in statements:
                    click.echo("  " + click.style(sql, fg="green"))
            if not yes and not click.confirm(f"Apply {len(statements)} fix(es)?", default=False,
                                             err=as_json):
                raise click.Abort()
            for sql in statements:
                try:
                    store.apply_fix(sql)
                    applied.append({"fix_sql": sql, "ok": True, "error": None})
                    if not as_json:
                        click.echo(click.style("applied: ", fg="green") + sql)
                except psycopg.Error as exc:
                    msg = str(exc).strip().splitlines()[0]
                    applied.append({"fix_sql": sql, "ok": False, "error": msg})
                    if not as_json:
                        click.echo(click.style("failed:  ", fg="red") + f"{sql}\n         {msg}")
            before = rows
            rows = store.diagnose(domain)
            if not as_json:
                fixed = len({(r["domain"], r["check_name"]) for r in before}
                            - {(r["domain"], r["check_name"]) for r in rows})
                click.echo(f"\nafter the fixes ({fixed} finding(s) resolved):")
    if as_json:
        out: dict[str, Any] = {"findings": rows, "counts": _counts(rows),
                               "exit_code": _exit_code(rows, strict)}
        if fix:
            out["applied"] = applied
        _json(out)
    else:
        _print_report(rows)
    code = _exit_code(rows, strict)
    if code:
        raise SystemExit(code)


def _age(value: Any) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


@click.command(context_settings=CONTEXT)
@click.option("--domain", "-d", default=None, help="One domain (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_obj
def status(obj: Any, domain: str | None, as_json: bool) -> None:
    """One screen: embedding coverage, queue and vector indexes per domain, and live workers.

    Row counts are exact (one scan per domain table); `pgmemo doctor` checks what is wrong.
    """
    store = obj.store(embedder=False)
    coverage = {r["domain"]: r for r in store.coverage(domain)}
    queue = {r["domain"]: r for r in store.queue_status(domain)}
    indexes: dict[str, list[dict[str, Any]]] = {}
    for r in store.vector_indexes(domain):
        indexes.setdefault(r["domain"], []).append(r)
    workers = store.workers()
    domains = sorted(set(coverage) | set(queue))
    if as_json:
        _json({"domains": [{"domain": d, "coverage": coverage.get(d), "queue": queue.get(d),
                            "indexes": indexes.get(d, [])} for d in domains],
               "workers": workers})
        return
    if not domains:
        click.echo("no domains yet: pgmemo domain create NAME")
    else:
        w = max(len("domain"), *(len(d) for d in domains))
        click.echo(click.style(
            f"{'domain':<{w}}  {'rows':>9}  {'embedded':>9}  {'cover':>7}  "
            f"{'pending':>7}  {'claimed':>7}  {'retry':>5}  {'dead':>5}  {'oldest':>6}  index", bold=True))
        for d in domains:
            c, q = coverage.get(d) or {}, queue.get(d) or {}
            pct = c.get("coverage_pct")
            cover = "-" if pct is None else f"{pct:.1f}%"
            cover_s = click.style(f"{cover:>7}", fg="green" if pct in (None, 100) else "yellow")
            idx = ", ".join(
                f"{i['index_name']} ({i['method']}, {_size(i['size_bytes'])}"
                f"{'' if i['is_valid'] else ', INVALID'}"
                f"{'' if i['matches_distance'] else ', wrong opclass'})"
                for i in indexes.get(d, []) if not i["is_partitioned"]) or click.style("none", fg="red")
            dead = q.get("dead", 0)
            click.echo(
                f"{d:<{w}}  {c.get('total_rows', 0):>9}  {c.get('embedded_rows', 0):>9}  {cover_s}  "
                f"{q.get('pending', 0):>7}  {q.get('claimed', 0):>7}  {q.get('retrying', 0):>5}  "
                + click.style(f"{dead:>5}", fg="red" if dead else None)
                + f"  {_age(q.get('oldest_pending_age')):>6}  {idx}")
    alive = [wk for wk in workers if wk["alive"]]
    names = ", ".join(f"{wk['worker']} ({wk['jobs_done']} done, {wk['jobs_failed']} failed)" for wk in alive)
    click.echo(f"\nworkers: {len(alive)} alive" + (f": {names}" if names else "")
               + (f"; {len(workers) - len(alive)} stopped or gone" if len(workers) > len(alive) else ""))
