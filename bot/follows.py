"""Followed topics: new articles on a chat's topics are pushed to it as they are indexed.

The bot looks for articles stored since it last looked (``FaissIndex.ingested_since``, the
mark kept in ``BotState``) after each of its own refresh rounds and every
``CHECK_SECONDS``, so articles a `newsbot refresh` run from cron stores are pushed too.

A topic is matched against the round's new articles by the rules of an answer (the same
search, sentence choice and abstention, ``NewsAssistant.news_on``), so an article that only
shares a word with the topic is not pushed. Each chat gets one message per topic, listing
every new article on it with the sentence that makes it relevant; never an article it was
sent before, and at most ``pushes_per_hour`` messages an hour. A chat that blocked the bot
or was deleted (Telegram answers 403, or "chat not found") loses its follows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from corpus.errors import QuestionError
from retrieval.answer import Answer
from retrieval.text import terms

from .delivery import deliver
from .formatting import format_push_html
from .state import BotState, Follow

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant

logger = logging.getLogger(__name__)

#: How often the bot looks for newly indexed articles besides after its own rounds.
CHECK_SECONDS = 60.0
#: Longer topics are questions, not topics; ask them instead.
MAX_TOPIC_CHARS = 100
_HOUR = timedelta(hours=1)
#: A look for articles to push holds the lease at most this long: a bot that dies holding
#: it delays the others' pushes by this much, no more.
LEASE_SECONDS = 600.0
_PUSH_LEASE = "push"


def checked_topic(topic: str) -> str:
    """``topic`` with its spaces tidied, or a ``QuestionError`` saying what to follow."""
    topic = " ".join(topic.split())
    if not topic:
        raise QuestionError("say what to follow, e.g. /follow Federal Reserve")
    if len(topic) > MAX_TOPIC_CHARS:
        raise QuestionError(
            f"a topic is at most {MAX_TOPIC_CHARS} characters; name it in a few words"
        )
    if not terms(topic):
        raise QuestionError(
            f"“{topic}” is too vague to follow: name a person, place, company or subject"
        )
    return topic


@dataclass(frozen=True, slots=True)
class Push:
    """One message to send: a chat's followed topic and its new articles (the citations)."""

    follow: Follow
    news: Answer


@dataclass(slots=True)
class PushReport:
    """What one round of pushes did, for the log and the tests."""

    sent: int = 0
    over_the_limit: int = 0
    failed: int = 0
    chats_dropped: list[int] = field(default_factory=list)
    skipped: bool = False  # another bot sharing the state was looking


class FollowPusher:
    """Matches followed topics against new articles and sends what matched."""

    def __init__(
        self,
        assistant: NewsAssistant,
        state: BotState,
        *,
        per_hour: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.assistant, self.state, self.per_hour, self.clock = assistant, state, per_hour, clock
        self._looking = asyncio.Lock()
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def matches(self, article_ids: Iterable[str]) -> list[Push]:
        """What to push for these new articles: blocking (search), run in a thread."""
        ids = list(dict.fromkeys(article_ids))
        follows = self.state.all_follows() if ids else []
        news: dict[str, Answer] = {}  # one search per topic, however many chats follow it
        pushes = []
        for follow in follows:
            key = follow.topic.casefold()
            if key not in news:
                news[key] = self.assistant.news_on(follow.topic, ids)
            found = news[key]
            if found.abstained:
                continue
            sent_before = self.state.pushed(follow.chat_id, (c.article_id for c in found.citations))
            fresh = [c for c in found.citations if c.article_id not in sent_before]
            if fresh:
                numbered = tuple(replace(c, n=n) for n, c in enumerate(fresh, start=1))
                pushes.append(Push(follow, replace(found, citations=numbered)))
        return pushes

    async def begin(self) -> None:
        """Look from now on: a bot's first start does not push the index it finds (a restart
        keeps its mark, and pushes what was indexed while it was down)."""
        if await asyncio.to_thread(self.state.push_mark) is None:
            _, newest = await asyncio.to_thread(self.assistant.ingested_since, None)
            if newest is not None:
                await asyncio.to_thread(self.state.set_push_mark, newest)

    async def push_new(self, bot: Bot) -> PushReport:
        """Push what was indexed since the last look (the mark's second included: a commit
        in the same second may have come after it; nothing is sent twice anyway).

        Bots sharing one state take turns (the "push" lease): while one looks, sends and
        moves the mark, another skips its look, and its next one starts from the new mark.
        """
        async with self._looking:  # the schedule's call and the watch's never overlap
            took = await asyncio.to_thread(
                self.state.take_lease, _PUSH_LEASE, self._holder, self.clock(), LEASE_SECONDS
            )
            if not took:
                return PushReport(skipped=True)
            try:
                mark = await asyncio.to_thread(self.state.push_mark)
                ids, newest = await asyncio.to_thread(self.assistant.ingested_since, mark)
                report = await self.push(bot, ids) if ids else PushReport()
                if newest is not None and newest != mark:
                    await asyncio.to_thread(self.state.set_push_mark, newest)
                return report
            finally:
                await asyncio.to_thread(self.state.release_lease, _PUSH_LEASE, self._holder)

    async def watch(self, bot: Bot) -> None:
        """:meth:`push_new` every ``CHECK_SECONDS`` until cancelled; failures are logged."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.push_new(bot)
            except Exception:
                logger.exception("Looking for new articles on followed topics failed")

    async def push(self, bot: Bot, article_ids: Iterable[str]) -> PushReport:
        """Send each chat the new articles on its topics (see the module docstring)."""
        report = PushReport()
        pushes = await asyncio.to_thread(self.matches, list(article_ids))
        dropped: set[int] = set()
        sent_now: dict[int, set[str]] = {}  # two topics of one chat may match one article
        for push in pushes:
            chat = push.follow.chat_id
            if chat in dropped:
                continue
            already = sent_now.setdefault(chat, set())
            citations = [c for c in push.news.citations if c.article_id not in already]
            if not citations:
                continue
            now = self.clock()
            sent = await asyncio.to_thread(self.state.pushes_since, chat, now - _HOUR)
            if sent >= self.per_hour:
                logger.info(
                    "Not pushing %r to chat %s: %d messages this hour already",
                    push.follow.topic,
                    chat,
                    sent,
                )
                report.over_the_limit += 1
                continue
            text = format_push_html(push.follow.topic, citations)
            try:
                await deliver(
                    functools.partial(
                        bot.send_message,
                        chat,
                        text,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                )
            except (Forbidden, BadRequest) as exc:
                if isinstance(exc, BadRequest) and "chat not found" not in exc.message.lower():
                    logger.warning("Telegram refused a push to chat %s: %s", chat, exc)
                    report.failed += 1
                    continue
                forgotten = await asyncio.to_thread(self.state.forget_chat, chat)
                logger.info(
                    "Chat %s blocked the bot or is gone (%s): dropped its %d follows",
                    chat,
                    exc,
                    forgotten,
                )
                dropped.add(chat)
                report.chats_dropped.append(chat)
                continue
            except TelegramError as exc:
                logger.warning("Could not push %r to chat %s: %s", push.follow.topic, chat, exc)
                report.failed += 1
                continue
            ids = [c.article_id for c in citations]
            await asyncio.to_thread(self.state.record_push, chat, ids, now)
            already.update(ids)
            report.sent += 1
        return report
