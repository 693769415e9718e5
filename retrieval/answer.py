"""Extractive answers: the best supporting sentence per article, each with its citation.

Abstention uses coverage, not similarity: MiniLM gives an off-topic question about a
well-covered country a higher cosine score than a genuine question, so the composer asks
whether the names and content words of the question occur in the corpus and the passages.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from .chunking import Chunk
from .search import Hit
from .sentences import Sentence, sentences_of
from .text import QuestionTerms, question_terms, terms

NOT_FOUND = "I could not find anything about that in the indexed news."

# "Lima (VNA) – " and similar datelines: true but not part of the claim.
_DATELINE = re.compile(r"^[A-Z][\w .,'’-]{1,40}\([A-Z][\w .-]{1,15}\)\s*[–—-]+\s*")

# Names count double: a question about a person or place is unanswered if they are absent.
_NAME_WEIGHT = 2.0
_CONTENT_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source: the article and the exact snippet that supports a claim."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: datetime | None
    snippet: str
    score: float

    @property
    def published_date(self) -> str | None:
        return self.published.date().isoformat() if self.published else None


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to one question: text with ``[n]`` markers and the citations they name."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    evidence: float = 0.0
    timings: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class _Candidate:
    chunk: Chunk
    sentence: str
    coverage: float
    hit_score: float
    rank: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """How well retrieved passages cover a question, and so whether to answer at all."""

    unknown_names: frozenset[str]
    missing_names: frozenset[str]
    content_coverage: float

    def sufficient(self, *, threshold: float, max_missing_names: int) -> bool:
        return (
            not self.unknown_names
            and len(self.missing_names) <= max_missing_names
            and self.content_coverage >= threshold
        )

    @property
    def score(self) -> float:
        """One number for reports: the content coverage, or 0 when a name is unknown."""
        return 0.0 if self.unknown_names else self.content_coverage


def weigh_evidence(
    question: QuestionTerms, hits: list[Hit], corpus_terms: Container[str] | None = None
) -> Evidence:
    """Compare the question's words with the passages (and with the whole corpus).

    A name (a capitalised word or a number: a person, place, outlet or date) that occurs
    nowhere in the corpus means the corpus is about something else: a passage about Vietnam
    does not answer a question about Vietnam and China. A name merely absent from the
    passages is tolerated up to a limit, since multi-part questions name several articles.
    Content coverage is the share of the question's other words found in the passages.
    """
    found: set[str] = set()
    for hit in hits:
        found.update(_context_terms(hit.chunk.lexical_context))
        for sentence in _sentences_of(hit):
            found.update(sentence.terms)
    unknown = frozenset(
        n for n in question.names if corpus_terms is not None and n not in corpus_terms
    )
    if not question.content:
        coverage = 1.0 if question.names and hits else 0.0
    else:
        coverage = len(question.content & found) / len(question.content)
    return Evidence(unknown, frozenset(question.names - found), coverage)


def compose_answer(
    question: str,
    hits: list[Hit],
    *,
    context: str | None = None,
    corpus_terms: Container[str] | None = None,
    threshold: float = 0.3,
    max_missing_names: int = 1,
    max_sentences: int = 3,
) -> Answer:
    """Build the cited answer, or say plainly that nothing relevant was found.

    ``context`` is the earlier question a follow-up leans on: its names must be found too,
    but sentences are chosen for what the follow-up itself asks.
    """
    own = question_terms(question)
    background = question_terms(context) if context else QuestionTerms(frozenset(), frozenset())
    wanted = QuestionTerms(
        names=own.names | background.names,
        content=(own.content or background.content) - background.names,
    )
    weighed = weigh_evidence(wanted, hits, corpus_terms)
    evidence = weighed.score
    if not weighed.sufficient(threshold=threshold, max_missing_names=max_missing_names):
        return Answer(question, NOT_FOUND, (), abstained=True, evidence=evidence)

    best_per_article: dict[str, _Candidate] = {}
    for rank, hit in enumerate(hits):
        for candidate in _sentences(hit, rank, own if own.all else wanted, background):
            current = best_per_article.get(hit.chunk.article_id)
            if current is None or _key(candidate) > _key(current):
                best_per_article[hit.chunk.article_id] = candidate
    ranked = sorted(best_per_article.values(), key=_key, reverse=True)
    if not ranked or ranked[0].coverage == 0:
        return Answer(question, NOT_FOUND, (), abstained=True, evidence=evidence)
    top = ranked[0].coverage
    chosen = [c for c in ranked if c.coverage >= top / 2][:max_sentences]

    citations = tuple(
        Citation(
            n=n,
            article_id=c.chunk.article_id,
            title=c.chunk.title,
            source=c.chunk.source,
            url=c.chunk.url,
            published=c.chunk.published,
            snippet=c.sentence,
            score=round(c.hit_score, 4),
        )
        for n, c in enumerate(chosen, start=1)
    )
    text = " ".join(
        f"{_claim(c.sentence)} [{cite.n}]" for c, cite in zip(chosen, citations, strict=True)
    )
    return Answer(question, text, citations, abstained=False, evidence=evidence)


def _sentences(
    hit: Hit, rank: int, wanted: QuestionTerms, background: QuestionTerms
) -> list[_Candidate]:
    """Score each sentence of a passage by the question words it contains.

    A follow-up's own words decide; the earlier question's names only break ties.
    """
    text = hit.chunk.text
    found = []
    for sentence in _sentences_of(hit):
        present = sentence.terms
        coverage = _weight(wanted.names & present, wanted.content & present)
        coverage += 0.25 * len((background.names - wanted.names) & present)
        found.append(
            _Candidate(hit.chunk, text[sentence.start : sentence.end], coverage, hit.score, rank)
        )
    return found


def _sentences_of(hit: Hit) -> tuple[Sentence, ...]:
    """The passage's sentences: as indexed, or split now for a hit made elsewhere."""
    return hit.sentences or sentences_of(hit.chunk.text)


@lru_cache(maxsize=4096)
def _context_terms(context: str) -> frozenset[str]:
    return frozenset(terms(context))


def _key(candidate: _Candidate) -> tuple[float, float, int]:
    # More of the question covered first; then the better passage; then earlier in it.
    return (candidate.coverage, candidate.hit_score, -len(candidate.sentence))


def _weight(names: set[str] | frozenset[str], content: set[str] | frozenset[str]) -> float:
    return _NAME_WEIGHT * len(names) + _CONTENT_WEIGHT * len(content)


def _claim(sentence: str) -> str:
    """The sentence as a claim: without its dateline, ending in punctuation."""
    claim = _DATELINE.sub("", sentence).strip()
    return claim if claim[-1:] in '.!?…"”’)' else claim + "."
