"""A new user's first minutes: every command on a database without pgmemo says how to install
it; `pgmemo domain create` takes the embedder's dimension; a memory stored while no worker runs
is found by `pgmemo search` (the hybrid is the default with an embedder), each result saying how
it was found; the embedded server pgmemo owns migrates itself on first use."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from helpers import cli
from pgmemo import embedded
from pgmemo.cli import main
from test_cli import data_dir  # noqa: F401 (the fixture: a private embedded server)

NOT_INSTALLED = "pgmemo is not installed in this database: run `pgmemo migrate`"

COMMANDS = [
    ["domain", "list"], ["domain", "create", "notes", "--dimension", "3"],
    ["domain", "drop", "notes", "--yes"], ["store", "hello"], ["search", "hello"],
    ["search", "hello", "--text"], ["status"], ["doctor"], ["worker", "--once"], ["backfill"],
    ["adopt", "t", "--table", "public.t", "--content-column", "body"],
    ["reembed", "status"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_says_how_to_install(empty_db: str, args: list[str], monkeypatch) -> None:
    # a user who configured an embedder (worker and backfill need one; nothing is embedded)
    monkeypatch.setenv("PGMEMO_EMBEDDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    code, out = cli(empty_db, *args)
    assert code != 0
    assert NOT_INSTALLED in out, out


def test_domain_create_takes_the_embedders_dimension(dsn: str, provider, monkeypatch) -> None:
    monkeypatch.setenv("PGMEMO_EMBEDDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    code, out = cli(dsn, "domain", "create", "notes")
    assert code == 0, out
    assert f"({provider.dim} dimensions" in out
    # A memory stored while no worker runs (the embedder is down) is still found, by its words.
    provider.down = True
    code, out = cli(dsn, "store", "--domain", "notes", "the quarterly numbers are in")
    assert code == 0 and "queued for embedding" in out, out
    provider.down = False
    code, out = cli(dsn, "search", "--domain", "notes", "--json", "quarterly numbers")
    assert code == 0, out
    rows = json.loads(out[out.index("["):])
    assert [(r["content"], r["mode"], r["found_by"]) for r in rows] == [
        ("the quarterly numbers are in", "hybrid", "text")]
    code, out = cli(dsn, "search", "--domain", "notes", "quarterly")
    assert code == 0 and " text " in out and "no results" not in out, out


def test_embedded_server_migrates_itself_on_first_use(data_dir) -> None:
    """No database configured: the embedded server pgmemo starts and owns is migrated by the
    first command (a configured database never is: see the test above)."""
    runner = CliRunner()
    listed = runner.invoke(main, ["domain", "list"])
    assert listed.exit_code == 0, listed.output
    assert "no domains yet" in listed.output
    created = runner.invoke(main, ["domain", "create", "notes", "--dimension", "3"])
    assert created.exit_code == 0, created.output
    with psycopg.connect(embedded.ensure_running(data_dir).dsn) as c:
        assert c.execute("SELECT domain FROM memory.domains").fetchall() == [("notes",)]
