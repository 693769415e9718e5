"""Benchmark newsbot against the usual LangChain pipeline, in one run, on the same machine.

    make bench                                  # or: .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run --quick       # a smoke run of a few minutes

Both sides index the same MultiHop-RAG corpus with the same packaged model and answer the
same dev questions; the peer (``bench/peer.py``) runs in its own venv, which this script
creates from ``bench/peer-requirements.txt``. Progress goes to stderr, the table to stdout,
everything measured to ``bench/results/latest.json``. ``bench/README.md`` says what each row
means.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from retrieval.evaluation import LabelledQuestion, evaluate, load_questions
from retrieval.settings import RetrievalSettings

from .report import format_results

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA = REPO.parent / "shared" / "eval" / "multihop-rag"
SECTIONS = ("ingest", "query", "cold", "quality", "scaling")
QUICK_ARTICLES = 60
QUICK_QUESTIONS = 30
LATENCY_QUESTIONS = 150
QUERY_RUNS = 5  # rounds of warm questions, each side in turn (serve_in_rounds)
WARM_UP = 10
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)


class BenchError(Exception):
    """A step of the bench failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run, from the command line."""

    quick: bool
    sections: frozenset[str]
    skip_peer: bool
    variants: tuple[str | None, ...]
    work: Path
    peer_venv: Path
    corpus: Path
    questions: Path
    sizes: tuple[int, ...]
    ingest_runs: int
    query_runs: int
    cold_runs: int
    help_runs: int

    @property
    def data_dir(self) -> Path:
        """Indexes and question files; a quick run never reuses a full run's index."""
        return self.work / ("quick" if self.quick else "full")


@dataclass(frozen=True, slots=True)
class Measured:
    """One subprocess, timed and measured from outside."""

    seconds: float  # start → exit
    first_output_seconds: float | None  # start → first byte on stdout
    peak_rss_mb: float
    stdout: str

    def json(self) -> Any:
        return json.loads(self.stdout.strip().splitlines()[-1])


@dataclass(slots=True)
class Results:
    """Everything one run measured, as written to the JSON file."""

    meta: dict[str, Any]
    newsbot: dict[str, dict[str, Any]] = field(default_factory=dict)
    peer: dict[str, Any] = field(default_factory=dict)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- running things ---------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(command: Sequence[str | Path], *, env: dict[str, str], cwd: Path) -> Measured:
    """Run ``command`` to its end; wall time, time to first output, and its own peak RSS.

    ``os.wait4`` gives the resource usage of exactly this child (``RUSAGE_CHILDREN`` would
    be the largest child so far).
    """
    args = [str(a) for a in command]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=cwd)
        assert process.stdout is not None
        first = process.stdout.read(1)
        first_at = time.perf_counter() if first else None
        rest = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        ended = time.perf_counter()
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise BenchError(
                f"`{shlex.join(args)}` failed with exit status {process.returncode}:\n{tail}"
            )
    return Measured(
        seconds=ended - started,
        first_output_seconds=None if first_at is None else first_at - started,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        stdout=(first + rest).decode(),
    )


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for both sides: no stray ``NEWSBOT_*`` setting, no network.

    Subprocesses also run in the work directory, so a developer's ``.env`` is not read:
    newsbot is measured with its defaults plus exactly the variant's settings.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 by linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        position = (len(ordered) - 1) * q
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99)}


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- the two sides ----------------------------------------------------------------------


