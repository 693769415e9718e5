"""Sentence-aware chunks: whole sentences packed up to a word budget, with overlap."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from corpus.articles import Article

from .text import Span, split_sentences, words


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of one article, carrying that article's metadata for citing it.

    ``text`` is an exact slice ``body[start:end]`` of the cleaned article body, so a quote
    taken from it is a quote from the article.
    """

    article_id: str
    position: int
    text: str
    start: int
    end: int
    title: str
    source: str | None = None
    url: str | None = None
    published: datetime | None = None

    @property
    def published_date(self) -> str | None:
        return self.published.date().isoformat() if self.published else None

    @property
    def header(self) -> str:
        """The article context searched along with the text: ``title | source | date``."""
        return " | ".join(p for p in (self.title, self.source, self.published_date) if p)

    @property
    def lexical_context(self) -> str:
        """Title, outlet and a spelled-out date, searched along with the text.

        Questions say "according to TechCrunch" or "published on September 26, 2023".
        """
        date = (
            f"{self.published:%B} {self.published.day}, {self.published.year}"
            if self.published
            else ""
        )
        return " | ".join(p for p in (self.title, self.source, date) if p)

    @property
    def lexical_text(self) -> str:
        """What term search sees: the article context, then the text."""
        return f"{self.lexical_context}\n{self.text}"

    @property
    def embedding_text(self) -> str:
        """What the embedder sees: the title gives a passage its topic."""
        return f"{self.title}\n{self.text}"


#: Sizes a batch of texts; the default counts words, ingest counts the model's word pieces.
Measure = Callable[[Sequence[str]], list[int]]


def count_words(texts: Sequence[str]) -> list[int]:
    return [len(words(text)) for text in texts]


def chunk_article(
    article: Article,
    *,
    max_size: int = 150,
    overlap: int = 30,
    measure: Measure = count_words,
) -> list[Chunk]:
    """Pack whole sentences into chunks whose embedding text stays within ``max_size``.

    Sizes are whatever ``measure`` counts: words by default; at ingest the embedding
    model's word pieces, so that no passage is cut off by the model's input limit. The
    article title, embedded with every passage, takes its share of the budget (at most a
    quarter: a longer title is cut off by the model instead of the passage).
    Consecutive chunks share trailing sentences worth up to ``overlap``, so a fact near a
    boundary is whole in at least one chunk. A single sentence larger than the budget
    becomes chunks of its own, cut at word boundaries.
    """
    if overlap >= max_size:
        raise ValueError("the overlap must be smaller than the chunk size")
    body = article.body
    spans = split_sentences(body)
    title_size, *sizes = measure([article.title, *(body[s.start : s.end] for s in spans)])
    budget = max_size - min(title_size, max_size // 4)
    sentences = [
        piece
        for span, size in zip(spans, sizes, strict=True)
        for piece in _split_long(body, _Sentence(span, size), budget, measure)
    ]

    groups: list[list[_Sentence]] = []
    current: list[_Sentence] = []
    size = 0
    for sentence in sentences:
        if current and size + sentence.size > budget:
            groups.append(current)
            current = _overlap(current, overlap, room=budget - sentence.size)
            size = sum(s.size for s in current)
        current.append(sentence)
        size += sentence.size
    if current:
        groups.append(current)

    return [
        Chunk(
            article_id=article.id,
            position=position,
            text=body[group[0].span.start : group[-1].span.end],
            start=group[0].span.start,
            end=group[-1].span.end,
            title=article.title,
            source=article.source,
            url=article.url,
            published=article.published,
        )
        for position, group in enumerate(groups)
    ]


@dataclass(frozen=True, slots=True)
class _Sentence:
    span: Span
    size: int


def _overlap(group: list[_Sentence], overlap: int, *, room: int) -> list[_Sentence]:
    """The trailing sentences of ``group`` to repeat at the start of the next chunk."""
    kept: list[_Sentence] = []
    size = 0
    for sentence in reversed(group):
        if size + sentence.size > min(overlap, room):
            break
        kept.insert(0, sentence)
        size += sentence.size
    return kept


def _split_long(body: str, sentence: _Sentence, budget: int, measure: Measure) -> list[_Sentence]:
    """A sentence over the budget as consecutive pieces within it, cut between words."""
    if sentence.size <= budget:
        return [sentence]
    first, last = sentence.span.start, sentence.span.end
    tokens = [(first + m.start(), first + m.end()) for m in re.finditer(r"\S+", body[first:last])]
    token_sizes = measure([body[a:b] for a, b in tokens])
    pieces: list[_Sentence] = []
    start, end, size = tokens[0][0], tokens[0][1], 0
    for (a, b), token_size in zip(tokens, token_sizes, strict=True):
        if size and size + token_size > budget:
            pieces.append(_Sentence(Span(start, end), size))
            start, size = a, 0
        size += token_size
        end = b
    pieces.append(_Sentence(Span(start, last), size))
    return pieces
