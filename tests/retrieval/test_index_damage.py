"""Damaged or mismatched indexes: one clear message that says what to do, nothing overwritten.

Complements ``test_index.py`` (truncated vectors, garbage SQLite and manifest, counts that
disagree, unknown format version) with the BM25 directory and, through the command line,
indexes built by another model or with another vector dimension.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import cli
from corpus.errors import IndexStoreError
from retrieval.ingest import ingest
from retrieval.settings import PACKAGED_MODEL, RetrievalSettings
from retrieval.store.faiss_index import (
    LEXICAL_NAME,
    MANIFEST_NAME,
    ROWS_NAME,
    FaissIndex,
    Manifest,
    RowMetadata,
)

DATA = Path(__file__).parents[1] / "data"


def _snapshot(index_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(index_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and p.name != ".write.lock"
    }


def _lexical(index_dir: Path) -> Path:
    return index_dir / Manifest.read(index_dir).generation / LEXICAL_NAME


def _rows(index_dir: Path) -> Path:
    return index_dir / Manifest.read(index_dir).generation / ROWS_NAME


def _other_generation_lexical(index_dir: Path) -> None:
    """Replace lexical/ by a valid BM25 index over a different number of passages."""
    from retrieval.lexical import LexicalIndex

    shutil.rmtree(_lexical(index_dir))
    LexicalIndex.build(["one passage", "another passage"]).save(_lexical(index_dir))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: shutil.rmtree(_lexical(d)), "lexical/ cannot be read"),
        (
            lambda d: (_lexical(d) / "data.csc.index.npy").write_bytes(b"\x93NUMPY garbage"),
            "lexical/ cannot be read",
        ),
        (lambda d: (_lexical(d) / "vocab.index.json").write_text("[1, 2]"), "cannot be read"),
        (lambda d: (_lexical(d) / "params.index.json").write_text("[]"), "cannot be read"),
        (_other_generation_lexical, "lexical/ holds 2 passages, the manifest says"),
        (lambda d: _rows(d).write_bytes(b"PK\x03\x04 garbage"), "rows.npz cannot be read"),
        (lambda d: RowMetadata.empty().save(_rows(d)), "rows.npz covers 0 passages"),
    ],
    ids=[
        "missing",
        "garbage-array",
        "vocabulary-not-a-mapping",
        "params-wrong-type",
        "stale",
        "rows-garbage",
        "rows-stale",
    ],
)
def test_a_damaged_bm25_or_rows_file_is_reported_and_nothing_is_overwritten(
    writable_sample_index, damage, reason
):
    damage(writable_sample_index)
    before = _snapshot(writable_sample_index)
    with pytest.raises(IndexStoreError) as error:
        FaissIndex.open(writable_sample_index)
    message = str(error.value)
    assert reason in message and "damaged" in message
    assert message.endswith(
        "Nothing was changed; rebuild it with `newsbot ingest --rebuild PATH...`"
    )
    assert len(message.splitlines()) == 1
    assert _snapshot(writable_sample_index) == before


class HashEmbedder:
    """A deterministic fake standing in for another model (name and dimension as given)."""

    max_tokens = 256

    def __init__(self, name: str, dimension: int) -> None:
        self.name, self.dimension = name, dimension

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def embed_documents(self, texts, *, progress=False):
        return np.vstack([self.embed_query(t) for t in texts]).astype(np.float32)

    def embed_query(self, text):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self.dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


@pytest.fixture
def runner(monkeypatch, embedder, tmp_path):
    """The CLI in-process with the session's real model (as in ``tests/bot/test_cli.py``)."""
    monkeypatch.setattr("retrieval.assistant.load_embedder", lambda settings: embedder)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("NEWSBOT_")]:
        monkeypatch.delenv(key)
    return CliRunner()


@pytest.mark.parametrize(
    ("built_with", "complaint"),
    [
        (
            HashEmbedder("intfloat/e5-small-v2", 384),
            "was built with model 'intfloat/e5-small-v2' (dimension 384), but the configured "
            f"model is {PACKAGED_MODEL!r}",
        ),
        (
            HashEmbedder(PACKAGED_MODEL, 768),
            f"holds 768-dimensional vectors, but model {PACKAGED_MODEL!r} makes 384-dimensional",
        ),
    ],
    ids=["another-model", "another-dimension"],
)
@pytest.mark.parametrize(
    "command",
    [["ask", "Who met whom in Lima?"], ["ingest", str(DATA / "extra-article.md")], ["chat"]],
    ids=lambda c: c[0],
)
def test_the_cli_refuses_an_index_of_another_model_in_one_line(
    runner, tmp_path, built_with, complaint, command
):
    index_dir = tmp_path / "index"
    ingest([DATA / "extra-article.md"], RetrievalSettings(index_dir=index_dir), built_with)
    before = _snapshot(index_dir)
    result = runner.invoke(cli, [*command, "--index", str(index_dir)], input="")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("newsbot: error: ") and complaint in line
    assert "newsbot ingest --rebuild" in line and "Traceback" not in result.output
    assert _snapshot(index_dir) == before


def test_rebuild_replaces_an_index_of_another_model(runner, tmp_path):
    index_dir = tmp_path / "index"
    ingest(
        [DATA / "extra-article.md"],
        RetrievalSettings(index_dir=index_dir),
        HashEmbedder(PACKAGED_MODEL, 768),
    )
    result = runner.invoke(
        cli, ["ingest", "--rebuild", str(DATA / "extra-article.md"), "--index", str(index_dir)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((index_dir / MANIFEST_NAME).read_text())
    assert (manifest["model"], manifest["dimension"]) == (PACKAGED_MODEL, 384)
