"""Questions in time, over fourteen articles on known dates, with the clock on Saturday
7 December 2024: only articles from the named time are cited, a decline names it, and
"latest" puts the newest first while questions about the past are left alone."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

CORPUS = Path(__file__).parents[1] / "data" / "dated-news" / "corpus.jsonl"
NOW = datetime(2024, 12, 7, 15, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture(scope="module")
def dated(embedder, tmp_path_factory):
    settings = RetrievalSettings(index_dir=tmp_path_factory.mktemp("dated") / "index")
    assistant = NewsAssistant(settings, embedder=embedder, clock=lambda: NOW)
    assistant.ingest([CORPUS])
    yield assistant
    assistant.close()


def _days(answer) -> set[date]:
    return {c.published.date() for c in answer.citations}


def _titles(answer) -> list[str]:
    return [c.title for c in answer.citations]


@pytest.mark.parametrize(
    ("question", "first", "last"),
    [
        ("What happened in Gaza yesterday?", date(2024, 12, 6), date(2024, 12, 6)),
        ("What happened in Gaza in November?", date(2024, 11, 1), date(2024, 11, 30)),
        ("What did the Federal Reserve do last week?", date(2024, 11, 25), date(2024, 12, 1)),
        (
            "What is happening with the rail strike since Monday?",
            date(2024, 12, 2),
            date(2024, 12, 7),
        ),
        ("Who scored both goals for City last weekend?", date(2024, 11, 30), date(2024, 12, 1)),
        (
            "What did the finance minister say between March and May?",
            date(2024, 3, 1),
            date(2024, 5, 31),
        ),
        (
            "Any news on the Federal Reserve in the past 3 days?",
            date(2024, 12, 4),
            date(2024, 12, 7),
        ),
    ],
)
def test_only_articles_from_the_named_time_are_cited(dated, question, first, last):
    answer = dated.ask(question)
    assert not answer.abstained, answer.text
    assert all(first <= day <= last for day in _days(answer)), (_titles(answer), _days(answer))


def test_the_same_question_without_a_time_reads_every_date(dated):
    # The Gaza articles of 6 December and 20 November are both about Gaza.
    answer = dated.ask("What happened in Gaza?")
    assert _days(answer) == {date(2024, 12, 6), date(2024, 11, 20)}


def test_nothing_in_the_range_is_said_with_the_range_named(dated):
    answer = dated.ask("What did the Federal Reserve say yesterday?")
    assert answer.abstained and not answer.citations
    assert answer.text == "I found nothing about that on 6 December 2024 in the indexed news."
    answer = dated.ask("What did the finance minister say between 1 and 7 December?")
    assert answer.abstained
    assert "between 1 and 7 December 2024" in answer.text


def test_latest_puts_the_newest_article_first(dated):
    answer = dated.ask("latest on the Federal Reserve")
    assert not answer.abstained
    published = [c.published for c in answer.citations]
    assert published[0].date() == date(2024, 12, 5)
    assert published == sorted(published, reverse=True)
    hits = dated.search("latest on the Federal Reserve", 3)
    assert hits[0].chunk.title == "Federal Reserve signals a pause in rate cuts"


def test_a_question_about_a_past_event_is_not_pushed_towards_new_articles(dated):
    # A newer article on Messi and the World Cup exists; the final was reported in 2023.
    hits = dated.search("Who won the 2022 World Cup final?", 3)
    assert hits[0].chunk.title == "Argentina's World Cup win remembered"
    answer = dated.ask("Who won the 2022 World Cup final?")
    assert "Argentina" in answer.text and not answer.ranges


def test_a_named_year_also_finds_articles_that_mention_it(dated):
    # Reported in January 2023, about the 2022 final: "in 2022" names the event's year.
    answer = dated.ask("Who scored a hat-trick in the final in 2022?")
    assert not answer.abstained and "Mbappe" in answer.text


def test_latest_on_a_topic_lists_the_relevant_ones_newest_first(dated):
    headlines = dated.latest("Federal Reserve", since=datetime(2024, 11, 1, tzinfo=NOW.tzinfo))
    assert [i.title for i in headlines.items] == [
        "Federal Reserve signals a pause in rate cuts",
        "Federal Reserve minutes show divided officials",
    ]
    everything = dated.latest(most=3)
    assert [i.published.date() for i in everything.items] == [
        date(2024, 12, 6),
        date(2024, 12, 5),
        date(2024, 12, 4),
    ]
    assert dated.latest("Federal Reserve", since=NOW).items == ()


def test_a_followed_topic_matches_only_articles_about_it(dated):
    ids = {a.title: a.id for a in dated.export()}
    new = [
        ids["Federal Reserve signals a pause in rate cuts"],
        ids["Rail strike halts trains across the country"],
    ]
    news = dated.news_on("Federal Reserve", new)
    assert _titles(news) == ["Federal Reserve signals a pause in rate cuts"]
    assert dated.news_on("Taylor Swift", new).abstained
    # One shared word ("rail" of "rail union pay talks"?) is not the topic: every word must be.
    assert dated.news_on("Federal budget", new).abstained
