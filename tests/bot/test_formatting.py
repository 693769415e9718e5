"""Telegram HTML rendering: escaped, well-formed, and split under Telegram's limit."""

from __future__ import annotations

import html
import re
from datetime import datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.formatting import (
    NOTHING_FOUND_HTML,
    format_answer_html,
    format_sources_html,
    html_to_plain,
    short_answer,
    split_html,
)
from retrieval.answer import NOT_FOUND, Answer, Citation

from .fake_bot_api import ParseError, check_telegram_html, utf16_len


def _citation(n: int, **changes) -> Citation:
    fields = {
        "n": n,
        "article_id": f"a{n}",
        "title": "Vietnam & Peru <talks>",
        "source": "VietnamPlus (VNA)",
        "url": f"https://example.org/{n}?a=1&b=2",
        "published": datetime(2024, 11, 14),
        "snippet": 'Leaders said "<b>" is not a tag & agreed.',
        "score": 0.5,
    }
    return Citation(**{**fields, **changes})


def test_the_answer_escapes_everything_from_the_corpus_and_links_each_source():
    answer = Answer("q", "They met <script> & talked. [1]", (_citation(1),), abstained=False)
    text = format_answer_html(answer)
    check_telegram_html(text)  # well-formed, only Telegram's tags
    assert "They met &lt;script&gt; &amp; talked. [1]" in text
    assert (
        '<a href="https://example.org/1?a=1&amp;b=2">Vietnam &amp; Peru &lt;talks&gt;</a>' in text
    )
    assert "VietnamPlus (VNA), 2024-11-14" in text
    assert "&quot;&lt;b&gt;&quot; is not a tag" in text


def test_a_source_without_a_web_address_is_not_linked():
    answer = Answer("q", "Claim. [1]", (_citation(1, url="javascript:alert(1)"),), False)
    text = format_answer_html(answer)
    assert "<a " not in text and "javascript" not in text
    check_telegram_html(format_sources_html(answer))


def test_an_abstention_cites_nothing():
    answer = Answer("q", NOT_FOUND, (), abstained=True)
    assert format_answer_html(answer) == NOTHING_FOUND_HTML
    assert short_answer(answer) == "Nothing found in my news"


def test_short_answer_is_the_first_claim_without_markers():
    answer = Answer(
        "q", "First claim here. [1] Second one. [2]", (_citation(1), _citation(2)), False
    )
    assert short_answer(answer) == "First claim here."


def test_plain_text_keeps_link_addresses():
    assert html_to_plain('<b>A</b> <a href="https://x.org/?a=1&amp;b=2">T &amp; U</a>') == (
        "A T & U (https://x.org/?a=1&b=2)"
    )


def test_a_long_answer_is_split_between_paragraphs_with_tags_kept_whole():
    paragraphs = [f"<b>Part {n}</b> " + "word " * 300 for n in range(10)]
    parts = split_html("\n\n".join(paragraphs), limit=4096)
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= 4096
        check_telegram_html(part)
        assert not part.startswith("\n") and not part.endswith("\n")
    assert "\n\n".join(parts) == "\n\n".join(paragraphs)  # cut only at paragraph breaks


def test_a_paragraph_longer_than_a_message_is_cut_between_words_and_tags_reopened():
    text = '<blockquote><a href="https://x.org">' + "news &amp; views " * 800 + "</a></blockquote>"
    parts = split_html(text, limit=1000)
    assert len(parts) > 5
    for part in parts:
        assert utf16_len(part) <= 1000
        check_telegram_html(part)
        assert part.startswith('<blockquote><a href="https://x.org">')
    visible = " ".join(html.unescape(re.sub(r"<[^>]+>", "", p)) for p in parts)
    assert visible.split() == html.unescape("news &amp; views " * 800).split()


def test_the_limit_counts_utf16_units_like_telegram():
    text = "😀" * 3000  # 6,000 UTF-16 units in one unbreakable word
    parts = split_html(text, limit=4096)
    assert all(utf16_len(p) <= 4096 for p in parts) and "".join(parts) == text


_markup = st.recursive(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60).map(
        html.escape
    ),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4).map(" ".join),
        st.lists(inner, min_size=1, max_size=4).map("\n\n".join),
        st.tuples(st.sampled_from(["b", "i", "code", "blockquote"]), inner).map(
            lambda t: f"<{t[0]}>{t[1]}</{t[0]}>"
        ),
        inner.map(lambda s: f'<a href="https://example.org/?q=1&amp;r=2">{s}</a>'),
    ),
    max_leaves=40,
)


def _deepest_markup(text: str) -> int:
    """The most markup open at once (opening plus closing tags), in characters."""
    stack: list[int] = []
    deepest = 0
    for tag in re.findall(r"<[^>]+>", text):
        if tag.startswith("</"):
            stack.pop()
        else:
            stack.append(len(tag) + len(re.match(r"<(\w+)", tag).group(1)) + 3)
            deepest = max(deepest, sum(stack))
    return deepest


@settings(max_examples=200, deadline=None)
@given(text=_markup, limit=st.integers(min_value=120, max_value=600))
def test_every_part_of_any_split_is_valid_and_nothing_is_lost(text, limit):
    assume(_deepest_markup(text) * 2 < limit)  # real replies nest two or three short tags
    parts = split_html(text, limit=limit)
    for part in parts:
        assert utf16_len(part) <= limit
        try:
            check_telegram_html(part)
        except ParseError as exc:  # pragma: no cover - the message helps when it fails
            pytest.fail(f"{exc}: {part!r}")
    visible = "".join("".join(p.split()) for p in parts)
    assert re.sub(r"<[^>]+>", "", visible) == re.sub(r"<[^>]+>", "", "".join(text.split()))


def test_stats_say_how_fresh_the_live_news_is_and_which_sources_fail():
    from pathlib import Path

    from bot.formatting import format_stats_html
    from retrieval.assistant import IndexStats, SourceStatus

    ok = SourceStatus("https://a.example/rss", "feed", 40, "2026-12-07T10:00:00+00:00", None, None)
    broken = SourceStatus(
        "https://b.example/rss",
        "feed",
        3,
        "2026-12-01T10:00:00+00:00",
        "HTTP 503 after 3 attempts",
        "2026-12-07T10:00:00+00:00",
    )
    stats = IndexStats(
        Path("/i"),
        "gen-000009",
        43,
        400,
        "m",
        384,
        10_000,
        "2026-11-01",
        "2026-12-07",
        sources=(ok, broken),
        last_refresh="2026-12-07T10:00:00+00:00",
    )
    assert format_stats_html(stats).endswith(
        "\nNews from 2 sources, last refreshed 2026-12-07 10:00:00+00:00 (1 failing)."
    )
    quiet = IndexStats(Path("/i"), "gen-1", 2, 8, "m", 384, 1, None, None)
    assert "News from" not in format_stats_html(quiet)
