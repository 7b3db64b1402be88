"""`pgmemo mcp`: pgmemo as a Model Context Protocol server over stdio (`pip install
'pgmemo[mcp]'`, the `mcp` SDK).

Tools: store_memory, search_memories (hybrid with an embedder, full-text without one or when
embedding fails; filters; domain), forget_memory, list_domains. Resources: pgmemo://domains (the
list) and pgmemo://domains/{domain} (one domain's settings and embedding coverage). Every tool
is one AsyncMemoryStore call; a SQL or input error comes back as an MCP tool error carrying the
database's message (and hint), never a crashed server.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from .client import AsyncMemoryStore, SchemaVersionError

try:  # mcp >= 2
    from mcp.server.mcpserver import MCPServer as _Server
    from mcp.server.mcpserver.exceptions import ResourceError, ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as _Server  # type: ignore[no-redef]
    from mcp.server.fastmcp.exceptions import ResourceError, ToolError  # type: ignore[no-redef]

INSTRUCTIONS = (
    "Long-term memory in PostgreSQL (pgmemo). store_memory saves a fact; search_memories finds "
    "memories by meaning and by words; forget_memory deletes one by id; list_domains shows the "
    "memory domains (separate collections). domain defaults to the server's default domain.")


def _plain(value: Any) -> Any:
    """JSON-safe values (timestamps as ISO text, numerics as numbers, vectors dropped)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "embedding"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _message(exc: BaseException) -> str:
    """The SQL error's own message (and hint), or the exception's text."""
    diag = getattr(exc, "diag", None)
    if isinstance(exc, psycopg.Error) and diag is not None and diag.message_primary:
        msg = diag.message_primary
        if diag.message_hint:
            msg += f" (hint: {diag.message_hint})"
        return msg + (f" [{exc.sqlstate}]" if exc.sqlstate else "")
    return str(exc)


def build_server(dsn: str | None = None, *, pool_size: int = 2,
                 default_domain: str | None = None) -> Any:
    """The MCP server; the store is opened (and verified) when the server starts."""
    state: dict[str, AsyncMemoryStore] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        # Nothing may reach stdout but the protocol: the embedded server's start-up and the
        # first-use migration write to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            store = await AsyncMemoryStore.connect(dsn, pool_size=pool_size,
                                                   default_domain=default_domain)
        state["store"] = store
        try:
            yield {"store": store}
        finally:
            await store.close()

    server = _Server("pgmemo", instructions=INSTRUCTIONS, lifespan=lifespan)

    def store() -> AsyncMemoryStore:
        return state["store"]

    @contextlib.contextmanager
    def tool_errors() -> Any:
        try:
            yield
        except (psycopg.Error, SchemaVersionError, ValueError, TypeError) as exc:
            raise ToolError(_message(exc)) from exc

    @server.tool()
    async def store_memory(content: str, domain: str | None = None,
                           metadata: dict[str, Any] | None = None, source: str | None = None,
                           importance: float | None = None) -> dict[str, Any]:
        """Store a memory (a fact, a preference, a note). It is embedded now when an embedder is
        configured, else queued for the embedding worker; either way it can be found by its
        words at once. metadata is a JSON object; importance is a number in [0, 1]."""
        with tool_errors():
            s = store()
            dom = domain or s.default_domain
            row_id = await s.store_memory(content, domain=dom, metadata=metadata, source=source,
                                          importance=importance)
            row = await s.get(row_id, domain=dom)
            return {"id": row_id, "domain": dom, "embedded": bool(row and row["has_embedding"])}

    @server.tool()
    async def search_memories(query: str, domain: str | None = None, limit: int = 5,
                              filter: dict[str, Any] | None = None,
                              mode: str | None = None) -> dict[str, Any]:
        """Search memories. mode: 'hybrid' (meaning and words; the default with an embedder),
        'vector' or 'text' (words only; the default without an embedder and the fallback when
        embedding fails). filter keeps memories whose metadata matches (a JSON object, e.g.
        {"source": "chat"}). Each result says how it was found (found_by)."""
        with tool_errors():
            rows = await store().search_memories(query, domain=domain, limit=limit,
                                                 filter=filter, mode=mode)
            return {"results": _plain(rows)}

    @server.tool()
    async def forget_memory(id: str, domain: str | None = None) -> dict[str, Any]:
        """Delete one memory by its id. forgotten is false when there was no such memory."""
        with tool_errors():
            return {"id": id, "forgotten": bool(await store().forget(id, domain=domain))}

    @server.tool()
    async def list_domains() -> dict[str, Any]:
        """The memory domains: name, embedding dimension, distance, model and row count."""
        with tool_errors():
            return {"domains": _plain(await store().domains())}

    @server.resource("pgmemo://domains", mime_type="application/json",
                     description="Every memory domain (name, dimension, distance, rows).")
    async def domains_resource() -> str:
        try:
            return json.dumps(_plain(await store().domains()))
        except psycopg.Error as exc:
            raise ResourceError(_message(exc)) from exc

    @server.resource("pgmemo://domains/{domain}", mime_type="application/json",
                     description="One memory domain: its settings and embedding coverage.")
    async def domain_resource(domain: str) -> str:
        try:
            s = store()
            found = [d for d in await s.domains() if d["domain"] == domain]
            if not found:
                raise ResourceError(f'unknown domain "{domain}"')
            coverage = await s.coverage(domain)
            return json.dumps(_plain({**found[0], "coverage": coverage[0] if coverage else None}))
        except psycopg.Error as exc:
            raise ResourceError(_message(exc)) from exc

    return server


def run(dsn: str | None = None, *, pool_size: int = 2) -> None:
    """Serve over stdio until the client closes the connection."""
    build_server(dsn, pool_size=pool_size).run("stdio")
