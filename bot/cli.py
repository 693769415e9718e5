"""The ``newsbot`` command: ingest, refresh, ask, search, chat, stats, export, serve, eval.

Heavy modules (torch, FAISS) are imported inside the commands that need them, so ``--help``
and error paths answer at once.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import select
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from corpus.errors import ConfigurationError, NewsbotError, QuestionError

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant
    from retrieval.refresh import RefreshReport

    from .settings import Settings


class _Group(click.Group):
    """Turns newsbot's own errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsbotError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _fail(message: str) -> NoReturn:
    click.echo(f"newsbot: error: {message}", err=True)
    sys.exit(1)


_index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index directory (default: $NEWSBOT_INDEX_DIR or ~/.local/share/newsbot/index).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsbot")
def cli() -> None:
    """Answer news questions with numbered citations to the indexed articles."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and .env, with command-line overrides on top."""
    from pydantic import ValidationError

    from .settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"NEWSBOT_{'_'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def _assistant(settings: Settings, *, sample_if_empty: bool = True) -> NewsAssistant:
    from retrieval.assistant import NewsAssistant

    assistant = NewsAssistant(settings)
    if sample_if_empty and not assistant.has_index():
        from corpus.loaders import sample_corpus_dir

        click.echo(
            f"No index at {settings.index_dir} yet: indexing the built-in sample corpus…", err=True
        )
        report = assistant.ingest([sample_corpus_dir()])
        click.echo(f"Indexed {report.added} sample articles ({report.chunks} chunks).", err=True)
    return assistant


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@_index_option
@click.option("--rebuild", is_flag=True, help="Replace the index instead of adding to it.")
def ingest(sources: tuple[str, ...], index_dir: Path | None, rebuild: bool) -> None:
    """Load, clean, chunk, embed and index the articles in SOURCES.

    A source is a file or folder (.txt/.md with optional front matter, .html, .jsonl,
    RSS/Atom .xml/.rss/.atom), a URL (a feed, whose linked pages are fetched, or an article
    page), or a file listing URLs (one a line, or OPML). Articles already in the index are
    skipped; a story whose text changed at its URL is updated. Exits 1 if nothing could be read.
    """
    from corpus.web import is_url, url_list_file

    settings = load_settings(index_dir=index_dir)
    assistant = _assistant(settings, sample_if_empty=False)
    urls: list[str] = []
    paths: list[Path] = []
    for source in sources:
        if is_url(source):
            urls.append(source)
        elif listed := url_list_file(Path(source)):
            urls.extend(listed)
        else:
            paths.append(Path(source))
    if urls and rebuild:
        _fail("--rebuild reads files only: rebuild from files first, then ingest the URLs")
    found = False
    if paths:
        report = assistant.ingest(paths, rebuild=rebuild, progress=sys.stderr.isatty())
        click.echo(
            f"Added {report.added} articles ({report.chunks} chunks), skipped "
            f"{report.duplicates} already indexed, rejected {len(report.rejected)} in "
            f"{report.seconds:.1f} s."
        )
        for problem in report.rejected:
            click.echo(f"  rejected: {problem}", err=True)
        found = bool(report.added or report.duplicates)
        if not found and not report.rejected:
            click.echo(
                f"No articles found in {', '.join(map(str, paths))} ({_looked_at(paths)}).",
                err=True,
            )
    if urls:
        refreshed = _run_refresh(assistant, urls, expire=False)
        click.echo(_refresh_summary(refreshed))
        for url, reason in refreshed.failed:
            click.echo(f"  failed: {url}: {reason}", err=True)
        found = found or refreshed.found_anything
    m = assistant.manifest_now()
    if m is not None:
        click.echo(
            f"Index {assistant.backend.description}: {m.article_count} articles, "
            f"{m.chunk_count} chunks."
        )
    if not found:
        sys.exit(1)


