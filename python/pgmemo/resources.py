"""Where the SQL lives: inside the wheel (pgmemo/sql, pgmemo/migrations) or in the checkout."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # PGMEMO_MIGRATIONS_DIR / PGMEMO_SQL_DIR point the runner at other folders (tests, forks).
    override = os.environ.get(f"PGMEMO_{name.upper()}_DIR")
    if override:
        return Path(override)
    for candidate in (_PACKAGE / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pgmemo: cannot find the {name}/ folder next to {_PACKAGE}")


def migrations_dir() -> Path:
    return _find("migrations")


def sql_dir() -> Path:
    return _find("sql")


def migration_files() -> list[Path]:
    """Versioned migrations in order: NNNN_slug.sql."""
    return sorted(p for p in migrations_dir().glob("[0-9][0-9][0-9][0-9]_*.sql"))


def sql_files() -> list[Path]:
    """Repeatable definitions in the order they are applied."""
    return sorted(sql_dir().glob("*.sql"))


BREAKING_MARKER = "--! breaking-change"


def is_breaking(path: Path) -> bool:
    """The migration breaks older clients: its leading comment lines include `--! breaking-change`
    (clients that do not know it refuse the database and name the upgrade)."""
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        if not line.startswith("--"):
            return False
        if line.strip() == BREAKING_MARKER:
            return True
    return False


def schema_version() -> str:
    """The newest migration this client ships, e.g. '0002'."""
    files = migration_files()
    return files[-1].name[:4] if files else "0000"
