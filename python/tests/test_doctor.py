"""`pgmemo doctor` and `pgmemo status` against the real server: exit codes, JSON, --fix."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pgmemo.cli import main


def run(dsn: str, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--dsn", dsn, *args], input=input)


@pytest.fixture
def healthy(conn) -> None:
    conn.execute("SELECT memory.create_domain('notes', 3)")
    conn.execute("SELECT memory.store('notes', 'embedded', embedding => '[1,2,3]')")


def checks(conn, domain: str | None = None) -> set[str]:
    return {r["check_name"] for r in conn.execute(
        "SELECT check_name FROM memory.diagnose(%s)", (domain,)).fetchall()}


def test_clean_database_exits_0(dsn, healthy):
    for args in (["doctor"], ["doctor", "--strict"]):
        result = run(dsn, *args)
        assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.stdout or "healthy" in result.stdout


def test_warnings_exit_1_only_with_strict(dsn, conn, healthy):
    conn.execute("SELECT memory.store('notes', 'waits for a worker')")  # no worker: warning
    result = run(dsn, "doctor")
    assert result.exit_code == 0, result.output
    assert "no_live_worker" in result.stdout
    assert run(dsn, "doctor", "--strict").exit_code == 1


def test_errors_exit_2(dsn, conn, healthy):
    conn.execute("DROP INDEX memory_data.notes_memories_hnsw")
    result = run(dsn, "doctor")
    assert result.exit_code == 2, result.output
    assert "no_vector_index" in result.stdout
    assert "fix: SELECT memory.create_hnsw_index('notes'" in result.stdout


def test_json_parses(dsn, conn, healthy):
    conn.execute("DROP INDEX memory_data.notes_memories_hnsw")
    result = run(dsn, "doctor", "--json", "--domain", "notes")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["counts"]["error"] == 1
    assert data["exit_code"] == 2
    (finding,) = [f for f in data["findings"] if f["check_name"] == "no_vector_index"]
    assert finding == {"severity": "error", "domain": "notes", "check_name": "no_vector_index",
                       "detail": finding["detail"],
                       "fix_sql": "SELECT memory.create_hnsw_index('notes', m => 16, ef_construction => 64);"}


def test_unknown_domain_is_a_clear_error(dsn):
    result = run(dsn, "doctor", "--domain", "nope")
    assert result.exit_code == 1
    assert 'unknown domain "nope"' in result.output and "42704" in result.output


def test_fix_yes_repairs_missing_index_and_unqueued_row(dsn, conn, healthy):
    conn.execute("DROP INDEX memory_data.notes_memories_hnsw")
    conn.execute("ALTER TABLE memory_data.notes_memories DISABLE TRIGGER USER")
    conn.execute("INSERT INTO memory_data.notes_memories (id, content) VALUES ('lost', 'never queued')")
    conn.execute("ALTER TABLE memory_data.notes_memories ENABLE TRIGGER USER")
    assert {"no_vector_index", "unqueued_null_embeddings"} <= checks(conn)

    result = run(dsn, "doctor", "--fix", "--yes")
    assert "applied: SELECT memory.create_hnsw_index('notes'" in result.stdout, result.output
    assert "applied: SELECT memory.enqueue_missing('notes');" in result.stdout
    # The row now waits for a worker (a warning), nothing is an error any more.
    assert result.exit_code == 0, result.output
    assert checks(conn) == {"no_live_worker"}
    assert conn.execute("SELECT count(*) AS n FROM memory.vector_indexes WHERE domain = 'notes'"
                        " AND method = 'hnsw' AND is_valid").fetchone()["n"] == 1
    assert conn.execute("SELECT row_id FROM memory_private.embedding_queue").fetchone()["row_id"] == "lost"


def test_fix_asks_first_and_no_changes_nothing(dsn, conn, healthy):
    conn.execute("DROP INDEX memory_data.notes_memories_hnsw")
    result = run(dsn, "doctor", "--fix", input="n\n")
    assert "fixes to apply:" in result.stdout
    assert result.exit_code == 1  # aborted
    assert "applied:" not in result.stdout
    assert "no_vector_index" in checks(conn)


def test_fix_runs_reindex_concurrently_for_an_invalid_index(dsn, conn, healthy):
    # What a failed CREATE INDEX CONCURRENTLY leaves behind; the fix runs outside a transaction.
    conn.execute("UPDATE pg_catalog.pg_index SET indisvalid = false"
                 " WHERE indexrelid = 'memory_data.notes_memories_fts'::regclass")
    assert checks(conn, "notes") == {"invalid_index"}
    result = run(dsn, "doctor", "--fix", "--yes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["applied"] == [{"fix_sql": "REINDEX INDEX CONCURRENTLY memory_data.notes_memories_fts;",
                                "ok": True, "error": None}]
    assert data["findings"] == []
    assert conn.execute("SELECT indisvalid FROM pg_catalog.pg_index"
                        " WHERE indexrelid = 'memory_data.notes_memories_fts'::regclass"
                        ).fetchone()["indisvalid"]


def test_status_prints_a_line_per_domain(dsn, conn, healthy):
    conn.execute("SELECT memory.create_domain('other', 3)")
    conn.execute("SELECT memory.store('other', 'queued')")
    conn.execute("SELECT memory.worker_heartbeat('w1', 7)")
    result = run(dsn, "status")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["notes"].split()[1:4] == ["1", "1", "100.0%"]
    assert "notes_memories_hnsw (hnsw" in lines["notes"]
    assert lines["other"].split()[1:5] == ["1", "0", "0.0%", "1"]
    assert "workers: 1 alive: w1 (7 done, 0 failed)" in result.stdout

    data = json.loads(run(dsn, "status", "--json").stdout)
    by_domain = {d["domain"]: d for d in data["domains"]}
    assert by_domain["other"]["queue"]["pending"] == 1
    assert by_domain["notes"]["coverage"]["embedded_rows"] == 1
    assert [i["index_name"] for i in by_domain["notes"]["indexes"]] == ["notes_memories_hnsw"]
    assert [w["worker"] for w in data["workers"]] == ["w1"]


def test_doctor_fix_with_pgvector_in_extensions_schema(dsn_ext):
    from pgmemo.client import connect_raw

    with connect_raw(dsn_ext) as c:
        c.execute("SELECT memory.create_domain('notes', 3)")
        c.execute("SELECT memory.store('notes', 'embedded', embedding => '[1,2,3]')")
        c.execute("DROP INDEX memory_data.notes_memories_hnsw")
        assert run(dsn_ext, "doctor").exit_code == 2
        result = run(dsn_ext, "doctor", "--fix", "--yes", "--strict")
        assert result.exit_code == 0, result.output
        row = c.execute("SELECT * FROM memory.explain_search('notes')").fetchone()
        assert row["plan"] and row["uses_index"] in (True, False)
