"""Answer latency while the bot refreshes its news, against idle, in one run.

    make bench-refresh                          # or:
    .venv/bin/python -m bench.refresh [--base 100] [--new 200] [--questions 30]

What ``newsbot serve`` does with ``NEWSBOT_REFRESH_MINUTES``: a round of fetching,
extracting and embedding runs in a worker thread of the bot's own process, on the same two
cores, while people ask questions. This script indexes ``--base`` MultiHop-RAG articles,
serves ``--new`` others as article pages behind an RSS feed on 127.0.0.1, then asks
MultiHop-RAG dev questions one after another (a warm assistant, as the bot holds it):
first with nothing else running (idle), then while one refresh round fetches and indexes the
new articles, twice from the same start: at the answers' CPU priority, and at the lower one
the bot's schedule gives it. Question vectors are not cached, so each answer embeds its
question on the cores the refresh embeds with. It prints the p50 and p99 answer times and
their ratio to idle, and where each round's time went (fetch, extract, index: chunk, embed,
commit).
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bot.schedule import lower_priority
from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

from .run import percentiles

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval" / "multihop-rag"


def _pages(records: list[dict]) -> dict[str, bytes]:
    """Each article as a news page, and an RSS feed linking them all."""
    pages = {"/robots.txt": b""}
    items = []
    for n, r in enumerate(records):
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in r["body"].split("\n") if p)
        pages[f"/a/{n}"] = (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(r['title'])}</title>"
            f"<meta property='article:published_time' content='{r['published_at']}'>"
            f"</head><body><nav><a href='/'>Home</a></nav><article>"
            f"<h1>{html.escape(r['title'])}</h1>{paragraphs}</article></body></html>"
        ).encode()
        items.append(
            f"<item><title>{html.escape(r['title'])}</title><link>LINK/a/{n}</link></item>"
        )
    pages["/rss.xml"] = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>bench</title>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()
    return pages


def _serve(pages: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = pages.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            kind = "application/rss+xml" if self.path.endswith(".xml") else "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages["/rss.xml"] = pages["/rss.xml"].replace(b"LINK", base.encode())
    return server, base


def _ask_all(assistant: NewsAssistant, questions: list[str], until=None) -> list[float]:
    """Ask in turn (again and again while ``until()`` is true); milliseconds per answer."""
    times = []
    while True:
        for q in questions:
            started = time.perf_counter()
            assistant.ask(q)
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)  # people type; the bot is not hammered back to back
            if until is not None and not until():
                return times
        if until is None:
            return times


def _p(values: list[float], q: int) -> float:
    return percentiles(values)[f"p{q}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100, help="articles indexed first")
    parser.add_argument("--new", type=int, default=200, help="articles the refresh brings")
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args(argv)
    records = [json.loads(line) for line in (SHARED / "corpus.jsonl").open(encoding="utf-8")]
    base, new = records[: args.base], records[args.base : args.base + args.new]
    questions = [json.loads(line)["query"] for line in (SHARED / "dev-queries.jsonl").open()][
        : args.questions
    ]

    with tempfile.TemporaryDirectory(prefix="newsbot-bench-refresh-") as tmp:
        corpus = Path(tmp) / "base.jsonl"
        corpus.write_text("".join(json.dumps(r) + "\n" for r in base), encoding="utf-8")
        first = _settings(Path(tmp) / "index")
        print(f"indexing {len(base)} base articles…", file=sys.stderr)
        NewsAssistant(first).ingest([corpus])
        shutil.copytree(first.index_dir, Path(tmp) / "copy")  # the same start for the 2nd run
        server, url = _serve(_pages(new))
        rows: dict[str, list[float]] = {}
        reports = {}
        try:
            for label, index_dir, lower in (
                ("same priority", first.index_dir, False),
                ("lower priority (the bot's way)", Path(tmp) / "copy", True),
            ):
                assistant = NewsAssistant(_settings(index_dir))
                assistant.load()
                _ask_all(assistant, questions[:20])  # warm up
                if not rows:
                    rows["idle"] = _ask_all(assistant, questions)
                print(
                    f"refreshing {len(new)} new articles, {label}, while asking…", file=sys.stderr
                )
                outcome: dict = {}

                def round_(assistant=assistant, lower=lower, outcome=outcome) -> None:
                    if lower:  # as the bot's schedule runs it (bot/schedule.py)
                        lower_priority()
                    outcome["report"] = assistant.refresh([url + "/rss.xml"])

                worker = threading.Thread(target=round_)
                worker.start()
                rows[f"during a refresh, {label}"] = _ask_all(
                    assistant, questions, until=worker.is_alive
                )
                worker.join()
                reports[label] = outcome["report"]
                assistant.close()
        finally:
            server.shutdown()

    print(
        f"| answer time, {len(questions)} MultiHop-RAG dev questions in turn | "
        + " | ".join(rows)
        + " |"
    )
    print("|---" * (len(rows) + 1) + "|")
    idle = rows["idle"]
    for label, q in (("p50 ms", 50), ("p99 ms", 99)):
        cells = [
            f"{_p(v, q):.1f}" + ("" if k == "idle" else f" ({_p(v, q) / _p(idle, q):.2f}×)")
            for k, v in rows.items()
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| answers measured | " + " | ".join(str(len(v)) for v in rows.values()) + " |")
    print()
    for label, report in reports.items():
        s = report.seconds
        print(
            f"refresh round, {label}: {len(report.added)} added, {len(report.failed)} failed, "
            f"{report.fetches} fetches in {s['total']:.1f} s: fetch {s['fetch']:.1f} s, "
            f"extract {s['extract']:.1f} s, index (chunk, embed, commit) {s['index']:.1f} s "
            f"({len(report.added) / max(s['total'], 1e-9):.2f} articles/s)"
        )
    return 0


def _settings(index_dir: Path) -> RetrievalSettings:
    # No cache of question vectors: every answer embeds its question, on the cores the
    # refresh embeds with.
    return RetrievalSettings(
        _env_file=None, index_dir=index_dir, fetch_delay=0, fetch_per_host=2, query_cache_size=0
    )


if __name__ == "__main__":
    sys.exit(main())
