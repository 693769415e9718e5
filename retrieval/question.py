"""Reading a question without an LLM: which outlets and times it names, and its parts.

"Does the TechCrunch article suggest A, while The Verge reports B?" is two searches: A
among TechCrunch's passages and B among The Verge's. "…as reported by both Fortune and The
Age?" is one question asked of two outlets. Each part retrieves its own evidence, within
the publication times it names (``timeframe.py``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from .text import terms
from .timeframe import TimeRange, read_time_ranges, recency_wanted

__all__ = [
    "QueryPart",
    "QueryPlan",
    "SourceMatcher",
    "plan_question",
    "read_part",
    "source_matcher",
]

# Between two outlet names, this much text or less means a list ("X and Y", "X, Y, and Z").
_LIST_GAP = re.compile(r"^[\s,'\"’‘“”]*(?:and|or|&)?[\s,'\"’‘“”]*(?:the\s+)?$", re.IGNORECASE)
# A clause with fewer content words than this ("as covered by The Verge", "and again by
# TechCrunch") only says whom to ask: it asks them the whole question (README).
_MIN_PART_TERMS = 2


@dataclass(frozen=True, slots=True)
class QueryPart:
    """One search: its text, the outlets and publication times it is about (empty: any),
    and how much it wants the newest news (0 to 1, ``timeframe.recency_wanted``)."""

    text: str
    sources: frozenset[str] = frozenset()
    ranges: tuple[TimeRange, ...] = ()
    recency: float = 0.0


@dataclass(frozen=True, slots=True)
class QueryPlan:
    question: str
    parts: tuple[QueryPart, ...]

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(s for p in self.parts for s in p.sources)

    @property
    def ranges(self) -> tuple[TimeRange, ...]:
        """Every publication range the question names, each once."""
        return tuple(dict.fromkeys(r for p in self.parts for r in p.ranges))


class SourceMatcher:
    """Finds the index's outlets in a question, by full name or a common short form."""

    def __init__(self, sources: Iterable[str]) -> None:
        aliases: dict[str, str] = {}
        for source in sources:
            for alias in _aliases(source):
                # A short form shared by two outlets ("The Independent") names neither.
                aliases[alias] = source if aliases.get(alias, source) == source else ""
        ordered = sorted((a for a, s in aliases.items() if s), key=len, reverse=True)
        self._aliases = aliases
        self._pattern = (
            re.compile(
                r"(?<!\w)(?:the\s+)?(" + "|".join(map(re.escape, ordered)) + r")(?!\w)", re.I
            )
            if ordered
            else None
        )

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, source) for each outlet named in ``text``, in order."""
        if self._pattern is None:
            return []
        # In a question written with capitals, "at the age of 16" does not name The Age; in
        # one typed all in lower case ("what did techcrunch say"), any case does.
        any_case = text[1:].islower()
        return [
            (m.start(), m.end(), self._aliases[m.group(1).lower()])
            for m in self._pattern.finditer(text)
            if any_case or not m.group(1).islower()
        ]


@lru_cache(maxsize=8)
def source_matcher(sources: tuple[str, ...]) -> SourceMatcher:
    """The matcher for a set of outlets, built once (a regex over every alias, ~2.5 ms)."""
    return SourceMatcher(sources)


def _aliases(source: str) -> set[str]:
    name = source.strip()
    forms = {name}
    for separator in (" - ", " | ", ": "):
        if separator in name:
            forms.add(name.split(separator)[0])
    forms |= {f[4:] for f in forms if f.lower().startswith("the ") and len(f) > 8}
    forms |= {f.removesuffix(".com") for f in forms}
    return {f.lower().strip() for f in forms if len(f.strip()) >= 3}


def read_part(
    text: str,
    matcher: SourceMatcher,
    now: datetime | None,
    mentions: list[tuple[int, int, str]] | None = None,
) -> QueryPart:
    """``text`` as one search: the outlets it names (``mentions``, if already found), and
    the times it names (read against ``now``; none when ``now`` is None) once the outlets'
    names are taken out of it, so that "Business Today | Latest …" says neither "today"
    nor "latest"."""
    mentions = matcher.find(text) if mentions is None else mentions
    rest = _without(text, mentions)
    ranges = read_time_ranges(rest, now) if now is not None else ()
    return QueryPart(text, frozenset(s for *_, s in mentions), ranges, recency_wanted(rest))


def _without(text: str, mentions: list[tuple[int, int, str]]) -> str:
    for start, end, _ in reversed(mentions):
        text = text[:start] + " " + text[end:]
    return text


def plan_question(question: str, matcher: SourceMatcher, now: datetime | None = None) -> QueryPlan:
    """Split ``question`` into parts, each with the outlets and times it names."""
    mentions = matcher.find(question)
    whole = read_part(question, matcher, now, mentions)
    if len({s for *_, s in mentions}) < 2:
        return QueryPlan(question, (whole,))

    # Group mentions that form a list; each group gets the text up to the next group.
    groups: list[list[tuple[int, int, str]]] = [[mentions[0]]]
    for previous, current in itertools.pairwise(mentions):
        if _LIST_GAP.match(question[previous[1] : current[0]]):
            groups[-1].append(current)
        else:
            groups.append([current])
    if len(groups) == 1:
        # "…reported by both Fortune and The Age": the whole question, once per outlet.
        parts = tuple(
            QueryPart(question, frozenset({s}), whole.ranges, whole.recency)
            for s in dict.fromkeys(s for *_, s in mentions)
        )
        return QueryPlan(question, parts)

    split: list[QueryPart] = []
    for i, group in enumerate(groups):
        start = 0 if i == 0 else _clause_start(question, group[0][0], groups[i - 1][-1][1])
        end = (
            len(question)
            if i == len(groups) - 1
            else _clause_start(question, groups[i + 1][0][0], group[-1][1])
        )
        clause = question[start:end].strip(" ,;?")
        own = read_part(clause, matcher, now)
        # "…, as reported by The Verge" only says whom to ask: ask them the question.
        asks = _content_terms(clause, matcher, own.ranges) >= _MIN_PART_TERMS
        text = clause if asks else question
        split.append(
            QueryPart(
                text,
                frozenset(s for *_, s in group),
                own.ranges,  # its own: the other clause's date is not this one's
                max(own.recency, whole.recency),
            )
        )
    return QueryPlan(question, tuple(split))


def _content_terms(text: str, matcher: SourceMatcher, ranges: tuple[TimeRange, ...]) -> int:
    """How many words of ``text`` say what it asks: not outlet names, times or stop words."""
    text = _without(text, matcher.find(text))
    for r in ranges:
        text = text.replace(r.words, " ")
    return len(terms(text))


_CLAUSE_BREAK = re.compile(
    r",|;|\bwhile\b|\bwhereas\b|\bbut\b|\band\b|\bafter\b|\bbefore\b|\bthan\b", re.IGNORECASE
)


def _clause_start(question: str, mention_start: int, floor: int) -> int:
    """Where the clause holding the mention at ``mention_start`` begins (after ``floor``)."""
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(question, floor, mention_start)]
    return breaks[-1] if breaks else mention_start
