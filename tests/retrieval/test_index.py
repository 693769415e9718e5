"""The on-disk index: reopening, mismatches, damage, and atomic writes."""

import hashlib
import json
from pathlib import Path

import pytest

from corpus.errors import IndexStoreError
from corpus.loaders import sample_corpus_dir
from retrieval.ingest import ingest
from retrieval.settings import PACKAGED_MODEL, RetrievalSettings
from retrieval.store.faiss_index import MANIFEST_NAME, VECTORS_NAME, FaissIndex, Manifest, locked

DATA = Path(__file__).parents[1] / "data"


def _snapshot(index_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(index_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and p.name != ".write.lock"
    }


def _live_file(index_dir: Path, name: str) -> Path:
    return index_dir / Manifest.read(index_dir).generation / name


def test_reopened_index_has_the_manifest_counts(sample_index_dir):
    index = FaissIndex.open(sample_index_dir, model=PACKAGED_MODEL, dimension=384)
    try:
        m = index.manifest
        assert (m.article_count, m.model, m.dimension) == (2, PACKAGED_MODEL, 384)
        assert len(index) == m.chunk_count > 2
        assert len(m.corpus_fingerprint) == 64
        assert m.newest_published == "2024-11-14"
        chunks = index.chunks(list(range(len(index))))
        assert {c.article_id for c in chunks} == index.article_ids()
        bodies = {a.id: a.body for a in index.articles()}
        assert all(bodies[c.article_id][c.start : c.end] == c.text for c in chunks)
    finally:
        index.close()


def test_opening_with_another_model_names_both(sample_index_dir):
    with pytest.raises(IndexStoreError) as err:
        FaissIndex.open(sample_index_dir, model="intfloat/e5-small-v2")
    assert PACKAGED_MODEL in str(err.value) and "intfloat/e5-small-v2" in str(err.value)


def test_opening_with_another_dimension_names_both(sample_index_dir):
    with pytest.raises(IndexStoreError, match=r"384-dimensional.*768-dimensional"):
        FaissIndex.open(sample_index_dir, dimension=768)


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexStoreError, match=r"no index at .*newsbot ingest"):
        FaissIndex.open(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda d: _live_file(d, VECTORS_NAME).write_bytes(
                _live_file(d, VECTORS_NAME).read_bytes()[:500]
            ),
            id="truncated-vectors",
        ),
        pytest.param(
            lambda d: _live_file(d, "store.sqlite").write_bytes(b"not a database" * 100),
            id="garbage-metadata",
        ),
        pytest.param(lambda d: (d / MANIFEST_NAME).write_text("{ not json"), id="garbage-manifest"),
        pytest.param(lambda d: _live_file(d, VECTORS_NAME).unlink(), id="missing-vectors"),
        pytest.param(
            lambda d: (d / MANIFEST_NAME).write_text(
                json.dumps({**json.loads((d / MANIFEST_NAME).read_text()), "chunk_count": 3})
            ),
            id="counts-disagree",
        ),
    ],
)
def test_damage_is_reported_and_nothing_is_overwritten(writable_sample_index, damage):
    damage(writable_sample_index)
    before = _snapshot(writable_sample_index)
    with pytest.raises(IndexStoreError, match=r"damaged.*Nothing was changed.*--rebuild"):
        FaissIndex.open(writable_sample_index)
    assert _snapshot(writable_sample_index) == before


def test_unknown_format_version_is_refused(writable_sample_index):
    manifest = writable_sample_index / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 99}))
    with pytest.raises(IndexStoreError, match="format version 99"):
        FaissIndex.open(writable_sample_index)


def test_a_crash_mid_write_leaves_the_previous_index_usable(
    writable_sample_index, embedder, monkeypatch
):
    settings = RetrievalSettings(index_dir=writable_sample_index)
    before = Manifest.read(writable_sample_index)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("retrieval.store.faiss_index.faiss.write_index", crash)
    with pytest.raises(OSError, match="simulated"):
        ingest([DATA / "extra-article.md"], settings, embedder)
    monkeypatch.undo()

    assert Manifest.read(writable_sample_index) == before
    index = FaissIndex.open(writable_sample_index, model=PACKAGED_MODEL, dimension=384)
    assert len(index) == before.chunk_count
    index.close()
    assert any(".tmp-" in p.name for p in writable_sample_index.iterdir()), (
        "staging dir left behind"
    )

    report = ingest([DATA / "extra-article.md"], settings, embedder)
    assert report.added == 1
    assert not any(".tmp-" in p.name for p in writable_sample_index.iterdir()), "leftover swept"


def test_a_second_writer_is_turned_away_with_a_clear_message(writable_sample_index, embedder):
    settings = RetrievalSettings(index_dir=writable_sample_index)
    with (
        locked(writable_sample_index),
        pytest.raises(IndexStoreError, match="another newsbot process"),
    ):
        ingest([sample_corpus_dir()], settings, embedder)


def test_row_facts_stored_by_each_commit_match_the_articles(tmp_path, embedder):
    """Outlet, publication and article per row, as boosts, time filters and per-article
    caps see them."""
    lines = (DATA / "multihop-sample" / "corpus.jsonl").read_text().splitlines()[:6]
    (tmp_path / "six.jsonl").write_text("\n".join(lines) + "\n")
    settings = RetrievalSettings(index_dir=tmp_path / "index", ingest_batch_articles=2)
    report = ingest([tmp_path / "six.jsonl"], settings, embedder)
    assert report.commits == 3
    index = FaissIndex.open(settings.index_dir)
    try:
        meta = index.row_metadata()
        chunks = index.chunks(range(len(index)))
        articles = {a.id: a for a in index.articles()}
    finally:
        index.close()
    assert len({a.source for a in articles.values()}) > 1
    for row, chunk in enumerate(chunks):
        article = articles[chunk.article_id]
        code = meta.outlet_codes[row]
        assert meta.outlets[code] == article.source
        assert meta.published_days[row] == article.published.toordinal()
        assert meta.published_at[row] == article.published.timestamp()
    same_article = [[a.article_id == b.article_id for b in chunks] for a in chunks]
    assert (meta.article_codes[:, None] == meta.article_codes[None, :]).tolist() == same_article
