"""`make docs`: write docs/SQL_REFERENCE.md from a freshly migrated database.

The text comes from the SQL function memory.api_reference() (signatures, COMMENT ON texts and
grants read from the catalog); this module only makes a scratch database on the server (the
embedded default, or --dsn's server), migrates it, asks, and drops it.

    python -m pgmemo.docs [--dsn DSN] [--output docs/SQL_REFERENCE.md] [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import config
from .migrate import migrate

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "SQL_REFERENCE.md"


def reference(dsn: str) -> str:
    """memory.api_reference() of an already migrated database."""
    from .client import MemoryStore

    with MemoryStore.connect(dsn, embedder=None) as store:
        return store.api_reference() + "\n"


def fresh_reference(server_dsn: str | None = None) -> str:
    """Migrate a scratch database on the server of server_dsn and return its reference."""
    base = config.resolve_dsn(server_dsn)
    name = f"pgmemo_docs_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            scratch = make_conninfo(base, dbname=name) if conninfo_to_dict(base) else base
            migrate(scratch)
            return reference(scratch)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None, help="a database on the server to use "
                        "(default: DATABASE_URL, POSTGRES_*, else the embedded server)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the file differs from what the database says")
    args = parser.parse_args(argv)
    text = fresh_reference(args.dsn)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
