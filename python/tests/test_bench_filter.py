"""bench/filter.py at a tiny size: the script runs end to end (today's main installed next to
the new functions, every contender, the report), and the facts it reports that do not depend on
timing hold: recall against the exact filtered answer, the planner's path at both ends."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_tiny_filter_bench(dsn) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import filter as fbench
    finally:
        sys.path.remove(str(BENCH))
    r = fbench.main(["--tiny", "--dsn", dsn])
    rows = {f["filter"]: f for f in r["filters"]}
    assert len(rows) == 13
    for f in rows.values():
        assert f["memory.search"]["recall"] >= 0.95, f
        assert f["exact (forced)"]["recall"] == 1.0, f
    assert rows["0.001% (equality)"]["path"] == "exact"
    assert rows["100% (equality)"]["path"] == "hnsw"
    if r["main_ref"]:  # a shallow clone has no history to install main from
        assert "main memory.search" in rows["1% (equality)"]
    assert set(r["unfiltered"]) == {"40", "100"}
    text = fbench.markdown(r)
    assert text.startswith(fbench.BEGIN) and text.endswith(fbench.END)
