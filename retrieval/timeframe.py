"""Time in questions: "yesterday", "last week", "since Monday", "in November" as date ranges.

dateparser finds the dates in a question and reads each one against the current time,
preferring the past ("in November" is the last November, "on Monday" the last Monday). What
it does not do is ranges, so the words around a date say which one it is: its granularity
("yesterday" is a day, "last week" a Monday-to-Sunday week, "in 2024" a year), "since X"
(from X until now), "between X and Y" and "from X to Y". Rolling windows ("in the past 3
days", "the last 24 hours") and weekends, which dateparser does not read, are read here.

A range is about publication: the search keeps only passages of articles published in it
(``search.py``). Whole-day ranges compare the article's own calendar date (the one printed
on it), shorter ones the instant. A year the question names ("in 2021") is also met by a
passage that mentions it: news often tells in one year what happened, or will, in another.

Separately, :func:`recency_wanted` tells questions that want the newest news ("latest on
the Fed", "what is happening in Gaza").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from dateutil.relativedelta import relativedelta

__all__ = [
    "IMPLIED_RECENCY",
    "REPORTED_WITHIN",
    "TimeRange",
    "read_time_ranges",
    "recency_wanted",
    "warm_up_dates",
]

Granularity = Literal["hour", "day", "week", "month", "year"]

_MONTHS = [date(2000, month, 1).strftime("%B").lower() for month in range(1, 13)]
_WEEKDAYS = [date(2024, 1, day).strftime("%A").lower() for day in range(1, 8)]  # Monday first
_MONTH_WORDS = set(_MONTHS) | {m[:3] for m in _MONTHS} | {"sept"}
_RELATIVE_DAYS = {"today", "yesterday", "tonight", "tomorrow"}
# A question without one of these words (or a year) names no time: dateparser is skipped.
_TIME_WORDS = (
    _MONTH_WORDS
    | set(_WEEKDAYS)
    | _RELATIVE_DAYS
    | {"week", "weeks", "weekend", "month", "months", "year", "years", "day", "days"}
    | {"hour", "hours", "ago", "since", "past", "last", "morning", "night"}
)
_WORD = re.compile(r"[a-z]+|\d+")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NUMBERS |= {"seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple": 2, "few": 3, "several": 3}

# "in the past 3 days", "over the last week", "the past 24 hours": until now.
_ROLLING = re.compile(
    r"\b(?:(?:in|over|during|within|for)\s+)?(?:the\s+)?(?P<which>past|last|previous)\s+"
    r"(?:(?:(?P<count>\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|couple|few|several)"
    r"\s+(?:of\s+)?)(?P<units>hour|day|week|month|year)s?|(?P<unit>hour|day|week|month|year))\b",
    re.IGNORECASE,
)
_WEEKEND = re.compile(
    r"\b(?:(?P<which>this|last|past|over\s+the|at\s+the|on\s+the|the)\s+)?weekend\b", re.I
)
# Words before a date that make it one end of a range.
_SINCE = re.compile(r"\b(?:since|after)\s+(?:the\s+)?$", re.IGNORECASE)
_FIRST_DAY = re.compile(
    r"\b(?:between|from)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+(?:and|to|-)\s+$", re.I
)
_RANGE_JOIN = re.compile(r"^\W*(?:and|to|until|till|through|-|–)\W*(?:the\s+)?$", re.I)
_BETWEEN = re.compile(r"\b(?:between|from)\s+(?:the\s+)?$", re.IGNORECASE)
# A bare year is a time only after one of these ("in 2024"), not in "the 2023 season".
_YEAR_PREPOSITION = re.compile(r"\b(?:in|during|since|from|between|and|to|until|of)\s+$", re.I)
# A weekday is a day only after one of these: "Sunday Night Football" is not a Sunday.
_DAY_PREPOSITION = re.compile(r"\b(?:on|since|from|last|this|past|until|and|to)\s+$", re.I)
_MONTH_PREPOSITION = re.compile(
    r"\b(?:in|since|from|during|until|between|and|to|of|early|late|mid|last|this)[\s-]+$", re.I
)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Publication times from ``start`` up to ``end`` (exclusive), in the asker's time zone.

    ``whole_days``: the bounds are midnights and articles are compared by calendar date.
    ``words`` is what the question said. Articles that name the time are about it too,
    wherever their passages say so: ``year``, when the question named the year itself
    ("in 2021", "in May 2021", not "last year"): "Google spent $26.3 billion in 2021",
    reported in 2023; ``month``, for a month: "In early October, Schumer met Xi", reported
    in November (only by articles published within ``REPORTED_WITHIN`` of its end).
    """

    start: datetime
    end: datetime
    words: str
    whole_days: bool = True
    year: int | None = None
    month: str | None = None

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def label(self) -> str:
        """The range in words: "on 5 December 2024", "between 1 and 7 December 2024"."""
        if not self.whole_days:
            return f"since {_day(self.start.date())} {self.start:%H:%M}"
        first, last = self.first_day, self.last_day
        if first == last:
            return f"on {_day(first)}"
        if self.words.lower().startswith(("since", "after")):
            return f"since {_day(first)}"
        if first.day == 1 and (last + timedelta(days=1)).day == 1:
            if first.month == 1 and last.month == 12 and first.year == last.year:
                return f"in {first.year}"
            if (first.year, first.month) == (last.year, last.month):
                return f"in {first:%B %Y}"
        if first.year != last.year:
            return f"between {_day(first)} and {_day(last)}"
        if first.month != last.month:
            return f"between {first.day} {first:%B} and {_day(last)}"
        return f"between {first.day} and {_day(last)}"


