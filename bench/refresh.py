"""Answer latency while the bot refreshes its news, against idle, in one run.

    make bench-refresh                          # or:
    .venv/bin/python -m bench.refresh [--base 100] [--new 200] [--questions 30]

What ``newsbot serve`` does with ``NEWSBOT_REFRESH_MINUTES``: a round of fetching,
extracting and embedding runs in a worker thread of the bot's own process, on the same two
cores, while people ask questions. This script indexes ``--base`` MultiHop-RAG articles,
serves ``--new`` others as article pages behind an RSS feed on 127.0.0.1, then asks the dev
questions about the base articles one after another (a warm assistant, as the bot holds it):
first with nothing else running (idle), then while one refresh round fetches and indexes the
new articles. It prints the p50 and p99 answer time of both and their ratio, and where the
round's time went (fetch, extract, index: chunk, embed, commit).
"""

from __future__ import annotations

import argparse
import html
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from retrieval.assistant import NewsAssistant
from retrieval.settings import RetrievalSettings

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


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100, help="articles indexed first")
    parser.add_argument("--new", type=int, default=200, help="articles the refresh brings")
    parser.add_argument("--questions", type=int, default=30)
    args = parser.parse_args(argv)
    records = [json.loads(line) for line in (SHARED / "corpus.jsonl").open(encoding="utf-8")]
    base, new = records[: args.base], records[args.base : args.base + args.new]
    base_urls = {r["url"] for r in base}
    questions = [
        q["query"]
        for q in (json.loads(line) for line in (SHARED / "dev-queries.jsonl").open())
        if q["evidence"] and all(e["url"] in base_urls for e in q["evidence"])
    ][: args.questions] or ["Who met whom in Lima?"]

    with tempfile.TemporaryDirectory(prefix="newsbot-bench-refresh-") as tmp:
        corpus = Path(tmp) / "base.jsonl"
        corpus.write_text("".join(json.dumps(r) + "\n" for r in base), encoding="utf-8")
        settings = RetrievalSettings(
            _env_file=None, index_dir=Path(tmp) / "index", fetch_delay=0, fetch_per_host=2
        )
        assistant = NewsAssistant(settings)
        print(f"indexing {len(base)} base articles…", file=sys.stderr)
        assistant.ingest([corpus])
        assistant.load()
        server, url = _serve(_pages(new))
        try:
            _ask_all(assistant, questions[:5])  # warm up
            idle = _ask_all(assistant, questions) + _ask_all(assistant, questions)
            print(f"refreshing {len(new)} new articles while asking…", file=sys.stderr)
            outcome: dict = {}
            worker = threading.Thread(
                target=lambda: outcome.update(report=assistant.refresh([url + "/rss.xml"]))
            )
            worker.start()
            busy = _ask_all(assistant, questions, until=worker.is_alive)
            worker.join()
        finally:
            server.shutdown()
        report = outcome["report"]

    print(
        f"| answers ({len(questions)} MultiHop-RAG dev questions, warm) | idle | during a "
        "refresh | ratio |"
    )
    print("|---|---|---|---|")
    for label, q in (("p50", 50), ("p99", 99)):
        a, b = _p(idle, q), _p(busy, q)
        print(f"| {label} ms | {a:.1f} | {b:.1f} | {b / a:.2f}× |")
    print(f"| answers measured | {len(idle)} | {len(busy)} | |")
    s = report.seconds
    print()
    print(
        f"refresh round: {len(report.added)} added, {len(report.failed)} failed, "
        f"{report.fetches} fetches in {s['total']:.1f} s: fetch {s['fetch']:.1f} s, "
        f"extract {s['extract']:.1f} s, index (chunk, embed, commit) {s['index']:.1f} s "
        f"({len(report.added) / max(s['total'], 1e-9):.1f} articles/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
