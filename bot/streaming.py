"""An answer shown while an LLM writes it: one message, edited as the text grows.

The first text that arrives is sent as a message at once; later text edits it, at most once
every ``interval`` seconds (Telegram allows about one edit a second per chat, and fewer
edits leave the rate limiter room for other chats). The draft is the model's unchecked
words, marked as such; :meth:`DraftMessage.finish` then replaces it with the final,
citation-checked answer and its sources, which wins whenever the two differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
import time

from telegram import LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from .delivery import deliver
from .formatting import html_to_plain, split_html

logger = logging.getLogger(__name__)

__all__ = ["DraftMessage", "draft_html"]

#: Seconds between two edits of a draft, at least.
EDIT_INTERVAL = 1.0
#: A draft longer than this is cut (the final answer is split into messages instead).
_DRAFT_CHARS = 3500
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def draft_html(text: str) -> str:
    """The model's words so far, escaped, and a note that they are not yet checked."""
    text = " ".join(text.split())
    if len(text) > _DRAFT_CHARS:
        text = text[:_DRAFT_CHARS].rsplit(" ", 1)[0]
    return f"{html.escape(text)} …\n\n<i>Writing; checking each sentence against its source…</i>"


class DraftMessage:
    """The message an answer is streamed into, in reply to ``question``."""

    def __init__(self, question: Message, *, interval: float = EDIT_INTERVAL) -> None:
        self.question = question
        self.interval = interval
        self.message: Message | None = None  # the draft, once sent
        self.edits = 0
        self._latest = ""
        self._shown = ""
        self._last_shown = -float("inf")
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def update(self, text: str) -> None:
        """The text so far (call on the event loop; from a thread, via call_soon_threadsafe)."""
        if self._closed or not text.strip():
            return
        self._latest = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._show_latest())

    async def finish(self, final_html: str) -> bool:
        """Replace the draft with ``final_html`` (more messages if it is long). False when no
        draft was ever sent: the caller then replies as usual."""
        self._closed = True
        if self._task is not None:
            await self._task  # a send in flight completes, so its message is known
        if self.message is None:
            return False
        parts = split_html(final_html)
        await self._edit(parts[0], final=True)
        for part in parts[1:]:
            await deliver(
                functools.partial(
                    self.question.reply_text,
                    part,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=_NO_PREVIEW,
                )
            )
        return True

    async def abandon(self) -> None:
        """Take the draft back (answering failed): unchecked words must not stay on screen."""
        self._closed = True
        if self._task is not None:
            await self._task
        if self.message is not None:
            try:
                await self.message.delete()
            except TelegramError as exc:
                logger.warning("Could not delete an unfinished draft: %s", exc)
            self.message = None

    async def _show_latest(self) -> None:
        while not self._closed and self._latest != self._shown:
            wait = self._last_shown + self.interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._closed:
                    return
            text = self._latest
            try:
                if self.message is None:
                    self.message = await self.question.reply_text(
                        draft_html(text),
                        parse_mode=ParseMode.HTML,
                        link_preview_options=_NO_PREVIEW,
                    )
                else:
                    await self._edit(draft_html(text))
            except TelegramError as exc:  # a draft is cosmetic: the final answer still comes
                logger.debug("Could not show the draft: %s", exc)
            self._shown, self._last_shown = text, time.monotonic()

    async def _edit(self, text: str, *, final: bool = False) -> None:
        assert self.message is not None
        message = self.message

        async def edit(body: str, parse_mode: str | None) -> Message:
            await message.edit_text(body, parse_mode=parse_mode, link_preview_options=_NO_PREVIEW)
            return message

        self.edits += 1
        try:
            if final:
                await deliver(functools.partial(edit, text, ParseMode.HTML))
            else:
                await edit(text, ParseMode.HTML)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            if final and "can't parse entities" in exc.message.lower():
                logger.warning("Telegram refused the HTML, editing in plain text instead: %s", exc)
                with contextlib.suppress(BadRequest):
                    await deliver(functools.partial(edit, html_to_plain(text), None))
                return
            raise
