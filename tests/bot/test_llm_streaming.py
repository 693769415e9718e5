"""An LLM-written answer in Telegram: streamed into one message by edits, then the checked one.

The real bot, assistant and model; the fake Bot API records every send and edit, and a fake
OpenAI-compatible server writes the answer in timed pieces.
"""

from __future__ import annotations

import itertools
import shutil
import time

import pytest

from bot.settings import Settings
from retrieval.assistant import NewsAssistant

from ..writing.fake_chat_api import FakeChatAPI, Reply, Request
from .fake_bot_api import FakeBotAPI, private_chat, user
from .harness import running
from .test_network_faults import StubAssistant

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

LIMA = "Who met whom in Lima?"


def with_a_false_sentence(request: Request) -> str:
    boluarte, salhuana = request.passage_with("Boluarte"), request.passage_with("Salhuana")
    # The false sentence first: it is in the drafts well before the reply ends.
    return (
        f"The two presidents signed 12 trade agreements worth 3 billion USD [{boluarte}]. "
        f"Vietnam's State President Luong Cuong met Peruvian President Dina Boluarte in Lima "
        f"[{boluarte}]. He also met Congress President Eduardo Salhuana [{salhuana}]."
    )


@pytest.fixture(scope="module")
def chat_api():
    with FakeChatAPI() as server:
        yield server


@pytest.fixture(scope="module")
def llm_assistant(embedder, sample_index_dir, tmp_path_factory, chat_api):
    index_dir = tmp_path_factory.mktemp("bot-llm") / "index"
    shutil.copytree(sample_index_dir, index_dir)
    settings = Settings(
        _env_file=None,
        index_dir=index_dir,
        llm_base_url=chat_api.url,
        llm_model="fake",
        llm_timeout=15.0,
    )
    service = NewsAssistant(settings, embedder=embedder)
    service.load()
    yield service
    service.close()


async def test_the_answer_streams_by_edits_then_the_checked_answer_wins(
    chat_api, llm_assistant, api: FakeBotAPI
):
    # Written in 10 pieces over ~3 s: more pieces than a one-a-second edit rate shows.
    chat_api.script(Reply(with_a_false_sentence, pieces=10, piece_delay=0.3))
    async with running(
        api, llm_assistant, llm_base_url=chat_api.url, llm_model="fake", llm_timeout=15.0
    ):
        api.message(private_chat(401), user(401), LIMA)
        await api.wait_for(
            lambda: any(
                chat == 401 and "Sources" in m["text"] for (chat, _), m in api.messages.items()
            ),
            30,
            "the final answer",
        )
    [draft] = api.sent(401)  # one message: the draft, edited into the answer
    edits = api.sent(401, "editMessageText")
    assert "Writing; checking each sentence" in draft.params["text"]
    assert len(edits) >= 2
    # Edits come at most about once a second (the final one may follow the last draft sooner).
    gaps = [b.at - a.at for a, b in itertools.pairwise(edits[:-1])]
    print(f"\n{len(edits) - 1} draft edit(s) {[round(g, 2) for g in gaps]} s apart, then the final")
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert len(edits) <= 5  # not one per streamed piece
    drafts = [draft.params["text"], *(e.params["text"] for e in edits[:-1])]
    assert any("12 trade agreements" in d for d in drafts)  # the model wrote it…
    final = edits[-1].params
    assert final["parse_mode"] == "HTML"
    assert "<b>Sources</b>" in final["text"]
    assert "12 trade agreements" not in final["text"]  # …the check dropped it
    for name in ("Boluarte", "Salhuana"):
        assert name in final["text"]
    assert "Writing; checking" not in final["text"]
    shown = api.messages[401, draft.result["message_id"]]["text"]
    assert "12 trade agreements" not in shown and "Sources" in shown


async def test_when_the_model_fails_the_extractive_answer_is_sent_plainly(
    chat_api, llm_assistant, api: FakeBotAPI
):
    chat_api.script(Reply(status=429, headers={"Retry-After": "60"}))
    async with running(
        api, llm_assistant, llm_base_url=chat_api.url, llm_model="fake", llm_timeout=15.0
    ):
        api.message(private_chat(402), user(402), LIMA)
        [message] = await api.wait_for_messages(402)
    assert api.sent(402, "editMessageText") == []
    text = message.params["text"]
    assert "<b>Sources</b>" in text and "Salhuana" in text
    assert "429" not in text and "error" not in text.lower()


class FailsAfterDrafting(StubAssistant):
    """Streams a draft, then fails: as a bug in the check or a lost index would."""

    def ask(self, question, context=None, *, on_text=None, write=True):
        on_text("Luong Cuong met somebody [1].")
        time.sleep(1.5)  # long enough for the draft to be sent
        raise RuntimeError("the check broke")


async def test_a_draft_is_taken_back_when_answering_fails(api: FakeBotAPI):
    async with running(
        api, FailsAfterDrafting(), llm_base_url="http://127.0.0.1:9/v1", llm_model="fake"
    ):
        api.message(private_chat(403), user(403), LIMA)
        await api.wait_for(lambda: api.sent(403, "deleteMessage"), 15, "the draft deleted")
        [draft, sorry] = await api.wait_for_messages(403, 2)
    assert "Luong Cuong met somebody" in draft.params["text"]
    assert api.sent(403, "deleteMessage")[0].params["message_id"] == draft.result["message_id"]
    assert "something went wrong" in sorry.params["text"]
    assert not [
        key for key in api.messages if key[0] == 403 and key[1] == draft.result["message_id"]
    ]
