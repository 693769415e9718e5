"""The Telegram bot end to end: the real PTB application against a fake Bot API server.

Nothing inside python-telegram-bot is patched: the bot long-polls ``getUpdates`` over HTTP
on 127.0.0.1 and answers with ``sendMessage``, which the fake server validates as Telegram
does. The question-answering service is the real one over the sample corpus, built once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

import pytest

from bot import handlers
from bot.handlers import NOT_TEXT, REFUSAL, SOMETHING_WENT_WRONG
from retrieval.answer import Answer, Citation
from retrieval.assistant import NewsAssistant

from .fake_bot_api import (
    BOT_ID,
    BOT_USERNAME,
    TOKEN,
    FakeBotAPI,
    check_telegram_html,
    group_chat,
    private_chat,
    user,
)
from .harness import running

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMA = "Who met whom in Lima?"
URLS = ("https://en.vietnamplus.vn/post-304001.vnp", "https://en.vietnamplus.vn/post-303979.vnp")
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Newsbot", "username": BOT_USERNAME}
STICKER = {
    "file_id": "s1",
    "file_unique_id": "u1",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
PHOTO = [{"file_id": "p1", "file_unique_id": "u2", "width": 90, "height": 90}]
VOICE = {"file_id": "v1", "file_unique_id": "u3", "duration": 2}


@pytest.fixture
async def app(api, assistant):
    async with running(api, assistant) as application:
        yield application


def texts(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [c.params["text"] for c in api.sent(chat_id)]


async def ask_privately(api: FakeBotAPI, chat_id: int, text: str, count: int = 1) -> str:
    before = len(api.sent(chat_id))
    api.message(private_chat(chat_id), user(chat_id), text)
    sent = await api.wait_for_messages(chat_id, before + count)
    return "\n".join(c.params["text"] for c in sent[before:])


# -- private chat ----------------------------------------------------------------------------


async def test_start_greets_with_what_the_bot_knows_and_registers_commands(api, app):
    reply = await ask_privately(api, 101, "/start")
    assert "Hello" in reply and "<b>2</b> news articles" in reply and "2024-11-14" in reply
    scopes = {
        c.params["scope"]["type"]: c.params["commands"] for c in api.sent(None, "setMyCommands")
    }
    assert set(scopes) == {"all_private_chats", "all_group_chats"}
    assert {"start", "help", "ask", "sources", "stats", "new"} <= {
        c["command"] for c in scopes["all_private_chats"]
    }
    assert {"ask", "latest", "follow", "following", "unfollow"} <= {
        c["command"] for c in scopes["all_group_chats"]
    }
    help_text = await ask_privately(api, 101, "/help")
    assert f"@{BOT_USERNAME}" in help_text and "/sources" in help_text
    assert "/follow <i>topic</i>" in help_text and "/latest" in help_text
    stats = await ask_privately(api, 101, "/stats")
    assert "<b>2</b> articles" in stats


async def test_a_private_question_gets_a_cited_html_answer(api, app):
    await ask_privately(api, 102, LIMA)
    [message] = api.sent(102)
    text = message.params["text"]
    assert message.params["parse_mode"] == "HTML"
    for name in ("Luong Cuong", "Boluarte", "Salhuana"):
        assert name in text
    assert "[1]" in text and "[2]" in text and "<b>Sources</b>" in text
    for url in URLS:
        assert f'<a href="{url}">' in text
    assert "reply_parameters" not in message.params  # no quoting in a private chat


async def test_a_quick_answer_comes_without_typing_first(api, app, monkeypatch):
    monkeypatch.setattr(handlers, "TYPING_DELAY", 5.0)  # far above a sample answer's time
    await ask_privately(api, 108, LIMA)
    assert len(api.sent(108)) == 1 and api.sent(108, "sendChatAction") == []


async def test_typing_shows_and_is_renewed_while_a_slow_answer_is_prepared(
    api, assistant, monkeypatch
):
    monkeypatch.setattr(handlers, "TYPING_DELAY", 0.05)
    monkeypatch.setattr(handlers, "TYPING_INTERVAL", 0.05)
    async with running(api, _Slow(assistant, 0.5)):
        await ask_privately(api, 103, LIMA)
    typing = api.sent(103, "sendChatAction")
    [message] = api.sent(103)
    assert len(typing) >= 4 and all(t.params["action"] == "typing" for t in typing)
    assert typing[0].at < message.at


async def test_sources_shows_the_full_snippets_of_the_last_answer(api, app):
    assert "ask a question first" in await ask_privately(api, 104, "/sources")
    await ask_privately(api, 104, LIMA)
    sources = await ask_privately(api, 104, "/sources")
    assert sources.count("<blockquote>") == 2
    assert "Eduardo Salhuana agreed on the need to strengthen parliamentary cooperation" in sources
    for url in URLS:
        assert f'<a href="{url}">' in sources


async def test_follow_ups_are_read_in_context_until_new(api, app):
    await ask_privately(api, 105, LIMA)
    follow_up = await ask_privately(api, 105, "and what award did he receive?")
    assert "Order" in follow_up.split("<b>Sources</b>")[0]
    assert "Starting afresh" in await ask_privately(api, 105, "/new")
    assert "ask a question first" in await ask_privately(api, 105, "/sources")


async def test_an_unrelated_question_is_declined_without_citations(api, app):
    reply = await ask_privately(api, 106, "What is the boiling point of mercury on Mars?")
    assert "found nothing about that in my news" in reply and "rephras" in reply
    assert "<a " not in reply and "[1]" not in reply


async def test_bad_input_gets_a_short_polite_reply_and_the_bot_keeps_serving(api, app):
    huge = await ask_privately(api, 107, "x" * 50_000)
    assert "50,000 characters" in huge and "limit is 1,000" in huge and len(huge) < 200
    chat = private_chat(107)
    api.message(chat, user(107), sticker=STICKER)
    await api.wait_for_messages(107, 2)
    api.message(chat, user(107), photo=PHOTO)
    api.message(chat, user(107), voice=VOICE)
    await api.wait_for_messages(107, 4)
    assert texts(api, 107)[1:] == [NOT_TEXT] * 3
    assert "Ask something after /ask" in await ask_privately(api, 107, "/ask")
    assert "/help" in await ask_privately(api, 107, "/weather")
    assert "Salhuana" in await ask_privately(api, 107, LIMA)
    assert all("Traceback" not in t for t in texts(api, 107))


# -- groups ----------------------------------------------------------------------------------


async def test_in_groups_the_bot_answers_only_when_addressed_and_replies_to_the_question(api, app):
    group, alice = group_chat(-1001), user(201)
    ignored = [
        api.message(group, alice, LIMA),
        api.message(group, alice, f"@someone_else {LIMA}"),
        api.message(group, alice, f"/ask@other_bot {LIMA}"),
        api.message(group, alice, "/weather"),
        api.message(group, alice, sticker=STICKER),
    ]
    mention = api.message(group, alice, f"@{BOT_USERNAME} {LIMA}")
    [first] = await api.wait_for_messages(-1001, 1)
    assert first.params["reply_parameters"]["message_id"] == mention["message_id"]
    assert "Salhuana" in first.params["text"]

    command = api.message(group, alice, f"/ask@{BOT_USERNAME} {LIMA}")
    await api.wait_for_messages(-1001, 2)
    bot_message = {**first.result, "from": BOT_USER}
    reply = api.message(group, user(202), "and what award did he receive?", reply_to=bot_message)
    sent = await api.wait_for_messages(-1001, 3)
    answered = [c.params["reply_parameters"]["message_id"] for c in sent]
    assert answered == [mention["message_id"], command["message_id"], reply["message_id"]]
    assert "Order" in sent[2].params["text"]
    # Everything before the mention had been read and ignored by then.
    assert not {m["message_id"] for m in ignored} & set(answered)
    assert len(api.sent(-1001)) == 3


# -- inline mode -----------------------------------------------------------------------------


async def test_inline_queries_offer_the_cited_answer(api, app):
    query_id = api.inline_query(user(301), LIMA)
    [call] = await api.wait_for(lambda: api.sent(None, "answerInlineQuery"))
    assert call.params["inline_query_id"] == query_id
    [result] = call.params["results"]
    assert result["type"] == "article" and "Luong Cuong" in result["title"]
    content = result["input_message_content"]
    assert content["parse_mode"] == "HTML" and f'<a href="{URLS[0]}">' in content["message_text"]

    api.inline_query(user(301), "   ")
    empty = await api.wait_for(lambda: api.sent(None, "answerInlineQuery")[1:])
    assert empty[0].params["results"] == [] and "button" in empty[0].params


# -- access ----------------------------------------------------------------------------------


async def test_allowlists_refuse_strangers_in_private_and_ignore_them_in_groups(api, assistant):
    async with running(api, assistant, allowed_user_ids={401}):
        assert await ask_privately(api, 402, LIMA) == REFUSAL
        api.message(group_chat(-1004), user(402), f"@{BOT_USERNAME} {LIMA}")
        api.inline_query(user(402), LIMA)
        assert "Salhuana" in await ask_privately(api, 401, LIMA)
        refused = await api.wait_for(lambda: api.sent(None, "answerInlineQuery"))
        assert refused[0].params["results"] == []
    assert api.sent(-1004) == [] and api.sent(-1004, "sendChatAction") == []


async def test_a_user_asking_too_fast_is_asked_to_slow_down(api, assistant):
    async with running(api, assistant, questions_per_minute=2):
        for _ in range(2):
            assert "Salhuana" in await ask_privately(api, 501, LIMA)
        slow_down = await ask_privately(api, 501, LIMA)
        assert "Slow down" in slow_down and "2 questions a minute" in slow_down
        assert "Salhuana" in await ask_privately(api, 502, LIMA)  # others are not affected


# -- formatting limits -----------------------------------------------------------------------


async def test_a_very_long_answer_arrives_in_valid_parts(api, assistant):
    long_answer = _long_answer(citations=12)
    async with running(api, _Fixed(assistant, long_answer)):
        api.message(private_chat(601), user(601), "Tell me everything")
        await api.wait_for(lambda: len(api.sent(601)) >= 2 and _settled(api, 601))
    parts = texts(api, 601)
    assert len(parts) >= 2
    for part in parts:  # the fake server accepted each: well-formed, within the limit
        assert len(check_telegram_html(part)) <= 4096
    joined = "\n".join(parts)
    assert all(f"[{n}]" in joined for n in range(1, 13))
    assert all(f"https://example.org/{n}" in joined for n in range(1, 13))


async def test_rejected_html_is_sent_again_as_plain_text(api, app):
    api.reject_html = 1
    api.message(private_chat(701), user(701), LIMA)
    [message] = await api.wait_for_messages(701)
    assert "parse_mode" not in message.params
    text = message.params["text"]
    assert "Salhuana" in text and f"({URLS[0]})" in text and "<a " not in text
    assert [c.method for c in api.calls if c.params.get("chat_id") == 701].count("sendMessage") == 2


async def test_an_unexpected_error_is_logged_and_the_user_told_briefly(api, assistant, caplog):
    async with running(api, _Broken(assistant)):
        reply = await ask_privately(api, 801, LIMA)
    assert reply == SOMETHING_WENT_WRONG
    assert "RuntimeError: the disk is on fire" in caplog.text  # with the traceback
    assert TOKEN not in caplog.text


# -- load ------------------------------------------------------------------------------------


async def test_fifty_simultaneous_questions_from_fifty_chats_are_all_answered_once(api, app):
    chats = range(10_001, 10_051)
    started = time.perf_counter()
    for chat_id in chats:
        api.message(private_chat(chat_id), user(chat_id), LIMA)
    await api.wait_for(lambda: all(api.sent(c) for c in chats), timeout=60)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.2)
    assert all(len(api.sent(c)) == 1 for c in chats)
    assert all("Salhuana" in api.sent(c)[0].params["text"] for c in chats)
    print(f"\n50 simultaneous questions answered in {elapsed:.2f} s ({50 / elapsed:.1f} answers/s)")


async def test_the_token_never_reaches_the_logs(api, assistant, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    async with running(api, assistant):
        await ask_privately(api, 901, "/start")
        await ask_privately(api, 901, LIMA)
        await ask_privately(api, 901, "x" * 5000)
    captured = capsys.readouterr()
    assert "getUpdates" in caplog.text  # PTB did log its requests…
    assert TOKEN not in caplog.text + captured.out + captured.err  # …but never the token
    assert TOKEN.split(":")[1] not in caplog.text


# -- helpers ---------------------------------------------------------------------------------


def _settled(api: FakeBotAPI, chat_id: int) -> bool:
    """No "typing…" still pending: the last call to the chat was a message."""
    calls = [c for c in api.calls if c.params.get("chat_id") == chat_id]
    return (
        bool(calls) and calls[-1].method == "sendMessage" and time.monotonic() - calls[-1].at > 0.3
    )


class _Wrapped:
    def __init__(self, inner: NewsAssistant) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Slow(_Wrapped):
    def __init__(self, inner: NewsAssistant, delay: float) -> None:
        super().__init__(inner)
        self.delay = delay

    def ask(self, question: str, context: str | None = None, **options: object) -> Answer:
        time.sleep(self.delay)
        return self.inner.ask(question, context=context)


class _Fixed(_Wrapped):
    def __init__(self, inner: NewsAssistant, answer: Answer) -> None:
        super().__init__(inner)
        self.answer = answer

    def ask(self, question: str, context: str | None = None, **options: object) -> Answer:
        return self.answer


class _Broken(_Wrapped):
    def ask(self, question: str, context: str | None = None, **options: object) -> Answer:
        raise RuntimeError("the disk is on fire")


def _long_answer(citations: int) -> Answer:
    sentence = (
        "The harbour council of Zorblat <decided> & agreed, after a long debate that ran "
        "late into the night and touched on tariffs, dredging, fishing quotas and the old "
        "lighthouse, that the new quay would open in spring"
    )
    cites = tuple(
        Citation(
            n=n,
            article_id=f"a{n}",
            title=f"Zorblat harbour report number {n} <with> “quotes” & ampersands " * 2,
            source="Zorblat Gazette",
            url=f"https://example.org/{n}?a=1&b=2",
            published=datetime(2024, 11, n),
            snippet=(sentence + f" ({n}). ") * 3,
            score=0.5,
        )
        for n in range(1, citations + 1)
    )
    text = " ".join(f"{sentence} ({n}). [{n}]" for n in range(1, citations + 1))
    return Answer("Tell me everything", text, cites, abstained=False)
