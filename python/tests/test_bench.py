"""The benchmark scripts cannot rot: bench/run.py --tiny runs every section (seconds, synthetic
data, a fake embedder) against the test server, and `pgmemo bench` runs its quick suite.
Nothing here asserts a timing: benchmarks are not tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgmemo.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_run():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_tiny_suite_writes_results_markdown_and_plot(dsn, tmp_path, bench_run):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Search quality\n\nkept as it is\n")
    result = bench_run.main(["--tiny", "--dsn", dsn, "--results-dir", str(tmp_path),
                             "--markdown", str(md), "--real-rows", "600", "--queries", "20",
                             "--seg-domains", "2", "--seg-rows", "300", "--ingest-rows", "300",
                             "--backfill-rows", "40"])
    saved = json.loads((tmp_path / "tiny.json").read_text())
    assert saved["search"]["rows"] == 600
    sweep = saved["search"]["sweep"]
    assert set(sweep) >= {"memory.search (SQL)", "MemoryStore.search (Python)",
                          "hand-written pgvector query", "exact (sequential scan)"}
    # Tiny data: every contender finds the true neighbours (the recall plumbing works).
    assert sweep["exact (sequential scan)"][0]["recall"] == 1.0
    assert sweep["memory.search (SQL)"][-1]["recall"] >= 0.9
    assert all(f["rows_returned"] == min(10, f.get("matching_rows", 10))
               for f in saved["search"]["filters"]), "filtered searches return k rows"
    engines = {r["engine"] for r in saved["segmentation"]["runs"]}
    assert "domain table (memory.search)" in engines and len(engines) == 4
    assert {(r["method"], r["index_present"]) for r in saved["ingest"]["runs"]} >= {
        ("store_many", True), ("binary COPY", True), ("store_many", False), ("binary COPY", False)}
    assert saved["backfill"]["embedded_rows"] == 40
    text = md.read_text()
    assert "## Search quality\n\nkept as it is" in text, "other sections are preserved"
    assert text.count("bench:begin") == 1 and "### Targets" in text
    # Regenerating replaces the section instead of appending a second one.
    bench_run.report.write_markdown(result, md, None)
    assert md.read_text().count("bench:begin") == 1
    pytest.importorskip("matplotlib")
    assert (tmp_path / "tiny_recall_latency.png").stat().st_size > 1000


def test_pgmemo_bench_cli(dsn):
    res = CliRunner().invoke(main, ["--dsn", dsn, "bench", "--rows", "300", "--queries", "10",
                                    "--ef", "40", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["sweep"][0]["recall"] >= 0.9 and out["rows"] == 300
    domains = CliRunner().invoke(main, ["--dsn", dsn, "domain", "list", "--json"])
    assert out["domain"] not in domains.output, "the scratch domain is dropped"


def test_bulk_load_cli_and_client(dsn, store):
    store.create_domain("bulky", dimension=3)
    res = CliRunner().invoke(main, ["--dsn", dsn, "bulk-load", "begin", "bulky"])
    assert res.exit_code == 0, res.output
    assert "bulky_memories_hnsw" in res.output
    store.store_many(["a", "b"], domain="bulky", embeddings=[[1, 0, 0], None])
    res = CliRunner().invoke(main, ["--dsn", dsn, "bulk-load", "finish", "bulky",
                                    "--maintenance-work-mem", "64MB"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["queued_rows"] == 1 and info["hnsw_index"] == "bulky_memories_hnsw"
    assert store.bulk_load_begin("bulky") and store.bulk_load_finish("bulky")["queued_rows"] == 0
    res = CliRunner().invoke(main, ["--dsn", dsn, "bulk-load", "begin", "nope"])
    assert res.exit_code != 0 and "42704" in res.output
