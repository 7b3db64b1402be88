"""`pgmemo mcp` end to end: the MCP SDK's own stdio client spawns the server as a user's MCP
client would, lists its tools and resources, stores, searches (hybrid with an embedder, text
without), forgets, and gets SQL errors back as tool errors while the server keeps serving."""

from __future__ import annotations

import json
import os
import sys

import psycopg
import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from pgmemo import embedded
from pgmemo.cli import main as cli_main
from pgmemo.client import MemoryStore
from test_cli import data_dir  # noqa: F401 (the fixture: a private embedded server)


def _params(dsn: str | None, env: dict[str, str]) -> StdioServerParameters:
    args = ["-m", "pgmemo.cli"] + (["--dsn", dsn] if dsn else []) + ["mcp"]
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "PGMEMO_EMBEDDER", "DEFAULT_MEMORY_DOMAIN")}
    return StdioServerParameters(command=sys.executable, args=args, env={**base, **env})


def _data(result) -> dict:
    """A tool result's structured content (or its JSON text)."""
    structured = getattr(result, "structured_content", None) or getattr(
        result, "structuredContent", None)
    if structured is not None:
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(result.content[0].text)


def _is_error(result) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


async def test_mcp_server_over_stdio(dsn: str, provider) -> None:
    with MemoryStore.connect(dsn, embedder=None) as s:
        s.create_domain("default", provider.dim)
        s.create_domain("notes", provider.dim)
    env = {"PGMEMO_EMBEDDER": "openai", "OPENAI_BASE_URL": provider.base_url,
           "OPENAI_API_KEY": "test", "OPENAI_EMBEDDING_MODEL": "fake-embed"}
    async with stdio_client(_params(dsn, env)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            assert {"store_memory", "search_memories", "forget_memory",
                    "list_domains"} <= tools

            stored = _data(await session.call_tool("store_memory", {
                "content": "the user prefers green tea", "metadata": {"topic": "drinks"}}))
            assert stored["domain"] == "default" and stored["embedded"] is True
            other = _data(await session.call_tool("store_memory", {
                "content": "meeting moved to friday", "domain": "notes", "importance": 0.9}))

            found = _data(await session.call_tool("search_memories", {"query": "green tea"}))
            hits = found["results"]
            assert hits[0]["id"] == stored["id"] and hits[0]["mode"] == "hybrid"
            assert hits[0]["found_by"] == "vector+text"
            filtered = _data(await session.call_tool("search_memories", {
                "query": "tea", "filter": {"topic": "nope"}}))
            assert filtered["results"] == []
            text = _data(await session.call_tool("search_memories", {
                "query": "friday", "domain": "notes", "mode": "text"}))
            assert [h["id"] for h in text["results"]] == [other["id"]]

            domains = _data(await session.call_tool("list_domains", {}))
            assert sorted(d["domain"] for d in domains["domains"]) == ["default", "notes"]
            listing = await session.list_resources()
            assert "pgmemo://domains" in {str(r.uri) for r in listing.resources}
            one = await session.read_resource("pgmemo://domains/notes")
            info = json.loads(one.contents[0].text)
            assert info["domain"] == "notes" and info["coverage"]["total_rows"] == 1

            # SQL errors come back as tool errors with the database's message...
            bad = await session.call_tool("store_memory", {"content": "x", "domain": "my-docs"})
            assert _is_error(bad)
            assert "invalid domain name 'my-docs'" in bad.content[0].text
            assert "Try 'my_docs'" in bad.content[0].text
            bad = await session.call_tool("search_memories", {"query": "x", "domain": "nope"})
            assert _is_error(bad) and 'unknown domain "nope"' in bad.content[0].text
            blank = await session.call_tool("search_memories", {"query": "  "})
            assert _is_error(blank) and "query is empty" in blank.content[0].text
            blank = await session.call_tool("store_memory", {"content": ""})
            assert _is_error(blank) and "content is empty" in blank.content[0].text
            # ... and the server keeps serving.
            gone = _data(await session.call_tool("forget_memory", {"id": stored["id"]}))
            assert gone == {"id": stored["id"], "forgotten": True}
            again = _data(await session.call_tool("forget_memory", {"id": stored["id"]}))
            assert again["forgotten"] is False


async def test_mcp_without_embedder_searches_text(dsn: str) -> None:
    with MemoryStore.connect(dsn, embedder=None) as s:
        s.create_domain("default", 8)
    async with stdio_client(_params(dsn, {})) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            stored = _data(await session.call_tool("store_memory", {"content": "blue whales sing"}))
            assert stored["embedded"] is False          # queued for the worker
            hits = _data(await session.call_tool("search_memories", {"query": "whales"}))
            assert [(h["id"], h["found_by"]) for h in hits["results"]] == [(stored["id"], "text")]


async def test_mcp_on_the_embedded_default(data_dir, provider, monkeypatch) -> None:
    """A new user's MCP configuration without DATABASE_URL: `pgmemo mcp` starts the embedded
    server in its data directory, migrates it on first use (nothing but the protocol reaches
    stdout meanwhile), says how to create the missing domain, and then stores and searches."""
    env = {"PGMEMO_EMBEDDER": "openai", "OPENAI_BASE_URL": provider.base_url,
           "OPENAI_API_KEY": "test"}
    for key, value in env.items():  # the CLI below runs in this process
        monkeypatch.setenv(key, value)
    params = _params(None, env)
    assert params.env["PGMEMO_DATA_DIR"] == str(data_dir) and "DATABASE_URL" not in params.env
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert _data(await session.call_tool("list_domains", {})) == {"domains": []}
            missing = await session.call_tool("store_memory", {"content": "tea, not coffee"})
            assert _is_error(missing)
            assert 'unknown domain "default"' in missing.content[0].text
            assert "memory.create_domain('default')" in missing.content[0].text
            # the user follows the hint (the CLI, on the same embedded server)...
            created = CliRunner().invoke(cli_main, ["domain", "create", "default"])
            assert created.exit_code == 0, created.output
            assert f"({provider.dim} dimensions" in created.output
            # ...and the running server serves it.
            stored = _data(await session.call_tool("store_memory", {
                "content": "the user drinks tea, not coffee"}))
            assert stored["embedded"] is True
            hits = _data(await session.call_tool("search_memories", {"query": "tea"}))
            assert [(h["id"], h["found_by"]) for h in hits["results"]] == [
                (stored["id"], "vector+text")]
    with psycopg.connect(embedded.ensure_running(data_dir).dsn) as c:
        assert c.execute("SELECT count(*) FROM memory_data.default_memories").fetchone()[0] == 1
