"""Dense passage search with a per-article cap, so one article cannot crowd out the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunking import Chunk
from .embedding import Embedder
from .index import FaissIndex


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage and how well it matched (cosine similarity, -1..1)."""

    chunk: Chunk
    score: float
    row: int


class Searcher:
    """Finds the passages nearest to a question in one opened index."""

    def __init__(
        self, index: FaissIndex, embedder: Embedder, *, max_chunks_per_article: int = 2
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.max_chunks_per_article = max_chunks_per_article

    def search(self, question: str, k: int) -> list[Hit]:
        return self.search_vector(self.embedder.embed_query(question), k)

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The best ``k`` passages, at most ``max_chunks_per_article`` from any one article."""
        fetch = k * 4
        while True:
            found = self.index.search(vector, fetch)
            chunks = self.index.chunks([row for row, _ in found])
            hits = _cap_per_article(
                [Hit(c, s, r) for c, (r, s) in zip(chunks, found, strict=True)],
                self.max_chunks_per_article,
            )
            if len(hits) >= k or len(found) >= len(self.index):
                return hits[:k]
            fetch *= 4


def _cap_per_article(hits: list[Hit], cap: int) -> list[Hit]:
    taken: dict[str, int] = {}
    kept = []
    for hit in hits:
        n = taken.get(hit.chunk.article_id, 0)
        if n < cap:
            taken[hit.chunk.article_id] = n + 1
            kept.append(hit)
    return kept
