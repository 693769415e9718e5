"""The store in PostgreSQL + pgvector: one database that a worker writes and replicas read.

Tables (the ``store`` component's version is kept in ``newsbot_schema``; ``_MIGRATIONS``):

    store_manifest   one row: generation, model, dimension, counts, BM25 length total
    articles         cleaned text and metadata, keyed by the article id
    passages         offsets into the article, the vector (``halfvec``, HNSW cosine index),
                     the BM25 length, and the passage's sentences with their 8-bit vectors
    terms            the lexical vocabulary with each term's document frequency
    postings         (term, passage, term frequency): BM25 computed from these statistics
                     gives exactly the scores the FAISS backend's bm25s index gives

A commit is one transaction: removals, COPY of the new rows, statistics and the next
generation number land together or not at all, and a second writer waits on an advisory
lock. Readers see committed data; an opened :class:`PostgresStore` numbers passages 0 … n-1
by id (its rows, as the search wants them) and keeps the small per-row arrays in memory. A
passage removed after that is skipped when asked for, and the reader reloads when it sees a
newer generation (``NewsAssistant``), as with the FAISS backend.

Articles and passages are keyed by the article id first, the natural distribution key
should the tables ever be sharded; the lexical statistics (``terms``, ``postings``) are
corpus-wide and would have to be kept per shard. No sharded setup is tested.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from corpus.articles import Article, content_fingerprint
from corpus.errors import ConfigurationError, IndexStoreError

from ..bm25_scores import QueryScores
from ..chunking import Chunk
from ..lexical import BM25_B, BM25_K1, spelling_corrections
from ..sentences import SCALE, Sentence, quantized
from ..text import terms
from .base import (
    FORMAT_VERSION,
    Manifest,
    NewContent,
    RowMetadata,
    Store,
    article_from_row,
    chunk_from_row,
    publication_arrays,
)
from .pg_postings import PostingsCache
from .pg_schema import advisory_lock, apply_migrations, describe, schema_version

__all__ = ["PostgresBackend", "PostgresLexicon", "PostgresStore", "migrate"]

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

COMPONENT = "store"
_WRITE_LOCK = "newsbot_store_write"
# ef_construction 128, not pgvector's 64: at 1M passages recall@10 0.928 → 0.958 at
# ef_search 400 (0.684 → 0.754 with a 30-day filter), searches as fast; the build takes
# longer (README, "Side by side at scale"). An index built before keeps its own.
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 128
_CREATE_HNSW = (
    "CREATE INDEX IF NOT EXISTS passages_by_embedding ON passages USING hnsw "
    f"(embedding halfvec_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
)
_EMBEDDING_IN_ROW = "ALTER TABLE passages ALTER COLUMN embedding SET STORAGE MAIN"
# Building the index at once is fast while its graph fits in maintenance_work_mem (~1.2 KB
# a passage at 384 dimensions): 1M passages in ~8 min with 4 GB, ~20 with 1 GB. So a build
# asks for 1.5 KB a passage, 1–4 GB, for this transaction; written in SQL once, as the
# migration that rebuilds the index is SQL too.
_BUILD_MEMORY = (
    "set_config('maintenance_work_mem', greatest(1024, least(4096, "
    "(SELECT count(*) FROM passages) * 1536 / 1048576)) || 'MB', true)"
)
# Session-level advisory locks, named as pg_schema.advisory_lock names its own.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
# HNSW candidates looked at per search, and at least the k asked for (pgvector returns no
# more): at 100k passages recall@10 is 0.988 with 100, 0.999 with 400 (2.4 ms p50).
_MIN_EF_SEARCH = 400
# A filtered search looks at pgvector's most: at 100k passages, a filter allowing 10 % of
# them, recall@10 0.91 with 400, 0.95 with 1000 (8.7 ms p50).
_FILTERED_EF_SEARCH = 1000
# A filtered search is exact while it reads at most this many passages by their day of
# publication (the day index, each passage checked against the filter), a passage read by
# id (id = ANY) counting as _BY_ID_COST of them: at 1M passages ~1.3 µs a passage by day,
# ~4 by id (README, "Side by side at scale"). A larger filter is searched through HNSW.
EXACT_SCAN_UP_TO = 150_000
_BY_ID_COST = 3
# A replica that failed is not asked again for this long.
REPLICA_RETRY_SECONDS = 30.0
# Per reader: passages' sentences and vectors kept in memory (a question touches a few
# hundred passages; many recur). Terms' postings are kept per backend (pg_postings).
_SENTENCE_CACHE = 4096
_VECTOR_CACHE = 20_000
# A passage id → row table is kept while the highest id is at most this many times the
# passage count (ids removed since are its gaps): 4 bytes per id.
_DENSE_IDS = 4

_MIGRATIONS = [
    (
        1,
        (
            "CREATE EXTENSION IF NOT EXISTS vector",
            """CREATE TABLE store_manifest (
                id boolean PRIMARY KEY DEFAULT true CHECK (id),
                generation bigint NOT NULL DEFAULT 0,
                model text, dimension integer, chunk_size integer, chunk_overlap integer,
                article_count bigint NOT NULL DEFAULT 0,
                passage_count bigint NOT NULL DEFAULT 0,
                total_length bigint NOT NULL DEFAULT 0,
                created_at timestamptz)""",
            "INSERT INTO store_manifest DEFAULT VALUES",
            """CREATE TABLE articles (
                id text PRIMARY KEY,
                seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                title text NOT NULL, body text NOT NULL, url text, source text,
                published text, published_at timestamptz,
                language text NOT NULL, extra jsonb NOT NULL,
                fingerprint text NOT NULL, ingested_at text NOT NULL)""",
            "CREATE INDEX articles_by_published ON articles (published_at)",
            "CREATE INDEX articles_by_ingest ON articles (ingested_at)",
            "CREATE INDEX articles_by_fingerprint ON articles (fingerprint)",
            """CREATE TABLE passages (
                article_id text NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
                position integer NOT NULL,
                id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                start integer NOT NULL, "end" integer NOT NULL,
                length integer NOT NULL,
                embedding halfvec NOT NULL,
                sentences jsonb NOT NULL,
                sentence_vectors bytea NOT NULL,
                PRIMARY KEY (article_id, position))""",
            """CREATE TABLE terms (
                id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                term text NOT NULL UNIQUE,
                df integer NOT NULL DEFAULT 0)""",
            # INCLUDE (tf): a term's postings are read from the index alone (an index-only
            # scan), in order; from the table they would be scattered over as many pages as
            # the term has passages (100k passages: 245 → 13 ms for six common terms).
            """CREATE TABLE postings (
                term_id integer NOT NULL, passage_id bigint NOT NULL, tf smallint NOT NULL,
                PRIMARY KEY (term_id, passage_id) INCLUDE (tf))""",
            "CREATE INDEX postings_by_passage ON postings (passage_id)",
        ),
    ),
    (
        2,
        (
            # A dated question's exact search reads the passages of its days by this column's
            # index (nearest_statement). Embeddings stay in the row (MAIN) and the passage's
            # sentences leave it sooner (toast_tuple_target): in rows of ~2 KB one embedding
            # in five had been moved out to TOAST, a second read each. At 1M passages an
            # exact search of a 33k-passage date window went 132 → 42 ms (65 ms for a table
            # migrated in place; README, "Side by side at scale"). Every row is rewritten
            # here, so the HNSW index is dropped first and built once at the end, as a bulk
            # copy builds it (inserting 1M rewritten rows into it one by one would take
            # hours).
            "DROP INDEX IF EXISTS passages_by_embedding",
            _EMBEDDING_IN_ROW,
            "ALTER TABLE passages SET (toast_tuple_target = 1024)",
            "ALTER TABLE passages ADD COLUMN published_day integer",
            # The proleptic ordinal of the date printed on the article, as Python's
            # date.toordinal() and RowMetadata.published_days count it; NULL: undated.
            # The embedding is written anew so that it comes back into the row (kept as it
            # was, a value moved out to TOAST would stay there).
            "UPDATE passages p SET embedding = p.embedding::vector::halfvec, published_day = "
            "(SELECT left(a.published, 10)::date - date '0001-01-01' + 1 FROM articles a "
            "WHERE a.id = p.article_id)",
            "CREATE INDEX passages_by_day ON passages (published_day)",
            f"""DO $$ BEGIN
                IF (SELECT model FROM store_manifest) IS NOT NULL THEN
                    PERFORM {_BUILD_MEMORY};
                    EXECUTE '{_CREATE_HNSW}';
                END IF;
            END $$""",
        ),
    ),
]
SCHEMA_VERSION = _MIGRATIONS[-1][0]


def migrate(conninfo: str) -> tuple[int, int]:
    """Create or upgrade the store's tables; (version before, version after)."""
    with _connect(conninfo) as conn:
        return apply_migrations(conn, COMPONENT, _MIGRATIONS)


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise ConfigurationError(f"cannot connect to PostgreSQL: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)


class _Route:
    """One database to read from, and until when it is skipped after a failure."""

    def __init__(self, name: str, pool: ConnectionPool[Any]) -> None:
        self.name, self.pool, self.down_until = name, pool, 0.0


class PostgresBackend:
    """The store in one PostgreSQL database: writes to the primary, reads to the replicas
    when there are any (a replica that fails is skipped for ``REPLICA_RETRY_SECONDS``, the
    question read from the next one or the primary)."""

    kind = "postgres"

    def __init__(
        self,
        conninfo: str,
        replicas: Sequence[str] = (),
        *,
        replica_retry_seconds: float = REPLICA_RETRY_SECONDS,
        postings_bytes: int = 1_024_000_000,
    ) -> None:
        self._conninfo = conninfo
        # The schema is brought up to date first (once, whoever starts first; a newer one
        # is refused): the pool's connections need the vector type it creates.
        with _connect(conninfo) as conn:
            self.description = describe(conn)
            self.migrated = apply_migrations(conn, COMPONENT, _MIGRATIONS)
        self._primary = self._pool(conninfo, "newsbot-store")
        self._replicas = [
            _Route(f"replica {i + 1}", self._pool(url, f"newsbot-replica-{i + 1}", wait=False))
            for i, url in enumerate(replicas)
        ]
        self._retry = replica_retry_seconds
        self._bulk = False  # inside bulk_load(): the vector index is built at the end
        # Terms' postings, kept across the generations this process opens (pg_postings).
        self.postings = PostingsCache(postings_bytes)
        self._next = 0
        self._routes_lock = threading.Lock()

    @staticmethod
    def _pool(conninfo: str, name: str, *, wait: bool = True) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=1,
            # One refresh round holds three at once (its lease, the writer's lock, the
            # commit's transaction) while the bot's questions keep reading.
            max_size=8,
            kwargs={"autocommit": True, "connect_timeout": 5},
            configure=_configure,
            check=ConnectionPool.check_connection,  # outlives a server restart
            name=name,
            open=False,
        )
        if wait:
            try:
                pool.open(wait=True, timeout=30)
            except PoolTimeout:
                pool.close()
                raise ConfigurationError(
                    f"cannot connect to PostgreSQL ({name}) within 30 s"
                ) from None
        else:
            pool.open(wait=False)
        return pool

    # -- routing -------------------------------------------------------------------------

    def read(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` on a replica if one is up, else on the primary."""
        now = time.monotonic()
        with self._routes_lock:
            up = [r for r in self._replicas if r.down_until <= now]
            if up:
                self._next = (self._next + 1) % len(up)
                up = up[self._next :] + up[: self._next]
        for route in up:
            try:
                with route.pool.connection(timeout=5) as conn:
                    return work(conn)
            except (psycopg.OperationalError, PoolTimeout) as e:
                route.down_until = time.monotonic() + self._retry
                log.warning(
                    "%s failed (%s); reading from the next database for %.0f s",
                    route.name,
                    _first_line(e),
                    self._retry,
                )
        return self.write(work)

    def stream(self, query: str) -> Iterator[tuple[Any, ...]]:
        """The rows of ``query`` a few thousand at a time (a server-side cursor on the
        primary), for reading a whole store without holding it in memory."""
        with (
            self._primary.connection() as conn,
            conn.transaction(),
            conn.cursor(name="newsbot_stream") as cursor,
        ):
            cursor.itersize = 2000
            cursor.execute(query)
            yield from cursor

    def write(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._primary.connection() as conn:
            return work(conn)

    # -- the backend's interface -----------------------------------------------------------

    def _checked_version(self, conn: psycopg.Connection[Any]) -> None:
        version = schema_version(conn, COMPONENT)
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.description} was written by a newer newsbot (store schema version "
                f"{version}, this one knows up to {SCHEMA_VERSION}); upgrade newsbot."
            )
        if version < SCHEMA_VERSION:
            raise IndexStoreError(
                f"{self.description} has no newsbot store yet (schema version {version}): "
                "run `newsbot db migrate`, then `newsbot ingest PATH...`"
            )

    def exists(self) -> bool:
        """Whether anything was ever committed to this database's store."""

        def committed(conn: psycopg.Connection[Any]) -> bool:
            if schema_version(conn, COMPONENT) != SCHEMA_VERSION:
                return False
            row = conn.execute("SELECT generation FROM store_manifest").fetchone()
            return bool(row and row[0] > 0)

        return self.write(committed)

    def signature(self) -> int | None:
        """The committed generation, cheap to ask every few seconds (None: none yet)."""
        with contextlib.suppress(psycopg.Error):
            row = self.read(
                lambda conn: conn.execute("SELECT generation FROM store_manifest").fetchone()
            )
            return int(row[0]) if row and row[0] else None
        return None

    def manifest(self) -> Manifest | None:
        """The committed manifest, read on the primary (a replica may not have it yet)."""

        def committed(conn: psycopg.Connection[Any]) -> Manifest | None:
            if schema_version(conn, COMPONENT) != SCHEMA_VERSION:
                return None
            return _read_manifest(conn)

        return self.write(committed)

    def open(self, *, model: str | None = None, dimension: int | None = None) -> PostgresStore:
        self.write(self._checked_version)
        manifest = self.read(_read_manifest)
        if manifest is None:
            raise IndexStoreError(
                f"{self.description} holds no articles yet: add some with `newsbot ingest PATH...`"
            )
        if model is not None or dimension is not None:
            manifest.check_model(self.description, model, dimension)
        return PostgresStore(self, manifest)

    @contextlib.contextmanager
    def writing(self, timeout: float = 0) -> Iterator[None]:
        """Hold the one writer's lock (a session advisory lock) for the block."""
        with self._primary.connection() as conn:
            key = _WRITE_LOCK
            deadline = time.monotonic() + timeout
            while not conn.execute(_TRY_LOCK, [key]).fetchall()[0][0]:
                if time.monotonic() >= deadline:
                    waited = f" (waited {timeout:g} s)" if timeout else ""
                    raise IndexStoreError(
                        f"another newsbot process is writing to {self.description}{waited}; "
                        "try again when it has finished, or set NEWSBOT_LOCK_TIMEOUT"
                    )
                time.sleep(0.2)
            try:
                yield
            finally:
                conn.execute(_UNLOCK, [key])

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Commits in the block skip the HNSW index, built once at the end.

        Building it over a million passages at once takes minutes; inserting them into it one
        batch at a time takes hours. Searches meanwhile scan every passage: for copying a
        store (``migrate-store``) before it serves, not for a live one.
        """
        self.write(lambda conn: conn.execute("DROP INDEX IF EXISTS passages_by_embedding"))
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False

            def build(conn: psycopg.Connection[Any]) -> None:
                if self.manifest() is None:
                    return  # nothing committed: the first commit makes the index
                with conn.transaction():
                    conn.execute(f"SELECT {_BUILD_MEMORY}")
                    conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
                    conn.execute(_CREATE_HNSW)
                # Statistics for the planner and the visibility map for index-only scans
                # now, rather than whenever autovacuum comes by.
                conn.execute("VACUUM (ANALYZE) articles, passages, terms, postings")

            self.write(build)

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[bool]:
        """A session advisory lock on the primary, taken without waiting; a process that
        dies lets go of it with its connection."""
        with self._primary.connection() as conn:
            key = f"newsbot_lease_{name}"
            ((mine,),) = conn.execute(_TRY_LOCK, [key]).fetchall()
            try:
                yield bool(mine)
            finally:
                if mine:
                    conn.execute(_UNLOCK, [key])

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
        """Remove the articles ``remove``, add ``new`` (an article already stored is
        replaced), in one transaction; return the new generation's manifest. Without
        ``base`` (a new store, or ``ingest --rebuild``) everything stored before goes, and
        the store may change its model."""
        if not len(new.chunks) == len(new.vectors) == len(new.sentences):
            raise ValueError("one vector and one sentence list per chunk are required")

        def work(conn: psycopg.Connection[Any]) -> Manifest:
            self._checked_version(conn)
            with conn.transaction():
                advisory_lock(conn, _WRITE_LOCK + "-commit")
                _commit(
                    conn,
                    new,
                    model,
                    dimension,
                    chunk_size,
                    chunk_overlap,
                    set(remove),
                    replace_all=base is None,
                    defer_index=self._bulk,
                )
            manifest = _read_manifest(conn)
            assert manifest is not None
            return manifest

        try:
            return self.write(work)
        except psycopg.Error as e:
            raise IndexStoreError(
                f"writing to {self.description} failed ({_first_line(e)}); the transaction "
                "was rolled back, so the store holds what it held before"
            ) from e

    def close(self) -> None:
        self._primary.close()
        for route in self._replicas:
            route.pool.close()


def _read_manifest(conn: psycopg.Connection[Any]) -> Manifest | None:
    row = conn.execute(
        "SELECT generation, model, dimension, article_count, passage_count, chunk_size, "
        "chunk_overlap, created_at, (SELECT max(published_at) FROM articles) "
        "FROM store_manifest"
    ).fetchone()
    if row is None or not row[0]:
        return None
    generation, model, dimension, articles, passages, size, overlap, created, newest = row
    return Manifest(
        format_version=FORMAT_VERSION,
        generation=f"pg-{generation:06d}",
        model=model,
        dimension=dimension,
        article_count=articles,
        chunk_count=passages,
        corpus_fingerprint=hashlib.sha256(f"pg-{generation}".encode()).hexdigest(),
        chunk_size=size,
        chunk_overlap=overlap,
        newest_published=newest.date().isoformat() if newest else None,
        created_at=created.isoformat(timespec="seconds") if created else "",
    )


def _commit(
    conn: psycopg.Connection[Any],
    new: NewContent,
    model: str,
    dimension: int,
    chunk_size: int,
    chunk_overlap: int,
    remove: set[str],
    *,
    replace_all: bool,
    defer_index: bool,
) -> None:
    ((stored_model, stored_dimension),) = conn.execute(
        "SELECT model, dimension FROM store_manifest FOR UPDATE"
    ).fetchall()
    if replace_all:
        conn.execute("DELETE FROM postings")
        conn.execute("DELETE FROM terms")
        conn.execute("DELETE FROM articles")
        conn.execute("UPDATE store_manifest SET total_length = 0")
        if (stored_model, stored_dimension) != (model, dimension):
            conn.execute("DROP INDEX IF EXISTS passages_by_embedding")
            conn.execute("ALTER TABLE passages ALTER COLUMN embedding TYPE halfvec")
            stored_model = None
    if stored_model is None:
        # The vector width is known once the first batch comes: the column and its index
        # are typed then.
        conn.execute(f"ALTER TABLE passages ALTER COLUMN embedding TYPE halfvec({int(dimension)})")
        conn.execute(_EMBEDDING_IN_ROW)  # a new type brings the type's own storage back
        if not defer_index:
            conn.execute(_CREATE_HNSW)
    elif (stored_model, stored_dimension) != (model, dimension):
        raise IndexStoreError(
            f"the store was built with model {stored_model!r} (dimension {stored_dimension}), "
            f"but the configured model is {model!r} (dimension {dimension}): set "
            f"NEWSBOT_EMBEDDING_MODEL={stored_model} or empty the database"
        )
    # An article stored again is replaced: its passages and statistics go first.
    gone = remove | {a.id for a in new.articles}
    removed_length = 0
    if gone:
        ids = [
            i
            for (i,) in conn.execute(
                "SELECT p.id FROM passages p WHERE p.article_id = ANY(%s)", [list(gone)]
            )
        ]
        if ids:
            conn.execute(
                "UPDATE terms t SET df = t.df - x.n FROM (SELECT term_id, count(*) AS n "
                "FROM postings WHERE passage_id = ANY(%s) GROUP BY term_id) x "
                "WHERE t.id = x.term_id",
                [ids],
            )
            conn.execute("DELETE FROM postings WHERE passage_id = ANY(%s)", [ids])
            ((removed_length,),) = conn.execute(
                "SELECT coalesce(sum(length), 0) FROM passages WHERE id = ANY(%s)", [ids]
            ).fetchall()
        conn.execute("DELETE FROM articles WHERE id = ANY(%s)", [list(gone)])

    now = datetime.now(UTC).isoformat(timespec="seconds")
    with conn.cursor().copy(
        "COPY articles (id, title, body, url, source, published, published_at, language, "
        "extra, fingerprint, ingested_at) FROM STDIN"
    ) as copy:
        for a in new.articles:
            copy.write_row(
                (
                    a.id,
                    a.title,
                    a.body,
                    a.url,
                    a.source,
                    a.published.isoformat() if a.published else None,
                    _aware(a.published),
                    a.language,
                    json.dumps(a.extra, ensure_ascii=False, sort_keys=True),
                    content_fingerprint(a.body),
                    now,
                )
            )
    counts = [Counter(terms(c.lexical_text) or [""]) for c in new.chunks]
    offsets = np.cumsum([0] + [len(s) for s in new.sentences])
    sentence_vectors = _quantized(new.sentence_vectors)
    with conn.cursor().copy(
        'COPY passages (article_id, position, start, "end", length, embedding, sentences, '
        "sentence_vectors, published_day) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(
            ["text", "int4", "int4", "int4", "int4", "halfvec", "jsonb", "bytea", "int4"]
        )
        published = _published(conn, new)
        for i, c in enumerate(new.chunks):
            day = published.get(c.article_id)
            copy.write_row(
                (
                    c.article_id,
                    c.position,
                    c.start,
                    c.end,
                    sum(counts[i].values()),
                    HalfVector(new.vectors[i]),
                    Jsonb([[s.start, s.end, sorted(s.terms)] for s in new.sentences[i]]),
                    sentence_vectors[offsets[i] : offsets[i + 1]].tobytes(),
                    day.toordinal() if day else None,
                )
            )
    passage_ids = (
        dict(
            ((article_id, position), pid)
            for pid, article_id, position in conn.execute(
                "SELECT id, article_id, position FROM passages WHERE article_id = ANY(%s)",
                [[a.id for a in new.articles]],
            )
        )
        if new.chunks
        else {}
    )
    vocabulary = sorted({t for count in counts for t in count})
    if vocabulary:
        conn.execute(
            "INSERT INTO terms (term) SELECT unnest(%s::text[]) ON CONFLICT (term) DO NOTHING",
            [vocabulary],
        )
    term_ids = dict(
        conn.execute("SELECT term, id FROM terms WHERE term = ANY(%s)", [vocabulary]).fetchall()
    )
    df: Counter[int] = Counter()
    with conn.cursor().copy(
        "COPY postings (term_id, passage_id, tf) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int4", "int8", "int2"])
        for c, count in zip(new.chunks, counts, strict=True):
            pid = passage_ids[(c.article_id, c.position)]
            for term, tf in count.items():
                copy.write_row((term_ids[term], pid, min(tf, 32767)))
                df[term_ids[term]] += 1
    if df:
        conn.execute(
            "UPDATE terms t SET df = t.df + x.n FROM unnest(%s::int[], %s::int[]) AS x(id, n) "
            "WHERE t.id = x.id",
            [list(df), list(df.values())],
        )
    added_length = sum(sum(c.values()) for c in counts)
    conn.execute(
        "UPDATE store_manifest SET generation = generation + 1, model = %s, dimension = %s, "
        "chunk_size = %s, chunk_overlap = %s, "
        "article_count = (SELECT count(*) FROM articles), "
        "passage_count = (SELECT count(*) FROM passages), "
        "total_length = total_length - %s + %s, created_at = now()",
        [model, dimension, chunk_size, chunk_overlap, removed_length, added_length],
    )


def _published(conn: psycopg.Connection[Any], new: NewContent) -> dict[str, datetime | None]:
    """When each new passage's article was published: from the commit, or from the database
    for a passage added to an article stored before."""
    published = {a.id: a.published for a in new.articles}
    stored = list({c.article_id for c in new.chunks} - published.keys())
    if stored:
        for article_id, when in conn.execute(
            "SELECT id, published FROM articles WHERE id = ANY(%s)", [stored]
        ):
            published[article_id] = datetime.fromisoformat(when) if when else None
    return published


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _quantized(vectors: np.ndarray) -> np.ndarray:
    return quantized(vectors) if len(vectors) else np.zeros((0, 0), np.int8)


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rows:
    """The generation's passages as rows: ids ascending, with their per-row facts."""

    ids: np.ndarray
    lengths: np.ndarray
    meta: RowMetadata
    total_length: int
    #: passage id → row (-1: not in this generation), when ids are dense enough for it to
    #: be small: a common term's postings become rows by one gather, not a binary search.
    row_of: np.ndarray | None
    #: ``meta.published_days`` in ascending order: how many passages some days hold.
    days_sorted: np.ndarray

    def passages_published(self, days: np.ndarray) -> int:
        """How many passages were published on these days (ordinals, each once)."""
        ordered = self.days_sorted
        return int(
            np.sum(np.searchsorted(ordered, days, "right") - np.searchsorted(ordered, days, "left"))
        )

    @property
    def newest(self) -> int:
        """The highest passage id of this generation (-1: none)."""
        return int(self.ids[-1]) if len(self.ids) else -1

    def rows_of_sorted(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | slice]:
        """(rows, positions in ``ids``) of the ids this generation knows; ``ids`` ascending,
        so the rows are too."""
        if not len(self.ids):
            return np.zeros(0, np.int64), slice(0, 0)
        start = int(np.searchsorted(ids, self.ids[0], side="left"))
        end = int(np.searchsorted(ids, self.newest, side="right"))
        if self.row_of is None:
            rows, at = self.rows(ids[start:end])
            return rows, at + start
        rows = self.row_of[ids[start:end]]
        if self.newest - self.ids[0] + 1 == len(self.ids):  # no gaps: all of them are here
            return rows, slice(start, end)
        at = np.flatnonzero(rows >= 0)
        return rows[at], at + start

    def rows(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, positions in ``ids``) of the ids this generation knows."""
        wanted = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), np.int64)
        at = np.searchsorted(self.ids, wanted)
        at = np.minimum(at, max(len(self.ids) - 1, 0))
        known = (self.ids[at] == wanted) if len(self.ids) else np.zeros(len(wanted), bool)
        return at[known], np.flatnonzero(known)


class PostgresStore:
    """One generation of the PostgreSQL store, as :class:`~retrieval.store.base.Store`."""

    def __init__(self, backend: PostgresBackend, manifest: Manifest) -> None:
        self.backend = backend
        self.manifest = manifest
        self.index_dir = backend.description
        self._rows: _Rows | None = None
        self._rows_lock = threading.Lock()
        self._lexical: PostgresLexicon | None = None
        self._sentences = _SentenceRows(self)
        self._vectors: _Cache[int, np.ndarray] = _Cache(_VECTOR_CACHE)
        self._sources: tuple[str, ...] | None = None

    @property
    def generation(self) -> str:
        return self.manifest.generation

    def __len__(self) -> int:
        return len(self.rows().ids)

    def rows(self) -> _Rows:
        """The per-row arrays, read on first use (a writer that only adds never needs them)."""
        with self._rows_lock:
            if self._rows is None:
                self._rows = self.backend.read(_load_rows)
            return self._rows

    def row_metadata(self) -> RowMetadata:
        return self.rows().meta

    @property
    def lexical(self) -> PostgresLexicon:
        if self._lexical is None:
            self._lexical = PostgresLexicon(self)
        return self._lexical

    @property
    def sentences(self) -> _SentenceRows:
        return self._sentences

    def _ids(self, rows: Sequence[int] | np.ndarray) -> list[int]:
        return self.rows().ids[np.asarray(rows, np.int64)].tolist()

    def nearest(
        self, query: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` passages nearest to ``query`` by the HNSW index; among ``among`` only
        (exactly while that reads few enough passages, by their days or their ids; a larger
        filter by HNSW with iterative scans)."""
        table = self.rows()
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if len(table.ids) == 0 or k <= 0 or (among is not None and len(among) == 0):
            return empty
        settings, statement, params = self.nearest_statement(query, k, among)

        def search(conn: psycopg.Connection[Any]) -> list[tuple[int, float]]:
            if not settings:
                return conn.execute(statement, params).fetchall()
            with conn.transaction():
                for setting in settings:
                    conn.execute(setting)
                return conn.execute(statement, params).fetchall()

        found = self.backend.read(search)
        rows, at = table.rows(i for i, _ in found)
        scores = np.array([found[i][1] for i in at], np.float32)
        return rows, scores

    def nearest_statement(
        self, query: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[list[str], str, list[Any]]:
        """What :meth:`nearest` runs: the ``SET LOCAL`` settings, then the statement and its
        parameters, giving (passage id, cosine) rows (``bench/store.py`` EXPLAINs them)."""
        vector = HalfVector(np.asarray(query, np.float32))
        if among is None:
            return (
                [f"SET LOCAL hnsw.ef_search = {max(int(k), _MIN_EF_SEARCH)}"],
                "SELECT id, 1 - (embedding <=> %s) FROM passages "
                "ORDER BY embedding <=> %s LIMIT %s",
                [vector, vector, k],
            )
        reads, days = self._exact_reads(among)
        if reads <= EXACT_SCAN_UP_TO and days is not None:
            # Every passage of the filter's days read by the day index, each checked against
            # the filter's bitmap (a source, or rows this generation does not know of).
            return (
                [],
                "WITH found AS MATERIALIZED (SELECT id, embedding <=> %s AS distance "
                "FROM passages WHERE published_day = ANY(%s) "
                "AND CASE WHEN id < %s THEN get_bit(%s::bytea, id) = 1 END) "
                "SELECT id, 1 - distance FROM found ORDER BY distance LIMIT %s",
                [vector, days, *self._allowed_bits(among), k],
            )
        if reads <= EXACT_SCAN_UP_TO:
            # Every distance computed, then sorted: written as a plain ORDER BY … LIMIT, the
            # planner may walk the HNSW index instead and filter what it finds, returning
            # fewer than k (found by bench/store.py at 100k passages). Ids go in binary,
            # here and wherever a question reads passages by id (30k of 1M passages: 160 →
            # 123 ms p50, most of the difference in turning the list into text).
            return (
                [],
                "WITH found AS MATERIALIZED (SELECT id, embedding <=> %s AS distance "
                "FROM passages WHERE id = ANY(%b)) "
                "SELECT id, 1 - distance FROM found ORDER BY distance LIMIT %s",
                [vector, self._ids(among), k],
            )
        # The allowed passages as one bit per id: checking a candidate is one lookup (an
        # id = ANY(ids) list is read through: 120k of 1M passages, 909 → 74 ms p50). HNSW
        # looks at the most candidates pgvector allows, as most of a filtered search's
        # nearest are not allowed; relaxed_order may return them slightly out of order, so
        # they are sorted again.
        return (
            [
                f"SET LOCAL hnsw.ef_search = {max(int(k), _FILTERED_EF_SEARCH)}",
                "SET LOCAL hnsw.iterative_scan = relaxed_order",
            ],
            "WITH found AS MATERIALIZED (SELECT id, embedding <=> %s AS distance "
            "FROM passages WHERE CASE WHEN id < %s THEN get_bit(%s::bytea, id) = 1 END "
            "ORDER BY embedding <=> %s LIMIT %s) "
            "SELECT id, 1 - distance FROM found ORDER BY distance",
            [vector, *self._allowed_bits(among), vector, k],
        )

    def _exact_reads(self, among: np.ndarray) -> tuple[int, list[int] | None]:
        """What an exact search of ``among`` costs, in passages read by day (see
        ``EXACT_SCAN_UP_TO``), and the days to read when reading by day is the cheaper way."""
        table = self.rows()
        by_id = len(among) * _BY_ID_COST
        if len(among) > EXACT_SCAN_UP_TO:  # too many either way
            return by_id, None
        days = np.unique(table.meta.published_days[among])
        if days[0] <= 0:  # an undated passage is in no day's part of the index
            return by_id, None
        by_day = table.passages_published(days)
        return (by_day, days.tolist()) if by_day <= by_id else (by_id, None)

    def _allowed_bits(self, among: np.ndarray) -> tuple[int, bytes]:
        """The id the bitmap of ``among``'s passage ids stops short of, and the bitmap."""
        bitmap = _bitmap(self.rows().ids[among])
        return len(bitmap) * 8, bitmap

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The passages' stored vectors (zeros for one removed since this generation)."""
        found = self._vectors.get_many([int(r) for r in rows], self._fetch_vectors)
        return np.array(found, np.float32).reshape(len(found), self.manifest.dimension)

    def _fetch_vectors(self, rows: list[int]) -> dict[int, np.ndarray]:
        ids = self._ids(rows)

        def fetch(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            with conn.cursor(binary=True) as cursor:  # halfvec → NumPy without text parsing
                cursor.execute("SELECT id, embedding FROM passages WHERE id = ANY(%b)", [ids])
                return cursor.fetchall()

        stored = {
            pid: vector.to_numpy().astype(np.float32) for pid, vector in self.backend.read(fetch)
        }
        empty = np.zeros(self.manifest.dimension, np.float32)
        return {row: stored.get(pid, empty) for row, pid in zip(rows, ids, strict=True)}

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """The passages at ``rows``, in that order (one removed since this generation was
        opened is left out)."""
        ids = self._ids(rows)
        found = {
            row[0]: chunk_from_row(row[1:])
            for row in self.backend.read(
                lambda conn: conn.execute(_CHUNKS + " WHERE p.id = ANY(%b)", [ids]).fetchall()
            )
        }
        return [found[i] for i in ids if i in found]

    def all_chunks(self) -> Iterator[Chunk]:
        for row in self.backend.stream(_CHUNKS + " ORDER BY p.id"):
            yield chunk_from_row(row[1:])

    def rows_of(self, article_ids: Iterable[str]) -> np.ndarray:
        wanted = sorted(set(article_ids))
        ids = self.backend.read(
            lambda conn: [
                i
                for (i,) in conn.execute(
                    "SELECT id FROM passages WHERE article_id = ANY(%s)", [wanted]
                )
            ]
        )
        rows, _ = self.rows().rows(sorted(ids))
        return np.sort(rows)

    def sources(self) -> tuple[str, ...]:
        if self._sources is None:
            self._sources = tuple(
                s
                for (s,) in self._query(
                    "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source"
                )
            )
        return self._sources

    def has_article(self, article_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM articles WHERE id = %s", [article_id]))

    def article_ids(self) -> set[str]:
        return {i for (i,) in self._query("SELECT id FROM articles")}

    def article(self, article_id: str) -> Article | None:
        rows = self._query(_ARTICLES + " WHERE id = %s", [article_id])
        return article_from_row(rows[0]) if rows else None

    def articles(self) -> Iterator[Article]:
        for row in self.backend.stream(_ARTICLES + " ORDER BY seq"):
            yield article_from_row(row)

    def article_with_text(self, fingerprint: str) -> str | None:
        rows = self._query("SELECT id FROM articles WHERE fingerprint = %s LIMIT 1", [fingerprint])
        return rows[0][0] if rows else None

    def articles_per_feed(self) -> dict[str, int]:
        return dict(
            self._query(
                "SELECT extra->>'feed', count(*) FROM articles WHERE extra ? 'feed' GROUP BY 1"
            )
        )

    def article_ages(self) -> list[tuple[str, str | None, str]]:
        return [
            (i, p, ingested)
            for i, p, ingested in self._query(
                "SELECT id, published, ingested_at FROM articles ORDER BY seq"
            )
        ]

    def ingested_since(self, moment: str | None) -> tuple[list[str], str | None]:
        ((newest,),) = self._query("SELECT max(ingested_at) FROM articles")
        if moment is None:
            return [], newest
        ids = self._query(
            "SELECT id FROM articles WHERE ingested_at >= %s ORDER BY ingested_at, seq", [moment]
        )
        return [i for (i,) in ids], newest

    def newest(self, limit: int, since: datetime | None = None) -> list[Article]:
        where, params = "WHERE published_at IS NOT NULL", []
        if since is not None:
            where += " AND published_at >= %s"
            params.append(_aware(since))
        rows = self._query(
            f"{_ARTICLES} {where} ORDER BY published_at DESC, seq DESC LIMIT %s", [*params, limit]
        )
        return [article_from_row(r) for r in rows]

    def date_range(self) -> tuple[str | None, str | None]:
        ((oldest, newest),) = self._query("SELECT min(published), max(published) FROM articles")
        return (oldest[:10] if oldest else None, newest[:10] if newest else None)

    def size_on_disk(self) -> int:
        ((size,),) = self._query(
            "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['store_manifest', "
            "'articles', 'passages', 'terms', 'postings']::regclass[]) AS t"
        )
        return int(size or 0)

    def close(self) -> None:
        """Nothing to let go of: the connections belong to the backend."""

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.backend.read(lambda conn: conn.execute(sql, list(params)).fetchall())


_ARTICLES = "SELECT id, title, body, url, source, published, language, extra FROM articles"
_CHUNKS = (
    'SELECT p.id, p.article_id, p.position, p.start, p."end", '
    'substr(a.body, p.start + 1, p."end" - p.start), a.title, a.source, a.url, a.published '
    "FROM passages p JOIN articles a ON a.id = p.article_id"
)


def _bitmap(ids: np.ndarray) -> bytes:
    """``ids`` as bits, as PostgreSQL's ``get_bit(bytes, n)`` numbers them (bit n is bit
    n % 8 of byte n // 8, counted from the lowest)."""
    bits = np.zeros(int(ids.max()) + 1 if len(ids) else 0, bool)
    bits[ids] = True
    return np.packbits(bits, bitorder="little").tobytes()


def _load_rows(conn: psycopg.Connection[Any]) -> _Rows:
    """Every passage's id, length, article and the article's outlet and publication."""
    with conn.transaction(), conn.cursor(binary=True) as cursor:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        ((total,),) = conn.execute("SELECT total_length FROM store_manifest").fetchall()
        cursor.execute(
            "SELECT p.id, p.length, a.seq, a.source, a.published FROM passages p "
            "JOIN articles a ON a.id = p.article_id ORDER BY p.id"
        )
        found = cursor.fetchall()
    outlets = sorted({r[3] for r in found if r[3] is not None})
    code = {name: i for i, name in enumerate(outlets)}
    at, days = publication_arrays([datetime.fromisoformat(r[4]) if r[4] else None for r in found])
    meta = RowMetadata(
        tuple(outlets),
        np.array([code.get(r[3], -1) for r in found], np.int32),
        at,
        days,
        np.array([r[2] for r in found], np.int64),
    )
    ids = np.array([r[0] for r in found], np.int64)
    row_of = None
    if len(ids) and ids[-1] < _DENSE_IDS * len(ids):
        row_of = np.full(int(ids[-1]) + 1, -1, np.int32)
        row_of[ids] = np.arange(len(ids), dtype=np.int32)
    lengths = np.array([r[1] for r in found], np.float32)
    return _Rows(ids, lengths, meta, int(total), row_of, np.sort(days))


class _Cache(Generic[K, V]):
    """A bounded LRU that the threads answering questions share: at most ``size`` items, or
    items whose ``weigh`` adds up to at most ``size``. What a caller asked for is gathered
    for it before anything is evicted, however many keys it asks for at once."""

    def __init__(self, size: int, weigh: Callable[[V], int] | None = None) -> None:
        self._size = size
        self._weigh = weigh or (lambda _: 1)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.held = 0  # what the items weigh

    def get_many(self, keys: Sequence[K], fetch: Callable[[list[K]], dict[K, V]]) -> list[V]:
        """The values of ``keys``: cached ones, and the rest from one ``fetch`` of them all
        (which must return every key it is given)."""
        with self._lock:
            found = {k: self._items[k] for k in keys if k in self._items}
            for k in found:
                self._items.move_to_end(k)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            fetched = fetch(missing)
            found.update(fetched)
            with self._lock:
                for k, v in fetched.items():
                    old = self._items.pop(k, None)
                    self.held += self._weigh(v) - (self._weigh(old) if old is not None else 0)
                    self._items[k] = v
                while self._items and self.held > self._size:
                    self.held -= self._weigh(self._items.popitem(last=False)[1])
        return [found[k] for k in keys]


class _SentenceRows:
    """Passages' sentences and their vectors, fetched for the rows a question looks at."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._cache: _Cache[int, tuple[tuple[Sentence, ...], np.ndarray]] = _Cache(_SENTENCE_CACHE)

    def _get(self, rows: Sequence[int]) -> list[tuple[tuple[Sentence, ...], np.ndarray]]:
        return self._cache.get_many([int(r) for r in rows], self._fetch)

    def _fetch(self, rows: list[int]) -> dict[int, tuple[tuple[Sentence, ...], np.ndarray]]:
        ids = self._store._ids(rows)
        fetched = {
            pid: (sentences, vectors)
            for pid, sentences, vectors in self._store.backend.read(
                lambda conn: conn.execute(
                    "SELECT id, sentences, sentence_vectors FROM passages WHERE id = ANY(%b)",
                    [ids],
                ).fetchall()
            )
        }
        dimension = self._store.manifest.dimension
        found = {}
        for row, pid in zip(rows, ids, strict=True):
            sentences, vectors = fetched.get(pid, ([], b""))
            found[row] = (
                tuple(Sentence(s, e, frozenset(t)) for s, e, t in sentences),
                np.frombuffer(vectors, np.int8).reshape(-1, dimension),
            )
        return found

    def sentences(self, row: int) -> tuple[Sentence, ...]:
        return self._get([row])[0][0]

    def vectors(self, row: int) -> np.ndarray:
        return self._get([row])[0][1]

    def similarities(self, row: int, query: np.ndarray) -> np.ndarray:
        block = self.vectors(row)
        return (block.astype(np.float32) @ np.asarray(query, np.float32)) / SCALE

    def best_similarities(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray:
        """As ``SentenceIndex.best_similarities``: -1 for a passage without sentences."""
        query = np.asarray(query, np.float32)
        return np.array(
            [
                float(((v.astype(np.float32) @ query) / SCALE).max()) if len(v) else -1.0
                for _, v in self._get(rows)
            ],
            np.float32,
        )

    def best_sentence_scores(self, rows: Sequence[int], weights: dict[str, float]) -> np.ndarray:
        """As ``SentenceIndex.best_sentence_scores``: 0 for a passage without sentences."""
        wanted = {t: w for t, w in weights.items() if w}
        terms = frozenset(wanted)
        # A sentence's terms met by the question's few (a set intersection, in C), not
        # every term of every sentence looked up: 6 ms a question at 50 passages.
        return np.array(
            [
                max(
                    (sum(wanted[t] for t in s.terms & terms) for s in sentences),
                    default=0.0,
                )
                for sentences, _ in self._get(rows)
            ],
            np.float32,
        )


class PostgresLexicon:
    """BM25 from the ``terms`` and ``postings`` tables, scored as bm25s scores (Lucene's
    variant, the same k1 and b), so both backends rank passages alike."""

    def __init__(self, store: PostgresStore, *, correct: bool = True) -> None:
        self._store = store
        self._correct = correct
        self._vocabulary: dict[str, tuple[int, int]] | None = None
        self._speller_lock = threading.Lock()
        self._speller: Any = None
        self._by_id: dict[int, int] | None = None
        self._row_norms: np.ndarray | None = None
        # Each term's rows and tf / (tf + norm) in this generation (_term_weights), within
        # as many postings as the backend's postings cache holds.
        self._weights: _Cache[int, tuple[np.ndarray, np.ndarray]] = _Cache(
            store.backend.postings.budget, weigh=lambda item: len(item[0])
        )
        self.query_terms = lru_cache(maxsize=4096)(self._query_terms)

    def _terms(self) -> dict[str, tuple[int, int]]:
        if self._vocabulary is None:
            self._vocabulary = {
                term: (term_id, df)
                for term_id, term, df in self._store._query(
                    "SELECT id, term, df FROM terms WHERE df > 0"
                )
            }
        return self._vocabulary

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, term: object) -> bool:
        return term in self._terms()

    def uncorrected(self) -> PostgresLexicon:
        other = PostgresLexicon(self._store, correct=False)
        other._vocabulary, other._by_id = self._vocabulary, self._by_id
        other._row_norms, other._weights = self._row_norms, self._weights
        return other

    def document_frequency(self, term: str) -> int:
        found = self._terms().get(term)
        return found[1] if found else 0

    def idf(self, term: str) -> float:
        df, n = self.document_frequency(term), len(self)
        return math.log(1 + (n - df + 0.5) / (df + 0.5)) if df else 0.0

    def weight(self, term: str) -> float:
        return self.idf(term) or math.log(1 + (len(self) + 0.5) / 0.5)

    def documents(self, term: str) -> np.ndarray:
        """The rows of the passages containing ``term``, ascending."""
        found = self._terms().get(term)
        if found is None:
            return np.zeros(0, np.int64)
        ((rows, _),) = self._postings([found[0]])
        return rows

    def _postings(self, term_ids: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each term's (rows ascending, term frequencies) in this generation, from the
        backend's postings cache (``pg_postings``)."""
        table = self._store.rows()
        documents = self._documents()
        found = self._store.backend.postings.get(
            self._store.backend.read, term_ids, documents, table.newest
        )
        result = []
        for ids, tf in found:
            rows, at = table.rows_of_sorted(ids)
            result.append((rows, tf[at]))
        return result

    def _norms(self) -> np.ndarray:
        """BM25's length normalisation of every row, ``k1 · (1 - b + b · length / mean)``."""
        if self._row_norms is None:
            table = self._store.rows()
            average = table.total_length / max(len(table.ids), 1)
            self._row_norms = BM25_K1 * ((1 - BM25_B) + BM25_B * table.lengths / average)
        return self._row_norms

    def _documents(self) -> dict[int, int]:
        """Term id → passages holding it, in this generation."""
        if self._by_id is None:
            self._by_id = dict(self._terms().values())
        return self._by_id

    def prefetch(self) -> int:
        """Read the heaviest terms' postings now (``pg_postings``); postings held after."""
        return self._store.backend.postings.prefetch(
            self._store.backend.read, self._documents(), self._store.rows().newest
        )

    def _query_terms(self, text: str) -> tuple[str, ...]:
        found = terms(text)
        unknown = [t for t in dict.fromkeys(found) if t not in self]
        if not unknown or not self._correct:
            return tuple(found)
        fixed = spelling_corrections(self, unknown, [t for t in found if t in self])
        return tuple(fixed.get(t, t) for t in found)

    def speller(self) -> Any:
        from symspellpy import SymSpell

        with self._speller_lock:
            if self._speller is None:
                speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
                for term, (_, df) in self._terms().items():
                    if term and df:
                        speller.create_dictionary_entry(term, df)
                self._speller = speller
            return self._speller

    def warm_up(self) -> None:
        """The spelling dictionary, and the heaviest terms' postings (``pg_postings``)."""
        self.speller()
        self.prefetch()

    def query(self, text: str) -> QueryScores:
        """BM25 scores for ``text`` (``bm25_scores``): ``idf · tf / (tf + norm)`` per
        posting, each row's norm from its length (:meth:`_norms`)."""
        table = self._store.rows()
        vocabulary = self._terms()
        wanted = [vocabulary[t] for t in self.query_terms(text) if t in vocabulary]
        if not wanted or not len(table.ids):
            return QueryScores([], len(table.ids))
        n = len(table.ids)
        # A term the question repeats counts each time, as in bm25s.
        times = Counter(term_id for term_id, _ in wanted)
        frequency = dict(wanted)
        postings = []
        found = self._weights.get_many(list(times), self._term_weights)
        for term_id, (rows, weight) in zip(times, found, strict=True):
            df = frequency[term_id]
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5)) * times[term_id]
            postings.append((rows, weight * np.float32(idf)))
        return QueryScores(postings, n)

    def _term_weights(self, term_ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each term's rows and ``tf / (tf + norm)`` in this generation: worked out once
        and kept (``_weights``), a question then only multiplies them by the IDF (at 1M
        passages, a warm answer p50 84–97 → 69–74 ms: README, *Side by side at scale*)."""
        norms = self._norms()
        found = {}
        for term_id, (rows, tf) in zip(term_ids, self._postings(term_ids), strict=True):
            weight = tf.astype(np.float32)
            weight /= norms[rows] + weight
            found[term_id] = (rows.astype(np.int32, copy=False), weight)
        return found
