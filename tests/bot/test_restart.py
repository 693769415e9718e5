"""`newsbot serve` stopped and started again, by SIGTERM and by SIGKILL: followed topics,
the conversation a follow-up leans on, the last answer's sources and the memory of what
was pushed are all still there (a real process, the fake Bot API, a news site)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest

from bot.state import SqliteState
from retrieval.sources import SourceStore

from ..web.fake_web import FakeSite, Page, article_page, rss
from .fake_bot_api import TOKEN, private_chat, user
from .test_serve import _serve, _wait

CHAT = 701
LIMA = "Who met whom in Lima?"
# Answered only when read with LIMA: alone it names no one (checked at the end).
FOLLOW_UP = "what did he receive from the congress?"
FED = ("Federal Reserve holds interest rates steady", "/news/fed")
FED_TEXT = "The Federal Reserve held its benchmark interest rate steady on Wednesday."


def _publish(site: FakeSite, edition: int) -> None:
    """The Fed story, edited a little in each edition (so every round sees it updated)."""
    title, path = FED
    text = FED_TEXT + " Markets had expected it." * edition
    site.pages[path] = Page(article_page(title, [text], published="2024-12-04T09:00:00Z"))
    item = {"title": title, "link": site.url(path), "description": text}
    site.pages["/rss.xml"] = Page(rss([item]), "application/rss+xml")


def _say(api, text: str) -> str:
    before = len(api.sent(CHAT))
    api.message(private_chat(CHAT), user(CHAT), text)
    _wait(lambda: len(api.sent(CHAT)) > before, 60, f"a reply to {text!r}")
    return api.sent(CHAT)[-1].params["text"]


def _pushes(api) -> list[str]:
    return [c.params["text"] for c in api.sent(CHAT) if "New on" in c.params["text"]]


@pytest.mark.slow
def test_state_survives_sigterm_and_sigkill(api, tmp_path, sample_index_dir):
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    state_path = tmp_path / "state" / "bot.sqlite"
    with SqliteState(state_path) as state:  # followed before the bot ever ran
        state.follow(CHAT, "Federal Reserve", datetime.now(UTC))
    rounds = SourceStore(index_dir)

    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")

        def start(edition: int) -> tuple[subprocess.Popen[str], str | None]:
            _publish(site, edition)
            before = rounds.last_round()
            process = _serve(
                tmp_path,
                NEWSBOT_TELEGRAM_TOKEN=TOKEN,
                NEWSBOT_TELEGRAM_API_URL=api.url,
                NEWSBOT_INDEX_DIR=str(index_dir),
                NEWSBOT_STATE_PATH=str(state_path),
                NEWSBOT_FEEDS=site.url("/rss.xml"),
                NEWSBOT_REFRESH_MINUTES="60",
                NEWSBOT_FETCH_DELAY="0",
            )
            return process, before

        def round_done(before: str | None) -> None:
            _wait(lambda: rounds.last_round() != before, 120, "the refresh round at start-up")
            time.sleep(1.0)  # the pushes follow the round's commit

        # Run 1: the round at start-up brings the story, and it is pushed once.
        process, before = start(edition=0)
        try:
            _wait(lambda: _pushes(api), 120, "the push of the followed topic")
            assert "Federal Reserve holds interest rates steady" in _pushes(api)[0]
            assert "Luong Cuong" in _say(api, LIMA)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
        finally:
            _kill(process)

        # Run 2, after SIGTERM: the story comes back edited, and is not pushed again.
        process, before = start(edition=1)
        try:
            round_done(before)
            assert "1. Federal Reserve" in _say(api, "/following")
            sources = _say(api, "/sources")  # the last answer of run 1
            assert "Sources of the last answer" in sources and "Salhuana" in sources
            follow_up = _say(api, FOLLOW_UP)  # read with LIMA, asked in run 1
            assert "Salhuana" in follow_up.split("<b>Sources</b>")[0]
            assert len(_pushes(api)) == 1
        finally:
            process.kill()  # SIGKILL: no goodbye, nothing flushed on the way out
            process.communicate()

        # Run 3, after SIGKILL: everything written before the kill is there.
        process, before = start(edition=2)
        try:
            round_done(before)
            assert "1. Federal Reserve" in _say(api, "/following")
            assert _say(api, "/sources").count("<blockquote>") == 1  # run 2's last answer
            follow_up = _say(api, FOLLOW_UP)  # a chain of follow-ups keeps LIMA
            assert "Salhuana" in follow_up.split("<b>Sources</b>")[0]
            assert len(_pushes(api)) == 1
            # The same words in a chat with no conversation find nothing: it was the context.
            api.message(private_chat(CHAT + 1), user(CHAT + 1), FOLLOW_UP)
            _wait(lambda: api.sent(CHAT + 1), 60, "the reply in another chat")
            assert "found nothing" in api.sent(CHAT + 1)[-1].params["text"]
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        finally:
            _kill(process)


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate()
