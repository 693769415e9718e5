"""Running the real bot application against the fake Bot API, as ``newsbot serve`` does."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import Shutdown, build_application, run_bot
from bot.settings import Settings

from .fake_bot_api import TOKEN, FakeBotAPI


def make_settings(api: FakeBotAPI, **overrides: Any) -> Settings:
    """Settings pointing the bot at ``api``, ignoring any .env on the machine."""
    return Settings(_env_file=None, telegram_token=TOKEN, telegram_api_url=api.url, **overrides)


@contextlib.asynccontextmanager
async def running(
    api: FakeBotAPI,
    assistant: Any,
    *,
    poll_timeout: int = 5,
    shutdown: Shutdown | None = None,
    **overrides: Any,
) -> AsyncIterator[Application]:
    """The bot in ``run_bot``, serve's run loop, from start-up until the block ends.

    Leaving the block requests ``shutdown`` and waits for the graceful stop; a bot that
    stopped by itself (its token rejected) has stopped already.
    """
    shutdown = shutdown or Shutdown()
    # The bot's state file goes beside the assistant's index (a stub's: into a temporary
    # directory), never into ~/.local/share.
    if hasattr(assistant, "settings"):
        overrides.setdefault("index_dir", assistant.settings.index_dir)
    else:
        overrides.setdefault("state_path", Path(tempfile.mkdtemp()) / "bot-state.sqlite")
    settings = make_settings(api, **overrides)
    application = build_application(settings, assistant, shutdown)
    task = asyncio.create_task(run_bot(application, settings, shutdown, poll_timeout=poll_timeout))
    await api.wait_for(lambda: task.done() or application.running, 30, "the bot to start")
    if task.done():
        task.result()  # start-up failed: raise why
    try:
        yield application
    finally:
        shutdown.request()
        await task
