"""Choosing the sentences that answer a question, and deciding whether to answer at all.

Word overlap alone picks the sentence that restates the question ("The Monster Overhaul
reimagines what a bestiary can be") over the one that answers it ("The book is divided into
20 categories"). So each candidate sentence of the retrieved passages is described by a few
measurements, and two logistic models fitted on the development sets turn them into
probabilities (``answer_model.json``; ``make fit-answers`` refits it, README *Answers*):

- the **sentence model**: does this sentence state the answer? From its embedding
  similarity to the question; the IDF-weighted share of the question's words it holds, alone,
  with its title and the sentence before it, and of the words its title does not already
  hold (what the question asks *about* the topic); whether it has what the question asks for
  (a number for "how many", a date for "when", a name for "who"); its passage's rank; each
  also as the gap to the best candidate of the same question.
- the **question model**: does the corpus answer this at all? From the best sentence's
  probability, how much of the question the passages and sentences cover, how similar the
  best passage and sentence are, and the share of the question's words the corpus has
  never seen.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from corpus.errors import ConfigurationError

from .search import Hit
from .sentences import Sentence, sentences_of
from .text import QuestionTerms, question_terms, terms

__all__ = [
    "QUESTION_FEATURES",
    "SENTENCE_FEATURES",
    "AnswerModel",
    "Candidate",
    "Reading",
    "Vocabulary",
    "default_answer_model",
    "expected_answer",
    "passage_sentences",
    "question_features",
    "read_passages",
    "sentence_features",
]

SENTENCE_FEATURES = (
    "similarity",
    "coverage",
    "coverage_in_context",
    "previous_coverage",
    "passage_coverage",
    "rank_credit",
    "type_match",
    "typed",
    "log_words",
    "similarity_gap",
    "coverage_gap",
    "top_article",
    "focus_coverage",
    "focus_gap",
    "lede",
)
QUESTION_FEATURES = (
    "best_sentence",
    "passage_coverage",
    "sentence_coverage",
    "focus_coverage",
    "sentence_similarity",
    "passage_similarity",
    "unknown_terms",
    "unknown_names",
    "log_terms",
)

_MODEL_FILE = "answer_model.json"

# What a question asks for, by its question words (the first that matches wins).
_EXPECTED = (
    ("number", re.compile(r"\b(how (many|much|long|old|far)|what (percentage|price|share))\b")),
    ("date", re.compile(r"\b(when|what (year|date|day|month))\b")),
    ("person", re.compile(r"\b(who|whom|whose)\b")),
    ("place", re.compile(r"\bwhere\b")),
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|"
    r"week|month|year|\d{4})\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


class Vocabulary(Protocol):
    """What the reader needs of the corpus: its words' weights and spelling (LexicalIndex)."""

    def __contains__(self, term: object) -> bool: ...

    def weight(self, term: str) -> float: ...

    def query_terms(self, text: str) -> tuple[str, ...]: ...


class _Uniform:
    """Every word weighs the same and none is corrected: for passages without an index."""

    def __contains__(self, term: object) -> bool:
        return True

    def weight(self, term: str) -> float:
        return 1.0

    def query_terms(self, text: str) -> tuple[str, ...]:
        return tuple(terms(text))


