"""The vector index's automatic switch from exact to approximate search, and its rebuilds."""

from pathlib import Path

import faiss
import numpy as np

from corpus.articles import Article
from retrieval.assistant import NewsAssistant
from retrieval.chunking import Chunk
from retrieval.ingest import ingest
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import (
    VECTORS_NAME,
    FaissIndex,
    Manifest,
    NewContent,
    commit,
    locked,
)
from retrieval.store.vectors import VectorIndexConfig, extend_index

DATA = Path(__file__).parents[1] / "data"


def _is_approximate(index_dir: Path) -> bool:
    """Read from the FAISS file itself, as the index does."""
    live = index_dir / Manifest.read(index_dir).generation / VECTORS_NAME
    return faiss.try_extract_index_ivf(faiss.read_index(str(live))) is not None


def _clustered(n: int, dimension: int, seed: int) -> np.ndarray:
    """Unit vectors around 100 topics, like embeddings of a news corpus (not uniform noise)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((100, dimension))
    points = topics[rng.integers(0, 100, n)] + 0.5 * rng.standard_normal((n, dimension))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _synthetic_content(vectors: np.ndarray, per_article: int = 100) -> NewContent:
    """Articles of ``per_article`` one-word passages, one passage per vector."""
    articles, chunks = [], []
    for a in range(len(vectors) // per_article):
        words = [f"w{a}x{i}" for i in range(per_article)]
        article = Article(id=f"a{a}", title=f"Article {a}", body=" ".join(words))
        articles.append(article)
        start = 0
        for i, word in enumerate(words):
            chunks.append(Chunk(article.id, i, word, start, start + len(word), article.title))
            start += len(word) + 1
    return NewContent.with_passage_vectors(articles, chunks, vectors)


def _committed_above_the_threshold(index_dir: Path, vectors: np.ndarray) -> Path:
    """An index of ``vectors`` (64 dimensions) committed with the approximate index from
    10,000 passages on."""
    settings = RetrievalSettings(index_dir=index_dir, approximate_index_from=10_000)
    with locked(index_dir):
        commit(
            index_dir,
            _synthetic_content(vectors),
            base=None,
            model="synthetic",
            dimension=64,
            chunk_size=150,
            chunk_overlap=30,
            vector_config=VectorIndexConfig.from_settings(settings),
        )
    return index_dir


def test_an_index_above_the_threshold_is_approximate_and_finds_the_exact_neighbours(tmp_path):
    vectors = _clustered(20_000, 64, seed=1)
    index_dir = _committed_above_the_threshold(tmp_path / "index", vectors)
    assert _is_approximate(index_dir)

    index = FaissIndex.open(index_dir)
    try:
        queries = _clustered(200, 64, seed=2)
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        found = [[row for row, _ in index.search(q, 10)] for q in queries]
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
        assert recall >= 0.95
        # Scores stay cosines, and every stored vector comes back (float16-rounded).
        row, score = index.search(queries[0], 1)[0]
        assert abs(score - float(queries[0] @ vectors[row])) < 1e-3
        np.testing.assert_allclose(index.vectors(list(range(len(index)))), vectors, atol=1e-3)
    finally:
        index.close()


def test_an_ingest_that_crosses_the_threshold_rebuilds_and_still_answers(
    writable_sample_index, embedder
):
    sample_chunks = Manifest.read(writable_sample_index).chunk_count
    assert not _is_approximate(writable_sample_index)
    settings = RetrievalSettings(
        index_dir=writable_sample_index, approximate_index_from=sample_chunks + 1
    )

    ingest([DATA / "extra-article.md"], settings, embedder)

    assert _is_approximate(writable_sample_index)
    assistant = NewsAssistant(settings, embedder=embedder)
    try:
        index = assistant.index
        stored = index.vectors(list(range(len(index))))
        texts = [c.embedding_text for c in index.chunks(list(range(len(index))))]
        np.testing.assert_allclose(stored, embedder.embed_documents(texts), atol=1e-3)
        answer = assistant.ask("Who met whom in Lima?")
        assert not answer.abstained
        assert "VietnamPlus (VNA)" in {c.source for c in answer.citations}
        assert "Chancay" in assistant.ask("Which port did Peru open?").text
    finally:
        assistant.close()


def test_an_approximate_index_that_grows_fourfold_is_retrained_with_more_cells():
    config = VectorIndexConfig(approximate_from=10_000)
    vectors = _clustered(45_000, 32, seed=3)
    index = extend_index(faiss.IndexFlatIP(32), vectors[:10_000], config)
    cells = faiss.extract_index_ivf(index).nlist

    index = extend_index(index, vectors[10_000:39_000], config)
    assert faiss.extract_index_ivf(index).nlist == cells  # grown 3.9×: kept, vectors added

    index = extend_index(index, vectors[39_000:], config)
    assert faiss.extract_index_ivf(index).nlist > cells
    np.testing.assert_allclose(index.reconstruct_n(0, index.ntotal), vectors, atol=1e-3)


def test_a_filtered_search_of_an_approximate_index_is_exact_however_many_rows_it_allows(
    tmp_path,
):
    """Up to EXACT_FILTERED_UP_TO allowed rows, an IVF index gives the exact top 10 among
    them: a few rows rebuilt from their cells and scored, many by scanning every cell."""
    vectors = _clustered(20_000, 64, seed=3)
    index_dir = _committed_above_the_threshold(tmp_path / "index", vectors)
    index = FaissIndex.open(index_dir)
    try:
        stored = index.vectors(list(range(len(index))))
        # 30 rows are rebuilt (20,000 / 400 = 50 at most); 12,000 are scanned for. The rows
        # allowed are those least like the question, in the cells an approximate search
        # would not look into.
        for allowed in (30, 12_000):
            for query in _clustered(20, 64, seed=allowed):
                among = np.sort(np.argsort(stored @ query)[:allowed])
                rows, scores = index.nearest(query, 10, among)
                expected = among[np.argsort(-(stored[among] @ query), kind="stable")[:10]]
                assert set(rows.tolist()) == set(expected.tolist())
                best = np.sort(stored[among] @ query)[::-1][:10]
                np.testing.assert_allclose(scores, best, atol=1e-5)
    finally:
        index.close()
