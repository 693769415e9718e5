"""The bot token never shows: not in logs (tracebacks included), messages, settings or errors.

A full bot run at DEBUG level goes through the error paths on purpose: Telegram answering
with errors that *echo the token back*, a handler failing with a traceback, polling
failing. Everything logged and printed is then searched for the token and for its secret
half, case-insensitively. (The 401 path, a token Telegram rejects, runs as a real process in
``test_serve.py``, which greps its output the same way.)
"""

from __future__ import annotations

import logging
import traceback

import pytest

from bot.app import bot_token
from bot.handlers import SOMETHING_WENT_WRONG
from bot.settings import Settings
from corpus.errors import ConfigurationError

from .fake_bot_api import TOKEN, Fault, private_chat, user
from .test_network_faults import StubAssistant, running

SECRET_HALF = TOKEN.split(":")[1]
WEBHOOK_SECRET = "hook-secret_do-not-show"


def _leaks(text: str) -> bool:
    """Case-insensitively: PTB capitalises error descriptions, lower-casing the rest."""
    text = text.lower()
    return any(s.lower() in text for s in (TOKEN, SECRET_HALF, WEBHOOK_SECRET))


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_full_run_through_every_error_path_never_logs_the_token(api, caplog, capsys):
    echo = Fault(status=400, description=f"Bad Request: chat not found for bot{TOKEN}")
    with caplog.at_level(logging.DEBUG):
        async with running(api, StubAssistant(), webhook_secret=WEBHOOK_SECRET) as application:
            api.message(private_chat(7), user(7), "Who met whom in Lima?")
            await api.wait_for_messages(7, 1)  # a normal answer

            api.inject("sendMessage", echo)  # the answer fails: the error handler's path
            api.message(private_chat(8), user(8), "Who met whom in Lima?")
            await api.wait_for_messages(8, 1)
            assert api.sent(8)[0].params["text"] == SOMETHING_WENT_WRONG

            api.inject("getUpdates", Fault(status=500, description=f"Internal error {TOKEN}"))
            api.message(private_chat(9), user(9), "Who met whom in Lima?")
            await api.wait_for_messages(9, 1)
            await api.wait_for(
                lambda: any("while polling" in r.getMessage() for r in caplog.records),
                10,
                "the polling error to be logged",
            )
            assert application.running
    records = [logging.Formatter().format(r) for r in caplog.records]
    logged = "\n".join(records)
    assert "Handling update" in logged and "Traceback" in logged  # the paths really ran
    assert "Exception happened while polling" in logged
    leaked = [r for r in records if _leaks(r)]
    assert not leaked, leaked[:2]
    out, err = capsys.readouterr()
    assert not _leaks(out + err)
    assert not [c for c in api.calls if _leaks(str(c.params.get("text", "")))]


def test_settings_never_show_their_secrets():
    settings = Settings(
        _env_file=None, telegram_token=TOKEN, webhook_secret=WEBHOOK_SECRET, top_k=5
    )
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert not _leaks(shown), shown
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    "token",
    [
        "12345:tooshort-secret",
        f"{SECRET_HALF}",  # the secret half without the id
        f"{TOKEN} trailing words",
        f"bot{TOKEN}",
    ],
    ids=["too-short", "no-id", "trailing-words", "prefixed"],
)
def test_a_malformed_token_error_does_not_repeat_it(token):
    with pytest.raises(ConfigurationError) as error:
        bot_token(Settings(_env_file=None, telegram_token=token))
    shown = "".join(traceback.format_exception(error.value)) + repr(error.value)
    assert token not in shown and "tooshort-secret" not in shown and not _leaks(shown)
    assert "does not look like a bot token" in str(error.value)


def test_database_passwords_and_the_llm_key_never_reach_a_log(caplog):
    from bot.app import configure_logging

    settings = Settings(
        _env_file=None,
        store="postgres",
        database_url="postgresql://newsbot:pg-primary-pw@db.test/newsbot",
        database_replica_urls="host=r1.test user=newsbot password=pg-replica-pw dbname=newsbot",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="m",
        llm_api_key="sk-llm-key",
    )
    assert not any(s in repr(settings) for s in ("pg-primary-pw", "pg-replica-pw", "sk-llm-key"))
    configure_logging(settings)
    logging.getLogger().addHandler(caplog.handler)  # basicConfig(force=True) took it away
    with caplog.at_level(logging.INFO):
        logging.getLogger("psycopg.pool").warning(
            "error connecting to postgresql://newsbot:pg-primary-pw@db.test/newsbot"
        )
        logging.getLogger("httpx").warning("Authorization: Bearer sk-llm-key; pg-replica-pw")
    assert "error connecting to" in caplog.text  # the record is there, its secrets are not
    for secret in ("pg-primary-pw", "pg-replica-pw", "sk-llm-key"):
        assert secret not in caplog.text
