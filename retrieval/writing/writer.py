"""The optional LLM step: a fluent answer over the same numbered passages, checked, or none.

It runs after the extractive answer and can only replace it with something at least as
grounded: the extractive reading decides first whether there is an answer at all (a decline
is never sent to the model), every written sentence must pass the citation check, and on any
failure (no server, timeout, rate limit, malformed reply, "not found", too little surviving
the check) the extractive answer is returned with the reason noted, not an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..answer import Answer, Citation, DroppedSentence
from ..search import Hit
from ..selection import Vocabulary
from .check import CheckedReply, CitationChecker
from .client import ChatClient, ChatFailure
from .prompt import Passage, numbered_passages, prompt_messages

__all__ = ["AnswerWriter"]

logger = logging.getLogger(__name__)


class AnswerWriter:
    """Writes answers with a chat model; ``write`` never raises for the model's failures."""

    def __init__(
        self,
        client: ChatClient,
        checker: CitationChecker,
        *,
        max_sentences: int = 3,
        max_passages: int = 5,
    ) -> None:
        self.client = client
        self.checker = checker
        self.max_sentences = max_sentences
        self.max_passages = max_passages

    def write(
        self,
        extractive: Answer,
        hits: Sequence[Hit],
        *,
        context: str | None = None,
        on_text: Callable[[str], None] | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> Answer:
        """The written answer, or ``extractive`` (with ``fallback`` saying why).

        ``context`` is the earlier question a follow-up leans on; ``on_text`` receives the
        reply as it streams in (unchecked: the caller shows it as a draft at most);
        ``vocabulary`` (the index's BM25 side) weighs words in the check.
        """
        if extractive.abstained or not hits:
            return extractive
        passages = numbered_passages(hits, most=self.max_passages)
        messages = prompt_messages(
            extractive.question,
            passages,
            previous_question=context,
            sentences=self.max_sentences,
        )
        started = time.perf_counter()
        try:
            reply = self.client.complete(messages, on_text=on_text)
        except ChatFailure as failure:
            logger.warning("Answered without the LLM: %s", failure.reason)
            return _fallback(extractive, failure.reason, started)
        generated = time.perf_counter()
        checked = self.checker.check(reply, passages, vocabulary=vocabulary)
        timings = {
            **extractive.timings,
            "llm_ms": (generated - started) * 1000,
            "check_ms": (time.perf_counter() - generated) * 1000,
        }
        why = _why_not_used(checked)
        checked = _at_most(checked, self.max_sentences)
        dropped = tuple(DroppedSentence(s.text, s.problem or "") for s in checked.dropped)
        if why is not None:
            logger.info("Answered without the LLM: %s", why)
            return replace(extractive, fallback=why, dropped=dropped, timings=timings)
        text, citations = _cited(checked, passages)
        return replace(
            extractive,
            text=text,
            citations=citations,
            mode="llm",
            dropped=dropped,
            fallback=None,
            timings=timings,
        )


def _at_most(checked: CheckedReply, most: int) -> CheckedReply:
    """The first ``most`` sentences that passed, as the prompt asked; later ones are dropped."""
    sentences, kept = [], 0
    for sentence in checked.sentences:
        if sentence.kept:
            kept += 1
            if kept > most:
                sentence = replace(sentence, problem=f"beyond the {most} sentences asked for")
        sentences.append(sentence)
    return replace(checked, sentences=tuple(sentences))


def _why_not_used(checked: CheckedReply) -> str | None:
    if checked.not_found:
        return "the model found no answer in the passages the extractive reading answered from"
    kept, total = len(checked.kept), len(checked.sentences)
    if not kept:
        if total == 1:
            return "the one sentence written did not pass the citation check"
        return f"none of the {total} sentences written passed the citation check"
    if kept * 2 < total:
        return f"only {kept} of the {total} sentences written passed the citation check"
    return None


def _cited(checked: CheckedReply, passages: Sequence[Passage]) -> tuple[str, tuple[Citation, ...]]:
    """The kept sentences with their passages renumbered [1], [2]… in order of first use."""
    by_n = {p.n: p for p in passages}
    renumbered: dict[int, int] = {}
    quotes: dict[int, list[str]] = {}
    scores: dict[int, float] = {}
    sentences = []
    for sentence in checked.kept:
        for n in sentence.cited:
            renumbered.setdefault(n, len(renumbered) + 1)
            scores[n] = max(scores.get(n, 0.0), sentence.support)
        for n, quote in sentence.evidence:
            said = quotes.setdefault(n, [])
            if quote not in said:
                said.append(quote)
        text = sentence.text if sentence.text[-1:] in '.!?…"”’)' else sentence.text + "."
        sentences.append(text + " " + "".join(f"[{renumbered[n]}]" for n in sentence.cited))
    citations = []
    for n, new in renumbered.items():
        snippet = " … ".join(" ".join(q.split()) for q in quotes.get(n, []))
        citations.append(Citation.of(new, by_n[n].chunk, snippet, scores[n]))
    return " ".join(sentences), tuple(citations)


def _fallback(extractive: Answer, reason: str, started: float) -> Answer:
    timings = {**extractive.timings, "llm_ms": (time.perf_counter() - started) * 1000}
    return replace(extractive, fallback=reason, timings=timings)
