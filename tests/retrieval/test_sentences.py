"""Stored sentences: the reranker and the composer must see what splitting the text would give."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from corpus.errors import IndexStoreError
from retrieval.assistant import NewsAssistant
from retrieval.sentences import SentenceIndex, sentences_of
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import SENTENCES_NAME, FaissIndex, Manifest

LIMA = "Who met whom in Lima?"


def _brute_force(text: str, weights: dict[str, float]) -> float:
    return max((sum(weights.get(t, 0.0) for t in s.terms) for s in sentences_of(text)), default=0)


def test_stored_sentences_are_those_of_each_passage(sample_index_dir):
    index = FaissIndex.open(sample_index_dir)
    try:
        assert len(index.sentences) == len(index)
        for row, chunk in enumerate(index.all_chunks()):
            assert index.sentences.sentences(row) == sentences_of(chunk.text)
    finally:
        index.close()


def test_best_sentence_scores_match_scoring_each_sentence(sample_index_dir):
    index = FaissIndex.open(sample_index_dir)
    try:
        texts = [c.text for c in index.all_chunks()]
        weights = {"lima": 3.0, "meet": 1.5, "congress": 2.0, "peru": 0.5, "absent-term": 9.0}
        rows = [3, 0, len(texts) - 1, 3, 1]  # any order, repeats allowed
        scores = index.sentences.best_sentence_scores(rows, weights)
        expected = [_brute_force(texts[r], weights) for r in rows]
        np.testing.assert_allclose(scores, expected, rtol=1e-6)
        assert scores.max() > 0
        assert not index.sentences.best_sentence_scores(rows, {"absent-term": 1.0}).any()
    finally:
        index.close()


def _appended(index: SentenceIndex, texts: list[str], vectors: np.ndarray) -> SentenceIndex:
    rows = [sentences_of(t) for t in texts]
    return index.extended(rows, vectors[: sum(map(len, rows))])


def test_appending_keeps_term_ids_and_round_trips_through_disk(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first = _appended(
        SentenceIndex.empty(8), ["Talks in Lima. Peru and Vietnam met.", "A."], vectors
    )
    both = _appended(first, ["Lima again, with new words entirely."], vectors[3:])
    assert both.vocabulary[: len(first.vocabulary)] == first.vocabulary
    both.save(tmp_path / "s")
    loaded = SentenceIndex.load(tmp_path / "s")
    assert len(loaded) == 3
    assert [loaded.sentences(r) for r in range(3)] == [both.sentences(r) for r in range(3)]
    assert loaded.sentences(2) == sentences_of("Lima again, with new words entirely.")
    # Each sentence keeps its own vector (stored in 8 bits: cosines within 0.01).
    query = vectors[1]
    np.testing.assert_allclose(loaded.similarities(0, query), vectors[:2] @ query, atol=0.01)
    np.testing.assert_allclose(loaded.similarities(2, query), [vectors[3] @ query], atol=0.01)


def test_sentence_vectors_must_match_the_sentences():
    with pytest.raises(ValueError, match="2 sentence vectors for 1 sentences"):
        SentenceIndex.empty(4).extended([sentences_of("One sentence.")], np.zeros((2, 4)))


def test_an_index_without_sentence_vectors_asks_to_be_rebuilt(writable_sample_index, embedder):
    shutil.rmtree(
        writable_sample_index / Manifest.read(writable_sample_index).generation / "sentences"
    )
    older = NewsAssistant(RetrievalSettings(index_dir=writable_sample_index), embedder=embedder)
    try:
        with pytest.raises(IndexStoreError, match=r"sentences/ cannot be read.*rebuild"):
            older.ask(LIMA)
    finally:
        older.close()


def test_the_question_is_compared_with_each_stored_sentence(sample_assistant, embedder):
    hit = sample_assistant.search(LIMA, 1)[0]
    texts = [hit.chunk.text[s.start : s.end] for s in hit.sentences]
    expected = embedder.embed_documents(texts) @ embedder.embed_query(LIMA)
    assert len(hit.sentence_similarity) == len(texts)
    np.testing.assert_allclose(hit.sentence_similarity, expected, atol=0.02)


def test_damaged_sentence_arrays_are_reported_not_used(writable_sample_index, embedder):
    directory = writable_sample_index / Manifest.read(writable_sample_index).generation
    (directory / SENTENCES_NAME / "term_ids.npy").write_bytes(b"\x93NUMPY garbage")
    assistant = NewsAssistant(RetrievalSettings(index_dir=writable_sample_index), embedder=embedder)
    try:
        with pytest.raises(IndexStoreError, match=r"sentences/ cannot be read.*rebuild"):
            assistant.ask(LIMA)
    finally:
        assistant.close()
