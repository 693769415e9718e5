"""Score article extraction: newsbot's HTML path against published extractors, in one run.

    make bench-extraction                        # or:
    .venv/bin/python -m bench.extraction [--data DIR] [--predictions PATH] [--worst N]

Each page of ``../shared/eval/article-extraction/`` (real news pages with the article text a
person marked) is written to a temporary ``.html`` file and read by ``corpus.load_path``, the
code ``newsbot ingest page.html`` runs: trafilatura, then the cleaner. The text is scored with
the benchmark's own metric (the folder's ``evaluate.py``: word-shingle precision and recall per
page, averaged). Beside it, in the same run: trafilatura on its own (its default and precision
modes, the version installed here), and the published extractors' saved outputs on the same
pages (``anchors/``). Precision matters most: every line that reaches the index can be cited.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from corpus import Article, load_path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "article-extraction"

Extractor = Callable[[bytes, Path], str]


def _benchmark_metric(data: Path) -> ModuleType:
    """The benchmark's evaluate.py, imported from the data folder (it is not ours to copy)."""
    spec = importlib.util.spec_from_file_location("aeb_evaluate", data / "evaluate.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no evaluate.py in {data}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def newsbot(html: bytes, path: Path) -> str:
    """The article body ``newsbot ingest page.html`` would index ('' if it rejects the page)."""
    path.write_bytes(html)
    return next((item.body for item in load_path(path) if isinstance(item, Article)), "")


def _trafilatura(**options: bool) -> Extractor:
    import trafilatura

    def extract(html: bytes, path: Path) -> str:
        return trafilatura.extract(html, include_comments=False, **options) or ""

    return extract


def run_extractor(extract: Extractor, pages: dict[str, bytes]) -> tuple[dict, float]:
    """Predictions in the benchmark's layout, and the median milliseconds per page."""
    predictions, times = {}, []
    with tempfile.TemporaryDirectory(prefix="newsbot-extraction-") as tmp:
        for page_id, html in pages.items():
            start = time.perf_counter()
            body = extract(html, Path(tmp) / f"{page_id}.html")
            times.append((time.perf_counter() - start) * 1000)
            predictions[page_id] = {"articleBody": body}
    return predictions, statistics.median(times)


def score(metric: ModuleType, truth: dict, predictions: dict) -> dict[str, float]:
    filled = {k: predictions.get(k) or {"articleBody": ""} for k in truth}
    result = metric.evaluate(truth, filled, n_bootstrap=10)
    return {k: result[k] for k in ("f1", "precision", "recall", "accuracy")}


def worst_pages(metric: ModuleType, truth: dict, predictions: dict, n: int) -> list[str]:
    """The ``n`` pages with the lowest precision, with the lines that are not article text."""
    rows = []
    for page_id, gold in truth.items():
        body = predictions[page_id]["articleBody"]
        tp, fp, _ = metric.string_shingle_matching(true=gold["articleBody"], pred=body)
        rows.append((tp / (tp + fp) if tp + fp else 0.0, page_id, body, gold))
    out = []
    for precision, page_id, body, gold in sorted(rows)[:n]:
        true_text = " ".join(gold["articleBody"].split())
        out.append(f"precision {precision:.3f}  {page_id[:12]}  {gold.get('url', '')}")
        out.extend(
            f"    + {line[:110]}"
            for line in body.split("\n")
            if line.strip() and " ".join(line.split()) not in true_text
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the benchmark folder")
    parser.add_argument("--predictions", type=Path, help="write newsbot's predictions here")
    parser.add_argument("--worst", type=int, default=0, help="show the N least precise pages")
    args = parser.parse_args(argv)
    if not (args.data / "ground-truth.json").is_file():
        raise SystemExit(f"no ground-truth.json in {args.data} (pass --data DIR)")

    metric = _benchmark_metric(args.data)
    truth = json.loads((args.data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {
        path.name.removesuffix(".html.gz"): gzip.decompress(path.read_bytes())
        for path in sorted((args.data / "html").glob("*.html.gz"))
    }
    print(f"{len(pages)} pages from {args.data}", file=sys.stderr)

    traf = version("trafilatura")
    ours: dict = {}
    rows: list[tuple[str, dict[str, float], float | None]] = []
    for name, extract in (
        ("newsbot (`newsbot ingest page.html`)", newsbot),
        (f"trafilatura {traf}, default", _trafilatura()),
        (f"trafilatura {traf}, favor_precision", _trafilatura(favor_precision=True)),
    ):
        predictions, ms = run_extractor(extract, pages)
        ours = ours or predictions
        rows.append((name, score(metric, truth, predictions), ms))
    for path in sorted((args.data / "anchors").glob("*.json")):
        predictions, release = metric.load_prediction(path)
        label = f"{path.stem} {release}".strip() + " (published output)"
        rows.append((label, score(metric, truth, predictions), None))

    print("| extractor | F1 | precision | recall | accuracy | ms/page (median) |")
    print("|---|---|---|---|---|---|")
    for name, s, ms in sorted(rows, key=lambda row: -row[1]["f1"]):
        timing = f"{ms:.1f}" if ms is not None else "–"
        print(
            f"| {name} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} "
            f"| {s['accuracy']:.3f} | {timing} |"
        )
    if args.worst:
        print("\n".join(["", *worst_pages(metric, truth, ours, args.worst)]))
    if args.predictions:
        args.predictions.write_text(json.dumps(ours, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