class Newsbot:
    """newsbot in the project venv: the real CLI, plus ``bench.newsbot_worker`` for splits."""

    def __init__(self, plan: Plan, variant: str | None) -> None:
        self.plan = plan
        self.variant = variant
        self.label = "newsbot" if variant is None else f"newsbot {variant}"
        self.index = plan.data_dir / ("newsbot-index" + (f"-{variant}" if variant else ""))
        self.settings = {"NEWSBOT_EMBEDDING_BACKEND": variant} if variant else {}
        self.env = clean_env(self.settings)
        self.cli = Path(sys.executable).parent / "newsbot"

    def run(self, *args: str | Path) -> Measured:
        return measure([self.cli, *args], env=self.env, cwd=self.plan.work)

    def worker(self, *args: str | Path) -> Measured:
        env = {**self.env, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "bench.newsbot_worker", *args]
        return measure(command, env=env, cwd=self.plan.work)

    def ingest(self, corpus: Path, warm_up: Path) -> dict[str, Any]:
        say(f"{self.label}: ingest warm-up ({warm_up.name})")
        scratch = self.plan.data_dir / "warm-up-index"
        shutil.rmtree(scratch, ignore_errors=True)
        self.run("ingest", warm_up, "--index", scratch)
        shutil.rmtree(scratch)
        runs = []
        for n in range(self.plan.ingest_runs):
            say(f"{self.label}: ingest {n + 1}/{self.plan.ingest_runs} (newsbot ingest)")
            shutil.rmtree(self.index, ignore_errors=True)
            runs.append(self.run("ingest", corpus, "--index", self.index))
        stats = self.run("stats", "--json", "--index", self.index).json()
        chunks = self.worker("chunk-stats", self.index).json()
        return ingest_summary(
            runs, articles=stats["articles"], chunks=stats["chunks"], chunk_stats=chunks
        ) | {"index_bytes": stats["size_bytes"], "index_dir_bytes": directory_bytes(self.index)}

    def serve(self, latency_plan: Path) -> dict[str, Any]:
        result: dict[str, Any] = self.worker("serve", self.index, latency_plan).json()
        return result

    def cold_ask(self, question: str) -> Measured:
        return self.run("ask", question, "--index", self.index)

    def help(self) -> Measured:
        return self.run("--help")

    def retrieve(self, questions: Path) -> dict[str, Any]:
        say(f"{self.label}: retrieval for scoring")
        result: dict[str, Any] = self.worker("retrieve", self.index, questions).json()
        return result


class Peer:
    """LangChain + HuggingFaceEmbeddings + FAISS, in its own venv (``bench/peer.py``)."""

    label = "peer"

    def __init__(self, plan: Plan, python: Path) -> None:
        self.plan = plan
        self.python = python
        self.index = plan.data_dir / "peer-index"
        self.env = clean_env()

    def run(self, *args: str | Path) -> Measured:
        command = [self.python, BENCH_DIR / "peer.py", *args]
        return measure(command, env=self.env, cwd=self.plan.work)

    def versions(self) -> dict[str, str]:
        result: dict[str, str] = self.run("versions").json()
        return result

    def ingest(self, corpus: Path, warm_up: Path) -> dict[str, Any]:
        say(f"peer: ingest warm-up ({warm_up.name})")
        scratch = self.plan.data_dir / "warm-up-index"
        shutil.rmtree(scratch, ignore_errors=True)
        self.run("ingest", warm_up, scratch)
        shutil.rmtree(scratch)
        runs = []
        for n in range(self.plan.ingest_runs):
            say(f"peer: ingest {n + 1}/{self.plan.ingest_runs} (split, embed, FAISS, save_local)")
            shutil.rmtree(self.index, ignore_errors=True)
            runs.append(self.run("ingest", corpus, self.index))
        counts = runs[-1].json()
        chunks = self.run("chunk-stats", self.index).json()
        size = directory_bytes(self.index)
        return ingest_summary(
            runs, articles=counts["articles"], chunks=counts["chunks"], chunk_stats=chunks
        ) | {"index_bytes": size, "index_dir_bytes": size}

    def serve(self, latency_plan: Path) -> dict[str, Any]:
        result: dict[str, Any] = self.run("serve", self.index, latency_plan).json()
        return result

    def cold_ask(self, question: str) -> Measured:
        return self.run("cold-ask", self.index, question)

    def retrieve(self, questions: Path) -> dict[str, Any]:
        say("peer: retrieval for scoring")
        result: dict[str, Any] = self.run("retrieve", self.index, questions).json()
        return result


Side = Newsbot | Peer


def ingest_summary(
    runs: list[Measured], *, articles: int, chunks: int, chunk_stats: dict[str, Any]
) -> dict[str, Any]:
    seconds = median([r.seconds for r in runs])
    return {
        "articles": articles,
        "chunks": chunks,
        "seconds": seconds,
        "seconds_runs": [r.seconds for r in runs],
        "articles_per_s": articles / seconds,
        "chunks_per_s": chunks / seconds,
        # Throughput that does not depend on how large the chunks are.
        "word_pieces_per_s": chunks * chunk_stats["embedded_mean_word_pieces"] / seconds,
        "peak_rss_mb": median([r.peak_rss_mb for r in runs]),
        "mean_chunk_chars": chunk_stats["mean_chars"],
        "mean_chunk_word_pieces": chunk_stats["mean_word_pieces"],
        "mean_embedded_word_pieces": chunk_stats["embedded_mean_word_pieces"],
        "truncated_share": chunk_stats["truncated_share"],
    }


