"""What the bot does with each update: thin handlers around the question-answering service.

Each handler parses the update, calls ``NewsAssistant`` in a worker thread (inference and
FAISS search never run on the event loop), formats the ``Answer`` and replies. What a chat
carries from message to message (the question a follow-up leans on, the last answer for
/sources, followed topics, the rate limit's window) is kept in a ``BotState`` store, also
from worker threads, so it survives restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import html
import logging
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from telegram import (
    BotCommand,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from corpus.errors import QuestionError
from retrieval.answer import Answer
from retrieval.conversation import Conversation

from .access import AccessPolicy
from .delivery import deliver
from .follows import checked_topic
from .formatting import (
    ASK_PRIVATELY_HTML,
    EMPTY_ASK,
    UNKNOWN_COMMAND,
    format_answer_html,
    format_follows_html,
    format_headlines_html,
    format_sources_html,
    format_stats_html,
    help_html,
    html_to_plain,
    short_answer,
    split_html,
    start_html,
)
from .state import BotState
from .streaming import DraftMessage

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant

logger = logging.getLogger(__name__)

#: An answer ready sooner than this arrives without "typing…" first: Telegram recommends the
#: action only when a reply takes noticeable time, and most answers take milliseconds.
TYPING_DELAY = 0.5
#: Telegram shows "typing…" for about five seconds; renew it a little sooner.
TYPING_INTERVAL = 4.0

PRIVATE_COMMANDS = (
    BotCommand("start", "What I know and how to ask"),
    BotCommand("ask", "Ask a question about the news"),
    BotCommand("latest", "The newest articles, on a topic if you name one"),
    BotCommand("follow", "Get new articles on a topic as they come"),
    BotCommand("following", "The topics you follow"),
    BotCommand("unfollow", "Stop following a topic"),
    BotCommand("sources", "Sources and snippets of my last answer"),
    BotCommand("new", "Forget the conversation, start afresh"),
    BotCommand("stats", "What is indexed"),
    BotCommand("help", "How to use me"),
)
GROUP_COMMANDS = (
    BotCommand("ask", "Ask a question about the news"),
    BotCommand("latest", "The newest articles, on a topic if you name one"),
    BotCommand("follow", "New articles on a topic, posted here"),
    BotCommand("following", "The topics this group follows"),
    BotCommand("unfollow", "Stop following a topic here"),
    BotCommand("sources", "Sources and snippets of my last answer here"),
    BotCommand("new", "Forget this chat's conversation"),
    BotCommand("help", "How to use me"),
)

REFUSAL = "Sorry, this bot is private and you are not on its list of users."
NOT_TEXT = "I can only read text. Please type your question about the news."
SOMETHING_WENT_WRONG = "Sorry, something went wrong on my side. Please try again in a moment."
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def addressed_question(message: Message, username: str, bot_id: int) -> str | None:
    """The question in a group message if it is addressed to the bot, else ``None``.

    A message is addressed by an @mention of the bot (removed from the question) or by
    replying to one of the bot's messages.
    """
    text = message.text or ""
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return text
    for mention in message.parse_entities([MessageEntity.MENTION]).values():
        if mention.lower() == f"@{username.lower()}":
            start = text.find(mention)
            return (text[:start] + text[start + len(mention) :]).strip(" ,:")
    return None


class NewsBot:
    """The handlers of one bot; ``build_application`` registers them."""

    def __init__(
        self,
        assistant: NewsAssistant,
        *,
        access: AccessPolicy,
        state: BotState,
        questions_per_minute: int = 0,
        max_follows: int = 20,
        pushes_per_hour: int = 6,
        stream_answers: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.assistant = assistant
        self.access = access
        self.state = state
        self.questions_per_minute = questions_per_minute
        self.max_follows = max_follows
        self.pushes_per_hour = pushes_per_hour
        # An LLM writes the answers: show them as they are written (streaming.py).
        self.stream_answers = stream_answers
        self.clock = clock

    # -- before everything ----------------------------------------------------------------

    async def admit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop updates from users or chats outside the allowlists (handler group -1).

        In a private chat the user gets one line saying so; in groups and inline the bot
        stays silent, so a group that added it without permission is not spammed.
        """
        user, chat = update.effective_user, update.effective_chat
        if self.access.admits(user.id if user else None, chat.id if chat else None):
            return
        logger.info("Refused an update from user %s in chat %s", user and user.id, chat and chat.id)
        message = update.effective_message
        if message and chat and chat.type == ChatType.PRIVATE and update.message:
            await message.reply_text(REFUSAL)
        elif update.inline_query:
            await update.inline_query.answer([], cache_time=0, is_personal=True)
        raise ApplicationHandlerStop

    # -- commands -------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        stats = await asyncio.to_thread(self.assistant.stats)
        chat = update.effective_chat
        if chat is not None and chat.type == ChatType.PRIVATE:
            how = ASK_PRIVATELY_HTML
        else:
            how = (
                f"Ask with /ask <i>question</i>, by mentioning @{context.bot.username} or by "
                "replying to one of my messages; I stay quiet otherwise."
            )
        more = "/help says how to use me in groups and in other chats."
        await self._reply(update, f"{start_html(stats, how)}\n\n{more}")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, help_html(context.bot.username))

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ask <question> — everywhere, including /ask@botname in groups."""
        question = " ".join(context.args or [])
        if not question.strip():
            await self._reply(update, EMPTY_ASK)
            return
        await self._answer(update, context, question)

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        last = await asyncio.to_thread(self.state.last_answer, _chat_id(update))
        if last is None:
            await self._reply(update, "No answer yet in this chat: ask a question first.")
            return
        await self._reply(update, format_sources_html(last))

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, format_stats_html(await asyncio.to_thread(self.assistant.stats)))

    async def new(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = _chat_id(update)
        await asyncio.to_thread(self.state.set_previous_question, chat, None)
        await asyncio.to_thread(self.state.set_last_answer, chat, None)
        await self._reply(update, "Starting afresh: your next question stands on its own.")

    async def latest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/latest [topic] — the newest articles, on the topic if one is named."""
        topic = " ".join(context.args or []) or None
        try:
            headlines = await asyncio.to_thread(self.assistant.latest, topic)
        except QuestionError as exc:
            await self._reply(update, f"Sorry: {html.escape(str(exc))}")
            return
        await self._reply(update, format_headlines_html(headlines))

    async def follow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/follow <topic> — push new articles on it to this chat after each refresh."""
        try:
            topic = checked_topic(" ".join(context.args or []))
        except QuestionError as exc:
            await self._reply(update, f"Sorry: {html.escape(str(exc))}")
            return
        chat = _chat_id(update)
        follows = await asyncio.to_thread(self.state.follows, chat)
        known = {f.topic.casefold() for f in follows}
        if len(follows) >= self.max_follows and topic.casefold() not in known:
            await self._reply(
                update,
                f"This chat already follows {len(follows)} topics, the most I keep: "
                "/unfollow one first (/following lists them).",
            )
            return
        followed, new = await asyncio.to_thread(self.state.follow, chat, topic, self.clock())
        name = html.escape(followed.topic)
        if not new:
            await self._reply(update, f"This chat already follows “{name}”.")
            return
        await self._reply(
            update,
            f"Now following “{name}”. After each news refresh I post new articles on it here, "
            f"at most {self.pushes_per_hour} messages an hour. /following lists this chat's "
            "topics; /unfollow stops one.",
        )

    async def unfollow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unfollow <topic or number> — as /following numbers them."""
        which = " ".join(" ".join(context.args or []).split())
        if not which:
            await self._reply(
                update, "Say which: /unfollow <i>topic or number</i> (/following lists them)."
            )
            return
        gone = await asyncio.to_thread(self.state.unfollow, _chat_id(update), which)
        if gone is None:
            await self._reply(
                update,
                f"This chat does not follow “{html.escape(which)}”. /following lists its topics.",
            )
            return
        await self._reply(update, f"Stopped following “{html.escape(gone.topic)}”.")

    async def following(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        follows = await asyncio.to_thread(self.state.follows, _chat_id(update))
        await self._reply(update, format_follows_html(follows))

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, UNKNOWN_COMMAND)

    # -- messages -------------------------------------------------------------------------

    async def private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """In a private chat every text is a question."""
        message = update.effective_message
        assert message is not None
        await self._answer(update, context, message.text or "")

    async def group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """In a group only a mention or a reply to the bot is a question; the rest is ignored."""
        message = update.effective_message
        assert message is not None
        question = addressed_question(message, context.bot.username, context.bot.id)
        if question is not None:
            await self._answer(update, context, question)

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stickers, photos, voice… in a private chat."""
        await self._reply(update, NOT_TEXT)

    async def inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``@botname question`` in any chat offers the cited answer as one result."""
        query = update.inline_query
        assert query is not None
        if not query.query.strip():
            await query.answer([], button=_hint("Type a question about the news…"), cache_time=3600)
            return
        try:
            # Extractive: Telegram gives an inline query seconds, not an LLM's time.
            answer = await asyncio.to_thread(self.assistant.ask, query.query, write=False)
        except QuestionError:
            await query.answer([], button=_hint("Ask a shorter question"), cache_time=60)
            return
        if answer.abstained:
            where = f" {answer.ranges[0].label()}" if answer.ranges else " in my news"
            await query.answer([], button=_hint(f"Nothing found{where}"), cache_time=60)
            return
        text = split_html(format_answer_html(answer))[0]
        key = hashlib.sha256(query.query.encode()).hexdigest()[:32]
        try:
            await query.answer([_article(key, answer, text, ParseMode.HTML)], cache_time=60)
        except BadRequest as exc:
            if not _is_markup_error(exc):
                raise
            logger.warning("Telegram refused the HTML of an inline result: %s", exc)
            await query.answer([_article(key, answer, html_to_plain(text), None)], cache_time=60)

    # -- errors ---------------------------------------------------------------------------

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the traceback; tell the user, in one friendly sentence, that it failed."""
        update_id = update.update_id if isinstance(update, Update) else None
        if isinstance(context.error, InvalidToken):
            # The token was revoked: the bot is stopping (see app.Shutdown) and no reply can
            # get through; a traceback per question would only bury that news.
            logger.error("Could not answer update %s: Telegram rejected the token", update_id)
            return
        logger.error("Handling update %s failed", update_id, exc_info=context.error)
        if isinstance(update, Update) and update.message:
            with contextlib.suppress(TelegramError):
                await update.message.reply_text(SOMETHING_WENT_WRONG)

    # -- the shared path ------------------------------------------------------------------

    async def _answer(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, question: str
    ) -> None:
        message = update.effective_message
        assert message is not None
        user = update.effective_user
        limit = self.questions_per_minute
        wait = 0.0
        if user and limit:
            wait = await asyncio.to_thread(
                self.state.take_question_slot, user.id, self.clock(), limit
            )
        if wait:
            await self._reply(
                update,
                f"Slow down a little: I answer {limit} question{'s' * (limit != 1)} a minute. "
                f"Try again in {math.ceil(wait)} s.",
            )
            return
        chat = _chat_id(update)
        draft = DraftMessage(message) if self.stream_answers else None
        on_text = None
        if draft is not None:
            loop = asyncio.get_running_loop()

            def on_text(text: str) -> None:  # called in the worker thread
                loop.call_soon_threadsafe(draft.update, text)

        async with _typing(message):
            try:
                answer = await asyncio.to_thread(self._ask, chat, question, on_text)
            except QuestionError as exc:
                await self._reply(update, f"Sorry: {html.escape(str(exc))}")
                return
            except BaseException:
                if draft is not None:  # the error handler replies; no unchecked draft stays
                    await draft.abandon()
                raise
        if draft is None or not await draft.finish(format_answer_html(answer)):
            await self._reply(update, format_answer_html(answer))

    def _ask(
        self, chat: int, question: str, on_text: Callable[[str], None] | None = None
    ) -> Answer:
        """Answer in a worker thread, reading and updating the chat's conversation."""
        conversation = Conversation(self.state.previous_question(chat))
        follows = conversation.context_for(question)
        answer = self.assistant.ask(question, context=follows, on_text=on_text)
        conversation.remember(question, follows)
        self.state.set_previous_question(chat, conversation.previous_question)
        self.state.set_last_answer(chat, answer)
        return answer

    async def _reply(self, update: Update, text: str) -> None:
        """Reply with Telegram HTML, split if long; as plain text if Telegram refuses it.

        ``reply_text`` quotes the asking message in groups and not in private chats.
        """
        message = update.effective_message
        assert message is not None
        for part in split_html(text):
            try:
                await deliver(
                    functools.partial(
                        message.reply_text,
                        part,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=_NO_PREVIEW,
                    )
                )
            except BadRequest as exc:
                if not _is_markup_error(exc):
                    raise
                logger.warning("Telegram refused the HTML, sending plain text instead: %s", exc)
                await deliver(
                    functools.partial(
                        message.reply_text, html_to_plain(part), link_preview_options=_NO_PREVIEW
                    )
                )


@contextlib.asynccontextmanager
async def _typing(message: Message) -> AsyncIterator[None]:
    """Show "typing…" in the chat from ``TYPING_DELAY`` seconds on, until the block ends."""

    async def keep_typing() -> None:
        await asyncio.sleep(TYPING_DELAY)
        while True:
            try:
                await message.reply_chat_action(ChatAction.TYPING)
            except TelegramError as exc:  # cosmetic: never let it fail the answer
                logger.debug("Could not send the typing action: %s", exc)
            await asyncio.sleep(TYPING_INTERVAL)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None  # commands and messages always come from a chat
    return chat.id


def _is_markup_error(exc: BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower()


def _hint(text: str) -> InlineQueryResultsButton:
    return InlineQueryResultsButton(text=text, start_parameter="inline")


def _article(
    key: str, answer: Answer, text: str, parse_mode: str | None
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=key,
        title=short_answer(answer),
        description=f"{len(answer.citations)} cited source{'s' * (len(answer.citations) != 1)}",
        input_message_content=InputTextMessageContent(
            text, parse_mode=parse_mode, link_preview_options=_NO_PREVIEW
        ),
    )
