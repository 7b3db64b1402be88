"""Small helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import time

from click.testing import CliRunner

from fake_provider import FakeProvider
from pgmemo.cli import main as cli_main
from pgmemo.worker import Worker


def one(conn, sql: str, params=None):
    """The first column of the first row (None when there is no row)."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else next(iter(row.values()))


def drain(dsn: str, provider: FakeProvider, domain: str | None = None,
          batch_size: int = 25) -> Worker:
    """Run one worker pass (--once) with the fake provider's embedder until the queue is empty."""
    w = Worker(dsn, provider.embedder(), batch_size=batch_size, once=True, poll=0.2,
               domain=domain, maintenance_every=0)
    w.run()
    return w


def cli(dsn: str, *args: str) -> tuple[int, str]:
    """Run `pgmemo --dsn DSN ARGS...` in-process: (exit code, output)."""
    r = CliRunner().invoke(cli_main, ["--dsn", dsn, *args])
    return r.exit_code, r.output


def wait_for_lock_wait(conn, pid: int, timeout: float = 20.0) -> None:
    """Return once backend pid waits on a lock (a step of an interleaving, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row["wait_event_type"] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on a lock")


class trusting:
    """Within the block, role is a member of pgmemo's owner (a role pgmemo trusts)."""

    def __init__(self, conn, role: str):
        self.conn, self.role = conn, role

    def __enter__(self):
        self.conn.execute(f'GRANT "{_pgmemo_owner(self.conn)}" TO "{self.role}"')

    def __exit__(self, *exc):
        self.conn.execute(f'REVOKE "{_pgmemo_owner(self.conn)}" FROM "{self.role}"')


def _pgmemo_owner(conn) -> str:
    return conn.execute("SELECT nspowner::regrole::text AS o FROM pg_namespace "
                        "WHERE nspname = 'memory_private'").fetchone()["o"].strip('"')
