"""The ingest pipeline: load → clean → identify → chunk → embed → commit atomically."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from corpus.articles import Article
from corpus.errors import ArticleError
from corpus.loaders import load_paths

from .chunking import chunk_article
from .embedding import Embedder
from .index import FaissIndex, Manifest, NewContent, commit, index_exists, locked
from .settings import RetrievalSettings


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest did, for the summary the user sees."""

    added: int
    duplicates: int
    chunks: int
    rejected: tuple[ArticleError, ...]
    seconds: float
    manifest: Manifest | None


def ingest(
    paths: Iterable[str | Path],
    settings: RetrievalSettings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float = 0,
) -> IngestReport:
    """Add the articles under ``paths`` to the index; articles already there are skipped.

    Old articles are never re-embedded. With ``rebuild`` the existing index (even a damaged
    one) is ignored and replaced by one holding only these articles, still atomically.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    with locked(index_dir, lock_timeout):
        base = None
        if index_exists(index_dir) and not rebuild:
            base = FaissIndex.open(index_dir, model=embedder.name, dimension=embedder.dimension)
        known = base.article_ids() if base else set()
        try:
            articles, duplicates, rejected = _new_articles(load_paths(paths), known)
            chunks = [
                chunk
                for article in articles
                for chunk in chunk_article(
                    article, max_words=settings.chunk_size, overlap_words=settings.chunk_overlap
                )
            ]
            manifest = base.manifest if base else None
            if articles:
                vectors = embedder.embed_documents(
                    [c.embedding_text for c in chunks], progress=progress
                )
                manifest = commit(
                    index_dir,
                    NewContent(articles, chunks, vectors),
                    base=base,
                    model=embedder.name,
                    dimension=embedder.dimension,
                    chunk_size=settings.chunk_size,
                    chunk_overlap=settings.chunk_overlap,
                )
        finally:
            if base is not None:
                base.close()
    return IngestReport(
        added=len(articles),
        duplicates=duplicates,
        chunks=len(chunks),
        rejected=tuple(rejected),
        seconds=time.perf_counter() - started,
        manifest=manifest,
    )


def _new_articles(
    loaded: Iterable[Article | ArticleError], known: set[str]
) -> tuple[list[Article], int, list[ArticleError]]:
    articles: list[Article] = []
    rejected: list[ArticleError] = []
    seen = set(known)
    duplicates = 0
    for item in loaded:
        if isinstance(item, ArticleError):
            rejected.append(item)
        elif item.id in seen:
            duplicates += 1
        else:
            seen.add(item.id)
            articles.append(item)
    return articles, duplicates, rejected
