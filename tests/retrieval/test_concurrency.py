"""One writer, many readers: the write lock waits or fails clearly, readers swap in new data.

Writers here are separate ``ingest`` calls with their own ``FaissIndex`` objects: they share
nothing with the reading assistant but the directory, exactly as another process would.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus.errors import IndexStoreError
from retrieval.assistant import NewsAssistant
from retrieval.ingest import ingest
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import MANIFEST_NAME, Manifest

DATA = Path(__file__).parents[1] / "data"
LIMA = "Who met whom in Lima?"
CHANCAY = "When was the port of Chancay inaugurated?"


class SlowEmbedder:
    """The real embedder, taking ``delay`` seconds longer per batch: a long-running ingest."""

    def __init__(self, inner, delay: float, started: threading.Event | None = None) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.delay, self.started = delay, started or threading.Event()
        self.max_tokens, self.count_tokens = inner.max_tokens, inner.count_tokens

    def embed_documents(self, texts, *, progress=False):
        self.started.set()
        time.sleep(self.delay)
        return self.inner.embed_documents(texts, progress=progress)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def _article(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"port-{n}.md"
    path.write_text(
        f"---\ntitle: Port number {n} opens in Callao\nurl: https://example.org/port/{n}\n"
        f"date: 2024-11-2{n}\n---\nThe harbour authority opened port number {n} in Callao on "
        f"Monday, with {n + 3} new cranes for container ships.\n"
    )
    return path


def test_a_second_ingest_waits_for_the_first_then_succeeds(writable_sample_index, embedder):
    first_running = threading.Event()
    slow = SlowEmbedder(embedder, delay=1.0, started=first_running)
    patient = RetrievalSettings(index_dir=writable_sample_index, lock_timeout=30)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ingest, [DATA / "extra-article.md"], patient, slow)
        assert first_running.wait(30)
        started = time.monotonic()
        second = pool.submit(ingest, [DATA / "loaders" / "articles.jsonl"], patient, embedder)
        assert first.result().added == 1
        report = second.result()
        waited = time.monotonic() - started
    assert report.added > 0 and waited > 0.5  # it queued behind the first, then wrote
    manifest = Manifest.read(writable_sample_index)
    assert manifest.article_count == 2 + 1 + report.added


@pytest.mark.parametrize("timeout", [0, 0.3])
def test_a_second_ingest_gives_up_with_a_clear_message(writable_sample_index, embedder, timeout):
    running = threading.Event()
    slow = SlowEmbedder(embedder, delay=1.5, started=running)
    settings = RetrievalSettings(index_dir=writable_sample_index, lock_timeout=timeout)
    before = Manifest.read(writable_sample_index)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(ingest, [DATA / "extra-article.md"], settings, slow)
        assert running.wait(30)
        started = time.monotonic()
        with pytest.raises(IndexStoreError) as error:
            ingest([DATA / "loaders" / "articles.jsonl"], settings, embedder)
        gave_up = time.monotonic() - started
        assert first.result().added == 1
    message = str(error.value)
    assert message.startswith(f"another newsbot process is writing to {writable_sample_index}")
    assert "NEWSBOT_LOCK_TIMEOUT" in message
    assert ("waited 0.3 s" in message) == bool(timeout)
    assert timeout <= gave_up < timeout + 0.5
    assert Manifest.read(writable_sample_index).article_count == before.article_count + 1


def test_a_running_assistant_swaps_in_a_newer_index_without_failing_questions(
    writable_sample_index, embedder, tmp_path
):
    reader = NewsAssistant(
        RetrievalSettings(index_dir=writable_sample_index, index_reload_seconds=0),
        embedder=embedder,
    )
    assert reader.ask(CHANCAY).abstained  # not in the sample corpus
    old_generation = reader.index.generation
    in_flight = reader.searcher()  # a question that started before any new commit
    writer = RetrievalSettings(index_dir=writable_sample_index, ingest_batch_articles=1)

    stop = threading.Event()
    answers, failures = [], []

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                answers.append(reader.ask(LIMA))
            except Exception as exc:  # any failure is the finding
                failures.append(exc)

    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            pool.submit(keep_asking)
        time.sleep(0.3)
        # Two commits, while ``in_flight`` still reads the first generation.
        ingest([DATA / "extra-article.md", _article(tmp_path, 1)], writer, embedder)
        time.sleep(0.3)
        stop.set()

    assert not failures, failures[:3]
    assert len(answers) > 10 and all(not a.abstained for a in answers)
    assert in_flight.search(LIMA, 3), "a question begun on the old index still completes"
    # The generation it reads stays on disk while it does, and only that one of the old.
    live = Manifest.read(writable_sample_index).generation
    assert sorted(p.name for p in writable_sample_index.glob("gen-*")) == [old_generation, live]
    del in_flight  # the last reader of the old generation lets go: it is removed at once
    gc.collect()
    assert [p.name for p in writable_sample_index.glob("gen-*")] == [live]

    answer = reader.ask(CHANCAY)  # no restart
    assert not answer.abstained
    assert answer.citations[0].title == "Peru opens a new port at Chancay"
    assert reader.stats().articles == 4
    reader.close()


def test_the_reload_check_is_rate_limited(writable_sample_index, embedder, tmp_path):
    reader = NewsAssistant(
        RetrievalSettings(index_dir=writable_sample_index, index_reload_seconds=3600),
        embedder=embedder,
    )
    reader.load()
    ingest(
        [DATA / "extra-article.md"], RetrievalSettings(index_dir=writable_sample_index), embedder
    )
    assert reader.ask(CHANCAY).abstained  # not looked for yet: at most once an hour
    reader.settings = RetrievalSettings(index_dir=writable_sample_index, index_reload_seconds=0)
    assert not reader.ask(CHANCAY).abstained
    reader.close()


def test_a_newer_index_that_cannot_be_opened_leaves_the_current_one_answering(
    writable_sample_index, embedder, caplog
):
    reader = NewsAssistant(
        RetrievalSettings(index_dir=writable_sample_index, index_reload_seconds=0),
        embedder=embedder,
    )
    reader.load()
    manifest = writable_sample_index / MANIFEST_NAME
    other = {**json.loads(manifest.read_text()), "model": "intfloat/e5-small-v2"}
    tmp = manifest.with_name("replacement.json")
    tmp.write_text(json.dumps(other))
    tmp.replace(manifest)  # as a commit by another configuration would
    with caplog.at_level(logging.WARNING, logger="retrieval.assistant"):
        assert not reader.ask(LIMA).abstained
        assert not reader.ask(LIMA).abstained
    [warning] = [r for r in caplog.records if r.name == "retrieval.assistant"]
    assert "Keeping the index in use" in warning.getMessage()
    assert "intfloat/e5-small-v2" in warning.getMessage()
    reader.close()
