"""A local HTTP server speaking OpenAI's /v1/embeddings protocol, for pipeline tests.

Like OpenAI, it answers `"encoding_format": "base64"` with each vector as base64 of its
little-endian float32 values, and lists of floats otherwise.

Vectors are deterministic (a hash of the text, L2-normalised), so a test can check that a row
holds the embedding of exactly its content. Every text received is counted (`sent[text]`; embedded ones in `calls[text]`), and
knobs make the provider misbehave: `down` (HTTP 503), `delay` (seconds per request), `bad`
(a substring that makes the whole request fail with HTTP 400, like a too-long input), and
`hold` (a substring whose requests block until `release()`).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import math
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def fake_vector(text: str, dim: int) -> list[float]:
    raw: list[float] = []
    counter = 0
    while len(raw) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    raw = raw[:dim]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def encode_vector(vector: list[float], encoding: str | None) -> Any:
    """A vector as OpenAI sends it: base64 of little-endian float32 values, or a list."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


class FakeProvider:
    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.sent: collections.Counter[str] = collections.Counter()  # every text received
        self.calls: collections.Counter[str] = collections.Counter()  # texts embedded (HTTP 200)
        self.requests = 0
        self.encodings: collections.Counter[str | None] = collections.Counter()  # encoding_format asked
        self.lock = threading.Lock()
        self.down = False
        self.delay = 0.0
        self.bad: str | None = None
        self.hold: str | None = None
        self.held = threading.Event()  # set when a held request arrived
        self._release = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                texts: list[str] = body["input"]
                provider.encodings[body.get("encoding_format")] += 1
                status, reply = provider._answer(texts, body.get("encoding_format"))
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (killed worker)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the async tests open hundreds of connections at once

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def _answer(self, texts: list[str], encoding: str | None = None) -> tuple[int, dict[str, Any] | bytes]:
        with self.lock:
            self.requests += 1
            self.sent.update(texts)
        if self.hold and any(self.hold in t for t in texts):
            self.held.set()
            self._release.wait(60)
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            return 503, {"error": {"message": "the model is overloaded, try later"}}
        if self.bad and any(self.bad in t for t in texts):
            return 400, {"error": {"message": f"input contains the forbidden token {self.bad}"}}
        with self.lock:
            self.calls.update(texts)
        return 200, {"object": "list", "model": "fake-embed",
                     "data": [{"object": "embedding", "index": i,
                               "embedding": encode_vector(fake_vector(t, self.dim), encoding)}
                              for i, t in enumerate(texts)]}

    def release(self) -> None:
        self.hold = None
        self._release.set()

    def embedder(self, **kwargs: Any):
        from pgmemo.embedders import OpenAIEmbedder

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return OpenAIEmbedder(base_url=self.base_url, api_key="test", model="fake-embed", **kwargs)

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