@cli.command()
@click.argument("sources", nargs=-1)
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def refresh(sources: tuple[str, ...], index_dir: Path | None, as_json: bool) -> None:
    """Fetch the feeds once: add new stories, update changed ones, expire old ones.

    SOURCES default to NEWSBOT_FEEDS (URLs, or a file listing them). Articles older than
    NEWSBOT_KEEP_DAYS, and the oldest beyond NEWSBOT_MAX_ARTICLES, leave the index.
    Exits 1 if no source gave anything readable. For cron or a systemd timer; `newsbot serve`
    refreshes by itself every NEWSBOT_REFRESH_MINUTES.
    """
    from retrieval.refresh import configured_sources

    settings = load_settings(index_dir=index_dir)
    urls = list(sources) or configured_sources(settings.feeds)
    if not urls:
        _fail("no sources: pass feed URLs, or set NEWSBOT_FEEDS (URLs or a file listing them)")
    assistant = _assistant(settings, sample_if_empty=False)
    report = _run_refresh(assistant, urls, expire=True)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    elif report.skipped:
        click.echo("Another newsbot process is refreshing this store now; nothing done.")
        return
    else:
        click.echo(_refresh_summary(report))
        for title in report.added:
            click.echo(f"  added: {title}")
        for title in report.updated:
            click.echo(f"  updated: {title}")
        for url, reason in report.failed:
            click.echo(f"  failed: {url}: {reason}", err=True)
    if not report.found_anything and not report.skipped:
        click.echo(
            f"Nothing readable in {len(urls)} source(s): " + report.what_was_read(),
            err=True,
        )
        sys.exit(1)


def _run_refresh(assistant: NewsAssistant, urls: list[str], *, expire: bool) -> RefreshReport:
    """A round with a progress bar on a terminal (one tick per fetch)."""
    if not sys.stderr.isatty():
        return assistant.refresh(urls, expire=expire)
    from tqdm import tqdm

    with tqdm(desc="fetching", unit=" pages", file=sys.stderr, leave=False) as bar:
        return assistant.refresh(urls, expire=expire, progress=bar.update)


def _refresh_summary(report: RefreshReport) -> str:
    s = report.seconds
    return (
        f"Added {len(report.added)}, updated {len(report.updated)}, unchanged "
        f"{report.unchanged}, duplicates {report.duplicates}, too old {report.too_old}, "
        f"failed {len(report.failed)}, expired {report.expired}; "
        f"{report.sources_unchanged} of {len(report.sources)} sources unchanged since the "
        f"last round ({report.fetches} fetches; fetch {s.get('fetch', 0):.1f} s, extract "
        f"{s.get('extract', 0):.1f} s, index {s.get('index', 0):.1f} s)."
    )


def _looked_at(paths: list[Path]) -> str:
    """What an ingest that found nothing looked at, so the user can see why."""
    from corpus.loaders import readable_files

    parts = []
    for path in paths:
        if path.is_dir():
            parts.append(f"{path}: a folder with {len(readable_files(path))} readable files")
        else:
            parts.append(f"{path}: a file")
    return "; ".join(parts)


@cli.command()
@click.argument("question")
@_index_option
@click.option("--top-k", type=click.IntRange(1, 100), help="Passages to retrieve.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ask(question: str, index_dir: Path | None, top_k: int | None, as_json: bool) -> None:
    """Answer QUESTION with numbered citations."""
    from .formatting import answer_to_dict, format_answer_text

    answer = _assistant(load_settings(index_dir=index_dir, top_k=top_k)).ask(question)
    if as_json:
        click.echo(json.dumps(answer_to_dict(answer), ensure_ascii=False))
    else:
        click.echo(format_answer_text(answer))


@cli.command()
@click.argument("topic", required=False)
@_index_option
@click.option(
    "--since",
    metavar="WHEN",
    help='Only articles published since WHEN: "monday", "3 days ago", "2024-12-01"….',
)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def latest(
    topic: str | None, index_dir: Path | None, since: str | None, limit: int, as_json: bool
) -> None:
    """The newest indexed articles, newest first; on TOPIC, the relevant ones among those
    published in the last NEWSBOT_LATEST_DAYS days (or since WHEN)."""
    from .formatting import format_headlines_text, headlines_to_dict

    assistant = _assistant(load_settings(index_dir=index_dir))
    start = _since(since, assistant.now()) if since else None
    try:
        headlines = assistant.latest(topic, since=start, most=limit)
    except NewsbotError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(headlines_to_dict(headlines), ensure_ascii=False))
    else:
        click.echo(format_headlines_text(headlines))


