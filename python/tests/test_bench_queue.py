"""bench/embedq.py cannot rot: a seconds-long run of its sections for pgmemo (pgai's vectorizer
and the 'before' tree are left to `make bench`). Nothing here asserts a timing; the chaos run's
counts of lost rows and stale vectors are asserted, since they are not timings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_queue_bench(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import embedq
    finally:
        sys.path.remove(str(ROOT / "bench"))
    embedq.main(["--tiny", "--contenders", "pgmemo", "--results-dir", str(tmp_path),
                 "--sections", "overhead,throughput,faults,chaos", "--rows", "150",
                 "--overhead-rows", "100", "--fault-rows", "40", "--chaos-rows", "80",
                 "--chaos-seconds", "3", "--timeout", "300", "--fault-timeout", "240"])
    saved = json.loads((tmp_path / "queue-tiny.json").read_text())
    assert saved["contenders"] == ["pgmemo"]
    assert saved["overhead"]["results"]["pgmemo"]["claim_ms_per_row"] > 0
    assert saved["throughput"]["summary"]["pgmemo"]["rows_per_s"] > 0
    faults = saved["faults"]["results"]["pgmemo"]
    assert faults["clean_rows_left"] == 0 and faults["poison_dead_with_message"] == faults["poison_rows"]
    chaos = saved["chaos"]
    assert (chaos["lost"], chaos["not_embedded"], chaos["stale_vectors"]) == (0, 0, 0)
    assert chaos["deadlocks"] == 0, chaos["deadlock_details"]
