"""Text embeddings behind a two-method interface: ONNX Runtime or sentence-transformers.

:func:`load_embedder` picks the backend the settings ask for. ONNX Runtime in fp32 and
sentence-transformers compute the same vectors (cosine ≥ 0.9999); 8-bit weights stay within
cosine 0.95 of them (0.994 on average over news passages). So an index built with one
answers questions embedded by another.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from corpus.errors import ConfigurationError

if TYPE_CHECKING:
    from .settings import RetrievalSettings

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns text into unit-length float32 vectors; documents and queries may differ.

    ``max_tokens`` is how many of a text's word pieces the model reads (special tokens
    excluded); ``count_tokens`` measures texts in the same unit, so chunks can fit.
    """

    name: str
    dimension: int

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def load_embedder(settings: RetrievalSettings) -> Embedder:
    """The embedder ``settings.embedding_backend`` asks for.

    ``auto`` is the fastest that reproduces the model: ONNX Runtime with 8-bit weights when
    quantising keeps its vectors close (checked once, at export), else ONNX Runtime in fp32,
    else sentence-transformers, with a warning saying why. On the MultiHop-RAG dev split the
    8-bit packaged model retrieves as well as fp32 (README, Performance) and ingests 1.8x
    as fast.
    """
    backend = settings.embedding_backend
    if backend != "torch":
        tries = [True, False] if backend == "auto" else [backend == "onnx-int8"]
        for quantized in tries:
            try:
                from .onnx_backend import load_onnx_embedder

                return load_onnx_embedder(
                    settings.embedding_model,
                    cache_dir=settings.model_cache_dir,
                    quantized=quantized,
                    batch_size=settings.embedding_batch_size,
                )
            except ImportError as exc:
                if backend != "auto":
                    raise ConfigurationError(
                        f"NEWSBOT_EMBEDDING_BACKEND={backend} needs onnxruntime and tokenizers "
                        f"({exc}): pip install onnxruntime tokenizers, or set it to torch"
                    ) from exc
                reason: Exception = exc
                break
            except ConfigurationError as exc:
                if backend != "auto":
                    raise
                reason = exc
                if quantized:
                    logger.info("Embedding with fp32 weights: %s", exc)
        logger.warning("Embedding with sentence-transformers instead of ONNX Runtime: %s", reason)
    from .torch_backend import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        settings.embedding_model, batch_size=settings.embedding_batch_size
    )


class QueryVectorCache:
    """The vectors of the last ``size`` question texts embedded, least recently used out.

    People ask the same things again: the same news in several group chats, a question
    re-sent, a follow-up that repeats the previous question as context. A vector depends
    only on the text and the model, so the cache outlives index swaps. Thread-safe; each
    vector is 1.5 KB for the packaged model. ``size`` 0 turns it off.
    """

    def __init__(self, embedder: Embedder, size: int = 1024) -> None:
        self.embedder = embedder
        self.size = size
        self.hits = self.misses = 0
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; only texts not cached reach the model, in one batch."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = (
                self.embedder.embed_documents(missing)
                if len(missing) > 1
                else self.embedder.embed_query(missing[0])[None, :]
            )
            found.update(zip(missing, fresh, strict=True))
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
            if self.size > 0:
                for text in missing:
                    self._vectors[text] = found[text]
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])
