"""Passage search: dense and lexical scores fused, per question part, diversified by article.

The question is embedded once and searched once in FAISS. For each part of it (see
``question.py``) the candidates are those nearest passages and the part's best by BM25; each
gets both scores, min-max normalised and mixed (``dense_weight``), or reciprocal-rank fused.
A part that names publication times ("yesterday", "in November") has only passages
published then as candidates, dense and lexical alike; passages from the outlets it names
are boosted, and so are newer ones when it asks for the latest news (the recency boost,
below). The parts' rankings are then merged, at most ``max_chunks_per_article`` passages per
article, so every part gets its evidence.

Recency: a part that wants the newest news multiplies each passage's score by
``1 + recency_weight · wanted · 0.5 ** (age_days / recency_half_life_days)``, age counted
from the article's publication to now, ``wanted`` 1 for "latest …" and less for "recently"
(``timeframe.recency_wanted``): for "latest" with the defaults (1.0, 7 days), a story from
today counts twice, one from a week ago 1.5 times, one from a month ago 1.05 times.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from .bm25_scores import QueryScores
from .chunking import Chunk
from .embedding import Embedder, QueryVectorCache
from .question import QueryPart, QueryPlan, plan_question, source_matcher
from .sentences import Sentence
from .store.base import Lexicon, RowMetadata, Store
from .timeframe import REPORTED_WITHIN, TimeRange

if TYPE_CHECKING:
    from .settings import RetrievalSettings

__all__ = ["Hit", "SearchConfig", "Searcher"]

_RRF_K = 60
# How deep into each part's ranking the merge looks; enough for k ≤ 100 after the caps.
_MERGE_DEPTH = 200
# No rows and no scores, for a search that is not made.
_NONE = (np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage; ``score`` is its fused rank score.

    ``sentences`` are the passage's sentences as indexed (empty if not known), so the
    answer composer need not split and lemmatise them again. ``similarity`` is the
    question's cosine with the passage and ``sentence_similarity`` with each sentence
    (empty when the search embedded no question).
    """

    chunk: Chunk
    score: float
    row: int
    sentences: tuple[Sentence, ...] = ()
    similarity: float = 0.0
    sentence_similarity: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How to search; the defaults are what the evaluation in the README chose."""

    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    fusion: Literal["weighted", "rrf"] = "weighted"
    dense_weight: float = 0.2
    understand: bool = True
    source_boost: float = 1.0
    recency_weight: float = 1.0
    recency_half_life_days: float = 7.0
    candidates: int = 200
    max_chunks_per_article: int = 3
    rerank: bool = True
    rerank_depth: int = 50
    rerank_weight: float = 1.25
    sentence_similarity_weight: float = 0.5
    # How much the whole question's ranking counts, against 1 for each part it splits into.
    whole_question_weight: float = 0.5

    @classmethod
    def from_settings(cls, settings: RetrievalSettings) -> SearchConfig:
        return cls(
            mode=settings.retrieval_mode,
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
            understand=settings.question_understanding,
            source_boost=settings.source_boost,
            recency_weight=settings.recency_weight,
            recency_half_life_days=settings.recency_half_life_days,
            candidates=settings.search_candidates,
            max_chunks_per_article=settings.max_chunks_per_article,
            rerank=settings.rerank,
        )


@dataclass(frozen=True, slots=True)
class _Nearest:
    """The question's vector and the rows nearest to it, with their cosines."""

    vector: np.ndarray | None
    rows: np.ndarray
    scores: np.ndarray


@dataclass(slots=True)
class _Ranked:
    rows: np.ndarray
    scores: np.ndarray


class _Cosines:
    """The question's cosine with the rows one search looks at: the dense search's own
    scores, and the other rows' from their stored vectors, each read once (a PostgreSQL
    store reads them in one round trip; the merge then reads none)."""

    def __init__(
        self, index: Store, vector: np.ndarray | None, rows: np.ndarray, scores: np.ndarray
    ) -> None:
        self._index = index
        self._vector = vector
        self._known: dict[int, float] = dict(zip(rows.tolist(), scores.tolist(), strict=True))

    def of(self, rows: np.ndarray) -> np.ndarray:
        """Cosines of ``rows`` (zeros when the search embedded no question)."""
        if self._vector is None:
            return np.zeros(len(rows), np.float32)
        wanted = rows.tolist()
        missing = [r for r in dict.fromkeys(wanted) if r not in self._known]
        if missing:
            found = self._index.vectors(missing) @ self._vector
            self._known.update(zip(missing, found.tolist(), strict=True))
        return np.array([self._known[r] for r in wanted], np.float32)


