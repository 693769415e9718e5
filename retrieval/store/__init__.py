"""Where articles, passages, vectors and BM25 statistics are kept: the storage seam.

Everything above this package (question reading, fusion, rerank, abstention, answers)
reads a :class:`Store` and writes through a :class:`StoreBackend`; it never touches FAISS or
SQL. Two backends: FAISS + files in one directory (the default, ``faiss_index.py``) and
PostgreSQL + pgvector (``postgres.py``) for a worker and several replicas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from corpus.lazy import lazy_exports

if TYPE_CHECKING:
    from ..settings import RetrievalSettings
    from .base import StoreBackend

_EXPORTS = {
    "FORMAT_VERSION": "retrieval.store.base",
    "MANIFEST_NAME": "retrieval.store.base",
    "Lexicon": "retrieval.store.base",
    "Manifest": "retrieval.store.base",
    "NewContent": "retrieval.store.base",
    "RowMetadata": "retrieval.store.base",
    "Sentences": "retrieval.store.base",
    "Store": "retrieval.store.base",
    "StoreBackend": "retrieval.store.base",
    "article_from_row": "retrieval.store.base",
    "chunk_from_row": "retrieval.store.base",
    "damaged": "retrieval.store.base",
    "publication_arrays": "retrieval.store.base",
    "FaissBackend": "retrieval.store.faiss_index",
    "FaissIndex": "retrieval.store.faiss_index",
    "commit": "retrieval.store.faiss_index",
    "index_exists": "retrieval.store.faiss_index",
    "locked": "retrieval.store.faiss_index",
    "sweep_unused": "retrieval.store.faiss_index",
    "PostgresBackend": "retrieval.store.postgres",
    "PostgresStore": "retrieval.store.postgres",
    "migrate": "retrieval.store.postgres",
    "PostgresLexicon": "retrieval.store.postgres",
    "advisory_lock": "retrieval.store.pg_schema",
    "apply_migrations": "retrieval.store.pg_schema",
    "describe": "retrieval.store.pg_schema",
    "schema_version": "retrieval.store.pg_schema",
    "EXACT_FILTERED_UP_TO": "retrieval.store.vectors",
    "VectorIndexConfig": "retrieval.store.vectors",
    "describe_index": "retrieval.store.vectors",
    "extend_index": "retrieval.store.vectors",
    "nearest": "retrieval.store.vectors",
    "stored_vectors": "retrieval.store.vectors",
    "CopyReport": "retrieval.store.migrate",
    "copy_store": "retrieval.store.migrate",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(
    __name__, {k: v for k, v in _EXPORTS.items() if k != "open_backend"}
)


def open_backend(settings: RetrievalSettings) -> StoreBackend:
    """The store the settings name: FAISS files in ``index_dir``, or PostgreSQL."""
    if settings.store == "postgres":
        from .postgres import PostgresBackend

        assert settings.database_url is not None  # the settings insist
        return PostgresBackend(
            settings.database_url.get_secret_value(),
            settings.replica_urls(),
            postings_bytes=settings.postgres_postings_mb * 1_000_000,
        )
    from .faiss_index import FaissBackend
    from .vectors import VectorIndexConfig

    return FaissBackend(settings.index_dir, VectorIndexConfig.from_settings(settings))


@contextlib.contextmanager
def using_backend(
    settings: RetrievalSettings, given: StoreBackend | None = None
) -> Iterator[StoreBackend]:
    """``given`` (left open: it is the caller's, with its pool), or the store of
    ``settings`` opened for the ``with`` block and closed after it."""
    if given is not None:
        yield given
        return
    with contextlib.closing(open_backend(settings)) as backend:
        yield backend
