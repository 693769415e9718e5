"""A question's BM25 scores: the same floats bm25s adds up, and the best rows under a boost."""

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest

from retrieval.bm25_scores import QueryScores, top_rows
from retrieval.lexical import LexicalIndex
from retrieval.text import terms

CORPUS = Path(__file__).resolve().parents[1] / "data" / "multihop-sample" / "corpus.jsonl"


@pytest.mark.parametrize("size", [1, 50, 7_329, 300_000])
@pytest.mark.parametrize("n", [1, 200, 400])
def test_top_rows_are_exactly_the_highest_positive_scores(size, n):
    rng = np.random.default_rng(size + n)
    # BM25-like: many rows score nothing, many tie (integer-ish scores).
    scores = np.where(rng.random(size) < 0.5, np.round(rng.gamma(2.0, 2.0, size), 1), 0.0)
    scores = scores.astype(np.float32)
    top = top_rows(scores, n)
    assert len(set(top.tolist())) == len(top)
    expected = np.sort(scores[scores > 0])[::-1][:n]
    np.testing.assert_array_equal(np.sort(scores[top])[::-1], expected)


def test_top_rows_when_few_rows_reach_the_sampled_threshold():
    scores = np.zeros(100_000, np.float32)
    scores[1::97] = 5.0  # 1,031 rows, none of them in the sample (rows 0, 97, 194, ...)
    scores[0 : 97 * 20 : 97] = 10.0  # 20 sampled rows: the threshold lets only these through
    top = top_rows(scores, 300)
    assert len(set(top.tolist())) == 300
    assert sorted(scores[top].tolist(), reverse=True) == [10.0] * 20 + [5.0] * 280


def test_a_question_scores_every_passage_exactly_as_bm25s_does():
    """Adding each term's postings on its own gives the very same float32 scores as bm25s'
    one pass, a repeated question word counted twice."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["body"] for line in lines]
    lexical = LexicalIndex.build(texts)
    model = bm25s.BM25(k1=lexical._model.k1, b=lexical._model.b)
    model.index([terms(t) or [""] for t in texts], show_progress=False)
    question = "What did the company report about revenue, and did the company's revenue grow?"
    wanted = list(lexical.query_terms(question))
    assert len(wanted) > len(set(wanted))  # "company" and "revenue" twice
    expected = model.get_scores_from_ids(model.get_tokens_ids(wanted))

    scores = lexical.query(question)
    np.testing.assert_array_equal(scores.everywhere(), expected)
    assert scores.matching().tolist() == np.flatnonzero(expected).tolist()
    rows = np.array([3, 0, 55, 17])
    np.testing.assert_array_equal(scores.at(rows), expected[rows])


def test_a_question_scores_as_the_sum_of_the_clauses_it_splits_into():
    """The whole question of a split one is scored from its clauses' scores: the same
    passages match, each within a float32 rounding of its own additions, the same best."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    lexical = LexicalIndex.build(json.loads(line)["body"] for line in lines)
    first = "Does the TechCrunch article say the company raised new funding"
    second = "while The Verge reports that its revenue fell last quarter?"
    clauses = [lexical.query(first), lexical.query(second)]

    summed = QueryScores.summed(clauses)

    whole = lexical.query(f"{first}, {second}")
    assert summed.matching().tolist() == whole.matching().tolist()
    assert len(summed.matching()) > len(clauses[0].matching())
    np.testing.assert_allclose(summed.everywhere(), whole.everywhere(), rtol=1e-6)
    best = summed.best(20)
    np.testing.assert_allclose(
        np.sort(whole.everywhere()[best]), np.sort(whole.everywhere()[whole.best(20)]), rtol=1e-6
    )
    assert not QueryScores.summed([QueryScores([], 10), QueryScores([], 10)])


class _Boost:
    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self.most = float(values.max())

    def at(self, rows: np.ndarray) -> np.ndarray:
        return self._values[rows]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 20, 200])
def test_the_best_rows_under_a_boost_are_the_top_of_the_boosted_scores(seed, n):
    """Only rows a full boost could lift high enough are boosted; the result is still the
    top ``n`` of every allowed row's boosted score (ties: the same scores)."""
    rng = np.random.default_rng(seed)
    size = 20_000
    postings = []
    for share in (0.001, 0.01, 0.2, 0.5):  # a rare name … a common word
        rows = np.sort(rng.choice(size, int(size * share), replace=False))
        postings.append((rows, rng.gamma(2.0, 1.0, len(rows)).astype(np.float32)))
    # Boosts as the search makes them: 1, or 2 for a named outlet, times a recency boost.
    boost = np.where(rng.random(size) < 0.1, 2.0, 1.0) * (1 + rng.random(size) ** 4)
    boost = boost.astype(np.float32)
    allowed = rng.random(size) < 0.7 if seed % 2 else None
    scores = QueryScores(postings, size)

    best = scores.best(n, allowed=allowed, boost=_Boost(boost))

    everything = scores.everywhere() * boost
    if allowed is not None:
        everything[~allowed] = 0
    assert len(set(best.tolist())) == len(best) == n
    expected = np.sort(everything[everything > 0])[::-1][:n]
    np.testing.assert_array_equal(np.sort(everything[best])[::-1], expected)


def test_no_known_term_scores_nothing():
    scores = QueryScores([], 1_000)
    assert not scores
    assert scores.best(10).size == 0 and scores.matching().size == 0
