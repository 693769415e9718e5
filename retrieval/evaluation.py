"""Evaluation on labelled questions: retrieval (MultiHop-RAG's official metric) and answers.

The retrieval metric follows the dataset's ``retrieval_evaluate.py``: spaces and newlines are
removed from facts and passages, a passage is relevant if it contains a gold fact as a
substring (case-sensitive), null questions are skipped, and MAP@10 is the authors' variant
(new facts found at rank r, divided by r, summed, over min(facts, 10)).

Answers are scored as the natural-questions set's README says, for what a user reads: an
answer is right when it does not decline and one of its cited snippets holds a gold fact
(or is a piece of one at least eight words long), whitespace collapsed. It pads when it
also cites an article none of the evidence comes from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.errors import ArticleError

if TYPE_CHECKING:
    from .answer import Answer
    from .assistant import NewsAssistant
    from .search import SearchConfig
    from .store.base import Lexicon, Store

__all__ = [
    "AnswerScore",
    "AnswerTally",
    "EvaluationReport",
    "LabelledQuestion",
    "QuestionScore",
    "Scores",
    "ablation",
    "evaluate",
    "evaluate_assistant",
    "holds_fact",
    "load_questions",
    "score_answer",
    "score_ranking",
]

NULL_TYPE = "null_query"
# A cited snippet that lies inside a fact must be this many words long to count as holding it.
_MIN_PARTIAL_WORDS = 8


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    id: str
    query: str
    question_type: str
    facts: tuple[str, ...]
    urls: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.question_type != NULL_TYPE and bool(self.facts)


@dataclass(frozen=True, slots=True)
class QuestionScore:
    """One question's retrieval score and abstention decision."""

    question: LabelledQuestion
    hits4: float
    hits10: float
    mrr10: float
    map10: float
    abstained: bool
    answer: AnswerScore | None = None


@dataclass(frozen=True, slots=True)
class AnswerScore:
    """What a user reading one answer to an answerable question would notice."""

    right: bool  # not declined, and a cited snippet holds a gold fact
    first_right: bool  # ... and the first one does
    cited_articles: int
    pads: bool  # cites an article none of the evidence comes from


@dataclass(slots=True)
class AnswerTally:
    """Sums of :class:`AnswerScore` over answerable questions."""

    count: int = 0
    right: int = 0
    first_right: int = 0
    declined: int = 0
    answered: int = 0
    cited_articles: int = 0
    padded: int = 0

    def add(self, score: AnswerScore, abstained: bool) -> None:
        self.count += 1
        self.right += score.right
        self.first_right += score.first_right
        self.declined += abstained
        if not abstained:
            self.answered += 1
            self.cited_articles += score.cited_articles
            self.padded += score.pads

    def means(self) -> dict[str, float]:
        n, answered = max(self.count, 1), max(self.answered, 1)
        return {
            "answered_right": self.right / n,
            "first_citation_right": self.first_right / n,
            "declined": self.declined / n,
            "cited_articles": self.cited_articles / answered,
            "padded": self.padded / answered,
        }


@dataclass(slots=True)
class Scores:
    """Means over a group of scored questions."""

    count: int = 0
    hits4: float = 0.0
    hits10: float = 0.0
    mrr10: float = 0.0
    map10: float = 0.0
    answers: AnswerTally = field(default_factory=AnswerTally)

    def add(self, score: QuestionScore) -> None:
        self.count += 1
        self.hits4 += score.hits4
        self.hits10 += score.hits10
        self.mrr10 += score.mrr10
        self.map10 += score.map10
        if score.answer is not None:
            self.answers.add(score.answer, score.abstained)

    def means(self) -> dict[str, float]:
        n = max(self.count, 1)
        means = {
            "questions": self.count,
            "hits@4": self.hits4 / n,
            "hits@10": self.hits10 / n,
            "mrr@10": self.mrr10 / n,
            "map@10": self.map10 / n,
        }
        if self.answers.count:
            means.update(self.answers.means())
        return means


