"""docs/SQL_REFERENCE.md cannot drift: it must equal memory.api_reference() of a freshly migrated
database (run `make docs` after changing sql/ or migrations/)."""

from __future__ import annotations

import difflib
from pathlib import Path

from pgmemo.docs import reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "SQL_REFERENCE.md"


def test_committed_reference_matches_the_database(dsn):
    expected = reference(dsn)
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                        "docs/SQL_REFERENCE.md", "memory.api_reference()", n=1))
    assert current == expected, f"docs/SQL_REFERENCE.md is out of date: run `make docs`\n{diff[:4000]}"


def test_reference_covers_every_function_and_view(conn):
    text = conn.execute("SELECT memory.api_reference() AS t").fetchone()["t"]
    objects = conn.execute(
        "SELECT p.proname AS name FROM pg_proc AS p WHERE p.pronamespace = 'memory'::regnamespace"
        " UNION SELECT c.relname FROM pg_class AS c"
        " WHERE c.relnamespace = 'memory'::regnamespace AND c.relkind IN ('v', 'm')").fetchall()
    assert len(objects) > 20
    for row in objects:
        assert f"### memory.{row['name']}\n" in text, row["name"]
    assert "_(no comment)_" not in text, "a public function or view has no COMMENT ON"
    assert "memory.search(domain text, query_embedding vector, k integer DEFAULT 5" in text


def test_docs_command_check_mode(dsn, tmp_path):
    from pgmemo.docs import main

    out = tmp_path / "ref.md"
    assert main(["--dsn", dsn, "--output", str(out)]) == 0
    assert main(["--dsn", dsn, "--output", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "drift\n")
    assert main(["--dsn", dsn, "--output", str(out), "--check"]) == 1
