"""Crash safety: `newsbot ingest` SIGKILLed at many moments never loses a committed batch.

The ingest runs as a real process (the CLI entry point, the packaged model, real FAISS and
SQLite files), committing every few articles. It is killed at a dozen points spread over the
run: while the model loads, while it embeds, in the middle of a commit. After every kill
the index opens, passes its consistency checks and holds exactly the articles of the last
completed commit, in order; running the ingest again completes it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from corpus.articles import Article
from corpus.loaders import load_path, sample_corpus_dir
from retrieval.ingest import ingest
from retrieval.settings import PACKAGED_MODEL, RetrievalSettings
from retrieval.store.faiss_index import MANIFEST_NAME, FaissIndex, Manifest, index_exists

FORKER = Path(__file__).with_name("ingest_forker.py")
ROOT = Path(__file__).parents[2]
ARTICLES = 150
BATCH = 5
KILLS = 12


def _write_corpus(path: Path) -> list[str]:
    """Many small articles, one chunk each; returns their ids in file order."""
    towns = ["Lima", "Hanoi", "Cusco", "Hue", "Arequipa", "Da Nang", "Trujillo", "Can Tho"]
    with path.open("w", encoding="utf-8") as f:
        for n in range(ARTICLES):
            town = towns[n % len(towns)]
            record = {
                "title": f"Council {n} of {town} approves plan number {n}",
                "body": (
                    f"The council of {town} district {n} approved plan number {n} on Tuesday "
                    f"after a debate of {n % 7 + 2} hours.\n\n"
                    f"Members voted {n % 13 + 5} to {n % 5} in favour of spending "
                    f"{n * 3 + 10} million on schools, roads and clinic number {n}."
                ),
                "url": f"https://news.example.org/council/{n}",
                "source": "Example News",
                "published": f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
            }
            f.write(json.dumps(record) + "\n")
    loaded = list(load_path(path))
    assert all(isinstance(a, Article) for a in loaded) and len(loaded) == ARTICLES
    return [a.id for a in loaded if isinstance(a, Article)]


def _env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env |= {"NEWSBOT_INDEX_DIR": str(index_dir), "NEWSBOT_INGEST_BATCH_ARTICLES": str(BATCH)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _committed_count(index_dir: Path) -> int:
    try:
        return int(json.loads((index_dir / MANIFEST_NAME).read_text())["article_count"])
    except (OSError, ValueError, KeyError):
        return 0


def _staging(index_dir: Path) -> bool:
    try:
        return any(p.name.startswith("gen-") and ".tmp-" in p.name for p in index_dir.iterdir())
    except FileNotFoundError:
        return False


def _wait_until(condition, started: float) -> None:
    while not condition():
        assert time.monotonic() - started < 60, "the ingest made no progress in a minute"
        time.sleep(0.001)


def _check_index(index_dir: Path, ids: list[str], at_least: int) -> int:
    """The index opens, is consistent and holds a whole number of batches, in order."""
    if not index_exists(index_dir):
        assert at_least == 0, "a commit was seen, yet there is no manifest"
        return 0
    manifest = Manifest.read(index_dir)
    assert ".tmp" not in manifest.generation and (index_dir / manifest.generation).is_dir()
    index = FaissIndex.open(index_dir, model=PACKAGED_MODEL, dimension=384)  # checks counts
    try:
        stored = [a.id for a in index.articles()]
        assert stored == ids[: len(stored)], "articles are not the file's first ones, in order"
        assert len(stored) >= at_least, "a commit seen before the kill is gone"
        assert len(stored) % BATCH == 0 or len(stored) == len(ids)
        [(row, score)] = index.search(index.vectors([len(index) - 1])[0], 1)
        assert (row, round(score, 3)) == (len(index) - 1, 1.0)
        return len(stored)
    finally:
        index.close()


def _kill_site(index_dir: Path, before: set[str]) -> str:
    """Where the kill landed, judged from what it left behind."""
    names = {p.name for p in index_dir.iterdir()} if index_dir.exists() else set()
    if any(".tmp-" in n and n.startswith("gen-") for n in names - before):
        return "inside a commit (staging directory left)"
    if any(n.startswith(f"{MANIFEST_NAME}.tmp") for n in names):
        return "while replacing the manifest"
    live = Manifest.read(index_dir).generation if index_exists(index_dir) else None
    if any(n.startswith("gen-") and ".tmp" not in n and n > (live or "") for n in names):
        return "after the rename, before the manifest"
    return "between commits (loading, chunking, embedding)"


class Forker:
    """Client of ``ingest_forker.py``: start an ingest, learn its pid, learn how it ended."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(FORKER)],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the forker died"
        return line.strip()

    def start(self, log: Path, *args: str) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write("\t".join([str(log), *args]) + "\n")
        self.process.stdin.flush()
        return int(self._read().removeprefix("pid "))

    def exit_code(self) -> int:
        return int(self._read().removeprefix("exit "))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_at_a_dozen_points_never_loses_a_committed_batch(tmp_path):
    corpus = tmp_path / "councils.jsonl"
    ids = _write_corpus(corpus)
    index_dir = tmp_path / "index"
    env = _env(index_dir)
    rng = random.Random(7)
    forker = Forker(tmp_path, env)
    sites: Counter[str] = Counter()
    counts = []
    try:
        count = 0
        for round_no in range(KILLS):
            before = {p.name for p in index_dir.iterdir()} if index_dir.exists() else set()
            started = time.monotonic()
            pid = forker.start(tmp_path / f"run-{round_no}.log", "ingest", str(corpus))
            if round_no == 0:
                deadline = started + rng.uniform(0.05, 0.4)  # while the model loads
            elif round_no % 2:
                # Inside a commit: once its staging directory appears (commits take 30-200 ms).
                _wait_until(lambda: _staging(index_dir), started)
                deadline = time.monotonic() + rng.uniform(0.0, 0.05)
            else:
                # Between commits: after this run's first one, while the next batch embeds.
                _wait_until(lambda c=count: _committed_count(index_dir) > c, started)
                deadline = time.monotonic() + rng.uniform(0.0, 0.15)
            seen = count
            while time.monotonic() < deadline:
                seen = max(seen, _committed_count(index_dir))
                time.sleep(0.002)
            os.kill(pid, signal.SIGKILL)
            assert forker.exit_code() == -signal.SIGKILL, "the ingest ended before the kill"
            sites[_kill_site(index_dir, before)] += 1
            count = _check_index(index_dir, ids, at_least=max(seen, count))
            counts.append(count)
    finally:
        forker.close()
    assert counts == sorted(counts) and counts[-1] < ARTICLES, counts

    # Running the real command again adds exactly the rest, and sweeps the leftovers.
    done = subprocess.run(
        [sys.executable, "-m", "bot", "ingest", str(corpus)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"Added {ARTICLES - count} articles" in done.stdout
    assert f"skipped {count} already indexed" in done.stdout
    assert _check_index(index_dir, ids, at_least=ARTICLES) == ARTICLES
    assert not [p for p in index_dir.iterdir() if ".tmp" in p.name]
    print(f"\nkills: {dict(sites)}; articles committed after each kill: {counts}")


def test_leftovers_of_a_crashed_write_are_never_taken_for_an_index(
    sample_index_dir, tmp_path, embedder
):
    """A staging directory, or a complete generation the manifest does not name, is junk."""
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    live = Manifest.read(sample_index_dir).generation
    shutil.copytree(sample_index_dir / live, index_dir / "gen-000001.tmp-4242")
    shutil.copytree(sample_index_dir / live, index_dir / "gen-000002")
    assert not index_exists(index_dir)
    with pytest.raises(Exception, match="no index at"):
        FaissIndex.open(index_dir)

    settings = RetrievalSettings(index_dir=index_dir)
    report = ingest([ROOT / "tests" / "data" / "extra-article.md"], settings, embedder)
    assert report.added == 1 and Manifest.read(index_dir).article_count == 1
    assert sorted(p.name for p in index_dir.glob("gen-*")) == [report.manifest.generation]

    # With a committed index, a newer-looking unreferenced generation is ignored and swept.
    shutil.copytree(sample_index_dir / live, index_dir / "gen-000099")
    index = FaissIndex.open(index_dir)
    assert index.manifest.article_count == 1 and len(index) == report.chunks
    index.close()
    ingest([sample_corpus_dir()], settings, embedder)
    assert "gen-000099" not in {p.name for p in index_dir.iterdir()}
    assert Manifest.read(index_dir).article_count == 3