class _Recency:
    """A part's recency boost (module docstring), worked out for the rows asked about."""

    def __init__(self, meta: RowMetadata, now: datetime, config: SearchConfig, wanted: float):
        self._meta, self._now = meta, now
        self._half_life = config.recency_half_life_days
        self._weight = config.recency_weight * wanted
        self.most = 1 + self._weight  # for a passage published now

    def at(self, rows: np.ndarray) -> np.ndarray:
        """``1 + weight · 0.5 ** (age / half-life)`` of each row; 1 for undated rows."""
        decay = np.power(0.5, self._meta.age_days(self._now, rows) / self._half_life)
        return 1 + self._weight * np.nan_to_num(decay, nan=0.0).astype(np.float32)


class _Boost:
    """A part's multiplier of every passage's score: the outlets it names, and its recency
    boost; a :class:`~retrieval.bm25_scores.Boost`."""

    def __init__(
        self,
        meta: RowMetadata,
        sources: Collection[str],
        source_boost: float,
        recency: _Recency | None,
    ) -> None:
        self._meta, self._sources, self._source_boost = meta, sources, source_boost
        self._recency = recency
        self.most = (1 + source_boost if sources else 1.0) * (recency.most if recency else 1.0)

    def at(self, rows: np.ndarray) -> np.ndarray:
        boost = np.ones(len(rows), dtype=np.float32)
        if self._sources:
            boost *= 1 + self._source_boost * self._meta.published_by(self._sources, rows)
        if self._recency is not None:
            boost *= self._recency.at(rows)
        return boost