@dataclass(slots=True)
class EvaluationReport:
    """Overall and per-type retrieval scores, plus abstention figures."""

    overall: Scores = field(default_factory=Scores)
    by_type: dict[str, Scores] = field(default_factory=dict)
    null_questions: int = 0
    null_abstained: int = 0
    answerable_abstained: int = 0
    scored: list[QuestionScore] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    def add(self, score: QuestionScore) -> None:
        self.scored.append(score)
        if not score.question.answerable:
            self.null_questions += 1
            self.null_abstained += score.abstained
            return
        self.overall.add(score)
        self.by_type.setdefault(score.question.question_type, Scores()).add(score)
        self.answerable_abstained += score.abstained

    def to_dict(self) -> dict[str, object]:
        latencies = sorted(self.latency_ms)
        return {
            **self.overall.means(),
            "by_type": {t: s.means() for t, s in sorted(self.by_type.items())},
            "null_abstained": self.null_abstained / max(self.null_questions, 1),
            "answerable_abstained": self.answerable_abstained / max(self.overall.count, 1),
            "null_questions": self.null_questions,
            "latency_p50_ms": latencies[len(latencies) // 2] if latencies else None,
        }


def load_questions(path: str | Path) -> list[LabelledQuestion]:
    """Questions in MultiHop-RAG's layout: ``{id, query, question_type, evidence: [{fact}]}``."""
    questions = []
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ArticleError(f"cannot read questions ({exc.strerror})", source=str(path)) from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            questions.append(
                LabelledQuestion(
                    id=str(raw.get("id", line_no)),
                    query=str(raw["query"]),
                    question_type=str(raw.get("question_type", "unknown")),
                    facts=tuple(str(e["fact"]) for e in raw.get("evidence") or []),
                    urls=tuple(str(e.get("url") or "") for e in raw.get("evidence") or []),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ArticleError(
                f"not a labelled question ({type(exc).__name__}: {exc})",
                source=f"{path}:{line_no}",
            ) from None
    if not questions:
        raise ArticleError("no questions in the file", source=str(path))
    return questions


def _normalise(text: str) -> str:
    return text.replace(" ", "").replace("\n", "")


def score_ranking(
    question: LabelledQuestion, passages: Sequence[str], abstained: bool
) -> QuestionScore:
    """Score the ranked passage texts retrieved for one question."""
    facts = [_normalise(f) for f in question.facts]
    found: set[int] = set()
    first_relevant = 0
    map_sum = 0.0
    for rank, passage in enumerate(passages[:10], start=1):
        text = _normalise(passage)
        matched = {i for i, fact in enumerate(facts) if fact in text}
        if matched and not first_relevant:
            first_relevant = rank
        new = matched - found
        if matched:
            map_sum += len(new) / rank
        found |= matched
    return QuestionScore(
        question=question,
        hits4=float(0 < first_relevant <= 4),
        hits10=float(first_relevant > 0),
        mrr10=1 / first_relevant if first_relevant else 0.0,
        map10=map_sum / min(len(facts), 10) if facts else 0.0,
        abstained=abstained,
    )


def holds_fact(snippet: str, facts: Sequence[str]) -> bool:
    """Whether ``snippet`` contains a gold fact, or is a piece of one of at least 8 words."""
    text = _collapse(snippet)
    return any(
        fact in text or (len(text.split()) >= _MIN_PARTIAL_WORDS and text in fact)
        for fact in map(_collapse, facts)
    )


def score_answer(question: LabelledQuestion, answer: Answer) -> AnswerScore:
    """Score the citations of one answer against the question's gold facts and articles."""
    right = (
        [holds_fact(c.snippet, question.facts) for c in answer.citations]
        if not answer.abstained
        else []
    )
    urls = {url for url in question.urls if url}  # without them, padding is not scored
    return AnswerScore(
        right=any(right),
        first_right=bool(right) and right[0],
        cited_articles=len({c.article_id for c in answer.citations}),
        pads=bool(urls) and any(c.url not in urls for c in answer.citations),
    )


def _collapse(text: str) -> str:
    return " ".join(text.split())


def evaluate(
    questions: Iterable[LabelledQuestion],
    retrieve: Callable[[str], tuple[Sequence[str], Answer | bool]],
    *,
    on_question: Callable[[], None] | None = None,
) -> EvaluationReport:
    """Run ``retrieve(query) -> (ranked passage texts, answer)`` over every question.

    ``answer`` is the composed :class:`Answer`, or only whether it declined (for a system
    that retrieves but does not answer); answers are scored only in the first case.
    """
    report = EvaluationReport()
    for question in questions:
        started = time.perf_counter()
        passages, answer = retrieve(question.query)
        report.latency_ms.append((time.perf_counter() - started) * 1000)
        abstained = answer if isinstance(answer, bool) else answer.abstained
        score = score_ranking(question, passages, abstained)
        if not isinstance(answer, bool) and question.answerable:
            score = replace(score, answer=score_answer(question, answer))
        report.add(score)
        if on_question:
            on_question()
    return report


def evaluate_assistant(
    assistant: NewsAssistant,
    questions: Sequence[LabelledQuestion],
    *,
    config: SearchConfig | None = None,
    lexical: Lexicon | None = None,
    progress: bool = False,
) -> EvaluationReport:
    """Score the assistant's own search (top 10) and abstention on ``questions``.

    The questions are read as if asked at the end of the newest article's day: a fixed
    corpus's "this month" is its last month, whenever the evaluation runs.
    """
    from tqdm import tqdm

    from .search import SearchConfig, Searcher

    now = corpus_now(assistant.index, assistant.settings.zone())
    searcher = Searcher(
        assistant.index,
        assistant.embedder,
        config or SearchConfig.from_settings(assistant.settings),
        lexical=lexical,
        clock=lambda: now,
    )

    def retrieve(query: str) -> tuple[list[str], Answer]:
        hits = searcher.search(query, 10)
        answer = assistant.compose(
            query, hits[: assistant.settings.top_k], vocabulary=lexical, plan=searcher.plans[0]
        )
        return [hit.chunk.text for hit in hits], answer

    with tqdm(total=len(questions), disable=not progress, unit="q", leave=False) as bar:
        return evaluate(questions, retrieve, on_question=lambda: bar.update(1))


def corpus_now(index: Store, zone: tzinfo) -> datetime:
    """The last moment of the newest article's publication day (now, if none is dated)."""
    newest = index.date_range()[1]
    if newest is None:
        return datetime.now(zone)
    day = date.fromisoformat(newest) + timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), zone) - timedelta(microseconds=1)


def ablation(
    assistant: NewsAssistant, questions: Sequence[LabelledQuestion], *, progress: bool = False
) -> list[tuple[str, EvaluationReport]]:
    """One row per retrieval stage, each adding to the last, all on the same index and run.

    Every row's answers are composed from its own passages, so the answer columns show
    what each stage is worth to a reader too.
    """
    from .lexical import LexicalIndex
    from .search import SearchConfig

    base = SearchConfig.from_settings(assistant.settings)
    plain = replace(base, understand=False, rerank=False, sentence_similarity_weight=0.0)
    # Spelling correction comes last, so every row before it takes words as typed.
    no_headers = LexicalIndex.build(c.text for c in assistant.index.all_chunks()).uncorrected()
    headers = assistant.index.lexical.uncorrected()
    variants: list[tuple[str, SearchConfig, Lexicon | None]] = [
        ("dense only", replace(plain, mode="dense"), headers),
        ("lexical only (BM25, text)", replace(plain, mode="lexical"), no_headers),
        ("hybrid (weighted), text", replace(plain, mode="hybrid"), no_headers),
        ("hybrid (RRF), text", replace(plain, mode="hybrid", fusion="rrf"), no_headers),
        ("+ context headers", replace(plain, mode="hybrid"), headers),
        ("+ question understanding", replace(plain, understand=True), headers),
        ("+ sentence rerank", replace(base, sentence_similarity_weight=0.0), headers),
        ("+ sentence similarity in rerank", base, headers),
        ("+ spelling correction (newsbot)", base, None),
    ]
    return [
        (
            name,
            evaluate_assistant(
                assistant, questions, config=config, lexical=lexical, progress=progress
            ),
        )
        for name, config, lexical in variants
    ]
