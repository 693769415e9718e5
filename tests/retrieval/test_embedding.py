import numpy as np
import pytest

from corpus.errors import ConfigurationError
from retrieval.embedding import QueryVectorCache
from retrieval.settings import PACKAGED_MODEL
from retrieval.torch_backend import SentenceTransformerEmbedder, resolve_model


def test_packaged_model_resolves_to_a_local_directory():
    path = resolve_model(PACKAGED_MODEL)
    assert isinstance(path, str)
    assert (__import__("pathlib").Path(path) / "modules.json").is_file()


def test_any_other_name_is_passed_through():
    assert (
        resolve_model("sentence-transformers/all-mpnet-base-v2")
        == "sentence-transformers/all-mpnet-base-v2"
    )


def test_embeddings_are_normalised_and_meaningful(embedder):
    docs = embedder.embed_documents(
        ["The president met the congress leader in Lima.", "Bake the bread for forty minutes."]
    )
    assert docs.shape == (2, embedder.dimension) == (2, 384)
    assert docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    query = embedder.embed_query("Who did the president meet in Peru?")
    assert query @ docs[0] > query @ docs[1] + 0.2


def test_empty_batch_gives_an_empty_matrix(embedder):
    assert embedder.embed_documents([]).shape == (0, 384)


def test_a_missing_model_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="NEWSBOT_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))


class _Counting:
    """The real embedder, counting the texts that reach the model."""

    def __init__(self, embedder):
        self.inner, self.embedded = embedder, []
        self.name, self.dimension = embedder.name, embedder.dimension

    def embed_documents(self, texts, *, progress=False):
        self.embedded += list(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        self.embedded.append(text)
        return self.inner.embed_query(text)


def test_repeated_questions_are_embedded_once_and_get_the_same_vectors(embedder):
    model = _Counting(embedder)
    cache = QueryVectorCache(model, size=8)
    first = cache.embed(["Who met whom in Lima?", "APEC 2024", "Who met whom in Lima?"])
    again = cache.embed(["APEC 2024", "Who met whom in Lima?"])
    assert model.embedded == ["Who met whom in Lima?", "APEC 2024"]
    np.testing.assert_array_equal(again, first[[1, 0]])
    np.testing.assert_allclose(first[0], embedder.embed_query("Who met whom in Lima?"), atol=1e-6)
    assert (cache.hits, cache.misses) == (3, 2)


def test_the_least_recently_used_question_is_forgotten_first(embedder):
    model = _Counting(embedder)
    cache = QueryVectorCache(model, size=2)
    cache.embed(["one"])
    cache.embed(["two"])
    cache.embed(["one"])  # now "two" is the oldest
    cache.embed(["three"])
    model.embedded.clear()
    cache.embed(["one", "two", "three"])
    assert model.embedded == ["two"]


def test_a_cache_of_size_zero_embeds_every_time(embedder):
    model = _Counting(embedder)
    cache = QueryVectorCache(model, size=0)
    cache.embed(["Lima"])
    cache.embed(["Lima"])
    assert model.embedded == ["Lima", "Lima"]
    assert cache.embed([]).shape == (0, embedder.dimension)
