"""What reading time in questions costs: question planning with and without it, side by side.

Every question of both development sets (MultiHop-RAG and natural-questions, 917 in all) is
planned as the search plans it (outlets, parts and, in the second column, publication
times and the wish for recent news), each timed over several rounds; the table gives the
median and p99 per question, and the same for the questions that name a time. Run with
``make bench-timeframe`` (``python -m bench.timeframe``); needs ``../shared/eval``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from retrieval.question import SourceMatcher, plan_question
from retrieval.timeframe import warm_up_dates

from .run import percentiles

SHARED = Path(__file__).parents[2] / "shared" / "eval"
SETS = ("multihop-rag/dev-queries.jsonl", "natural-questions/dev.jsonl")
NOW = datetime(2023, 12, 25, 23, 59, tzinfo=UTC)  # the corpora's last day, as `eval` reads it


def _questions() -> list[str]:
    return [
        json.loads(line)["query"]
        for name in SETS
        for line in (SHARED / name).read_text().splitlines()
        if line.strip()
    ]


def _outlets() -> list[str]:
    corpus = SHARED / "multihop-rag" / "corpus.jsonl"
    return sorted({json.loads(line)["source"] for line in corpus.read_text().splitlines()})


def _timed(questions: list[str], matcher: SourceMatcher, now: datetime | None, rounds: int):
    """Per question, the median of ``rounds`` timings in milliseconds."""
    per_question = []
    for question in questions:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            plan_question(question, matcher, now)
            samples.append((time.perf_counter() - started) * 1000)
        per_question.append(statistics.median(samples))
    return per_question


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    questions = _questions()
    matcher = SourceMatcher(_outlets())
    warm_up_dates()  # dateparser's language data, loaded once at start as the bot does
    with_time = set()
    for question in questions:
        if plan_question(question, matcher, NOW).ranges:
            with_time.add(question)
    rows = []
    for name, subset in (("all questions", questions), ("naming a time", sorted(with_time))):
        without = _timed(subset, matcher, None, args.rounds)
        timed = _timed(subset, matcher, NOW, args.rounds)
        rows.append((name, len(subset), without, timed))
    print(f"{'planning a question':<22}{'n':>5}  {'without time':>22}  {'with time':>22}  ratio")
    for name, n, without, timed in rows:
        a, b = statistics.median(without), statistics.median(timed)
        pa, pb = percentiles(without)["p99"], percentiles(timed)["p99"]
        print(
            f"{name:<22}{n:>5}  p50 {a:6.3f} p99 {pa:6.3f} ms  p50 {b:6.3f} p99 {pb:6.3f} ms"
            f"  {b / a:4.1f}×"
        )


if __name__ == "__main__":
    main()
