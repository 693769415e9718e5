"""The on-disk index: FAISS vectors plus SQLite metadata, committed atomically by a manifest.

Layout of an index directory::

    manifest.json        the commit point: names the live generation and describes it
    gen-000003/          one complete, immutable generation
        vectors.faiss    FAISS index; row i is chunk i
        lexical/         BM25 index (bm25s); document i is chunk i
        sentences/       each chunk's sentences, their terms and vectors (see sentences.py)
        rows.npz         per-row outlet, month, day and article, for boosts and caps
        store.sqlite     articles (cleaned text and metadata), chunks (offsets, row ids)
                         and each article's content fingerprint
        .readers         shared-locked by every process that has this generation open
    .write.lock          held by the one process that may write
    sources.sqlite       what the web sources said last (see sources.py)

A write builds the next generation in a temporary directory, renames it into place and only
then replaces ``manifest.json`` (write, fsync, ``os.replace``). Until that last step readers
and a crashed writer both see the previous generation, whole. An older generation is removed
as soon as no reader holds it; leftovers of a crashed write by the next successful one.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import sqlite3
import threading
import weakref
import zipfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
from filelock import FileLock, Timeout

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from corpus.articles import Article, content_fingerprint
from corpus.errors import IndexStoreError

from ..chunking import Chunk
from ..durable import publish_directory
from ..lexical import LexicalIndex
from ..sentences import SentenceIndex
from .base import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    NewContent,
    RowMetadata,
    Store,
    article_from_row,
    chunk_from_row,
    damaged,
    publication_arrays,
)
from .vectors import VectorIndexConfig, extend_index, nearest, stored_vectors

__all__ = [
    "FaissBackend",
    "FaissIndex",
    "Manifest",
    "NewContent",
    "commit",
    "index_exists",
    "locked",
    "sweep_unused",
]

VECTORS_NAME = "vectors.faiss"
STORE_NAME = "store.sqlite"
LEXICAL_NAME = "lexical"
SENTENCES_NAME = "sentences"
ROWS_NAME = "rows.npz"
LOCK_NAME = ".write.lock"
READERS_NAME = ".readers"
_GENERATION = re.compile(r"gen-\d{6}")

_SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    url TEXT,
    source TEXT,
    published TEXT,
    language TEXT NOT NULL,
    extra TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id),
    position INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX chunks_by_article ON chunks(article_id);
"""
# Added after format 3 shipped: created (and the fingerprints filled for older articles) by
# the next commit.
_FINGERPRINTS = """
CREATE TABLE IF NOT EXISTS fingerprints (
    article_id TEXT PRIMARY KEY REFERENCES articles(id),
    fingerprint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_by_value ON fingerprints(fingerprint);
-- What a running bot asks every minute: which articles were stored since it last looked.
CREATE INDEX IF NOT EXISTS articles_by_ingest ON articles(ingested_at);
"""


def index_exists(index_dir: Path) -> bool:
    """True when ``index_dir`` has a committed index (possibly a damaged one)."""
    return (index_dir / MANIFEST_NAME).exists()