def latency_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles per round, then the median over rounds; the warm-up is already excluded.

    Each round is one serving process's answer to one run of questions (``serve``).
    ``repeat`` is the p50 of asking that run again in the same process (the most recent
    questions, as a cache of limited size would keep them), the median over rounds.
    """
    steps = ("total_ms", "embed_ms", "search_ms", "compose_ms")
    runs = [run for served in rounds for run in served["runs"]]
    per_run = [{step: percentiles([q[step] for q in run]) for step in steps} for run in runs]
    summary: dict[str, Any] = {
        step: {p: median([r[step][p] for r in per_run]) for p in ("p50", "p90", "p99")}
        for step in steps
    }
    summary["p50_per_run"] = [r["total_ms"]["p50"] for r in per_run]
    summary["repeat"] = {
        step: median([percentiles([q[step] for q in s["repeat"]])["p50"] for s in rounds])
        for step in steps
    }
    summary |= {
        "questions": len(runs[0]),
        "runs": len(runs),
        "load_seconds": median([s["load_seconds"] for s in rounds]),
        "serving_rss_mb": median([s["serving_rss_mb"] for s in rounds]),
        "serving_questions": rounds[0]["serving_questions"],
        "chunks": rounds[0]["chunks"],
    }
    if "search_ms_one_thread" in rounds[0]:  # the peer's FAISS, default threads vs. one
        summary["faiss_threads"] = rounds[0]["faiss_threads"]
        summary["search_ms_one_thread"] = percentiles(
            [ms for s in rounds for ms in s["search_ms_one_thread"]]
        )
    return summary


def serve_in_rounds(
    sides: list[Side], latency_plan: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Warm latency, the sides taking turns: each answers one run of questions per round.

    This machine's speed drifts over tens of seconds (README, *Performance*), so sides
    measured one after the other for minutes would compare two machines. In each round
    every side starts a fresh serving process, warms up, answers the round's run of
    distinct questions and repeats it; the order of the sides alternates between rounds.
    Returns each side's summary, and the error of each side that failed.
    """
    latency = json.loads(latency_plan.read_text(encoding="utf-8"))
    served: dict[str, list[dict[str, Any]]] = {side.label: [] for side in sides}
    failed: dict[str, str] = {}
    count = len(latency["runs"])
    for n, questions in enumerate(latency["runs"]):
        round_plan = latency_plan.with_name(f"{latency_plan.stem}-round-{n + 1}.json")
        round_plan.write_text(
            json.dumps({"warm_up": latency["warm_up"], "runs": [questions]}), encoding="utf-8"
        )
        for side in sides if n % 2 == 0 else sides[::-1]:
            if side.label in failed:
                continue
            say(f"{side.label}: warm questions, round {n + 1}/{count}, {len(questions)} + repeat")
            try:
                served[side.label].append(side.serve(round_plan))
            except BenchError as exc:
                failed[side.label] = str(exc)
    summaries = {
        label: latency_summary(served_rounds)
        for label, served_rounds in served.items()
        if label not in failed
    }
    return summaries, failed


def per_run_ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Warm answer p50 against the peer's in the same round; the median is the robust ratio."""
    ratios = [a / b for a, b in zip(ours["p50_per_run"], peer["p50_per_run"], strict=True)]
    return {"p50_ratio_per_run": ratios, "p50_ratio_median": median(ratios)}


def quality_summary(questions: list[LabelledQuestion], retrieved: dict[str, Any]) -> dict[str, Any]:
    """Score both sides' rankings with newsbot's implementation of the official metric."""
    texts: list[list[str]] = retrieved["texts"]
    abstained: list[bool] | None = retrieved.get("abstained")  # the peer never declines
    if len(texts) != len(questions):
        raise BenchError(f"{len(texts)} rankings returned for {len(questions)} questions")
    # evaluate() asks in question order; the rankings are in the same order.
    rankings = iter(zip(texts, abstained or [False] * len(texts), strict=True))
    report = evaluate(questions, lambda _query: next(rankings)).to_dict()
    report.pop("latency_p50_ms")  # of a dictionary lookup here, not of retrieval
    if abstained is None:
        report.pop("null_abstained")
        report.pop("answerable_abstained")
    return report


