"""Fit the answer models (``retrieval/answer_model.json``) on the development sets.

    make fit-answers                       # or:
    python -m tools.fit_answers --index DIR [--questions FILE ...] [--output FILE]

The index must hold the articles the questions are about (both development sets are over
MultiHop-RAG's corpus; ``make fit-answers`` indexes it first). Each question is searched as
``newsbot ask`` searches it; every sentence of its top passages becomes a row of the
sentence model, labelled by whether it holds a gold fact, and every question a row of the
question model, labelled by whether it is answerable. Both are scikit-learn logistic
regressions (L2, C=1); the bar for declining is set so that at most 4 % of the answerable
questions of each set are declined. Before writing, the fit is checked on halves: fitted
without one half of a set (even or odd questions), scored on that half, so a gain that only
fits its own questions shows. The table is printed and kept in the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from retrieval.answer import compose_answer, wanted_terms
from retrieval.assistant import NewsAssistant
from retrieval.evaluation import LabelledQuestion, holds_fact, load_questions, score_answer
from retrieval.search import Hit
from retrieval.selection import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    AnswerModel,
    question_features,
    sentence_features,
)
from retrieval.settings import RetrievalSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval"
DEFAULT_QUESTIONS = (
    SHARED / "multihop-rag" / "dev-queries.jsonl",
    SHARED / "natural-questions" / "dev.jsonl",
)
OUTPUT = Path(__file__).resolve().parents[1] / "retrieval" / "answer_model.json"
DECLINED_ANSWERABLE = 0.04  # the share of answerable questions the bar may decline
# A further sentence is cited at half the best one's probability, or from one in four:
# lower, the answers pad with articles that do not answer (README, Answers).
EXTRA_SHARE = 0.5
EXTRA_FLOOR = 0.25
TOP_K = 10


@dataclass
class Example:
    """One question with its retrieved passages and each sentence's features and label."""

    question: LabelledQuestion
    dataset: str
    hits: list[Hit]
    features: np.ndarray
    labels: np.ndarray


def collect(assistant: NewsAssistant, files: list[Path]) -> list[Example]:
    searcher = assistant.searcher()
    lexical = assistant.index.lexical
    examples = []
    for path in files:
        for question in load_questions(path):
            hits = searcher.search(question.query, TOP_K)
            wanted = wanted_terms(question.query, None, lexical)
            matrix, which = sentence_features(question.query, wanted, hits, vocabulary=lexical)
            labels = np.array(
                [
                    holds_fact(hit.chunk.text[s.start : s.end], question.facts)
                    for hit, _, index in which
                    for s in [hit.sentences[index]]
                ],
                dtype=bool,
            )
            examples.append(Example(question, path.parent.name, hits, matrix, labels))
    return examples


def fit(examples: list[Example], lexical) -> dict:
    answerable = [e for e in examples if e.question.answerable and len(e.features)]
    sentence = LogisticRegression(C=1.0, max_iter=5000).fit(
        np.concatenate([e.features for e in answerable]),
        np.concatenate([e.labels for e in answerable]),
    )
    rows, targets, sets = [], [], []
    for e in examples:
        if not len(e.features):
            continue
        sets.append(e.dataset)
        probabilities = sentence.predict_proba(e.features)[:, 1]
        wanted = wanted_terms(e.question.query, None, lexical)
        rows.append(
            question_features(
                e.question.query, wanted, e.hits, e.features, probabilities, vocabulary=lexical
            )
        )
        targets.append(e.question.answerable)
    question = LogisticRegression(C=1.0, max_iter=5000).fit(np.array(rows), np.array(targets))
    chances = question.predict_proba(np.array(rows))[:, 1]
    answerable, of_set = np.array(targets), np.array(sets)
    # The bar declines at most DECLINED_ANSWERABLE of the answerable questions of *each* set.
    threshold = min(
        float(np.quantile(chances[answerable & (of_set == name)], DECLINED_ANSWERABLE))
        for name in set(sets)
    )
    return {
        "sentence": _logistic(SENTENCE_FEATURES, sentence),
        "question": _logistic(QUESTION_FEATURES, question),
        "threshold": threshold,
        "extra_share": EXTRA_SHARE,
        "extra_floor": EXTRA_FLOOR,
    }


def _logistic(features: tuple[str, ...], model: LogisticRegression) -> dict:
    return {
        "features": list(features),
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
    }


def score(examples: list[Example], model: AnswerModel, lexical) -> dict[str, float]:
    """What ``newsbot eval`` reports of the answers, for these questions."""
    answered = right = padded = null = null_declined = declined = 0
    for e in examples:
        answer = compose_answer(e.question.query, e.hits, vocabulary=lexical, model=model)
        if not e.question.answerable:
            null += 1
            null_declined += answer.abstained
            continue
        verdict = score_answer(e.question, answer)
        answered += 1
        right += verdict.right
        declined += answer.abstained
        padded += verdict.pads and not answer.abstained
    return {
        "answered_right": right / max(answered, 1),
        "answerable_declined": declined / max(answered, 1),
        "null_declined": null_declined / max(null, 1),
        "padded": padded / max(answered - declined, 1),
    }


def halves(examples: list[Example], lexical) -> list[dict]:
    """Each set's even and odd halves, scored by a fit that did not see that half."""
    table = []
    for dataset in sorted({e.dataset for e in examples}):
        own = [e for e in examples if e.dataset == dataset]
        others = [e for e in examples if e.dataset != dataset]
        for name, held in (("even", own[0::2]), ("odd", own[1::2])):
            held_ids = {id(e) for e in held}
            seen = others + [e for e in own if id(e) not in held_ids]
            model = AnswerModel.from_dict(fit(seen, lexical))
            table.append({"set": dataset, "half": name, **score(held, model, lexical)})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index of the corpus")
    parser.add_argument("--questions", type=Path, nargs="+", default=list(DEFAULT_QUESTIONS))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    assistant = NewsAssistant(RetrievalSettings(index_dir=args.index))
    lexical = assistant.index.lexical
    lexical.warm_up()
    examples = collect(assistant, args.questions)
    fitted = fit(examples, lexical)
    check = halves(examples, lexical)
    print(f"{'set':22}{'half':>6}{'right':>8}{'declined':>10}{'null declined':>15}{'padded':>8}")
    for row in check:
        print(
            f"{row['set']:22}{row['half']:>6}{row['answered_right']:>8.3f}"
            f"{row['answerable_declined']:>10.3f}{row['null_declined']:>15.3f}{row['padded']:>8.3f}"
        )
    fitted["fitted"] = {
        "questions": {
            path.parent.name: sum(e.dataset == path.parent.name for e in examples)
            for path in args.questions
        },
        "articles": assistant.index.manifest.article_count,
        "model": assistant.index.manifest.model,
        "declined_answerable_target": DECLINED_ANSWERABLE,
        "halves": [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in check
        ],
        "date": datetime.now(UTC).date().isoformat(),
    }
    args.output.write_text(json.dumps(fitted, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
