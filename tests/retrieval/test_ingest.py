"""Ingest: incremental, idempotent, and honest about what it rejected."""

import json
from pathlib import Path

from corpus.loaders import sample_corpus_dir
from retrieval.ingest import ingest
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import FaissIndex, Manifest

DATA = Path(__file__).parents[1] / "data"


class CountingEmbedder:
    """The real embedder, keeping every text it was asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.texts = inner, inner.name, inner.dimension, []
        self.max_tokens, self.count_tokens = inner.max_tokens, inner.count_tokens

    @property
    def embedded(self) -> int:
        return len(self.texts)

    def embed_documents(self, texts, *, progress=False):
        self.texts += texts
        return self.inner.embed_documents(texts, progress=progress)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_ingesting_the_same_folder_twice_changes_nothing(writable_sample_index, embedder):
    settings = RetrievalSettings(index_dir=writable_sample_index)
    before = Manifest.read(writable_sample_index)
    counting = CountingEmbedder(embedder)
    report = ingest([sample_corpus_dir()], settings, counting)
    assert (report.added, report.duplicates, report.chunks, counting.embedded) == (0, 2, 0, 0)
    after = Manifest.read(writable_sample_index)
    assert (after.chunk_count, after.generation) == (before.chunk_count, before.generation)


def test_new_articles_are_added_without_re_embedding_old_ones(writable_sample_index, embedder):
    settings = RetrievalSettings(index_dir=writable_sample_index)
    before = Manifest.read(writable_sample_index)
    counting = CountingEmbedder(embedder)
    report = ingest([sample_corpus_dir(), DATA / "extra-article.md"], settings, counting)
    assert (report.added, report.duplicates) == (1, 2)
    # The new article's passages and its sentences, each sentence once; nothing older.
    new_body = (DATA / "extra-article.md").read_text()
    passages, sentences = counting.texts[: report.chunks], counting.texts[report.chunks :]
    assert report.chunks > 0 and all(p.startswith("Peru opens a new port") for p in passages)
    assert sentences and all(s in new_body for s in sentences)
    assert len(set(sentences)) == len(sentences)
    after = Manifest.read(writable_sample_index)
    assert after.article_count == 3
    assert after.chunk_count == before.chunk_count + report.chunks
    assert after.corpus_fingerprint != before.corpus_fingerprint
    index = FaissIndex.open(writable_sample_index)
    assert [a.title for a in index.articles()][-1] == "Peru opens a new port at Chancay"
    index.close()


def test_duplicates_within_one_batch_are_indexed_once(settings, embedder, tmp_path):
    copy = tmp_path / "copy.md"
    copy.write_text((DATA / "extra-article.md").read_text())
    report = ingest([DATA / "extra-article.md", copy], settings, embedder)
    assert (report.added, report.duplicates) == (1, 1)


def test_the_same_story_at_two_addresses_is_stored_once(writable_sample_index, embedder, tmp_path):
    # One story, syndicated: another URL, another title suffix, other spacing; same text.
    index = FaissIndex.open(writable_sample_index)
    seed = next(index.articles())
    index.close()
    record = {
        "title": seed.title + " | Partner Site",
        "body": "  " + seed.body.replace("\n\n", "\n\n "),
        "url": "https://partner.example.com/world/" + seed.id,
    }
    other = {
        **record,
        "body": "A different story about the port of Chancay opening.",
        "url": "https://partner.example.com/world/chancay",
    }
    path = tmp_path / "syndicated.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(other) + "\n")
    settings = RetrievalSettings(index_dir=writable_sample_index)
    report = ingest([path], settings, embedder)
    assert (report.added, report.duplicates) == (1, 1)


def test_bad_files_are_reported_and_good_ones_still_indexed(settings, embedder, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "No body at all"}\nnot json\n')
    report = ingest([bad, DATA / "extra-article.md"], settings, embedder)
    assert report.added == 1
    assert len(report.rejected) == 2
    assert all("bad.jsonl:" in str(problem) for problem in report.rejected)


def test_rebuild_replaces_the_index(writable_sample_index, embedder):
    settings = RetrievalSettings(index_dir=writable_sample_index)
    report = ingest([DATA / "extra-article.md"], settings, embedder, rebuild=True)
    assert report.added == 1
    assert Manifest.read(writable_sample_index).article_count == 1