class FaissIndex:
    """A read-only view of one committed generation: vectors, chunks and articles."""

    def __init__(
        self,
        index_dir: Path,
        manifest: Manifest,
        vectors: faiss.Index,
        lexical: LexicalIndex,
        db: Path,
    ) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.lexical = lexical
        self._vectors = vectors
        self._db_path = db
        self._db = sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
        self._db_lock = threading.Lock()
        self._row_metadata: RowMetadata | None = None
        self._sources: tuple[str, ...] | None = None
        self._sentences: SentenceIndex | None = None
        self._sentences_lock = threading.Lock()
        self._reader: _ReaderLock | None = None

    @classmethod
    def open(
        cls, index_dir: Path, *, model: str | None = None, dimension: int | None = None
    ) -> FaissIndex:
        """Open the live generation; with ``model``/``dimension``, insist the index matches."""
        index_dir = Path(index_dir)
        for _ in range(3):  # a sweep may remove the generation the manifest named a moment ago
            manifest = Manifest.read(index_dir)
            manifest.check_model(index_dir, model, dimension)
            generation = index_dir / manifest.generation
            reader = _ReaderLock.hold(generation)
            if (generation / VECTORS_NAME).is_file() or reader is None:
                break
            reader.release()
        vectors_path, db_path = generation / VECTORS_NAME, generation / STORE_NAME
        for path in (vectors_path, db_path):
            if not path.is_file():
                raise damaged(index_dir, f"{path.relative_to(index_dir)} is missing")
        try:
            vectors = faiss.read_index(str(vectors_path))
        except RuntimeError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise damaged(index_dir, f"{VECTORS_NAME} cannot be read ({first_line})") from None
        lexical = _open_lexical(index_dir, generation / LEXICAL_NAME, manifest.chunk_count)
        index = cls(index_dir, manifest, vectors, lexical, db_path)
        index._reader = reader
        index._check_consistent()
        if (generation / ROWS_NAME).exists():
            index.row_metadata()  # small: read now, so damage shows when opening
        return index

    def _check_consistent(self) -> None:
        try:
            chunks, chunked_articles = self._aggregate(
                "SELECT COUNT(*), COUNT(DISTINCT article_id) FROM chunks"
            )
            (stored_articles,) = self._aggregate("SELECT COUNT(*) FROM articles")
        except sqlite3.DatabaseError as exc:
            raise damaged(self.index_dir, f"{STORE_NAME} cannot be read ({exc})") from None
        m = self.manifest
        if self._vectors.d != m.dimension:
            raise damaged(
                self.index_dir,
                f"vectors have dimension {self._vectors.d}, manifest says {m.dimension}",
            )
        if not (self._vectors.ntotal == chunks == m.chunk_count) or not (
            stored_articles == chunked_articles == m.article_count
        ):
            raise damaged(
                self.index_dir,
                f"{self._vectors.ntotal} vectors, {chunks} chunks and {stored_articles} "
                f"articles ({chunked_articles} with chunks) stored, but the manifest says "
                f"{m.chunk_count} chunks and {m.article_count} articles",
            )

    # -- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> str:
        return self.manifest.generation

    def __len__(self) -> int:
        return int(self._vectors.ntotal)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` rows nearest to ``query`` (a unit vector), best first, as (row, score)."""
        rows, scores = self.nearest(query, k)
        return list(zip(rows.tolist(), scores.tolist(), strict=True))

    def nearest(
        self, query: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` as arrays of rows and of scores, for the search's own arithmetic;
        only rows in ``among`` (ascending) if given."""
        if len(self) == 0 or k <= 0 or (among is not None and len(among) == 0):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, rows = nearest(self._vectors, query, min(k, len(self)), among)
        found = rows >= 0  # an approximate index may find fewer than k; FAISS pads with -1
        return rows[found], scores[found]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``rows`` (for re-scoring without re-embedding)."""
        return stored_vectors(self._vectors, rows)

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """The chunks stored at ``rows``, in that order."""
        if not rows:
            return []
        placeholders = ",".join("?" * len(rows))
        found = {
            row: chunk_from_row(rest)
            for row, *rest in self._query(
                'SELECT c.row, c.article_id, c.position, c.start, c."end", '
                # Only the passage, not the whole article (substr counts characters).
                'substr(a.body, c.start + 1, c."end" - c.start), a.title, '
                "a.source, a.url, a.published "
                "FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.row IN ({placeholders})",
                [int(r) for r in rows],
            )
        }
        return [found[int(r)] for r in rows]

    def all_chunks(self) -> Iterator[Chunk]:
        """Every chunk in row order, streamed (the index may not fit a parameter list)."""
        for _, *rest in self._query(
            'SELECT c.row, c.article_id, c.position, c.start, c."end", '
            # Only the passage, not the whole article (substr counts characters).
            'substr(a.body, c.start + 1, c."end" - c.start), a.title, '
            "a.source, a.url, a.published "
            "FROM chunks c JOIN articles a ON a.id = c.article_id ORDER BY c.row"
        ):
            yield chunk_from_row(rest)

    @property
    def sentences(self) -> SentenceIndex:
        """The chunks' sentences, their terms and vectors."""
        with self._sentences_lock:
            if self._sentences is None:
                directory = self.index_dir / self.generation / SENTENCES_NAME
                try:
                    sentences = SentenceIndex.load(directory)
                except (OSError, ValueError) as exc:
                    raise damaged(
                        self.index_dir, f"{SENTENCES_NAME}/ cannot be read ({exc})"
                    ) from None
                if len(sentences) != len(self):
                    raise damaged(
                        self.index_dir,
                        f"{SENTENCES_NAME}/ covers {len(sentences)} passages, "
                        f"the manifest says {len(self)}",
                    )
                self._sentences = sentences
            return self._sentences

    def sources(self) -> tuple[str, ...]:
        """The distinct outlets in the index, sorted (for recognising them in questions)."""
        if self._sources is None:
            rows = self._query(
                "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source"
            )
            self._sources = tuple(r[0] for r in rows)
        return self._sources

    def row_metadata(self) -> RowMetadata:
        """Per-row outlet and publication time, as arrays for vectorised boosts and filters.

        Stored by the commit; read from SQLite for an index that predates that (at a
        million passages that query takes seconds, the file a few milliseconds).
        """
        if self._row_metadata is None:
            path = self.index_dir / self.generation / ROWS_NAME
            if path.is_file():
                try:
                    meta = RowMetadata.load(path)
                except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                    raise damaged(self.index_dir, f"{ROWS_NAME} cannot be read ({exc})") from None
                if meta is not None and len(meta) != len(self):
                    raise damaged(
                        self.index_dir,
                        f"{ROWS_NAME} covers {len(meta)} passages, the manifest says {len(self)}",
                    )
                if meta is not None:
                    self._row_metadata = meta
                    return meta
            rows = self._query(
                "SELECT a.source, a.published, a.rowid FROM chunks c "
                "JOIN articles a ON a.id = c.article_id ORDER BY c.row"
            )
            outlets = self.sources()
            code = {name: i for i, name in enumerate(outlets)}
            at, days = publication_arrays(
                [datetime.fromisoformat(r[1]) if r[1] else None for r in rows]
            )
            self._row_metadata = RowMetadata(
                outlets,
                np.array([code.get(r[0], -1) for r in rows], dtype=np.int32),
                at,
                days,
                np.array([r[2] for r in rows], dtype=np.int64),
            )
        return self._row_metadata

    def has_article(self, article_id: str) -> bool:
        return self._query_one("SELECT 1 FROM articles WHERE id = ?", [article_id]) is not None

    def article_ids(self) -> set[str]:
        return {row[0] for row in self._query("SELECT id FROM articles")}

    def articles(self) -> Iterator[Article]:
        """Every stored article in ingest order, as it was indexed."""
        for row in self._query(
            "SELECT id, title, body, url, source, published, language, extra "
            "FROM articles ORDER BY rowid"
        ):
            yield article_from_row(row)

    def article(self, article_id: str) -> Article | None:
        row = self._query_one(
            "SELECT id, title, body, url, source, published, language, extra "
            "FROM articles WHERE id = ?",
            [article_id],
        )
        return article_from_row(row) if row else None

    def article_with_text(self, fingerprint: str) -> str | None:
        """The id of a stored article with this :func:`content_fingerprint`, if any."""
        try:
            row = self._query_one(
                "SELECT article_id FROM fingerprints WHERE fingerprint = ?", [fingerprint]
            )
        except sqlite3.OperationalError:  # an index older than the table: filled next commit
            return None
        return row[0] if row else None

    def articles_per_feed(self) -> dict[str, int]:
        """How many stored articles came from each web source (``extra["feed"]``)."""
        return {
            feed: count
            for feed, count in self._query(
                "SELECT json_extract(extra, '$.feed') AS feed, COUNT(*) FROM articles "
                "WHERE feed IS NOT NULL GROUP BY feed"
            )
        }

    def article_ages(self) -> list[tuple[str, str | None, str]]:
        """Every article's id, publication and ingest time (ISO), oldest ingest first."""
        return [
            (id_, published, ingested)
            for id_, published, ingested in self._query(
                "SELECT id, published, ingested_at FROM articles ORDER BY rowid"
            )
        ]

    def ingested_since(self, moment: str | None) -> tuple[list[str], str | None]:
        """Ids of the articles stored (added or replaced) at or after ``moment`` (an ingest
        time as this index writes them; None: none), and the newest ingest time."""
        (newest,) = self._aggregate("SELECT MAX(ingested_at) FROM articles")
        if moment is None:
            return [], newest
        ids = self._query(
            "SELECT id FROM articles WHERE ingested_at >= ? ORDER BY ingested_at, rowid", [moment]
        )
        return [i for (i,) in ids], newest

    def newest(self, limit: int, since: datetime | None = None) -> list[Article]:
        """The ``limit`` most recently published articles (since ``since``), newest first."""
        where, params = "WHERE published IS NOT NULL", []
        if since is not None:
            where += " AND julianday(published) >= julianday(?)"
            params.append(since.isoformat())
        rows = self._query(
            "SELECT id, title, body, url, source, published, language, extra FROM articles "
            f"{where} ORDER BY julianday(published) DESC, rowid DESC LIMIT ?",
            [*params, limit],
        )
        return [article_from_row(row) for row in rows]

    def rows_of(self, article_ids: Iterable[str]) -> np.ndarray:
        """The rows of every passage of ``article_ids``, ascending."""
        wanted = sorted(set(article_ids))
        rows: list[int] = []
        for start in range(0, len(wanted), 500):  # SQLite's parameter limit
            part = wanted[start : start + 500]
            rows.extend(
                r
                for (r,) in self._query(
                    f"SELECT row FROM chunks WHERE article_id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return np.array(sorted(rows), np.int64)

    def date_range(self) -> tuple[str | None, str | None]:
        oldest, newest = self._aggregate("SELECT MIN(published), MAX(published) FROM articles")
        return (oldest[:10] if oldest else None, newest[:10] if newest else None)

    def size_on_disk(self) -> int:
        generation = self.index_dir / self.manifest.generation
        return sum(p.stat().st_size for p in generation.rglob("*") if p.is_file())

    def close(self) -> None:
        """Close the files, let go of the generation, and sweep generations no one reads."""
        with self._db_lock:
            self._db.close()
        if self._reader is not None:
            self._reader.release()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, params).fetchall()

    def _query_one(self, sql: str, params: Sequence[object] = ()) -> tuple | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _aggregate(self, sql: str) -> tuple:
        """The one row an aggregate query (COUNT, MIN, …) always returns."""
        row = self._query_one(sql)
        assert row is not None, "an aggregate query returns one row"
        return row


# -- writing -----------------------------------------------------------------------------


class FaissBackend:
    """The embedded store: FAISS + files in one directory (``index_dir``)."""

    kind = "faiss"

    def __init__(self, index_dir: Path, vector_config: VectorIndexConfig | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.description = str(self.index_dir)
        self.vector_config = vector_config

    def exists(self) -> bool:
        return index_exists(self.index_dir)

    def open(self, *, model: str | None = None, dimension: int | None = None) -> FaissIndex:
        return FaissIndex.open(self.index_dir, model=model, dimension=dimension)

    def manifest(self) -> Manifest | None:
        return Manifest.read(self.index_dir) if self.exists() else None

    def signature(self) -> tuple[int, int, int] | None:
        """The manifest file's identity: ``commit`` replaces it, so any commit changes it."""
        try:
            stat = (self.index_dir / MANIFEST_NAME).stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def writing(self, timeout: float = 0) -> contextlib.AbstractContextManager[None]:
        return locked(self.index_dir, timeout)

    def bulk_load(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to defer: each commit builds its vector index in one go already."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[bool]:
        """A lock file ``.NAME.lease`` in the index directory, taken without waiting."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.index_dir / f".{name}.lease"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def commit(
        self,
        new: NewContent,
        *,
        base: Store | None,
        model: str,
        dimension: int,
        chunk_size: int,
        chunk_overlap: int,
        remove: Collection[str] = (),
    ) -> Manifest:
        if base is not None and not isinstance(base, FaissIndex):
            raise TypeError(f"a FAISS index builds on a FaissIndex, not {type(base).__name__}")
        return commit(
            self.index_dir,
            new,
            base=base,
            model=model,
            dimension=dimension,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            vector_config=self.vector_config,
            remove=remove,
        )

    def close(self) -> None:
        """Nothing held: each opened generation is closed by its reader."""


def write_lock(index_dir: Path, timeout: float = 0) -> FileLock:
    """The lock every writer holds; a second writer waits ``timeout`` seconds, then fails."""
    index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(index_dir / LOCK_NAME), timeout=timeout)


@contextlib.contextmanager
def locked(index_dir: Path, timeout: float = 0) -> Iterator[None]:
    """Hold the write lock for the block; wait up to ``timeout`` seconds for another writer.

    The lock is the kernel's (``flock``), so a writer that is killed releases it at once.
    """
    lock = write_lock(index_dir, timeout)
    try:
        lock.acquire()
    except Timeout:
        waited = f" (waited {timeout:g} s)" if timeout else ""
        raise IndexStoreError(
            f"another newsbot process is writing to {index_dir}{waited}; try again when it "
            "has finished, or set NEWSBOT_LOCK_TIMEOUT to the seconds to wait for it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def commit(
    index_dir: Path,
    new: NewContent,
    *,
    base: FaissIndex | None,
    model: str,
    dimension: int,
    chunk_size: int,
    chunk_overlap: int,
    vector_config: VectorIndexConfig | None = None,
    remove: Collection[str] = (),
) -> Manifest:
    """Write ``base`` minus the articles ``remove`` plus ``new`` as the next generation and
    make it live atomically.

    The caller holds :func:`locked`. ``base`` is the live generation (``None`` for a fresh
    index); it is copied, never modified, so readers of it are undisturbed. An article that
    changed is replaced by naming its id in ``remove`` and passing its new version in ``new``:
    both happen in the one commit. ``vector_config`` says when the vectors go from exact to
    approximate search (see ``vectors.py``); a commit that crosses it rebuilds them.
    """
    if not len(new.chunks) == len(new.vectors) == len(new.sentences):
        raise ValueError("one vector and one sentence list per chunk are required")
    removed = set(remove) if base else set()
    dropped_rows = base.rows_of(removed) if base and removed else np.zeros(0, np.int64)
    kept_rows = (
        np.setdiff1d(np.arange(base.manifest.chunk_count), dropped_rows)
        if base and len(dropped_rows)
        else None
    )
    index_dir.mkdir(parents=True, exist_ok=True)
    _sweep(index_dir, keep={base.generation} if base else set())
    name = _next_generation(index_dir)
    staging = index_dir / f"{name}.tmp-{os.getpid()}"
    staging.mkdir()

    db_path = staging / STORE_NAME
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        if base is not None:
            with contextlib.closing(
                sqlite3.connect(f"file:{base._db_path}?mode=ro", uri=True)
            ) as src:
                src.backup(db)
        else:
            db.executescript(_SCHEMA)
        first_row = base.manifest.chunk_count if base else 0
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with db:
            _fill_fingerprints(db)
        if removed:
            with db:
                _delete_articles(db, removed)
            first_row -= len(dropped_rows)
        with db:
            db.executemany(
                "INSERT INTO fingerprints VALUES (?, ?)",
                [(a.id, content_fingerprint(a.body)) for a in new.articles],
            )
            db.executemany(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_article_to_row(a, now) for a in new.articles],
            )
            db.executemany(
                'INSERT INTO chunks (row, article_id, position, start, "end") '
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (first_row + i, c.article_id, c.position, c.start, c.end)
                    for i, c in enumerate(new.chunks)
                ],
            )
        ids = [row[0] for row in db.execute("SELECT id FROM articles ORDER BY id")]
        (newest,) = db.execute("SELECT MAX(published) FROM articles").fetchone()
        new_ids = {a.id for a in new.articles}
        article_codes = {
            id_: rowid
            for id_, rowid in db.execute("SELECT id, rowid FROM articles")
            if id_ in new_ids
        }

    old_rows = base.row_metadata() if base else RowMetadata.empty()
    old_sentences = base.sentences if base else SentenceIndex.empty(dimension)
    if base and kept_rows is not None:
        old_rows, old_sentences = old_rows.selected(kept_rows), old_sentences.selected(kept_rows)
    old_rows.extended(new.articles, new.chunks, article_codes).save(staging / ROWS_NAME)

    # BM25 statistics (document frequencies, lengths) change with every article, so the
    # lexical index is rebuilt over all passages; only the vectors are reused.
    old_chunks = (c for c in base.all_chunks() if c.article_id not in removed) if base else iter(())
    LexicalIndex.build(c.lexical_text for c in itertools.chain(old_chunks, new.chunks)).save(
        staging / LEXICAL_NAME
    )
    # Sentences, unlike BM25 statistics, do not depend on other passages: append them.
    old_sentences.extended(new.sentences, new.sentence_vectors).save(staging / SENTENCES_NAME)

    config = vector_config or VectorIndexConfig()
    old_vectors: faiss.Index
    if base is None:
        old_vectors = faiss.IndexFlatIP(dimension)
    elif kept_rows is None:
        old_vectors = faiss.read_index(str(base.index_dir / base.generation / VECTORS_NAME))
    else:  # rows renumber when passages go: rebuild from the stored vectors of the rest
        old_vectors = extend_index(
            faiss.IndexFlatIP(dimension), base.vectors(kept_rows.tolist()), config
        )
    vectors = extend_index(old_vectors, new.vectors, config)
    faiss.write_index(vectors, str(staging / VECTORS_NAME))
    publish_directory(staging, index_dir / name)

    manifest = Manifest(
        format_version=FORMAT_VERSION,
        generation=name,
        model=model,
        dimension=dimension,
        article_count=len(ids),
        chunk_count=int(vectors.ntotal),
        corpus_fingerprint=hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        newest_published=newest[:10] if newest else None,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest.write(index_dir)
    # The previous generation goes as soon as no reader holds it (the writer's own ``base``
    # among them: it is swept when that is closed). Where readers cannot be seen (no
    # ``fcntl``), it stays one more commit, for readers that still have it open.
    _sweep(index_dir, keep={name} | ({base.generation} if base and fcntl is None else set()))
    return manifest


def _fill_fingerprints(db: sqlite3.Connection) -> None:
    """Create the fingerprints table if this index predates it, and fill it."""
    db.executescript(_FINGERPRINTS)
    missing = db.execute(
        "SELECT id, body FROM articles WHERE id NOT IN (SELECT article_id FROM fingerprints)"
    )
    db.executemany(
        "INSERT INTO fingerprints VALUES (?, ?)",
        ((id_, content_fingerprint(body)) for id_, body in missing.fetchall()),
    )


def _delete_articles(db: sqlite3.Connection, article_ids: set[str]) -> None:
    """Delete articles and their chunks, and renumber the remaining chunks' rows from 0."""
    db.execute("CREATE TEMP TABLE gone (id TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO gone VALUES (?)", [(i,) for i in article_ids])
    db.execute("DELETE FROM fingerprints WHERE article_id IN (SELECT id FROM gone)")
    db.execute("DELETE FROM chunks WHERE article_id IN (SELECT id FROM gone)")
    db.execute("DELETE FROM articles WHERE id IN (SELECT id FROM gone)")
    db.execute("CREATE TEMP TABLE renumber (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    db.execute("INSERT INTO renumber SELECT row, ROW_NUMBER() OVER (ORDER BY row) - 1 FROM chunks")
    # Through negative numbers, so that no row number is ever held twice (it is the key).
    db.execute("UPDATE chunks SET row = -1 - (SELECT new FROM renumber WHERE old = chunks.row)")
    db.execute("UPDATE chunks SET row = -1 - row")
    db.execute("DROP TABLE gone")
    db.execute("DROP TABLE renumber")


def _next_generation(index_dir: Path) -> str:
    numbers = [int(p.name[4:10]) for p in index_dir.glob("gen-*") if p.name[4:10].isdigit()]
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _sweep(index_dir: Path, keep: set[str]) -> None:
    """Remove generations other than ``keep`` and the manifest's that no reader holds, and
    crashed leftovers (the caller holds the write lock)."""
    with contextlib.suppress(IndexStoreError):
        keep = keep | {Manifest.read(index_dir).generation}
    for path in index_dir.glob("gen-*"):
        if path.name in keep:
            continue
        if ".tmp-" in path.name:
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove_if_unread(path)
    for path in index_dir.glob(f"{MANIFEST_NAME}.tmp*"):
        path.unlink(missing_ok=True)


def sweep_unused(index_dir: Path) -> None:
    """Remove complete generations older than the live one that no reader holds.

    Safe without the write lock: it never touches the live generation, a newer one being
    published, or a writer's staging directory.
    """
    if fcntl is None:
        return  # readers cannot be seen; the next commit's sweep removes what it may
    try:
        live = Manifest.read(index_dir).generation
    except IndexStoreError:
        return
    for path in index_dir.glob("gen-*"):
        if _GENERATION.fullmatch(path.name) and path.name < live:
            _remove_if_unread(path)


def _remove_if_unread(generation: Path) -> None:
    if fcntl is None:  # readers cannot be seen: the caller's ``keep`` spares the last one
        shutil.rmtree(generation, ignore_errors=True)
        return
    lock = _ReaderLock.exclusive(generation)
    if lock is None:
        return  # a reader still has it open
    try:
        shutil.rmtree(generation, ignore_errors=True)
    finally:
        lock.release()


class _ReaderLock:
    """A shared lock (``flock``) on a generation's ``.readers`` file while a reader has it
    open; sweeping takes it exclusively, so a generation in use is never removed. The
    kernel drops the lock when the process dies. Without ``fcntl`` (Windows) nothing is
    locked: a commit keeps the previous generation one more commit, as before readers
    were tracked, and ``sweep_unused`` removes nothing."""

    def __init__(self, fd: int | None, sweep: Path | None = None) -> None:
        self._fd = fd
        # Released by close() or, for an index dropped without it (a swap while questions
        # still ran on it), when the last reference goes: then this process's sweep follows.
        self._finalizer = weakref.finalize(self, _let_go, fd, sweep)

    @classmethod
    def hold(cls, generation: Path) -> _ReaderLock | None:
        """A reader's shared hold, waiting while a sweep decides about the generation."""
        fd = _open_readers_file(generation)
        if fd is None:
            return None  # no fcntl, or a read-only index: nothing sweeps it either
        fcntl.flock(fd, fcntl.LOCK_SH)
        return cls(fd, sweep=generation.parent)

    @classmethod
    def exclusive(cls, generation: Path) -> _ReaderLock | None:
        """A sweep's hold, only if no reader has the generation open (never waits)."""
        fd = _open_readers_file(generation)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        self._finalizer()


def _open_readers_file(generation: Path) -> int | None:
    if fcntl is None:
        return None
    try:
        return os.open(generation / READERS_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None


def _let_go(fd: int | None, sweep: Path | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    if sweep is not None:
        with contextlib.suppress(OSError, IndexStoreError):
            sweep_unused(sweep)


def _open_lexical(index_dir: Path, directory: Path, size: int) -> LexicalIndex:
    """The BM25 index of a generation, checked to cover exactly ``size`` passages."""
    try:
        lexical = LexicalIndex.load(directory, size)
        # bm25s records its document count beside the arrays; a lexical/ directory from
        # another generation would score the wrong passages.
        params = directory / "params.index.json"
        documents = json.loads(params.read_text(encoding="utf-8"))["num_docs"] if size else 0
    except Exception as exc:  # bm25s reports a damaged file as anything from OSError on
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise damaged(index_dir, f"{LEXICAL_NAME}/ cannot be read ({reason})") from None
    if documents != size:
        raise damaged(
            index_dir, f"{LEXICAL_NAME}/ holds {documents} passages, the manifest says {size}"
        )
    return lexical


def _article_to_row(article: Article, ingested_at: str) -> tuple:
    return (
        article.id,
        article.title,
        article.body,
        article.url,
        article.source,
        article.published.isoformat() if article.published else None,
        article.language,
        json.dumps(article.extra, ensure_ascii=False, sort_keys=True),
        ingested_at,
    )
