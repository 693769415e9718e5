"""Ingest limits: a file too large or an article too long is refused politely, per file.

(The question-length limit and the per-user rate are tested where people meet them:
``tests/bot/test_cli.py``, ``tests/bot/test_telegram.py`` and ``tests/retrieval/test_search.py``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from corpus.loaders import MAX_ARTICLE_CHARS, MAX_FILE_BYTES
from retrieval.ingest import ingest
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import Manifest

DATA = Path(__file__).parents[1] / "data"


def _jsonl(path: Path, *bodies: str) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for n, body in enumerate(bodies):
            record = {"title": f"Story {n}", "body": body, "url": f"https://ex.org/{n}"}
            f.write(json.dumps(record) + "\n")
    return path


def _sentences(count: int) -> str:
    return " ".join(f"The mayor of town {n} opened bridge number {n} today." for n in range(count))


def test_the_defaults_are_the_loaders_safe_ones():
    settings = RetrievalSettings(_env_file=None)
    assert (settings.max_article_chars, settings.max_file_bytes) == (
        MAX_ARTICLE_CHARS,
        MAX_FILE_BYTES,
    )
    assert MAX_ARTICLE_CHARS == 200_000 and MAX_FILE_BYTES == 50_000_000


def test_an_article_too_long_is_rejected_with_its_reason_and_the_rest_indexed(tmp_path, embedder):
    long_body = _sentences(40)  # about 2,300 characters
    corpus = _jsonl(tmp_path / "mixed.jsonl", "A short story about a bridge opening.", long_body)
    settings = RetrievalSettings(index_dir=tmp_path / "index", max_article_chars=1000)
    report = ingest([corpus], settings, embedder)
    assert report.added == 1
    [problem] = report.rejected
    assert str(problem).startswith(f"{corpus}: article 'Story 1' is too long (")
    assert "characters after cleaning; the limit is 1,000): split it" in str(problem)
    assert "NEWSBOT_MAX_ARTICLE_CHARS" in str(problem)
    assert Manifest.read(settings.index_dir).article_count == 1


def test_a_file_too_large_is_rejected_unread(tmp_path, embedder):
    big = _jsonl(tmp_path / "big.jsonl", *[_sentences(3)] * 30)
    settings = RetrievalSettings(index_dir=tmp_path / "index", max_file_bytes=2000)
    report = ingest([big, DATA / "extra-article.md"], settings, embedder)
    assert report.added == 1
    [problem] = report.rejected
    size = big.stat().st_size
    assert str(problem) == (
        f"{big}: file is too large ({size:,} bytes; the limit is 2,000): split it, "
        "or raise NEWSBOT_MAX_FILE_BYTES"
    )


@pytest.fixture
def runner(monkeypatch, embedder, tmp_path):
    monkeypatch.setattr("retrieval.assistant.load_embedder", lambda settings: embedder)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("NEWSBOT_")]:
        monkeypatch.delenv(key)
    return CliRunner()


def test_the_ingest_summary_lists_each_refused_file_with_its_reason(runner, tmp_path):
    long_one = _jsonl(tmp_path / "long.jsonl", _sentences(40))
    big = _jsonl(tmp_path / "big.jsonl", *[_sentences(3)] * 30)
    result = runner.invoke(
        cli,
        ["ingest", str(long_one), str(big), str(DATA / "extra-article.md")],
        env={
            "NEWSBOT_INDEX_DIR": str(tmp_path / "index"),
            "NEWSBOT_MAX_ARTICLE_CHARS": "1000",
            "NEWSBOT_MAX_FILE_BYTES": "3000",
        },
    )
    assert result.exit_code == 0, result.output
    assert "Added 1 articles" in result.stdout and "rejected 2" in result.stdout
    rejected = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert len(rejected) == 2
    assert str(long_one) in rejected[0] and "is too long" in rejected[0]
    assert str(big) in rejected[1] and "file is too large" in rejected[1]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSBOT_MAX_ARTICLE_CHARS", "0"),
        ("NEWSBOT_MAX_FILE_BYTES", "ten"),
        ("NEWSBOT_LOCK_TIMEOUT", "-1"),
    ],
)
def test_a_bad_limit_is_one_line_naming_the_setting(runner, tmp_path, variable, value):
    result = runner.invoke(cli, ["ingest", str(DATA / "extra-article.md")], env={variable: value})
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("newsbot: error: invalid settings: ") and variable in line
