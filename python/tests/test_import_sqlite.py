"""`pgmemo import-sqlite` from an SQLite database and a FAISS index built in the test (faiss-cpu):
every row and vector equal after the import, a second run adds nothing, an interrupted import
resumes to exact counts, dry run writes nothing, IndexIDMap ids, missing vectors and a dimension
mismatch (rows queued for the worker instead)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pgmemo.cli import main as cli_main
from pgmemo.cli_import import Columns, run_import

faiss = pytest.importorskip("faiss", reason="faiss-cpu is needed: pip install 'pgmemo[faiss]'")

DIM = 8
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_sqlite(path: Path, n: int, *, text_ids: bool = False) -> list[dict]:
    """A memories table as the old store kept it: JSON metadata text, source, importance, times
    as ISO text (created) and epoch seconds (updated)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE memories (id {} PRIMARY KEY, content TEXT NOT NULL, metadata TEXT,"
               " source TEXT, importance REAL, created_at TEXT, updated_at REAL)"
               .format("TEXT" if text_ids else "INTEGER"))
    rows = []
    for i in range(n):
        created = T0 + timedelta(minutes=i)
        row = {"id": f"m-{i}" if text_ids else i + 1, "content": f"memory {i}: the {i % 7} cats",
               "metadata": json.dumps({"tags": [i % 3], "k": f"v{i}"}) if i % 5 else None,
               "source": "chat" if i % 2 else None, "importance": round(i / n, 3) if i % 4 else None,
               "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
               "updated_at": (created + timedelta(hours=1)).timestamp()}
        rows.append(row)
    db.executemany("INSERT INTO memories VALUES (:id, :content, :metadata, :source, :importance,"
                   " :created_at, :updated_at)", rows)
    db.commit()
    db.close()
    return rows


