"""Reads go to a streaming replica; a replica that goes down never fails a question."""

from __future__ import annotations

import logging
import time

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from corpus import sample_corpus_dir
from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings


def _in_recovery(assistant: NewsAssistant) -> bool:
    """Whether the database reads are routed to now is a replica."""
    return assistant.backend.read(  # type: ignore[attr-defined]
        lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    )


def test_questions_are_read_from_the_replica_until_it_goes_down(
    postgres_server, postgres_database, embedder, tmp_path, caplog
):
    primary = RetrievalSettings(
        store="postgres", database_url=postgres_database, index_dir=tmp_path
    )
    writer = NewsAssistant(primary, embedder=embedder)
    writer.ingest([sample_corpus_dir()])
    writer.close()
    replica = postgres_server.replica()
    try:
        dbname = conninfo_to_dict(postgres_database)["dbname"]
        settings = RetrievalSettings(
            store="postgres",
            database_url=postgres_database,
            database_replica_urls=make_conninfo(replica.url, dbname=dbname),
            index_dir=tmp_path,
        )
        assistant = NewsAssistant(settings, embedder=embedder)
        deadline = time.monotonic() + 10
        while assistant.backend.signature() is None:  # the replica catching up
            assert time.monotonic() < deadline
            time.sleep(0.1)

        assert _in_recovery(assistant)
        before = assistant.ask("Who met whom in Lima?")
        replica.stop()
        with caplog.at_level(logging.WARNING):
            after = assistant.ask("Who met whom in Lima?")

        for answer in (before, after):
            assert "Salhuana" in answer.text and "Boluarte" in answer.text
        assert not _in_recovery(assistant)  # the primary, for 30 s
        assert any("replica 1 failed" in r.getMessage() for r in caplog.records)
        assert "secret" not in caplog.text
        assistant.close()
    finally:
        replica.stop()
