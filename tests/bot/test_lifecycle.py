"""How the bot starts and stops: through Telegram's hiccups at start-up, gracefully when
asked to stop, and by itself when its token is revoked.

The run loop is ``run_bot``, the one ``newsbot serve`` runs; ``test_serve.py`` drives the
same through a real process and its signals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.request

import pytest

from bot import app
from bot.app import Shutdown

from .fake_bot_api import BAD_GATEWAY, DROP, private_chat, user
from .harness import running
from .test_network_faults import StubAssistant

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMA = "Who met whom in Lima?"


class _Held(StubAssistant):
    """Answers once the test lets it (it runs in a worker thread, as the real search)."""

    def __init__(self) -> None:
        self.asked, self.release = threading.Event(), threading.Event()

    def ask(self, question, context=None, *, on_text=None, write=True):
        self.asked.set()
        self.release.wait(30)
        return super().ask(question, context)


async def test_start_up_waits_out_a_telegram_that_is_briefly_unreachable(api, monkeypatch):
    monkeypatch.setattr(app, "STARTUP_RETRY_DELAYS", (0.05, 0.1, 0.2))
    api.inject("getMe", BAD_GATEWAY, DROP)
    async with running(api, StubAssistant()):
        api.message(private_chat(50), user(50), LIMA)
        await api.wait_for_messages(50)
    assert [method for method, _ in api.faulted] == ["getMe", "getMe"]


async def test_stopping_waits_for_the_answers_being_prepared(api):
    assistant, shutdown = _Held(), Shutdown()
    async with running(api, assistant, shutdown=shutdown) as application:
        api.message(private_chat(51), user(51), LIMA)
        await api.wait_for(assistant.asked.is_set, 15, "the question to be asked")
        shutdown.request()  # as SIGTERM does
        await api.wait_for(lambda: not application.running, 15, "the bot to begin stopping")
        assert not api.sent(51)
        assistant.release.set()
    [answer] = api.sent(51)
    assert answer.params["text"].startswith("Someone met someone. [1]")


async def test_a_token_revoked_in_webhook_mode_stops_the_bot(api, caplog):
    """No long poll fails here: the bot learns of the revocation from a reply refused."""
    pytest.importorskip("tornado", reason='needs "python-telegram-bot[webhooks]"')
    port = _free_port()
    shutdown = Shutdown()
    with caplog.at_level(logging.INFO):
        async with running(
            api,
            StubAssistant(),
            shutdown=shutdown,
            webhook_url="https://bot.example.org/hook",
            webhook_port=port,
        ) as application:
            await asyncio.to_thread(_post_update, port, 1, chat=52)
            await api.wait_for_messages(52)
            api.revoke_token()
            await asyncio.to_thread(_post_update, port, 2, chat=53)
            await api.wait_for(lambda: not application.running, 15, "the bot to stop")
    assert shutdown.token_rejected
    refused = [c.method for c in api.calls if c.error == "Unauthorized"]
    # The answer was tried once, not retried, and no apology followed ("typing…" may have
    # been refused too, if it went out before the answer was ready).
    assert refused.count("sendMessage") == 1 and set(refused) <= {"sendMessage", "sendChatAction"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Could not answer update 2: Telegram rejected the token" in logged
    assert "stopping the bot" in logged
    assert not [r for r in caplog.records if r.exc_info]  # one line each, no traceback


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post_update(port: int, update_id: int, chat: int) -> None:
    """Post an update to the bot's webhook, as Telegram does."""
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": private_chat(chat),
            "from": user(chat),
            "text": LIMA,
        },
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hook",
        data=json.dumps(update).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
