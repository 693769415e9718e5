"""Rendering an ``Answer``: plain terminal text and the JSON shapes other tools rely on."""

from __future__ import annotations

import textwrap
from typing import Any

from retrieval.answer import Answer, Citation
from retrieval.assistant import IndexStats
from retrieval.search import Hit


def citation_line(citation: Citation) -> str:
    """``[1] Title — Source, 2024-11-14 — https://…`` (missing parts are left out)."""
    where = ", ".join(p for p in (citation.source, citation.published_date) if p)
    parts = [f"[{citation.n}] {citation.title}", where, citation.url or ""]
    return " — ".join(p for p in parts if p)


def format_answer_text(answer: Answer, *, width: int = 100) -> str:
    """The answer for a terminal: the text, then each source with its supporting snippet."""
    lines = [textwrap.fill(answer.text, width=width)]
    if answer.citations:
        lines += ["", "Sources"]
        for citation in answer.citations:
            lines.append(citation_line(citation))
            snippet = textwrap.fill(
                f"“{citation.snippet}”",
                width=width,
                initial_indent="    ",
                subsequent_indent="    ",
            )
            lines.append(snippet)
    return "\n".join(lines)


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """The stable ``newsbot ask --json`` shape."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [
            {
                "n": c.n,
                "article_id": c.article_id,
                "title": c.title,
                "source": c.source,
                "url": c.url,
                "published": c.published_date,
                "snippet": c.snippet,
                "score": c.score,
            }
            for c in answer.citations
        ],
    }


def hits_to_dict(query: str, hits: list[Hit]) -> dict[str, Any]:
    """The stable ``newsbot search --json`` shape; ``text`` is the stored chunk text."""
    return {
        "query": query,
        "hits": [
            {
                "rank": rank,
                "article_id": hit.chunk.article_id,
                "title": hit.chunk.title,
                "url": hit.chunk.url,
                "published": hit.chunk.published_date,
                "text": hit.chunk.text,
                "score": round(hit.score, 4),
            }
            for rank, hit in enumerate(hits, start=1)
        ],
    }


def format_hits_text(hits: list[Hit], *, width: int = 100) -> str:
    lines = []
    for rank, hit in enumerate(hits, start=1):
        where = ", ".join(p for p in (hit.chunk.source, hit.chunk.published_date) if p)
        lines.append(
            f"{rank}. ({hit.score:.3f}) {hit.chunk.title}" + (f" — {where}" if where else "")
        )
        lines.append(textwrap.shorten(hit.chunk.text, width=width * 2, placeholder=" …"))
    return "\n".join(lines) if lines else "No passages found."


def stats_to_dict(stats: IndexStats) -> dict[str, Any]:
    return {
        "index_dir": str(stats.index_dir),
        "generation": stats.generation,
        "articles": stats.articles,
        "chunks": stats.chunks,
        "model": stats.model,
        "dimension": stats.dimension,
        "size_bytes": stats.size_bytes,
        "oldest_article": stats.oldest,
        "newest_article": stats.newest,
    }


def format_stats_text(stats: IndexStats) -> str:
    rows = [
        ("index", str(stats.index_dir)),
        ("articles", f"{stats.articles:,}"),
        ("chunks", f"{stats.chunks:,}"),
        ("model", stats.model),
        ("dimension", str(stats.dimension)),
        ("size on disk", _human_bytes(stats.size_bytes)),
        ("articles from", f"{stats.oldest or '?'} to {stats.newest or '?'}"),
        ("generation", stats.generation),
    ]
    return "\n".join(f"{key:<14}{value}" for key, value in rows)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
