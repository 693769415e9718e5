"""Extractive answers: the sentences that answer, each claim with its numbered citation.

Which sentences answer, and whether anything does, is decided in ``selection.py`` by models
fitted on the development sets; here they become claims and citations, one citation per
article with every cited sentence of it in its snippet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from .chunking import Chunk
from .search import Hit
from .selection import (
    AnswerModel,
    Candidate,
    Vocabulary,
    default_answer_model,
    passage_sentences,
    read_passages,
)
from .text import QuestionTerms, question_terms, terms
from .timeframe import TimeRange

NOT_FOUND = "I could not find anything about that in the indexed news."

# "Lima (VNA) – " and similar datelines: true but not part of the claim.
_DATELINE = re.compile(r"^[A-Z][\w .,'’-]{1,40}\([A-Z][\w .-]{1,15}\)\s*[–—-]+\s*")
# A shorter sentence ("But then, in August, Greedy happened.") is quoted with the next one:
# alone it rarely says enough to be checked.
_MIN_CLAIM_WORDS = 8


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

    @classmethod
    def of(cls, n: int, chunk: Chunk, snippet: str, score: float) -> Citation:
        """Citation ``n`` of the article ``chunk`` comes from."""
        return cls(
            n=n,
            article_id=chunk.article_id,
            title=chunk.title,
            source=chunk.source,
            url=chunk.url,
            published=chunk.published,
            snippet=snippet,
            score=round(score, 4),
        )


@dataclass(frozen=True, slots=True)
class DroppedSentence:
    """A sentence an LLM wrote that the citation check did not let through, and why."""

    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to one question: text with ``[n]`` markers and the citations they name."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    evidence: float = 0.0
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    # The publication times the question named; only articles published then were read.
    ranges: tuple[TimeRange, ...] = ()
    # Who wrote the text: the extractive reading, or an LLM over the same passages, checked
    # (``writing/``). ``fallback`` says why an LLM answer was not used; ``dropped`` holds the
    # sentences it wrote that the citation check removed.
    mode: Literal["extractive", "llm"] = "extractive"
    fallback: str | None = None
    dropped: tuple[DroppedSentence, ...] = ()


@dataclass(frozen=True, slots=True)
class Headlines:
    """The newest articles, on a topic or on anything (``/latest``, ``newsbot latest``).

    ``items`` are newest first; on a topic, each holds the sentence that makes it relevant.
    """

    topic: str | None
    since: datetime | None
    items: tuple[Citation, ...]


def within_ranges(answer: Answer, ranges: Sequence[TimeRange]) -> Answer:
    """``answer`` to a question that named ``ranges``: a decline names them too ("I found
    nothing about that between 1 and 7 December 2024"), so the asker knows where not to
    look rather than concluding the news never said it."""
    if not ranges:
        return answer
    text = answer.text
    if answer.abstained:
        when = " or ".join(r.label() for r in ranges)
        text = f"I found nothing about that {when} in the indexed news."
    return replace(answer, text=text, ranges=tuple(ranges))


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    context: str | None = None,
    vocabulary: Vocabulary | None = None,
    model: AnswerModel | None = None,
    max_sentences: int = 3,
) -> Answer:
    """Build the cited answer, or say plainly that nothing relevant was found.

    ``context`` is the earlier question a follow-up leans on: its names are looked for too,
    but the sentences are chosen for what the follow-up itself asks. ``vocabulary`` (the
    index's BM25 side) weighs and corrects the question's words.
    """
    model = model or default_answer_model()
    wanted = wanted_terms(question, context, vocabulary)
    reading = read_passages(question, wanted, hits, vocabulary=vocabulary, model=model)
    if not reading.candidates or reading.answerable < model.threshold:
        return Answer(question, NOT_FOUND, (), abstained=True, evidence=reading.answerable)

    bar = min(model.extra_share * reading.candidates[0].probability, model.extra_floor)
    # Per article: (start, end) in the article, the quote, and the candidate it came from.
    by_article: dict[str, list[tuple[int, int, str, Candidate]]] = {}
    claims_seen: set[tuple[str, str]] = set()
    for candidate in reading.candidates:
        if candidate.probability < bar or len(claims_seen) == max_sentences:
            break
        # Overlapping passages repeat sentences, a short sentence is quoted with the next
        # one, and pages often repeat their lede under the headline: an article says each
        # claim once.
        chunk = candidate.hit.chunk
        start, end = _span(candidate)
        quote = " ".join(chunk.text[start:end].split())  # on one line
        start, end = chunk.start + start, chunk.start + end
        claim = claim_text(quote)
        cited = by_article.setdefault(chunk.article_id, [])
        if (chunk.article_id, claim) in claims_seen or any(
            s < end and start < e for s, e, _, _ in cited
        ):
            continue
        claims_seen.add((chunk.article_id, claim))
        cited.append((start, end, quote, candidate))

    citations, claims = [], []
    for n, cited in enumerate(by_article.values(), start=1):
        cited.sort(key=lambda span: span[0])  # in the article's order
        quotes = [quote for _, _, quote, _ in cited]
        best = max(c.probability for _, _, _, c in cited)
        citations.append(Citation.of(n, cited[0][3].hit.chunk, " … ".join(quotes), best))
        claims.append(" ".join(claim_text(q) for q in quotes) + f" [{n}]")
    return Answer(
        question, " ".join(claims), tuple(citations), abstained=False, evidence=reading.answerable
    )


def wanted_terms(
    question: str, context: str | None, vocabulary: Vocabulary | None
) -> QuestionTerms:
    """The terms to look for: the question's own, spelling corrected against the corpus,
    and for a follow-up the earlier question's names as well."""

    def read(text: str) -> QuestionTerms:
        found = question_terms(text)
        if vocabulary is None:
            return found
        fixed = dict(zip(terms(text), vocabulary.query_terms(text), strict=True))
        return QuestionTerms(
            frozenset(fixed.get(t, t) for t in found.names),
            frozenset(fixed.get(t, t) for t in found.content),
        )

    own = read(question)
    if not context:
        return own
    background = read(context)
    return QuestionTerms(
        names=own.names | background.names,
        content=(own.content or background.content) - background.names,
    )


def _span(candidate: Candidate) -> tuple[int, int]:
    """The quoted stretch of the passage: the sentence, and the next one if it is short."""
    sentences = passage_sentences(candidate.hit)
    sentence = sentences[candidate.index]
    text = candidate.hit.chunk.text
    end = sentence.end
    following = candidate.index + 1
    if len(text[sentence.start : end].split()) < _MIN_CLAIM_WORDS and following < len(sentences):
        end = sentences[following].end
    return sentence.start, end


def claim_text(sentence: str) -> str:
    """The sentence as a claim: without its dateline, ending in punctuation."""
    claim = _DATELINE.sub("", sentence).strip()
    return claim if claim[-1:] in '.!?…"”’)' else claim + "."
