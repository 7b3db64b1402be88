"""The pgmemo CLI through click's CliRunner (--dsn to the test database), and `pgmemo db`
against an embedded server of its own (PGMEMO_DATA_DIR in a temp dir)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner

from pgmemo import embedded
from pgmemo.cli import main


@pytest.fixture
def cli(dsn, monkeypatch):
    monkeypatch.delenv("PGMEMO_EMBEDDER", raising=False)
    monkeypatch.delenv("DEFAULT_MEMORY_DOMAIN", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(main, ["--dsn", dsn, *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    return run


def test_domain_store_search_flow(cli):
    assert "no new migrations" in cli("migrate").output
    assert "no domains yet" in cli("domain", "list").output
    out = cli("domain", "create", "notes", "--dimension", "3").output
    assert "memory_data.notes_memories" in out and "3 dimensions" in out
    cli("domain", "create", "other", "--dimension", "3", "--distance", "l2")
    listing = cli("domain", "list").output
    assert "notes" in listing and "l2" in listing
    rows = json.loads(cli("domain", "list", "--json").output)
    assert [(r["domain"], r["dimension"], r["rows"]) for r in rows] == [("notes", 3, 0), ("other", 3, 0)]

    stored = json.loads(cli("store", "-d", "notes", "--embedding", "[1, 0, 0]", "--metadata",
                            '{"src": "cli"}', "--json", "the quick brown fox").output)
    assert stored["domain"] == "notes" and stored["has_embedding"] is True
    out = cli("store", "-d", "notes", "a lazy dog without vector").output
    assert out.startswith("stored ") and "queued for embedding" in out
    blank = cli("search", "-d", "notes", "  ", code=2)
    assert "QUERY" in blank.output and "is empty" in blank.output
    blank = cli("store", "-d", "notes", "", code=2)
    assert "TEXT" in blank.output and "is empty" in blank.output
    cli("store", "-d", "notes", "--embedding", "0,1,0", "--id", "fixed", "comma separated works")

    hits = json.loads(cli("search", "-d", "notes", "--embedding", "[1,0.1,0]", "-k", "2", "--json",
                          "ignored").output)
    assert [h["id"] for h in hits] == [stored["id"], "fixed"]
    assert hits[0]["metadata"] == {"src": "cli"}
    filtered = json.loads(cli("search", "-d", "notes", "--embedding", "[1,0,0]", "--filter",
                              '{"src": "cli"}', "--json", "q").output)
    assert [h["id"] for h in filtered] == [stored["id"]]
    text = cli("search", "-d", "notes", "--text", "lazy dog").output
    assert "a lazy dog without vector" in text
    assert "no results" in cli("search", "-d", "notes", "--text", "zebra").output
    fallback = cli("search", "-d", "notes", "fox")
    assert "the quick brown fox" in fallback.output  # no embedder: full-text, with a note

    assert "dropped domain other" in cli("domain", "drop", "other", "--yes").output
    assert [r["domain"] for r in json.loads(cli("domain", "list", "--json").output)] == ["notes"]


def test_bad_json_is_a_usage_error(cli):
    cli("domain", "create", "notes", "--dimension", "3")
    for args, what in [
        (("store", "-d", "notes", "--metadata", "{not json", "x"), "--metadata"),
        (("store", "-d", "notes", "--metadata", "[1, 2]", "x"), "--metadata"),
        (("store", "-d", "notes", "--embedding", "[1, oops]", "x"), "--embedding"),
        (("store", "-d", "notes", "--embedding", '["a", "b", "c"]', "x"), "--embedding"),
        (("search", "-d", "notes", "--filter", "nope", "q"), "--filter"),
        (("search", "-d", "notes", "--filter", "[1]", "--text", "q"), "--filter"),
    ]:
        result = cli(*args, code=2)
        assert what in result.output and "Traceback" not in result.output, result.output


def test_database_errors_are_one_line_with_sqlstate(cli):
    cli("domain", "create", "notes", "--dimension", "3")
    for args, sqlstate in [
        (("search", "-d", "nope", "--text", "q"), "42704"),
        (("store", "-d", "nope", "x"), "42704"),
        (("domain", "drop", "nope", "--yes"), "42704"),
        (("domain", "create", "Bad-Name", "--dimension", "3"), "42602"),
        (("domain", "create", "notes", "--dimension", "4"), "42710"),
        (("store", "-d", "notes", "--embedding", "[1, 2]", "x"), "22000"),
        (("search", "-d", "notes", "--embedding", "[1,0,0]", "-k", "0", "q"), "22023"),
    ]:
        result = cli(*args, code=1)
        first = result.output.strip().splitlines()[0]
        assert first.startswith("Error: ") and "Traceback" not in result.output, result.output
        assert f"[{sqlstate}]" in result.output, result.output
    unknown = cli("search", "-d", "nope", "--text", "q", code=1).output
    assert 'unknown domain "nope"' in unknown


def test_cli_refuses_a_database_without_pgmemo(empty_db):
    result = CliRunner().invoke(main, ["--dsn", empty_db, "domain", "list"])
    assert result.exit_code == 1
    assert "run `pgmemo migrate`" in result.output and "Traceback" not in result.output


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_help_on_every_command():
    runner = CliRunner()
    paths = [()] + list(_commands(main))
    for required in [("migrate",), ("domain",), ("domain", "create"), ("domain", "list"),
                     ("domain", "drop"), ("store",), ("search",), ("db",), ("db", "start"),
                     ("db", "stop"), ("db", "url")]:
        assert required in paths
    for path in paths:
        for flag in ("--help", "-h"):
            result = runner.invoke(main, [*path, flag])
            assert result.exit_code == 0, (path, result.output)
            assert "Usage: " in result.output
            assert result.output.count("\n") > 3, (path, "help says something")


@pytest.fixture
def data_dir(monkeypatch):
    # The server runs as a separate system user when we are root: the folder must be readable.
    tmp = tempfile.mkdtemp(prefix="pgmemo-cli-db-")
    os.chmod(tmp, 0o755)
    path = Path(tmp) / "pgdata"
    monkeypatch.setenv("PGMEMO_DATA_DIR", str(path))
    for k in ("DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
              "POSTGRES_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    yield path
    try:
        embedded.stop(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_db_start_url_stop_and_the_embedded_default(data_dir):
    runner = CliRunner()
    assert runner.invoke(main, ["db", "stop"]).output.strip() == "not running"
    start = runner.invoke(main, ["db", "start"])
    assert start.exit_code == 0, start.output
    dsn = start.output.strip().splitlines()[-1]
    assert str(data_dir) in dsn or "host=" in dsn
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == "pgmemo"
        assert c.execute("SELECT current_setting('data_directory')").fetchone()[0] == str(data_dir)
        # sized for the machine, not the 128MB default (on a machine with more than 2GB)
        assert (data_dir / "pgmemo-tuned").exists()
    url = runner.invoke(main, ["db", "url"])
    assert url.exit_code == 0 and url.output.strip() == dsn
    # No DSN configured: migrate and domain commands use the embedded server.
    migrated = runner.invoke(main, ["migrate"])
    assert migrated.exit_code == 0, migrated.output
    created = runner.invoke(main, ["domain", "create", "emb", "--dimension", "3"])
    assert created.exit_code == 0, created.output
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT domain FROM memory.domains").fetchall() == [("emb",)]
    stop = runner.invoke(main, ["db", "stop"])
    assert stop.exit_code == 0 and stop.output.strip() == "stopped"
    assert embedded.status(data_dir) is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)
