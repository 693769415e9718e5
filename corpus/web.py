"""Articles from the web: feeds, article pages, and lists of them (one URL a line, or OPML).

A source is a URL. What it is comes from what the server sends, not from its name: an RSS or
Atom feed (each entry's page is fetched and extracted; the entry's own text, usually a
summary, is used only when the page cannot be had), an OPML file or a plain list of URLs
(each URL becomes a source), or an HTML page (one article). Fetching is ``fetching.py``'s:
polite, bounded, and never raising. A story linked from two feeds, with different tracking
parameters, is fetched once a round (canonical URLs, ``articles.normalise_url``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .articles import Article, normalise_url
from .errors import ArticleError
from .fetching import FEED_TYPES, PAGE_TYPES, Fetched, Fetcher, FetchFailure, Validators
from .loaders import FeedEntry, article_from_page, feed_entries

__all__ = [
    "SourceReport",
    "WebArticle",
    "WebRound",
    "collect",
    "is_url",
    "read_url_list",
    "url_list_file",
]

_MAX_LIST_DEPTH = 2  # a list may name lists (an OPML of OPMLs), but not forever


@dataclass(frozen=True, slots=True)
class WebArticle:
    """An article found this round, and the fetch that produced it."""

    article: Article
    source: str  # the source (feed, page or list entry) it was found through
    url: str  # the URL fetched for it (its validators are kept under this address)
    validators: Validators
    note: str | None = None  # e.g. why the feed's own text stands in for the page


@dataclass(slots=True)
class SourceReport:
    """What one source gave this round."""

    url: str
    kind: str = "unknown"  # feed, page, list
    articles: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None  # the source itself could not be read


@dataclass(slots=True)
class WebRound:
    """Everything one round of fetching found, for the index and for the report."""

    articles: list[WebArticle] = field(default_factory=list)
    failures: list[FetchFailure] = field(default_factory=list)
    sources: list[SourceReport] = field(default_factory=list)
    validators: dict[str, Validators] = field(default_factory=dict)  # the feeds'
    fetches: int = 0
    repeated_links: int = 0  # entries linking a story another entry already linked (not fetched)
    extract_seconds: float = 0.0  # of the round's time, reading articles out of pages


def is_url(text: str) -> bool:
    parts = urlsplit(text.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def read_url_list(data: bytes, base: str | None = None) -> list[str] | None:
    """The URLs of an OPML file (its outlines' ``xmlUrl``/``url``) or of a text file with one
    URL a line (blank lines and ``#`` comments allowed); None if ``data`` is neither."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if text[:1000].lower().find("<opml") >= 0:
        return _opml_urls(data, base)
    lines = [line.strip() for line in text.splitlines()]
    urls = [line for line in lines if line and not line.startswith("#")]
    if urls and all(is_url(u) for u in urls):
        return urls
    return None


def url_list_file(path: Path) -> list[str] | None:
    """The URLs a local list file names (``.opml``, or a text file of URLs), else None."""
    if path.suffix.lower() not in (".opml", ".txt", ".urls", ".list", ".xml"):
        return None
    try:
        data = path.read_bytes()[:10_000_000]
    except OSError:
        return None
    if path.suffix.lower() == ".xml" and b"<opml" not in data[:1000].lower():
        return None
    return read_url_list(data)


def _opml_urls(data: bytes, base: str | None) -> list[str]:
    from lxml import etree

    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not a readable OPML file ({exc})") from None
    urls = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl") or outline.get("url") or outline.get("htmlUrl")
        if url and is_url(urljoin(base or "", url)):
            urls.append(urljoin(base or "", url))
    return list(dict.fromkeys(urls))


async def collect(
    sources: Sequence[str],
    fetcher: Fetcher,
    known: Callable[[str], Validators | None],
    *,
    max_article_chars: int = 200_000,
    on_fetched: Callable[[], None] | None = None,
) -> WebRound:
    """Fetch ``sources`` and every page their feeds link to, concurrently (the fetcher keeps
    it polite per host). ``known(url)`` gives the validators of the last visit, sent as
    conditional requests; ``on_fetched`` is called after each fetch (progress)."""
    work = _Round(fetcher, known, max_article_chars, on_fetched)
    await asyncio.gather(*(work.source(url, depth=0) for url in dict.fromkeys(sources)))
    return work.result


class _Round:
    def __init__(
        self,
        fetcher: Fetcher,
        known: Callable[[str], Validators | None],
        max_article_chars: int,
        on_fetched: Callable[[], None] | None,
    ) -> None:
        self.fetcher, self.known, self.max_chars = fetcher, known, max_article_chars
        self.on_fetched = on_fetched or (lambda: None)
        self.result = WebRound()
        self.claimed: set[str] = set()  # canonical page URLs taken this round

    async def fetch(self, url: str) -> Fetched | FetchFailure:
        answer = await self.fetcher.fetch(url, self.known(normalise_url(url)))
        self.result.fetches += 1
        self.on_fetched()
        return answer

    async def source(self, url: str, *, depth: int) -> None:
        report = SourceReport(url)
        self.result.sources.append(report)
        answer = await self.fetch(url)
        if isinstance(answer, FetchFailure):
            report.error = answer.reason
            self.result.failures.append(answer)
            return
        if answer.not_modified:
            report.kind = "unchanged"
            self.result.validators[normalise_url(url)] = answer.validators
            return
        body = answer.body or b""
        kind = _kind(answer.content_type, body)
        report.kind = kind
        if kind == "page":
            self.page(url, answer, report, entry=None)
            return
        if kind == "list":
            urls = read_url_list(body, base=answer.final_url) or []
            if depth >= _MAX_LIST_DEPTH:
                report.error = "a list of lists of lists: not followed"
                return
            report.articles = len(urls)
            # A list's validators are not kept: after a 304 its URLs would be unknown.
            await asyncio.gather(*(self.source(u, depth=depth + 1) for u in urls))
            return
        try:
            entries = feed_entries(body)
        except ValueError as exc:
            report.error = str(exc)
            self.result.failures.append(FetchFailure(url, str(exc)))
            return
        if not entries:
            report.error = "the feed has no entries"
        self.result.validators[normalise_url(url)] = answer.validators
        await asyncio.gather(*(self.entry(entry, url, report) for entry in entries))

    async def entry(self, entry: FeedEntry, feed: str, report: SourceReport) -> None:
        link = urljoin(feed, entry.link) if entry.link else None
        if not link or not is_url(link):
            self.fallback(entry, feed, report, "the entry links to no page")
            return
        canonical = normalise_url(link)
        if canonical in self.claimed:
            self.result.repeated_links += 1  # the same story through another feed
            return
        self.claimed.add(canonical)
        answer = await self.fetch(link)
        if isinstance(answer, FetchFailure):
            self.fallback(entry, feed, report, f"page unavailable ({answer.reason})")
            return
        if answer.not_modified:
            report.unchanged += 1
            return
        if _kind(answer.content_type, answer.body or b"") != "page":
            self.fallback(entry, feed, report, f"the link is not a page ({answer.content_type})")
            return
        self.page(feed, answer, report, entry=entry)

    def page(
        self, source: str, answer: Fetched, report: SourceReport, *, entry: FeedEntry | None
    ) -> None:
        started = time.perf_counter()
        try:
            article = article_from_page(
                answer.body or b"",
                url=answer.final_url,
                title=entry.title if entry else None,
                published=entry.published if entry else None,
                source=entry.source if entry else None,
            )
        except ValueError as exc:
            if entry is not None:
                self.fallback(entry, source, report, f"page unreadable ({exc})")
            else:
                report.failed += 1
                self.result.failures.append(FetchFailure(answer.url, str(exc)))
            return
        finally:
            self.result.extract_seconds += time.perf_counter() - started
        self.add(WebArticle(article, source, answer.url, answer.validators), report)

    def fallback(self, entry: FeedEntry, feed: str, report: SourceReport, why: str) -> None:
        """The feed's own text of the entry, when its page cannot be had."""
        if isinstance(entry.article, ArticleError):
            report.failed += 1
            self.result.failures.append(
                FetchFailure(entry.link or feed, f"{why}, and the feed has no text for it")
            )
            return
        note = f"{why}; the feed's own text was used"
        self.add(WebArticle(entry.article, feed, entry.link or feed, Validators(), note), report)

    def add(self, found: WebArticle, report: SourceReport) -> None:
        if len(found.article.body) > self.max_chars:
            report.failed += 1
            self.result.failures.append(
                FetchFailure(found.url, f"article over {self.max_chars:,} characters")
            )
            return
        report.articles += 1
        self.result.articles.append(found)


def _kind(content_type: str, body: bytes) -> str:
    """page, feed or list: what the server says, checked against the first bytes."""
    head = body[:2000].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<opml" in head:
        return "list"
    if head.startswith((b"<rss", b"<feed", b"<rdf")) or (
        head.startswith(b"<?xml") and (b"<rss" in head or b"<feed" in head or b"<rdf" in head)
    ):
        return "feed"
    if content_type in PAGE_TYPES or b"<html" in head or head.startswith(b"<!doctype html"):
        return "page"
    if read_url_list(body) is not None:
        return "list"
    return "feed" if content_type in FEED_TYPES else "page"