def _since(when: str, now: datetime) -> datetime:
    """The start of ``--since WHEN``, read like a time in a question."""
    from retrieval.timeframe import read_time_ranges

    found = read_time_ranges(f"since {when}", now)
    if not found:
        raise click.BadParameter(
            f'cannot read {when!r} as a time: try "monday", "3 days ago", "1 December" '
            'or "2024-12-01"',
            param_hint="--since",
        )
    return found[0].start


@cli.command()
@click.argument("question", required=False)
@_index_option
@click.option("--top-k", type=click.IntRange(1, 100), help="Passages per question.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per question.")
def search(question: str | None, index_dir: Path | None, top_k: int | None, as_json: bool) -> None:
    """Raw retrieval for QUESTION, or for each line of stdin when QUESTION is omitted.

    Lines that have already arrived are searched together (their vectors in one batch);
    each result is printed as soon as its batch is done. A line that is not a valid
    question is reported on stderr (and as ``error`` in JSON), the rest are still
    searched, and the exit code is then 1.
    """
    from .formatting import format_hits_text, hits_to_dict

    assistant = _assistant(load_settings(index_dir=index_dir, top_k=top_k))
    batches = [[question]] if question is not None else _line_batches(sys.stdin, _SEARCH_BATCH)
    failed = 0
    for batch in batches:
        queries = [line.strip() for line in batch if line.strip()]
        try:
            results = assistant.search_many(queries, top_k)
        except QuestionError:
            results = None  # one of them is invalid: find out which, one at a time
        for i, query in enumerate(queries):
            try:
                hits = results[i] if results is not None else assistant.search(query, top_k)
            except QuestionError as exc:
                failed += 1
                click.echo(f"newsbot: error: {query[:60]!r}: {exc}", err=True)
                if as_json:
                    click.echo(json.dumps({"query": query, "hits": [], "error": str(exc)}))
                continue
            if as_json:
                click.echo(json.dumps(hits_to_dict(query, hits), ensure_ascii=False))
            else:
                click.echo(format_hits_text(hits))
        sys.stdout.flush()
    if failed:
        sys.exit(1)


#: Questions searched together at most: enough to amortise a model run, small enough that
#: the first results of a long stream come back at once.
_SEARCH_BATCH = 32


def _line_batches(stream: TextIO, limit: int) -> Iterator[list[str]]:
    """The stream's lines in batches of what has arrived, waiting only for the first.

    A program that writes one question and waits for its answer gets it; a file or a
    pipe full of questions is read ``limit`` lines at a time. Streams without a file
    descriptor (tests, Windows consoles) are read ``limit`` lines at a time.
    """
    try:
        fd = stream.fileno()
        select.select([fd], [], [], 0)
    except (OSError, ValueError, io.UnsupportedOperation):
        text_lines = iter(stream)
        while batch := list(itertools.islice(text_lines, limit)):
            yield batch
        return
    pending = b""
    ended = False
    while not ended:
        ready = True
        while ready and not ended and pending.count(b"\n") < limit:
            data = os.read(fd, 1 << 16)
            ended = not data
            pending += data
            # Wait for input only while no complete line is pending.
            ready = bool(select.select([fd], [], [], None if b"\n" not in pending else 0)[0])
        *lines, pending = pending.split(b"\n")
        if ended and pending:
            lines.append(pending)
            pending = b""
        for first in range(0, len(lines), limit):
            yield [line.decode("utf-8", "replace") for line in lines[first : first + limit]]


