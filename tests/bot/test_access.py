"""Allowlists, and keeping secrets out of logs and settings errors (the per-user rate limit:
test_state.py and test_telegram.py)."""

from __future__ import annotations

import logging

import pytest

from bot.access import AccessPolicy
from bot.app import SecretFilter, check_serve_settings
from bot.settings import Settings
from corpus.errors import ConfigurationError

TOKEN = "123456789:AAHsecret-part-of-the-token_abcdefgh"


def test_empty_allowlists_admit_everyone():
    assert AccessPolicy().admits(1, -100) and AccessPolicy().admits(None, None)


def test_both_allowlists_must_admit_an_update():
    policy = AccessPolicy(user_ids=frozenset({1}), chat_ids=frozenset({-100}))
    assert policy.admits(1, -100)
    assert not policy.admits(2, -100)  # a stranger in the allowed group
    assert not policy.admits(1, -200)  # an allowed user in another group
    assert not policy.admits(1, 1)  # private chats are chats too
    assert policy.admits(1, None)  # inline queries have no chat


def test_allowlists_are_read_as_comma_separated_ids(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSBOT_ALLOWED_USER_IDS", "123, 456")
    monkeypatch.setenv("NEWSBOT_ALLOWED_CHAT_IDS", "-1001234567890")
    settings = Settings()
    assert settings.allowed_user_ids == {123, 456}
    assert settings.allowed_chat_ids == {-1001234567890}


def test_the_secret_filter_cleans_messages_arguments_and_tracebacks():
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError as exc:
        record = logging.LogRecord(
            "telegram",
            logging.ERROR,
            __file__,
            1,
            "url %s",
            (f"/bot{TOKEN}/getMe",),
            (type(exc), exc, exc.__traceback__),
        )
    assert SecretFilter([TOKEN]).filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text and "url /bot<secret>/getMe" in text
    assert "The token `<secret>` was rejected" in text and "Traceback" in text


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({}, "NEWSBOT_TELEGRAM_TOKEN is not set"),
        ({"telegram_token": "not a token"}, "does not look like a bot token"),
        ({"telegram_token": TOKEN, "webhook_url": "http://x.org/hook"}, "https://"),
        (
            {"telegram_token": TOKEN, "webhook_url": "https://x.org/h", "webhook_secret": "a b"},
            "NEWSBOT_WEBHOOK_SECRET",
        ),
        (
            {"telegram_token": TOKEN, "refresh_minutes": 30},
            "NEWSBOT_REFRESH_MINUTES is set but NEWSBOT_FEEDS is empty",
        ),
        (
            {"telegram_token": TOKEN, "refresh_minutes": 30, "feeds": "no-such-list.opml"},
            "neither a URL nor a file listing URLs",
        ),
    ],
)
def test_serve_settings_are_checked_before_anything_starts(changes, complaint):
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        check_serve_settings(Settings(_env_file=None, **changes))
    assert "not a token" not in str(caught.value)
