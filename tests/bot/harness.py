"""Running the real bot application against the fake Bot API, as ``run_polling`` would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.settings import Settings

from .fake_bot_api import TOKEN, FakeBotAPI


def make_settings(api: FakeBotAPI, **overrides: Any) -> Settings:
    """Settings pointing the bot at ``api``, ignoring any .env on the machine."""
    return Settings(_env_file=None, telegram_token=TOKEN, telegram_api_url=api.url, **overrides)


@contextlib.asynccontextmanager
async def running(
    api: FakeBotAPI, assistant: Any, *, poll_timeout: int = 5, **overrides: Any
) -> AsyncIterator[Application]:
    """The application as ``run_polling`` runs it: initialize, post_init, poll, start."""
    application = build_application(make_settings(api, **overrides), assistant)
    await application.initialize()
    assert application.post_init is not None
    await application.post_init(application)
    assert application.updater is not None
    await application.updater.start_polling(
        poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES
    )
    await application.start()
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
