"""bench/trust.py at a tiny size (make bench runs it in full): the script runs against two trees
(here this checkout twice, so it needs no git history) and reports every case, ratio included."""

from __future__ import annotations

import sys
from pathlib import Path

from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_trust_bench(dsn) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import trust
    finally:
        sys.path.remove(str(ROOT / "bench"))
    r = trust.main(["--tiny", "--before-tree", str(ROOT), "--server-dsn", make_conninfo(dsn, dbname="postgres")])
    assert len(r["cases"]) == 13 and all(c["ratio"] > 0 for c in r["cases"].values())
    assert r["search_text_shapes"]["200 OR'ed words"]["now"].startswith("refused")
    text = trust.markdown(r, "x")
    assert text.startswith(trust.BEGIN) and text.endswith(trust.END)
