"""What every store holds and hands to the search above it, whichever backend keeps it.

A store keeps articles, their passages (chunks) with one vector each, each passage's
sentences with theirs, and the BM25 statistics of the passages. The search addresses
passages by *row*: 0 … n-1 in one opened generation, so that per-passage facts can be
NumPy arrays (:class:`RowMetadata`) and scores vectors. Two backends implement
:class:`Store`: FAISS + files in one directory (``faiss_index.py``, the embedded default)
and PostgreSQL + pgvector (``postgres.py``, for several machines).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from corpus.articles import Article
from corpus.errors import IndexStoreError

from ..bm25_scores import QueryScores
from ..chunking import Chunk
from ..durable import write_atomically
from ..sentences import Sentence, sentences_of
from ..timeframe import TimeRange

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Lexicon",
    "Manifest",
    "NewContent",
    "RowMetadata",
    "Sentences",
    "Store",
    "StoreBackend",
    "article_from_row",
    "chunk_from_row",
    "damaged",
    "publication_arrays",
]

FORMAT_VERSION = 3
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class RowMetadata:
    """Article facts per vector row, as arrays for vectorised boosts and filters.

    ``outlet_codes[row]`` indexes ``outlets`` (-1: unknown); ``published_at`` is the
    publication instant in seconds since the epoch (NaN: unknown; a time without an offset
    is taken as UTC) and ``published_days`` the calendar date printed on the article, as a
    proleptic ordinal (0: unknown); ``article_codes`` tell rows of the same article apart
    without fetching them.
    """

    outlets: tuple[str, ...]
    outlet_codes: np.ndarray
    published_at: np.ndarray
    published_days: np.ndarray
    article_codes: np.ndarray

    def save(self, path: Path) -> None:
        with path.open("wb") as file:
            np.savez(
                file,
                outlets=np.array(self.outlets, dtype=str),
                outlet_codes=self.outlet_codes,
                published_at=self.published_at,
                published_days=self.published_days,
                article_codes=self.article_codes,
            )

    @classmethod
    def load(cls, path: Path) -> RowMetadata | None:
        """The saved arrays; None for a file written before publication times were kept."""
        with np.load(path, allow_pickle=False) as data:
            if "published_at" not in data:
                return None
            return cls(
                tuple(str(o) for o in data["outlets"]),
                data["outlet_codes"],
                data["published_at"],
                data["published_days"],
                data["article_codes"],
            )

    def extended(
        self, articles: Sequence[Article], chunks: Sequence[Chunk], codes: dict[str, int]
    ) -> RowMetadata:
        """These rows plus one per chunk; ``codes`` gives each article's code."""
        outlets = list(self.outlets)
        code_of = {name: i for i, name in enumerate(outlets)}
        for article in articles:
            if article.source is not None and article.source not in code_of:
                code_of[article.source] = len(outlets)
                outlets.append(article.source)
        by_id = {a.id: a for a in articles}
        published = [by_id[c.article_id].published for c in chunks]
        at, days = publication_arrays(published)
        return RowMetadata(
            tuple(outlets),
            np.concatenate(
                [
                    self.outlet_codes,
                    np.array(
                        [code_of.get(by_id[c.article_id].source or "", -1) for c in chunks],
                        dtype=np.int32,
                    ),
                ]
            ),
            np.concatenate([self.published_at, at]),
            np.concatenate([self.published_days, days]),
            np.concatenate(
                [self.article_codes, np.array([codes[c.article_id] for c in chunks], np.int64)]
            ),
        )

    def selected(self, rows: np.ndarray) -> RowMetadata:
        """Only ``rows``, renumbered from 0 (the outlet names are kept as they are)."""
        return RowMetadata(
            self.outlets,
            self.outlet_codes[rows],
            self.published_at[rows],
            self.published_days[rows],
            self.article_codes[rows],
        )

    @classmethod
    def empty(cls) -> RowMetadata:
        return cls(
            (),
            np.zeros(0, np.int32),
            np.zeros(0, np.float64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return len(self.outlet_codes)

    def published_by(self, outlets: Iterable[str], rows: np.ndarray | None = None) -> np.ndarray:
        """Which rows (all, or those of ``rows``) come from one of ``outlets``."""
        wanted = set(outlets)
        codes = self.outlet_codes if rows is None else self.outlet_codes[rows]
        return np.isin(codes, [i for i, n in enumerate(self.outlets) if n in wanted])

    def published_in(self, ranges: Iterable[TimeRange]) -> np.ndarray:
        """Which rows were published in one of ``ranges``: by the date printed on the
        article for whole days, by the instant otherwise. Undated rows are in none."""
        inside = np.zeros(len(self), dtype=bool)
        for r in ranges:
            if r.whole_days:
                first, last = r.first_day.toordinal(), r.last_day.toordinal()
                inside |= (self.published_days >= first) & (self.published_days <= last)
            else:
                start, end = r.start.timestamp(), r.end.timestamp()
                with np.errstate(invalid="ignore"):
                    inside |= (self.published_at >= start) & (self.published_at < end)
        return inside

    def age_days(self, now: datetime, rows: np.ndarray | None = None) -> np.ndarray:
        """Days from each row's (or each of ``rows``') publication to ``now`` (NaN:
        undated; never below 0)."""
        published = self.published_at if rows is None else self.published_at[rows]
        return np.maximum((now.timestamp() - published) / 86_400.0, 0.0)


def publication_arrays(published: Sequence[datetime | None]) -> tuple[np.ndarray, np.ndarray]:
    """``published_at`` and ``published_days`` (see :class:`RowMetadata`) for these times."""
    at = np.array(
        [
            (p if p.tzinfo else p.replace(tzinfo=UTC)).timestamp() if p else np.nan
            for p in published
        ],
        dtype=np.float64,
    )
    days = np.array([p.toordinal() if p else 0 for p in published], dtype=np.int32)
    return at, days


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an index holds and how it was built; written last, read first."""

    format_version: int
    generation: str
    model: str
    dimension: int
    article_count: int
    chunk_count: int
    corpus_fingerprint: str
    chunk_size: int
    chunk_overlap: int
    newest_published: str | None
    created_at: str

    @classmethod
    def read(cls, index_dir: Path) -> Manifest:
        path = index_dir / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexStoreError(
                f"no index at {index_dir}: build one with `newsbot ingest PATH...`"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise damaged(index_dir, f"{MANIFEST_NAME} is unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise damaged(index_dir, f"{MANIFEST_NAME} is not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexStoreError(
                f"the index at {index_dir} has format version {version!r}, but this newsbot "
                f"reads version {FORMAT_VERSION}: rebuild it with "
                "`newsbot ingest --rebuild PATH...`"
            )
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise damaged(index_dir, f"{MANIFEST_NAME} lacks a field ({exc})") from None

    def check_model(
        self, index_dir: Path | str, model: str | None = None, dimension: int | None = None
    ) -> None:
        """Raise unless vectors of ``model`` (``dimension`` wide) can be searched here."""
        if model is not None and self.model != model:
            raise IndexStoreError(
                f"the index at {index_dir} was built with model {self.model!r} "
                f"(dimension {self.dimension}), but the configured model is {model!r}"
                f"{f' (dimension {dimension})' if dimension else ''}: set "
                f"NEWSBOT_EMBEDDING_MODEL={self.model} or rebuild with "
                "`newsbot ingest --rebuild PATH...`"
            )
        if dimension is not None and self.dimension != dimension:
            raise IndexStoreError(
                f"the index at {index_dir} holds {self.dimension}-dimensional vectors, but "
                f"model {model or self.model!r} makes {dimension}-dimensional ones: "
                "rebuild with `newsbot ingest --rebuild PATH...`"
            )

    def write(self, index_dir: Path) -> None:
        write_atomically(index_dir / MANIFEST_NAME, json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class NewContent:
    """Articles, their chunks and the chunks' vectors, to append to an index.

    ``sentences`` are each chunk's sentences (:func:`sentences_of`) and
    ``sentence_vectors`` one vector per sentence, in that order.
    """

    articles: Sequence[Article]
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    sentences: Sequence[tuple[Sentence, ...]]
    sentence_vectors: np.ndarray

    @classmethod
    def with_passage_vectors(
        cls, articles: Sequence[Article], chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> NewContent:
        """Content whose sentences take their passage's vector: for indexes built from
        synthetic vectors, without a model (tests, the scaling bench)."""
        sentences = [sentences_of(c.text) for c in chunks]
        counts = [len(row) for row in sentences]
        return cls(articles, chunks, vectors, sentences, np.repeat(vectors, counts, axis=0))


def article_from_row(row: Sequence[Any]) -> Article:
    """An article from (id, title, body, url, source, published ISO text, language, extra),
    the columns both stores keep; ``extra`` as JSON text or already decoded."""
    id_, title, body, url, source, published, language, extra = row
    return Article(
        id=id_,
        title=title,
        body=body,
        url=url,
        source=source,
        published=datetime.fromisoformat(published) if published else None,
        language=language,
        extra=extra if isinstance(extra, dict) else json.loads(extra),
    )


def chunk_from_row(row: Sequence[Any]) -> Chunk:
    """A passage from (article id, position, start, end, text, and its article's title,
    source, url and published ISO text), as both stores select them."""
    article_id, position, start, end, text, title, source, url, published = row
    return Chunk(
        article_id=article_id,
        position=position,
        text=text,
        start=start,
        end=end,
        title=title,
        source=source,
        url=url,
        published=datetime.fromisoformat(published) if published else None,
    )


def damaged(index_dir: Path, what: str) -> IndexStoreError:
    return IndexStoreError(
        f"the index at {index_dir} is damaged: {what}. Nothing was changed; rebuild it with "
        "`newsbot ingest --rebuild PATH...`"
    )


class Lexicon(Protocol):
    """BM25 over a store's passages, as the search and the answer use it (``lexical.py``)."""

    def __len__(self) -> int: ...
    def __contains__(self, term: object) -> bool: ...
    def idf(self, term: str) -> float: ...
    def weight(self, term: str) -> float: ...
    def document_frequency(self, term: str) -> int: ...
    def query_terms(self, text: str) -> tuple[str, ...]: ...
    def query(self, text: str) -> QueryScores: ...
    def uncorrected(self) -> Lexicon: ...
    def warm_up(self) -> None: ...


class Sentences(Protocol):
    """Each passage's sentences, their terms and vectors, looked up by row (``sentences.py``)."""

    def sentences(self, row: int) -> tuple[Sentence, ...]: ...
    def vectors(self, row: int) -> np.ndarray: ...
    def similarities(self, row: int, query: np.ndarray) -> np.ndarray: ...
    def best_similarities(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray: ...
    def best_sentence_scores(
        self, rows: Sequence[int], weights: dict[str, float]
    ) -> np.ndarray: ...


class Store(Protocol):
    """One opened, consistent generation of a store: what the search, the answers and the
    bot read. Rows are numbered 0 … ``len(store)``-1 within the generation."""

    manifest: Manifest

    @property
    def generation(self) -> str: ...
    @property
    def lexical(self) -> Lexicon: ...
    @property
    def sentences(self) -> Sentences: ...
    def __len__(self) -> int: ...
    def nearest(
        self, query: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...
    def vectors(self, rows: Sequence[int]) -> np.ndarray: ...
    def chunks(self, rows: Sequence[int]) -> list[Chunk]: ...
    def all_chunks(self) -> Iterator[Chunk]: ...
    def row_metadata(self) -> RowMetadata: ...
    def rows_of(self, article_ids: Iterable[str]) -> np.ndarray: ...
    def sources(self) -> tuple[str, ...]: ...
    def has_article(self, article_id: str) -> bool: ...
    def article_ids(self) -> set[str]: ...
    def article(self, article_id: str) -> Article | None: ...
    def articles(self) -> Iterator[Article]: ...
    def article_with_text(self, fingerprint: str) -> str | None: ...
    def articles_per_feed(self) -> dict[str, int]: ...
    def article_ages(self) -> list[tuple[str, str | None, str]]: ...
    def ingested_since(self, moment: str | None) -> tuple[list[str], str | None]: ...
    def newest(self, limit: int, since: datetime | None = None) -> list[Article]: ...
    def date_range(self) -> tuple[str | None, str | None]: ...
    def size_on_disk(self) -> int: ...
    def close(self) -> None: ...


class StoreBackend(Protocol):
    """Where a store lives: opens its live generation, and commits the next one.

    One writer at a time holds :meth:`writing`; a commit is atomic (readers and a crashed
    writer see the previous generation, whole); :meth:`signature` changes when a newer
    generation is committed, cheaply enough to be asked every few seconds. A :meth:`lease`
    is held by at most one process at a time, never waited for: true if this one got it
    (so of several bots sharing a store, one refreshes the feeds and the rest skip).
    """

    kind: str
    description: str

    def exists(self) -> bool: ...
    def open(self, *, model: str | None = None, dimension: int | None = None) -> Store: ...
    def signature(self) -> object: ...
    def manifest(self) -> Manifest | None: ...
    def writing(self, timeout: float = 0) -> AbstractContextManager[None]: ...
    def lease(self, name: str) -> AbstractContextManager[bool]: ...
    def bulk_load(self) -> AbstractContextManager[None]: ...
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
    ) -> Manifest: ...
    def close(self) -> None: ...
