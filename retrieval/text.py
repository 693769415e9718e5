"""Word-level text helpers shared by lexical matching and the answer composer.

Sentences come from blingfire, a compiled splitter that returns character offsets, so every
sentence and chunk is an exact slice of the article body (evidence is matched verbatim).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import blingfire
import simplemma
import Stemmer

__all__ = [
    "QuestionTerms",
    "Span",
    "question_terms",
    "split_sentences",
    "terms",
    "warm_up",
    "words",
]

# Function words and question words: they say nothing about what a question is about.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    else ever few for from further get gets got had has have having he her here hers herself
    him himself his how i if in into is it its itself just let me more most much must my
    myself no nor not now of off on once only or other our ours ourselves out over own same
    say says said shall she should so some such than that the their theirs them themselves
    then there these they this those through to too under until up upon us very was we were
    what whats when where whether which while who whom whose why will with within without
    would you your yours yourself yourselves tell told according report reported reports
    news article articles one two many
    """.split()  # noqa: SIM905 - a word list reads better as prose
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def warm_up() -> None:
    """Load the lemmatiser's dictionary now (18 MB, ~0.2 s) rather than on a user's question."""
    _term("warming")


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence as offsets into the text it came from."""

    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of ``text``; a sentence never crosses a line break."""
    spans: list[Span] = []
    for line in re.finditer(r"[^\n]+", text):
        if not line.group().strip():
            continue
        _, offsets = blingfire.text_to_sentences_and_offsets(line.group())
        spans.extend(Span(line.start() + start, line.start() + end) for start, end in offsets)
    return spans


def words(text: str) -> list[str]:
    """Word tokens as written (no lower-casing), for counting chunk sizes."""
    return _WORD.findall(text)


def terms(text: str) -> list[str]:
    """Content words reduced to a common form: "met" and "meeting" both become "meet"."""
    return [t for t in map(_term, _WORD.findall(text)) if t]


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """Lemma first (irregular forms: met → meet, held → hold), then a stem (relations → relat)."""
    lower = word.lower().replace("’", "'").removesuffix("'s")
    if lower in STOPWORDS or (len(lower) < 2 and not lower.isdigit()):
        return ""
    return _stemmer().stemWord(simplemma.lemmatize(lower, lang="en").lower())


@dataclass(frozen=True, slots=True)
class QuestionTerms:
    """What a question is about: names (capitalised words, numbers) and other content words."""

    names: frozenset[str]
    content: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.names | self.content


def question_terms(question: str) -> QuestionTerms:
    """Split a question's terms into names, which must be found, and softer content words."""
    names: set[str] = set()
    content: set[str] = set()
    for match in _WORD.finditer(question):
        word = match.group()
        term = _term(word)
        if term:
            (
                names
                if _is_name(word, opens_sentence=_opens_sentence(question, match.start()))
                else content
            ).add(term)
    return QuestionTerms(frozenset(names), frozenset(content - names))


def _is_name(word: str, *, opens_sentence: bool) -> bool:
    """Capitalised mid-sentence, all capitals, or with digits: a person, outlet, place or date.

    "Considering …" opening a question is capitalised by grammar, not because it is a name.
    """
    if any(c.isdigit() for c in word) or (len(word) > 1 and word.isupper()):
        return True
    return word[:1].isupper() and not opens_sentence


def _opens_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip(" \t\"'“‘(")
    return not before or before[-1] in ".?!:\n"
