"""Where the database is: an explicit DSN, DATABASE_URL, POSTGRES_* variables, or the embedded default."""

from __future__ import annotations

import os

DEFAULT_DOMAIN = "default"


def default_domain() -> str:
    """DEFAULT_MEMORY_DOMAIN, else 'default'."""
    return os.environ.get("DEFAULT_MEMORY_DOMAIN") or DEFAULT_DOMAIN


def configured_dsn(dsn: str | None = None) -> str | None:
    """The DSN the user configured, or None when the embedded default should be used.

    Order: the argument, DATABASE_URL, then POSTGRES_HOST/PORT/DB/USER/PASSWORD (used when any
    of them is set; libpq defaults fill the rest).
    """
    if dsn:
        return dsn
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    keys = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
    if any(os.environ.get(k) for k in keys):
        parts = {
            "host": os.environ.get("POSTGRES_HOST"),
            "port": os.environ.get("POSTGRES_PORT"),
            "dbname": os.environ.get("POSTGRES_DB"),
            "user": os.environ.get("POSTGRES_USER"),
            "password": os.environ.get("POSTGRES_PASSWORD"),
        }
        return " ".join(f"{k}='{_escape(v)}'" for k, v in parts.items() if v)
    return None


def resolve_dsn(dsn: str | None = None) -> str:
    """A DSN to connect to: the configured one, else the embedded server (started if needed)."""
    found = configured_dsn(dsn)
    if found:
        return found
    from . import embedded

    return embedded.ensure_running().dsn


def read_dsn(read_dsn: str | None = None) -> str | None:
    """A DSN for read-only work (searches, diagnostics): the argument or DATABASE_READ_URL."""
    return read_dsn or os.environ.get("DATABASE_READ_URL") or None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def redact(dsn: str) -> str:
    """The DSN with any password hidden, for printing."""
    import re

    dsn = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password=)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


__all__ = ["default_domain", "configured_dsn", "resolve_dsn", "read_dsn", "redact"]
