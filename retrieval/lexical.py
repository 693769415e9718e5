"""BM25 over each passage and its article context, with bm25s, saved beside the vectors.

News questions are full of outlets, names and dates that a small dense model blurs; exact
term matching catches them. Terms are the same lemmatised stems the answer composer uses.

People type names as they hear them ("martin scorcese", "jannik siner"), and a misspelt
name matches nothing. A question's terms that the corpus does not know are corrected
against the index's own vocabulary with SymSpell (symspellpy), keeping only a correction
that occurs in a passage beside another word of the question: "siner" is one letter from
both "singer" and "sinner", and only "sinner" shares passages with "jannik".
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
from symspellpy import SymSpell, Verbosity

from .bm25_scores import QueryScores
from .text import terms

__all__ = ["BM25_B", "BM25_K1", "LexicalIndex", "spelling_corrections"]

# bm25s logs an INFO line for every empty query; newsbot handles those itself.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# Lucene's term-frequency saturation, not bm25s' 1.5: a passage that repeats one question
# word stops outranking one that has several of them sooner. On the MultiHop-RAG dev split
# every k1 from 1.0 to 1.3 gave +0.003 to +0.006 MRR@10 over 1.5, on both halves (README).
# Saved with each index, so an index keeps the k1 it was built with until the next commit.
BM25_K1 = 1.2
BM25_B = 0.75
# Corrections: terms shorter than this are left alone (too many near neighbours); up to this
# length one edit is allowed, beyond it two.
_MIN_CORRECTED = 4
_ONE_EDIT_UP_TO = 6


class LexicalIndex:
    """BM25 scores for a question over every stored passage (row i = chunk i)."""

    def __init__(self, model: bm25s.BM25, size: int, *, correct: bool = True) -> None:
        self._model = model
        self._size = size
        self._correct = correct
        self._speller: SymSpell | None = None
        self._speller_lock = threading.Lock()
        self.query_terms = lru_cache(maxsize=4096)(self._query_terms)

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalIndex:
        tokens = [terms(text) or [""] for text in texts]
        model = bm25s.BM25(k1=BM25_K1, b=BM25_B)
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

    def uncorrected(self) -> LexicalIndex:
        """The same index, taking misspelt words as they come (for the evaluation's ablation)."""
        return LexicalIndex(self._model, self._size, correct=False)

    def __contains__(self, term: object) -> bool:
        """Whether ``term`` (as :func:`terms` makes it) occurs anywhere in the corpus."""
        return self._size > 0 and term in self._model.vocab_dict

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term`` (BM25's form); 0 for an unknown term."""
        df = self.document_frequency(term)
        return math.log(1 + (self._size - df + 0.5) / (df + 0.5)) if df else 0.0

    def weight(self, term: str) -> float:
        """How much ``term`` says about what a question asks: its IDF, and for a term no
        passage contains the most there is (a question about "net-zero emissions" over a
        corpus that never says "emissions" is mostly about what the corpus lacks)."""
        return self.idf(term) or math.log(1 + (self._size + 0.5) / 0.5)

    def document_frequency(self, term: str) -> int:
        """How many passages contain ``term``."""
        return len(self.documents(term))

    def documents(self, term: str) -> np.ndarray:
        """The passages containing ``term``, as sorted row numbers."""
        token = self._model.vocab_dict.get(term) if self._size and term else None
        indptr = self._model.scores["indptr"]
        if token is None or token + 1 >= len(indptr):
            return np.zeros(0, np.int32)
        return self._model.scores["indices"][indptr[token] : indptr[token + 1]]

    def _query_terms(self, text: str) -> tuple[str, ...]:
        """The terms of ``text``, each unknown one replaced by its correction if it has one.

        Cached: a question's terms are asked for by the search, the rerank and the answer.
        """
        found = terms(text)
        unknown = [t for t in dict.fromkeys(found) if t not in self]
        if not unknown or not self._correct:
            return tuple(found)
        corrections = spelling_corrections(self, unknown, [t for t in found if t in self])
        return tuple(corrections.get(t, t) for t in found)

    def warm_up(self) -> None:
        """Build the spelling dictionary now (~2 s per 30,000 terms), not on a user's typo."""
        self.speller()

    def speller(self) -> SymSpell:
        """The corpus vocabulary as a SymSpell dictionary, each term counted by its passages."""
        with self._speller_lock:
            if self._speller is None:
                speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
                frequency = np.diff(self._model.scores["indptr"]) if self._size else []
                for known, token in (self._model.vocab_dict if self._size else {}).items():
                    if known and token < len(frequency) and frequency[token]:
                        speller.create_dictionary_entry(known, int(frequency[token]))
                self._speller = speller
            return self._speller

    def query(self, text: str) -> QueryScores:
        """BM25 scores for ``text`` (``bm25_scores``), from bm25s' precomputed per-posting
        scores.

        Misspelt terms count as their corrections (see the module docstring); a term the
        question repeats counts each time, as in bm25s.
        """
        if self._size == 0:
            return QueryScores([], 0)
        matrix = self._model.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        tokens = self._model.get_tokens_ids(list(self.query_terms(text)))
        return QueryScores(
            [(indices[indptr[t] : indptr[t + 1]], data[indptr[t] : indptr[t + 1]]) for t in tokens],
            self._size,
        )


class _Vocabulary(Protocol):
    def __contains__(self, term: object) -> bool: ...
    def idf(self, term: str) -> float: ...
    def document_frequency(self, term: str) -> int: ...
    def documents(self, term: str) -> np.ndarray: ...
    def speller(self) -> SymSpell: ...


def spelling_corrections(
    vocabulary: _Vocabulary, unknown: Sequence[str], context: Sequence[str]
) -> dict[str, str]:
    """The corpus term each of ``unknown`` was probably meant to be (absent: none).

    Candidates are the known terms fewest edits away. With ``context`` (the question's
    known terms), each scores the IDF of the context terms it shares a passage with, and
    one that shares none is no correction; without, the most frequent wins.
    """
    beside = [(vocabulary.documents(t), vocabulary.idf(t)) for t in dict.fromkeys(context)]
    fixed: dict[str, str] = {}
    for term in unknown:
        if len(term) < _MIN_CORRECTED or not term.isalpha():
            continue
        edits = 1 if len(term) <= _ONE_EDIT_UP_TO else 2
        found = vocabulary.speller().lookup(term, Verbosity.CLOSEST, max_edit_distance=edits)
        candidates = [s.term for s in found]
        if not beside:
            best = max(candidates, key=vocabulary.document_frequency, default=None)
        else:
            shared = {}
            for c in candidates:
                mine = vocabulary.documents(c)
                shared[c] = sum(idf for docs, idf in beside if _overlap(mine, docs))
            best = max(
                shared, key=lambda c: (shared[c], vocabulary.document_frequency(c)), default=None
            )
            best = best if best is not None and shared[best] > 0 else None
        if best is not None:
            fixed[term] = best
    return fixed


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two ascending arrays of rows share one: the shorter looked up in the longer.

    ``np.intersect1d`` sorts both together; with a common context term at 1M passages
    that took 0.7 s for one misspelt question.
    """
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not len(small):
        return False
    at = np.searchsorted(large, small)
    inside = at < len(large)
    return bool(np.any(large[at[inside]] == small[inside]))
