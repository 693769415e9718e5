"""Reading a question without an LLM: which outlets and dates it names, and its parts.

"Does the TechCrunch article suggest A, while The Verge reports B?" is two searches: A
among TechCrunch's passages and B among The Verge's. "…as reported by both Fortune and The
Age?" is one question asked of two outlets. Each part retrieves its own evidence.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from .text import terms

__all__ = ["QueryPart", "QueryPlan", "SourceMatcher", "plan_question", "source_matcher"]

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_DATE = re.compile(
    r"\b(?P<month>" + "|".join(_MONTHS) + r")\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    r"(?:,?\s+(?P<year>\d{4}))?",
    re.IGNORECASE,
)
# Between two outlet names, this much text or less means a list ("X and Y", "X, Y, and Z").
_LIST_GAP = re.compile(r"^[\s,'\"’‘“”]*(?:and|or|&)?[\s,'\"’‘“”]*(?:the\s+)?$", re.IGNORECASE)
# A clause with fewer content words than this ("as covered by The Verge", "and again by
# TechCrunch") only says whom to ask: it asks them the whole question (README).
_MIN_PART_TERMS = 2


@dataclass(frozen=True, slots=True)
class QueryPart:
    """One search: its text and the outlets and dates it is about (empty: any)."""

    text: str
    sources: frozenset[str]
    dates: frozenset[date]


@dataclass(frozen=True, slots=True)
class QueryPlan:
    question: str
    parts: tuple[QueryPart, ...]

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(s for p in self.parts for s in p.sources)


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


def find_dates(text: str) -> frozenset[date]:
    """Calendar dates spelled out in ``text`` ("September 26, 2023", "October 18th")."""
    found = set()
    for m in _DATE.finditer(text):
        year = int(m.group("year")) if m.group("year") else None
        try:
            found.add(date(year or 1, _MONTHS[m.group("month").lower()], int(m.group("day"))))
        except ValueError:
            continue
    return frozenset(found)


def plan_question(question: str, matcher: SourceMatcher) -> QueryPlan:
    """Split ``question`` into parts, each with the outlets and dates it names."""
    mentions = matcher.find(question)
    whole = QueryPart(question, frozenset(s for *_, s in mentions), find_dates(question))
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
            QueryPart(question, frozenset({s}), whole.dates)
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
        # "…, as reported by The Verge" only says whom to ask: ask them the question.
        text = clause if _content_terms(clause, matcher) >= _MIN_PART_TERMS else question
        split.append(QueryPart(text, frozenset(s for *_, s in group), find_dates(clause)))
    return QueryPlan(question, tuple(split))


def _content_terms(text: str, matcher: SourceMatcher) -> int:
    """How many words of ``text`` say what it asks: not outlet names, dates or stop words."""
    for start, end, _ in reversed(matcher.find(text)):
        text = text[:start] + " " + text[end:]
    return len(terms(_DATE.sub(" ", text)))


_CLAUSE_BREAK = re.compile(
    r",|;|\bwhile\b|\bwhereas\b|\bbut\b|\band\b|\bafter\b|\bbefore\b|\bthan\b", re.IGNORECASE
)


def _clause_start(question: str, mention_start: int, floor: int) -> int:
    """Where the clause holding the mention at ``mention_start`` begins (after ``floor``)."""
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(question, floor, mention_start)]
    return breaks[-1] if breaks else mention_start
