"""The bot's refresh schedule: background priority, and rounds that fail without stopping it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

import pytest

from bot.schedule import BACKGROUND_NICENESS, ScheduledRefresh, in_daemon_thread, lower_priority
from bot.settings import Settings
from retrieval.assistant import NewsAssistant


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_work_runs_at_lower_priority_and_its_threads_inherit_it():
    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def work() -> None:
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        lower_priority()
        seen["work"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - base
        thread = threading.Thread(target=child)
        thread.start()
        thread.join()
        seen["child"] -= base

    asyncio.run(in_daemon_thread(work))
    assert seen == {"work": BACKGROUND_NICENESS, "child": BACKGROUND_NICENESS}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < BACKGROUND_NICENESS


def test_an_exception_in_the_daemon_thread_reaches_the_awaiting_coroutine():
    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(in_daemon_thread(broken))


def test_a_round_that_reads_nothing_is_logged_and_the_schedule_goes_on(tmp_path, embedder, caplog):
    settings = Settings(_env_file=None, index_dir=tmp_path / "index")
    assistant = NewsAssistant(settings, embedder=embedder)
    schedule = ScheduledRefresh(assistant, ["http://127.0.0.1:9/feed.xml"], minutes=1)

    async def two_rounds() -> None:
        await schedule.run_once()
        await schedule.run_once()

    with caplog.at_level(logging.WARNING, logger="bot.schedule"):
        asyncio.run(two_rounds())
    assert schedule.rounds == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "The news refresh read nothing: http://127.0.0.1:9/feed.xml: cannot connect"
    )
