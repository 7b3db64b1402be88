"""What may live where: the re-applied files in sql/ hold only CREATE OR REPLACE (and COMMENT ON;
sql/90_grants.sql also re-applies the grants in one DO block). A DROP, an ALTER, a CREATE
without OR REPLACE belongs in a versioned migration, applied once (a retired signature is dropped
by the migration that retired it)."""

from __future__ import annotations

import re

import pytest

from pgmemo import resources

# Comments, quoted strings and dollar-quoted bodies, removed before splitting into statements.
_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\$([A-Za-z_0-9]*)\$.*?\$\1\$", re.S)
ALLOWED = re.compile(r"^(CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW)|COMMENT ON) ", re.I)


def statements(text: str) -> list[str]:
    body = _NOISE.sub(" ", text)
    return [" ".join(s.split()) for s in body.split(";") if s.strip()]


def test_statement_splitter_sees_what_it_must():
    text = ("-- a; comment\nCREATE OR REPLACE FUNCTION f() RETURNS int AS $f$ DROP TABLE x; $f$;\n"
            "COMMENT ON FUNCTION f() IS 'it; drops';\nDROP FUNCTION IF EXISTS g(int);\n")
    assert [s.split()[0] for s in statements(text)] == ["CREATE", "COMMENT", "DROP"]


@pytest.mark.parametrize("path", resources.sql_files(), ids=lambda p: p.name)
def test_reapplied_file_holds_only_create_or_replace(path):
    bad = [s[:100] for s in statements(path.read_text())
           if not ALLOWED.match(s + " ")
           and not (path.name == "90_grants.sql" and s.split()[0].upper() == "DO")]
    assert bad == [], f"sql/{path.name}: statements that belong in a migration: {bad}"
