"""Rendering an ``Answer``: terminal text, Telegram HTML and the JSON shapes tools rely on."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from retrieval.answer import Answer, Citation, Headlines
from retrieval.assistant import IndexStats, SourceStatus
from retrieval.evaluation import EvaluationReport
from retrieval.search import Hit

from .state import Follow


def citation_line(citation: Citation) -> str:
    """``[1] Title — Source, 2024-11-14 — https://…`` (missing parts are left out)."""
    where = ", ".join(p for p in (citation.source, citation.published_date) if p)
    parts = [f"[{citation.n}] {citation.title}", where, citation.url or ""]
    return " — ".join(p for p in parts if p)


def format_answer_text(answer: Answer, *, width: int = 100) -> str:
    """The answer for a terminal: the text, then each source with its supporting snippet."""
    lines = [textwrap.fill(answer.text, width=width)]
    if answer.mode == "llm":
        left_out = len(answer.dropped)
        note = "(Written by a language model from the sources below, every sentence checked"
        if left_out:
            were = "sentence it wrote was" if left_out == 1 else "sentences it wrote were"
            note += f"; {left_out} {were} left out as unsupported"
        lines.append(textwrap.fill(note + ".)", width=width))
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
        # The publication times the question named; only articles published then were read.
        "time_ranges": [
            {"from": r.start.isoformat(), "until": r.end.isoformat(), "label": r.label()}
            for r in answer.ranges
        ],
        # Who wrote the answer; an LLM's sentences the citation check removed, and why; why
        # an LLM answer was not used (README, LLM-written answers).
        "mode": answer.mode,
        "dropped": [{"sentence": d.text, "reason": d.reason} for d in answer.dropped],
        "llm_fallback": answer.fallback,
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
        "store": stats.store or str(stats.index_dir),
        "generation": stats.generation,
        "articles": stats.articles,
        "chunks": stats.chunks,
        "model": stats.model,
        "dimension": stats.dimension,
        "size_bytes": stats.size_bytes,
        "oldest_article": stats.oldest,
        "newest_article": stats.newest,
        "last_refresh": stats.last_refresh,
        "sources": [
            {
                "url": s.url,
                "kind": s.kind,
                "articles": s.articles,
                "last_ok": s.last_ok,
                "last_error": s.last_error,
                "last_error_at": s.last_error_at,
            }
            for s in stats.sources
        ],
    }


def format_stats_text(stats: IndexStats) -> str:
    rows = [
        ("index", stats.store or str(stats.index_dir)),
        ("articles", f"{stats.articles:,}"),
        ("chunks", f"{stats.chunks:,}"),
        ("model", stats.model),
        ("dimension", str(stats.dimension)),
        ("size on disk", _human_bytes(stats.size_bytes)),
        ("articles from", f"{stats.oldest or '?'} to {stats.newest or '?'}"),
        ("generation", stats.generation),
    ]
    if stats.last_refresh:
        rows.append(("last refresh", stats.last_refresh))
    lines = [f"{key:<14}{value}" for key, value in rows]
    if stats.sources:
        lines.append("sources")
        for s in stats.sources:
            ok = f"last ok {s.last_ok}" if s.last_ok else "never read"
            lines.append(f"  {s.url}  ({s.kind}, {s.articles:,} articles, {ok})")
            if s.last_error and not _recovered(s):
                lines.append(f"    last error {s.last_error_at}: {s.last_error}")
    return "\n".join(lines)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- Telegram -------------------------------------------------------------------------------

#: Telegram's limit for one message (in UTF-16 code units, after entity parsing).
TELEGRAM_MESSAGE_LIMIT = 4096

NOTHING_FOUND_HTML = (
    "I found nothing about that in my news. Try rephrasing it, or ask about something else "
    "(/stats shows what I know)."
)

# How much of each supporting snippet the answer itself shows; /sources shows it all.
_SNIPPET_PREVIEW = 200


def format_answer_html(answer: Answer) -> str:
    """The answer as Telegram HTML: the cited text, then each source as a link with its snippet.

    Everything taken from the corpus or the question is escaped; the only markup is ours.
    """
    if answer.abstained and answer.ranges:
        # "I found nothing about that between 1 and 7 December 2024 …": where it looked.
        return html.escape(answer.text)
    if answer.abstained or not answer.citations:
        return NOTHING_FOUND_HTML
    lines = [html.escape(answer.text), "", "<b>Sources</b>"]
    for citation in answer.citations:
        snippet = textwrap.shorten(citation.snippet, _SNIPPET_PREVIEW, placeholder=" …")
        lines.append(f"{_citation_html(citation)}\n<i>“{html.escape(snippet)}”</i>")
    return "\n".join(lines[:3]) + "\n" + "\n\n".join(lines[3:])