@cli.group()
def db() -> None:
    """The PostgreSQL store (NEWSBOT_STORE=postgres, NEWSBOT_DATABASE_URL)."""


@db.command("migrate")
def db_migrate() -> None:
    """Create or upgrade newsbot's tables in NEWSBOT_DATABASE_URL (safe to run again)."""
    from bot.pg_state import PostgresState
    from retrieval.store.postgres import migrate

    settings = load_settings(store="postgres")
    assert settings.database_url is not None  # the settings insist for store=postgres
    url = settings.database_url.get_secret_value()
    before, after = migrate(url)
    PostgresState(url).close()  # creates or checks the bot's tables
    change = f"version {before} → {after}" if before != after else f"already at version {after}"
    click.echo(f"Store schema: {change}; bot state tables ready.")


@cli.command("migrate-store")
@click.option(
    "--to",
    "target",
    type=click.Choice(["postgres", "faiss"]),
    required=True,
    help="postgres: copy the index directory into NEWSBOT_DATABASE_URL; faiss: the reverse.",
)
@_index_option
def migrate_store(target: str, index_dir: Path | None) -> None:
    """Copy the whole store to the other backend with its vectors (no re-embedding), replacing
    what the target held, and check every article and passage arrived."""
    import contextlib

    from retrieval.store import copy_store, open_backend

    source_kind = "faiss" if target == "postgres" else "postgres"
    source_settings = load_settings(index_dir=index_dir, store=source_kind)
    target_settings = load_settings(index_dir=index_dir, store=target)
    with (
        contextlib.closing(open_backend(source_settings)) as source_backend,
        contextlib.closing(open_backend(target_settings)) as target_backend,
    ):
        source = source_backend.open()
        try:
            click.echo(
                f"Copying {source.manifest.article_count} articles "
                f"({source.manifest.chunk_count} passages) from {source_backend.description} "
                f"to {target_backend.description}…",
                err=True,
            )
            report = copy_store(source, target_backend, lock_timeout=target_settings.lock_timeout)
        finally:
            source.close()
    click.echo(
        f"Copied {report.articles} articles and {report.passages} passages in "
        f"{report.commits} commits; counts verified."
    )


@cli.command()
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(index_dir: Path | None, as_json: bool) -> None:
    """What is indexed: articles, chunks, model, size, dates."""
    from .formatting import format_stats_text, stats_to_dict

    summary = _assistant(load_settings(index_dir=index_dir), sample_if_empty=False).stats()
    click.echo(json.dumps(stats_to_dict(summary)) if as_json else format_stats_text(summary))


