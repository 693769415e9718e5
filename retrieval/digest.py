"""News on a topic: "what happened in Gaza yesterday?", "latest on the Fed", a followed topic.

Such a question asks for no particular fact, so the fitted answer model (``selection.py``),
made for questions that do, declines it. Here it gets what a reader expects instead: the
articles about the topic, best first (newest first when the question wants the latest),
each cited with its sentence that says most about the topic. An article is about the topic
when it contains every one of the topic's words (title or passage), so an article sharing
one word of "Federal Reserve" is not; when none does, the answer is "not found".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .answer import NOT_FOUND, Answer, Citation, claim_text
from .search import Hit
from .selection import Vocabulary, expected_answer, passage_sentences
from .text import QuestionTerms, question_terms, terms

__all__ = ["GENERIC_WORDS", "compose_digest", "topic_of", "topic_terms"]

# Words that ask for news without saying about what ("what happened with", "any news on").
GENERIC_WORDS = frozenset(
    terms(
        "happen happened happening happens news latest newest new update updates story "
        "stories recent recently headline headlines development developments going "
        "anything something say said says report reported reports tell know current "
        "currently today yesterday tonight day days hour hours week weeks weekend month "
        "months year years ago past last since "
        "monday tuesday wednesday thursday friday saturday sunday morning night"
    )
)
_MONTHS = frozenset(
    terms("january february march april may june july august september october november december")
)
# Most topic words a question may have to be read as a topic ("rail strike", "Gaza
# ceasefire talks"); more is a specific question.
_MAX_TOPIC_TERMS = 4
_YEAR_OR_DAY = re.compile(r"\b\d{1,4}(?:st|nd|rd|th)?\b")


def topic_of(question: str, vocabulary: Vocabulary | None = None) -> QuestionTerms | None:
    """The topic of a broad news question, or None for a question asking for a fact.

    "What happened in Gaza yesterday?" is about {gaza}, "What happened yesterday?" about
    nothing in particular (no words); "Who did Haaland score against?" asks for a person,
    and "Why did the Fed pause its cuts?" has words of its own.
    """
    if expected_answer(question) != "other" or re.match(r"\s*(why|how)\b", question, re.I):
        return None
    topic = topic_terms(question, vocabulary)
    return topic if len(topic.all) <= _MAX_TOPIC_TERMS else None


def topic_terms(text: str, vocabulary: Vocabulary | None = None) -> QuestionTerms:
    """The words of ``text`` that say what it is about: not "news", "latest", times."""
    found = question_terms(_YEAR_OR_DAY.sub(" ", text))
    ignored = GENERIC_WORDS | _MONTHS  # before spelling correction: "past" is no typo
    names, content = found.names - ignored, found.content - ignored
    if vocabulary is not None:
        fixed = dict(zip(terms(text), vocabulary.query_terms(text), strict=True))
        names = frozenset(fixed.get(t, t) for t in names)
        content = frozenset(fixed.get(t, t) for t in content)
    return QuestionTerms(names, content)


def compose_digest(
    question: str, topic: QuestionTerms, hits: Sequence[Hit], *, most: int, newest_first: bool
) -> Answer:
    """The articles of ``hits`` about ``topic``, each cited once (see the module)."""
    chosen: dict[str, tuple[Hit, int]] = {}  # article → (passage, sentence)
    for hit in hits:
        article = hit.chunk.article_id
        if article in chosen:
            continue
        sentences = passage_sentences(hit)
        found = set(terms(hit.chunk.title)).union(*(s.terms for s in sentences))
        if not topic.all <= found or not sentences:
            continue
        similarity = hit.sentence_similarity or (0.0,) * len(sentences)
        best = max(
            range(len(sentences)),
            key=lambda i: (len(topic.all & sentences[i].terms), similarity[i], -i),
        )
        chosen[article] = (hit, best)
        if len(chosen) == most:
            break
    if not chosen:
        return Answer(question, NOT_FOUND, (), abstained=True)
    picked = list(chosen.values())
    if newest_first:
        picked.sort(key=lambda p: -_timestamp(p[0]))
    citations, claims = [], []
    for n, (hit, index) in enumerate(picked, start=1):
        sentence = passage_sentences(hit)[index]
        quote = " ".join(hit.chunk.text[sentence.start : sentence.end].split())
        citations.append(Citation.of(n, hit.chunk, quote, hit.score))
        claims.append(f"{claim_text(quote)} [{n}]")
    return Answer(question, " ".join(claims), tuple(citations), abstained=False, evidence=1.0)


def _timestamp(hit: Hit) -> float:
    published = hit.chunk.published
    return published.timestamp() if published else -math.inf
