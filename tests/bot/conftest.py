"""Bot fixtures: a fake Telegram Bot API on 127.0.0.1, and the real service for the bot."""

from __future__ import annotations

import shutil

import pytest

from bot.settings import Settings
from retrieval.assistant import NewsAssistant

from .fake_bot_api import FakeBotAPI


@pytest.fixture
def api():
    """A fresh fake Bot API server per test, recording what the bot sends."""
    server = FakeBotAPI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def assistant(embedder, sample_index_dir, tmp_path_factory):
    """The real service over a private copy of the sample index, shared by a module's bots."""
    index_dir = tmp_path_factory.mktemp("bot") / "index"
    shutil.copytree(sample_index_dir, index_dir)
    service = NewsAssistant(Settings(_env_file=None, index_dir=index_dir), embedder=embedder)
    service.load()
    yield service
    service.close()
