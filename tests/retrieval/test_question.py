"""Reading a question: which outlets and dates it names, and how it splits into searches."""

from __future__ import annotations

from datetime import UTC, date, datetime

from retrieval.question import SourceMatcher, plan_question

NOW = datetime(2023, 12, 20, 12, tzinfo=UTC)

MATCHER = SourceMatcher(
    ["TechCrunch", "The Verge", "Fortune", "The Age", "Rivals", "The Independent - Sports"]
)


def _parts(question: str) -> list[tuple[str, set[str]]]:
    return [(p.text, set(p.sources)) for p in plan_question(question, MATCHER).parts]


def test_a_comparison_splits_into_one_search_per_outlet_clause():
    question = (
        "Does the TechCrunch article say Beeper Mini brings iMessage to Android, "
        "while The Verge reports that Apple blocked it?"
    )
    assert _parts(question) == [
        ("Does the TechCrunch article say Beeper Mini brings iMessage to Android", {"TechCrunch"}),
        ("while The Verge reports that Apple blocked it", {"The Verge"}),
    ]


def test_a_list_of_outlets_asks_each_of_them_the_whole_question():
    question = "Who was convicted of fraud, as reported by both Fortune and The Verge?"
    assert _parts(question) == [(question, {"Fortune"}), (question, {"The Verge"})]


def test_a_clause_that_only_says_whom_to_ask_asks_them_the_whole_question():
    question = (
        "Who is the individual who, unlike what TechCrunch wrote, was compared to Warren "
        "Buffett and accused of fraud, as reported by The Verge on October 28, 2023?"
    )
    first, second = plan_question(question, MATCHER, NOW).parts
    assert first.text.startswith("Who is the individual") and first.sources == {"TechCrunch"}
    # "as reported by The Verge on October 28, 2023" has no words of its own to search for.
    assert second.text == question and second.sources == {"The Verge"}
    # Its date is still its own: the other clause names none.
    assert [r.first_day for r in second.ranges] == [date(2023, 10, 28)] and not first.ranges


def test_an_outlet_named_in_running_text_is_not_an_outlet():
    question = "Did Britney Spears lose her privacy at the age of 16, as The Verge says?"
    assert plan_question(question, MATCHER).sources == {"The Verge"}
    question = "Does Gemini rival the performance of GPT-4, and can rivals catch up?"
    assert plan_question(question, MATCHER).sources == set()


def test_a_question_typed_in_lower_case_names_outlets_in_any_case():
    question = "what did techcrunch say about beeper mini while the verge covered apple?"
    assert plan_question(question, MATCHER).sources == {"TechCrunch", "The Verge"}


def test_short_forms_and_dates_are_read():
    question = "What did The Independent report on September 26th, 2023 about Rivals?"
    plan = plan_question(question, MATCHER, NOW)
    assert plan.sources == {"The Independent - Sports", "Rivals"}
    assert [(r.first_day, r.last_day) for r in plan.ranges] == [(date(2023, 9, 26),) * 2]


def test_an_outlet_name_says_nothing_about_time():
    # "Business Today | Latest Stock Market…" names neither today nor the latest news.
    matcher = SourceMatcher(["Business Today | Latest Stock Market And Economy News India"])
    question = (
        "What did Business Today | Latest Stock Market And Economy News India say about Israel?"
    )
    (part,) = plan_question(question, matcher, NOW).parts
    assert part.sources and not part.ranges and not part.recency