def vectors(n: int, dim: int = DIM, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


def expected_metadata(row: dict) -> dict:
    meta = json.loads(row["metadata"]) if row["metadata"] else {}
    if row["source"] is not None:
        meta["source"] = row["source"]
    if row["importance"] is not None:
        meta["importance"] = row["importance"]
    return meta


def stored(conn, domain: str) -> dict[str, dict]:
    return {r["id"]: r for r in conn.execute(
        f"SELECT * FROM memory_data.{domain}_memories").fetchall()}


def invoke(dsn: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_main, ["--dsn", dsn, "import-sqlite", *args])
    return result.exit_code, result.output


def test_flat_index_import_is_exact_idempotent_and_verified(conn, dsn, tmp_path) -> None:
    rows = make_sqlite(tmp_path / "old.db", 2500)
    vecs = vectors(2500)
    index = faiss.IndexFlatIP(DIM)
    index.add(vecs)
    faiss.write_index(index, str(tmp_path / "old.faiss"))
    args = ["--sqlite", str(tmp_path / "old.db"), "--faiss", str(tmp_path / "old.faiss"),
            "--domain", "old", "--json"]

    # Dry run: reports, writes nothing (not even the domain).
    code, out = invoke(dsn, *args, "--dry-run")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["dry_run"] and report["source_rows"] == 2500 and report["vectors_used"] == 2500
    assert conn.execute("SELECT count(*) AS n FROM memory.domains").fetchone()["n"] == 0

    code, out = invoke(dsn, *args)
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert (report["inserted"], report["updated"], report["unchanged"]) == (2500, 0, 0)
    assert report["batches"] == 3 and report["created_domain"] and report["dimension"] == DIM
    assert report["verify"]["ok"] and report["verify"]["rows_found"] == 2500
    assert report["verify"]["vectors_compared"] == 100

    # Every row and every vector, compared here independently of the command's own check.
    got = stored(conn, "old")
    assert len(got) == 2500
    for i, row in enumerate(rows):
        g = got[str(row["id"])]
        assert g["content"] == row["content"]
        assert g["metadata"] == expected_metadata(row)
        assert g["created_at"] == T0 + timedelta(minutes=i)
        assert g["updated_at"] == T0 + timedelta(minutes=i, hours=1)
        assert np.array_equal(g["embedding"].to_numpy(), vecs[i])
    assert conn.execute("SELECT * FROM memory.queue_counts('old')").fetchone()["ready"] == 0
    # Nothing was re-embedded: a search with a stored vector finds its own row.
    hit = conn.execute("SELECT id FROM memory.search('old', %s::vector, 1)",
                       (str(vecs[1234].tolist()),)).fetchone()
    assert hit["id"] == "1235"

    # A second run adds nothing and changes nothing.
    code, out = invoke(dsn, *args, "--sample", "0")
    report = json.loads(out[out.index("{"):])
    assert code == 0 and (report["inserted"], report["updated"], report["unchanged"]) == (0, 0, 2500)
    assert report["verify"]["vectors_compared"] == 2500 and report["verify"]["ok"]
    assert conn.execute("SELECT count(*) AS n FROM memory_data.old_memories").fetchone()["n"] == 2500

    # The human report.
    code, out = invoke(dsn, *args[:-1])
    assert code == 0 and "2500 rows from" in out and "-> OK" in out and "unchanged 2500" in out


def test_interrupted_import_resumes_to_exact_counts(conn, dsn, tmp_path) -> None:
    make_sqlite(tmp_path / "old.db", 2300)
    vecs = vectors(2300)
    index = faiss.IndexFlatL2(DIM)
    index.add(vecs)
    faiss.write_index(index, str(tmp_path / "old.faiss"))
    conn.execute("SELECT memory.create_domain('resume', %s)", (DIM,))

    def run(**kw):
        return run_import(dsn, tmp_path / "old.db", "memories", "resume", cols=Columns(),
                          faiss_path=tmp_path / "old.faiss", batch_size=500, **kw)

    # Killed after two batches were committed (progress is reported after each commit).
    done = []

    def killed_after_two(n: int, total: int) -> None:
        done.append(n)
        if len(done) == 2:
            raise KeyboardInterrupt("killed mid-import")

    with pytest.raises(KeyboardInterrupt):
        run(progress=killed_after_two)
    assert conn.execute("SELECT count(*) AS n FROM memory_data.resume_memories").fetchone()["n"] == 1000

    report = run()
    assert (report.inserted, report.updated, report.unchanged) == (1300, 0, 1000)
    assert report.verify["ok"] and report.verify["rows_found"] == 2300
    assert conn.execute("SELECT count(*) AS n, count(DISTINCT id) AS d FROM memory_data.resume_memories"
                        ).fetchone() == {"n": 2300, "d": 2300}


def test_id_map_missing_vectors_and_dimension_mismatch(conn, dsn, tmp_path) -> None:
    rows = make_sqlite(tmp_path / "old.db", 300)
    vecs = vectors(300)
    # IndexIDMap keyed by the SQLite id, in another order, with every 10th row missing.
    keep = [i for i in range(300) if i % 10 != 3][::-1]
    index = faiss.IndexIDMap(faiss.IndexFlatIP(DIM))
    index.add_with_ids(vecs[keep], np.array([rows[i]["id"] for i in keep], dtype="int64"))
    faiss.write_index(index, str(tmp_path / "idmap.faiss"))

    code, out = invoke(dsn, "--sqlite", str(tmp_path / "old.db"), "--faiss", str(tmp_path / "idmap.faiss"),
                       "--domain", "idmap", "--batch-size", "128", "--sample", "0", "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["faiss"]["map"] == "id"
    assert (report["vectors_used"], report["vectors_missing"]) == (270, 30)
    assert report["verify"]["ok"] and report["verify"]["vectors_compared"] == 270
    got = stored(conn, "idmap")
    for i, row in enumerate(rows):
        emb = got[str(row["id"])]["embedding"]
        if i % 10 == 3:
            assert emb is None
        else:
            assert np.array_equal(emb.to_numpy(), vecs[i])
    # The rows without a vector are queued for the worker.
    assert conn.execute("SELECT ready FROM memory.queue_counts('idmap')").fetchone()["ready"] == 30

    # A domain of another dimension: no vector is imported, every row is queued, and a re-run
    # still adds nothing (and keeps whatever the worker wrote meanwhile).
    conn.execute("SELECT memory.create_domain('wide', 16)")
    code, out = invoke(dsn, "--sqlite", str(tmp_path / "old.db"), "--faiss", str(tmp_path / "idmap.faiss"),
                       "--domain", "wide", "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["vectors_used"] == 0 and report["vectors_ignored"] == 270
    assert report["rows_without_vector"] == 300 and report["inserted"] == 300
    assert any("16" in w and "queued" in w for w in report["warnings"])
    assert conn.execute("SELECT ready FROM memory.queue_counts('wide')").fetchone()["ready"] == 300
    conn.execute("UPDATE memory_data.wide_memories SET embedding = array_fill(1, ARRAY[16])::real[]::vector"
                 " WHERE id = '1'")
    code, out = invoke(dsn, "--sqlite", str(tmp_path / "old.db"), "--faiss", str(tmp_path / "idmap.faiss"),
                       "--domain", "wide", "--json")
    report = json.loads(out[out.index("{"):])
    assert (report["inserted"], report["updated"], report["unchanged"]) == (0, 0, 300)
    assert conn.execute("SELECT embedding IS NOT NULL AS e FROM memory_data.wide_memories WHERE id = '1'"
                        ).fetchone()["e"]


def test_text_ids_other_column_names_and_no_faiss(conn, dsn, tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "notes.db")
    db.execute("CREATE TABLE notes (note_id TEXT PRIMARY KEY, body TEXT, extra TEXT, origin TEXT,"
               " weight INTEGER, made TEXT, changed TEXT)")
    db.executemany("INSERT INTO notes VALUES (?, ?, ?, ?, ?, ?, ?)", [
        ("a", "first note", '{"x": 1}', "mail", 3, "2023-01-02T03:04:05Z", None),
        ("b", "second note", "not json", None, None, "2023-01-02 03:04:05+02:00", "garbage"),
    ])
    db.commit()
    db.close()
    base = ["--sqlite", str(tmp_path / "notes.db"), "--table", "notes", "--domain", "notes"]
    code, out = invoke(dsn, *base)
    assert code != 0 and "column 'id' (--id-column) not found" in out
    code, out = invoke(dsn, *base, "--id-column", "note_id", "--content-column", "body")
    assert code != 0 and "does not exist" in out and "--dimension" in out
    code, out = invoke(dsn, *base, "--id-column", "note_id", "--content-column", "body",
                       "--metadata-column", "extra", "--source-column", "origin",
                       "--importance-column", "weight", "--created-column", "made",
                       "--updated-column", "changed", "--dimension", "4")
    assert code == 0, out
    assert "inserted 2" in out and "-> OK" in out and "unreadable time 'garbage'" in out
    got = stored(conn, "notes")
    assert got["a"]["metadata"] == {"x": 1, "source": "mail", "importance": 3}
    assert got["b"]["metadata"] == {"metadata": "not json"}
    assert got["a"]["created_at"] == datetime(2023, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert got["b"]["created_at"] == datetime(2023, 1, 2, 1, 4, 5, tzinfo=timezone.utc)
    assert conn.execute("SELECT ready FROM memory.queue_counts('notes')").fetchone()["ready"] == 2
    code, out = invoke(dsn, *base, "--id-column", "note_id", "--content-column", "body",
                       "--metadata-column", "nope")
    assert code != 0 and "column 'nope' (--metadata-column) not found" in out
