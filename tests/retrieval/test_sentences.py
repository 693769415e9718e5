"""Stored sentences: the reranker and the composer must see what splitting the text would give."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from corpus.errors import IndexStoreError
from retrieval.assistant import NewsAssistant
from retrieval.index import SENTENCES_NAME, FaissIndex, Manifest
from retrieval.sentences import SentenceIndex, sentences_of
from retrieval.settings import RetrievalSettings

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


def test_appending_keeps_term_ids_and_round_trips_through_disk(tmp_path):
    first = SentenceIndex.empty().extended(["Talks in Lima. Peru and Vietnam met.", "A."])
    both = first.extended(["Lima again, with new words entirely."])
    assert both.vocabulary[: len(first.vocabulary)] == first.vocabulary
    both.save(tmp_path / "s")
    loaded = SentenceIndex.load(tmp_path / "s")
    assert len(loaded) == 3
    assert [loaded.sentences(r) for r in range(3)] == [both.sentences(r) for r in range(3)]
    assert loaded.sentences(2) == sentences_of("Lima again, with new words entirely.")


def test_an_index_without_stored_sentences_still_answers_the_same(
    writable_sample_index, embedder, sample_assistant
):
    # Indexes built before sentences were stored: they are split when first needed.
    shutil.rmtree(
        writable_sample_index / Manifest.read(writable_sample_index).generation / "sentences"
    )
    older = NewsAssistant(RetrievalSettings(index_dir=writable_sample_index), embedder=embedder)
    try:
        assert older.ask(LIMA) == sample_assistant.ask(LIMA)
    finally:
        older.close()


def test_damaged_sentence_arrays_are_reported_not_used(writable_sample_index, embedder):
    directory = writable_sample_index / Manifest.read(writable_sample_index).generation
    (directory / SENTENCES_NAME / "term_ids.npy").write_bytes(b"\x93NUMPY garbage")
    assistant = NewsAssistant(RetrievalSettings(index_dir=writable_sample_index), embedder=embedder)
    try:
        with pytest.raises(IndexStoreError, match=r"sentences/ cannot be read.*rebuild"):
            assistant.ask(LIMA)
    finally:
        assistant.close()
