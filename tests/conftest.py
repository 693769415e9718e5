"""Shared fixtures: the real packaged model (loaded once) and a sample-corpus index.

Exported ONNX models go to a cache directory of the session (subprocesses inherit it through
``XDG_CACHE_HOME``), so the model is exported once per run and never into ``~/.cache``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpus.loaders import sample_corpus_dir
from retrieval.assistant import NewsAssistant
from retrieval.embedding import Embedder, load_embedder
from retrieval.settings import RetrievalSettings

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's cache of exported models (the default ``NEWSBOT_MODEL_CACHE_DIR``)."""
    with pytest.MonkeyPatch.context() as patch:
        cache_home = tmp_path_factory.mktemp("cache")
        patch.setenv("XDG_CACHE_HOME", str(cache_home))
        yield cache_home / "newsbot" / "models"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The packaged all-MiniLM-L6-v2 on the default backend, as production uses it."""
    return load_embedder(RetrievalSettings())


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """An index of the built-in sample corpus, built once; copy it before writing to it."""
    index_dir = tmp_path_factory.mktemp("sample-index")
    NewsAssistant(RetrievalSettings(index_dir=index_dir), embedder=embedder).ingest(
        [sample_corpus_dir()]
    )
    return index_dir


@pytest.fixture(scope="session")
def sample_assistant(sample_index_dir: Path, embedder) -> Iterator[NewsAssistant]:
    """A read-only assistant over the sample corpus."""
    assistant = NewsAssistant(RetrievalSettings(index_dir=sample_index_dir), embedder=embedder)
    yield assistant
    assistant.close()


@pytest.fixture
def writable_sample_index(sample_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the sample index that a test may change or damage."""
    target = tmp_path / "index"
    shutil.copytree(sample_index_dir, target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> RetrievalSettings:
    """Settings with a fresh, empty index directory."""
    return RetrievalSettings(index_dir=tmp_path / "index")
