"""Followed topics end to end: /follow in a private chat and in a group, refresh rounds from a
news site on 127.0.0.1, and what each chat receives, through the fake Bot API."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from bot import follows
from bot.state import SqliteState
from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

from ..web.fake_web import FakeSite, Page, article_page, rss
from .fake_bot_api import group_chat, private_chat, user
from .harness import running

PUBLISHED = "2024-12-05T09:00:00Z"
STORIES = {
    "/news/fed-holds": (
        "Federal Reserve holds interest rates steady",
        "The Federal Reserve held its benchmark interest rate steady on Wednesday, "
        "saying inflation was still too high to cut.",
    ),
    "/news/leopards": (
        "Zoo welcomes twin snow leopards",
        "Two snow leopard cubs were born at the city zoo on Saturday, their keepers said.",
    ),
    "/news/fed-chair": (
        "Federal Reserve chair warns on tariffs",
        "The Federal Reserve chair warned on Thursday that new tariffs could push prices up.",
    ),
    "/news/fed-minutes": (
        "Federal Reserve minutes show split over cuts",
        "Minutes of the Federal Reserve's last meeting showed officials split over rate cuts.",
    ),
    "/news/fed-jobs": (
        "Federal Reserve watches a cooling jobs market",
        "Federal Reserve officials said the jobs market was cooling but still solid.",
    ),
}
DM, GROUP, MEMBER = 601, -100601, 602


def _publish(site: FakeSite, *paths: str) -> None:
    for path in paths:
        title, text = STORIES[path]
        site.pages[path] = Page(article_page(title, [text], published=PUBLISHED))
    # The summary changes with the story, so the feed does too (a 304 would hide an edit).
    items = [
        {"title": STORIES[p][0], "link": site.url(p), "description": STORIES[p][1]} for p in paths
    ]
    site.pages["/rss.xml"] = Page(rss(items), "application/rss+xml")


@pytest.fixture
def newsroom(embedder, sample_index_dir, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    assistant = NewsAssistant(RetrievalSettings(index_dir=index_dir), embedder=embedder)
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")
        _publish(site)
        yield assistant, site
    assistant.close()


# What each chat saw, in order: (when, chat, "> asked" or the bot's text); printed at the
# end of the scenario (pytest -s shows it).
TRANSCRIPT: list[tuple[float, int, str]] = []


def _transcript(api, *chats: int) -> str:
    said = [(c.at, chat, c.params["text"]) for chat in chats for c in api.sent(chat)]
    lines = []
    for _, chat, text in sorted(TRANSCRIPT + said):
        where = "private chat" if chat > 0 else "group"
        lines.append(f"[{where}] " + text.replace("\n", "\n    "))
    return "\n".join(lines)


async def _say(api, chat, sender, text, *, replies=1):
    before = len(api.sent(chat["id"]))
    TRANSCRIPT.append((time.monotonic(), chat["id"], f"> {text}"))
    api.message(chat, sender, text)
    await api.wait_for_messages(chat["id"], before + replies)
    return api.sent(chat["id"])[-1].params["text"]


def _pushes(api, chat_id: int) -> list[str]:
    return [c.params["text"] for c in api.sent(chat_id) if "New on" in c.params["text"]]


async def test_new_articles_on_a_followed_topic_reach_each_chat_once(api, newsroom):
    assistant, site = newsroom
    settings = {
        "feeds": site.url("/rss.xml"),
        "refresh_minutes": 600,  # the round at start-up; the test runs the others
        "fetch_delay": 0,
        "pushes_per_hour": 2,
    }
    async with running(api, assistant, **settings) as application:
        schedule = application.bot_data["newsbot.schedule"]
        await api.wait_for(lambda: schedule.rounds >= 1, 60, "the first refresh round")
        dm, group, member = private_chat(DM), group_chat(GROUP), user(MEMBER)

        reply = await _say(api, dm, user(DM), "/follow Federal Reserve")
        assert "Now following “Federal Reserve”" in reply
        assert "already follows" in await _say(api, dm, user(DM), "/follow  federal   reserve")
        await _say(api, dm, user(DM), "/follow Taylor Swift")
        reply = await _say(
            api, group, member, f"/follow@{application.bot.username} Federal Reserve"
        )
        assert "Now following “Federal Reserve”" in reply
        assert "1. Federal Reserve\n2. Taylor Swift" in await _say(api, dm, user(DM), "/following")

        # One story on the topic and one not: one message to each chat, on the topic only.
        _publish(site, "/news/fed-holds", "/news/leopards")
        await schedule.run_once()
        await api.wait_for(lambda: _pushes(api, DM) and _pushes(api, GROUP), 30, "the pushes")
        for chat_id in (DM, GROUP):
            [push] = _pushes(api, chat_id)
            assert "New on “Federal Reserve”" in push
            assert "Federal Reserve holds interest rates steady" in push
            assert site.url("/news/fed-holds") in push and "2024-12-05" in push
            assert "held its benchmark interest rate steady" in push
            assert "leopard" not in push

        # The same story again (its text edited): never sent twice.
        title, text = STORIES["/news/fed-holds"]
        STORIES["/news/fed-holds"] = (title, text + " Markets had expected the pause.")
        _publish(site, "/news/fed-holds", "/news/leopards")
        report = await schedule.run_once()
        assert report is not None and report.updated
        assert len(_pushes(api, DM)) == len(_pushes(api, GROUP)) == 1

        # Meanwhile the group blocked the bot. Two new stories at once: one message listing
        # both to the private chat; the group's 403 ends its follows.
        api.blocked_chats.add(GROUP)
        _publish(site, "/news/fed-holds", "/news/fed-chair", "/news/fed-minutes")
        await schedule.run_once()
        await api.wait_for(lambda: len(_pushes(api, DM)) == 2, 30, "the second push")
        second = _pushes(api, DM)[1]
        assert "Federal Reserve chair warns on tariffs" in second
        assert "Federal Reserve minutes show split over cuts" in second
        assert "holds interest rates steady" not in second
        state = SqliteState(assistant.settings.index_dir / "bot-state.sqlite")
        try:
            assert state.follows(GROUP) == []
            assert [f.topic for f in state.follows(DM)] == ["Federal Reserve", "Taylor Swift"]
        finally:
            state.close()

        # A third message this hour would be one too many.
        _publish(site, "/news/fed-jobs")
        await schedule.run_once()
        assert len(_pushes(api, DM)) == 2
        api.blocked_chats.clear()
        assert "follows no topics" in await _say(api, group, member, "/following")

        assert "Stopped following “Taylor Swift”" in await _say(api, dm, user(DM), "/unfollow 2")
        assert "does not follow" in await _say(api, dm, user(DM), "/unfollow Taylor Swift")
        assert "too vague" in await _say(api, dm, user(DM), "/follow the")
        print(_transcript(api, DM, GROUP))


async def test_articles_stored_by_another_process_are_pushed_too(api, newsroom, monkeypatch):
    """`newsbot refresh` from cron, not the bot's schedule, stores the story: the bot, which
    looks for new articles every CHECK_SECONDS, pushes it all the same."""
    monkeypatch.setattr(follows, "CHECK_SECONDS", 0.5)
    assistant, site = newsroom
    async with running(api, assistant):
        reply = await _say(api, private_chat(DM), user(DM), "/follow Federal Reserve")
        assert "Now following" in reply
        _publish(site, "/news/fed-holds", "/news/leopards")
        writer = NewsAssistant(assistant.settings, embedder=assistant.embedder)  # "cron"
        report = await asyncio.to_thread(writer.refresh, [site.url("/rss.xml")])
        writer.close()
        assert len(report.added) == 2
        await api.wait_for(lambda: _pushes(api, DM), 30, "the push")
        [push] = _pushes(api, DM)
        assert "Federal Reserve holds interest rates steady" in push and "leopard" not in push


async def test_latest_lists_the_newest_articles(api, assistant):
    async with running(api, assistant):
        reply = await _say(api, private_chat(611), user(611), "/latest")
        assert "Latest articles" in reply and reply.count("<a href=") == 2
        reply = await _say(api, private_chat(611), user(611), "/latest Peru")
        # The sample articles are from 2024: nothing on Peru in the last seven days.
        assert "I found nothing on “Peru” since" in reply
