"""One round of live news: fetch the sources, store what is new or changed, expire the old.

``newsbot refresh`` runs one round; ``newsbot serve`` runs one every
``NEWSBOT_REFRESH_MINUTES`` in a worker thread. A round fetches (``corpus/web.py``), then
sorts each article it found: **new** (its id and its text are not stored), **updated** (its
id is stored with other text: the new version replaces every passage of the old one in the
same commit), **unchanged**, or a **duplicate** (its text is stored under another address).
Articles older than ``NEWSBOT_KEEP_DAYS`` and the oldest beyond ``NEWSBOT_MAX_ARTICLES`` are
**expired** in the same commits. Only then are the sources' validators saved, so a crash at
any point leaves the index with everything of the last completed commit, and the next round
fetches again whatever was not stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from corpus.articles import content_fingerprint, normalise_url
from corpus.errors import ConfigurationError
from corpus.fetching import Fetcher, Validators
from corpus.web import SourceReport, WebArticle, WebRound, collect, is_url, url_list_file

from .embedding import Embedder
from .ingest import update_index
from .settings import RetrievalSettings
from .sources import SourceStore
from .store import using_backend
from .store.base import Manifest, Store, StoreBackend

__all__ = ["RefreshReport", "configured_sources", "refresh"]


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one round did; ``newsbot refresh`` prints it, ``--json`` as one object."""

    sources: tuple[SourceReport, ...]
    added: tuple[str, ...]  # titles
    updated: tuple[str, ...]
    unchanged: int
    duplicates: int
    too_old: int
    failed: tuple[tuple[str, str], ...]  # (url, reason)
    expired: int
    fetches: int
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: Manifest | None = None
    # Another process (a worker, another bot replica) was refreshing: this round did nothing.
    skipped: bool = False

    @property
    def found_anything(self) -> bool:
        """Whether any source gave an article (new or already known) or said "unchanged"."""
        return bool(
            self.added
            or self.updated
            or self.unchanged
            or self.duplicates
            or self.too_old
            or self.sources_unchanged
        )

    @property
    def sources_unchanged(self) -> int:
        """Sources that answered 304 Not Modified: nothing in them to look at again."""
        return sum(1 for s in self.sources if s.kind == "unchanged")

    def what_was_read(self) -> str:
        """Each source and what it gave or why not: for a round that read nothing."""
        return "; ".join(f"{s.url}: {s.error or 'no articles'}" for s in self.sources)

    def as_dict(self) -> dict:
        return {
            "skipped": self.skipped,
            "sources_unchanged": self.sources_unchanged,
            "added": list(self.added),
            "updated": list(self.updated),
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "too_old": self.too_old,
            "failed": [{"url": u, "reason": r} for u, r in self.failed],
            "expired": self.expired,
            "fetches": self.fetches,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "sources": [
                {
                    "url": s.url,
                    "kind": s.kind,
                    "articles": s.articles,
                    "unchanged": s.unchanged,
                    "failed": s.failed,
                    "error": s.error,
                }
                for s in self.sources
            ],
            "articles_in_index": self.manifest.article_count if self.manifest else None,
        }


def configured_sources(value: str) -> list[str]:
    """``NEWSBOT_FEEDS``: comma-separated URLs, or the path of a list or OPML file."""
    value = value.strip()
    if not value:
        return []
    if not is_url(value.split(",")[0]):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"NEWSBOT_FEEDS: {value!r} is neither a URL nor a file listing URLs"
            )
        urls = url_list_file(path)
        if not urls:
            raise ConfigurationError(
                f"NEWSBOT_FEEDS: {path} lists no URLs (one http(s) URL a line, or OPML)"
            )
        return urls
    urls = [u.strip() for u in value.split(",") if u.strip()]
    bad = [u for u in urls if not is_url(u)]
    if bad:
        raise ConfigurationError(f"NEWSBOT_FEEDS: not an http(s) URL: {bad[0]!r}")
    return urls


def refresh(
    sources: Sequence[str],
    settings: RetrievalSettings,
    embedder: Embedder,
    *,
    expire: bool = True,
    progress: Callable[[], None] | None = None,
    backend: StoreBackend | None = None,
) -> RefreshReport:
    """Run one round over ``sources`` (URLs). Blocking: call it from a worker thread.

    One process refreshes a store at a time (the store's "refresh" lease): when another one
    (a worker, another bot replica) is at it, this round is skipped, not queued.
    ``backend`` is the caller's open store backend; without one, the store of ``settings``
    is opened for the round.
    """
    with using_backend(settings, backend) as backend, backend.lease("refresh") as mine:
        if not mine:
            return RefreshReport(
                sources=(),
                added=(),
                updated=(),
                unchanged=0,
                duplicates=0,
                too_old=0,
                failed=(),
                expired=0,
                fetches=0,
                manifest=backend.manifest(),
                skipped=True,
            )
        return _round(sources, settings, embedder, backend, expire=expire, progress=progress)


