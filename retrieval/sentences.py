"""Every stored passage's sentences and their terms, computed once at ingest.

The reranker and the answer composer judge passages sentence by sentence: evidence is
usually one sentence. Splitting sentences and lemmatising words at question time cost
~50 ms a question; here it is done when a passage is indexed and kept as flat arrays:

    vocabulary   term i (append-only, so ids survive incremental commits)
    chunk_ptr    sentences of row r are chunk_ptr[r] .. chunk_ptr[r + 1]
    spans        (start, end) of each sentence within its passage's text
    term_ptr     term ids of sentence s are term_ids[term_ptr[s] .. term_ptr[s + 1]]
    term_ids     distinct term ids of each sentence
    vectors      sentence s embedded on its own, as 8-bit integers (unit vector × 127)

Scoring many passages against a question's term weights is then a few NumPy operations, and
a question's similarity to the sentences of its passages one small matrix product. The
vectors are what lets the answer pick "The book is divided into 20 categories" for "how is
the bestiary organised?", which shares no word with it (README, *Answers*).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import split_sentences, terms

__all__ = ["SCALE", "Sentence", "SentenceIndex", "quantized", "sentences_of"]

_ARRAYS = ("chunk_ptr", "spans", "term_ptr", "term_ids", "vectors")
_VOCABULARY = "vocabulary.json"
# Unit vectors stored as int8: cosines move by about 0.002, at a quarter of float32's size.
SCALE = 127.0


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of a passage: offsets into the passage's text and its distinct terms."""

    start: int
    end: int
    terms: frozenset[str]


def sentences_of(text: str) -> tuple[Sentence, ...]:
    """The sentences of ``text`` with their terms, as :class:`SentenceIndex` stores them."""
    return tuple(
        Sentence(span.start, span.end, frozenset(terms(text[span.start : span.end])))
        for span in split_sentences(text)
    )