# -- the sections -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inputs:
    """The data both sides get, written once per run into the work directory."""

    corpus: Path
    latency_plan: Path
    quality_questions: Path
    questions: list[LabelledQuestion]
    cold_question: str


def run_sections(sides: list[Side], plan: Plan, inputs: Inputs, results: Results) -> None:
    """Run each section for every side in turn, so both sides of a row are measured close
    together (a machine's load drifts); warm latency interleaves them further, in rounds.
    A side whose ingest failed skips the rest."""
    bodies: dict[str, Callable[[Side], dict[str, Any]]] = {
        "ingest": lambda side: side.ingest(
            inputs.corpus, warm_up_corpus(inputs.corpus, plan.data_dir)
        ),
        "cold": lambda side: cold_start(side, plan, inputs.cold_question),
        "quality": lambda side: quality_summary(
            inputs.questions, side.retrieve(inputs.quality_questions)
        ),
    }
    measured: dict[str, dict[str, Any]] = {side.label: {} for side in sides}
    unusable: set[str] = set()
    for name in SECTIONS:
        if name not in plan.sections or name == "scaling":
            continue
        ready = []
        for side in sides:
            if side.label in unusable:
                continue
            if name != "ingest" and not side.index.exists():
                unusable.add(side.label)
                results.errors.append(
                    f"{side.label}: no index at {side.index}; run once with --sections ingest"
                )
                continue
            ready.append(side)
        errors: dict[str, str] = {}
        if name == "query":
            summaries, errors = serve_in_rounds(ready, inputs.latency_plan)
            for label, summary in summaries.items():
                measured[label][name] = summary
        else:
            for side in ready:
                try:
                    measured[side.label][name] = bodies[name](side)
                except BenchError as exc:
                    errors[side.label] = str(exc)
                    if name == "ingest":
                        unusable.add(side.label)
        for label, error in errors.items():
            say(f"{label}: {name} failed: {error}")
            results.errors.append(f"{label} {name}: {error}")
    peer_query = next((measured[s.label].get("query") for s in sides if isinstance(s, Peer)), None)
    for side in sides:
        if isinstance(side, Peer):
            results.peer = measured[side.label]
            continue
        query = measured[side.label].get("query")
        if query and peer_query:
            query |= per_run_ratios(query, peer_query)
        results.newsbot[side.label] = measured[side.label] | {"settings": side.settings}


def cold_start(side: Side, plan: Plan, question: str) -> dict[str, Any]:
    """Fresh process to first answer (median; one warm-up run fills the page cache)."""
    say(f"{side.label}: cold start, 1 warm-up + {plan.cold_runs} runs")
    side.cold_ask(question)
    asks = [side.cold_ask(question) for _ in range(plan.cold_runs)]
    result = {
        "answer_seconds": median([r.first_output_seconds or r.seconds for r in asks]),
        "exit_seconds": median([r.seconds for r in asks]),
        "runs": plan.cold_runs,
        "peak_rss_mb": median([r.peak_rss_mb for r in asks]),
    }
    if isinstance(side, Newsbot):
        say(f"{side.label}: --help, 1 warm-up + {plan.help_runs} runs")
        side.help()
        helps = [side.help() for _ in range(plan.help_runs)]
        result |= {"help_seconds": median([r.seconds for r in helps]), "help_runs": plan.help_runs}
    return result


def run_scaling(plan: Plan, results: Results) -> None:
    """The synthetic scaling section, from ``bench/scaling.py`` when it is there."""
    try:
        scaling = importlib.import_module("bench.scaling")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.scaling":
            raise
        results.notes.append("scaling: skipped, bench/scaling.py is not there")
        return
    say(f"scaling: {', '.join(f'{s:,}' for s in plan.sizes)} synthetic chunks")
    try:
        results.scaling = list(scaling.run(list(plan.sizes), quick=plan.quick))
    except Exception as exc:  # one section failing must not lose the others' numbers
        say(f"scaling failed: {type(exc).__name__}: {exc}")
        results.errors.append(f"scaling: {type(exc).__name__}: {exc}")


# -- setup ------------------------------------------------------------------------------