def format_push_html(topic: str, citations: Sequence[Citation]) -> str:
    """A followed topic's new articles: headline, source, date, link and the cited sentence."""
    lines = [f"🔔 <b>New on “{html.escape(topic)}”</b>"]
    for citation in citations:
        sentence = _first_quote(citation, 300)
        lines.append(f"{_citation_html(citation)}\n<i>“{html.escape(sentence)}”</i>")
    lines.append(f"/unfollow {html.escape(topic)} to stop these.")
    return "\n\n".join(lines)


def format_follows_html(follows: Sequence[Follow]) -> str:
    """/following: the chat's topics, numbered as /unfollow takes them."""
    if not follows:
        return "This chat follows no topics yet. /follow <i>topic</i> starts one."
    lines = ["<b>This chat follows</b>"]
    lines += [f"{n}. {html.escape(f.topic)}" for n, f in enumerate(follows, start=1)]
    lines.append("\n/unfollow <i>topic or number</i> stops one.")
    return "\n".join(lines)


def format_headlines_html(headlines: Headlines) -> str:
    """/latest: the newest articles, newest first, each a link with its source and date."""
    if not headlines.items:
        return html.escape(_no_headlines(headlines))
    lines = [f"<b>{html.escape(_headlines_title(headlines))}</b>"]
    for item in headlines.items:
        line = _citation_html(item)
        if item.snippet:
            sentence = _first_quote(item, 200)
            line += f"\n<i>“{html.escape(sentence)}”</i>"
        lines.append(line)
    return "\n\n".join(lines)


def format_headlines_text(headlines: Headlines, *, width: int = 100) -> str:
    """`newsbot latest`: the same list for a terminal."""
    if not headlines.items:
        return _no_headlines(headlines)
    lines = [_headlines_title(headlines)]
    for item in headlines.items:
        lines.append(citation_line(item))
        if item.snippet:
            lines.append(
                textwrap.fill(
                    f"“{_first_quote(item)}”",
                    width=width,
                    initial_indent="    ",
                    subsequent_indent="    ",
                )
            )
    return "\n".join(lines)


def headlines_to_dict(headlines: Headlines) -> dict[str, Any]:
    """The `newsbot latest --json` shape: the topic, the window and the articles."""
    return {
        "topic": headlines.topic,
        "since": headlines.since.isoformat() if headlines.since else None,
        "articles": [
            {
                "n": c.n,
                "article_id": c.article_id,
                "title": c.title,
                "source": c.source,
                "url": c.url,
                "published": c.published.isoformat() if c.published else None,
                "snippet": c.snippet or None,
            }
            for c in headlines.items
        ],
    }


def _first_quote(citation: Citation, width: int | None = None) -> str:
    """The first of the sentences a snippet quotes (they are joined by " … "), shortened
    to ``width`` characters if given."""
    quote = citation.snippet.split(" … ")[0]
    return textwrap.shorten(quote, width, placeholder=" …") if width else quote


def _since(moment: datetime | None) -> str:
    return f" since {moment.day} {moment:%B %Y}" if moment else ""


def _headlines_title(headlines: Headlines) -> str:
    since = _since(headlines.since)
    if headlines.topic:
        return f"Latest on “{headlines.topic}”{since}, newest first"
    return f"Latest articles{since}, newest first"


def _no_headlines(headlines: Headlines) -> str:
    since = _since(headlines.since)
    if headlines.topic:
        return f"I found nothing on “{headlines.topic}”{since} in the indexed news."
    return f"No articles{since} in the indexed news."


def format_sources_html(answer: Answer) -> str:
    """All sources of an answer with their full supporting snippets (the /sources command)."""
    if not answer.citations:
        return "The last answer cited no sources."
    blocks = ["<b>Sources of the last answer</b>"]
    for citation in answer.citations:
        snippet = " ".join(citation.snippet.split())
        block = f"{_citation_html(citation)}\n<blockquote>{html.escape(snippet)}</blockquote>"
        if _is_web_link(citation.url):
            block += f"\n{html.escape(citation.url or '')}"
        blocks.append(block)
    return "\n\n".join(blocks)


def format_stats_html(stats: IndexStats) -> str:
    """What is indexed, for /stats; with live news, how fresh it is."""
    text = (
        f"<b>{stats.articles:,}</b> articles in <b>{stats.chunks:,}</b> passages, "
        f"published {_date_range(stats)}.\n"
        f"Model: <code>{html.escape(stats.model)}</code> ({stats.dimension} dimensions), "
        f"index {_human_bytes(stats.size_bytes)}."
    )
    if stats.sources:
        failing = sum(1 for s in stats.sources if s.last_error and not _recovered(s))
        noun = "source" if len(stats.sources) == 1 else "sources"
        text += f"\nNews from {len(stats.sources)} {noun}"
        if stats.last_refresh:
            text += f", last refreshed {html.escape(stats.last_refresh.replace('T', ' '))}"
        text += f" ({failing} failing)." if failing else "."
    return text


