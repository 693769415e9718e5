"""`newsbot serve` as an operator runs it: a real process against the fake Bot API server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.app import TOKEN_REVOKED

from .fake_bot_api import TOKEN, private_chat, user


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    return {**env, **extra}


def _serve(cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("token", "complaint"),
    [(None, "NEWSBOT_TELEGRAM_TOKEN is not set"), ("12345:tooshort", "does not look like")],
)
def test_a_missing_or_malformed_token_is_one_clear_line(tmp_path, token, complaint):
    env = {"NEWSBOT_INDEX_DIR": str(tmp_path / "index")}
    if token:
        env["NEWSBOT_TELEGRAM_TOKEN"] = token
    process = _serve(tmp_path, **env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("newsbot: error: ") and complaint in err
    assert "tooshort" not in err
    assert not (tmp_path / "index").exists()  # failed before indexing anything


@pytest.mark.slow
def test_a_token_refused_by_the_server_stops_with_a_clear_message(api, tmp_path, sample_index_dir):
    api.unauthorized = True
    process = _serve(
        tmp_path,
        NEWSBOT_TELEGRAM_TOKEN=TOKEN,
        NEWSBOT_TELEGRAM_API_URL=api.url,
        NEWSBOT_INDEX_DIR=str(sample_index_dir),
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "newsbot: error: Telegram rejected NEWSBOT_TELEGRAM_TOKEN (401 Unauthorized): check the "
        "token with @BotFather (/token) and set it again"
    )
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err
    assert "Traceback" not in err


@pytest.mark.slow
def test_serve_polls_answers_and_stops_cleanly_on_sigterm(api, tmp_path, sample_index_dir):
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    started = time.monotonic()
    process = _serve(
        tmp_path,
        NEWSBOT_TELEGRAM_TOKEN=TOKEN,
        NEWSBOT_TELEGRAM_API_URL=api.url,
        NEWSBOT_INDEX_DIR=str(index_dir),
    )
    try:
        _wait(lambda: api.sent(None, "getUpdates"), 120, "the first getUpdates")
        startup = time.monotonic() - started
        methods = [c.method for c in api.calls]
        assert methods[0] == "getMe"
        assert methods.index("setMyCommands") < methods.index("deleteWebhook")  # post_init first
        assert methods.index("deleteWebhook") < methods.index("getUpdates")

        api.message(private_chat(42), user(42), "Who met whom in Lima?")
        _wait(lambda: api.sent(42), 30, "the answer")
        assert "Salhuana" in api.sent(42)[0].params["text"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    last_poll = api.sent(None, "getUpdates")[-1]
    assert last_poll.params["offset"] == 2  # the answered update was confirmed on the way out
    assert "is ready: 2 articles" in err
    assert TOKEN not in out + err and "Traceback" not in err
    print(f"\nnewsbot serve: first getUpdates {startup:.2f} s after start")


@pytest.mark.slow
def test_a_token_revoked_while_serving_stops_it_with_a_clear_message(
    api, tmp_path, sample_index_dir
):
    """PTB's polling ends on a 401 without a word; the bot must not idle on, deaf."""
    process = _serve(
        tmp_path,
        NEWSBOT_TELEGRAM_TOKEN=TOKEN,
        NEWSBOT_TELEGRAM_API_URL=api.url,
        NEWSBOT_INDEX_DIR=str(sample_index_dir),
    )
    try:
        _wait(lambda: api.sent(None, "getUpdates"), 120, "the first getUpdates")
        api.message(private_chat(44), user(44), "Who met whom in Lima?")
        _wait(lambda: api.sent(44), 30, "the answer")
        calls = len(api.calls)
        api.revoke_token()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    assert err.strip().splitlines()[-1] == f"newsbot: error: {TOKEN_REVOKED}"
    assert "Traceback" not in err
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err
    assert len(api.calls) - calls <= 2  # the poll the revocation ended, and no retrying


@pytest.mark.slow
def test_webhook_mode_registers_the_hook_and_answers_what_telegram_posts(
    api, tmp_path, sample_index_dir
):
    pytest.importorskip("tornado", reason='needs "python-telegram-bot[webhooks]"')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = "hook-secret_42"
    process = _serve(
        tmp_path,
        NEWSBOT_TELEGRAM_TOKEN=TOKEN,
        NEWSBOT_TELEGRAM_API_URL=api.url,
        NEWSBOT_INDEX_DIR=str(sample_index_dir),
        NEWSBOT_WEBHOOK_URL="https://bot.example.org/newsbot-hook",
        NEWSBOT_WEBHOOK_PORT=str(port),
        NEWSBOT_WEBHOOK_SECRET=secret,
    )
    try:
        [hook] = _wait(lambda: api.sent(None, "setWebhook"), 120, "setWebhook")
        assert hook.params["url"] == "https://bot.example.org/newsbot-hook"
        assert hook.params["secret_token"] == secret
        update = {
            "update_id": 7,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": private_chat(43),
                "from": user(43),
                "text": "Who met whom in Lima?",
            },
        }

        def post(headers: dict[str, str]) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/newsbot-hook",
                data=json.dumps(update).encode(),
                headers={"Content-Type": "application/json", **headers},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert _wait(lambda: _try(post, {}), 30, "the webhook server") == 403  # not Telegram
        assert post({"X-Telegram-Bot-Api-Secret-Token": secret}) == 200
        _wait(lambda: api.sent(43), 30, "the answer")
        assert "Salhuana" in api.sent(43)[0].params["text"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert not api.sent(None, "getUpdates")
    assert TOKEN not in out + err and secret not in out + err


def _try(post, headers):
    try:
        return post(headers)
    except OSError:  # not listening yet
        return None
