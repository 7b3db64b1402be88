"""The README's asyncio, LangChain and MCP examples run as written (against the test database
and the fake embedding provider), so the documentation cannot rot."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from pgmemo.client import MemoryStore

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> str:
    m = re.search(r"<!-- example: %s -->\n```\w+\n(.*?)```" % re.escape(name), README.read_text(),
                  re.S)
    assert m, f"README has no example {name!r}"
    return m.group(1)


def _embedder_env(monkeypatch, dsn: str, provider) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("PGMEMO_EMBEDDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")


def test_asyncio_example(dsn, provider, monkeypatch, capsys) -> None:
    _embedder_env(monkeypatch, dsn, provider)
    exec(compile(example("asyncio"), "README:asyncio", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "fact number 7" in out
    with MemoryStore.connect(dsn, embedder=None) as s:
        assert [(d["domain"], d["dimension"], d["rows"]) for d in s.domains()] == [
            ("chat", provider.dim, 20)]


def test_langchain_example(dsn, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    exec(compile(example("langchain"), "README:langchain", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "Laptops are replaced" in out and "Expenses" not in out


async def test_mcp_config_example(dsn, provider) -> None:
    config = json.loads(example("mcp"))["mcpServers"]["pgmemo"]
    domain = config["env"]["DEFAULT_MEMORY_DOMAIN"]
    with MemoryStore.connect(dsn, embedder=None) as s:
        s.create_domain(domain, provider.dim)
    command = shutil.which(config["command"], path=str(Path(sys.executable).parent))
    assert command, "the pgmemo script is installed next to this Python"
    env = {**config["env"], "DATABASE_URL": dsn, "PGMEMO_EMBEDDER": "openai",
           "OPENAI_BASE_URL": provider.base_url, "OPENAI_API_KEY": "test"}
    params = StdioServerParameters(command=command, args=config["args"], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("store_memory", {"content": "the user's dog is called Rex"})
            result = await session.call_tool("search_memories", {"query": "dog name"})
            assert "Rex" in result.content[0].text