def ensure_peer_venv(venv: Path) -> Path:
    """The peer's venv, created (or brought up to date) from bench/peer-requirements.txt.

    torch goes in first, alone: sentence-transformers then accepts that CPU build instead of
    pulling a multi-GB CUDA one. ``TORCH_PIP_ARGS`` (as in the Makefile) is added to that
    install, e.g. ``--index-url <CPU wheel index>``.
    """
    requirements = BENCH_DIR / "peer-requirements.txt"
    torch_args = shlex.split(os.environ.get("TORCH_PIP_ARGS", ""))
    pins = [
        line.split("#")[0].strip()
        for line in requirements.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    torch = [p for p in pins if p.split("=")[0].strip().lower() == "torch"]
    if not torch:
        raise BenchError(f"{requirements} pins no torch version; add e.g. torch==2.13.0")
    return ensure_venv(venv, requirements, first=[*torch_args, *torch], what="the peer")


def ensure_venv(venv: Path, requirements: Path, *, first: Sequence[str] = (), what: str) -> Path:
    """A venv of its own for ``what``, created (or brought up to date) from ``requirements``;
    ``first`` is installed alone before the rest. A hash of both marks a venv that is up to
    date, so later runs reuse it at once."""
    wanted = hashlib.sha256(requirements.read_bytes() + " ".join(first).encode()).hexdigest()
    marker = venv / ".bench-requirements-sha256"
    python = venv / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text().strip() == wanted:
        say(f"{what}: {venv} (up to date)")
        return python
    say(f"{what}: installing into {venv} (once; minutes)")
    steps = [[sys.executable, "-m", "venv", str(venv)]]
    if first:
        steps.append([str(python), "-m", "pip", "install", "--quiet", *first])
    steps.append([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
    for step in steps:
        # pip's chatter goes to stderr with the progress; stdout is for the table.
        done = subprocess.run(step, stdout=sys.stderr, check=False)
        if done.returncode != 0:
            raise BenchError(f"installing {what} failed: `{shlex.join(step)}`")
    marker.write_text(wanted + "\n")
    return python


def latency_plan(questions: list[LabelledQuestion], plan: Plan) -> dict[str, Any]:
    """Warm-up questions and ``query_runs`` disjoint runs of dev questions, one per round.

    Every timed question is new to its process, so a cache of query embeddings never
    answers one; the repeat pass (the run again) is where a cache shows.
    """
    pool = [q.query for q in questions]
    per_run = QUICK_QUESTIONS if plan.quick else LATENCY_QUESTIONS
    per_run = min(per_run, (len(pool) - WARM_UP) // plan.query_runs)
    return {
        "warm_up": pool[-WARM_UP:],
        "runs": [pool[i * per_run : (i + 1) * per_run] for i in range(plan.query_runs)],
    }


def warm_up_corpus(corpus: Path, directory: Path) -> Path:
    """A few articles to ingest once, untimed, before the measured ingest.

    The first run after a while loads the libraries and the model from disk, and newsbot's
    ONNX backend exports the model once into its cache: one-time costs, like installing.
    """
    target = directory / "warm-up.jsonl"
    with corpus.open(encoding="utf-8") as f:
        target.write_text("".join(line for line, _ in zip(f, range(5), strict=False)))
    return target


def quick_corpus(source: Path, questions: Path, count: int, target: Path) -> Path:
    """The articles the first ``count`` questions cite, topped up in corpus order to 60."""
    with questions.open(encoding="utf-8") as f:
        first = [json.loads(line) for line, _ in zip(f, range(count), strict=False)]
    cited = {e["url"] for q in first for e in q.get("evidence") or []}
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    is_cited = [json.loads(line)["url"] in cited for line in lines]
    chosen = [line for line, c in zip(lines, is_cited, strict=True) if c]
    chosen += [line for line, c in zip(lines, is_cited, strict=True) if not c][
        : max(QUICK_ARTICLES - len(chosen), 0)
    ]
    target.write_text("".join(chosen), encoding="utf-8")
    return target


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg()[0],
    }


def newsbot_versions() -> dict[str, str]:
    names = ["newsbot", "sentence-transformers", "transformers", "torch", "faiss-cpu", "numpy"]
    optional = ["onnxruntime"]
    found = {name: version(name) for name in names}
    for name in optional:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # not installed: not part of this run
            continue
    return found


# -- the command ------------------------------------------------------------------------


def parse_plan(argv: list[str] | None) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark newsbot against LangChain + HuggingFaceEmbeddings + FAISS.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_ARTICLES} articles, {QUICK_QUESTIONS} questions, one "
        "repetition, 10k-chunk scaling only",
    )
    parser.add_argument("--skip-peer", action="store_true", help="measure newsbot only")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated NEWSBOT_EMBEDDING_BACKEND values, one newsbot column each "
        "(e.g. torch,onnx); default: newsbot's own default",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=BENCH_DIR / "results" / "latest.json",
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--ingest-runs",
        type=int,
        default=1,
        help="ingests per side, median reported (default 1: about five minutes each)",
    )
    parser.add_argument(
        "--sizes",
        help="scaling sizes in chunks, comma-separated (default 10000,100000,1000000)",
    )
    args = parser.parse_args(argv)

    sections = frozenset(s.strip() for s in args.sections.split(",") if s.strip())
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    work = Path(os.environ.get("NEWSBOT_BENCH_DIR", "/tmp/newsbot-bench")).resolve()
    if work.is_relative_to(REPO):
        parser.error(f"NEWSBOT_BENCH_DIR ({work}) must be outside the repository")
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip()) or (None,)
    if variants != (None,) and "embedding_backend" not in RetrievalSettings.model_fields:
        parser.error("--variants needs NEWSBOT_EMBEDDING_BACKEND, which this newsbot lacks")
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    plan = Plan(
        quick=args.quick,
        sections=sections,
        skip_peer=args.skip_peer,
        variants=variants,
        work=work,
        peer_venv=Path(os.environ.get("NEWSBOT_BENCH_PEER_VENV", work / "peer-venv")),
        corpus=DATA / "corpus.jsonl",
        questions=DATA / "dev-queries.jsonl",
        sizes=sizes,
        ingest_runs=max(args.ingest_runs, 1),
        query_runs=1 if args.quick else QUERY_RUNS,
        cold_runs=1 if args.quick else 5,
        help_runs=3 if args.quick else 10,
    )
    return plan, args.json


