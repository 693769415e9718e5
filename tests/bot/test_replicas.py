"""Two `newsbot serve` replicas sharing one PostgreSQL database behave as one bot.

Real processes against a real PostgreSQL. Each replica has a fake Bot API of its own: the
updates a load balancer would split between them. A question asked through one replica
gives context to a follow-up asked through the other; both refresh the same feed on a
schedule, and an article on a followed topic is pushed once, not once per replica.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest

from bot.pg_state import PostgresState
from corpus import sample_corpus_dir
from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

from ..web.fake_web import FakeSite, Page, article_page, rss
from .fake_bot_api import TOKEN, FakeBotAPI, private_chat, user
from .test_serve import _serve

LIMA = "Who did Vietnam's president meet in Lima?"
ZOO = (
    "Zoo welcomes twin snow leopards",
    "Two snow leopard cubs were born at the city zoo on Saturday, their keepers said.",
)
CHAT = 41
PUBLISHED = "2024-05-14T09:00:00Z"


def _reply(api: FakeBotAPI, chat: int, text: str, timeout: float = 60) -> str:
    before = len(api.sent(chat))
    api.message(private_chat(chat), user(chat), text)
    deadline = time.monotonic() + timeout
    while len(api.sent(chat)) == before:
        assert time.monotonic() < deadline, f"no reply to {text!r}"
        time.sleep(0.05)
    return api.sent(chat)[-1].params["text"]


def _pushes(*apis: FakeBotAPI) -> list[str]:
    return [
        c.params["text"]
        for api in apis
        for c in api.sent(CHAT)
        if "snow leopard" in c.params["text"]
    ]


@pytest.mark.slow
def test_two_replicas_share_context_refresh_once_and_push_once(
    tmp_path, postgres_database, embedder
):
    settings = RetrievalSettings(
        store="postgres", database_url=postgres_database, index_dir=tmp_path / "setup"
    )
    setup = NewsAssistant(settings, embedder=embedder)
    setup.ingest([sample_corpus_dir()])
    _, indexed = setup.ingested_since(None)
    setup.close()
    with PostgresState(postgres_database) as state:  # a chat follows, the bot has looked
        state.follow(CHAT, "snow leopards", datetime.now(UTC))
        assert indexed is not None
        state.set_push_mark(indexed)

    one, two = FakeBotAPI().start(), FakeBotAPI().start()
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")
        site.pages["/news/zoo"] = Page(article_page(ZOO[0], [ZOO[1]], published=PUBLISHED))
        site.pages["/rss.xml"] = Page(
            rss([{"title": ZOO[0], "link": site.url("/news/zoo")}]), "application/rss+xml"
        )
        common = {
            "NEWSBOT_TELEGRAM_TOKEN": TOKEN,
            "NEWSBOT_STORE": "postgres",
            "NEWSBOT_DATABASE_URL": postgres_database,
            "NEWSBOT_FEEDS": site.url("/rss.xml"),
            "NEWSBOT_REFRESH_MINUTES": "1",
            "NEWSBOT_FETCH_DELAY": "0",
        }
        replicas = [
            _serve(
                tmp_path,
                NEWSBOT_TELEGRAM_API_URL=api.url,
                NEWSBOT_INDEX_DIR=str(tmp_path / f"replica-{n}"),
                **common,
            )
            for n, api in ((1, one), (2, two))
        ]
        started = time.monotonic()
        try:
            first = _reply(one, 7, LIMA)
            follow_up = _reply(two, 7, "and what award did he receive?")
            # The push comes from whichever replica's round stored the story first.
            deadline = time.monotonic() + 90
            while not _pushes(one, two):
                assert time.monotonic() < deadline, "the followed topic was never pushed"
                time.sleep(0.2)
            # Each replica looks for new articles at least once a minute: give both a look.
            time.sleep(max(0.0, started + 75 - time.monotonic()))
            sources = _reply(two, 7, "/sources")
            for process in replicas:
                process.send_signal(signal.SIGTERM)
            logs = [process.communicate(timeout=60)[1] for process in replicas]
        finally:
            for process in replicas:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            one.stop()
            two.stop()

    assert "Salhuana" in first or "Boluarte" in first
    assert "Order" in follow_up.split("<b>Sources</b>")[0]  # read in the other's context
    assert "<blockquote>" in sources  # the last answer, given by the other replica
    pushes = _pushes(one, two)
    assert len(pushes) == 1, pushes
    assert all(process.returncode == 0 for process in replicas), logs
    for n, log in enumerate(logs, start=1):  # the scenario, for `pytest -s`
        for line in log.splitlines():
            if "refresh" in line.lower() or "push" in line.lower():
                print(f"replica {n}: {line}")
    rounds = "\n".join(logs)
    assert rounds.count("1 added") == 1, rounds  # one replica stored the story, once
