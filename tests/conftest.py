"""Shared fixtures: the real packaged model (loaded once) and a sample-corpus index.

Exported ONNX models go to a cache directory of the session (subprocesses inherit it through
``XDG_CACHE_HOME``), so the model is exported once per run and never into ``~/.cache``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corpus.loaders import sample_corpus_dir
from retrieval.assistant import NewsAssistant
from retrieval.embedding import Embedder, load_embedder
from retrieval.evaluation import evaluate_assistant, load_questions
from retrieval.settings import RetrievalSettings

ROOT = Path(__file__).parents[1]
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


@pytest.fixture(scope="session")
def readme_figure() -> Callable[[str, str], float]:
    """The figure the README states for a metric on the line that names a CI guard, so the
    guards and the README cannot drift apart."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()

    def figure(guard: str, metric: str) -> float:
        line = next(line for line in lines if guard in line)
        found = re.search(rf"{re.escape(metric)} (\d\.\d+)", line)
        assert found, f"the README's {guard!r} line states no {metric!r}"
        return float(found.group(1))

    return figure


@pytest.fixture(scope="session")
def sample_report(tmp_path_factory, embedder) -> Callable[[str], dict]:
    """``newsbot eval``'s report on a sample in tests/data (its corpus indexed once)."""
    reports: dict[str, dict] = {}

    def report(name: str) -> dict:
        if name not in reports:
            sample = DATA / name
            settings = RetrievalSettings(index_dir=tmp_path_factory.mktemp(name))
            assistant = NewsAssistant(settings, embedder=embedder)
            try:
                assistant.ingest([sample / "corpus.jsonl"])
                questions = load_questions(sample / "questions.jsonl")
                reports[name] = evaluate_assistant(assistant, questions).to_dict()
            finally:
                assistant.close()
        return reports[name]

    return report


@pytest.fixture
def runner(monkeypatch, embedder, tmp_path):
    """Runs `newsbot` commands in-process, reusing the session's real model instead of
    reloading it, in an empty directory (no stray .env) and without NEWSBOT_* variables."""
    from click.testing import CliRunner

    monkeypatch.setattr("retrieval.assistant.load_embedder", lambda settings: embedder)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("NEWSBOT_")]:
        monkeypatch.delenv(key)
    return CliRunner()