def _day(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def read_time_ranges(question: str, now: datetime) -> tuple[TimeRange, ...]:
    """The publication ranges ``question`` names, read against ``now`` (tz-aware).

    Several ranges ("on 12 October …, and on 6 December …") are all returned; none when
    the question names no time.
    """
    lowered = question.lower()
    if not (_TIME_WORDS & set(_WORD.findall(lowered)) or _YEAR.search(lowered)):
        return ()
    found: list[tuple[int, TimeRange]] = []
    # "this month's match": the possessive hides the date from dateparser.
    text = re.sub(r"(?<=\w)['’]s\b", "  ", question)

    def consume(match: re.Match[str], found_range: TimeRange) -> None:
        nonlocal text
        found.append((match.start(), found_range))
        text = text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]

    for match in _ROLLING.finditer(text):
        if _rolling_is_calendar(match):
            continue  # "last week" is the week before this one: dateparser's
        count = match.group("count")
        n = int(count) if count and count.isdigit() else _NUMBERS.get((count or "a").lower(), 1)
        unit = (match.group("unit") or match.group("units")).lower()
        consume(match, _rolling(now, n, unit, match.group(0).strip()))
    for match in _WEEKEND.finditer(text):
        consume(match, _weekend(now, (match.group("which") or "").lower(), match.group(0)))
    found.extend(_dateparser_ranges(text, now))
    found.sort(key=lambda item: item[0])
    return tuple(r for _, r in found)


def _rolling_is_calendar(match: re.Match[str]) -> bool:
    words = match.group(0).lower().split()
    return (
        match.group("which").lower() == "last"
        and not match.group("count")
        and "the" not in words
        and (match.group("unit") or "").lower() in {"week", "month", "year"}
    )


def _rolling(now: datetime, n: int, unit: str, words: str) -> TimeRange:
    back = relativedelta(**{f"{unit}s": n})
    start = now - back
    if unit == "hour":
        return TimeRange(start, now + timedelta(microseconds=1), words, whole_days=False)
    return TimeRange(_midnight(start.date(), now.tzinfo), _next_midnight(now), words)


