"""The pgmemo command line: `pgmemo --help`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import psycopg

from . import config, embedded
from .client import MemoryStore, SchemaVersionError, found_by

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _parse_json(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=what) from None


def _parse_vector(value: str | None) -> list[float] | None:
    if value is None:
        return None
    parsed = _parse_json(value if value.lstrip().startswith("[") else f"[{value}]", "--embedding")
    if not isinstance(parsed, list) or not all(isinstance(x, (int, float)) for x in parsed):
        raise click.BadParameter("expected a JSON array of numbers, e.g. [0.1, 0.2]",
                                 param_hint="--embedding")
    return [float(x) for x in parsed]


class Ctx:
    """Lazily opened MemoryStore shared by the commands of one invocation."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn
        self._store: MemoryStore | None = None

    def store(self, *, embedder: bool = True) -> MemoryStore:
        if self._store is None:
            kwargs = {} if embedder else {"embedder": None}
            self._store = MemoryStore.connect(self.dsn, **kwargs)
        return self._store

    def resolved_dsn(self) -> str:
        return config.resolve_dsn(self.dsn)


pass_ctx = click.make_pass_decorator(Ctx)


class Group(click.Group):
    """Turns database and input errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SchemaVersionError, ValueError) as exc:
            # (ValueError: the client's checks of an input, e.g. a blank query or a NaN)
            raise click.ClickException(str(exc)) from None
        except psycopg.Error as exc:
            diag = getattr(exc, "diag", None)
            msg = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
            if diag and diag.message_hint:
                msg += f"\nhint: {diag.message_hint}"
            code = f" [{exc.sqlstate}]" if getattr(exc, "sqlstate", None) else ""
            raise click.ClickException(msg + code) from None


@click.group(cls=Group, context_settings=CONTEXT)
@click.option("--dsn", envvar="DATABASE_URL", default=None,
              help="PostgreSQL connection string (default: DATABASE_URL, POSTGRES_*, else the "
                   "embedded server).")
@click.version_option(package_name="pgmemo")
@click.pass_context
def main(ctx: click.Context, dsn: str | None) -> None:
    """pgmemo: AI memories in PostgreSQL + pgvector.

    With no database configured, commands use an embedded PostgreSQL server kept in your data
    directory (see `pgmemo db url`).
    """
    ctx.obj = Ctx(dsn)
    ctx.call_on_close(lambda: ctx.obj._store and ctx.obj._store.close())


domain_option = click.option(
    "--domain", "-d", default=None,
    help="Domain (default: DEFAULT_MEMORY_DOMAIN, else 'default').")


# -- migrate -----------------------------------------------------------------------------------
@main.command()
@click.option("--print-sql", is_flag=True,
              help="Print the single-file psql installer instead of migrating.")
@click.option("--schedule-maintenance", is_flag=True,
              help="Then register memory.run_maintenance() with pg_cron (needs pg_cron).")
@click.option("--lock-timeout", type=float, default=None,
              help="Seconds to wait for each lock before backing off and retrying, printing the "
                   "sessions that hold it (default PGMEMO_MIGRATE_LOCK_TIMEOUT, else 5).")
@click.option("--retries", type=int, default=None,
              help="Retries after a lock timeout (default PGMEMO_MIGRATE_RETRIES, else 10).")
@pass_ctx
def migrate(obj: Ctx, print_sql: bool, schedule_maintenance: bool, lock_timeout: float | None,
            retries: int | None) -> None:
    """Install or upgrade the pgmemo schema (idempotent).

    Applies migrations/ in order, then re-applies sql/, in one transaction under an advisory
    lock. Refuses to run when an applied migration was edited.
    """
    from .migrate import MigrationError, bundle, migrate as run

    if print_sql:
        click.echo(bundle(), nl=False)
        return
    try:
        result = run(obj.resolved_dsn(), echo=lambda m: click.echo(m, err=True),
                     lock_timeout=lock_timeout, retries=retries)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.summary())
    if schedule_maintenance:
        job = obj.store(embedder=False).schedule_maintenance()
        click.echo(f"maintenance scheduled with pg_cron (job {job})")


# -- domains -----------------------------------------------------------------------------------
@main.group(context_settings=CONTEXT)
def domain() -> None:
    """Create, list and drop memory domains."""


@domain.command("create")
@click.argument("name")
@click.option("--dimension", type=int, default=None,
              help="Embedding dimension (default: the configured embedder's, else 768).")
@click.option("--distance", type=click.Choice(["cosine", "l2", "inner_product"]), default="cosine",
              show_default=True)
@click.option("--model", "embedding_model", default=None, help="Embedding model name to record.")
@click.option("--m", "hnsw_m", type=int, default=16, show_default=True, help="HNSW m.")
@click.option("--ef-construction", type=int, default=64, show_default=True,
              help="HNSW ef_construction.")
@click.option("--text-config", default="english", show_default=True,
              help="Text search configuration for full-text search.")
@click.option("--embedding-type", type=click.Choice(["vector", "halfvec"]), default="vector",
              show_default=True,
              help="halfvec stores 16-bit floats: half the index size, up to 4000 dimensions.")
@pass_ctx
def domain_create(obj: Ctx, name: str, dimension: int | None, distance: str,
                  embedding_model: str | None, hnsw_m: int, ef_construction: int,
                  text_config: str, embedding_type: str) -> None:
    """Create domain NAME (a table memory_data.NAME_memories with its indexes)."""
    store = obj.store()
    if dimension is None or embedding_model is None:
        emb = store.embedder
        if dimension is None:
            dimension = _embedder_dimension(emb) or 768
        if embedding_model is None and emb is not None:
            embedding_model = getattr(emb, "model", None)
    table = store.create_domain(name, dimension=dimension, distance=distance,
                                embedding_model=embedding_model, hnsw_m=hnsw_m,
                                hnsw_ef_construction=ef_construction, text_config=text_config,
                                embedding_type=embedding_type)
    click.echo(f"domain {name}: {table} ({dimension} dimensions, {embedding_type}, {distance})")


def _embedder_dimension(emb: Any) -> int | None:
    """The configured embedder's dimension, asking it once when it is not known yet."""
    if emb is None:
        return None
    if getattr(emb, "dimension", None) is None:
        from .embedders import EmbeddingError

        try:
            emb.embed(["dimension probe"])
        except EmbeddingError as exc:
            raise click.ClickException(
                f"cannot learn the embedder's dimension ({exc}): pass --dimension") from None
    return emb.dimension


