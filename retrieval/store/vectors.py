"""Which FAISS index holds the vectors: exact while the index is small, IVF once it is large.

Below ``approximate_from`` vectors every search is exact (``IndexFlatIP``): at 20,000
vectors that is a few milliseconds on one core. From there on the vectors live in an
inverted-file index (``IndexIVFScalarQuantizer``, float16 codes, inner product): k-means
splits them into ``cells_factor·√n`` cells and a query scans only the ``probes`` cells
nearest to it. Float16 halves the memory of float32 (768 bytes a vector instead of 1,536)
and keeps every vector recoverable to within about 1e-4, so re-scoring with stored vectors
stays exact in effect, and re-encoding them is lossless, which makes a rebuild from the
index itself safe.

Measured with ``bench/scaling.py``'s data (real MultiHop-RAG chunk vectors replicated with
noise, real dev questions, recall@10 against exact search): 32 probes keep recall at
0.985–0.991 from 25,000 to 1,000,000 vectors, in about a millisecond at 1,000,000. At
100,000 vectors, IVF-Flat finds the same neighbours with twice the memory (156 MB against
80 MB) and slower scans; 8-bit codes (41 MB) stop improving at recall 0.988 and return
vectors only to within 1e-3; HNSW (32 links) took 4× as long to build, used 181 MB and
reached recall 0.979 at 0.43 ms against IVF's 0.985 at 0.19 ms. 2·√n cells instead of
4·√n give the same recall per probe and build in half the time (125 s against 270 s at
1,000,000 on a busy 2-core machine), for 0.2 ms more per query.

The choice is made at commit time, from the index alone (its type and cell count are in the
file): a flat index that reaches the threshold is rebuilt as IVF, and an IVF index is
rebuilt with more cells once it has grown fourfold since its cells were trained (its cell
count is then half what its size calls for), so the cells keep fitting the data.

FAISS's OpenMP threads are per calling thread. A single query is searched on one thread:
on 2 cores a second OpenMP thread only adds hand-off cost and waits on whatever else runs
(exact search of 1,000,000 vectors: 155 ms on one thread, 536 ms on two, on a busy
machine). Training and adding batches keep every core.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import faiss
import numpy as np

if TYPE_CHECKING:
    from ..settings import RetrievalSettings

__all__ = ["VectorIndexConfig", "describe_index", "extend_index", "nearest", "stored_vectors"]

#: Training points per cell: k-means needs ~40 (FAISS warns below 39); more only slows it.
_TRAINING_POINTS_PER_CELL = 64
_MIN_POINTS_PER_CELL = 39
#: k-means iterations; recall measured with 10 equals that with FAISS's default 25.
_KMEANS_ITERATIONS = 10
#: Rebuild once the index holds this many times the vectors its cells were trained for.
_REBUILD_GROWTH = 4


@dataclass(frozen=True, slots=True)
class VectorIndexConfig:
    """When the index turns approximate and how; defaults measured in ``bench/scaling.py``."""

    approximate_from: int = 20_000
    cells_factor: float = 2.0
    probes: int = 32

    @classmethod
    def from_settings(cls, settings: RetrievalSettings) -> VectorIndexConfig:
        return cls(
            approximate_from=settings.approximate_index_from,
            cells_factor=settings.ivf_cells_factor,
            probes=settings.ivf_probes,
        )

    def cells(self, n: int) -> int:
        """IVF cells for ``n`` vectors: ``cells_factor·√n``, but no more than k-means can train."""
        return max(1, min(round(self.cells_factor * math.sqrt(n)), n // _MIN_POINTS_PER_CELL))


def extend_index(index: faiss.Index, vectors: np.ndarray, config: VectorIndexConfig) -> faiss.Index:
    """``index`` (changed in place) plus ``vectors``, or a rebuilt index when one is due.

    A new index starts as an empty ``IndexFlatIP``; it is rebuilt as IVF as soon as it
    reaches the threshold, even within the one call.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, index.d)
    total = index.ntotal + len(vectors)
    if _due_for_rebuild(index, total, config):
        everything = np.empty((total, index.d), dtype=np.float32)
        if index.ntotal:
            index.reconstruct_n(0, index.ntotal, everything[: index.ntotal])
        everything[index.ntotal :] = vectors
        return _build(everything, config)
    if len(vectors):
        index.add(vectors)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(config.probes, ivf.nlist)  # a changed setting applies from now on
    return index


