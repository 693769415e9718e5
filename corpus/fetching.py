"""Polite, bounded HTTP fetching of feeds and article pages.

One :class:`Fetcher` per round: an httpx client that follows redirects and keeps the final
URL, gives up on a page after a connect and a total deadline (a server that trickles bytes
forever is cut off too), stops reading at a size cap while streaming, skips what is not a
page or a feed (a PDF, an image) before reading it, sends the validators of the last visit
(a 304 costs nothing), asks each host's robots.txt first (protego, the parser Scrapy uses)
and keeps to its Crawl-delay, keeps at most ``per_host`` requests in flight per host with a
pause between them, and retries 429 and 5xx answers with backoff, honouring
``Retry-After``. A failure is returned as a :class:`FetchFailure` with its reason, never
raised: one bad source never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from protego import Protego

__all__ = [
    "FEED_TYPES",
    "PAGE_TYPES",
    "FetchFailure",
    "FetchPolicy",
    "Fetched",
    "Fetcher",
    "Validators",
]

PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        # OPML and plain URL lists are fetched like feeds; text/plain also covers
        # servers that label a feed or a list badly (the body is sniffed, not trusted).
        "text/x-opml",
        "text/plain",
    }
)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server said identifies the version we have (HTTP conditional requests)."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful answer: the body, or ``body is None`` when it has not changed (304)."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes | None
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """Why a URL could not be had, in words a person running the bot can act on."""

    url: str
    reason: str


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How hard to try and how much to accept; the settings fill it (``NEWSBOT_FETCH_*``)."""

    user_agent: str = "newsbot/0.1 (news question-answering bot)"  # NEWSBOT_FETCH_USER_AGENT's
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    max_bytes: int = 5_000_000
    per_host: int = 2
    host_delay: float = 0.5
    retries: int = 2
    backoff: float = 1.0
    max_retry_after: float = 60.0
    accept: frozenset[str] = field(default=PAGE_TYPES | FEED_TYPES)


class Fetcher:
    """Fetches URLs under one :class:`FetchPolicy`; use as ``async with Fetcher() as f``."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._client: httpx.AsyncClient | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, Protego | str] = {}  # per origin: the rules, or why none
        self._delays: dict[str, float] = {}  # per host: the Crawl-delay its robots.txt asks
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        p = self.policy
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=5,
            timeout=httpx.Timeout(p.total_timeout, connect=p.connect_timeout),
            headers={"User-Agent": p.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def fetch(self, url: str, validators: Validators | None = None) -> Fetched | FetchFailure:
        """GET ``url`` politely; never raises for anything the network or server does."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return FetchFailure(url, "not an http(s) URL")
        refused = await self._robots_refusal(url)
        if refused:
            return FetchFailure(url, refused)
        attempt = 0
        while True:
            try:
                async with self._slot(parts.netloc):
                    answer = await asyncio.wait_for(
                        self._get(url, validators), timeout=self.policy.total_timeout
                    )
            except TimeoutError:
                answer = FetchFailure(url, f"no complete answer in {self.policy.total_timeout:g} s")
            except httpx.TooManyRedirects:
                return FetchFailure(url, "too many redirects")
            except httpx.HTTPError as exc:
                answer = FetchFailure(url, _describe(exc))
            if not isinstance(answer, _Retry):
                return answer
            attempt += 1
            wait = (
                answer.after
                if answer.after is not None
                else self.policy.backoff * 2 ** (attempt - 1)
            )
            if attempt > self.policy.retries or wait > self.policy.max_retry_after:
                return FetchFailure(url, f"HTTP {answer.status} after {attempt} attempts")
            await asyncio.sleep(wait)

    async def _get(
        self, url: str, validators: Validators | None
    ) -> Fetched | FetchFailure | _Retry:
        assert self._client is not None, "use Fetcher as an async context manager"
        headers = validators.headers() if validators else {}
        async with self._client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            if response.status_code == 304:
                return Fetched(url, final_url, 304, "", None, validators or Validators())
            if response.status_code in _RETRY_STATUSES:
                return _Retry(response.status_code, _retry_after(response))
            if response.status_code >= 400:
                return FetchFailure(url, f"HTTP {response.status_code} {response.reason_phrase}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type and content_type not in self.policy.accept:
                return FetchFailure(url, f"skipped: {content_type} is not a page or a feed")
            declared = response.headers.get("content-length", "")
            cap = self.policy.max_bytes
            if declared.isdigit() and int(declared) > cap:
                return FetchFailure(
                    url, f"skipped: {int(declared):,} bytes is over the {cap:,} cap"
                )
            body = bytearray()
            async for piece in response.aiter_bytes():
                body.extend(piece)
                if len(body) > cap:
                    return FetchFailure(url, f"skipped: more than the {cap:,} byte cap")
            return Fetched(
                url,
                final_url,
                response.status_code,
                content_type,
                bytes(body),
                Validators(response.headers.get("etag"), response.headers.get("last-modified")),
            )

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """At most ``per_host`` requests in flight to a host, ``host_delay`` apart."""
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.policy.per_host))
        delay = max(self.policy.host_delay, self._delays.get(host, 0.0))
        async with semaphore:
            wait = self._last_request.get(host, 0.0) + delay - time.monotonic()
            self._last_request[host] = time.monotonic() + max(wait, 0.0)
            if wait > 0:
                await asyncio.sleep(wait)
            yield

    async def _robots_refusal(self, url: str) -> str | None:
        """Why the host's robots.txt keeps us from ``url``, or None if it lets us fetch it.

        Read once per host and round. Missing (4xx) means everything is allowed; a server
        error or no answer means nothing is, for this round (RFC 9309, section 2.3.1).
        """
        parts = urlsplit(url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin not in self._robots:
                self._robots[origin] = await self._read_robots(origin)
        robots = self._robots[origin]
        if isinstance(robots, str):
            return robots
        asked = robots.crawl_delay(self.policy.user_agent)
        if asked and parts.netloc not in self._delays:  # honoured, within reason
            self._delays[parts.netloc] = min(float(asked), self.policy.max_retry_after)
        if not robots.can_fetch(url, self.policy.user_agent):
            return "robots.txt disallows fetching it"
        return None

    async def _read_robots(self, origin: str) -> Protego | str:
        assert self._client is not None
        try:
            async with self._slot(urlsplit(origin).netloc):
                response = await asyncio.wait_for(
                    self._client.get(f"{origin}/robots.txt"), timeout=self.policy.total_timeout
                )
        except TimeoutError:
            return "robots.txt did not answer in time: the host is skipped this round"
        except httpx.HTTPError as exc:
            return _describe(exc)
        if 400 <= response.status_code < 500:
            return Protego.parse("")
        if response.status_code >= 500:
            return (
                f"robots.txt answered HTTP {response.status_code}: the host is skipped this round"
            )
        return Protego.parse(response.text[: self.policy.max_bytes])


@dataclass(frozen=True, slots=True)
class _Retry:
    status: int
    after: float | None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return None


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "cannot connect: timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {str(exc) or 'refused'}"
    if isinstance(exc, httpx.TimeoutException):
        return "no complete answer: timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
