"""The fetcher against a real HTTP server on 127.0.0.1: every way a page can go wrong."""

from __future__ import annotations

import asyncio
import time

import pytest

from corpus.fetching import Fetched, Fetcher, FetchFailure, FetchPolicy, Validators

from .fake_web import FakeSite, Page

FAST = FetchPolicy(
    total_timeout=1.5, connect_timeout=1.0, max_bytes=20_000, host_delay=0.0, backoff=0.1
)


def _fetch(url: str, policy: FetchPolicy = FAST, validators: Validators | None = None):
    async def run() -> Fetched | FetchFailure:
        async with Fetcher(policy) as fetcher:
            return await fetcher.fetch(url, validators)

    return asyncio.run(run())


@pytest.fixture
def site():
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("User-agent: *\nDisallow: /private/\n", "text/plain")
        yield site


def test_a_page_comes_back_with_its_validators_and_our_user_agent(site):
    site.pages["/news/a"] = Page("<html><body><p>Story</p></body></html>")
    answer = _fetch(site.url("/news/a"))
    assert isinstance(answer, Fetched)
    assert (answer.status, answer.content_type) == (200, "text/html")
    assert answer.body is not None and b"Story" in answer.body
    assert answer.validators.etag
    assert site.asked("/news/a")[0].headers["User-Agent"] == FAST.user_agent


def test_a_redirect_is_followed_and_the_final_address_kept(site):
    site.pages["/old"] = Page(status=301, headers={"Location": "/new"})
    site.pages["/new"] = Page("<html><body>moved here</body></html>")
    answer = _fetch(site.url("/old"))
    assert isinstance(answer, Fetched)
    assert (answer.url, answer.final_url) == (site.url("/old"), site.url("/new"))


def test_a_second_visit_with_the_validators_costs_a_304(site):
    site.pages["/news/a"] = Page("<html><body><p>Story</p></body></html>")
    first = _fetch(site.url("/news/a"))
    assert isinstance(first, Fetched)
    second = _fetch(site.url("/news/a"), validators=first.validators)
    assert isinstance(second, Fetched) and second.not_modified
    assert site.asked("/news/a")[1].headers["If-None-Match"] == first.validators.etag


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        (Page(status=404), "HTTP 404 Not Found"),
        (Page(b"%PDF-1.7 ...", "application/pdf"), "skipped: application/pdf is not a page"),
        (Page(b"\x89PNG....", "image/png"), "skipped: image/png is not a page"),
        (Page(b"x" * 50_000), "over the 20,000 cap"),
    ],
)
def test_what_is_not_an_article_is_skipped_with_its_reason(site, page, reason):
    site.pages["/thing"] = page
    answer = _fetch(site.url("/thing"))
    assert isinstance(answer, FetchFailure)
    assert reason in answer.reason


def test_a_body_over_the_cap_is_cut_off_while_streaming(site):
    # No Content-Length to check first: the cap holds on the bytes as they arrive.
    site.pages["/endless"] = Page(b"<html>" + b"y" * 200_000, declare_length=False)
    answer = _fetch(site.url("/endless"))
    assert isinstance(answer, FetchFailure)
    assert answer.reason == "skipped: more than the 20,000 byte cap"


def test_a_page_that_stalls_is_given_up_within_the_total_timeout(site):
    site.pages["/stall"] = Page("<html><body>" + "z" * 500, stall=5)
    started = time.monotonic()
    answer = _fetch(site.url("/stall"))
    assert isinstance(answer, FetchFailure)
    assert "no complete answer in 1.5 s" in answer.reason
    assert time.monotonic() - started < 4


def test_robots_txt_is_asked_once_and_obeyed(site):
    site.pages["/private/secret"] = Page("<html><body>secret</body></html>")
    site.pages["/news/a"] = Page("<html><body>open</body></html>")

    async def run() -> list:
        async with Fetcher(FAST) as fetcher:
            return [
                await fetcher.fetch(site.url("/private/secret")),
                await fetcher.fetch(site.url("/news/a")),
            ]

    secret, open_page = asyncio.run(run())
    assert isinstance(secret, FetchFailure) and "robots.txt disallows" in secret.reason
    assert isinstance(open_page, Fetched)
    assert site.asked("/private/secret") == []
    assert len(site.asked("/robots.txt")) == 1


def test_429_is_retried_after_the_time_the_server_asks(site):
    site.pages["/busy"] = Page("<html><body>finally</body></html>", fail_first=1)
    started = time.monotonic()
    answer = _fetch(site.url("/busy"))
    assert isinstance(answer, Fetched)
    assert len(site.asked("/busy")) == 2
    assert time.monotonic() - started >= 1.0  # Retry-After: 1


def test_a_server_error_that_persists_is_reported_after_the_retries(site):
    site.pages["/broken"] = Page(status=503)
    answer = _fetch(site.url("/broken"))
    assert isinstance(answer, FetchFailure)
    assert answer.reason == "HTTP 503 after 3 attempts"
    assert len(site.asked("/broken")) == 3


def test_one_host_gets_at_most_per_host_requests_at_once(site):
    for n in range(6):
        site.pages[f"/slow/{n}"] = Page("<html><body>slow</body></html>")
    policy = FetchPolicy(host_delay=0.2, per_host=1, total_timeout=5)

    async def run() -> float:
        async with Fetcher(policy) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(fetcher.fetch(site.url(f"/slow/{n}")) for n in range(6)))
            return time.monotonic() - started

    # Six pages, one at a time, 0.2 s apart (robots.txt first): at least a second.
    assert asyncio.run(run()) >= 1.0


def test_an_unreachable_host_is_a_failure_not_an_exception():
    answer = _fetch("http://127.0.0.1:9/nothing-listens-here")
    assert isinstance(answer, FetchFailure)
    assert answer.reason.startswith("cannot connect")


def test_a_host_whose_robots_txt_fails_is_skipped_for_the_round(site):
    site.pages["/robots.txt"] = Page(status=503)
    site.pages["/news/a"] = Page("<html><body>open</body></html>")
    answer = _fetch(site.url("/news/a"))
    assert isinstance(answer, FetchFailure)
    assert answer.reason == "robots.txt answered HTTP 503: the host is skipped this round"
    assert site.asked("/news/a") == []


def test_a_crawl_delay_in_robots_txt_spaces_the_requests_to_that_host(site):
    site.pages["/robots.txt"] = Page("User-agent: *\nCrawl-delay: 1\n", "text/plain")
    for n in range(3):
        site.pages[f"/news/{n}"] = Page("<html><body>story</body></html>")
    policy = FetchPolicy(host_delay=0.0, per_host=2, total_timeout=5)

    async def run() -> float:
        async with Fetcher(policy) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(fetcher.fetch(site.url(f"/news/{n}")) for n in range(3)))
            return time.monotonic() - started

    # robots.txt, then three pages a second apart (per_host 2 does not overtake the delay)
    assert asyncio.run(run()) >= 2.0
