"""`pgmemo adopt`, `pgmemo index build` and `pgmemo reembed start|status|finish|cancel`.

Thin wrappers over memory.adopt_table, memory.concurrent_index_statements (whose statements are
run one by one here, outside a transaction, as CREATE INDEX CONCURRENTLY requires),
memory.fill_text_index (called until the text index is complete, a transaction per batch),
memory.create_hnsw_index and memory.begin_reembed / reembed_status / finish_reembed /
cancel_reembed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from . import config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def register(main: click.Group) -> None:
    main.add_command(adopt)
    main.add_command(index)
    main.add_command(reembed)


def _store(ctx: click.Context) -> Any:
    """The invocation's store (one connection, schema version checked)."""
    return ctx.find_root().obj.store(embedder=False)


def run_concurrent_build(store: Any, domain: str, m: int | None, ef_construction: int | None,
                         echo: bool = True) -> list[dict[str, Any]]:
    """Run memory.concurrent_index_statements one statement at a time (autocommit)."""
    done = []
    for statement in store.concurrent_index_statements(domain, m, ef_construction):
        t0 = time.monotonic()
        if echo:
            click.echo(f"{statement} ...", err=True, nl=False)
        store.run_statement(statement)
        seconds = round(time.monotonic() - t0, 3)
        if echo:
            click.echo(f" {seconds:.2f}s", err=True)
        done.append({"statement": statement, "seconds": seconds})
    return done


def run_text_fill(store: Any, domain: str, batch: int = 10000, echo: bool = True) -> int:
    """Fill the domain's text index batch by batch (memory.fill_text_index, each call its own
    transaction: the table's writers never wait for more than a batch's rows)."""
    total = 0
    t0 = time.monotonic()
    while True:
        seen = store.fill_text_index(domain, batch)  # the table's rows it went through
        total += seen
        if echo:
            click.echo(f"text index of {domain}: {total} rows ({time.monotonic() - t0:.1f}s)",
                       err=True)
        if seen < batch:
            return total


@click.command(context_settings=CONTEXT)
@click.argument("domain")
@click.option("--table", "source", required=True, help="The table to adopt (schema.table).")
@click.option("--id-column", default="id", show_default=True,
              help="Its id: bigint, integer, uuid, text or varchar, unique, NOT NULL.")
@click.option("--content-column", default="content", show_default=True, help="Its text.")
@click.option("--embedding-column", default="embedding", show_default=True,
              help="Its vector(n) column (n is the domain's dimension).")
@click.option("--distance", type=click.Choice(["cosine", "l2", "inner_product"]), default="cosine",
              show_default=True)
@click.option("--model", "embedding_model", default=None, help="Embedding model name to record.")
@click.option("--concurrently", is_flag=True,
              help="Build the indexes with CREATE INDEX CONCURRENTLY and fill the text index in "
                   "batches (writes go on meanwhile).")
@click.pass_context
def adopt(ctx: click.Context, domain: str, source: str, id_column: str, content_column: str,
          embedding_column: str, distance: str, embedding_model: str | None,
          concurrently: bool) -> None:
    """Make an existing table a pgmemo domain, without copying it (memory.adopt_table).

    Its rows without an embedding are queued; `pgmemo worker` embeds them. `pgmemo domain drop`
    releases the table later and never drops it.
    """
    store = _store(ctx)
    store.adopt_table(domain, source, id_column, content_column, embedding_column, distance,
                      embedding_model, create_indexes=not concurrently)
    if concurrently:
        run_concurrent_build(store, domain, None, None)
        run_text_fill(store, domain)
        store.enqueue_missing(domain)  # (its own transaction: adoption's held the writers)
    counts = store.queue_counts(domain)
    click.echo(f"adopted {source} as domain {domain}; {counts['ready']} rows queued for embedding")


@click.group(context_settings=CONTEXT)
def index() -> None:
    """Vector indexes."""


@index.command("build", context_settings=CONTEXT)
@click.argument("domain")
@click.option("--concurrently", is_flag=True,
              help="CREATE INDEX CONCURRENTLY (per partition for a partitioned table): writes are "
                   "not blocked; slower. A failed run leaves an INVALID index that the next run "
                   "(and pgmemo doctor) cleans up.")
@click.option("--m", type=int, default=None, help="HNSW m (default: the domain's).")
@click.option("--ef-construction", type=int, default=None,
              help="HNSW ef_construction (default: the domain's).")
@click.option("--json", "as_json", is_flag=True, help="Print the statements run as JSON.")
@click.pass_context
def index_build(ctx: click.Context, domain: str, concurrently: bool, m: int | None,
                ef_construction: int | None, as_json: bool) -> None:
    """Build (or rebuild) the domain's HNSW index."""
    store = _store(ctx)
    if concurrently:
        done = run_concurrent_build(store, domain, m, ef_construction, echo=not as_json)
    else:
        # The last statement of the plan is memory.create_hnsw_index with the domain's (or the
        # given) m and ef_construction: run alone, it builds the index in one blocking step.
        plan = store.concurrent_index_statements(domain, m, ef_construction)
        t0 = time.monotonic()
        store.run_statement(plan[-1])
        done = [{"statement": plan[-1], "seconds": round(time.monotonic() - t0, 3)}]
    if as_json:
        click.echo(json.dumps(done, indent=2))
    else:
        click.echo(f"index of {domain} built ({sum(d['seconds'] for d in done):.2f}s)")