def _weekend(now: datetime, which: str, words: str) -> TimeRange:
    """The last Saturday and Sunday (this one, from Saturday on); "last weekend" from
    Monday to Friday is that same one, on a weekend the one before."""
    today = now.date()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7)
    if which == "last" and today.weekday() >= 5:
        saturday -= timedelta(days=7)
    start = _midnight(saturday, now.tzinfo)
    return TimeRange(start, start + timedelta(days=2), words.strip())


def _dateparser_ranges(text: str, now: datetime) -> list[tuple[int, TimeRange]]:
    anchors: list[tuple[int, int, Granularity, datetime, str]] = []  # where, which, what
    position = 0
    for found, parsed in _search(text, now.replace(tzinfo=None)):
        # dateparser returns the words with their spaces collapsed.
        pattern = r"\s+".join(map(re.escape, found.split()))
        located = re.compile(pattern).search(text, position)
        if located is None:
            continue
        at, position = located.start(), located.end()
        start, words = _trimmed(located.group(0), at)
        end = start + len(words)
        if anchors and _YEAR.fullmatch(words) and not text[anchors[-1][1] : start].strip(" ,"):
            # dateparser reads "May 2023" as "May" and "2023": one date.
            s, _, g, when, _ = anchors[-1]
            anchors[-1] = (s, end, g, when.replace(year=int(words)), text[s:end])
            continue
        granularity = _granularity(words, text[:start], text[end:])
        if granularity is not None and not _in_the_future(text[:start]):
            when = _in_the_past(parsed, words, now.replace(tzinfo=None))
            anchors.append((start, end, granularity, when, words))
    ranges: list[tuple[int, TimeRange]] = []
    i = 0
    while i < len(anchors):
        start, end, granularity, when, words = anchors[i]
        first = _period(when, granularity, now, words)
        before = text[:start]
        joined = i + 1 < len(anchors) and _RANGE_JOIN.match(text[end : anchors[i + 1][0]])
        if joined and (between := _BETWEEN.search(before)):
            _, next_end, next_granularity, next_when, next_words = anchors[i + 1]
            if _YEAR.search(next_words) and not _YEAR.search(words):
                first = _period(when.replace(year=next_when.year), granularity, now, words)
            last = _period(next_when, next_granularity, now, next_words)
            span = text[between.start() : next_end]
            ranges.append((start, TimeRange(first.start, max(last.end, first.end), span)))
            i += 2
            continue
        first_day = _FIRST_DAY.search(before)
        if first_day and granularity == "day":
            # "between 1 and 7 December": the first day takes the second's month.
            opening = _period(when.replace(day=int(first_day.group(1))), "day", now, words)
            span = text[first_day.start() : end]
            ranges.append((first_day.start(), TimeRange(opening.start, first.end, span)))
            i += 1
            continue
        if since := _SINCE.search(before):
            first = TimeRange(first.start, _next_midnight(now), f"{since.group(0)}{words}")
        ranges.append((start, first))
        i += 1
    return ranges


# Words dateparser takes in with a date that are not part of it ("on October 18, 2023, and
# the"): moved out, so the words before a date say how it is meant.
_EDGE_WORDS = {"on", "in", "at", "the", "from", "since", "between", "after", "before", "of"}
_EDGE_WORDS |= {"and", "by", "during", "about", "to", "until", "for", "a"}


