"""The bench's tables, as Markdown, from the results that ``bench/run.py`` writes.

Also re-prints the tables of a results file: ``python -m bench.report bench/results/latest.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Getter = Callable[[dict[str, Any]], Any]


def _at(*path: str, scale: float = 1.0) -> Getter:
    def get(side: dict[str, Any]) -> Any:
        value: Any = side
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value * scale if isinstance(value, int | float) and value is not None else value

    return get


# (label, getter, better, format): better is "higher", "lower" or "" (no direction).
ROWS: list[tuple[str, Getter, str, str]] = [
    ("ingest: articles/s (file → saved index)", _at("ingest", "articles_per_s"), "higher", ".2f"),
    ("ingest: chunks/s", _at("ingest", "chunks_per_s"), "higher", ".1f"),
    ("ingest: word pieces embedded/s", _at("ingest", "word_pieces_per_s"), "higher", ",.0f"),
    ("ingest: wall time, s", _at("ingest", "seconds"), "lower", ".1f"),
    ("ingest: chunks", _at("ingest", "chunks"), "", ",d"),
    ("ingest: mean chunk, characters", _at("ingest", "mean_chunk_chars"), "", ".0f"),
    ("ingest: mean chunk, word pieces", _at("ingest", "mean_chunk_word_pieces"), "", ".0f"),
    (
        "ingest: word pieces embedded per chunk",
        _at("ingest", "mean_embedded_word_pieces"),
        "",
        ".0f",
    ),
    (
        "ingest: chunks cut at the model's 256 word pieces",
        _at("ingest", "truncated_share"),
        "",
        ".1%",
    ),
    ("ingest: peak RSS, MB", _at("ingest", "peak_rss_mb"), "lower", ".0f"),
    ("index size on disk, MB", _at("ingest", "index_bytes", scale=1e-6), "lower", ".1f"),
    ("warm answer p50, ms", _at("query", "total_ms", "p50"), "lower", ".1f"),
    ("  p50 of each round, ms", lambda side: _series(_at("query", "p50_per_run")(side)), "", "s"),
    (
        "  p50 / the peer's in the same round: median over rounds",
        _at("query", "p50_ratio_median"),
        "lower",
        ".2f",
    ),
    ("warm answer p90, ms", _at("query", "total_ms", "p90"), "lower", ".1f"),
    ("warm answer p99, ms", _at("query", "total_ms", "p99"), "lower", ".1f"),
    ("  query embedding p50, ms", _at("query", "embed_ms", "p50"), "lower", ".2f"),
    ("  search p50, ms", _at("query", "search_ms", "p50"), "lower", ".2f"),
    ("  answer step p50, ms", _at("query", "compose_ms", "p50"), "lower", ".2f"),
    (
        "  search p50, FAISS on 1 thread instead of all cores, ms",
        _at("query", "search_ms_one_thread", "p50"),
        "lower",
        ".2f",
    ),
    ("repeated question: warm answer p50, ms", _at("query", "repeat", "total_ms"), "lower", ".1f"),
    ("repeated question: embedding p50, ms", _at("query", "repeat", "embed_ms"), "lower", ".2f"),
    (
        "serving: peak RSS after loading + 50 answers, MB",
        _at("query", "serving_rss_mb"),
        "lower",
        ".0f",
    ),
    ("serving: index and model load, s", _at("query", "load_seconds"), "lower", ".2f"),
    ("cold: fresh process → answer printed, s", _at("cold", "answer_seconds"), "lower", ".2f"),
    ("cold: fresh process → exit, s", _at("cold", "exit_seconds"), "lower", ".2f"),
    ("`newsbot --help`, s", _at("cold", "help_seconds"), "lower", ".3f"),
    ("quality: Hits@10", _at("quality", "hits@10"), "higher", ".4f"),
    ("quality: Hits@4", _at("quality", "hits@4"), "higher", ".4f"),
    ("quality: MRR@10", _at("quality", "mrr@10"), "higher", ".4f"),
    ("quality: MAP@10", _at("quality", "map@10"), "higher", ".4f"),
    ("quality: null questions declined", _at("quality", "null_abstained"), "higher", ".1%"),
    (
        "quality: answerable questions declined",
        _at("quality", "answerable_abstained"),
        "lower",
        ".1%",
    ),
]

NOTES = [
    "Ratios are newsbot / peer from the same run; 'better' says which way is better.",
    "Warm answer = newsbot `NewsAssistant.ask` (embedding, hybrid search with rerank, cited "
    "answer composition); peer = `embed_query` + FAISS `similarity_search_with_score_by_vector`"
    " + joining the documents into the prompt context (a LangChain RAG chain's step before the"
    " LLM; the peer composes no answer itself).",
    "Warm answers are timed in rounds: per round, each side answers the same run of new "
    "questions in a fresh serving process, the sides taking turns; percentiles are the median "
    "over rounds, and the per-round ratio compares answers given seconds apart.",
    "newsbot's search step is FAISS + BM25 + fusion + boosts + sentence rerank + passage fetch; "
    "the peer's is FAISS + docstore lookup.",
    "Cold = a fresh process: `newsbot ask` vs. a python that imports LangChain, load_local()s and "
    "answers one similarity_search; medians after one warm-up run.",
    "Quality: MultiHop-RAG's official metric (newsbot's `score_ranking`) on both sides' top 10; "
    "the peer never declines.",
]


def _series(values: Any) -> str | None:
    return " / ".join(f"{v:.1f}" for v in values) if isinstance(values, list) else None


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and spec.endswith("d"):
        value = round(value)
    return format(value, spec)


def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return "—"
    return f"{ours / theirs:.2f}×"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table padded to line up in a terminal; columns after the first align right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    ) + "|"  # fmt: skip
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def format_rows(results: dict[str, Any]) -> str:
    """The comparison table: one column per newsbot variant, the peer, and the ratios."""
    newsbot: dict[str, dict[str, Any]] = results.get("newsbot") or {}
    peer: dict[str, Any] = results.get("peer") or {}
    labels = list(newsbot)
    header = ["metric", *labels, "peer"]
    header += [f"{label} / peer" for label in labels]
    header.append("better")
    rows = []
    for name, get, better, spec in ROWS:
        ours = [get(newsbot[label]) for label in labels]
        theirs = get(peer)
        if all(v is None for v in [*ours, theirs]):
            continue
        rows.append(
            [
                name,
                *(_cell(v, spec) for v in ours),
                _cell(theirs, spec),
                *(_ratio(v, theirs) for v in ours),
                better,
            ]
        )
    return markdown_table(header, rows)


def format_scaling(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return markdown_table(columns, [[_scalar(row.get(c)) for c in columns] for row in rows])


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def format_results(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    machine = meta.get("machine", {})
    parts = [
        f"newsbot vs. LangChain + HuggingFaceEmbeddings + FAISS — {meta.get('started', '')}",
        f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, load average "
        f"{machine.get('load_average_at_start', 0):.2f} at start, "
        f"{meta.get('load_average_at_end', 0):.2f} at end; "
        f"{meta.get('quality_questions', '?')} dev questions scored, "
        f"{meta.get('latency_questions', '?')} timed × {meta.get('query_runs', '?')} run(s)"
        + (" — QUICK smoke run, not for comparison" if meta.get("quick") else ""),
        "",
        format_rows(results),
        "",
        *(f"- {note}" for note in NOTES),
    ]
    if results.get("scaling"):
        parts += ["", "Scaling (bench/scaling.py):", "", format_scaling(results["scaling"])]
    tail = [f"- {note}" for note in results.get("notes", [])]
    tail += [f"- ERROR {error}" for error in results.get("errors", [])]
    if tail:
        parts += ["", *tail]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    path = Path(args[0]) if args else Path(__file__).parent / "results" / "latest.json"
    print(format_results(json.loads(path.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
