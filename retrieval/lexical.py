"""BM25 over each passage and its article context, with bm25s, saved beside the vectors.

News questions are full of outlets, names and dates that a small dense model blurs; exact
term matching catches them. Terms are the same lemmatised stems the answer composer uses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np

from .text import terms

__all__ = ["LexicalIndex"]

# bm25s logs an INFO line for every empty query; newsbot handles those itself.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# Lucene's term-frequency saturation, not bm25s' 1.5: a passage that repeats one question
# word stops outranking one that has several of them sooner. On the MultiHop-RAG dev split
# every k1 from 1.0 to 1.3 gave +0.003 to +0.006 MRR@10 over 1.5, on both halves (README).
# Saved with each index, so an index keeps the k1 it was built with until the next commit.
_K1 = 1.2
_B = 0.75


class LexicalIndex:
    """BM25 scores for a question over every stored passage (row i = chunk i)."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self._size = size

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalIndex:
        tokens = [terms(text) or [""] for text in texts]
        model = bm25s.BM25(k1=_K1, b=_B)
        if tokens:
            model.index(tokens, show_progress=False)
        return cls(model, len(tokens))

    def save(self, directory: Path) -> None:
        if self._size:
            self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int) -> LexicalIndex:
        if size == 0:
            return cls(bm25s.BM25(), 0)
        model = bm25s.BM25.load(str(directory), mmap=False, show_progress=False)
        return cls(model, size)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, term: object) -> bool:
        """Whether ``term`` (as :func:`terms` makes it) occurs anywhere in the corpus."""
        return self._size > 0 and term in self._model.vocab_dict

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term`` (BM25's form); 0 for an unknown term."""
        token = self._model.vocab_dict.get(term) if self._size else None
        if token is None:
            return 0.0
        indptr = self._model.scores["indptr"]
        df = int(indptr[token + 1] - indptr[token])
        return math.log(1 + (self._size - df + 0.5) / (df + 0.5))

    def scores(self, query: str, weights: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every passage for ``query`` (zeros if no term is known)."""
        if self._size == 0:
            return np.zeros(0, dtype=np.float32)
        ids = self._model.get_tokens_ids(terms(query))
        if not ids:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids, weight_mask=weights), np.float32)
