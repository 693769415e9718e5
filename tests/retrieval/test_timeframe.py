"""Time in questions: each expression people type resolves to the publication range they mean."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from retrieval.timeframe import IMPLIED_RECENCY, read_time_ranges, recency_wanted

UTC = ZoneInfo("UTC")
# Saturday 7 December 2024, mid-afternoon.
NOW = datetime(2024, 12, 7, 15, 0, tzinfo=UTC)


def _days(question: str, now: datetime = NOW) -> list[tuple[date, date]]:
    return [(r.first_day, r.last_day) for r in read_time_ranges(question, now)]


def d(month: int, day: int, year: int = 2024) -> date:
    return date(year, month, day)


# The table in the README (Staying current) and in the closing note.
EXPRESSIONS = [
    ("What happened in Gaza yesterday?", [(d(12, 6), d(12, 6))]),
    ("any news today on the strike", [(d(12, 7), d(12, 7))]),
    ("What did the Fed say 3 days ago?", [(d(12, 4), d(12, 4))]),
    ("What did the Fed do last week?", [(d(11, 25), d(12, 1))]),
    ("what happened this week", [(d(12, 2), d(12, 8))]),
    ("What happened this month?", [(d(12, 1), d(12, 31))]),
    ("rail strike news since Monday", [(d(12, 2), d(12, 7))]),
    ("Who won over the weekend?", [(d(12, 7), d(12, 8))]),  # it is Saturday: this one
    ("Who won last weekend?", [(d(11, 30), d(12, 1))]),
    ("What happened in Gaza in the past 3 days?", [(d(12, 4), d(12, 7))]),
    ("Fed news over the past week", [(d(11, 30), d(12, 7))]),
    ("What did the Fed decide in November?", [(d(11, 1), d(11, 30))]),
    ("what happened last month", [(d(11, 1), d(11, 30))]),
    ("What did the budget say in 2024?", [(d(1, 1), d(12, 31))]),
    ("What happened in 2023?", [(d(1, 1, 2023), d(12, 31, 2023))]),
    ("Protests between March and May", [(d(3, 1), d(5, 31))]),
    ("Protests between March and May 2023", [(d(3, 1, 2023), d(5, 31, 2023))]),
    ("budget news from March to May", [(d(3, 1), d(5, 31))]),
    ("What happened between 1 and 7 December?", [(d(12, 1), d(12, 7))]),
    ("anything since November 1?", [(d(11, 1), d(12, 7))]),
    ("What did Biden say on October 18, 2023?", [(d(10, 18, 2023), d(10, 18, 2023))]),
    ("what did the ministers say on 5 December", [(d(12, 5), d(12, 5))]),
    ("What happened last Friday?", [(d(12, 6), d(12, 6))]),
    # A future event in another clause leaves the date the news.
    ("What did the Fed say yesterday it will do?", [(d(12, 6), d(12, 6))]),
    ("Which company will launch a phone, as reported on 16 November?", [(d(11, 16), d(11, 16))]),
    ("before this month's derby, who led the table?", [(d(12, 1), d(12, 31))]),
]


@pytest.mark.parametrize(("question", "expected"), EXPRESSIONS)
def test_time_expressions_resolve_to_publication_ranges(question, expected):
    assert _days(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "Who met whom in Lima?",
        "Who won the 2022 World Cup final?",  # an event's year, not when it was reported
        "How did the Chiefs do in the 2023 season?",
        "Who scored in the Sunday Night Football game?",
        "Will AI be essential for businesses within five years?",
        "How much did Google pay, $26 billion?",
        "What may happen to interest rates?",
        "Where did the march on Washington start?",
        "What happens next year?",
        "Who plays tomorrow?",
        "What is on next Monday?",
        "Which company is set to release a new console, with a better screen, on November 16?",
        "Which company is releasing its new console on November 16th?",
        "Who will play in the final on 5 December?",
    ],
)
def test_words_that_are_not_a_publication_time_name_none(question):
    assert read_time_ranges(question, NOW) == ()


def test_the_past_24_hours_is_counted_in_hours_not_days():
    (last_day,) = read_time_ranges("What happened in the last 24 hours?", NOW)
    assert not last_day.whole_days
    assert last_day.start == datetime(2024, 12, 6, 15, 0, tzinfo=UTC)


def test_yesterday_is_the_askers_yesterday():
    # Half past midnight in Berlin on 7 December is still 6 December in UTC.
    berlin = datetime(2024, 12, 7, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert _days("What happened yesterday?", berlin) == [(d(12, 6), d(12, 6))]
    assert _days("What happened yesterday?", berlin.astimezone(UTC)) == [(d(12, 5), d(12, 5))]


def test_a_weekday_or_date_later_this_year_means_the_last_one():
    # "this Tuesday" asked on Saturday is the Tuesday gone by; "on 20 December" last year's.
    assert _days("What happened this Tuesday?") == [(d(12, 3), d(12, 3))]
    assert _days("What happened on 20 December?") == [(d(12, 20, 2023), d(12, 20, 2023))]


def test_a_named_year_is_kept_so_passages_mentioning_it_count():
    (year,) = read_time_ranges("How much did Google spend in 2021?", NOW)
    assert year.year == 2021
    (month,) = read_time_ranges("What happened in May 2021?", NOW)
    assert month.year == 2021
    (relative,) = read_time_ranges("What happened last year?", NOW)
    assert relative.year is None


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("What happened in Gaza yesterday?", "on 6 December 2024"),
        ("What happened between 1 and 7 December?", "between 1 and 7 December 2024"),
        ("What did the Fed decide in November?", "in November 2024"),
        ("What happened in 2023?", "in 2023"),
        ("Protests between March and May", "between 1 March and 31 May 2024"),
        ("anything since 24 December 2023?", "since 24 December 2023"),
        ("the past 3 days", "between 4 and 7 December 2024"),
    ],
)
def test_a_range_is_named_in_words(question, label):
    (found,) = read_time_ranges(question, NOW)
    assert found.label() == label


@pytest.mark.parametrize(
    ("question", "wanted"),
    [
        ("latest on the Fed", 1.0),
        ("what's the latest?", 1.0),
        # The newest of something, not the newest news: implied.
        ("How many times did they say it on the latest investor call?", IMPLIED_RECENCY),
        ("the most recent news on Gaza", 1.0),
        ("What is happening in Gaza?", IMPLIED_RECENCY),
        ("Who is currently leading the league?", IMPLIED_RECENCY),
        ("Is the strike still on?", IMPLIED_RECENCY),
        ("Who won the 2022 World Cup final?", 0.0),
        ("What did Powell say about inflation?", 0.0),
        ("What is the building on the corner?", 0.0),
        ("what's the name of the show?", 0.0),
    ],
)
def test_questions_that_want_the_newest_news(question, wanted):
    assert recency_wanted(question) == wanted