#: Up to this many allowed rows, a filtered search is exact (as PostgreSQL's, which reads
#: them by day: ``EXACT_SCAN_UP_TO``); beyond, an IVF index scans 4× its cells with a selector.
EXACT_FILTERED_UP_TO = 150_000
#: A flat index copies the allowed rows' vectors out and scores them, up to this many (a
#: few ms at 50,000); beyond, it searches with a selector, exact all the same.
_COPIED_UP_TO = 50_000
#: An IVF index rebuilds a stored vector from its cell in ~3 µs; scanning every cell with
#: a selector costs ~7 ns a stored vector and ~0.7 µs an allowed one, and scores the same
#: vectors. So the exact search scans once the allowed rows are more than the index's
#: size / this (at 1M passages: 33,455 rows 124 → 22 ms, the same top 200).
_SCAN_PER_REBUILT_ROW = 400


def nearest(
    index: faiss.Index, query: np.ndarray, k: int, among: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and rows of the ``k`` vectors nearest ``query`` (one vector), on one thread;
    only among the rows ``among`` if given (a date range, new articles)."""
    query = np.ascontiguousarray(query, np.float32).reshape(1, -1)
    ivf = faiss.try_extract_index_ivf(index)
    allowed = len(among) if among is not None else index.ntotal
    exact = allowed <= EXACT_FILTERED_UP_TO
    if ivf is None:
        copied = allowed <= _COPIED_UP_TO
    else:
        copied = exact and allowed * _SCAN_PER_REBUILT_ROW <= index.ntotal
    if among is not None and copied:
        scores = stored_vectors(index, among.tolist()) @ query[0]
        top = np.argsort(-scores, kind="stable")[:k]
        padded_rows = np.full(k, -1, np.int64)
        padded_scores = np.full(k, -np.inf, np.float32)
        padded_rows[: len(top)], padded_scores[: len(top)] = among[top], scores[top]
        return padded_scores, padded_rows
    params: faiss.SearchParameters | None = None
    if among is not None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, np.int64))
        # FAISS's stubs know these parameters only as attributes.
        if ivf is not None:
            ivf_params = faiss.SearchParametersIVF()
            # Exact: every cell scanned, so each allowed vector is scored as if rebuilt.
            ivf_params.nprobe = ivf.nlist if exact else min(4 * ivf.nprobe, ivf.nlist)
            params = ivf_params
        else:
            params = faiss.SearchParameters()
        params.sel = selector
    with _threads(1):
        scores, rows = index.search(query, k, params=params)
    return scores[0], rows[0]


def stored_vectors(index: faiss.Index, rows: Sequence[int]) -> np.ndarray:
    """The stored vectors of ``rows`` (float16-rounded when the index is IVF)."""
    if not rows:
        return np.zeros((0, index.d), dtype=np.float32)
    return index.reconstruct_batch(np.asarray(rows, dtype=np.int64))


def describe_index(index: faiss.Index) -> str:
    """A short name of the index and its search parameters, e.g. ``IVF632,SQfp16 nprobe=32``."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return "Flat (exact)"
    return f"IVF{ivf.nlist},SQfp16 nprobe={ivf.nprobe}"


def _due_for_rebuild(index: faiss.Index, total: int, config: VectorIndexConfig) -> bool:
    ivf = faiss.try_extract_index_ivf(index)
    if (ivf is not None) != (total >= config.approximate_from):
        return True  # crossed the threshold (or the setting moved)
    # √ of the growth: the cell count grows with √n.
    return ivf is not None and config.cells(total) >= math.sqrt(_REBUILD_GROWTH) * ivf.nlist


def _build(vectors: np.ndarray, config: VectorIndexConfig) -> faiss.Index:
    n, dimension = vectors.shape
    if n < config.approximate_from:
        flat = faiss.IndexFlatIP(dimension)
        flat.add(vectors)
        return flat
    cells = config.cells(n)
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension),
        dimension,
        cells,
        faiss.ScalarQuantizer.QT_fp16,
        faiss.METRIC_INNER_PRODUCT,
    )
    ivf.cp.niter = _KMEANS_ITERATIONS
    sample = min(n, _TRAINING_POINTS_PER_CELL * cells)
    # A seeded sample, not the first rows: those are the oldest articles, not a fair draw.
    rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
    ivf.train(vectors[rows])
    ivf.add(vectors)
    ivf.make_direct_map()  # row → position, so single rows can be reconstructed
    ivf.nprobe = min(config.probes, cells)
    return ivf


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` OpenMP threads in this thread, then restore them."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
