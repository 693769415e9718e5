"""The ingest pipeline: load → clean → identify → chunk → embed → commit atomically."""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.articles import Article, content_fingerprint
from corpus.errors import ArticleError
from corpus.loaders import load_paths

from .chunking import chunk_article
from .embedding import Embedder
from .sentences import sentences_of
from .settings import RetrievalSettings
from .store import using_backend
from .store.base import Manifest, NewContent, Store, StoreBackend


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest did, for the summary the user sees."""

    added: int
    duplicates: int
    chunks: int
    rejected: tuple[ArticleError, ...]
    seconds: float
    manifest: Manifest | None
    commits: int = 0


def ingest(
    paths: Iterable[str | Path],
    settings: RetrievalSettings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float | None = None,
    backend: StoreBackend | None = None,
) -> IngestReport:
    """Add the articles under ``paths`` to the index; articles already there are skipped.

    Old articles are never re-embedded. New ones are committed every
    ``settings.ingest_batch_articles`` articles, each commit atomic: an ingest that is
    killed keeps every batch it committed, and running it again adds the rest. With
    ``rebuild`` the existing index (even a damaged one) is ignored and replaced by one
    holding only these articles; it stays live until the first batch is committed.
    ``lock_timeout`` (default ``settings.lock_timeout``) is how long to wait for another
    writer to finish. ``backend`` is the caller's open store backend (its pool reused);
    without one, the store of ``settings`` is opened for this ingest.
    """
    started = time.perf_counter()
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    with using_backend(settings, backend) as backend, backend.writing(timeout):
        base = None
        if backend.exists() and not rebuild:
            base = backend.open(model=embedder.name, dimension=embedder.dimension)
        seen = base.article_ids() if base else set()
        texts: set[str] = set()  # fingerprints of this run's articles
        manifest = base.manifest if base else None
        added = duplicates = chunks = commits = 0
        rejected: list[ArticleError] = []
        batch: list[Article] = []
        loaded = load_paths(
            paths,
            max_file_bytes=settings.max_file_bytes,
            max_article_chars=settings.max_article_chars,
        )
        try:
            for item in itertools.chain(loaded, [None]):  # None: the end, commit the rest
                if isinstance(item, ArticleError):
                    rejected.append(item)
                elif item is not None:
                    fingerprint = content_fingerprint(item.body)
                    if _already_stored(item.id, fingerprint, seen, texts, base):
                        duplicates += 1
                    else:
                        seen.add(item.id)
                        texts.add(fingerprint)
                        batch.append(item)
                if batch and (item is None or len(batch) >= settings.ingest_batch_articles):
                    manifest, new_chunks, base = _commit_and_reopen(
                        backend, batch, base, settings, embedder, progress
                    )
                    added, chunks, commits = added + len(batch), chunks + new_chunks, commits + 1
                    batch = []
        finally:
            if base is not None:
                base.close()
    return IngestReport(
        added=added,
        duplicates=duplicates,
        chunks=chunks,
        rejected=tuple(rejected),
        seconds=time.perf_counter() - started,
        manifest=manifest,
        commits=commits,
    )


def _already_stored(
    article_id: str, fingerprint: str, ids: set[str], texts: set[str], base: Store | None
) -> bool:
    """Stored under its id, or the same text under another address (or earlier this run)."""
    return (
        article_id in ids
        or fingerprint in texts
        or (base is not None and base.article_with_text(fingerprint) is not None)
    )


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What :func:`update_index` changed."""

    added: int
    removed: int
    chunks: int
    commits: int
    manifest: Manifest | None


def update_index(
    settings: RetrievalSettings,
    embedder: Embedder,
    *,
    add: Sequence[Article] = (),
    remove: Collection[str] = (),
    progress: bool = False,
    lock_timeout: float | None = None,
    backend: StoreBackend | None = None,
) -> UpdateReport:
    """Add ``add`` and remove the articles ``remove`` (ids) in atomic commits.

    An article of ``add`` whose id is already stored replaces it (a story whose text
    changed): each commit removes the old version of the articles it adds, so a reader
    sees one version or the other, never both or neither. The other removals (expiry) go
    with the first commit. Commits hold ``settings.ingest_batch_articles`` articles each.
    ``backend`` as for :func:`ingest`.
    """
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    with using_backend(settings, backend) as backend, backend.writing(timeout):
        base = None
        if backend.exists():
            base = backend.open(model=embedder.name, dimension=embedder.dimension)
        try:
            stored = base.article_ids() if base else set()
            pending = {i for i in remove if i in stored}
            removed = len(pending | {a.id for a in add if a.id in stored})
            manifest = base.manifest if base else None
            chunks = commits = 0
            size = max(settings.ingest_batch_articles, 1)
            batches = [list(add[i : i + size]) for i in range(0, len(add), size)] or [[]]
            for batch in batches:
                gone = pending | {a.id for a in batch if a.id in stored}
                if not batch and not gone:
                    break
                manifest, new_chunks, base = _commit_and_reopen(
                    backend, batch, base, settings, embedder, progress, remove=gone
                )
                chunks, commits, pending = chunks + new_chunks, commits + 1, set()
        finally:
            if base is not None:
                base.close()
    return UpdateReport(len(add), removed, chunks, commits, manifest)


def _commit_and_reopen(
    backend: StoreBackend,
    batch: list[Article],
    base: Store | None,
    settings: RetrievalSettings,
    embedder: Embedder,
    progress: bool,
    *,
    remove: Collection[str] = (),
) -> tuple[Manifest, int, Store]:
    """Commit ``batch`` (and ``remove``) on top of ``base``, let go of ``base`` (its
    generation can then be swept) and open the new generation for the next batch."""
    manifest, chunks = _commit_batch(
        backend, batch, base, settings, embedder, progress, remove=remove
    )
    if base is not None:
        base.close()  # closing twice, should the open below fail, is harmless
    return manifest, chunks, backend.open()


def _commit_batch(
    backend: StoreBackend,
    batch: list[Article],
    base: Store | None,
    settings: RetrievalSettings,
    embedder: Embedder,
    progress: bool,
    *,
    remove: Collection[str] = (),
) -> tuple[Manifest, int]:
    """Chunk, embed and commit ``batch`` on top of ``base`` minus the articles ``remove``;
    the manifest and chunk count.

    Each sentence is embedded on its own as well, for choosing the sentences that answer
    (``selection.py``); a sentence repeated in the overlap of two passages is embedded once.
    """
    chunks = [
        chunk
        for article in batch
        for chunk in chunk_article(
            article,
            max_size=min(settings.chunk_size, embedder.max_tokens),
            overlap=settings.chunk_overlap,
            measure=embedder.count_tokens,
        )
    ]
    vectors = (
        embedder.embed_documents([c.embedding_text for c in chunks], progress=progress)
        if chunks
        else np.zeros((0, embedder.dimension), np.float32)
    )
    sentences = [sentences_of(c.text) for c in chunks]
    texts = [c.text[s.start : s.end] for c, row in zip(chunks, sentences, strict=True) for s in row]
    position = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    sentence_vectors = (
        embedder.embed_documents(list(position), progress=progress)[[position[t] for t in texts]]
        if texts
        else np.zeros((0, embedder.dimension), np.float32)
    )
    manifest = backend.commit(
        NewContent(batch, chunks, vectors, sentences, sentence_vectors),
        base=base,
        model=embedder.name,
        dimension=embedder.dimension,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        remove=remove,
    )
    return manifest, len(chunks)
