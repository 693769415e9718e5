"""Sentence-aware chunks: whole sentences packed up to a word budget, with overlap."""

from __future__ import annotations

import re
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
    def lexical_text(self) -> str:
        """What term search sees: title, outlet and a spelled-out date, then the text.

        Questions say "according to TechCrunch" or "published on September 26, 2023".
        """
        date = (
            f"{self.published:%B} {self.published.day}, {self.published.year}"
            if self.published
            else ""
        )
        context = " | ".join(p for p in (self.title, self.source, date) if p)
        return f"{context}\n{self.text}"

    @property
    def embedding_text(self) -> str:
        """What the embedder sees: the title gives a passage its topic."""
        return f"{self.title}\n{self.text}"


def chunk_article(
    article: Article, *, max_words: int = 150, overlap_words: int = 30
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_words`` words.

    Consecutive chunks share trailing sentences worth up to ``overlap_words`` words, so a
    fact near a boundary is whole in at least one chunk. A single sentence longer than
    ``max_words`` becomes a chunk of its own, cut at word boundaries.
    """
    if overlap_words >= max_words:
        raise ValueError("overlap_words must be smaller than max_words")
    body = article.body
    sentences = [_Sentence(s, len(words(body[s.start : s.end]))) for s in split_sentences(body)]
    sentences = [s for piece in sentences for s in _split_long(body, piece, max_words)]

    groups: list[list[_Sentence]] = []
    current: list[_Sentence] = []
    size = 0
    for sentence in sentences:
        if current and size + sentence.words > max_words:
            groups.append(current)
            current = _overlap(current, overlap_words, room=max_words - sentence.words)
            size = sum(s.words for s in current)
        current.append(sentence)
        size += sentence.words
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
    words: int


def _overlap(group: list[_Sentence], overlap_words: int, *, room: int) -> list[_Sentence]:
    """The trailing sentences of ``group`` to repeat at the start of the next chunk."""
    kept: list[_Sentence] = []
    size = 0
    for sentence in reversed(group):
        if size + sentence.words > min(overlap_words, room):
            break
        kept.insert(0, sentence)
        size += sentence.words
    return kept


def _split_long(body: str, sentence: _Sentence, max_words: int) -> list[_Sentence]:
    if sentence.words <= max_words:
        return [sentence]
    first = sentence.span.start
    starts = [first + m.start() for m in re.finditer(r"\S+", body[first : sentence.span.end])]
    pieces: list[_Sentence] = []
    for i in range(0, len(starts), max_words):
        start = starts[i]
        end = starts[i + max_words] if i + max_words < len(starts) else sentence.span.end
        end = start + len(body[start:end].rstrip())
        pieces.append(_Sentence(Span(start, end), len(words(body[start:end]))))
    return pieces
