"""Tests for corpus.loaders: every file format, every kind of bad input, stable ids."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from corpus.articles import Article
from corpus.cleaning import clean_text
from corpus.errors import ArticleError, NewsbotError
from corpus.loaders import load_path, load_paths, sample_corpus_dir

DATA = Path(__file__).parents[1] / "data"
LOADERS = DATA / "loaders"
SEED_RAW = DATA / "seed-raw"

STORY = (
    "The council approved the budget on Tuesday after a four-hour debate.\n\n"
    "Members voted 12 to 3 in favour of the plan, which raises spending on schools."
)


def _articles(path: str | Path, **kwargs: int) -> list[Article]:
    results = list(load_path(path, **kwargs))
    errors = [r for r in results if isinstance(r, ArticleError)]
    assert errors == []
    return [r for r in results if isinstance(r, Article)]


def _errors(path: str | Path, **kwargs: int) -> list[ArticleError]:
    return [r for r in load_path(path, **kwargs) if isinstance(r, ArticleError)]


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- text and Markdown -------------------------------------------------------------------


def test_txt_with_front_matter(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "budget.txt",
        "---\n"
        'title: "Budget approved: schools win"\n'
        "url: https://news.example.com/budget/?utm_source=x\n"
        "date: 2024-11-14\n"
        "source: City Times\n"
        "language: vi\n"
        "author: Minh Anh\n"
        "tags: [budget, schools]\n"
        "---\n"
        "Budget approved: schools win\n\n" + STORY + "\n",
    )
    [article] = _articles(path)
    assert article.title == "Budget approved: schools win"
    assert article.body == STORY  # the repeated title line is cleaned away
    assert article.url == "https://news.example.com/budget/?utm_source=x"
    assert article.source == "City Times"
    assert article.published == datetime(2024, 11, 14, tzinfo=UTC)
    assert article.language == "vi"
    assert article.extra == {"author": "Minh Anh", "tags": "budget, schools"}


def test_front_matter_published_with_offset_keeps_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.txt",
        "---\ntitle: T\npublished: 2024-11-14T08:30:00+07:00\n---\n" + STORY,
    )
    [article] = _articles(path)
    assert article.published == datetime(2024, 11, 14, 8, 30, tzinfo=timezone(timedelta(hours=7)))


def test_txt_without_front_matter_uses_first_line_as_title(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.txt", "\n\nBudget approved\n\n" + STORY)
    [article] = _articles(path)
    assert article.title == "Budget approved"
    assert article.body == STORY
    assert article.url is None
    assert article.published is None
    assert article.language == "en"


def test_front_matter_without_title_falls_back_to_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", "---\nsource: City Times\n---\nBudget approved\n" + STORY)
    [article] = _articles(path)
    assert (article.title, article.source, article.body) == ("Budget approved", "City Times", STORY)


def test_markdown_heading_becomes_the_title(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.md", "# Budget approved\n\n" + STORY + "\n\n## Reaction\n\nMixed.")
    [article] = _articles(path)
    assert article.title == "Budget approved"
    assert article.body == STORY + "\n\n## Reaction\n\nMixed."


def test_utf8_bom_and_crlf_are_handled(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", ("Budget approved\r\n\r\n" + STORY).encode("utf-8-sig"))
    [article] = _articles(path)
    assert article.title == "Budget approved"
    assert article.body == STORY


def test_legacy_encoding_is_detected(tmp_path: Path) -> None:
    text = (
        "Café reopens in Zürich\n\n"
        "Café owners in Zürich said the façade of the old hôtel would be restored.\n\n"
        "The café, opened in 1923, is one of the city’s best-known landmarks."
    )
    path = _write(tmp_path / "a.txt", text.encode("cp1252"))
    [article] = _articles(path)
    assert article.title == "Café reopens in Zürich"
    assert "façade of the old hôtel" in article.body


# --- HTML ----------------------------------------------------------------------------------


def test_html_page_main_text_and_metadata() -> None:
    [article] = _articles(LOADERS / "page.html")
    assert article.title == "Red River floods force evacuations in three provinces"
    assert article.url == "https://news.example.com/world/red-river-floods"
    assert article.source == "Example News"
    assert article.published == datetime(2024, 3, 5, tzinfo=UTC)
    assert article.language == "en"
    paragraphs = article.body.split("\n\n")
    assert len(paragraphs) == 3
    assert paragraphs[0].startswith("Heavy rain since Monday pushed the Red River")
    assert paragraphs[2].endswith("landslides remain likely in mountainous districts.")
    for boilerplate in ("Home", "Sport", "cookies", "Most read", "Stock market", "Follow us"):
        assert boilerplate not in article.body
    assert "(Photo: VNA)" not in article.body
    assert "Share this article" not in article.body


def test_html_page_boxes_inside_the_story_never_reach_the_body() -> None:
    # A link box, a one-line teaser, a newsletter pitch, an author's contact line, a comment
    # count and a timestamp: all quotable if indexed, none of them the story.
    [article] = _articles(LOADERS / "page-with-boxes.html")
    paragraphs = article.body.split("\n\n")
    assert [p.split()[:3] for p in paragraphs] == [
        ["The", "harbour", "bridge"],
        ["Engineers", "replaced", "both"],
        ["Commuters", "who", "had"],
        ["The", "mayor", "said"],
    ]
    assert paragraphs[-1].endswith("heavy lorries will be allowed back.")


def test_html_without_text_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "empty.html", "<html><head><title>x</title></head><body></body></html>"
    )
    [error] = _errors(path)
    assert error.source == str(path)
    assert "no article text found in the HTML page" in str(error)


# --- JSONL ---------------------------------------------------------------------------------


def test_jsonl_multihop_export_and_alias_lines() -> None:
    multihop, export, aliased = _articles(LOADERS / "articles.jsonl")

    assert multihop.title == "200+ of the best deals from Amazon's Cyber Monday sale"
    assert multihop.source == "Mashable"
    assert multihop.published == datetime(2023, 11, 27, 8, 45, 59, tzinfo=UTC)
    assert multihop.url == "https://mashable.com/article/cyber-monday-deals-amazon-2023"
    assert "Advertisement" not in multihop.body
    assert multihop.body.startswith("Amazon is dragging out the year's biggest shopping")
    assert multihop.extra == {"category": "entertainment"}  # "id" is derived, never trusted

    assert export.title == "Ferry service resumes after storm"
    assert export.published == datetime(2024, 11, 13, 18, tzinfo=UTC)

    assert aliased.body == "Gold rose 1.2% on Friday as the dollar weakened."
    assert aliased.source == "Markets Daily"
    assert aliased.published == datetime(2024, 11, 15, tzinfo=UTC)
    assert aliased.language == "en"
    assert aliased.extra == {"author": "K. Lee", "premium": "false"}


def test_exported_articles_load_back_identical(tmp_path: Path) -> None:
    """The JSONL that `newsbot export` writes must reproduce the same Article (id, body)."""
    originals = _articles(sample_corpus_dir()) + _articles(_write(tmp_path / "x.txt", STORY))
    lines = [
        json.dumps(
            {
                "id": a.id,
                "title": a.title,
                "body": a.body,
                "url": a.url,
                "source": a.source,
                "published": a.published.isoformat() if a.published else None,
                "language": a.language,
            },
            ensure_ascii=False,
        )
        for a in originals
    ]
    reloaded = _articles(_write(tmp_path / "export.jsonl", "\n".join(lines) + "\n"))
    assert reloaded == originals
    assert [a.id for a in reloaded] == [a.id for a in originals]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"title": "T", "body": "x" "y"}',
            "line 2: invalid JSON (Expecting ',' delimiter at column 28)",
        ),
        ('{"body": "Some text."}', "line 2: field 'title' is required"),
        ('{"title": "T"}', "line 2: field 'body' (or text, content) is required"),
        (
            '{"title": 42, "body": "Some text."}',
            "line 2: field 'title' must be a string, not a number",
        ),
        (
            '{"title": "T", "content": ["a"]}',
            "line 2: field 'content' must be a string, not an array",
        ),
        (
            '{"title": "T", "body": "x", "date": "next Tuesday"}',
            "line 2: field 'date' is not a date: 'next Tuesday'",
        ),
        ('["T", "body"]', "line 2: expected a JSON object, got an array"),
        ('{"title": "  ", "body": "Some text."}', "line 2: the article has no title"),
        ('{"title": "T", "body": " \\n "}', "line 2: the article body is empty"),
        (
            '{"title": "T", "body": "Advertisement"}',
            "line 2: the article body is empty after removing boilerplate",
        ),
    ],
)
def test_bad_jsonl_line_is_reported_and_others_still_load(
    tmp_path: Path, line: str, message: str
) -> None:
    good = json.dumps({"title": "Budget approved", "body": STORY})
    path = _write(tmp_path / "batch.jsonl", f"{good}\n{line}\n\n{good}\n")
    results = list(load_path(path))
    assert [type(r) for r in results] == [Article, ArticleError, Article]
    error = results[1]
    assert isinstance(error, ArticleError)
    assert error.source == f"{path}:2"
    assert str(error).startswith(f"{path}:2: {message}")


# --- RSS and Atom --------------------------------------------------------------------------


def test_rss_items_become_articles() -> None:
    rates, ferry = _articles(LOADERS / "feed.rss")
    assert rates.title == "Central bank holds interest rate at 4.5%"
    assert rates.url == "https://wire.example.org/economy/rates-hold?utm_source=rss"
    assert rates.source == "Example Wire"
    assert rates.language == "en"
    assert rates.published == datetime(2024, 11, 14, 2, 15, tzinfo=UTC)
    # content:encoded wins over the short description; paragraphs, not tags.
    assert rates.body == (
        "The central bank kept its benchmark interest rate at 4.5% on Thursday, citing stable "
        "inflation and steady credit growth.\n\n"
        "Governor Le Thi Hoa said the bank would monitor exchange rates closely in the coming "
        "months."
    )
    assert rates.extra == {"author": "Minh Anh", "guid": "wire-1001", "tags": "Economy"}
    assert ferry.body == (
        "Ferries between the mainland and the islands resumed on Wednesday after a two-day "
        "suspension.\n\nOperators added extra sailings to clear the backlog of passengers."
    )
    assert ferry.published == datetime(2024, 11, 13, 18, tzinfo=UTC)


def test_atom_entries_become_articles() -> None:
    vapour, coral = _articles(LOADERS / "feed.atom")
    assert vapour.title == "Telescope spots water vapour on distant planet"
    assert vapour.url == "https://science.example.net/space/water-vapour/"
    assert vapour.source == "Science Desk"
    assert vapour.published == datetime(2024, 11, 15, 7, tzinfo=UTC)
    assert vapour.body == (
        "Astronomers detected water vapour in the atmosphere of a planet 120 light years away."
        "\n\nThe finding was published in a peer-reviewed journal on Friday."
    )
    assert vapour.extra["author"] == "R. Patel"
    assert coral.published == datetime(2024, 11, 14, 16, 30, tzinfo=UTC)  # <updated>
    assert (
        coral.body
        == "Survey teams found that bleached reefs regained coral cover within four years."
    )


def test_xml_that_is_not_a_feed_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.xml", "just some words, not a feed")
    [error] = _errors(path)
    assert error.source == str(path)
    assert "not an RSS or Atom feed" in str(error)


def test_feed_entry_without_title_is_reported_per_entry(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.rss",
        '<rss version="2.0"><channel><title>W</title>'
        "<item><description>No title here.</description></item>"
        "<item><title>Has a title</title><description>Some text.</description></item>"
        "</channel></rss>",
    )
    results = list(load_path(path))
    assert [type(r) for r in results] == [ArticleError, Article]
    assert str(results[0]) == f"{path}: entry 1: the article has no title"


# --- directories and bad files --------------------------------------------------------------


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.md", "# Second\n\n" + STORY)
    _write(tmp_path / "a.txt", "First\n\n" + STORY)
    _write(tmp_path / "notes.pdf", b"%PDF-1.7")  # unknown type: skipped silently
    _write(tmp_path / ".hidden.txt", "Hidden\n\n" + STORY)
    _write(tmp_path / ".git" / "x.txt", "Hidden too\n\n" + STORY)
    _write(tmp_path / "sub" / "c.jsonl", json.dumps({"title": "Third", "body": STORY}))
    shutil.copy(LOADERS / "page.html", tmp_path / "sub" / "d.html")
    shutil.copy(LOADERS / "feed.atom", tmp_path / "z.atom")
    titles = [a.title for a in _articles(tmp_path)]
    assert titles == [
        "First",
        "Second",
        "Third",
        "Red River floods force evacuations in three provinces",
        "Telescope spots water vapour on distant planet",
        "Coral reefs recover faster than expected",
    ]


def test_load_paths_chains_several_paths(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.txt", "First\n\n" + STORY)
    results = list(load_paths([a, LOADERS / "feed.rss"]))
    assert [r.title for r in results if isinstance(r, Article)] == [
        "First",
        "Central bank holds interest rate at 4.5%",
        "Ferry service resumes after storm",
    ]


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ArticleError, match="no such file or directory") as caught:
        list(load_path(tmp_path / "nope"))
    assert caught.value.source == str(tmp_path / "nope")
    assert isinstance(caught.value, NewsbotError)


def test_unknown_extension_given_explicitly_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "report.pdf", b"%PDF-1.7")
    [error] = list(load_path(path))
    assert isinstance(error, ArticleError)
    assert str(error) == (
        f"{path}: unsupported file type '.pdf' (expected .txt, .md, .html, .jsonl, .xml/.rss/.atom)"
    )


def test_undecodable_bytes_are_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    [error] = _errors(path)
    assert error.source == str(path)
    assert "cannot decode the file" in str(error)


def test_oversized_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.txt", "Title\n\n" + STORY)
    [error] = _errors(path, max_file_bytes=100)
    assert error.source == str(path)
    assert "file is too large" in str(error)
    assert "the limit is 100" in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Only a title line\n\n\n", "the article body is empty"),
        ("", "the file is empty"),
        ("---\ntitle: [unclosed\n---\nBody text.", "invalid front matter"),
        ("---\n- a list\n---\nBody text.", "front matter must be 'key: value' lines"),
        ("---\ntitle: T\ndate: soon\n---\nBody text.", "field 'date' is not a date: 'soon'"),
        ("---\ntitle: [a, b]\n---\nBody text.", "front-matter field 'title' must be text"),
        ("Title\n\nAdvertisement\n\nShare this article", "empty after removing boilerplate"),
    ],
)
def test_bad_text_file_is_an_error(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path / "bad.txt", content)
    [error] = _errors(path)
    assert error.source == str(path)
    assert message in str(error)


def test_one_bad_file_does_not_stop_a_directory(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "First\n\n" + STORY)
    _write(tmp_path / "b.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    _write(tmp_path / "c.txt", "Third\n\n" + STORY)
    results = list(load_path(tmp_path))
    assert [type(r) for r in results] == [Article, ArticleError, Article]


# --- identity ------------------------------------------------------------------------------


def test_same_url_with_tracking_params_or_slash_gives_same_id(tmp_path: Path) -> None:
    urls = [
        "https://news.example.com/budget",
        "https://News.Example.com/budget/",
        "https://news.example.com/budget?utm_source=rss&utm_medium=feed",
        "https://news.example.com/budget#comments",
    ]
    lines = [
        json.dumps({"title": f"Title {i}", "body": STORY, "url": u}) for i, u in enumerate(urls)
    ]
    articles = _articles(_write(tmp_path / "a.jsonl", "\n".join(lines)))
    assert len({a.id for a in articles}) == 1
    other = _articles(
        _write(
            tmp_path / "b.jsonl",
            json.dumps({"title": "T", "body": STORY, "url": "https://news.example.com/other"}),
        )
    )
    assert other[0].id != articles[0].id


def test_id_without_url_is_a_stable_content_hash(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", "Budget approved\n\n" + STORY)
    first = _articles(path)[0].id
    assert _articles(path)[0].id == first
    assert len(first) == 16
    _write(path, "Budget approved\n\n" + STORY + "\n\nOne more paragraph.")
    assert _articles(path)[0].id != first


# --- the packaged samples ------------------------------------------------------------------


def test_sample_corpus_loads_two_articles_with_real_metadata() -> None:
    articles = _articles(sample_corpus_dir())
    by_url = {a.url: a for a in articles}
    assert len(articles) == 2
    assert set(by_url) == {
        "https://en.vietnamplus.vn/post-303979.vnp",
        "https://en.vietnamplus.vn/post-304001.vnp",
    }
    for article in articles:
        assert article.source == "VietnamPlus (VNA)"
        assert article.published == datetime(2024, 11, 14, tzinfo=UTC)
        assert article.published_date == "2024-11-14"
        assert article.language == "en"
        assert "See more" not in article.body
    talks = by_url["https://en.vietnamplus.vn/post-303979.vnp"]
    assert talks.title == "Vietnamese, Peruvian Presidents seek measures to deepen relations"


@pytest.mark.parametrize("path", sorted(SEED_RAW.glob("*.txt")), ids=lambda p: p.name)
def test_samples_keep_the_seed_text_verbatim(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    sample = (sample_corpus_dir() / path.name).read_text(encoding="utf-8")
    assert sample.endswith("\n---\n" + raw)
    title = raw.split("\n", 1)[0]
    [article] = _articles(sample_corpus_dir() / path.name)
    assert article.body == clean_text(raw, title=title).text