@domain.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@pass_ctx
def domain_list(obj: Ctx, as_json: bool) -> None:
    """List domains with their dimension, distance, model and row count."""
    rows = obj.store(embedder=False).domains()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no domains yet: pgmemo domain create NAME")
        return
    click.echo(f"{'domain':<20} {'dim':>5} {'distance':<14} {'rows':>9}  model")
    for r in rows:
        click.echo(f"{r['domain']:<20} {r['dimension']:>5} {r['distance']:<14} {r['rows']:>9}  "
                   f"{r['embedding_model'] or '-'}")


@domain.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def domain_drop(obj: Ctx, name: str, yes: bool) -> None:
    """Drop domain NAME and all its memories (an adopted table is released, never dropped)."""
    if not yes:
        click.confirm(f"Drop domain {name} and all its memories?", abort=True)
    obj.store(embedder=False).drop_domain(name)
    click.echo(f"dropped domain {name}")


@domain.command("distribute")
@click.argument("name")
@click.option("--shards", default=32, show_default=True, type=click.IntRange(1, 4096),
              help="Number of shards (spread over the Citus workers).")
@pass_ctx
def domain_distribute(obj: Ctx, name: str, shards: int) -> None:
    """Distribute domain NAME over a Citus cluster (connect to the coordinator).

    Moves its rows into SHARDS shards by id, each with its own HNSW index; every pgmemo call
    keeps working on it. Needs the Citus extension (docs/SCALING.md)."""
    table = obj.store(embedder=False).distribute_domain(name, shard_count=shards)
    click.echo(f"distributed domain {name} ({table}) over {shards} shards")


