"""The ``Article`` value and its stable identity (so re-ingesting an article is a no-op)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit


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


def clean_url(url: str) -> str:
    """``url`` without tracking parameters and fragment, for showing and linking to."""
    from courlan import normalize_url

    try:
        return normalize_url(url.strip(), strict=True)
    except ValueError:
        return url.strip()


def normalise_url(url: str) -> str:
    """Canonical form of an article URL: same page, same string.

    courlan (trafilatura's URL library) lower-cases scheme and host, drops default ports,
    the fragment and tracking parameters (utm_*, fbclid, gclid, …) and sorts the query; a
    trailing slash goes too, so ``https://Example.com/a/?utm_source=x#top`` equals
    ``https://example.com/a``. A string courlan cannot read is only trimmed.
    """
    parts = urlsplit(clean_url(url))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def article_id(*, url: str | None, title: str, body: str) -> str:
    """A stable id: from the canonical URL when there is one, else from the content."""
    if url and url.strip():
        key = "url:" + normalise_url(url)
    else:
        key = "text:" + " ".join(title.split()) + "\n" + " ".join(body.split())
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def content_fingerprint(body: str) -> str:
    """Same text, same fingerprint, whatever the spacing: one story reached through two
    addresses (two feeds, a syndicated copy) is stored once."""
    return hashlib.sha256(" ".join(body.split()).casefold().encode("utf-8")).hexdigest()[:32]
