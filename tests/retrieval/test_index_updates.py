"""Replacing and removing articles: every part of the index moves together."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from corpus import Article, load_path
from retrieval.assistant import NewsAssistant
from retrieval.ingest import ingest, update_index
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import FaissIndex

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def six(tmp_path: Path, embedder) -> RetrievalSettings:
    lines = (DATA / "multihop-sample" / "corpus.jsonl").read_text().splitlines()[:6]
    (tmp_path / "six.jsonl").write_text("\n".join(lines) + "\n")
    settings = RetrievalSettings(index_dir=tmp_path / "index", ingest_batch_articles=2)
    ingest([tmp_path / "six.jsonl"], settings, embedder)
    return settings


def _articles(path: Path) -> list[Article]:
    return [a for a in load_path(path) if isinstance(a, Article)]


def _assert_consistent(index: FaissIndex) -> None:
    """Rows, passages, sentences, row facts and vectors all describe the same passages."""
    chunks = index.chunks(range(len(index)))
    articles = {a.id: a for a in index.articles()}
    meta = index.row_metadata()
    assert len(meta) == len(chunks) == index.manifest.chunk_count
    assert len(index.sentences) == len(chunks)
    for row, chunk in enumerate(chunks):
        article = articles[chunk.article_id]
        assert chunk.text == article.body[chunk.start : chunk.end]
        assert meta.outlets[meta.outlet_codes[row]] == article.source
        assert meta.published_days[row] == article.published.toordinal()
        for sentence in index.sentences.sentences(row):
            assert chunk.text[sentence.start : sentence.end].strip()
    same = [[a.article_id == b.article_id for b in chunks] for a in chunks]
    assert (meta.article_codes[:, None] == meta.article_codes[None, :]).tolist() == same


def test_removing_articles_takes_every_passage_with_them(six, embedder):
    index = FaissIndex.open(six.index_dir)
    ids = [a.id for a in index.articles()]
    before = len(index)
    gone_rows = len(index.rows_of(ids[1:3]))
    index.close()

    report = update_index(six, embedder, remove=ids[1:3])

    assert (report.removed, report.added, report.commits) == (2, 0, 1)
    index = FaissIndex.open(six.index_dir)
    try:
        assert [a.id for a in index.articles()] == ids[:1] + ids[3:]
        assert len(index) == before - gone_rows
        assert index.manifest.article_count == 4
        _assert_consistent(index)
    finally:
        index.close()


def test_a_changed_article_replaces_its_old_passages(six, embedder):
    index = FaissIndex.open(six.index_dir)
    target = next(iter(index.articles()))
    index.close()
    changed = dataclasses.replace(
        target,
        body="The harbour authority confirmed on Friday that the zeppelin terminal will open "
        "in March, with flights to Reykjavik and Oslo every weekday.",
    )
    old_sentence = target.body.split(". ")[0]

    report = update_index(six, embedder, add=[changed])

    assert (report.added, report.removed) == (1, 1)
    assistant = NewsAssistant(six, embedder=embedder)
    try:
        assert assistant.index.manifest.article_count == 6
        stored = assistant.index.article(target.id)
        assert stored is not None and stored.body == changed.body
        hits = assistant.searcher().search("zeppelin terminal Reykjavik flights", 3)
        assert hits[0].chunk.article_id == target.id
        assert "zeppelin" in hits[0].chunk.text
        texts = [h.chunk.text for h in assistant.searcher().search(old_sentence, 10)]
        assert not any(old_sentence in t for t in texts)
        _assert_consistent(assistant.index)
    finally:
        assistant.close()


def test_vectors_of_kept_passages_survive_a_removal(six, embedder):
    index = FaissIndex.open(six.index_dir)
    ids = [a.id for a in index.articles()]
    kept_rows = np.setdiff1d(np.arange(len(index)), index.rows_of([ids[0]]))
    kept_vectors = index.vectors(kept_rows.tolist())
    index.close()

    update_index(six, embedder, remove=[ids[0]])

    index = FaissIndex.open(six.index_dir)
    try:
        np.testing.assert_allclose(index.vectors(list(range(len(index)))), kept_vectors)
    finally:
        index.close()


def _generations(settings: RetrievalSettings) -> list[str]:
    return sorted(p.name for p in settings.index_dir.glob("gen-*"))


def test_only_the_live_generation_stays_on_disk_when_no_one_reads_the_old(six, embedder):
    assert len(_generations(six)) == 1  # three commits of two articles: one generation left
    index = FaissIndex.open(six.index_dir)
    first = index.generation
    some = [a.id for a in index.articles()][:1]
    index.close()

    update_index(six, embedder, remove=some)

    assert _generations(six) != [first] and len(_generations(six)) == 1


def test_a_generation_a_reader_holds_stays_until_it_lets_go(six, embedder):
    reader = FaissIndex.open(six.index_dir)
    held = reader.generation
    some = [a.id for a in reader.articles()][:1]

    update_index(six, embedder, remove=some)

    assert held in _generations(six) and len(_generations(six)) == 2
    # The reader still reads all of it, parts it had not loaded yet included.
    assert len(reader.sentences) == reader.manifest.chunk_count
    assert len(reader.chunks(range(len(reader)))) == len(reader)
    reader.close()
    assert held not in _generations(six) and len(_generations(six)) == 1
