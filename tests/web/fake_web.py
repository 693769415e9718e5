"""A small news site on 127.0.0.1 for the fetching tests: feeds, pages, and what goes wrong.

Each path is a :class:`Page` (status, content type, body, headers, a stall, a delay); the
site answers conditional requests the way real servers do (``ETag`` from the body, ``304``
when ``If-None-Match`` matches), serves ``/robots.txt`` like any other path, and records
every request with its headers so a test can check what was asked and how.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0  # seconds to hang after the headers, before the body
    fail_first: int = 0  # answer the first N requests with 429 (Retry-After: 1)
    declare_length: bool = True  # False: no Content-Length, the body ends when the socket does

    @property
    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


class FakeSite:
    """``with FakeSite() as site: site.pages["/rss.xml"] = Page(...); site.url("/rss.xml")``"""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                # The client gives up on a stalled page, as it should.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                with site._lock:
                    site.requests.append(Request(self.path, dict(self.headers.items())))
                    page = site.pages.get(self.path) or site.pages.get(self.path.split("?")[0])
                    if page is not None and page.fail_first > 0:
                        page.fail_first -= 1
                        self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
                        return
                if page is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                data = page.data
                etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
                if page.status == 200 and self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", None, {"ETag": etag})
                    return
                headers = dict(page.headers)
                if page.status == 200:
                    headers.setdefault("ETag", etag)
                if page.stall:
                    self.send_response(page.status)
                    self.send_header("Content-Type", page.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:10])
                    self.wfile.flush()
                    time.sleep(page.stall)
                    return
                self._send(page.status, data, page.content_type, headers, page.declare_length)

            def _send(
                self,
                status: int,
                data: bytes,
                content_type: str | None,
                headers: dict,
                declare_length: bool = True,
            ) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                if declare_length:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if data:
                    self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def asked(self, path: str) -> list[Request]:
        """The requests for ``path`` (query string ignored), in order."""
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> FakeSite:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_site() -> Iterator[FakeSite]:
    with FakeSite() as site:
        yield site


def article_page(title: str, paragraphs: list[str], *, published: str, canonical: str = "") -> str:
    """An article page as news sites write them: navigation, the story, a related box."""
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | Test Times</title>{link}
<meta property="og:title" content="{title}">
<meta property="og:site_name" content="Test Times">
<meta property="article:published_time" content="{published}">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<main><article><h1>{title}</h1>
{body}
</article></main>
<aside><h3>Most read</h3><ul><li><a href="/x">Stocks rally on tech earnings</a></li>
<li><a href="/y">New metro line opens</a></li></ul></aside>
<footer><p>&copy; 2024 Test Times</p></footer>
</body></html>"""


def rss(items: list[dict[str, str]], *, title: str = "Test Times") -> str:
    entries = "\n".join(
        "<item>"
        + f"<title>{i['title']}</title><link>{i['link']}</link>"
        + (f"<description>{i['description']}</description>" if i.get("description") else "")
        + f"<pubDate>{i.get('date', 'Tue, 14 May 2024 09:00:00 GMT')}</pubDate></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://example.invalid/</link>"
        f"<description>News</description>{entries}</channel></rss>"
    )


def atom(items: list[dict[str, str]], *, title: str = "Test Times (Atom)") -> str:
    entries = "\n".join(
        f'<entry><title>{i["title"]}</title><link href="{i["link"]}"/>'
        f"<id>{i['link']}</id><updated>2024-05-14T09:00:00Z</updated>"
        + (f"<summary>{i['description']}</summary>" if i.get("description") else "")
        + "</entry>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:test</id><updated>2024-05-14T09:00:00Z</updated>"
        f"{entries}</feed>"
    )


def opml(urls: list[str]) -> str:
    outlines = "".join(f'<outline type="rss" text="feed" xmlUrl="{u}"/>' for u in urls)
    return (
        '<?xml version="1.0"?><opml version="2.0"><head><title>My feeds</title></head>'
        f"<body>{outlines}</body></opml>"
    )
