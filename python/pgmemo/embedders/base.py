"""The embedder interface shared by every provider, and its errors."""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any

#: The types of a plain JSON number (bool is not one): a vector of only these is checked at C speed.
_PLAIN_NUMBERS = frozenset({int, float})


class EmbeddingError(Exception):
    """Any failure to turn texts into vectors."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        provider_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider_message = provider_message
        self.retry_after = retry_after


class TransientEmbeddingError(EmbeddingError):
    """A failure worth retrying later: 429, 5xx, timeout, unreachable server."""


class PermanentEmbeddingError(EmbeddingError):
    """A failure that retrying will not fix: bad request, bad reply, wrong dimension."""


class Embedder(ABC):
    """Turns texts into vectors, one per text, in order.

    Subclasses implement `_embed_batch`; `embed` batches, validates and learns
    `dimension` from the first reply when it was not known.
    """

    name: str
    model: str
    dimension: int | None
    expected_dimension: int | None
    batch_size: int

    def __init__(
        self,
        *,
        model: str,
        batch_size: int,
        dimension: int | None = None,
        expected_dimension: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if expected_dimension is not None and expected_dimension < 1:
            raise ValueError(f"expected_dimension must be >= 1, got {expected_dimension}")
        self.model = model
        self.batch_size = batch_size
        self.expected_dimension = expected_dimension
        if None not in (dimension, expected_dimension) and dimension != expected_dimension:
            raise PermanentEmbeddingError(
                f"{self.name} model {model!r} returns {dimension} dimensions, "
                f"expected {expected_dimension}"
            )
        self.dimension = dimension if dimension is not None else expected_dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed `texts` in batches of `batch_size`; one finite vector per text, same order."""
        texts = self._check_texts(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(self._validate(self._embed_batch(batch), len(batch)))
        return vectors

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """embed() for asyncio: HTTP providers await an httpx.AsyncClient; others (the local
        model) run each batch in a thread so the event loop is never blocked."""
        texts = self._check_texts(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(self._validate(await self._aembed_batch(batch), len(batch)))
        return vectors

    async def _aembed_batch(self, texts: list[str]) -> Sequence[Any]:
        return await asyncio.to_thread(self._embed_batch, texts)

    async def aclose(self) -> None:
        """Release async resources (the async HTTP client). Safe to call twice."""
        return None

    def embed_one(self, text: str) -> list[float]:
        """Embed a single text."""
        return self.embed([text])[0]

    @staticmethod
    def _check_texts(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a single string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        return texts

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> Sequence[Any]:
        """Return the provider's raw vectors for one batch (validated by the caller)."""

    def _validate(self, vectors: Any, count: int) -> list[list[float]]:
        """Check the reply's shape and values; learn `dimension` from it."""
        if not isinstance(vectors, (list, tuple)) or len(vectors) != count:
            got = len(vectors) if isinstance(vectors, (list, tuple)) else type(vectors).__name__
            raise PermanentEmbeddingError(
                f"{self.name}: malformed reply: {got} vectors for {count} inputs"
            )
        result: list[list[float]] = []
        for i, vector in enumerate(vectors):
            # One C-level pass per check (map/set, no bytecode per value): a batch of 384-d
            # vectors is checked in well under a millisecond.
            if (
                not isinstance(vector, (list, tuple))
                or not vector
                or not (
                    set(map(type, vector)) <= _PLAIN_NUMBERS
                    or all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector)
                )
            ):
                raise PermanentEmbeddingError(
                    f"{self.name}: malformed reply: vector {i} is not a non-empty list of numbers"
                )
            expected = self.expected_dimension or self.dimension
            if expected is not None and len(vector) != expected:
                raise PermanentEmbeddingError(
                    f"{self.name} model {self.model!r} returned {len(vector)} dimensions, "
                    f"expected {expected}"
                )
            floats = list(map(float, vector))
            if not all(map(math.isfinite, floats)):
                raise PermanentEmbeddingError(
                    f"{self.name} model {self.model!r} returned a non-finite value "
                    f"(NaN or infinity) in vector {i}"
                )
            if self.dimension is None:
                self.dimension = len(floats)
            result.append(floats)
        return result

    def close(self) -> None:
        """Release resources (connections, models). Safe to call twice."""
        return None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dimension={self.dimension})"