# "…is set to release it on November 16": the date of an event to come, not of the news.
_FUTURE = re.compile(
    r"\b(?:will|shall|(?:set|scheduled|expected|due|going|slated|poised|planning|plans?|ready)"
    r"\s+to|scheduled\s+for|upcoming|is\s+releasing|are\s+releasing)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# …unless the date is when it was said: "which company will …, as reported on November 16?"
_REPORTED = re.compile(
    r"[;?!]|\b(?:report|reported|reports|published|wrote|written|said|announced|article|"
    r"story|while|whereas|but)\b",
    re.IGNORECASE,
)


def _in_the_future(before: str) -> bool:
    """Whether the sentence before a date speaks of the future (then the date is of an
    event to come, not of the news), with nothing about reporting in between."""
    found = _FUTURE.search(before)
    return found is not None and not _REPORTED.search(found.group("rest"))


def _trimmed(words: str, start: int) -> tuple[int, str]:
    """``words`` (found at ``start``) without leading and trailing edge words."""
    tokens = list(re.finditer(r"[^\s,;:]+", words))
    first, last = 0, len(tokens)
    while first < last and tokens[first].group(0).lower().strip("'’") in _EDGE_WORDS:
        first += 1
    while last > first and tokens[last - 1].group(0).lower().strip("'’") in _EDGE_WORDS:
        last -= 1
    if first == last:
        return start, ""
    begin, end = tokens[first].start(), tokens[last - 1].end()
    return start + begin, words[begin:end]


def _search(text: str, base: datetime) -> tuple[tuple[str, datetime], ...]:
    from dateparser.search import search_dates

    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    found = search_dates(text, languages=["en"], settings=settings)
    return tuple(found or ())


def _granularity(words: str, before: str, after: str) -> Granularity | None:
    """How long a period ``words`` names, or None when they name no time after all
    ("$26", "the 2023 season", "Sunday Night Football", "what may happen", "within five
    years"). ``before`` and ``after`` are the question's text around them."""
    tokens = _WORD.findall(words.lower())
    if not tokens:
        return None
    has_month = any(t in _MONTH_WORDS for t in tokens)
    has_day_number = any(t.isdigit() and int(t) <= 31 for t in tokens)
    has_year = bool(_YEAR.search(words))
    if any(t in {"next", "tomorrow", "upcoming", "coming"} for t in tokens):
        return None  # nothing is published in the future
    if any(t in _WEEKDAYS for t in tokens):
        named = _DAY_PREPOSITION.search(before) or tokens[0] in {"last", "this", "past"}
        # "Sunday Night Football", "Saturday Night Live": a name, not a day.
        in_a_name = re.search(r"(?:day)\s+[A-Z]", words) or re.match(r"\s+[A-Z]", after)
        return "day" if named and not in_a_name else None
    if any(t in _RELATIVE_DAYS or t in {"morning", "night", "ago"} for t in tokens):
        return "day"
    if any(t in {"days", "weeks", "months", "years", "hours"} for t in tokens):
        return None  # "within five years", "180 days of": a length, not a time
    if any(t in {"week", "month", "year"} for t in tokens) and not {"this", "last"} & set(tokens):
        return None  # "a year", "the week": no particular one
    if "week" in tokens:
        return "week"
    if has_month:
        if not (has_day_number or has_year) and not _month_is_meant(tokens, before):
            return None
        return "day" if has_day_number else "month"
    if "month" in tokens:
        return "month"
    if has_year and len(tokens) == 1:
        return "year" if _YEAR_PREPOSITION.search(before) else None
    if "year" in tokens:
        return "year"
    if re.fullmatch(r"\d{4}-\d\d-\d\d", words.strip()):
        return "day"
    return None


def _month_is_meant(tokens: list[str], before: str) -> bool:
    """A month name alone is a month after a preposition or "last"/"this" ("in may",
    "last March"), not in "what may happen" or "the march on Washington"."""
    if tokens[0] in {"last", "this"}:
        return True
    return bool(_MONTH_PREPOSITION.search(before))


def _in_the_past(parsed: datetime, words: str, base: datetime) -> datetime:
    """dateparser sometimes reads "this Tuesday" as the next one; a news question asks
    about the past, so a date after now without a year moves back a week or a year."""
    if parsed.date() <= base.date() or _YEAR.search(words):
        return parsed
    if any(t in _WEEKDAYS for t in _WORD.findall(words.lower())):
        return parsed - timedelta(days=7)
    return parsed - relativedelta(years=1)


def _period(when: datetime, granularity: Granularity, now: datetime, words: str) -> TimeRange:
    zone = now.tzinfo
    day = when.date()
    if granularity in ("day", "hour"):
        start = _midnight(day, zone)
        return TimeRange(start, start + timedelta(days=1), words)
    if granularity == "week":
        start = _midnight(day - timedelta(days=day.weekday()), zone)
        return TimeRange(start, start + timedelta(days=7), words)
    if granularity == "month":
        first = day.replace(day=1)
        end = _midnight(first + relativedelta(months=1), zone)
        named = day.year if _YEAR.search(words) else None
        month = _MONTHS[first.month - 1]
        return TimeRange(_midnight(first, zone), end, words, year=named, month=month)
    start = _midnight(date(day.year, 1, 1), zone)
    named = day.year if _YEAR.search(words) else None
    return TimeRange(start, _midnight(date(day.year + 1, 1, 1), zone), words, year=named)


def _midnight(day: date, zone: tzinfo | None) -> datetime:
    return datetime.combine(day, time(), zone)


def _next_midnight(now: datetime) -> datetime:
    return _midnight(now.date() + timedelta(days=1), now.tzinfo)


#: How long after a month an article that names it still reports on it.
REPORTED_WITHIN = timedelta(days=31)

# Asking for the newest news outright ("latest on the Fed", "what's the latest?", "the
# newest updates"), not for the newest of something ("the latest investor call"): implied.
_NEWEST_WORDS = {"latest", "newest", "breaking"}
_ASKS_NEWEST = re.compile(
    r"\b(?:latest|newest|most recent|breaking)\b"
    r"(?!\s+(?!(?:news|updates?|developments?|headlines?|stories|story|reports?|coverage|"
    r"on|about|in|from|at|for|with|regarding|around)\b)[a-z])",
)
# …and implying it: "who is now facing trial", "what is happening in Gaza".
_RECENT_WORDS = {"recent", "recently", "lately", "now", "current", "currently", "ongoing"}
_RECENT_WORDS |= {"today", "tonight", "still"}
#: How much an implied wish for recent news counts against an outright one (1). Measured on
#: MultiHop-RAG dev, where "recently reported by…" is common and the evidence months old:
#: at full strength Hits@4 fell 0.016, at this one it holds (README, *Staying current*).
IMPLIED_RECENCY = 0.25
_PROGRESSIVE = re.compile(
    r"\b(?:is|are|(?:what|who|it|he|she|that|there)['’]s)\s+(?:still\s+|now\s+)?(\w{3,}ing)\b",
    re.I,
)
# -ing words that are usually nouns or adjectives after "is": "what is the building…".
_NOT_PROGRESSIVE = {"thing", "nothing", "something", "anything", "everything", "king", "spring"}


def recency_wanted(question: str) -> float:
    """How much ``question`` wants the newest news: 1 for "latest", "newest", "most
    recent"; ``IMPLIED_RECENCY`` for "recently", "now", "currently"… or the present
    progressive of an ongoing event ("what is happening in Gaza"); 0 for a question about
    a past event ("who won the final")."""
    lowered = question.lower()
    words = set(_WORD.findall(lowered))
    if _ASKS_NEWEST.search(lowered):
        return 1.0
    if words & (_RECENT_WORDS | _NEWEST_WORDS) or "so far" in lowered:
        return IMPLIED_RECENCY
    progressive = (m.group(1).lower() for m in _PROGRESSIVE.finditer(question))
    return IMPLIED_RECENCY if any(w not in _NOT_PROGRESSIVE for w in progressive) else 0.0


def warm_up_dates() -> None:
    """Load dateparser's language data now (~150 ms) rather than on the first question."""
    read_time_ranges("since Monday", datetime(2024, 1, 1).astimezone())
