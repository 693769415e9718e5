"""`newsbot serve` with a refresh schedule: a story published while the bot runs becomes
answerable without a restart (a real process, the fake Bot API, a news site on 127.0.0.1)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from ..web.fake_web import FakeSite, Page, article_page, rss
from .fake_bot_api import TOKEN, private_chat, user
from .test_serve import _serve

PUBLISHED = "2024-05-14T09:00:00Z"
TRAM = ("Tram line extended to the airport", "The city's tram line now runs to the airport.")
ZOO = (
    "Zoo welcomes twin snow leopards",
    "Two snow leopard cubs were born at the city zoo on Saturday, their keepers said.",
)


def _feed(site: FakeSite, *paths: str) -> Page:
    items = [{"title": p, "link": site.url(p)} for p in paths]
    return Page(rss(items), "application/rss+xml")


def _ask_until(api, chat: int, question: str, wanted: str, timeout: float) -> str:
    """Ask every few seconds until a reply holds ``wanted`` (the index swaps in by itself)."""
    deadline = time.monotonic() + timeout
    reply = ""
    while time.monotonic() < deadline:
        before = len(api.sent(chat))
        api.message(private_chat(chat), user(chat), question)
        answered = time.monotonic() + 30
        while len(api.sent(chat)) == before and time.monotonic() < answered:
            time.sleep(0.05)
        reply = api.sent(chat)[-1].params["text"] if api.sent(chat) else ""
        if wanted in reply:
            return reply
        time.sleep(3)
    raise AssertionError(f"no reply with {wanted!r} in {timeout:g} s; the last was {reply!r}")


@pytest.mark.slow
def test_a_story_published_while_the_bot_runs_becomes_answerable(api, tmp_path, sample_index_dir):
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")
        for path, (title, text) in (("/news/tram", TRAM), ("/news/zoo", ZOO)):
            site.pages[path] = Page(article_page(title, [text], published=PUBLISHED))
        site.pages["/rss.xml"] = _feed(site, "/news/tram")
        process = _serve(
            tmp_path,
            NEWSBOT_TELEGRAM_TOKEN=TOKEN,
            NEWSBOT_TELEGRAM_API_URL=api.url,
            NEWSBOT_INDEX_DIR=str(index_dir),
            NEWSBOT_FEEDS=site.url("/rss.xml"),
            NEWSBOT_REFRESH_MINUTES="1",
            NEWSBOT_FETCH_DELAY="0",
        )
        try:
            # The round at start-up brings the tram story in.
            reply = _ask_until(api, 7, "Where does the tram line run now?", "airport", 120)
            assert "Tram line extended" in reply
            zoo_question = "What was born at the city zoo?"
            site.pages["/rss.xml"] = _feed(site, "/news/tram", "/news/zoo")
            # The next round, a minute after the first, brings the zoo story in.
            reply = _ask_until(api, 8, zoo_question, "snow leopard", 150)
            assert "Zoo welcomes twin snow leopards" in reply
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "News refresh: 1 added" in err
    assert "Traceback" not in err
    assert Path(index_dir / "sources.sqlite").exists()