def expected_answer(question: str) -> str:
    """What kind of answer ``question`` asks for: number, date, person, place or other."""
    lower = question.lower()
    return next((kind for kind, pattern in _EXPECTED if pattern.search(lower)), "other")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sentence of a retrieved passage, with what the sentence model made of it."""

    hit: Hit
    rank: int
    index: int  # which sentence of the passage
    probability: float


@dataclass(frozen=True, slots=True)
class Reading:
    """The candidates, best first, and the probability that the corpus answers at all."""

    candidates: tuple[Candidate, ...]
    answerable: float


@dataclass(frozen=True, slots=True)
class _Logistic:
    features: tuple[str, ...]
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))


@dataclass(frozen=True, slots=True)
class AnswerModel:
    """The two fitted models and the bars they set (see the module docstring).

    ``threshold``: below this probability that the corpus answers, decline.
    ``extra_share`` and ``extra_floor``: a further sentence is cited if its probability is
    at least this share of the best one's, or at least the floor (it must answer on its
    own, not merely share words).
    """

    sentence: _Logistic
    question: _Logistic
    threshold: float
    extra_share: float
    extra_floor: float

    @classmethod
    def from_dict(cls, data: dict) -> AnswerModel:
        try:
            parts = {
                name: _Logistic(
                    tuple(data[name]["features"]),
                    np.asarray(data[name]["weights"], np.float64),
                    float(data[name]["bias"]),
                )
                for name in ("sentence", "question")
            }
            model = cls(
                parts["sentence"],
                parts["question"],
                float(data["threshold"]),
                float(data["extra_share"]),
                float(data["extra_floor"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"the answer model is malformed ({exc!r})") from None
        if model.sentence.features != SENTENCE_FEATURES or model.question.features != (
            QUESTION_FEATURES
        ):
            raise ConfigurationError(
                "the answer model was fitted on other features than this newsbot computes: "
                "refit it with `make fit-answers`"
            )
        return model

    @classmethod
    def load(cls, path: str | None = None) -> AnswerModel:
        """The model shipped with newsbot, or the one at ``path``."""
        try:
            text = (
                Path(path).read_text(encoding="utf-8")
                if path
                else resources.files("retrieval").joinpath(_MODEL_FILE).read_text("utf-8")
            )
            return cls.from_dict(json.loads(text))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read the answer model ({exc})") from None


@lru_cache(maxsize=1)
def default_answer_model() -> AnswerModel:
    return AnswerModel.load()


def read_passages(
    text: str,
    question: QuestionTerms,
    hits: Sequence[Hit],
    *,
    vocabulary: Vocabulary | None,
    model: AnswerModel,
) -> Reading:
    """Score every sentence of ``hits`` and the question as a whole.

    ``text`` is the question the user typed; ``question`` the (spelling-corrected) terms
    to look for, which for a follow-up include the earlier question's names.
    """
    matrix, candidates = sentence_features(text, question, hits, vocabulary=vocabulary)
    if not candidates:
        return Reading((), 0.0)
    probabilities = model.sentence.probability(matrix)
    scored = sorted(
        (
            Candidate(hit, rank, index, float(p))
            for (hit, rank, index), p in zip(candidates, probabilities, strict=True)
        ),
        key=lambda c: -c.probability,
    )
    features = question_features(text, question, hits, matrix, probabilities, vocabulary=vocabulary)
    return Reading(tuple(scored), float(model.question.probability(features)))


def sentence_features(
    text: str,
    question: QuestionTerms,
    hits: Sequence[Hit],
    *,
    vocabulary: Vocabulary | None,
) -> tuple[np.ndarray, list[tuple[Hit, int, int]]]:
    """One row of SENTENCE_FEATURES per sentence of ``hits``, and which sentence it is."""
    vocabulary = vocabulary or _Uniform()
    kind = expected_answer(text)
    wanted = question.all
    weight = {t: vocabulary.weight(t) for t in wanted}
    total = sum(weight.values()) or 1.0
    question_words = {w.lower() for w in _WORD.findall(text)}

    def covered(found: frozenset[str] | set[str], among: frozenset[str] = wanted) -> float:
        return sum(weight[t] for t in among if t in found)

    rows: list[list[float]] = []
    which: list[tuple[Hit, int, int]] = []
    top_article = hits[0].chunk.article_id if hits else None
    for rank, hit in enumerate(hits):
        sentences = passage_sentences(hit)
        title = frozenset(terms(hit.chunk.title))
        in_passage = set(title).union(*(s.terms for s in sentences))
        focus = frozenset(t for t in wanted if t not in title)
        focus_total = sum(weight[t] for t in focus) or 1.0
        similarity = hit.sentence_similarity or (0.0,) * len(sentences)
        previous: frozenset[str] = frozenset()
        for index, sentence in enumerate(sentences):
            said = hit.chunk.text[sentence.start : sentence.end]
            rows.append(
                [
                    similarity[index],
                    covered(sentence.terms) / total,
                    covered(sentence.terms | title | previous) / total,
                    covered(previous) / total,
                    covered(in_passage) / total,
                    1.0 / (1 + rank),
                    float(kind != "other" and _has_expected(kind, said, question_words)),
                    float(kind != "other"),
                    math.log(len(said.split()) + 1),
                    0.0,  # the gaps are filled in below, once every candidate is known
                    0.0,
                    float(hit.chunk.article_id == top_article),
                    covered(sentence.terms, focus) / focus_total,
                    0.0,
                    float(hit.chunk.position == 0 and index < 2),
                ]
            )
            which.append((hit, rank, index))
            previous = sentence.terms
    matrix = np.asarray(rows, np.float64).reshape(len(rows), len(SENTENCE_FEATURES))
    if len(rows):
        gaps = {
            "similarity_gap": "similarity",
            "coverage_gap": "coverage",
            "focus_gap": "focus_coverage",
        }
        for gap, of in gaps.items():
            column = matrix[:, SENTENCE_FEATURES.index(of)]
            matrix[:, SENTENCE_FEATURES.index(gap)] = column - column.max()
    return matrix, which


def question_features(
    text: str,
    question: QuestionTerms,
    hits: Sequence[Hit],
    matrix: np.ndarray,
    probabilities: np.ndarray,
    *,
    vocabulary: Vocabulary | None,
) -> np.ndarray:
    """QUESTION_FEATURES for a question whose sentences scored ``probabilities``.

    Names count as the user typed them: a capitalised name the corpus has never seen is
    more often someone it does not cover than a typo (correcting it cost MultiHop-RAG's
    null questions 4 points of declines).
    """
    vocabulary = vocabulary or _Uniform()
    column = {name: matrix[:, i] for i, name in enumerate(SENTENCE_FEATURES)}
    best = float(np.clip(probabilities.max(), 1e-6, 1 - 1e-6))
    wanted = question.all
    unknown = [t for t in wanted if t not in vocabulary]
    return np.array(
        [
            math.log(best / (1 - best)),
            column["passage_coverage"].max(),
            column["coverage"].max(),
            column["focus_coverage"].max(),
            column["similarity"].max(),
            max(hit.similarity for hit in hits),
            len(unknown) / max(len(wanted), 1),
            sum(1 for t in question_terms(text).names if t not in vocabulary),
            math.log1p(len(wanted)),
        ]
    )


def _has_expected(kind: str, sentence: str, question_words: set[str]) -> bool:
    """Whether ``sentence`` holds the kind of thing the question asks for."""
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    # A person or a place: a capitalised word the question does not already name.
    return any(
        m.start() > 0 and m.group()[:1].isupper() and m.group().lower() not in question_words
        for m in _WORD.finditer(sentence)
    )


def passage_sentences(hit: Hit) -> tuple[Sentence, ...]:
    """The passage's sentences: as indexed, or split now for a hit made elsewhere."""
    return hit.sentences or sentences_of(hit.chunk.text)
