"""The chat client on the wire: what it sends, what it accepts, and the one time budget."""

from __future__ import annotations

import email.utils
import time

import pytest
from pydantic import ValidationError

from retrieval.settings import RetrievalSettings
from retrieval.writing import ChatClient, ChatFailure

from .fake_chat_api import FakeChatAPI, Reply, unused_url

MESSAGES = [{"role": "system", "content": "Rules."}, {"role": "user", "content": "Question?"}]


@pytest.fixture(scope="module")
def chat_api():
    with FakeChatAPI() as api:
        yield api


def client(url: str, **options) -> ChatClient:
    return ChatClient(url, "fake", **{"timeout": 3.0, **options})


def test_a_completion_and_a_stream_give_the_same_text(chat_api):
    chat_api.script(Reply("Cuong met Boluarte [1]."))
    assert client(chat_api.url).complete(MESSAGES) == "Cuong met Boluarte [1]."
    seen: list[str] = []
    chat_api.script(Reply("Cuong met Boluarte [1].", pieces=4))
    assert client(chat_api.url).complete(MESSAGES, on_text=seen.append) == seen[-1]
    assert seen[-1] == "Cuong met Boluarte [1]." and len(seen) == 4
    sent = chat_api.requests[-1]
    assert sent.body["messages"] == MESSAGES and sent.body["stream"] is True
    assert "Authorization" not in sent.headers  # no key configured, none sent


def test_a_server_that_ignores_stream_still_answers(chat_api):
    chat_api.script(Reply(body=b'{"choices": [{"message": {"content": "Plain [1]."}}]}'))
    seen: list[str] = []
    assert client(chat_api.url).complete(MESSAGES, on_text=seen.append) == "Plain [1]."
    assert seen == ["Plain [1]."]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"<html>Bad gateway</html>"), "the reply was not JSON"),
        (Reply(body=b'{"choices": []}'), "not a chat completion"),
        (Reply(body=b'{"choices": [{"message": {"content": 7}}]}'), "content is not text"),
        (
            Reply(
                body=b'data: {"error": {"message": "out of memory"}}\n\n',
                content_type="text/event-stream",
            ),
            "mid-reply: out of memory",
        ),
        (Reply(status=401), "check NEWSBOT_LLM_API_KEY"),
        (Reply(status=400), "the server answered 400: scripted 400"),
        (Reply(""), "no text"),
    ],
)
def test_a_bad_reply_is_a_failure_with_a_reason(chat_api, reply, reason):
    chat_api.script(reply)
    with pytest.raises(ChatFailure) as failure:
        client(chat_api.url, api_key="sk-secret-key").complete(MESSAGES, on_text=lambda _: None)
    assert reason in failure.value.reason
    assert "sk-secret-key" not in failure.value.reason


def test_the_key_goes_in_the_authorization_header(chat_api):
    chat_api.script(Reply("ok [1]."))
    client(chat_api.url, api_key="sk-secret-key").complete(MESSAGES)
    assert chat_api.requests[-1].headers["Authorization"] == "Bearer sk-secret-key"


def test_retry_after_as_an_http_date_is_waited_for_when_it_fits(chat_api):
    soon = email.utils.formatdate(time.time() + 1, usegmt=True)
    chat_api.script(Reply(status=503, headers={"Retry-After": soon}), Reply("Back [1]."))
    started = time.monotonic()
    assert client(chat_api.url, timeout=10.0).complete(MESSAGES) == "Back [1]."
    assert len(chat_api.requests) == 2 and time.monotonic() - started < 5


def test_a_stream_slower_than_the_timeout_is_cut_at_the_timeout(chat_api):
    chat_api.script(Reply("word " * 20, pieces=20, piece_delay=0.3))  # 6 s in all
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(ChatFailure, match=r"no complete reply within 1\.5 s"):
        client(chat_api.url, timeout=1.5).complete(MESSAGES, on_text=seen.append)
    assert 1.4 < time.monotonic() - started < 2.5
    assert seen  # what arrived in time was passed on as a draft


def test_a_server_that_is_down_fails_at_once():
    started = time.monotonic()
    with pytest.raises(ChatFailure, match="could not reach"):
        client(unused_url(), timeout=20.0).complete(MESSAGES)
    assert time.monotonic() - started < 2


def test_settings_name_what_is_missing_or_wrong():
    with pytest.raises(ValidationError, match="NEWSBOT_LLM_MODEL is not"):
        RetrievalSettings(_env_file=None, llm_base_url="http://127.0.0.1:8080/v1")
    with pytest.raises(ValidationError, match="not an http"):
        RetrievalSettings(_env_file=None, llm_base_url="127.0.0.1:8080", llm_model="m")
    key = RetrievalSettings(
        _env_file=None, llm_base_url="http://h/v1", llm_model="m", llm_api_key="sk-1"
    )
    assert "sk-1" not in repr(key) and "sk-1" not in str(key.model_dump())
