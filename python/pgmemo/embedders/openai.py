"""OpenAI (or any OpenAI-compatible endpoint) embedder: POST {base_url}/embeddings."""

from __future__ import annotations

import array
import base64
import binascii
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._http import HTTPEmbedder
from .base import EmbeddingError, PermanentEmbeddingError

log = logging.getLogger("pgmemo.embedders")

ENCODINGS = ("base64", "float")

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "text-embedding-3-small"


class OpenAIEmbedder(HTTPEmbedder):
    """Embeds through `/embeddings` (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_EMBEDDING_MODEL`).

    `dimensions` asks the model for shortened vectors (text-embedding-3-*); the reply is
    then checked against it. The API key may be omitted for local compatible servers.

    `encoding_format` (`OPENAI_EMBEDDING_ENCODING`): "base64" (the default, what OpenAI's own
    client asks for) gets each vector as base64 of its float32 values, a quarter of the bytes of
    JSON numbers and decoded without parsing a number per value; "float" gets lists of numbers.
    A server that answers lists anyway is read as well, and one that refuses the parameter
    (HTTP 400/422 naming it) is asked for lists from then on.
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
        encoding_format: str | None = None,
    ) -> None:
        encoding_format = (encoding_format or os.environ.get("OPENAI_EMBEDDING_ENCODING")
                           or "base64").strip().lower()
        if encoding_format not in ENCODINGS:
            raise ValueError(f"encoding_format must be one of {', '.join(ENCODINGS)}, "
                             f"got {encoding_format!r}")
        self.encoding_format = encoding_format
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
        if self.encoding_format == "base64":
            payload["encoding_format"] = "base64"
        return payload

    def _embed_batch(self, texts: list[str]) -> Sequence[Any]:
        try:
            return super()._embed_batch(texts)
        except PermanentEmbeddingError as exc:
            if not self._refuses_base64(exc):
                raise
        return super()._embed_batch(texts)

    async def _aembed_batch(self, texts: list[str]) -> Sequence[Any]:
        try:
            return await super()._aembed_batch(texts)
        except PermanentEmbeddingError as exc:
            if not self._refuses_base64(exc):
                raise
        return await super()._aembed_batch(texts)

    def _refuses_base64(self, exc: PermanentEmbeddingError) -> bool:
        """A server that does not take encoding_format: ask for lists of numbers from now on."""
        if self.encoding_format != "base64" or exc.status_code not in (400, 422):
            return False
        if "encoding" not in (exc.provider_message or str(exc)).lower():
            return False
        log.warning("%s: %s refuses encoding_format=base64 (%s); asking for lists of numbers",
                    self.name, self.url, exc.provider_message or exc)
        self.encoding_format = "float"
        return True

    def _decode(self, embedding: Any, index: int) -> Any:
        """A base64 embedding as a list of floats (little-endian float32, as OpenAI sends it);
        anything else as it came (checked by Embedder._validate)."""
        if not isinstance(embedding, str):
            return embedding
        try:
            raw = base64.b64decode(embedding, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PermanentEmbeddingError(
                f"openai: malformed reply from {self.url}: embedding {index} is not base64 ({exc})"
            ) from exc
        if not raw or len(raw) % 4:
            raise PermanentEmbeddingError(
                f"openai: malformed reply from {self.url}: embedding {index} has {len(raw)} "
                "bytes, not a whole number of float32 values"
            )
        values = array.array("f", raw)
        if sys.byteorder != "little":
            values.byteswap()
        return values.tolist()

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
        return [self._decode(item.get("embedding"), item["index"]) for item in items]