# -- store / search ----------------------------------------------------------------------------
@main.command()
@click.argument("text")
@domain_option
@click.option("--metadata", default=None, help='Metadata as a JSON object, e.g. {"source": "chat"}.')
@click.option("--embedding", default=None, help="The embedding as a JSON array (skips the embedder).")
@click.option("--id", "row_id", default=None, help="Id to upsert.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@pass_ctx
def store(obj: Ctx, text: str, domain: str | None, metadata: str | None, embedding: str | None,
          row_id: str | None, as_json: bool) -> None:
    """Store TEXT as a memory.

    Embeds it through the configured embedder (PGMEMO_EMBEDDER) when there is one; otherwise, or
    if the embedder fails, the row is queued for `pgmemo worker`.
    """
    if not text.strip():
        raise click.BadParameter("is empty: a memory needs words", param_hint="TEXT")
    meta = _parse_json(metadata, "--metadata")
    if meta is not None and not isinstance(meta, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--metadata")
    vec = _parse_vector(embedding)
    s = obj.store(embedder=vec is None)
    dom = domain or s.default_domain
    if vec is None and s.embedder is not None:
        row = s.store_memory(text, domain=dom, metadata=meta, id=row_id)
    else:
        row = s.store(text, domain=dom, metadata=meta, embedding=vec, id=row_id)
    got = s.get(row, domain=dom)
    if as_json:
        _echo_json({"id": row, "domain": dom, "has_embedding": got["has_embedding"]})
    else:
        state = "embedded" if got["has_embedding"] else "queued for embedding"
        click.echo(f"stored {row} in {dom} ({state})")


@main.command()
@click.argument("query")
@domain_option
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of results.")
@click.option("--filter", "filter_", default=None, help='JSON filter on metadata, e.g. \'{"user": "ann", "year": {"$gte": 2024}}\' '
              "(see the filter language in the README).")
@click.option("--embedding", default=None, help="Query embedding as a JSON array (skips the embedder).")
@click.option("--text", "mode", flag_value="text", help="Full-text search only (no embedding).")
@click.option("--hybrid", "mode", flag_value="hybrid",
              help="Full-text and vector, fused (the default with an embedder).")
@click.option("--vector", "mode", flag_value="vector", help="Vector search only.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@pass_ctx
def search(obj: Ctx, query: str, domain: str | None, k: int, filter_: str | None,
           embedding: str | None, mode: str | None, as_json: bool) -> None:
    """Search memories for QUERY.

    With an embedder configured (PGMEMO_EMBEDDER) the default is the hybrid (meaning and words
    fused), so memories still waiting for their embedding are found by their words; without
    one, full-text. --embedding alone searches by that vector. Each result says how it was
    found: vector, text or vector+text.
    """
    flt = _parse_json(filter_, "--filter")
    if flt is not None and not isinstance(flt, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--filter")
    vec = _parse_vector(embedding)
    if vec is None and not query.strip():
        raise click.BadParameter("is empty: give the words to search for (or --embedding)",
                                 param_hint="QUERY")
    s = obj.store(embedder=mode != "text" and vec is None)
    dom = domain or s.default_domain
    if mode is None:
        mode = "vector" if vec is not None else "hybrid" if s.embedder is not None else "text"
        if mode == "text":
            click.echo("no embedder configured (PGMEMO_EMBEDDER): using full-text search",
                       err=True)
    if mode != "text" and vec is None:
        if s.embedder is None:
            raise click.UsageError(f"--{mode} needs an embedder (PGMEMO_EMBEDDER) or --embedding")
        vec = s.embedder.embed([query])[0]
    if mode == "text":
        rows = s.search_text(query, domain=dom, k=k, filter=flt)
        score = "rank"
    elif mode == "hybrid":
        rows = s.search_hybrid(query, vec, domain=dom, k=k, filter=flt)
        score = "score"
    else:
        rows = s.search(vec, domain=dom, k=k, filter=flt)
        score = "similarity"
    rows = found_by(rows, mode)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no results")
    for r in rows:
        content = r["content"] if len(r["content"]) <= 100 else r["content"][:97] + "..."
        click.echo(f"{r[score]:8.4f}  {r['found_by']:<11}  {r['id']}  {content}")


# -- MCP server --------------------------------------------------------------------------------
@main.command("mcp")
@click.option("--pool-size", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Database connections the server keeps open.")
@pass_ctx
def mcp_command(obj: Ctx, pool_size: int) -> None:
    """Serve pgmemo to AI agents over the Model Context Protocol (stdio).

    Tools: store_memory, search_memories, forget_memory, list_domains; resources: the domains
    (pgmemo://domains, pgmemo://domains/{domain}). Uses --dsn / DATABASE_URL, else the embedded
    server; the embedder is PGMEMO_EMBEDDER's. Needs the extra: pip install 'pgmemo[mcp]'.
    """
    try:
        from .mcp_server import run
    except ImportError as exc:
        raise click.ClickException(
            f"pgmemo mcp needs the MCP SDK ({exc}): pip install 'pgmemo[mcp]'") from None
    run(obj.dsn, pool_size=pool_size)


# -- embedded server ---------------------------------------------------------------------------
@main.group(context_settings=CONTEXT)
def db() -> None:
    """Manage the embedded PostgreSQL server (used when no database is configured)."""


@db.command("start")
def db_start() -> None:
    """Start (or reuse) the embedded server and print its URL."""
    info = embedded.ensure_running()
    click.echo(info.dsn)


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    click.echo("stopped" if embedded.stop() else "not running")


@db.command("url")
def db_url() -> None:
    """Print the embedded server's URL (starting it if needed)."""
    click.echo(embedded.ensure_running().dsn)


# -- commands from other modules register themselves here --------------------------------------
def _register_optional() -> None:
    import importlib

    for name in ("pgmemo.cli_worker", "pgmemo.cli_doctor", "pgmemo.cli_bench", "pgmemo.cli_import",
                 "pgmemo.cli_adopt"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(main)


_register_optional()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
