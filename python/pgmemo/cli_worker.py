"""`pgmemo worker` and `pgmemo backfill`: drain the embedding queue through the configured embedder."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _embedder() -> Any:
    """The embedder PGMEMO_EMBEDDER names, or a clear usage error."""
    from .embedders import EmbeddingError, get_embedder

    try:
        embedder = get_embedder()
    except (ValueError, EmbeddingError) as exc:
        raise click.UsageError(str(exc)) from None
    if embedder is None:
        raise click.UsageError(
            "no embedder configured: set PGMEMO_EMBEDDER to ollama, openai or local "
            "(e.g. PGMEMO_EMBEDDER=local, with pip install 'pgmemo[local]')")
    return embedder


# The options the worker and backfill share (one definition each).
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1, 10000), default=32, show_default=True,
    help="Jobs claimed (and texts sent to the provider) per batch.")
concurrency_option = click.option(
    "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Embedding threads, each with its own database connection.")


def register(main: click.Group) -> None:
    main.add_command(worker)
    main.add_command(backfill)


@click.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="Drain the jobs that are ready, then exit.")
@batch_size_option
@concurrency_option
@click.option("--lease", type=click.FloatRange(0.1, None), default=300.0, show_default=True,
              help="Seconds a claim is held without renewal (the worker renews the claims of "
                   "the batches in hand every third of it); a worker that stops, crashed, loses "
                   "its jobs to the others after that.")
@click.option("--poll", type=click.FloatRange(0.05, None), default=5.0, show_default=True,
              help="Seconds between polls when no NOTIFY arrives.")
@click.option("--domain", default=None, help="Only embed rows of this domain.")
@click.option("--maintenance-every", type=click.FloatRange(0, None), default=60.0,
              show_default=True, help="Seconds between memory.run_maintenance() calls (0: never).")
@click.option("--grace", type=click.FloatRange(0, None), default=30.0, show_default=True,
              help="On SIGTERM/SIGINT, seconds to finish the batches in hand before giving them back.")
@click.option("--name", default=None, help="Worker name in memory.workers (default host:pid:random).")
@click.option("--log-json", is_flag=True, help="Log JSON lines instead of key=value lines.")
@click.option("-v", "--verbose", is_flag=True, help="Log every batch.")
@click.pass_context
def worker(ctx: click.Context, once: bool, batch_size: int, concurrency: int, lease: float,
           poll: float, domain: str | None, maintenance_every: float, grace: float,
           name: str | None, log_json: bool, verbose: bool) -> None:
    """Embed queued rows through the configured embedder (PGMEMO_EMBEDDER).

    Wakes on NOTIFY memory_embedding_queue, polls as a fallback, sends a heartbeat
    (memory.workers), renews the leases of the batches in hand, runs memory.run_maintenance()
    periodically (no pg_cron needed) and reconnects when the database restarts. With no database
    configured it uses (and on first use migrates) the embedded server. SIGTERM/SIGINT: finish
    the batches in hand, then stop.
    """
    from .worker import Worker, setup_logging

    setup_logging(json_lines=log_json, level=logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        logging.getLogger("pgmemo.worker").addFilter(
            lambda r: getattr(r, "event", None) != "batch")
    embedder = _embedder()
    # The worker's first connection verifies the schema (and migrates the embedded server
    # pgmemo owns on first use): no connection of its own just for the check.
    w = Worker(ctx.obj.dsn, embedder, batch_size=batch_size, concurrency=concurrency, lease=lease,
               poll=poll, once=once, domain=domain, name=name,
               maintenance_every=maintenance_every, grace=grace)
    try:
        w.run()
    finally:
        embedder.close()


@click.command(context_settings=CONTEXT)
@click.option("--domain", default=None, help="Only this domain (default: every domain).")
@batch_size_option
@concurrency_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def backfill(ctx: click.Context, domain: str | None, batch_size: int, concurrency: int,
             as_json: bool) -> None:
    """Queue every row without an embedding (memory.enqueue_missing), then embed them all.

    Shows a progress bar (rows/s, ETA) and ends with a summary: embedded, failed, dead.
    Rows whose embedding failed stay queued (retrying with backoff) or dead (see last_error).
    """
    from .worker import Worker, setup_logging

    setup_logging(level=logging.WARNING)
    embedder = _embedder()
    s = ctx.obj.store(embedder=False)  # the invocation's one connection (schema verified)
    if getattr(embedder, "name", None) == "local":  # load the model now, not inside the rows/s
        click.echo("loading the local model...", err=True)
        embedder.embed(["warm-up"])
    enqueued = s.enqueue_missing(domain)
    before = s.queue_counts(domain)
    total = before["ready"] + before["claimed"]
    click.echo(f"queued {enqueued} rows without an embedding; {total} jobs ready"
               + (f" in {domain}" if domain else ""), err=True)
    state = {"last": 0, "t0": time.monotonic()}
    with click.progressbar(length=max(total, 1), label="embedding", show_eta=True,
                           show_percent=True, file=sys.stderr,
                           item_show_func=lambda _: _rate(state)) as bar:

        def tick(snap: dict[str, Any]) -> None:
            done = snap["embedded"] + snap["failed"] + snap["not_written"]
            state["done"] = snap["embedded"]
            if done > state["last"]:
                bar.update(min(done, total) - min(state["last"], total), None)
                state["last"] = done

        w = Worker(s.dsn, embedder, batch_size=batch_size, concurrency=concurrency, once=True,
                   domain=domain, on_tick=tick, name=None, maintenance_every=0)
        try:
            stats = w.run()
        finally:
            embedder.close()
    after = s.queue_counts(domain)
    snap = stats.snapshot()
    summary = {"enqueued": enqueued, "embedded": snap["embedded"], "failed": snap["failed"],
               "retrying": after["waiting"] + after["ready"], "dead": after["dead"],
               "seconds": snap["seconds"],
               "rows_per_second": round(snap["embedded"] / snap["seconds"], 1) if snap["seconds"] else None}
    if as_json:
        import json

        click.echo(json.dumps(summary))
    else:
        click.echo(f"embedded {summary['embedded']}, failed {summary['failed']} "
                   f"({summary['retrying']} will be retried), dead {summary['dead']} "
                   f"in {summary['seconds']:.1f}s ({summary['rows_per_second'] or 0} rows/s)")
        if summary["dead"]:
            click.echo("dead jobs keep their last error; after fixing the cause, run "
                       "SELECT memory.requeue_dead(); and backfill again", err=True)


def _rate(state: dict[str, Any]) -> str:
    elapsed = time.monotonic() - state["t0"]
    done = state.get("done", 0)
    return f"{done / elapsed:.1f} rows/s" if elapsed > 0 else ""