def quantized(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors as the int8 rows :class:`SentenceIndex` stores."""
    return np.clip(np.rint(np.asarray(vectors, np.float32) * SCALE), -127, 127).astype(np.int8)


class SentenceIndex:
    """The sentences of rows 0 … n-1, with their terms as ids into one vocabulary."""

    def __init__(
        self,
        vocabulary: list[str],
        chunk_ptr: np.ndarray,
        spans: np.ndarray,
        term_ptr: np.ndarray,
        term_ids: np.ndarray,
        vectors: np.ndarray,
    ) -> None:
        self.vocabulary = vocabulary
        self._ids = {term: i for i, term in enumerate(vocabulary)}
        self._chunk_ptr = chunk_ptr
        self._spans = spans
        self._term_ptr = term_ptr
        self._term_ids = term_ids
        self._vectors = vectors

    @classmethod
    def empty(cls, dimension: int = 0) -> SentenceIndex:
        return cls(
            [],
            np.zeros(1, np.int64),
            np.zeros((0, 2), np.int32),
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros((0, dimension), np.int8),
        )

    def __len__(self) -> int:
        """The number of passages (rows) covered."""
        return len(self._chunk_ptr) - 1

    # -- building ------------------------------------------------------------------------

    def extended(self, rows: Iterable[tuple[Sentence, ...]], vectors: np.ndarray) -> SentenceIndex:
        """A new index: these rows, then ``rows`` (each a passage's sentences, as
        :func:`sentences_of` gives them) with ``vectors``, one per sentence in order, as
        float unit vectors. This one is left as it is."""
        vocabulary = list(self.vocabulary)
        ids = dict(self._ids)
        counts: list[int] = []
        spans: list[tuple[int, int]] = []
        term_counts: list[int] = []
        term_ids: list[int] = []
        for sentences in rows:
            counts.append(len(sentences))
            for sentence in sentences:
                spans.append((sentence.start, sentence.end))
                term_counts.append(len(sentence.terms))
                for term in sorted(sentence.terms):
                    if term not in ids:
                        ids[term] = len(vocabulary)
                        vocabulary.append(term)
                    term_ids.append(ids[term])
        new_vectors = quantized(vectors)
        if new_vectors.ndim != 2 or len(new_vectors) != len(spans):
            raise ValueError(f"{len(new_vectors)} sentence vectors for {len(spans)} sentences")
        if len(self._vectors) and new_vectors.shape[1] != self._vectors.shape[1]:
            raise ValueError("sentence vectors of another dimension")
        return SentenceIndex(
            vocabulary,
            _append_offsets(self._chunk_ptr, counts),
            np.concatenate([self._spans, np.array(spans, np.int32).reshape(-1, 2)]),
            _append_offsets(self._term_ptr, term_counts),
            np.concatenate([self._term_ids, np.array(term_ids, np.int32)]),
            np.concatenate([self._vectors, new_vectors]) if len(self._vectors) else new_vectors,
        )

    def selected(self, rows: Sequence[int] | np.ndarray) -> SentenceIndex:
        """A new index of only ``rows`` (ascending), renumbered from 0: for removing articles."""
        rows_ = np.asarray(rows, np.int64)
        first, last = self._chunk_ptr[rows_], self._chunk_ptr[rows_ + 1]
        sentence_ids = _ranges(first, last)
        term_first, term_last = self._term_ptr[sentence_ids], self._term_ptr[sentence_ids + 1]
        return SentenceIndex(
            list(self.vocabulary),
            _append_offsets(np.zeros(1, np.int64), (last - first).tolist()),
            np.asarray(self._spans[sentence_ids]).reshape(-1, 2),
            _append_offsets(np.zeros(1, np.int64), (term_last - term_first).tolist()),
            np.asarray(self._term_ids[_ranges(term_first, term_last)], np.int32),
            np.asarray(self._vectors[sentence_ids]).reshape(-1, self._vectors.shape[1]),
        )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _VOCABULARY).write_text(json.dumps(self.vocabulary), encoding="utf-8")
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", np.asarray(getattr(self, f"_{name}")))

    @classmethod
    def load(cls, directory: Path) -> SentenceIndex:
        """Memory-map the arrays: only the rows a question touches are read from disk.

        Plain array views of the maps: indexing ``np.memmap`` itself goes through Python
        (a third of the reranker's time on MultiHop-RAG).
        """
        vocabulary = json.loads((directory / _VOCABULARY).read_text(encoding="utf-8"))
        arrays = [
            np.load(directory / f"{name}.npy", mmap_mode="r").view(np.ndarray) for name in _ARRAYS
        ]
        index = cls(vocabulary, *arrays)
        index._check()
        return index

    def _check(self) -> None:
        chunk_ptr, term_ptr = self._chunk_ptr, self._term_ptr
        if not (
            len(chunk_ptr) >= 1
            and int(chunk_ptr[-1]) == len(self._spans) == len(term_ptr) - 1
            and int(term_ptr[-1]) == len(self._term_ids)
            and len(self._vectors) == len(self._spans)
        ):
            raise ValueError("sentence arrays of different lengths")

    # -- reading -------------------------------------------------------------------------

    def sentences(self, row: int) -> tuple[Sentence, ...]:
        first, last = int(self._chunk_ptr[row]), int(self._chunk_ptr[row + 1])
        # Plain lists: indexing memory-mapped arrays element by element is slow.
        term_ptr = self._term_ptr[first : last + 1]
        ids = self._term_ids[term_ptr[0] : term_ptr[-1]].tolist()
        words = list(map(self.vocabulary.__getitem__, ids))
        bounds = (term_ptr - term_ptr[0]).tolist()
        return tuple(
            Sentence(start, end, frozenset(words[low:high]))
            for (start, end), (low, high) in zip(
                self._spans[first:last].tolist(), itertools.pairwise(bounds), strict=True
            )
        )

    def vectors(self, row: int) -> np.ndarray:
        """The sentence vectors of ``row`` as stored (int8, unit vector × 127)."""
        return np.asarray(self._vectors[int(self._chunk_ptr[row]) : int(self._chunk_ptr[row + 1])])

    def similarities(self, row: int, query: np.ndarray) -> np.ndarray:
        """Cosine of each sentence of ``row`` (in order) with the unit vector ``query``."""
        first, last = int(self._chunk_ptr[row]), int(self._chunk_ptr[row + 1])
        block = self._vectors[first:last]
        if not block.size:
            return np.zeros(last - first, np.float32)
        return (block.astype(np.float32) @ np.asarray(query, np.float32)) / SCALE

    def best_similarities(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray:
        """For each row, the highest cosine of one of its sentences with ``query``."""
        rows_ = np.asarray(rows, np.int64)
        first, last = self._chunk_ptr[rows_], self._chunk_ptr[rows_ + 1]
        result = np.full(len(rows_), -1.0, np.float32)
        sentence_ids = _ranges(first, last)
        if not len(sentence_ids):
            return result
        cosines = (self._vectors[sentence_ids].astype(np.float32) @ query) / SCALE
        np.maximum.at(result, np.repeat(np.arange(len(rows_)), last - first), cosines)
        return result

    def best_sentence_scores(self, rows: Sequence[int], weights: Mapping[str, float]) -> np.ndarray:
        """For each row, the highest sum of ``weights`` over the terms of one of its sentences."""
        known = {self._ids[t]: w for t, w in weights.items() if t in self._ids and w}
        result = np.zeros(len(rows), np.float32)
        if not known or not len(rows):
            return result
        # A weight per vocabulary id (zero pages cost nothing until written).
        weight_of = np.zeros(len(self.vocabulary), np.float32)
        weight_of[list(known)] = list(known.values())

        rows_ = np.asarray(rows, np.int64)
        first, last = self._chunk_ptr[rows_], self._chunk_ptr[rows_ + 1]
        sentence_ids = _ranges(first, last)
        if not len(sentence_ids):
            return result
        term_first, term_last = self._term_ptr[sentence_ids], self._term_ptr[sentence_ids + 1]
        contribution = weight_of[self._term_ids[_ranges(term_first, term_last)]]
        # Per-sentence sums from a running total (reduceat mishandles empty sentences).
        total = np.concatenate([[0.0], np.cumsum(contribution)])
        lengths = term_last - term_first
        ends = np.cumsum(lengths)
        per_sentence = total[ends] - total[ends - lengths]
        owners = np.repeat(np.arange(len(rows_)), last - first)
        np.maximum.at(result, owners, per_sentence.astype(np.float32))
        return result


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, ends)])``, without the loop."""
    starts, lengths = np.asarray(starts, np.int64), np.asarray(ends, np.int64) - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


def _append_offsets(offsets: np.ndarray, counts: list[int]) -> np.ndarray:
    tail = int(offsets[-1]) + np.cumsum(np.array(counts, np.int64))
    return np.concatenate([np.asarray(offsets, np.int64), tail])