def _recovered(source: SourceStatus) -> bool:
    """Whether a source worked again after its last error."""
    return bool(source.last_ok and source.last_ok >= (source.last_error_at or ""))


def describe_corpus_html(stats: IndexStats) -> str:
    """One sentence on what the bot knows, for /start."""
    noun = "article" if stats.articles == 1 else "articles"
    return f"I know <b>{stats.articles:,}</b> news {noun}, published {_date_range(stats)}."


# -- Command replies, shared by the bot and `newsbot chat` so the two cannot drift apart ----

UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
EMPTY_ASK = "Ask something after /ask, e.g. /ask Who met whom in Lima?"

#: How to ask in a private chat, and in the terminal chat, which works like one.
ASK_PRIVATELY_HTML = (
    "Just write a question, e.g. <i>Who met whom in Lima?</i> Follow-ups such as "
    "<i>and what award did he receive?</i> are read with the question before; "
    "/new starts afresh and /sources shows the snippets behind my last answer."
)

_HOW_TO_ASK_HTML = (
    "<b>How to ask</b>\n"
    "In this chat, write a question or use /ask <i>question</i>. Every claim in my "
    "answer carries a number [1] pointing to its source.\n\n"
    "/sources — full sources and snippets of my last answer\n"
    "/new — forget the conversation (follow-ups lean on the previous question)\n"
    "/stats — what I have read"
)


def start_html(stats: IndexStats, how: str) -> str:
    """The /start greeting: what the bot does, what it knows and ``how`` to ask here."""
    return (
        "<b>Hello!</b> I answer questions about the news and cite the articles I used.\n"
        f"{describe_corpus_html(stats)}\n\n{how}"
    )


def help_html(bot_username: str | None = None) -> str:
    """/help: the commands of a chat with the bot.

    With the bot's username, Telegram's text, which also explains groups and inline mode;
    without, the terminal chat's, which has no groups but commands of its own.
    """
    if bot_username is None:
        return (
            f"{_HOW_TO_ASK_HTML}\n/start — what I know\n/help — this list\n/quit or /exit — leave"
        )
    return (
        f"{_HOW_TO_ASK_HTML}\n\n"
        "<b>Staying current</b>\n"
        "Questions may name a time: <i>what happened in Gaza yesterday?</i>, "
        "<i>latest on the Fed</i>.\n"
        "/latest [<i>topic</i>] — the newest articles\n"
        "/follow <i>topic</i> — I post new articles on it here after each news refresh\n"
        "/following — the topics this chat follows; /unfollow <i>topic or number</i>\n\n"
        f"<b>In groups</b> I only answer when addressed: /ask <i>question</i>, "
        f"a mention (@{bot_username} <i>question</i>) or a reply to one of my messages.\n"
        f"<b>In any chat</b> type @{bot_username} <i>question</i> and pick the answer to send it."
    )


def short_answer(answer: Answer, width: int = 120) -> str:
    """The first claim of an answer without its marker, for an inline result's title."""
    if answer.abstained:
        return "Nothing found in my news"
    first = re.split(r"(?<=\[1\])", answer.text, maxsplit=1)[0]
    return textwrap.shorten(re.sub(r"\s*\[\d+\]", "", first), width, placeholder=" …")


