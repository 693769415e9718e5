"""Shared fixtures: the real packaged model (loaded once), a sample-corpus index, PostgreSQL.

Exported ONNX models go to a cache directory of the session (subprocesses inherit it through
``XDG_CACHE_HOME``), so the model is exported once per run and never into ``~/.cache``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from corpus.loaders import sample_corpus_dir
from retrieval.assistant import NewsAssistant
from retrieval.embedding import Embedder, load_embedder
from retrieval.evaluation import evaluate_assistant, load_questions
from retrieval.settings import RetrievalSettings

from .postgres_server import PostgresServer, PostgresServerError

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL 18 with pgvector for the session, deleted at its end.

    A server that does not start fails the tests that need it, never skips them: a broken
    backend must not pass CI unseen.
    """
    server = PostgresServer()
    try:
        server.start()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            distance = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector").fetchone()
            assert distance == (2.0,), f"pgvector measured {distance}"
    except (PostgresServerError, psycopg.Error, AssertionError) as e:
        if isinstance(e, PostgresServerError):
            reason = str(e)  # with the log's tail already
        else:
            reason = f"{e}\nserver log:\n{server.log_tail()}"
        with contextlib.suppress(PostgresServerError):
            server.stop()
        pytest.fail(f"the tests' PostgreSQL did not start: {reason}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The conninfo of the session's PostgreSQL (its ``postgres`` database, superuser)."""
    return postgres_server.url


@contextlib.contextmanager
def _fresh_database(postgres_url: str) -> Iterator[str]:
    dbname = f"t_{uuid.uuid4().hex}"
    name = sql.Identifier(dbname)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    yield make_conninfo(postgres_url, dbname=dbname)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        # FORCE: a test that failed halfway may have left connections open
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The conninfo of a fresh, empty database of its own for one test, dropped after it."""
    with _fresh_database(postgres_url) as conninfo:
        yield conninfo


@pytest.fixture(scope="module")
def module_postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh database shared by one test module's read-only tests."""
    with _fresh_database(postgres_url) as conninfo:
        yield conninfo
