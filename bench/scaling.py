"""Scaling: vector search, memory and cold start at 10k, 100k and 1M chunks, exact vs. automatic.

    .venv/bin/python -m bench.scaling [--sizes 10000,100000,1000000] [--json PATH] [--quick]

The chunks are SYNTHETIC, built from a real index (the MultiHop-RAG corpus indexed by
newsbot): its articles and passages are replicated under new ids until there are n chunks,
and each copy's vector is the real passage's vector plus Gaussian noise shaped like the
corpus's own covariance (so it varies the way real passages vary), renormalised. A copy has
cosine ≈ 0.86 to its original, about what a real passage has to its nearest real neighbour
(median 0.83): near-duplicates do not make the search artificially easy, and the data keeps
the low-dimensional structure of real embeddings that uniform random vectors lack. The
queries are real MultiHop-RAG dev questions, embedded by the product's embedder.

For every size one index directory is built through the product's own ``commit()`` (SQLite
store, BM25, sentences, vectors), with the vector index the product chooses by itself. Its
twin for exact search (the peer's shape: one ``IndexFlatIP``) shares every file except
``vectors.faiss``, which holds the same vectors flat: exactly what ``commit()`` writes when
``NEWSBOT_APPROXIMATE_INDEX_FROM`` is above n. Measured for both:

- vector build s: building the vector index alone from the n vectors (flat add vs. IVF
  training and add), in this process, on all cores; the product commit's time is reported
  separately (``commit s``: store, BM25, sentences and vectors together);
- query p50/p90 ms: embedding a question (never seen before by this embedder) plus
  ``FaissIndex.search`` for 10 rows, as the product calls it (FAISS on one thread);
- search p50 ms on 1 and 2 FAISS threads: the vector search alone;
- recall@10: share of the exact top 10 found, over all dev questions;
- ask p50 ms: the whole ``NewsAssistant.ask`` (hybrid search, rerank, cited answer), warm;
- first answer s, serving RSS MB: a fresh ``newsbot ask QUESTION --index DIR`` process,
  wall time from start to exit and its peak resident memory (page cache warm: one
  untimed run first).

Everything generated lives under ``$NEWSBOT_BENCH_DIR/scaling`` (default
``/tmp/newsbot-bench/scaling``); built index directories are reused by later runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

from corpus.articles import Article
from corpus.errors import NewsbotError
from retrieval.assistant import NewsAssistant
from retrieval.chunking import Chunk
from retrieval.embedding import Embedder
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import (
    MANIFEST_NAME,
    VECTORS_NAME,
    FaissIndex,
    Manifest,
    NewContent,
    commit,
)
from retrieval.store.faiss_index import locked as index_locked
from retrieval.store.vectors import VectorIndexConfig, describe_index, extend_index

__all__ = ["main", "run"]

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "eval" / "multihop-rag"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
#: Noise norm relative to the corpus's spread; gives cosine ≈ 0.86 between copy and original.
NOISE = 0.6
SEED = 0
K = 10
#: Questions per size whose embedding is timed, and per (size, index) whose ``ask`` is timed.
TIMED, TIMED_QUICK = 100, 20
ASKED, ASKED_QUICK = 20, 5
FRESH_RUNS, FRESH_RUNS_QUICK = 3, 1
#: Articles indexed for the source index when none is given (quick: a small one).
QUICK_SOURCE_ARTICLES = 100


def run(sizes: list[int], *, quick: bool) -> list[dict[str, Any]]:
    """Measure exact flat vs. the automatic index at each size; one row per (size, index)."""
    work = _work_dir()
    settings = RetrievalSettings(index_dir=work / "unused")
    embedder = NewsAssistant(settings).embedder  # whatever the product's factory builds
    source = _Source.load(_source_index(work, quick, embedder))
    questions = [json.loads(line)["query"] for line in _lines(DATA / "dev-queries.jsonl")]
    # Recall is measured on every question; embed_documents does not touch a query cache.
    question_vectors = embedder.embed_documents(questions)
    embedder.embed_query("warm-up: load whatever loads on first use")
    timed, asked = (TIMED_QUICK, ASKED_QUICK) if quick else (TIMED, ASKED)
    fresh_runs = FRESH_RUNS_QUICK if quick else FRESH_RUNS
    pool = _QuestionPool(len(questions))
    rows: list[dict[str, Any]] = []
    for n in sizes:
        _say(f"scaling: {n:,} chunks")
        auto_dir, commit_seconds, built_now = _product_index(work, source, n, settings)
        vectors = source.synthetic_vectors(n)
        likeness = source.likeness(vectors)
        flat, flat_seconds = _timed(extend_index, _empty(vectors), vectors, _EXACT)
        auto, auto_seconds = _timed(
            extend_index, _empty(vectors), vectors, VectorIndexConfig.from_settings(settings)
        )
        del vectors
        flat_dir = _flat_twin(auto_dir, work / f"n{n}" / "flat", flat)
        with _threads(os.cpu_count() or 1):
            _, exact = flat.search(question_vectors, K)
        timed_rows = pool.take(timed)
        embed_ms = _embedding_ms(embedder, [questions[i] for i in timed_rows])
        for kind, directory, index, build_seconds in (
            ("exact flat", flat_dir, flat, flat_seconds),
            ("auto", auto_dir, auto, auto_seconds),
        ):
            _say(f"scaling: {n:,} chunks, {kind}")
            vectors_file = directory / _generation(directory) / VECTORS_NAME
            row: dict[str, Any] = {
                "chunks": n,
                "vectors": (
                    f"synthetic: {source.size:,} real ×{n / source.size:.1f} + noise "
                    f"(cosine {likeness:.2f} to the real one)"
                ),
                "index": kind if kind != "auto" else f"auto: {describe_index(index)}",
                "embedder": type(embedder).__name__,
                "vector build s": round(build_seconds, 2),
                "commit s": round(commit_seconds, 1) if kind == "auto" else None,
                "commit timed": "this run" if built_now else "earlier run (index reused)",
                "vectors MB": round(vectors_file.stat().st_size / 1e6),
            }
            row |= _warm_measurements(
                directory,
                embedder,
                index,
                question_vectors,
                exact,
                (timed_rows, embed_ms),
                [questions[i] for i in pool.take(asked)],
            )
            row |= _fresh_process(directory, questions[0], fresh_runs)
            rows.append(row)
            _say("  " + ", ".join(f"{k} {v}" for k, v in row.items()))
        del flat, auto
    return rows


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    """A real index: its articles, chunks (row order) and vectors, to replicate."""

    directory: Path
    manifest: Manifest
    articles: dict[str, Article]
    chunks: list[Chunk]
    vectors: np.ndarray

    @classmethod
    def load(cls, directory: Path) -> _Source:
        index = FaissIndex.open(directory)
        try:
            return cls(
                directory,
                index.manifest,
                {a.id: a for a in index.articles()},
                list(index.all_chunks()),
                index.vectors(list(range(len(index)))),
            )
        finally:
            index.close()

    @property
    def size(self) -> int:
        return len(self.chunks)

    def synthetic_vectors(self, n: int) -> np.ndarray:
        """Row i: real row ``i mod size`` plus covariance-shaped noise; the same for every n."""
        real = self.vectors.astype(np.float64)
        covariance = np.cov(real - real.mean(axis=0), rowvar=False)
        shape = np.linalg.cholesky(covariance + 1e-6 * np.eye(len(covariance))).T
        scale = NOISE / np.sqrt(np.trace(covariance))
        out = np.empty((n, real.shape[1]), dtype=np.float32)
        block = 65_536
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            # One generator per block, so the first 100k vectors of 1M are the 100k vectors.
            rng = np.random.default_rng([SEED, start // block])
            noise = rng.standard_normal((len(rows), len(covariance))) @ shape
            v = real[rows % self.size] + scale * noise
            out[rows] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    def likeness(self, synthetic: np.ndarray) -> float:
        """Median cosine between a synthetic vector and the real one it was made from."""
        rows = np.arange(min(len(synthetic), 20_000))
        return float(np.median(np.sum(synthetic[rows] * self.vectors[rows % self.size], axis=1)))

    def replicated(self, n: int) -> tuple[list[Article], list[Chunk]]:
        """``n`` chunks: the real ones over and over, each round under new article ids."""
        articles: dict[str, Article] = {}
        chunks = []
        for i in range(n):
            round_, row = divmod(i, self.size)
            chunk = self.chunks[row]
            article_id = chunk.article_id if round_ == 0 else f"{chunk.article_id}~{round_}"
            if article_id not in articles:
                articles[article_id] = replace(self.articles[chunk.article_id], id=article_id)
            chunks.append(replace(chunk, article_id=article_id))
        return list(articles.values()), chunks


def _source_index(work: Path, quick: bool, embedder: Embedder) -> Path:
    """``$NEWSBOT_BENCH_SOURCE_INDEX``, else a newsbot index of the corpus built once here."""
    given = os.environ.get("NEWSBOT_BENCH_SOURCE_INDEX")
    if given:
        return Path(given)
    directory = work / ("source-quick" if quick else "source")
    if (directory / MANIFEST_NAME).exists():
        return directory
    corpus = DATA / "corpus.jsonl"
    if quick:
        lines = _lines(corpus)[:QUICK_SOURCE_ARTICLES]
        corpus = work / "source-quick.jsonl"
        corpus.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    _say(f"scaling: indexing {corpus} once as the source of the synthetic chunks")
    settings = RetrievalSettings(index_dir=directory)
    NewsAssistant(settings, embedder=embedder).ingest([corpus])
    return directory


def _product_index(
    work: Path, source: _Source, n: int, settings: RetrievalSettings
) -> tuple[Path, float, bool]:
    """The n-chunk index directory built by ``commit()``, the commit's seconds, and whether
    this call built it: one a previous run built from the same source and settings is reused.
    """
    directory = work / f"n{n}" / "auto"
    config = VectorIndexConfig.from_settings(settings)
    key = {
        "source": str(source.directory),
        "fingerprint": source.manifest.corpus_fingerprint,
        "noise": NOISE,
        "seed": SEED,
        "config": [config.approximate_from, config.cells_factor, config.probes],
    }
    marker = directory.parent / "built.json"
    if marker.exists() and (done := json.loads(marker.read_text()))["key"] == key:
        try:
            FaissIndex.open(directory).close()
            return directory, float(done["commit_seconds"]), False
        except NewsbotError:
            pass  # built by another version of newsbot: build it again
    shutil.rmtree(directory.parent, ignore_errors=True)
    directory.mkdir(parents=True)
    articles, chunks = source.replicated(n)
    content = NewContent.with_passage_vectors(articles, chunks, source.synthetic_vectors(n))
    _say(f"scaling: committing {n:,} chunks ({len(articles):,} articles) to {directory}")
    m = source.manifest
    with index_locked(directory):
        started = time.perf_counter()
        commit(
            directory,
            content,
            base=None,
            model=m.model,
            dimension=m.dimension,
            chunk_size=m.chunk_size,
            chunk_overlap=m.chunk_overlap,
            vector_config=config,
        )
        seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"key": key, "commit_seconds": seconds}))
    return directory, seconds, True


def _flat_twin(auto_dir: Path, flat_dir: Path, flat: faiss.Index) -> Path:
    """``auto_dir`` with its vectors flat: the other files hard-linked, not copied."""
    shutil.rmtree(flat_dir, ignore_errors=True)
    generation = _generation(auto_dir)
    shutil.copytree(
        auto_dir / generation,
        flat_dir / generation,
        copy_function=os.link,
        ignore=shutil.ignore_patterns(VECTORS_NAME),
    )
    faiss.write_index(flat, str(flat_dir / generation / VECTORS_NAME))
    shutil.copy2(auto_dir / MANIFEST_NAME, flat_dir / MANIFEST_NAME)
    return flat_dir


# -- the measurements -----------------------------------------------------------------------


class _QuestionPool:
    """Hands out questions no earlier measurement used, so no query cache can answer them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._next = 0

    def take(self, count: int) -> list[int]:
        """The positions of ``count`` unused questions."""
        if self._next + count > self._size:
            raise ValueError(f"only {self._size} dev questions: too few for this many sizes")
        self._next += count
        return list(range(self._next - count, self._next))