@cli.command()
@_index_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of stdout.",
)
def export(index_dir: Path | None, output: Path | None) -> None:
    """Every stored article as JSON Lines, in the format `ingest` reads."""
    from corpus.loaders import article_to_record

    assistant = _assistant(load_settings(index_dir=index_dir), sample_if_empty=False)
    if output is None:
        for article in assistant.export():
            click.echo(json.dumps(article_to_record(article), ensure_ascii=False))
        return
    tmp = output.with_name(output.name + ".partial")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for article in assistant.export():
            f.write(json.dumps(article_to_record(article), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(output)
    click.echo(f"Exported {count} articles to {output}.", err=True)


@cli.command()
@_index_option
def chat(index_dir: Path | None) -> None:
    """Ask questions interactively, as in a chat with the bot (/help lists the commands)."""
    from retrieval.conversation import Conversation

    from .formatting import (
        ASK_PRIVATELY_HTML,
        EMPTY_ASK,
        UNKNOWN_COMMAND,
        citation_line,
        format_answer_text,
        format_headlines_text,
        format_stats_text,
        help_html,
        html_to_plain,
        start_html,
    )

    assistant = _assistant(load_settings(index_dir=index_dir))
    assistant.load()
    conversation = Conversation()
    last = None
    click.echo("Ask about the news. /help lists the commands, /quit leaves.")
    while True:
        try:
            line = input("\n? ").strip()
        except EOFError:
            return
        command, question = _split_command(line)
        if command in {"quit", "exit"}:
            return
        if command == "new":
            conversation.forget()
            click.echo("Starting afresh.")
        elif command == "sources":
            if last is None or not last.citations:
                click.echo("No sources yet.")
            else:
                click.echo(
                    "\n".join(f"{citation_line(c)}\n    “{c.snippet}”" for c in last.citations)
                )
        elif command == "help":
            click.echo(html_to_plain(help_html()))
        elif command == "start":
            click.echo(html_to_plain(start_html(assistant.stats(), ASK_PRIVATELY_HTML)))
        elif command == "stats":
            click.echo(format_stats_text(assistant.stats()))
        elif command == "latest":
            click.echo(format_headlines_text(assistant.latest(question or None)))
        elif command in {"follow", "unfollow", "following"}:
            click.echo("Followed topics are posted to Telegram chats: use them with the bot.")
        elif command not in {None, "ask"}:
            click.echo(UNKNOWN_COMMAND)
        elif command == "ask" and not question:
            click.echo(EMPTY_ASK)
        elif question:
            context = conversation.context_for(question)
            try:
                last = assistant.ask(question, context=context)
            except NewsbotError as exc:
                click.echo(f"Sorry: {exc}")
                continue
            conversation.remember(question, context)
            click.echo(format_answer_text(last))


def _split_command(line: str) -> tuple[str | None, str]:
    """``("help", "")`` for ``/help@newsbot``; ``(None, line)`` when the line is a question.

    As in Telegram, a line starting with ``/`` is a command, whatever follows; its name is
    matched without case and without the ``@botname`` that group chats add.
    """
    if not line.startswith("/"):
        return None, line
    word, *rest = line[1:].split(maxsplit=1) or [""]
    return word.split("@", 1)[0].lower(), " ".join(rest)


@cli.command()
@_index_option
def serve(index_dir: Path | None) -> None:
    """Run the Telegram bot (long polling, or a webhook if NEWSBOT_WEBHOOK_URL is set).

    Needs NEWSBOT_TELEGRAM_TOKEN. Stops cleanly on Ctrl-C or SIGTERM, answering the
    questions in progress first; exits with status 1 if Telegram rejects the token, also
    when it is revoked while the bot runs.
    """
    from .app import check_serve_settings, configure_logging
    from .app import serve as serve_bot

    settings = load_settings(index_dir=index_dir)
    check_serve_settings(settings)  # e.g. no token: fail before loading anything
    configure_logging(settings)
    serve_bot(settings, _assistant(settings))


@cli.command("eval")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_index_option
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option("--ablation", is_flag=True, help="One row per retrieval stage, in one run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_command(
    questions: Path, index_dir: Path | None, limit: int | None, ablation: bool, as_json: bool
) -> None:
    """Score retrieval on labelled QUESTIONS (MultiHop-RAG layout) with the official metric.

    Ingests nothing: index the articles the questions are about first. Reports Hits@4,
    Hits@10, MRR@10 and MAP@10 overall and per question type, and how often the bot
    declines null questions and (wrongly) answerable ones.
    """
    from retrieval.evaluation import ablation as run_ablation
    from retrieval.evaluation import evaluate_assistant, load_questions

    from .formatting import format_evaluation_text

    assistant = _assistant(load_settings(index_dir=index_dir), sample_if_empty=False)
    assistant.load()
    labelled = load_questions(questions)[:limit]
    progress = sys.stderr.isatty()
    if ablation:
        rows = run_ablation(assistant, labelled, progress=progress)
    else:
        rows = [("newsbot", evaluate_assistant(assistant, labelled, progress=progress))]
    if as_json:
        click.echo(json.dumps({name: report.to_dict() for name, report in rows}, indent=2))
    else:
        click.echo(format_evaluation_text(rows, detail=not ablation))


def main() -> None:
    cli(prog_name="newsbot")
