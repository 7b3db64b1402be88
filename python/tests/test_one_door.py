"""One door to the database: every memory.* call of the package goes through the client's plans
(python/pgmemo/client.py `_Api`, arguments bound by name), and no command opens a connection just
to check the schema version.

Checked two ways: statically (no module but the client and the migration runner hands SQL that
names pgmemo's schemas to psycopg), and for real (the connections `pgmemo worker` and `pgmemo
backfill` open, counted against the embedded PostgreSQL; the worker on the embedded default
migrates it on first use)."""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from helpers import cli, one
from pgmemo import embedded
from pgmemo.cli import main
from test_cli import data_dir  # noqa: F401 (the fixture: a private embedded server)

PACKAGE = Path(__file__).resolve().parents[1] / "pgmemo"
# The client is the door; the migration runner installs the schema (its ledger calls are
# memory_private.*, before any client can exist); embedded.py and docs.py create databases.
DOORS = {"client.py", "migrate.py"}


def _sql_texts(node: ast.Call) -> list[str]:
    texts = []
    for arg in node.args[:1]:
        for sub in ast.walk(arg):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                texts.append(sub.value)
    return texts


def test_no_module_but_the_client_calls_memory_functions() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in DOORS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "executemany", "copy")):
                for text in _sql_texts(node):
                    if "memory." in text or "memory_private." in text or "memory_data." in text:
                        offenders.append(f"{path.name}:{node.lineno}: {text.strip()[:60]}")
    assert offenders == [], "memory.* SQL outside the client:\n" + "\n".join(offenders)


def test_every_queue_function_the_worker_calls_is_a_client_plan() -> None:
    from pgmemo.client import AsyncMemoryStore, MemoryStore

    for name in ("claim_embedding_jobs", "complete_embedding_jobs", "fail_embedding_jobs",
                 "extend_claims", "release_claims", "worker_heartbeat", "worker_stopped",
                 "run_maintenance"):
        assert callable(getattr(MemoryStore, name)) and callable(getattr(AsyncMemoryStore, name))


class _Counter:
    """Counts the connections psycopg opens in this process (the real connect is called)."""

    def __init__(self, monkeypatch) -> None:
        self.dsns: list[str] = []
        real = psycopg.connect

        def connect(conninfo: str = "", **kwargs):
            self.dsns.append(conninfo)
            return real(conninfo, **kwargs)

        monkeypatch.setattr(psycopg, "connect", connect)


@pytest.fixture
def fake_embedder(provider, monkeypatch):
    monkeypatch.setenv("PGMEMO_EMBEDDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return provider


def test_worker_opens_no_connection_just_to_check_the_schema(dsn, conn, fake_embedder,
                                                             monkeypatch) -> None:
    conn.execute("SELECT memory.create_domain('notes', %s)", (fake_embedder.dim,))
    conn.execute("SELECT memory.store('notes', 'one')")
    conn.execute("SELECT memory.store('notes', 'two')")
    counter = _Counter(monkeypatch)
    code, out = cli(dsn, "worker", "--once", "--concurrency", "1", "--maintenance-every", "0")
    assert code == 0, out
    # the control connection (which verified the schema) and the one embedding thread
    assert len(counter.dsns) == 2, counter.dsns
    assert one(conn, "SELECT count(*) FROM memory_data.notes_memories WHERE embedding IS NULL") == 0
    assert one(conn, "SELECT jobs_done FROM memory.workers") == 2


def test_backfill_checks_the_schema_on_its_one_connection(dsn, conn, fake_embedder,
                                                          monkeypatch) -> None:
    conn.execute("SELECT memory.create_domain('notes', %s)", (fake_embedder.dim,))
    conn.execute("SELECT memory.store('notes', 'one')")
    counter = _Counter(monkeypatch)
    code, out = cli(dsn, "backfill", "--json")
    assert code == 0, out
    assert '"embedded": 1' in out, out
    # the invocation's connection (counts before and after), the worker's control connection
    # and its one embedding thread
    assert len(counter.dsns) == 3, counter.dsns


def test_worker_on_the_embedded_default_migrates_it_on_first_use(data_dir, fake_embedder) -> None:
    """No database configured: `pgmemo worker` is the first command on a new embedded server;
    it migrates the server pgmemo owns (as every other command does) instead of refusing."""
    r = CliRunner().invoke(main, ["worker", "--once", "--maintenance-every", "0"])
    assert r.exit_code == 0, r.output
    with psycopg.connect(embedded.ensure_running(data_dir).dsn) as c:
        assert c.execute("SELECT (memory.version())->>'schema_version'").fetchone()[0]
        assert c.execute("SELECT count(*) FROM memory.workers WHERE stopped_at IS NOT NULL"
                         ).fetchone()[0] == 1
