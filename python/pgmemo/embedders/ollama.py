"""Ollama embedder: POST {base}/api/embed with a batch of inputs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ._http import HTTPEmbedder
from .base import PermanentEmbeddingError

DEFAULT_URL = "http://localhost:11434"
DEFAULT_MODEL = "nomic-embed-text"


def normalise_base_url(url: str) -> str:
    """`http://h:11434`, `.../`, `.../api` and `.../api/` all become `http://h:11434`."""
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")].rstrip("/")
    return url


class OllamaEmbedder(HTTPEmbedder):
    """Embeds through a running Ollama server (`OLLAMA_API_URL`, `OLLAMA_EMBEDDING_MODEL`)."""

    name = "ollama"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        timeout: float = 30.0,
        batch_size: int = 32,
        max_retries: int = 4,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 20.0,
        expected_dimension: int | None = None,
    ) -> None:
        self.base_url = normalise_base_url(
            base_url or os.environ.get("OLLAMA_API_URL") or DEFAULT_URL
        )
        super().__init__(
            url=f"{self.base_url}/api/embed",
            model=model or os.environ.get("OLLAMA_EMBEDDING_MODEL") or DEFAULT_MODEL,
            timeout=timeout,
            batch_size=batch_size,
            max_retries=max_retries,
            retry_wait_initial=retry_wait_initial,
            retry_wait_max=retry_wait_max,
            expected_dimension=expected_dimension,
        )

    def _payload(self, texts: list[str]) -> dict[str, Any]:
        return {"model": self.model, "input": texts}

    def _vectors(self, body: Any, texts: list[str]) -> Sequence[Any]:
        if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
            raise PermanentEmbeddingError(
                f"ollama: malformed reply from {self.url}: no 'embeddings' list"
            )
        embeddings: list[Any] = body["embeddings"]
        return embeddings
