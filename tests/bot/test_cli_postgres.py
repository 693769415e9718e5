"""`newsbot` against PostgreSQL: schema migration, ingest and ask, and copying the store."""

from __future__ import annotations

import json

from bot.cli import cli
from corpus import sample_corpus_dir
from retrieval.store.postgres import SCHEMA_VERSION
from tests.writing.fake_chat_api import unused_url


def _on(monkeypatch, url: str) -> None:
    monkeypatch.setenv("NEWSBOT_STORE", "postgres")
    monkeypatch.setenv("NEWSBOT_DATABASE_URL", url)


def test_db_migrate_creates_the_tables_once(runner, monkeypatch, postgres_database):
    _on(monkeypatch, postgres_database)

    first = runner.invoke(cli, ["db", "migrate"])
    again = runner.invoke(cli, ["db", "migrate"])

    assert first.exit_code == 0, first.output
    assert f"version 0 → {SCHEMA_VERSION}" in first.output
    assert f"already at version {SCHEMA_VERSION}" in again.output


def test_ask_from_postgres_then_from_a_faiss_copy(runner, monkeypatch, postgres_database, tmp_path):
    _on(monkeypatch, postgres_database)
    assert runner.invoke(cli, ["ingest", str(sample_corpus_dir())]).exit_code == 0

    stats = json.loads(runner.invoke(cli, ["stats", "--json"]).output)
    from_postgres = runner.invoke(cli, ["ask", "--json", "Who met whom in Lima?"])
    copied = runner.invoke(cli, ["migrate-store", "--to", "faiss", "--index", str(tmp_path / "ix")])
    monkeypatch.setenv("NEWSBOT_STORE", "faiss")
    from_faiss = runner.invoke(
        cli, ["ask", "--json", "Who met whom in Lima?", "--index", str(tmp_path / "ix")]
    )

    assert stats["store"].startswith("the PostgreSQL database")
    assert (stats["articles"], stats["chunks"]) == (2, 8)
    assert copied.exit_code == 0, copied.output
    assert "Copied 2 articles and 8 passages" in copied.output
    answers = [json.loads(r.output) for r in (from_postgres, from_faiss)]
    for answer in answers:
        assert "Salhuana" in answer["answer"] and "Boluarte" in answer["answer"]
        assert len(answer["citations"]) == 2
    assert answers[0]["answer"] == answers[1]["answer"]


def test_an_unreachable_database_is_one_line_without_the_password(runner, monkeypatch):
    address = unused_url().removeprefix("http://").removesuffix("/v1")
    url = f"postgresql://newsbot:hunter2-secret@{address}/newsbot"
    _on(monkeypatch, url)

    result = runner.invoke(cli, ["ask", "Who met whom in Lima?"])

    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in result.output
    assert "hunter2" not in result.output


def test_postgres_without_a_database_url_says_which_setting(runner, monkeypatch):
    monkeypatch.setenv("NEWSBOT_STORE", "postgres")

    result = runner.invoke(cli, ["stats"])

    assert result.exit_code == 1
    assert "NEWSBOT_DATABASE_URL" in result.output
