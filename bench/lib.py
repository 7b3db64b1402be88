"""Benchmark helpers: servers, data, ground truth, timing. No SQL logic beyond what the
contenders themselves run."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, *, clusters: int = 100, spread: float = 0.35, seed: int = 0,
              centers: np.ndarray | None = None) -> np.ndarray:
    """n unit vectors around `clusters` random centres (a stand-in for real embeddings, which
    are clustered by topic). Pass `centers` to draw from an existing mixture."""
    rng = np.random.default_rng(seed)
    if centers is None:
        centers = normalize(rng.standard_normal((clusters, dim)).astype(np.float32))
    which = rng.integers(0, len(centers), n)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * (spread / np.sqrt(dim))
    return normalize(centers[which] + noise)


def exact_knn(data: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None,
              batch: int = 256) -> np.ndarray:
    """Indices of the k nearest rows by cosine distance (unit vectors: largest dot product),
    brute force in float32; mask keeps only some rows (a filter)."""
    idx_map = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
    sub = data if mask is None else data[idx_map]
    out = np.empty((len(queries), min(k, len(sub))), dtype=np.int64)
    for s in range(0, len(queries), batch):
        sims = queries[s:s + batch] @ sub.T
        kk = out.shape[1]
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(sims, part, 1).argsort(axis=1)[:, ::-1]
        out[s:s + batch] = idx_map[np.take_along_axis(part, order, 1)]
    return out


def recall(results: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = 0
    for got, want in zip(results, truth):
        hits += len(set(got[:k]) & set(want[:k].tolist()))
    return hits / (len(results) * k)


@dataclass
class Timing:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    qps: float
    samples_ms: list | None = None  # per query, in query order (time_interleaved)


def time_queries(fn, queries, warmup: int = 10) -> tuple[Timing, list]:
    """Run fn(q) for each query (after a warm-up), one at a time; latency as seen by the caller."""
    for q in queries[:warmup]:
        fn(q)
    times, results = [], []
    pc = time.perf_counter
    t_all = pc()
    for q in queries:
        t0 = pc()
        r = fn(q)
        times.append(pc() - t0)
        results.append(r)
    total = pc() - t_all
    times_ms = np.array(times) * 1000
    return Timing(p50_ms=round(float(np.percentile(times_ms, 50)), 3),
                  p99_ms=round(float(np.percentile(times_ms, 99)), 3),
                  mean_ms=round(float(times_ms.mean()), 3),
                  qps=round(len(queries) / total, 1)), results


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    for mod in ("numpy", "psycopg", "pgvector", "faiss", "torch", "transformers"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except ImportError:
            info[mod] = None
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def median(xs):
    return statistics.median(xs) if xs else None


def paired_ratio(a: Timing, b: Timing) -> float:
    """The median over queries of a's time / b's time for the same query (time_interleaved runs
    them back to back): steadier than a ratio of medians when the machine's load drifts."""
    return round(float(np.median(np.array(a.samples_ms) / np.array(b.samples_ms))), 3)


def time_interleaved(fns: dict, n: int, warmup: int = 10) -> dict:
    """Side by side: for each query i, every contender runs fns[name](i) once, in an order
    rotated per query, so load drift on a shared machine hits all contenders alike.
    Returns name -> (Timing, results)."""
    names = list(fns)
    for i in range(min(warmup, n)):
        for name in names:
            fns[name](i)
    times = {name: [] for name in names}
    results = {name: [] for name in names}
    pc = time.perf_counter
    for i in range(n):
        rot = i % len(names)
        for name in names[rot:] + names[:rot]:
            t0 = pc()
            r = fns[name](i)
            times[name].append(pc() - t0)
            results[name].append(r)
    out = {}
    for name in names:
        ms = np.array(times[name]) * 1000
        out[name] = (Timing(p50_ms=round(float(np.percentile(ms, 50)), 3),
                            p99_ms=round(float(np.percentile(ms, 99)), 3),
                            mean_ms=round(float(ms.mean()), 3),
                            qps=round(1000 / float(ms.mean()), 1),
                            samples_ms=ms.tolist()), results[name])
    return out


def on_server(dsn: str | None, prefix: str, fn):
    """fn(dsn) on the database given, else on a temporary embedded server (stopped after)."""
    if dsn:
        return fn(dsn)
    from pgmemo import embedded

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = embedded.ensure_running(Path(tmp) / "data")
        try:
            return fn(server.dsn)
        finally:
            embedded.stop(Path(tmp) / "data")


def write_section(text: str, path: Path, begin: str, end: str) -> None:
    """Put text (which starts with the begin marker and ends with the end marker) in place of
    the file's section between those markers, or append it; the rest of the file is kept."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + text + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def publish(result: dict, text: str, name: str, begin: str, end: str) -> None:
    """bench/results/<name>.json and the section of BENCHMARKS.md between begin and end."""
    here = Path(__file__).resolve().parent
    (here / "results").mkdir(exist_ok=True)
    (here / "results" / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    write_section(text, here.parent / "BENCHMARKS.md", begin, end)
