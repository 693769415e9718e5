"""Fuzzing question reading: any text a user sends is planned and split into terms, no error.

Only reads ``retrieval.question`` and ``retrieval.text``; a failing input found here is a
bug to report there.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.question import SourceMatcher, plan_question
from retrieval.text import question_terms

SOURCES = ["TechCrunch", "The Verge", "Fortune", "The Age", "BBC News - Home", "Wired.com", "A"]
_words = st.sampled_from(
    [
        "Does",
        "the",
        "TechCrunch",
        "article",
        "say",
        "while",
        "The Verge",
        "reports",
        "and",
        "or",
        "both",
        "Fortune",
        "The Age",
        "September",
        "26,",
        "2023",
        "October 18th",
        "?",
        ",",
        "’s",
        "“",
        "”",
        "'",
        "\n",
        "Feb 30",
        "December 99",
        "Lima",
        "who",
        "met",
        "whom",
        "&",
    ]
)
QUESTIONS = st.one_of(
    st.text(max_size=300),
    st.lists(_words | st.text(max_size=10), max_size=40).map(" ".join),
)


@settings(max_examples=500, deadline=None)
@given(question=QUESTIONS, sources=st.lists(st.text(max_size=20), max_size=5))
def test_any_text_is_planned_without_error(question, sources):
    plan = plan_question(question, SourceMatcher([*SOURCES, *sources]))
    assert plan.parts, "every question yields at least one search"
    question_terms(question)
    for part in plan.parts:
        question_terms(part.text)