class Searcher:
    """Finds the passages that best answer a question in one opened index."""

    def __init__(
        self,
        index: Store,
        embedder: Embedder,
        config: SearchConfig | None = None,
        *,
        lexical: Lexicon | None = None,
        query_vectors: QueryVectorCache | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.config = config or SearchConfig()
        # Another BM25 index over the same rows may stand in (the evaluation's ablation).
        self.lexical = lexical if lexical is not None else index.lexical
        self.query_vectors = query_vectors or QueryVectorCache(embedder, size=0)
        # What "now" is when a question says "yesterday"; its time zone is the asker's.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timings: dict[str, float] = {}
        self.plans: list[QueryPlan] = []  # of the last search, one per question

    def plan(self, question: str, now: datetime | None = None) -> QueryPlan:
        if not self.config.understand:
            return QueryPlan(question, (QueryPart(question),))
        return plan_question(question, source_matcher(self.index.sources()), now)

    def search(self, question: str, k: int, *, within: np.ndarray | None = None) -> list[Hit]:
        """The best ``k`` passages for ``question``, best first; only among the rows
        ``within`` (ascending) if given."""
        return self.search_many([question], k, within=within)[0]

    def search_many(
        self, questions: Sequence[str], k: int, *, within: np.ndarray | None = None
    ) -> list[list[Hit]]:
        """:meth:`search` for each question, the questions embedded in one batch.

        ``timings`` covers the whole batch, ``plans`` says how each question was read.
        """
        now = self.clock()
        self.plans = [self.plan(question, now) for question in questions]
        if len(self.index) == 0:
            return [[] for _ in questions]
        allowed = None
        if within is not None:
            allowed = np.zeros(len(self.index), dtype=bool)
            allowed[within] = True
        parts = [self._parts(plan) for plan in self.plans]
        started = time.perf_counter()
        vectors = self._vectors(questions)
        searched = time.perf_counter()
        results = [
            self._search_parts(question_parts, vector, k, now, allowed)
            for question_parts, vector in zip(parts, vectors, strict=True)
        ]
        self.timings = {
            "embed_ms": (searched - started) * 1000,
            "search_ms": (time.perf_counter() - searched) * 1000,
        }
        return results

    def _vectors(self, questions: Sequence[str]) -> list[np.ndarray]:
        """One vector per question, its parts' dense search included.

        Embedding each part as well, and searching FAISS once per part, measured on the dev
        split: MRR@10 +0.002, Hits@10 -0.003, and a warm answer 1.3 ms slower (9.8 against
        8.4 ms p50; README, *Retrieval quality*). The parts differ in what BM25 and the
        boosts make of the same nearest passages. Lexical-only search embeds the question
        too: the answer weighs each sentence's similarity to it.
        """
        return list(self.query_vectors.embed(list(questions)))

    def _parts(self, plan: QueryPlan) -> list[tuple[QueryPart, float]]:
        """What is searched for, with its weight in the merge: each part of the plan, and
        the whole question last if it split.

        The whole question ranks passages that serve several parts at once, but the parts
        say what each piece of evidence is: counting the whole at half a part gave +0.017
        MRR@10 on each half of the dev split (README, *Retrieval quality*).
        """
        parts = [(part, 1.0) for part in plan.parts]
        if len(parts) > 1:
            whole = QueryPart(
                plan.question,
                ranges=plan.ranges if all(p.ranges for p in plan.parts) else (),
                recency=max(p.recency for p in plan.parts),
            )
            parts.append((whole, self.config.whole_question_weight))
        return parts

    def _search_parts(
        self,
        parts: list[tuple[QueryPart, float]],
        vector: np.ndarray | None,
        k: int,
        now: datetime,
        within: np.ndarray | None,
    ) -> list[Hit]:
        """Rank each part, then merge; parts with one text ("both X and Y", one part per
        outlet) share its BM25 scores and differ only in their boosts and times.

        The dense search is made once, among the passages any part may use, on another
        thread while the parts' BM25 scores are added up."""
        meta = self.index.row_metadata()
        # Parts often share their times ("both X and Y", the whole question): each set of
        # ranges is looked up once (with a named year, that is a BM25 pass over every row).
        in_ranges = {
            ranges: self._in_ranges(ranges) for ranges in {p.ranges for p, _ in parts if p.ranges}
        }
        allowed = [_both(within, in_ranges.get(part.ranges)) for part, _ in parts]
        anywhere = None
        if all(a is not None for a in allowed):
            anywhere = np.logical_or.reduce([a for a in allowed if a is not None])
        dense = None
        if vector is not None and self.config.mode != "lexical":
            among = np.flatnonzero(anywhere) if anywhere is not None else None
            dense = _dense_searches().submit(
                self.index.nearest, vector, self.config.candidates, among
            )
        lexical = self._lexical_scores([part.text for part, _ in parts])
        for scores in lexical.values():
            if scores:
                scores.everywhere()  # added up while the dense search runs
        nearest = _Nearest(None, *_NONE) if dense is None else _Nearest(vector, *dense.result())
        cosines = _Cosines(self.index, vector, nearest.rows, nearest.scores)
        pending = []
        for (part, weight), part_allowed in zip(parts, allowed, strict=True):
            scores = lexical[part.text]
            dense_rows = nearest.rows
            if part_allowed is not None:
                dense_rows = nearest.rows[part_allowed[nearest.rows]]
            part_recency = _Recency(meta, now, self.config, part.recency) if part.recency else None
            boost = self._boost(part, part_recency)
            candidates = self._candidates(dense_rows, scores, boost, part_allowed)
            pending.append((part, weight, candidates, scores, boost, part_recency))
        # What the parts read from the store, read for all of them at once: their
        # candidates' vectors, then their heads' sentences (one round trip each in
        # PostgreSQL, instead of one per part).
        if pending and nearest.vector is not None:
            cosines.of(np.concatenate([candidates for _, _, candidates, *_ in pending]))
        rankings = [
            (self._rank(candidates, scores, boost, cosines), weight)
            for _, weight, candidates, scores, boost, _ in pending
        ]
        if self.config.rerank:
            similar = self._best_similarities([ranked for ranked, _ in rankings], nearest.vector)
            rankings = [
                (self._rerank(part, ranked, similar, recency), weight)
                for (ranked, weight), (part, *_, recency) in zip(rankings, pending, strict=True)
            ]
        return self._merge(rankings, k, vector, cosines)

    def _lexical_scores(self, texts: list[str]) -> dict[str, QueryScores | None]:
        """Each distinct text's BM25 scores (None in dense mode).

        A text whose terms are exactly all the others' together (the whole question, split
        into clauses: 351 of the 352 split MultiHop-RAG dev questions) is scored as their
        sum: at 1M passages that saves adding ~1.2M postings, ~3.7 ms.
        """
        distinct = list(dict.fromkeys(texts))
        if self.config.mode == "dense":
            return dict.fromkeys(distinct)
        whole = None
        if len(distinct) > 2:
            words = {text: Counter(self.lexical.query_terms(text)) for text in distinct}
            whole = next(
                (
                    text
                    for text in distinct
                    if words[text] == sum((words[t] for t in distinct if t != text), Counter())
                ),
                None,
            )
        clauses = {text: self.lexical.query(text) for text in distinct if text != whole}
        found: dict[str, QueryScores | None] = dict(clauses)
        if whole is not None:
            found[whole] = QueryScores.summed(list(clauses.values()))
        return found

    def _in_ranges(self, ranges: tuple[TimeRange, ...]) -> np.ndarray:
        """Rows of articles published in one of ``ranges``, or naming the year or month
        one of them names (``TimeRange``)."""
        meta = self.index.row_metadata()
        inside = meta.published_in(ranges)
        naming = np.zeros(len(inside), dtype=bool)
        for r in ranges:
            if r.year is not None:
                naming[self.lexical.query(str(r.year)).matching()] = True
            if r.month is not None:
                after = replace(r, end=r.end + REPORTED_WITHIN, whole_days=False)
                month = np.zeros(len(inside), dtype=bool)
                month[self.lexical.query(r.month).matching()] = True
                naming |= month & meta.published_in([after])
        if naming.any():
            # A passage that names the time makes its whole article about it.
            inside |= np.isin(meta.article_codes, np.unique(meta.article_codes[naming]))
        return inside

    # -- one part -------------------------------------------------------------------------

    def _candidates(
        self,
        dense_rows: np.ndarray,
        lexical_scores: QueryScores | None,
        boost: _Boost | None,
        allowed: np.ndarray | None,
    ) -> np.ndarray:
        """A part's candidates, ascending: its nearest rows and its best BM25 rows (boosted,
        among the rows it allows)."""
        lexical_rows = _NONE[0]
        if lexical_scores is not None:
            lexical_rows = lexical_scores.best(self.config.candidates, allowed=allowed, boost=boost)
        return np.union1d(lexical_rows, dense_rows)

    def _rank(
        self,
        candidates: np.ndarray,
        lexical_scores: QueryScores | None,
        boost: _Boost | None,
        cosines: _Cosines,
    ) -> _Ranked:
        """A part's candidates ordered by their fused dense and BM25 scores."""
        config = self.config
        d = (
            cosines.of(candidates)
            if config.mode != "lexical"
            else np.zeros(len(candidates), np.float32)
        )
        lex = lexical_scores.at(candidates) if lexical_scores is not None else np.zeros_like(d)
        if config.mode == "dense":
            scores = d
        elif config.mode == "lexical":
            scores = lex
        elif config.fusion == "rrf":
            scores = _rrf(d) + _rrf(lex)
        else:
            w = config.dense_weight
            scores = (w * _minmax(d) + (1 - w) * _minmax(lex)).astype(np.float32)
        if boost is not None:
            scores = scores * boost.at(candidates)
        order = np.argsort(-scores, kind="stable")
        return _Ranked(candidates[order], scores[order])

    def _best_similarities(
        self, rankings: list[_Ranked], vector: np.ndarray | None
    ) -> dict[int, float] | None:
        """Each reranked row's best sentence cosine with the question, for every part's
        head at once (the question's vector is the same for all parts)."""
        if vector is None or not self.config.sentence_similarity_weight or not rankings:
            return None
        depth = self.config.rerank_depth
        rows = np.unique(np.concatenate([ranked.rows[:depth] for ranked in rankings])).tolist()
        similar = self.index.sentences.best_similarities(rows, vector)
        return dict(zip(rows, similar.tolist(), strict=True))

    def _rerank(
        self,
        part: QueryPart,
        ranked: _Ranked,
        similar: dict[int, float] | None,
        recency: _Recency | None = None,
    ) -> _Ranked:
        """Re-score the top passages by their single best sentence.

        Evidence is usually one sentence; a passage that states what the part asks in one
        sentence beats one that scatters the same words. A sentence scores the IDF-weighted
        share of the part's terms it contains; and, for the question worded otherwise than
        its answer, the passage's sentence most similar to the question adds its cosine
        (``similar``, min-max normalised, ``sentence_similarity_weight``; README,
        *Answers*). The recency boost, if the part wants it, applies to the new score too.
        """
        depth = min(self.config.rerank_depth, len(ranked.rows))
        if depth < 2:
            return ranked
        wanted = set(self.lexical.query_terms(part.text))
        weights = {t: self.lexical.idf(t) for t in wanted}
        total = sum(weights.values())
        if total == 0:
            return ranked
        top_rows = [int(r) for r in ranked.rows[:depth]]
        best = self.index.sentences.best_sentence_scores(top_rows, weights) / total
        head = _minmax(ranked.scores[:depth]) + self.config.rerank_weight * best
        if similar is not None:
            cosines = np.array([similar[r] for r in top_rows], np.float32)
            head += self.config.sentence_similarity_weight * _minmax(cosines)
        if recency is not None:
            head = head * recency.at(np.array(top_rows, np.int64))
        order = np.argsort(-head, kind="stable")
        # Keep reranked passages above the rest, whose scores are on another scale.
        rows = np.concatenate([ranked.rows[:depth][order], ranked.rows[depth:]])
        scores = np.concatenate([head[order] + 1.0, _minmax(ranked.scores[depth:])])
        return _Ranked(rows, scores.astype(np.float32))

    def _boost(self, part: QueryPart, recency: _Recency | None) -> _Boost | None:
        """A per-passage multiplier favouring the outlets the part names and, if it wants
        the newest news, newer passages."""
        if not part.sources and recency is None:
            return None
        return _Boost(self.index.row_metadata(), part.sources, self.config.source_boost, recency)

    # -- all parts ------------------------------------------------------------------------

    def _merge(
        self,
        rankings: list[tuple[_Ranked, float]],
        k: int,
        vector: np.ndarray | None,
        cosines: _Cosines | None = None,
    ) -> list[Hit]:
        """Fuse the parts' rankings by rank, at most ``max_chunks_per_article`` per article.

        A passage scores ``weight / (1 + rank)`` in each part's ranking, summed: every
        part's best passage comes before any part's second best, unless a passage ranks
        high for several parts at once (measured: better than taking the parts in turn,
        see README).
        """
        heads = [(ranking.rows[:_MERGE_DEPTH], weight) for ranking, weight in rankings]
        rows = np.concatenate([head for head, _ in heads])
        credit = np.concatenate([weight / np.arange(1, len(head) + 1) for head, weight in heads])
        unique, first_seen, where = np.unique(rows, return_index=True, return_inverse=True)
        fused = np.bincount(where, weights=credit)
        # Best first; equal scores in the order the parts found them.
        order = np.lexsort((first_seen, -fused))
        cap = self.config.max_chunks_per_article
        article_of = self.index.row_metadata().article_codes
        taken: dict[int, int] = {}
        picked: list[int] = []
        for i in order.tolist():
            article = int(article_of[unique[i]])
            if taken.get(article, 0) < cap:
                taken[article] = taken.get(article, 0) + 1
                picked.append(i)
                if len(picked) == k:
                    break
        picked_rows = unique[picked].tolist()
        sentences = self.index.sentences
        cosines = cosines or _Cosines(self.index, vector, *_NONE)
        similarity = cosines.of(np.array(picked_rows, np.int64)).tolist()
        return [
            Hit(
                chunk,
                float(fused[i]),
                row,
                sentences.sentences(row),
                cosine,
                tuple(sentences.similarities(row, vector).tolist()) if vector is not None else (),
            )
            for chunk, i, row, cosine in zip(
                self.index.chunks(picked_rows), picked, picked_rows, similarity, strict=True
            )
        ]


@cache
def _dense_searches() -> ThreadPoolExecutor:
    """Where a question's dense search runs while its BM25 scores are added up on the
    asking thread: FAISS searches, and PostgreSQL is waited for, without holding the GIL,
    so the two overlap on two cores (README, *Side by side at scale*). A few threads serve
    every searcher: each waits only for its own search."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="newsbot-dense")


# A forked child has none of its parent's threads: it makes its own pool.
os.register_at_fork(after_in_child=_dense_searches.cache_clear)


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The rows allowed by both masks (None allows every row)."""
    if a is None or b is None:
        return b if a is None else a
    return a & b


def _minmax(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _rrf(values: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return np.where(values > 0, 1.0 / (_RRF_K + ranks), 0.0).astype(np.float32)