def _round(
    sources: Sequence[str],
    settings: RetrievalSettings,
    embedder: Embedder,
    backend: StoreBackend,
    *,
    expire: bool,
    progress: Callable[[], None] | None,
) -> RefreshReport:
    started = time.perf_counter()
    store = SourceStore(settings.index_dir)
    known = store.validators()
    round_ = asyncio.run(_collect(sources, settings, known, progress))
    fetched = time.perf_counter()

    base = backend.open() if backend.exists() else None
    try:
        sorted_ = _sort(round_.articles, base, settings if expire else None)
        expired = _expired(base, settings, len(sorted_.new)) if expire and base else set()
    finally:
        if base is not None:
            base.close()
    # Each article remembers the source it came through, for per-source counts (stats).
    to_store = [
        replace(w.article, extra={**w.article.extra, "feed": w.source})
        for w in sorted_.new + sorted_.updated
    ]
    if to_store or expired:
        update = update_index(settings, embedder, add=to_store, remove=expired, backend=backend)
        manifest = update.manifest
    else:
        manifest = backend.manifest()
    stored = time.perf_counter()

    report = RefreshReport(
        sources=tuple(round_.sources),
        added=tuple(w.article.title for w in sorted_.new),
        updated=tuple(w.article.title for w in sorted_.updated),
        unchanged=len(sorted_.unchanged) + sum(s.unchanged for s in round_.sources),
        duplicates=len(sorted_.duplicates) + round_.repeated_links,
        too_old=sorted_.too_old,
        failed=tuple((f.url, f.reason) for f in round_.failures),
        expired=len(expired),
        fetches=round_.fetches,
        seconds={
            "fetch": fetched - started - round_.extract_seconds,
            "extract": round_.extract_seconds,
            "index": stored - fetched,
            "total": time.perf_counter() - started,
        },
        manifest=manifest,
    )
    # The validators now hold: for what is stored (or was already), and the feeds.
    validators = dict(round_.validators)
    for w in sorted_.new + sorted_.updated + sorted_.unchanged + sorted_.duplicates:
        validators[normalise_url(w.url)] = w.validators
    store.record_round(
        validators=validators,
        sources=[(s.url, s.kind, s.error) for s in round_.sources],
        counts={
            "added": len(report.added),
            "updated": len(report.updated),
            "unchanged": report.unchanged,
            "failed": len(report.failed),
            "expired": report.expired,
        },
    )
    return report


async def _collect(
    sources: Sequence[str],
    settings: RetrievalSettings,
    known: dict[str, Validators],
    progress: Callable[[], None] | None,
) -> WebRound:
    async with Fetcher(settings.fetch_policy()) as fetcher:
        return await collect(
            sources,
            fetcher,
            known.get,
            max_article_chars=settings.max_article_chars,
            on_fetched=progress,
        )


@dataclass(slots=True)
class _Sorted:
    new: list[WebArticle] = field(default_factory=list)
    updated: list[WebArticle] = field(default_factory=list)
    unchanged: list[WebArticle] = field(default_factory=list)
    duplicates: list[WebArticle] = field(default_factory=list)
    too_old: int = 0


def _sort(
    found: Sequence[WebArticle], base: Store | None, retention: RetrievalSettings | None
) -> _Sorted:
    result = _Sorted()
    cutoff = _cutoff(retention)
    texts: dict[str, str] = {}  # fingerprint -> id, this round
    for item in found:
        article = item.article
        fingerprint = content_fingerprint(article.body)
        stored = base.article(article.id) if base else None
        if stored is not None:
            same = content_fingerprint(stored.body) == fingerprint and stored.title == article.title
            (result.unchanged if same else result.updated).append(item)
        elif fingerprint in texts or (base is not None and base.article_with_text(fingerprint)):
            result.duplicates.append(item)
            continue
        elif cutoff and article.published and article.published < cutoff:
            result.too_old += 1
        else:
            result.new.append(item)
        texts[fingerprint] = article.id
    return result


def _cutoff(settings: RetrievalSettings | None) -> datetime | None:
    if settings is None or settings.keep_days is None:
        return None
    return datetime.now(UTC) - timedelta(days=settings.keep_days)


def _expired(base: Store, settings: RetrievalSettings, arriving: int) -> set[str]:
    """Ids past ``NEWSBOT_KEEP_DAYS``, then the oldest beyond ``NEWSBOT_MAX_ARTICLES``."""
    cutoff = _cutoff(settings)
    dated = []
    for id_, published, ingested in base.article_ages():
        when = datetime.fromisoformat(published or ingested)
        dated.append((when if when.tzinfo else when.replace(tzinfo=UTC), id_))
    expired = {id_ for when, id_ in dated if cutoff and when < cutoff}
    if settings.max_articles is not None:
        remaining = sorted((w, i) for w, i in dated if i not in expired)
        excess = len(remaining) + arriving - settings.max_articles
        expired |= {id_ for _, id_ in remaining[: max(excess, 0)]}
    return expired
