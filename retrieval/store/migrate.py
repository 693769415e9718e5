"""Copying a store to the other backend: FAISS files → PostgreSQL, or back.

The vectors and sentence vectors are copied as stored, never re-embedded, so a corpus of a
million passages moves in minutes, not hours. The copy replaces what the target held; it
is committed in batches (each atomic, as an ingest's) and checked at the end: every
article and passage of the source must be in the target.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from corpus.articles import Article
from corpus.errors import IndexStoreError

from ..chunking import Chunk
from ..sentences import SCALE
from .base import Manifest, NewContent, Store, StoreBackend

__all__ = ["CopyReport", "copy_store"]


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What :func:`copy_store` copied, as counted in the target afterwards."""

    articles: int
    passages: int
    commits: int
    manifest: Manifest


def copy_store(
    source: Store,
    target: StoreBackend,
    *,
    batch_articles: int = 500,
    lock_timeout: float = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Replace what ``target`` holds by everything in ``source``; verify the counts.

    ``progress(articles copied, articles in all)`` is called after each commit.
    """
    m = source.manifest
    total = m.article_count
    copied = commits = 0
    manifest: Manifest | None = None
    with target.writing(lock_timeout), target.bulk_load():
        base: Store | None = None
        try:
            for batch in _batches(source, batch_articles):
                manifest = target.commit(
                    batch,
                    base=base,
                    model=m.model,
                    dimension=m.dimension,
                    chunk_size=m.chunk_size,
                    chunk_overlap=m.chunk_overlap,
                )
                if base is not None:
                    base.close()
                base = target.open()
                copied, commits = copied + len(batch.articles), commits + 1
                if progress:
                    progress(copied, total)
        finally:
            if base is not None:
                base.close()
    if manifest is None:
        raise IndexStoreError("nothing to copy: the source holds no articles")
    _verify(source, target)
    return CopyReport(manifest.article_count, manifest.chunk_count, commits, manifest)


def _batches(source: Store, size: int) -> Iterator[NewContent]:
    """The source's articles with their passages and vectors, ``size`` articles at a time."""
    by_article: dict[str, list[tuple[int, Chunk]]] = {}
    for row, chunk in enumerate(source.all_chunks()):
        by_article.setdefault(chunk.article_id, []).append((row, chunk))
    articles: Iterator[Article] = source.articles()
    while batch := list(itertools.islice(articles, size)):
        rows = [(row, chunk) for a in batch for row, chunk in by_article.get(a.id, [])]
        sentences = [source.sentences.sentences(row) for row, _ in rows]
        stored = [source.sentences.vectors(row) for row, _ in rows]
        dimension = source.manifest.dimension
        yield NewContent(
            batch,
            [chunk for _, chunk in rows],
            source.vectors([row for row, _ in rows]),
            sentences,
            (
                np.concatenate(stored).astype(np.float32) / SCALE
                if stored
                else np.zeros((0, dimension), np.float32)
            ),
        )


def _verify(source: Store, target: StoreBackend) -> None:
    copy = target.open()
    try:
        want = (source.manifest.article_count, source.manifest.chunk_count, source.article_ids())
        got = (copy.manifest.article_count, copy.manifest.chunk_count, copy.article_ids())
        if want != got:
            raise IndexStoreError(
                f"the copy in {target.description} holds {got[0]} articles and {got[1]} "
                f"passages, the source {want[0]} and {want[1]}"
                + ("" if want[2] == got[2] else f"; {len(want[2] ^ got[2])} ids differ")
                + ": run the copy again"
            )
    finally:
        copy.close()
