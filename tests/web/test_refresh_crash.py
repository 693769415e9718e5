"""Crash safety of live news: `newsbot refresh` SIGKILLed mid-round never loses or doubles a
story, and never remembers as fetched what it did not store.

The refresh runs as a real process (the CLI entry point, forked from a warmed-up interpreter
by ``ingest_forker.py``) against a news site on 127.0.0.1, committing every few articles.
It is killed while fetching, inside commits and between them. After every kill the index
opens and passes its consistency checks, holds whole commits only, each story once, and an
updated story in its old or its new version, never both; the next round that is left to
finish stores exactly the rest.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from retrieval.settings import PACKAGED_MODEL
from retrieval.store.faiss_index import FaissIndex, index_exists

from ..retrieval.test_crash_safety import FORKER, ROOT, Forker, _committed_count, _staging
from .fake_web import FakeSite, Page, article_page, rss

STORIES = 40
BATCH = 4
PUBLISHED = "2024-05-14T09:00:00Z"


def _publish(site: FakeSite, version: int) -> None:
    for n in range(STORIES):
        site.pages[f"/news/{n}"] = Page(
            article_page(
                f"Harbour report number {n}",
                [
                    f"Version {version}: the harbour office said on Tuesday that pier {n} "
                    f"handled {n * 7 + version} ships last month, a record for the port.",
                ],
                published=PUBLISHED,
            )
        )
    items = [{"title": f"Report {n}", "link": site.url(f"/news/{n}")} for n in range(STORIES)]
    site.pages["/rss.xml"] = Page(rss(items, title=f"Harbour v{version}"), "application/rss+xml")


def _stored(index_dir: Path) -> dict[str, str]:
    """Title -> body, after the index opened with its consistency checks."""
    if not index_exists(index_dir):
        return {}
    index = FaissIndex.open(index_dir, model=PACKAGED_MODEL, dimension=384)
    try:
        articles = list(index.articles())
    finally:
        index.close()
    titles = [a.title for a in articles]
    assert len(titles) == len(set(titles)), "a story is stored twice"
    return {a.title: a.body for a in articles}


def _env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env |= {
        "NEWSBOT_INDEX_DIR": str(index_dir),
        "NEWSBOT_INGEST_BATCH_ARTICLES": str(BATCH),
        "NEWSBOT_FETCH_DELAY": "0",
        "NEWSBOT_FETCH_PER_HOST": "4",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return env


@pytest.mark.slow
def test_sigkill_mid_round_keeps_whole_commits_and_the_next_round_finishes(tmp_path):
    assert FORKER.exists()
    index_dir = tmp_path / "index"
    rng = random.Random(11)
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")
        forker = Forker(tmp_path, _env(index_dir))
        feed = site.url("/rss.xml")
        try:
            for version in (1, 2):
                _publish(site, version)
                for kill in range(4):
                    before = _committed_count(index_dir)
                    started = time.monotonic()
                    pid = forker.start(tmp_path / f"v{version}-{kill}.log", "refresh", feed)
                    if kill == 0:  # while it fetches (or loads the model)
                        time.sleep(rng.uniform(0.2, 1.0))
                    else:  # inside a commit
                        while not _staging(index_dir) and time.monotonic() - started < 90:
                            time.sleep(0.001)
                        time.sleep(rng.uniform(0.0, 0.05))
                    os.kill(pid, signal.SIGKILL)
                    code = forker.exit_code()
                    stored = _stored(index_dir)
                    assert len(stored) >= before, "a committed story is gone"
                    assert len(stored) % BATCH == 0 or len(stored) == STORIES
                    versions = {body.split(":")[0] for body in stored.values()}
                    assert versions <= {"Version 1", "Version 2"}
                    if code == 0:  # it finished before the kill: the round is whole
                        break
                # Left alone, the next round stores exactly what is missing.
                pid = forker.start(tmp_path / f"v{version}-done.log", "refresh", feed)
                assert forker.exit_code() == 0, (tmp_path / f"v{version}-done.log").read_text()
                stored = _stored(index_dir)
                assert len(stored) == STORIES
                assert {body.split(":")[0] for body in stored.values()} == {f"Version {version}"}
        finally:
            forker.close()
