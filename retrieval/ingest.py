"""The ingest pipeline: load → clean → identify → chunk → embed → commit atomically."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.articles import Article
from corpus.errors import ArticleError
from corpus.loaders import load_paths

from .chunking import chunk_article
from .embedding import Embedder
from .index import FaissIndex, Manifest, NewContent, commit, index_exists, locked
from .sentences import sentences_of
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
    commits: int = 0


def ingest(
    paths: Iterable[str | Path],
    settings: RetrievalSettings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float | None = None,
) -> IngestReport:
    """Add the articles under ``paths`` to the index; articles already there are skipped.

    Old articles are never re-embedded. New ones are committed every
    ``settings.ingest_batch_articles`` articles, each commit atomic: an ingest that is
    killed keeps every batch it committed, and running it again adds the rest. With
    ``rebuild`` the existing index (even a damaged one) is ignored and replaced by one
    holding only these articles; it stays live until the first batch is committed.
    ``lock_timeout`` (default ``settings.lock_timeout``) is how long to wait for another
    writer to finish.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    with locked(index_dir, timeout):
        base = None
        if index_exists(index_dir) and not rebuild:
            base = FaissIndex.open(index_dir, model=embedder.name, dimension=embedder.dimension)
        seen = base.article_ids() if base else set()
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
                elif item is not None and item.id in seen:
                    duplicates += 1
                elif item is not None:
                    seen.add(item.id)
                    batch.append(item)
                if batch and (item is None or len(batch) >= settings.ingest_batch_articles):
                    manifest, new_chunks = _commit_batch(batch, base, settings, embedder, progress)
                    added, chunks, commits = added + len(batch), chunks + new_chunks, commits + 1
                    batch = []
                    if base is not None:
                        base.close()
                    base = None  # closed; the next line reopens the new generation
                    base = FaissIndex.open(index_dir)
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


def _commit_batch(
    batch: list[Article],
    base: FaissIndex | None,
    settings: RetrievalSettings,
    embedder: Embedder,
    progress: bool,
) -> tuple[Manifest, int]:
    """Chunk, embed and commit ``batch`` on top of ``base``; the manifest and chunk count.

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
    vectors = embedder.embed_documents([c.embedding_text for c in chunks], progress=progress)
    sentences = [sentences_of(c.text) for c in chunks]
    texts = [c.text[s.start : s.end] for c, row in zip(chunks, sentences, strict=True) for s in row]
    position = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    sentence_vectors = (
        embedder.embed_documents(list(position), progress=progress)[[position[t] for t in texts]]
        if texts
        else np.zeros((0, embedder.dimension), np.float32)
    )
    manifest = commit(
        settings.index_dir,
        NewContent(batch, chunks, vectors, sentences, sentence_vectors),
        base=base,
        model=embedder.name,
        dimension=embedder.dimension,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        vector_config=settings.vector_index_config(),
    )
    return manifest, len(chunks)