def split_html(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Split Telegram HTML into messages of at most ``limit`` UTF-16 units.

    Splits between paragraphs (blank lines) where it can; a paragraph that is too long on
    its own is split between words, closing the tags open at the cut and reopening them in
    the next part, so every part is well-formed on its own.
    """
    if _units(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for block in _blocks(text):
        pieces = [block] if _units(block) <= limit else _split_words(block, limit)
        for piece in pieces:
            joined = f"{current}\n\n{piece}" if current else piece
            if _units(joined) <= limit:
                current = joined
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return [part for part in parts if part.strip()]


def html_to_plain(text: str) -> str:
    """Telegram HTML as plain text (the fallback when Telegram refuses the markup).

    Links keep their address in brackets, so nothing is lost but the styling.
    """
    parser = _PlainText()
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def _citation_html(citation: Citation) -> str:
    title = html.escape(citation.title)
    if _is_web_link(citation.url):
        title = f'<a href="{html.escape(citation.url or "", quote=True)}">{title}</a>'
    where = ", ".join(html.escape(p) for p in (citation.source, citation.published_date) if p)
    return f"[{citation.n}] {title}" + (f" — {where}" if where else "")


def _is_web_link(url: str | None) -> bool:
    return bool(url) and re.match(r"https?://\S+$", url or "") is not None


def _date_range(stats: IndexStats) -> str:
    if not stats.oldest:
        return "at unknown dates"
    if stats.oldest == stats.newest:
        return f"on {stats.oldest}"
    return f"from {stats.oldest} to {stats.newest}"


def _units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


_TOKEN = re.compile(r"<[^>]*>|&[#\w]+;|\s+|[^<&\s]+|[<&]")
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)")


def _blocks(text: str) -> list[str]:
    """Paragraphs, except that one whose tags stay open runs on to where they close."""
    blocks: list[str] = []
    pending: list[str] = []
    depth = 0
    for paragraph in text.split("\n\n"):
        pending.append(paragraph)
        for closing, _ in _TAG.findall(paragraph):
            depth += -1 if closing else 1
        if depth <= 0:
            blocks.append("\n\n".join(pending))
            pending, depth = [], 0
    if pending:
        blocks.append("\n\n".join(pending))
    return blocks


def _split_words(text: str, limit: int) -> list[str]:
    """Split a long paragraph between words, keeping the tags balanced in every part."""
    parts: list[str] = []
    open_tags: list[tuple[str, str]] = []  # (name, the opening tag as written)
    current = ""
    has_text = False

    def closers() -> str:
        return "".join(f"</{name}>" for name, _ in reversed(open_tags))

    def flush() -> None:
        nonlocal current, has_text
        if has_text:
            parts.append(current.rstrip() + closers())
        current = "".join(tag for _, tag in open_tags)
        has_text = False

    for token in _TOKEN.findall(text):
        tag = _TAG.match(token)
        if tag and tag.group(1):  # a closing tag always fits: it replaces a reserved closer
            current += token
            if open_tags and open_tags[-1][0] == tag.group(2).lower():
                open_tags.pop()
            continue
        if tag:
            name = tag.group(2).lower()
            needed = _units(current + token + closers()) + len(name) + 3
            if needed > limit:
                flush()
            current += token
            open_tags.append((name, token))
            continue
        # A "word" longer than a message holds no markup or entities: cut it anywhere.
        step = max(1, limit // 4)
        for piece in (token[i : i + step] for i in range(0, len(token), step)):
            if _units(current + piece + closers()) > limit:
                flush()
                if piece.isspace():
                    continue
            current += piece
            has_text = has_text or not piece.isspace()
    if has_text:
        parts.append(current.rstrip() + closers())
    return parts


class _PlainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._hrefs: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._hrefs.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if href:
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def format_evaluation_text(rows: list[tuple[str, EvaluationReport]], *, detail: bool) -> str:
    """Retrieval and answer tables per configuration; with ``detail``, per question type too."""
    header = f"{'':34}{'questions':>10}{'Hits@4':>8}{'Hits@10':>8}{'MRR@10':>8}{'MAP@10':>8}"
    lines = [header]

    def row(name: str, means: dict[str, float]) -> str:
        return (
            f"{name:34}{means['questions']:>10.0f}{means['hits@4']:>8.3f}{means['hits@10']:>8.3f}"
            f"{means['mrr@10']:>8.3f}{means['map@10']:>8.3f}"
        )

    def answers(name: str, means: dict[str, float]) -> str:
        if "answered_right" not in means:
            return f"{name:34}{'(not composed)':>16}"
        return (
            f"{name:34}{means['answered_right']:>8.1%}{means['first_citation_right']:>13.1%}"
            f"{means['declined']:>10.1%}{means['cited_articles']:>11.2f}{means['padded']:>9.1%}"
        )

    def block(render: Callable[[str, dict[str, float]], str]) -> None:
        for name, report in rows:
            lines.append(render(name, report.overall.means()))
            if detail:
                for kind, scores in sorted(report.by_type.items()):
                    lines.append(render(f"  {kind}", scores.means()))
        lines.append("")

    block(row)
    lines.append(
        f"{'answers (answerable questions)':34}{'right':>8}{'first right':>13}{'declined':>10}"
        f"{'articles':>11}{'padded':>9}"
    )
    block(answers)
    lines.append(f"{'':34}{'null declined':>16}{'answerable declined':>22}{'p50 ms':>9}")
    for name, report in rows:
        summary = report.to_dict()
        lines.append(
            f"{name:34}{summary['null_abstained']:>16.1%}{summary['answerable_abstained']:>22.1%}"
            f"{summary['latency_p50_ms']:>9.1f}"
        )
    return "\n".join(lines)
