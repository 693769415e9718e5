"""The newsbot side of the bench's in-process measurements, the counterpart of ``peer.py``.

``bench/run.py`` starts it as a subprocess of the project venv (so that its peak memory is
its own and ``NEWSBOT_*`` variants reach it through the environment) and reads one JSON
object from its stdout::

    python -m bench.newsbot_worker chunk-stats INDEX_DIR
    python -m bench.newsbot_worker serve INDEX_DIR PLAN.json
    python -m bench.newsbot_worker retrieve INDEX_DIR QUESTIONS.json

End-to-end numbers (ingest, cold start, ``--help``) come from the real ``newsbot`` command
instead; this worker only splits a warm question into its steps and reads the index.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

TOP_K = 10
SERVING_QUESTIONS = 50  # the serving RSS is read after this many answers


def _assistant(index_dir: str) -> NewsAssistant:
    """newsbot's defaults, plus whatever ``NEWSBOT_*`` variables the bench passes."""
    overrides: dict[str, Any] = {"index_dir": Path(index_dir), "top_k": TOP_K}
    return NewsAssistant(RetrievalSettings(**overrides))


def chunk_stats(index_dir: str) -> dict[str, Any]:
    """Mean chunk length in characters and in the model's word pieces (no truncation)."""
    from transformers import AutoTokenizer

    from retrieval.torch_backend import resolve_model

    assistant = _assistant(index_dir)
    index = assistant.open_index()
    try:
        chunks = list(index.all_chunks())
    finally:
        index.close()
    model = Path(resolve_model(assistant.settings.embedding_model))
    tokenizer = AutoTokenizer.from_pretrained(model)
    # sentence-transformers truncates at its own limit, not the tokenizer's.
    limit = json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"]
    texts = [c.text for c in chunks]
    embedded = [c.embedding_text for c in chunks]
    counts = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    embedded_counts = [
        len(ids) for ids in tokenizer(embedded, add_special_tokens=False)["input_ids"]
    ]
    n = max(len(chunks), 1)
    return {
        "chunks": len(chunks),
        "mean_chars": sum(map(len, texts)) / n,
        "mean_word_pieces": sum(counts) / n,
        # newsbot embeds "title\ntext": the title gives a passage its topic.
        "embedded_mean_word_pieces": sum(embedded_counts) / n,
        # [CLS] and [SEP] count against the model's limit too.
        "truncated_share": sum(c + 2 > limit for c in embedded_counts) / n,
    }


def serve(index_dir: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Load once, then time each ``ask``, split by newsbot's own timings.

    ``plan`` holds ``warm_up`` questions (not timed) and ``runs`` of distinct questions, so
    no timed question is served from a cache; the last run is then asked again
    (``repeat``), which is where a cache shows. ``search_ms`` is everything between the
    query vectors and the ranked passages: FAISS, BM25, fusion, boosts, the sentence
    rerank and fetching the passages from SQLite.
    """
    assistant = _assistant(index_dir)
    started = time.perf_counter()
    assistant.load()
    load_seconds = time.perf_counter() - started
    for question in plan["warm_up"]:
        assistant.ask(question)

    asked = 0
    serving_rss_mb = None

    def ask(question: str) -> dict[str, float]:
        nonlocal asked, serving_rss_mb
        t0 = time.perf_counter()
        answer = assistant.ask(question)
        total_ms = (time.perf_counter() - t0) * 1000
        asked += 1
        if asked == SERVING_QUESTIONS:
            serving_rss_mb = _peak_rss_mb()
        return {**answer.timings, "total_ms": total_ms}

    runs = [[ask(q) for q in questions] for questions in plan["runs"]]
    repeat = [ask(q) for q in plan["runs"][-1]]
    return {
        "load_seconds": load_seconds,
        "runs": runs,
        "repeat": repeat,
        "serving_rss_mb": serving_rss_mb or _peak_rss_mb(),
        "serving_questions": min(SERVING_QUESTIONS, asked),
        "chunks": len(assistant.index),
    }


def retrieve(index_dir: str, questions: list[str]) -> dict[str, Any]:
    """The top-10 passage texts and the abstention decision per question.

    Exactly what ``newsbot eval`` scores (``evaluation.evaluate_assistant``), returned so
    the bench scores both sides with one function.
    """
    from retrieval.search import SearchConfig, Searcher

    assistant = _assistant(index_dir)
    config = SearchConfig.from_settings(assistant.settings)
    searcher = Searcher(assistant.index, assistant.embedder, config)
    texts, abstained = [], []
    for question in questions:
        hits = searcher.search(question, TOP_K)
        texts.append([hit.chunk.text for hit in hits])
        abstained.append(assistant.compose(question, hits).abstained)
    return {"texts": texts, "abstained": abstained}


def _peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.newsbot_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("chunk-stats")
    p.add_argument("index_dir")
    p = commands.add_parser("serve")
    p.add_argument("index_dir")
    p.add_argument("plan", help='JSON: {"warm_up": [question, ...], "runs": [[question, ...]]}')
    p = commands.add_parser("retrieve")
    p.add_argument("index_dir")
    p.add_argument("questions", help="a JSON list of question strings")
    args = parser.parse_args(argv)

    if args.command == "chunk-stats":
        result = chunk_stats(args.index_dir)
    elif args.command == "serve":
        result = serve(args.index_dir, json.loads(Path(args.plan).read_text(encoding="utf-8")))
    else:
        questions = json.loads(Path(args.questions).read_text(encoding="utf-8"))
        result = retrieve(args.index_dir, questions)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