def _embedding_ms(embedder: Embedder, questions: Sequence[str]) -> list[float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed_query(question)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _warm_measurements(
    directory: Path,
    embedder: Embedder,
    index: faiss.Index,
    question_vectors: np.ndarray,
    exact: np.ndarray,
    timed: tuple[list[int], list[float]],
    asked_questions: list[str],
) -> dict[str, Any]:
    """Latencies and recall in this process, through the product's ``NewsAssistant``.

    ``timed`` is the questions whose embedding was timed and those times (ms).
    """
    assistant = NewsAssistant(RetrievalSettings(index_dir=directory), embedder=embedder)
    try:
        opened = assistant.index
        found = [[row for row, _ in opened.search(v, K)] for v in question_vectors]
        recall = np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)])
        timed_rows, embed_ms = timed
        search_ms = [_ms(opened.search, v, K) for v in question_vectors[timed_rows]]
        query_ms = [e + s for e, s in zip(embed_ms, search_ms, strict=True)]
        threads = {
            t: _median(_threaded_search_ms(index, question_vectors[:200], t)) for t in (1, 2)
        }
        assistant.ask(asked_questions[0])  # first question: word lists, caches
        ask_ms = [_ms(assistant.ask, q) for q in asked_questions[1:]]
    finally:
        assistant.close()
    return {
        "query p50 ms": round(_median(query_ms), 2),
        "query p90 ms": round(float(np.percentile(query_ms, 90)), 2),
        "embed p50 ms": round(_median(embed_ms), 2),
        "search p50 ms 1 thread": round(threads[1], 3),
        "search p50 ms 2 threads": round(threads[2], 3),
        "recall@10": round(float(recall), 4),
        "ask p50 ms": round(_median(ask_ms), 1),
    }


