"""Retrieval evaluation on labelled questions, with MultiHop-RAG's official metric.

The metric follows the dataset's ``retrieval_evaluate.py``: spaces and newlines are removed
from facts and passages, a passage is relevant if it contains a gold fact as a substring
(case-sensitive), null questions are skipped, and MAP@10 is the authors' variant (new facts
found at rank r, divided by r, summed, over min(facts, 10)).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.errors import ArticleError

if TYPE_CHECKING:
    from .assistant import NewsAssistant
    from .lexical import LexicalIndex
    from .search import SearchConfig

__all__ = [
    "EvaluationReport",
    "LabelledQuestion",
    "QuestionScore",
    "Scores",
    "ablation",
    "evaluate",
    "evaluate_assistant",
    "load_questions",
    "score_ranking",
]

NULL_TYPE = "null_query"


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    id: str
    query: str
    question_type: str
    facts: tuple[str, ...]

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


@dataclass(slots=True)
class Scores:
    """Means over a group of scored questions."""

    count: int = 0
    hits4: float = 0.0
    hits10: float = 0.0
    mrr10: float = 0.0
    map10: float = 0.0

    def add(self, score: QuestionScore) -> None:
        self.count += 1
        self.hits4 += score.hits4
        self.hits10 += score.hits10
        self.mrr10 += score.mrr10
        self.map10 += score.map10

    def means(self) -> dict[str, float]:
        n = max(self.count, 1)
        return {
            "questions": self.count,
            "hits@4": self.hits4 / n,
            "hits@10": self.hits10 / n,
            "mrr@10": self.mrr10 / n,
            "map@10": self.map10 / n,
        }


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


def evaluate(
    questions: Iterable[LabelledQuestion],
    retrieve: Callable[[str], tuple[Sequence[str], bool]],
    *,
    on_question: Callable[[], None] | None = None,
) -> EvaluationReport:
    """Run ``retrieve(query) -> (ranked passage texts, abstained)`` over every question."""
    report = EvaluationReport()
    for question in questions:
        started = time.perf_counter()
        passages, abstained = retrieve(question.query)
        report.latency_ms.append((time.perf_counter() - started) * 1000)
        report.add(score_ranking(question, passages, abstained))
        if on_question:
            on_question()
    return report


def evaluate_assistant(
    assistant: NewsAssistant,
    questions: Sequence[LabelledQuestion],
    *,
    config: SearchConfig | None = None,
    lexical: LexicalIndex | None = None,
    progress: bool = False,
) -> EvaluationReport:
    """Score the assistant's own search (top 10) and abstention on ``questions``."""
    from tqdm import tqdm

    from .search import Searcher

    searcher = Searcher(
        assistant.index,
        assistant.embedder,
        config or assistant.settings.search_config(),
        lexical=lexical,
    )

    def retrieve(query: str) -> tuple[list[str], bool]:
        hits = searcher.search(query, 10)
        answer = assistant.compose(query, hits[: assistant.settings.top_k])
        return [hit.chunk.text for hit in hits], answer.abstained

    with tqdm(total=len(questions), disable=not progress, unit="q", leave=False) as bar:
        return evaluate(questions, retrieve, on_question=lambda: bar.update(1))


def ablation(
    assistant: NewsAssistant, questions: Sequence[LabelledQuestion], *, progress: bool = False
) -> list[tuple[str, EvaluationReport]]:
    """One row per retrieval stage, each adding to the last, all on the same index and run."""
    from .lexical import LexicalIndex

    base = assistant.settings.search_config()
    plain = replace(base, understand=False, rerank=False)
    no_headers = LexicalIndex.build(chunk.text for chunk in assistant.index.all_chunks())
    variants: list[tuple[str, SearchConfig, LexicalIndex | None]] = [
        ("dense only", replace(plain, mode="dense"), None),
        ("lexical only (BM25, text)", replace(plain, mode="lexical"), no_headers),
        ("hybrid (weighted), text", replace(plain, mode="hybrid"), no_headers),
        ("hybrid (RRF), text", replace(plain, mode="hybrid", fusion="rrf"), no_headers),
        ("+ context headers", replace(plain, mode="hybrid"), None),
        ("+ question understanding", replace(plain, mode="hybrid", understand=True), None),
        ("+ sentence rerank", replace(plain, mode="hybrid", understand=True, rerank=True), None),
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
