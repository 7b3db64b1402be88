"""OpenAI (or any OpenAI-compatible endpoint) embedder: POST {base_url}/embeddings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ._http import HTTPEmbedder
from .base import EmbeddingError, PermanentEmbeddingError

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "text-embedding-3-small"


class OpenAIEmbedder(HTTPEmbedder):
    """Embeds through `/embeddings` (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_EMBEDDING_MODEL`).

    `dimensions` asks the model for shortened vectors (text-embedding-3-*); the reply is
    then checked against it. The API key may be omitted for local compatible servers.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        *,
        dimensions: int | None = None,
        timeout: float = 60.0,
        batch_size: int = 100,
        max_retries: int = 4,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 20.0,
        expected_dimension: int | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_URL).strip()
        self.base_url = self.base_url.rstrip("/")
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None and self.base_url == DEFAULT_URL:
            raise EmbeddingError(
                "openai: OPENAI_API_KEY is not set (needed for the OpenAI API; "
                "set OPENAI_BASE_URL for a compatible server without a key)"
            )
        self.dimensions = dimensions
        super().__init__(
            url=f"{self.base_url}/embeddings",
            model=model or os.environ.get("OPENAI_EMBEDDING_MODEL") or DEFAULT_MODEL,
            timeout=timeout,
            batch_size=batch_size,
            max_retries=max_retries,
            retry_wait_initial=retry_wait_initial,
            retry_wait_max=retry_wait_max,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
            dimension=dimensions,
            expected_dimension=expected_dimension,
        )

    def _payload(self, texts: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        return payload

    def _vectors(self, body: Any, texts: list[str]) -> Sequence[Any]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not all(
            isinstance(item, dict) and isinstance(item.get("index"), int) for item in data
        ):
            raise PermanentEmbeddingError(
                f"openai: malformed reply from {self.url}: no 'data' list of indexed embeddings"
            )
        items = sorted(data, key=lambda item: item["index"])
        if [item["index"] for item in items] != list(range(len(items))):
            raise PermanentEmbeddingError(
                f"openai: malformed reply from {self.url}: indexes are not 0..{len(texts) - 1}"
            )
        return [item.get("embedding") for item in items]