def _threaded_search_ms(index: faiss.Index, vectors: np.ndarray, count: int) -> list[float]:
    with _threads(count):
        for v in vectors[:10]:
            index.search(v.reshape(1, -1), K)  # warm-up
        return [_ms(index.search, v.reshape(1, -1), K) for v in vectors]


def _fresh_process(directory: Path, question: str, runs: int) -> dict[str, Any]:
    """Wall time and peak RSS of ``newsbot ask`` in a new process (after one untimed run)."""
    newsbot = Path(sys.executable).with_name("newsbot")
    command = [sys.executable, "-c", _LAUNCHER, str(newsbot), "ask", question]
    seconds, rss = [], []
    for attempt in range(runs + 1):
        done = subprocess.run(
            [*command, "--index", str(directory)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"newsbot ask failed: {done.stderr.strip()[-500:]}")
        elapsed, peak_kib = done.stdout.split()
        if attempt:  # the first run warms the page cache
            seconds.append(float(elapsed))
            rss.append(int(peak_kib) / 1024)
    return {
        "first answer s": round(_median(seconds), 2),
        "serving RSS MB": round(_median(rss)),
    }


#: Runs a command and prints its wall time and peak RSS. A child forked from this large
#: process would inherit its resident size into ``ru_maxrss``; one forked from this small
#: launcher reports its own.
_LAUNCHER = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
if code:
    sys.exit(code)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


# -- helpers --------------------------------------------------------------------------------

#: The exact index at every size (the peer's shape).
_EXACT = VectorIndexConfig(approximate_from=2**62)


def _empty(vectors: np.ndarray) -> faiss.Index:
    return faiss.IndexFlatIP(vectors.shape[1])


def _timed(work: Callable[..., T], *args: Any) -> tuple[T, float]:
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started


def _ms(work: Callable[..., object], *args: Any) -> float:
    return _timed(work, *args)[1] * 1000


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads (a per-thread setting) for this thread inside the block."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _generation(directory: Path) -> str:
    return Manifest.read(directory).generation


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _work_dir() -> Path:
    work = Path(os.environ.get("NEWSBOT_BENCH_DIR", "/tmp/newsbot-bench")) / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    return work


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the command ----------------------------------------------------------------------------

_COLUMNS = (
    "chunks",
    "index",
    "vector build s",
    "commit s",
    "vectors MB",
    "query p50 ms",
    "query p90 ms",
    "search p50 ms 1 thread",
    "search p50 ms 2 threads",
    "recall@10",
    "ask p50 ms",
    "first answer s",
    "serving RSS MB",
)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (the columns that matter; the JSON has them all)."""

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in _COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaling", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="chunk counts, comma-separated (default %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer questions and runs")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    load = os.getloadavg()[0]
    rows = run(sizes, quick=args.quick)
    print(
        f"Scaling on SYNTHETIC chunks (real MultiHop-RAG passages replicated, vectors + "
        f"covariance-shaped noise, cosine ≈ 0.86 to the original), real dev questions; "
        f"{os.cpu_count()} cores, load average {load:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end."
    )
    print()
    print(format_table(rows))
    reused = sorted({row["chunks"] for row in rows if row["commit timed"] != "this run"})
    if reused:
        print(
            f"\ncommit s of {', '.join(f'{n:,}' for n in reused)} chunks: from the earlier run "
            "that built the index (reused here)."
        )
    if rows:
        print(f"Embedder: {rows[0]['embedder']} (what NewsAssistant's factory built).")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
