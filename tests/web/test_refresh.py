"""Live news end to end: a site on 127.0.0.1, two feeds and an OPML list, rounds of refresh
into a real index with the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corpus.errors import ConfigurationError
from retrieval.assistant import NewsAssistant
from retrieval.refresh import configured_sources, refresh
from retrieval.settings import RetrievalSettings
from retrieval.sources import SourceStore
from retrieval.store.faiss_index import FaissIndex

from .fake_web import FakeSite, Page, article_page, atom, opml, rss

STORIES = {
    "/news/bridge": (
        "Harbour bridge reopens after repairs",
        [
            "The harbour bridge reopened to traffic on Tuesday, six months after cracks in two "
            "support piers forced the city to close it.",
            "Engineers replaced both piers at a cost of 48 million dollars, the transport "
            "department said.",
        ],
    ),
    "/news/ferry": (
        "Ferry crews strike for a second week",
        [
            "Ferry crews walked out for a second week on Monday, cancelling every crossing to "
            "the islands.",
            "The union wants a pay rise of eight percent; the operator has offered four.",
        ],
    ),
    "/news/bakery": (
        "Local bakery wins national bread award",
        [
            "A family bakery in the old town won the national sourdough award on Sunday.",
            "Its owners said the recipe had not changed in three generations.",
        ],
    ),
    "/news/lighthouse": (
        "Lighthouse keeper retires after forty years",
        [
            "The last lighthouse keeper on the coast retired on Friday after forty years "
            "of service.",
            "The light will be automated next spring, the maritime authority said.",
        ],
    ),
    "/news/busy": (
        "Council approves new cycle lanes",
        [
            "The council approved twelve kilometres of new cycle lanes on Wednesday.",
            "Work starts in June and should take a year.",
        ],
    ),
}
PUBLISHED = "2024-05-14T09:00:00Z"


def _page(path: str, paragraphs: list[str] | None = None) -> Page:
    title, text = STORIES[path]
    return Page(article_page(title, paragraphs or text, published=PUBLISHED))


@pytest.fixture
def site():
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("User-agent: *\nDisallow: /private/\n", "text/plain")
        for path in STORIES:
            site.pages[path] = _page(path)
        site.pages["/news/busy"].fail_first = 1  # a 429 first, then the page
        site.pages["/news/old"] = Page(status=301, headers={"Location": "/news/lighthouse"})
        site.pages["/files/report.pdf"] = Page(b"%PDF-1.7", "application/pdf")
        site.pages["/news/huge"] = Page("<html><body>" + "w " * 400_000 + "</body></html>")
        site.pages["/news/stall"] = Page("<html><body>" + "s" * 1000, stall=6)
        site.pages["/private/memo"] = Page(article_page("Memo", ["Secret."], published=PUBLISHED))
        site.pages["/rss.xml"] = Page(
            rss(
                [
                    {"title": "Bridge", "link": site.url("/news/bridge?utm_source=rss")},
                    {"title": "Ferry", "link": site.url("/news/ferry")},
                    {"title": "Old link", "link": site.url("/news/old")},
                    {"title": "Busy", "link": site.url("/news/busy")},
                    {"title": "Report", "link": site.url("/files/report.pdf")},
                    {"title": "Huge", "link": site.url("/news/huge")},
                    {"title": "Stalls", "link": site.url("/news/stall")},
                    {"title": "Memo", "link": site.url("/private/memo")},
                    {
                        "title": "Gone but summarised",
                        "link": site.url("/news/gone"),
                        "description": "The ferry operator said on Tuesday that talks with the "
                        "union would resume next week under a mediator.",
                    },
                ]
            ),
            "application/rss+xml",
        )
        site.pages["/atom.xml"] = Page(
            atom(
                [
                    {
                        "title": "Bridge",
                        "link": site.url("/news/bridge?utm_campaign=atom&amp;fbclid=abc"),
                    },
                    {"title": "Bakery", "link": site.url("/news/bakery")},
                ]
            ),
            "application/atom+xml",
        )
        site.pages["/feeds.opml"] = Page(
            opml([site.url("/rss.xml"), site.url("/atom.xml")]), "text/x-opml"
        )
        yield site


@pytest.fixture
def settings(tmp_path: Path) -> RetrievalSettings:
    return RetrievalSettings(
        index_dir=tmp_path / "index", fetch_timeout=2, fetch_delay=0, fetch_max_bytes=500_000
    )


def _titles(settings: RetrievalSettings) -> set[str]:
    index = FaissIndex.open(settings.index_dir)
    try:
        return {a.title for a in index.articles()}
    finally:
        index.close()


def test_a_round_stores_each_story_once_and_says_why_the_rest_failed(site, settings, embedder):
    report = refresh([site.url("/feeds.opml")], settings, embedder)

    assert _titles(settings) == {
        "Harbour bridge reopens after repairs",  # linked from both feeds: stored once
        "Ferry crews strike for a second week",
        "Lighthouse keeper retires after forty years",  # through a 301
        "Council approves new cycle lanes",  # after a 429
        "Local bakery wins national bread award",
        "Gone but summarised",  # page 404: the feed's own text
    }
    assert len(site.asked("/news/bridge")) == 1
    reasons = {url.split("/")[-1]: reason for url, reason in report.failed}
    assert "application/pdf" in reasons["report.pdf"]
    assert "cap" in reasons["huge"]
    assert "no complete answer" in reasons["stall"]
    assert "robots.txt" in reasons["memo"]
    assert site.asked("/private/memo") == []
    assert len(report.added) == 6 and report.updated == () and report.expired == 0
    assert report.duplicates == 1  # the bridge story, linked from the second feed too
    index = FaissIndex.open(settings.index_dir)
    try:
        urls = {a.title: a.url for a in index.articles()}
    finally:
        index.close()
    assert urls["Harbour bridge reopens after repairs"] == site.url("/news/bridge")
    assert urls["Lighthouse keeper retires after forty years"] == site.url("/news/lighthouse")
    kinds = {s.url.rsplit("/", 1)[-1]: s.kind for s in SourceStore(settings.index_dir).sources()}
    assert kinds == {"feeds.opml": "list", "rss.xml": "feed", "atom.xml": "feed"}


def test_round_two_asks_conditionally_and_stores_nothing_new(site, settings, embedder):
    refresh([site.url("/feeds.opml")], settings, embedder)
    generation = FaissIndex.open(settings.index_dir).generation
    before = len(site.requests)

    report = refresh([site.url("/feeds.opml")], settings, embedder)

    second = site.requests[before:]
    for path in ("/rss.xml", "/atom.xml"):
        [request] = [r for r in second if r.path == path]
        assert "If-None-Match" in request.headers
    assert report.added == () and report.updated == ()
    assert report.found_anything
    assert FaissIndex.open(settings.index_dir).generation == generation  # no commit at all


def test_a_story_that_changed_replaces_its_old_text(site, settings, embedder):
    refresh([site.url("/rss.xml")], settings, embedder)
    site.pages["/news/ferry"] = _page(
        "/news/ferry",
        [
            "Ferry crews ended their strike on Thursday after the operator agreed to a pay "
            "rise of six percent.",
            "Crossings to the islands resume on Friday morning.",
        ],
    )
    # A feed that changed too (a new item), so that its entries are looked at again.
    site.pages["/rss.xml"].body = site.pages["/rss.xml"].data.replace(
        b"</channel>",
        b"<item><title>x</title><link>"
        + site.url("/news/bakery").encode()
        + b"</link></item></channel>",
    )

    report = refresh([site.url("/rss.xml")], settings, embedder)

    assert report.updated == ("Ferry crews strike for a second week",)
    assert report.added == ("Local bakery wins national bread award",)
    assistant = NewsAssistant(settings, embedder=embedder)
    try:
        hits = assistant.searcher().search("ferry strike pay rise percent", 5)
        texts = " ".join(h.chunk.text for h in hits if "Ferry" in h.chunk.title)
        assert "six percent" in texts
        assert "eight percent" not in texts
        assert assistant.index.manifest.article_count == 6  # five, then the bakery
    finally:
        assistant.close()


def test_old_articles_expire_and_too_old_ones_are_not_added(site, settings, embedder):
    refresh([site.url("/atom.xml")], settings, embedder)
    assert len(_titles(settings)) == 2
    # Keeping 30 days, today: both stored stories (May 2024) expire.
    short = settings.model_copy(update={"keep_days": 30})

    report = refresh([site.url("/atom.xml")], short, embedder)

    assert report.expired == 2
    assert _titles(settings) == set()
    assert report.too_old == 0  # unchanged pages (304) are not re-read, so not re-judged


def test_stories_older_than_the_retention_are_not_added(site, settings, embedder):
    short = settings.model_copy(update={"keep_days": 30})
    report = refresh([site.url("/atom.xml")], short, embedder)
    assert (report.added, report.too_old) == ((), 2)
    assert report.found_anything


def test_the_article_count_limit_keeps_the_newest(site, settings, embedder):
    refresh([site.url("/rss.xml")], settings, embedder)
    limited = settings.model_copy(update={"max_articles": 2})
    site.pages["/news/bakery2"] = Page(
        article_page(
            "Bakery opens a second shop",
            ["The award-winning bakery opened a second shop by the harbour on Monday."],
            published=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
        )
    )
    report = refresh([site.url("/news/bakery2")], limited, embedder)
    assert report.added == ("Bakery opens a second shop",)
    titles = _titles(settings)
    assert len(titles) == 2 and "Bakery opens a second shop" in titles


def test_a_round_that_reads_nothing_says_so(site, settings, embedder):
    site.pages["/empty.xml"] = Page(rss([]), "application/rss+xml")
    report = refresh([site.url("/empty.xml"), site.url("/nowhere.xml")], settings, embedder)
    assert not report.found_anything
    assert [s.error for s in report.sources] == ["the feed has no entries", "HTTP 404 Not Found"]


def test_configured_sources_accept_urls_or_a_list_file(tmp_path, site):
    assert configured_sources(f"{site.url('/a')}, {site.url('/b')}") == [
        site.url("/a"),
        site.url("/b"),
    ]
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"# my feeds\n{site.url('/rss.xml')}\n\n{site.url('/atom.xml')}\n")
    assert configured_sources(str(listing)) == [site.url("/rss.xml"), site.url("/atom.xml")]
    subscriptions = tmp_path / "subscriptions.opml"
    subscriptions.write_text(opml([site.url("/rss.xml")]))
    assert configured_sources(str(subscriptions)) == [site.url("/rss.xml")]
    with pytest.raises(ConfigurationError, match="neither a URL nor a file"):
        configured_sources("feeds-that-do-not-exist.txt")
    with pytest.raises(ConfigurationError, match="not an http"):
        configured_sources(f"{site.url('/a')}, ftp://example.com/feed")
