"""The real-text corpus for the benchmarks: English passages available offline on any machine
that has pgmemo's virtualenv, embedded once with the local model and cached under bench/cache/.

Sources, in order: docstrings of the installed Python packages and the standard library (files
in a seeded random order, parsed with ast, nothing is imported), then, only if more is needed,
paragraphs of /usr/share/doc text files. Passages are whitespace-normalised,
40..300 characters, deduplicated, and shuffled with a fixed seed; the last `queries` passages are
held out as queries (never inserted).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache"
_WS = re.compile(r"\s+")
_WORDY = re.compile(r"[A-Za-z]{3,}")
# Passages are kept short (a memory is a few sentences): embedding cost grows with length.
MAX_CHARS = 300


def _paragraphs(text: str):
    for para in re.split(r"\n\s*\n", text):
        p = _WS.sub(" ", para.replace("\x00", "")).strip()
        if 40 <= len(p) <= MAX_CHARS and len(_WORDY.findall(p)) >= 6:
            yield p


def _docstrings(paths):
    for path in paths:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    yield from _paragraphs(doc)


def _usr_share_doc(root: Path = Path("/usr/share/doc")):
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == "copyright":
            continue
        try:
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            if len(raw) > 2_000_000 or b"\0" in raw[:4096]:
                continue
            yield from _paragraphs(raw.decode("utf-8", "replace"))
        except (OSError, EOFError, gzip.BadGzipFile):
            continue


def build_passages(limit: int, seed: int = 42) -> list[str]:
    """Up to `limit` distinct passages (deterministic for one machine)."""
    seen: set[str] = set()
    out: list[str] = []
    roots = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib", "stdlib")}
    files = sorted({f for r in roots for f in r.rglob("*.py")})
    # Files in a seeded random order, so a prefix of the corpus samples every package.
    random.Random(seed).shuffle(files)
    for src in (_docstrings(files), _usr_share_doc()):
        if len(out) >= limit:
            break
        for p in src:
            key = hashlib.md5(p.lower().encode()).digest()
            if key in seen:
                continue
            seen.add(key)
            out.append(p)
            if len(out) >= limit:
                break
    random.Random(seed).shuffle(out)
    return out[:limit]


_EMB = None


def _init_worker(batch_size: int) -> None:
    global _EMB
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    from pgmemo.embedders.local import LocalEmbedder

    _EMB = LocalEmbedder(batch_size=batch_size, num_threads=1)


def _embed_chunk(job):
    import numpy as np

    c, texts, workdir = job
    vecs = np.asarray(_EMB.embed(texts), dtype=np.float32)
    np.save(Path(workdir) / f"{c:05d}.npy.tmp.npy", vecs)
    os.replace(Path(workdir) / f"{c:05d}.npy.tmp.npy", Path(workdir) / f"{c:05d}.npy")
    return c, len(texts)


def embed_cached(n: int, queries: int, *, batch_size: int = 32, procs: int | None = None,
                 log=print) -> dict:
    """Passages + embeddings, cached in bench/cache/real_<n>_<queries>.npz. Returns a dict with
    texts (n), vectors (n x 384 float32), query_texts, queries (float32) and the embedding stats
    (seconds, passages/s) of the run that built the cache."""
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"real_{n}_{queries}.npz"
    meta_path = path.with_suffix(".json")
    # A larger cache serves a smaller request: same passages order, same held-out queries.
    for cand in sorted(CACHE.glob(f"real_*_{queries}.npz")):
        m = re.match(r"real_(\d+)_\d+\.npz", cand.name)
        if m and int(m.group(1)) >= n and cand.with_suffix(".json").exists():
            path, meta_path = cand, cand.with_suffix(".json")
            break
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        data = np.load(path, allow_pickle=False)
        texts = json.loads(path.with_suffix(".texts.json").read_text())
        return {"texts": texts["texts"][:n], "vectors": data["vectors"][:n],
                "query_texts": texts["query_texts"], "queries": data["queries"], **meta}

    workdir = CACHE / f"work_{n}_{queries}_{MAX_CHARS}"
    workdir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    if (workdir / "passages.json").exists():
        passages = json.loads((workdir / "passages.json").read_text())
    else:
        passages = build_passages(n + queries)
        if len(passages) < n + queries:
            raise RuntimeError(f"only {len(passages)} passages found, {n + queries} needed")
        (workdir / "passages.json").write_text(json.dumps(passages))
    corpus_s = time.perf_counter() - t0
    texts, query_texts = passages[:n], passages[n:]

    # Sorting by length keeps padding low inside a batch (the main CPU cost). Chunks are written
    # to the work folder as they finish, so an interrupted run resumes where it stopped.
    order = sorted(range(len(passages)), key=lambda i: (len(passages[i]), i))
    chunk = 2048
    todo = [(c, [passages[i] for i in order[c * chunk:(c + 1) * chunk]], str(workdir))
            for c in range((len(order) + chunk - 1) // chunk)
            if not (workdir / f"{c:05d}.npy").exists()]
    procs = procs or os.cpu_count() or 1
    t0 = time.perf_counter()
    done = 0
    if todo:
        import multiprocessing as mp

        # One process per core, one torch thread each: no thread synchronisation, and it
        # degrades gracefully when the cores are shared.
        with mp.get_context("spawn").Pool(procs, initializer=_init_worker,
                                          initargs=(batch_size,)) as pool:
            for c, count in pool.imap_unordered(_embed_chunk, todo):
                done += count
                el = time.perf_counter() - t0
                if log:
                    log(f"  embedded {done}/{sum(len(t[1]) for t in todo)} passages, "
                        f"{done / el:.0f}/s")
    seconds = time.perf_counter() - t0
    vecs = np.zeros((len(passages), 384), dtype=np.float32)
    for c in range((len(order) + chunk - 1) // chunk):
        vecs[order[c * chunk:(c + 1) * chunk]] = np.load(workdir / f"{c:05d}.npy")
    prev = json.loads((workdir / "timing.json").read_text()) if (workdir / "timing.json").exists() else {}
    seconds += prev.get("seconds", 0)
    (workdir / "timing.json").write_text(json.dumps({"seconds": seconds}))
    meta = {"embed_seconds": round(seconds, 1), "embed_per_s": round(len(passages) / seconds, 1),
            "corpus_seconds": round(corpus_s, 1), "embed_processes": procs, "embed_threads": 1,
            "embed_batch_size": batch_size, "passages": len(passages),
            "mean_chars": round(sum(map(len, passages)) / len(passages), 1)}
    np.savez(path, vectors=vecs[:n], queries=vecs[n:])
    path.with_suffix(".texts.json").write_text(json.dumps({"texts": texts, "query_texts": query_texts}))
    meta_path.write_text(json.dumps(meta))
    return {"texts": texts, "vectors": vecs[:n], "query_texts": query_texts, "queries": vecs[n:],
            **meta}


if __name__ == "__main__":
    t = time.perf_counter()
    ps = build_passages(10**7)
    print(len(ps), "passages in", round(time.perf_counter() - t, 1), "s")
    for p in ps[:5]:
        print("-", p[:150])