@click.group(context_settings=CONTEXT)
def reembed() -> None:
    """Switch a domain to another embedding model or dimension without downtime.

    \b
    1. pgmemo reembed start DOMAIN --model M --dimension N
    2. run a worker with the new model on the shadow domain it prints:
       PGMEMO_EMBEDDER=... pgmemo worker --domain DOMAIN__next
    3. pgmemo reembed status DOMAIN   (coverage)
    4. pgmemo reembed finish DOMAIN [--wait]   (atomic switch; or: cancel)
    """


@reembed.command("start", context_settings=CONTEXT)
@click.argument("domain")
@click.option("--model", "embedding_model", required=True, help="The new embedding model.")
@click.option("--dimension", type=click.IntRange(1, None), required=True,
              help="The new model's dimension (at most 2000 for vector, 4000 for halfvec).")
@click.option("--concurrently", is_flag=True,
              help="Build the shadow column's HNSW index with CREATE INDEX CONCURRENTLY "
                   "(writes are not blocked while the table is scanned).")
@click.pass_context
def reembed_start(ctx: click.Context, domain: str, embedding_model: str, dimension: int,
                  concurrently: bool) -> None:
    """Add the shadow column and queue every row for the new model (memory.begin_reembed)."""
    store = _store(ctx)
    shadow = store.begin_reembed(domain, embedding_model, dimension,
                                 create_index=not concurrently)
    if concurrently:
        run_concurrent_build(store, shadow, None, None)
    status = store.reembed_status(domain)[0]
    click.echo(f"re-embedding {domain} with {embedding_model} ({dimension} dimensions): "
               f"{status['total_rows']} rows queued on shadow domain {shadow}")
    click.echo(f"next: run a worker with the new model: pgmemo worker --domain {shadow}")


def _status_line(s: dict[str, Any]) -> str:
    return (f"{s['domain']} -> {s['embedding_model']} ({s['dimension']} dimensions): "
            f"{s['embedded_rows']}/{s['total_rows']} rows ({s['coverage_pct'] or 0}%), "
            f"{s['queued_jobs']} queued, {s['dead_jobs']} dead; shadow domain {s['shadow_domain']}")


@reembed.command("status", context_settings=CONTEXT)
@click.argument("domain", required=False)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def reembed_status(ctx: click.Context, domain: str | None, as_json: bool) -> None:
    """Coverage of the re-embeds in progress (memory.reembed_status)."""
    rows = _store(ctx).reembed_status(domain)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        click.echo("no re-embed in progress")
    else:
        for row in rows:
            click.echo(_status_line(row))


@reembed.command("finish", context_settings=CONTEXT)
@click.argument("domain")
@click.option("--wait", is_flag=True, help="Show progress until every row has its new embedding, "
              "then switch.")
@click.option("--poll", type=click.FloatRange(0.1, None), default=2.0, show_default=True,
              help="Seconds between progress checks with --wait.")
@click.pass_context
def reembed_finish(ctx: click.Context, domain: str, wait: bool, poll: float) -> None:
    """Switch to the new embeddings atomically (memory.finish_reembed); refused while rows lack one."""
    store = _store(ctx)

    def status() -> dict[str, Any] | None:
        rows = store.reembed_status(domain)
        return rows[0] if rows else None

    if wait:
        now = status()
        if now is None:
            raise click.ClickException(f"no re-embed in progress for domain {domain!r}")
        with click.progressbar(length=max(now["total_rows"], 1), label="re-embedding",
                               file=sys.stderr, show_eta=True, show_percent=True) as bar:
            while True:
                now = status()
                bar.length = max(now["total_rows"], 1)
                bar.update(now["embedded_rows"] - bar.pos)
                if now["missing_rows"] == 0:
                    break
                if now["queued_jobs"] == 0:
                    raise click.ClickException(
                        f"{now['missing_rows']} rows lack their new embedding and no job is "
                        f"queued for them: SELECT memory.enqueue_missing('{now['shadow_domain']}');")
                time.sleep(poll)
    result = store.finish_reembed(domain)
    click.echo(f"{domain} now uses {result['embedding_model']} ({result['dimension']} dimensions, "
               f"{result['rows']} rows, index {result['hnsw_index']})")


@reembed.command("cancel", context_settings=CONTEXT)
@click.argument("domain")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reembed_cancel(ctx: click.Context, domain: str, yes: bool) -> None:
    """Abandon the re-embed: drop the shadow column, index and jobs (memory.cancel_reembed)."""
    if not yes:
        click.confirm(f"Drop the new embeddings computed so far for {domain}?", abort=True)
    _store(ctx).cancel_reembed(domain)
    click.echo(f"re-embed of {domain} cancelled; it keeps its current embeddings")
