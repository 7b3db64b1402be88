"""Embedding providers: ollama, openai (and compatible servers), local (offline model).

`get_embedder()` picks one from `PGMEMO_EMBEDDER`; every provider has the same
`embed(texts) -> list[list[float]]` and raises `TransientEmbeddingError` (retry later) or
`PermanentEmbeddingError` (retrying will not help).
"""

from __future__ import annotations

import os
from typing import Any

from .base import (
    Embedder,
    EmbeddingError,
    PermanentEmbeddingError,
    TransientEmbeddingError,
)
from .local import LocalEmbedder
from .ollama import OllamaEmbedder
from .openai import OpenAIEmbedder

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "EmbeddingError",
    "LocalEmbedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "PermanentEmbeddingError",
    "TransientEmbeddingError",
    "get_embedder",
]

EMBEDDERS: dict[str, type[Embedder]] = {
    "ollama": OllamaEmbedder,
    "openai": OpenAIEmbedder,
    "local": LocalEmbedder,
}


def get_embedder(name: str | None = None, **kwargs: Any) -> Embedder | None:
    """The embedder named by `name` or `PGMEMO_EMBEDDER`; None for "none" or unset.

    Keyword arguments go to the provider's constructor.
    """
    if name is None:
        name = os.environ.get("PGMEMO_EMBEDDER", "")
    key = name.strip().lower()
    if key in ("", "none"):
        return None
    try:
        cls = EMBEDDERS[key]
    except KeyError:
        choices = ", ".join([*EMBEDDERS, "none"])
        raise ValueError(f"unknown embedder {name!r}: choose one of {choices}") from None
    return cls(**kwargs)
