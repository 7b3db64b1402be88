"""bench/storage.py at a tiny size: the script runs, and the structural facts it reports hold
(sizes and recall, never timings)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_tiny_storage_bench(dsn) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import storage
    finally:
        sys.path.remove(str(BENCH))
    r = storage.main(["--tiny", "--dsn", dsn])
    v, h = r["halfvec"]["vector"], r["halfvec"]["halfvec"]
    assert h["hnsw_bytes"] < 0.75 * v["hnsw_bytes"], (h, v)
    assert h["recall_at_10"] >= 0.9 and v["recall_at_10"] >= 0.9
    plain, external = r["storage"]["plain"], r["storage"]["external"]
    assert plain["toast_bytes"] < 0.1 * external["toast_bytes"], (plain, external)
    assert external["heap_bytes"] < plain["heap_bytes"]
    text = storage.markdown(r)
    assert text.startswith(storage.BEGIN) and text.endswith(storage.END)
