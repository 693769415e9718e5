"""The one question-answering service: the CLI, the terminal chat and the bot all use it."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corpus.articles import Article
from corpus.errors import NewsbotError, QuestionError

from .answer import Answer, Citation, Headlines, compose_answer, within_ranges
from .digest import compose_digest, topic_of, topic_terms
from .embedding import Embedder, QueryVectorCache, load_embedder
from .ingest import IngestReport, ingest
from .question import QueryPlan
from .search import Hit, SearchConfig, Searcher
from .selection import AnswerModel, Vocabulary
from .settings import RetrievalSettings
from .sources import SourceStore
from .store import open_backend
from .store.base import Manifest, Store, StoreBackend
from .text import warm_up
from .timeframe import TimeRange, warm_up_dates
from .writing import AnswerWriter, ChatClient, CitationChecker

if TYPE_CHECKING:
    from .refresh import RefreshReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexStats:
    """What is indexed, as `newsbot stats` and the bot's /stats show it."""

    index_dir: Path
    generation: str
    articles: int
    chunks: int
    model: str
    dimension: int
    size_bytes: int
    oldest: str | None
    newest: str | None
    sources: tuple[SourceStatus, ...] = ()
    last_refresh: str | None = None
    # Where the index lives: the directory, or the PostgreSQL database (never its password).
    store: str = ""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One web source as `newsbot stats` shows it."""

    url: str
    kind: str
    articles: int  # stored now
    last_ok: str | None
    last_error: str | None
    last_error_at: str | None


class NewsAssistant:
    """Built once from settings; loads the model and the index on first use, then keeps them.

    Thread-safe: the bot calls it from worker threads so inference never blocks its loop.
    When another process commits a newer index, the next question after at most
    ``index_reload_seconds`` swaps it in; questions already running finish on the old one,
    which is closed when the last of them lets go of it.
    """

    def __init__(
        self,
        settings: RetrievalSettings,
        *,
        embedder: Embedder | None = None,
        clock: Callable[[], datetime] | None = None,
        writer: AnswerWriter | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._clock = clock
        self._query_vectors: QueryVectorCache | None = None
        self._answer_model: AnswerModel | None = None
        self._writer = writer
        self._index: Store | None = None
        self._backend: StoreBackend | None = None
        self._lock = threading.RLock()
        self._reloading = threading.Lock()  # one thread opens a newer index, the rest go on
        self._manifest_seen: object = None
        self._checked_at = -math.inf

    # -- the parts, loaded lazily -----------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings)
            return self._embedder

    @property
    def answer_model(self) -> AnswerModel:
        """Which sentences answer and when to decline (fitted; see ``selection.py``)."""
        with self._lock:
            if self._answer_model is None:
                self._answer_model = AnswerModel.load(self.settings.answer_model)
            return self._answer_model

    @property
    def writer(self) -> AnswerWriter | None:
        """The optional LLM step (``writing/``): the one given, else one built from the
        settings; None unless ``NEWSBOT_LLM_BASE_URL`` is set."""
        settings = self.settings
        if self._writer is None and not settings.llm_base_url:
            return None
        with self._lock:
            if self._writer is None:
                key = settings.llm_api_key
                client = ChatClient(
                    settings.llm_base_url,
                    settings.llm_model,
                    api_key=key.get_secret_value() if key else None,
                    timeout=settings.llm_timeout,
                    max_tokens=settings.llm_max_tokens,
                    temperature=settings.llm_temperature,
                )
                self._writer = AnswerWriter(
                    client,
                    CitationChecker(self.embedder),
                    max_sentences=settings.max_answer_sentences,
                    max_passages=settings.llm_passages,
                )
            return self._writer

    @property
    def query_vectors(self) -> QueryVectorCache:
        """Vectors of recent questions, kept across index swaps (they depend on the model)."""
        with self._lock:
            if self._query_vectors is None:
                self._query_vectors = QueryVectorCache(
                    self.embedder, size=self.settings.query_cache_size
                )
            return self._query_vectors

    @property
    def backend(self) -> StoreBackend:
        """Where the index lives (``NEWSBOT_STORE``): opened once, shared by every question."""
        with self._lock:
            if self._backend is None:
                self._backend = open_backend(self.settings)
            return self._backend

    @property
    def index(self) -> Store:
        """The live index, checked against the configured model (name and dimension).

        Also where a newer generation on disk is noticed and swapped in (see the class).
        """
        with self._lock:
            if self._index is None:
                signature = self.backend.signature()
                self._index = self._open_checked()
                self._manifest_seen, self._checked_at = signature, time.monotonic()
                return self._index
            index = self._index
        self._reload_if_newer()
        return self._index or index

    def _open_checked(self) -> Store:
        # The model's name is checked before paying for loading the model, its width after.
        store = self.backend.open(model=self.settings.embedding_model)
        try:
            store.manifest.check_model(self.backend.description, dimension=self.embedder.dimension)
        except NewsbotError:
            store.close()
            raise
        return store

    def _reload_if_newer(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.settings.index_reload_seconds:
            return
        if not self._reloading.acquire(blocking=False):
            return  # another thread is opening it; keep answering from the current one
        try:
            self._checked_at = now
            signature = self.backend.signature()
            if signature is None or signature == self._manifest_seen:
                return
            self._manifest_seen = signature
            try:
                fresh = self._open_checked()
            except NewsbotError as exc:
                logger.warning("Keeping the index in use; the newer one cannot be opened: %s", exc)
                return
            with self._lock:
                old, self._index = self._index, fresh
            if old is not None and old.generation != fresh.generation:
                logger.info(
                    "Switched to index %s: %d articles, %d passages",
                    fresh.generation,
                    fresh.manifest.article_count,
                    fresh.manifest.chunk_count,
                )
            # ``old`` is not closed here: a question may still be searching it. Its files
            # and its hold on the generation go with the last reference, and with that the
            # generation itself, unless another process still reads it (index.py).
        finally:
            self._reloading.release()

    def open_index(self) -> Store:
        """The index without loading the model (for stats and export)."""
        return self.backend.open()

    def has_index(self) -> bool:
        return self.backend.exists()

    def manifest_now(self) -> Manifest | None:
        """What the live index holds now (None if there is none)."""
        return self.backend.manifest()

    def load(self) -> None:
        """Load models, index and word lists now rather than on the first question."""
        index = self.index
        _ = self.answer_model
        warm_up()
        warm_up_dates()
        index.lexical.warm_up()

    # -- questions ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time in the askers' time zone (``NEWSBOT_TIMEZONE``); tests and the
        evaluation set their own clock."""
        zone = self.settings.zone()
        return self._clock().astimezone(zone) if self._clock else datetime.now(zone)

    def searcher(self) -> Searcher:
        """A searcher over the live index (cheap: the index and model are shared)."""
        return Searcher(
            self.index,
            self.embedder,
            SearchConfig.from_settings(self.settings),
            query_vectors=self.query_vectors,
            clock=self.now,
        )

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        return self.searcher().search(self._checked(question), k or self.settings.top_k)

    def search_many(self, questions: Sequence[str], k: int | None = None) -> list[list[Hit]]:
        """:meth:`search` for several questions at once: their vectors come in one batch."""
        checked = [self._checked(q) for q in questions]
        return self.searcher().search_many(checked, k or self.settings.top_k)

    def ask(
        self,
        question: str,
        context: str | None = None,
        *,
        on_text: Callable[[str], None] | None = None,
        write: bool = True,
    ) -> Answer:
        """Answer ``question``; ``context`` is the previous question of the conversation.

        With an LLM configured (and ``write``), the answer is rewritten by it over the same
        passages and citation-checked, or stays extractive (``writing/``); ``on_text`` then
        receives the model's reply as it streams in, unchecked, for a draft to show.
        """
        question = self._checked(question)
        query = f"{context}\n{question}" if context else question
        searcher = self.searcher()  # one generation for the whole question, even mid-swap
        hits = searcher.search(query, self.settings.top_k)
        searched = time.perf_counter()
        answer = self.compose(
            question, hits, context=context, index=searcher.index, plan=searcher.plans[0]
        )
        done = time.perf_counter()
        answer = replace(
            answer, timings={**searcher.timings, "compose_ms": (done - searched) * 1000}
        )
        writer = self.writer if write else None
        if writer is None:
            return answer
        return writer.write(
            answer, hits, context=context, on_text=on_text, vocabulary=searcher.index.lexical
        )

    def news_on(self, topic: str, article_ids: Iterable[str], *, most: int = 5) -> Answer:
        """What the articles ``article_ids`` say about ``topic``, by the rules of a broad
        question (``digest.py``): declined when none of them is about it (a followed
        topic's new articles)."""
        topic = self._checked(topic)
        searcher = self.searcher()
        rows = searcher.index.rows_of(article_ids)
        hits = searcher.search(topic, self.settings.top_k, within=rows) if len(rows) else []
        about = topic_terms(topic, searcher.index.lexical)
        return compose_digest(topic, about, hits, most=most, newest_first=True)

    def ingested_since(self, moment: str | None) -> tuple[list[str], str | None]:
        """Articles stored since ``moment`` by any writer (this process, `newsbot refresh`
        from cron, an ingest), as the live index sees them; see ``Store``."""
        return self.index.ingested_since(moment)

    def latest(
        self, topic: str | None = None, *, since: datetime | None = None, most: int = 10
    ) -> Headlines:
        """The newest articles, newest first: on ``topic``, the relevant ones among those
        published since ``since`` (default: the last ``latest_days``), each with the
        sentence that makes it relevant; otherwise simply the newest since ``since``."""
        if topic is None:
            with self._reading() as index:
                articles = index.newest(most, since)
            items = [
                Citation(n, a.id, a.title, a.source, a.url, a.published, "", 0.0)
                for n, a in enumerate(articles, start=1)
            ]
            return Headlines(None, since, tuple(items))
        topic = self._checked(topic)
        now = self.now()
        since = since or now - timedelta(days=self.settings.latest_days)
        window = TimeRange(since, now + timedelta(seconds=1), "", whole_days=False)
        searcher = self.searcher()
        rows = np.flatnonzero(searcher.index.row_metadata().published_in([window]))
        hits = searcher.search(topic, max(self.settings.top_k, most), within=rows)
        about = topic_terms(topic, searcher.index.lexical)
        answer = compose_digest(topic, about, hits, most=most, newest_first=True)
        return Headlines(topic, since, answer.citations)

    def compose(
        self,
        question: str,
        hits: list[Hit],
        *,
        context: str | None = None,
        index: Store | None = None,
        vocabulary: Vocabulary | None = None,
        max_sentences: int | None = None,
        plan: QueryPlan | None = None,
    ) -> Answer:
        """The cited answer (or the decision to abstain) from already retrieved passages.

        ``index`` is the one the hits came from (default: the live one); ``vocabulary``
        may stand in for its BM25 side (the evaluation's ablation). ``plan``, how the
        search read the question, brings broad questions their digest and a decline the
        times it looked in.
        """
        lexical = vocabulary or (index or self.index).lexical
        answer = compose_answer(
            question,
            hits,
            context=context,
            vocabulary=lexical,
            model=self.answer_model,
            max_sentences=max_sentences or self.settings.max_answer_sentences,
        )
        if plan is None:
            return answer
        newest = max(p.recency for p in plan.parts) >= 1.0
        if (answer.abstained or newest) and not context:
            # A broad question ("what happened in Gaza yesterday?", "latest on the Fed")
            # asks for no one fact: the articles about its topic answer it (digest.py).
            # With no topic, only a time makes it a question ("what happened yesterday?").
            topic = topic_of(question, lexical)
            if topic is not None and (topic.all or plan.ranges):
                answer = compose_digest(
                    question,
                    topic,
                    hits,
                    most=max_sentences or self.settings.max_answer_sentences,
                    newest_first=any(p.recency for p in plan.parts),
                )
        return within_ranges(answer, plan.ranges)

    def _checked(self, question: str) -> str:
        question = " ".join(question.split())
        if not question:
            raise QuestionError(
                'the question is empty: ask something, e.g. "Who met whom in Lima?"'
            )
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"the question is {len(question):,} characters long; the limit is {limit:,}. "
                "Ask it in fewer words."
            )
        return question

    # -- the index ------------------------------------------------------------------------

    def ingest(
        self, paths: Iterable[str | Path], *, rebuild: bool = False, progress: bool = False
    ) -> IngestReport:
        report = ingest(
            paths,
            self.settings,
            self.embedder,
            rebuild=rebuild,
            progress=progress,
            backend=self.backend,
        )
        self._checked_at = -math.inf  # look at the manifest on the next question
        return report

    def refresh(
        self,
        sources: Sequence[str],
        *,
        expire: bool = True,
        progress: Callable[[], None] | None = None,
    ) -> RefreshReport:
        """One round of live news over ``sources`` (``refresh.py``). Blocking."""
        from .refresh import refresh

        report = refresh(
            sources,
            self.settings,
            self.embedder,
            expire=expire,
            progress=progress,
            backend=self.backend,
        )
        self._checked_at = -math.inf  # look at the manifest on the next question
        return report

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Store]:
        """The live index (a newer one swapped in first, if there is one), or, before the
        first question has loaded it, the one on disk opened for this alone: reading what
        is stored needs no model."""
        if self._index is not None:
            self._reload_if_newer()
        loaded = self._index
        index = loaded or self.open_index()
        try:
            yield index
        finally:
            if index is not loaded:
                index.close()

    def stats(self) -> IndexStats:
        with self._reading() as index:
            oldest, newest = index.date_range()
            m = index.manifest
            return IndexStats(
                index_dir=self.settings.index_dir,
                generation=m.generation,
                articles=m.article_count,
                chunks=m.chunk_count,
                model=m.model,
                dimension=m.dimension,
                size_bytes=index.size_on_disk(),
                oldest=oldest,
                newest=newest,
                sources=self._source_status(index),
                last_refresh=SourceStore(self.settings.index_dir).last_round(),
                store=self.backend.description,
            )

    def _source_status(self, index: Store) -> tuple[SourceStatus, ...]:
        stored = index.articles_per_feed()
        return tuple(
            SourceStatus(
                s.url, s.kind, stored.get(s.url, 0), s.last_ok, s.last_error, s.last_error_at
            )
            for s in SourceStore(self.settings.index_dir).sources()
        )

    def export(self) -> Iterator[Article]:
        index = self.open_index()
        try:
            yield from index.articles()
        finally:
            index.close()

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None
            if self._backend is not None:
                self._backend.close()
                self._backend = None