def main(argv: list[str] | None = None) -> int:
    plan, json_path = parse_plan(argv)
    for path in (plan.corpus, plan.questions):
        if not path.is_file():
            say(f"error: {path} is missing (MultiHop-RAG, expected in ../shared/eval)")
            return 1
    plan.data_dir.mkdir(parents=True, exist_ok=True)

    questions = load_questions(plan.questions)
    corpus = plan.corpus
    if plan.quick:
        questions = questions[:QUICK_QUESTIONS]
        corpus = quick_corpus(
            plan.corpus, plan.questions, QUICK_QUESTIONS, plan.data_dir / "corpus.jsonl"
        )
    latency = latency_plan(load_questions(plan.questions), plan)
    latency_file = plan.data_dir / "latency-plan.json"
    latency_file.write_text(json.dumps(latency), encoding="utf-8")
    quality_file = plan.data_dir / "quality-questions.json"
    quality_file.write_text(json.dumps([q.query for q in questions]), encoding="utf-8")

    results = Results(
        meta={
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", "bench.run", *(argv or sys.argv[1:])]),
            "quick": plan.quick,
            "sections": sorted(plan.sections),
            "corpus": str(corpus),
            "quality_questions": len(questions),
            "latency_questions": len(latency["runs"][0]),
            "warm_up_questions": len(latency["warm_up"]),
            "query_runs": plan.query_runs,
            "cold_runs": plan.cold_runs,
            "help_runs": plan.help_runs,
            "ingest_runs": plan.ingest_runs,
            "machine": machine(),
            "newsbot_versions": newsbot_versions(),
        }
    )
    say(f"work directory {plan.work}; {len(questions)} questions, corpus {corpus}")

    sides: list[Side] = [Newsbot(plan, v) for v in plan.variants]
    if not plan.skip_peer and plan.sections - {"scaling"}:
        try:
            peer = Peer(plan, ensure_peer_venv(plan.peer_venv))
            results.meta["peer_versions"] = peer.versions()
            sides.append(peer)
        except BenchError as exc:
            say(str(exc))
            results.errors.append(f"peer: {exc}")
    inputs = Inputs(corpus, latency_file, quality_file, questions, questions[0].query)
    run_sections(sides, plan, inputs, results)
    if "scaling" in plan.sections:
        run_scaling(plan, results)
    results.meta["load_average_at_end"] = os.getloadavg()[0]

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(asdict(results), indent=2) + "\n", encoding="utf-8")
    print(format_results(asdict(results)))
    say(f"results written to {json_path}")
    for error in results.errors:
        say(f"error: {error}")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
