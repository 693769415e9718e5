"""Fuzzing the Telegram rendering of answers, from any corpus text and any question.

``test_formatting.py`` fuzzes ``split_html`` on generated markup; this goes one step
earlier: arbitrary article titles, outlets, links, snippets, answer text and questions,
through ``format_answer_html`` and ``format_sources_html``, must come out as parts that
the fake Bot API's validator (Telegram's rules) accepts, each at most 4,096 characters.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formatting import format_answer_html, format_sources_html, html_to_plain, split_html
from retrieval.answer import Answer, Citation

from .fake_bot_api import ParseError, check_telegram_html, utf16_len

_any = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=400)
_long = st.text(st.sampled_from("ab <>&\"'\n😀ẞ"), min_size=2000, max_size=4500)
_corpus_text = st.one_of(_any, _long, st.sampled_from(["<b>", "</a>", "&amp;", "<a href='x'>"]))
_url = st.one_of(
    st.none(),
    _any,
    st.builds(lambda s: f"https://example.org/{s}", _any),
    st.sampled_from(['https://x.org/"><script>', "javascript:alert(1)", "https://x.org/?a=1&b=2"]),
)
_citation = st.builds(
    Citation,
    n=st.integers(1, 20),
    article_id=_any,
    title=_corpus_text,
    source=st.none() | _any,
    url=_url,
    published=st.none() | st.datetimes(min_value=datetime(1900, 1, 1)),
    snippet=_corpus_text,
    score=st.floats(allow_nan=False),
)
_answer = st.builds(
    Answer,
    question=_corpus_text,
    text=_corpus_text,
    citations=st.lists(_citation, max_size=8).map(tuple),
    abstained=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(answer=_answer)
def test_any_answer_renders_as_valid_telegram_html_parts(answer):
    for rendered in (format_answer_html(answer), format_sources_html(answer)):
        parts = split_html(rendered)
        assert parts
        for part in parts:
            assert utf16_len(part) <= 4096
            try:
                visible = check_telegram_html(part)
            except ParseError as exc:  # pragma: no cover - the message helps when it fails
                pytest.fail(f"{exc}: {part[:300]!r}")
            assert visible.strip(), "Telegram refuses an empty message"
            html_to_plain(part)  # the fallback when Telegram refuses the HTML anyway
