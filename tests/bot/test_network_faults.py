"""A flaky Telegram: error statuses, dropped connections, stalls and a burst of updates.

The real PTB application runs against the fake Bot API, which fails chosen calls the way
Telegram and the network do. Every question must still get exactly one answer once the
server recovers: none lost, none twice, and the bot keeps running.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter

import pytest

from bot import delivery, handlers
from retrieval.answer import Answer, Citation
from retrieval.text import question_terms

from .fake_bot_api import (
    BAD_GATEWAY,
    DROP,
    INTERNAL_ERROR,
    TOO_MANY_REQUESTS,
    FakeBotAPI,
    Fault,
    private_chat,
    user,
)
from .harness import running

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    # PTB warns about its own RetryAfter.retry_after type when it builds one from a 429.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

LIMA = "Who met whom in Lima?"
STALL = Fault(kind="stall", seconds=0.5)  # then the connection drops
FAULTS = {
    "429 Too Many Requests (retry_after 1)": TOO_MANY_REQUESTS,
    "500 Internal Server Error": INTERNAL_ERROR,
    "502 Bad Gateway": BAD_GATEWAY,
    "connection dropped": DROP,
    "stall 0.5 s, then dropped": STALL,
}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(delivery, "SEND_RETRY_DELAYS", (0.05, 0.1, 0.2, 0.4, 0.8, 1.0))
    monkeypatch.setattr(handlers, "TYPING_INTERVAL", 0.5)


def _answers(api: FakeBotAPI) -> Counter[int]:
    return Counter(c.params["chat_id"] for c in api.sent())


async def test_every_question_is_answered_once_through_send_faults(api, assistant):
    """Each fault hits the reply to a different chat's question, twice in a row."""
    outcome = {}
    async with running(api, assistant, poll_timeout=2) as application:
        for n, (name, fault) in enumerate(FAULTS.items()):
            chats = [1000 + 10 * n, 1001 + 10 * n]
            api.inject("sendMessage", fault, fault, fault)  # three failed attempts in a row
            for chat in chats:
                api.message(private_chat(chat), user(chat), LIMA)
            for chat in chats:
                await api.wait_for_messages(chat, 1, timeout=30)
            await _settle(api)
            answers = _answers(api)
            outcome[name] = [answers[c] for c in chats]
            assert all(
                "Salhuana" in c.params["text"] for c in api.sent() if c.params["chat_id"] in chats
            )
        assert application.running and application.updater.running
    assert all(counts == [1, 1] for counts in outcome.values()), outcome
    assert Counter(name for name, _ in api.faulted) == Counter({"sendMessage": 3 * len(FAULTS)})
    assert not [c for c in api.sent() if c.params["text"] == handlers.SOMETHING_WENT_WRONG]


async def test_questions_sent_while_polling_fails_are_answered_once_it_recovers(api, assistant):
    async with running(api, assistant, poll_timeout=2) as application:
        for n, (name, fault) in enumerate(FAULTS.items()):
            chat = 2000 + n
            faulted = len(api.faulted)
            api.inject("getUpdates", fault)
            api.message(private_chat(chat + 100), user(chat + 100), LIMA)  # ends the long poll
            await api.wait_for(lambda f=faulted: len(api.faulted) > f, 15, f"the {name} fault")
            api.message(private_chat(chat), user(chat), LIMA)  # sent while polling fails
            await api.wait_for_messages(chat, 1, timeout=30)
        await _settle(api)
        assert application.running and application.updater.running
    answers = _answers(api)
    assert set(answers.values()) == {1} and len(answers) == 2 * len(FAULTS)


async def test_a_burst_of_500_updates_from_100_chats_is_answered_once_each(api):
    """Plumbing under load: a stub service answers at once, so the bot's own path is timed."""
    stub = StubAssistant()
    async with running(api, stub, poll_timeout=2, messages_per_second=1000):
        # Warm-up with the same chats: caches, connections and per-chat state exist before
        # the baseline, so whatever the burst leaves behind is growth, not first use.
        await _burst(api, chats=range(1, 101), per_chat=1)
        # The lemmatiser loads its 18 MB dictionary on first use; that is a one-off, not growth.
        question_terms("Warm-up: and who else did he meet?")
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        await _burst(api, chats=range(1, 101), per_chat=5)
        await _settle(api)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
    answers = _answers(api)
    assert all(answers[chat] == 1 + 5 for chat in range(1, 101)), answers  # warm-up + burst
    assert sum(answers[chat] for chat in range(1, 101)) == 600
    # Per-chat state (the conversation, the last answer) is replaced, not accumulated. A
    # sanity bound, not a budget: keeping each update or answer (≥ 32 KB with its objects)
    # would exceed it; 6-8 MB of pooled connections and tasks remain after a burst here.
    assert grown / 500 < 32_000, f"{grown:,} bytes still allocated after the burst"
    print(f"\nburst of 500: {grown / 1e6:.2f} MB more allocated than before it")


async def _burst(api: FakeBotAPI, chats: range, per_chat: int) -> None:
    before = _answers(api)

    def answered() -> bool:
        # Counted once per check: this runs on the bot's event loop every 10 ms.
        answers = _answers(api)
        return all(answers[c] >= before[c] + per_chat for c in chats)

    for n in range(per_chat):
        for chat in chats:
            api.message(private_chat(chat), user(chat), f"{LIMA} ({n})")
    # However slow the machine, answers keep coming; when one is lost the count stalls.
    await api.wait_for(
        answered, 30, f"{per_chat * len(chats)} answers", progress=lambda: len(api.sent())
    )


async def _settle(api: FakeBotAPI) -> None:
    """Give a duplicate, if the bot were to send one, the time to arrive."""
    import asyncio

    await asyncio.sleep(0.5)


class StubAssistant:
    """Answers every question with one canned citation, instantly."""

    def load(self) -> None:
        pass

    def stats(self):
        from retrieval.assistant import IndexStats

        return IndexStats(None, "gen-1", 1, 1, "stub", 1, 0, None, None)  # type: ignore[arg-type]

    def ingested_since(self, moment: str | None) -> tuple[list[str], str | None]:
        return [], None  # no index: nothing new to push

    def ask(self, question: str, context: str | None = None, **options: object) -> Answer:
        citation = Citation(1, "a1", "Stub", "Wire", "https://ex.org/1", None, "A snippet.", 1.0)
        return Answer(question, "Someone met someone. [1]", (citation,), abstained=False)
