import numpy as np
import pytest

from corpus.errors import ConfigurationError
from retrieval.embedding import SentenceTransformerEmbedder, resolve_model
from retrieval.settings import PACKAGED_MODEL


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
