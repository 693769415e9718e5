"""The bot's own refresh schedule: a round of ``newsbot refresh`` every N minutes.

A round fetches, extracts and embeds: seconds to minutes of blocking work. It runs in a
daemon thread, never on the event loop, so questions keep being answered (the assistant
swaps in the new index generation on its own); and at shutdown the bot does not wait for a
round to finish: commits are atomic, so a round cut short loses nothing already stored. The
thread, and the embedding threads it starts, run at a lower CPU priority than the bot's
answers (``nice`` 10): on two cores a question then waits less for the refresh's
embeddings (README, Live news, measured by ``bench/refresh.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant
    from retrieval.refresh import RefreshReport

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ScheduledRefresh:
    """Refreshes ``sources`` at start and then every ``minutes``, until stopped."""

    def __init__(
        self,
        assistant: NewsAssistant,
        sources: list[str],
        minutes: int,
        *,
        after_round: Callable[[RefreshReport], Awaitable[None]] | None = None,
    ) -> None:
        self.assistant, self.sources, self.interval = assistant, sources, minutes * 60.0
        # Called with each round's report, e.g. to push new articles on followed topics.
        self.after_round = after_round
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _every_interval(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    def _round(self) -> RefreshReport:
        lower_priority()
        return self.assistant.refresh(self.sources, expire=True)

    async def run_once(self) -> RefreshReport | None:
        """One round, logged; a failing round is logged and the schedule goes on."""
        try:
            report = await in_daemon_thread(self._round)
        except Exception:
            logger.exception("The news refresh failed; trying again at the next round")
            return None
        finally:
            self.rounds += 1
        if report.skipped:
            logger.info("News refresh skipped: another process is refreshing the store now")
            return report
        logger.info(
            "News refresh: %d added, %d updated, %d unchanged, %d failed, %d expired (%.1f s)",
            len(report.added),
            len(report.updated),
            report.unchanged,
            len(report.failed),
            report.expired,
            report.seconds.get("total", 0.0),
        )
        if not report.found_anything:
            logger.warning("The news refresh read nothing: %s", report.what_was_read())
        if self.after_round is not None and (report.added or report.updated):
            try:
                await self.after_round(report)
            except Exception:
                logger.exception("Acting on the refresh's new articles failed")
        return report


#: How much less CPU priority background work takes (``nice``; 19 is the least).
BACKGROUND_NICENESS = 10


def lower_priority() -> None:
    """Lower the calling thread's CPU priority; threads it starts inherit it (Linux)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


async def in_daemon_thread(work: Callable[[], T]) -> T:
    """``await`` ``work()`` run in a daemon thread (which a shutdown does not wait for)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, functools.partial(future.set_exception, exc))
        else:
            loop.call_soon_threadsafe(settle, functools.partial(future.set_result, result))

    threading.Thread(target=run, name="newsbot-refresh", daemon=True).start()
    return await future
