"""The ``Article`` value and its stable identity (so re-ingesting an article is a no-op)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track where a reader came from; they do not change the page.
_TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref", "cmpid", "ocid")


@dataclass(frozen=True, slots=True)
class Article:
    """One news article, cleaned: ``body`` is the text that gets indexed."""

    id: str
    title: str
    body: str
    url: str | None = None
    source: str | None = None
    published: datetime | None = None
    language: str = "en"
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def published_date(self) -> str | None:
        """The publication date as YYYY-MM-DD, the form shown in citations."""
        return self.published.date().isoformat() if self.published else None


def normalise_url(url: str) -> str:
    """Canonical form of an article URL: same page, same string.

    Lower-cases scheme and host, drops the fragment, tracking parameters, default ports and
    a trailing slash, so ``https://Example.com/a/?utm_source=x#top`` equals ``https://example.com/a``.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and not (
        (scheme == "http" and parts.port == 80) or (scheme == "https" and parts.port == 443)
    ):
        host = f"{host}:{parts.port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(_TRACKING_PARAMS)
        ]
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit((scheme, host, path, query, ""))


def article_id(*, url: str | None, title: str, body: str) -> str:
    """A stable id: from the canonical URL when there is one, else from the content."""
    if url and url.strip():
        key = "url:" + normalise_url(url)
    else:
        key = "text:" + " ".join(title.split()) + "\n" + " ".join(body.split())
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
