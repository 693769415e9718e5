"""The ONNX Runtime backend gives sentence-transformers' vectors without torch; its cache heals.

The packaged model is exported once per session into the session's cache (see conftest).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from corpus.errors import ConfigurationError
from retrieval import onnx_backend
from retrieval.assistant import NewsAssistant
from retrieval.embedding import Embedder, load_embedder
from retrieval.onnx_backend import OnnxEmbedder, load_onnx_embedder
from retrieval.settings import PACKAGED_MODEL, RetrievalSettings
from retrieval.torch_backend import SentenceTransformerEmbedder, resolve_model

TEXTS = [
    "Vietnam and Peru agreed to strengthen parliamentary cooperation.",
    "Who met whom in Lima?",
    " ".join(["The council approved the budget for schools, roads and clinics."] * 40),
    "",
    "  \t\n ",
    "Ünïcödé — “quotes”, emoji 🎉🇻🇳, 東京, العربية, zero\u200bwidth, combining e\u0301",
]
QUESTIONS = [
    "Who met whom in Lima?",
    "What order did the Peruvian Congress award Luong Cuong?",
    "Where did Vietnam invite the Peruvian President to visit in 2025?",
    "Who is Eduardo Salhuana?",
]


@pytest.fixture(scope="module")
def onnx_embedder(model_cache_dir: Path) -> OnnxEmbedder:
    return load_onnx_embedder(PACKAGED_MODEL, cache_dir=model_cache_dir)


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return load_embedder(RetrievalSettings(embedding_backend="torch"))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_onnx_vectors_equal_sentence_transformers_vectors(onnx_embedder, torch_embedder):
    assert isinstance(torch_embedder, SentenceTransformerEmbedder)
    assert onnx_embedder.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)
    assert onnx_embedder.count_tokens(TEXTS)[2] > onnx_embedder.max_tokens  # it is truncated
    assert onnx_embedder.max_tokens == torch_embedder.max_tokens
    assert (onnx_embedder.name, onnx_embedder.dimension) == (PACKAGED_MODEL, 384)

    reference = torch_embedder.embed_documents(TEXTS)
    documents = onnx_embedder.embed_documents(TEXTS)
    assert documents.dtype == np.float32 and documents.shape == (len(TEXTS), 384)
    assert _cosines(documents, reference).min() >= 0.9999
    queries = np.stack([onnx_embedder.embed_query(text) for text in TEXTS])
    assert _cosines(queries, reference).min() >= 0.9999
    assert onnx_embedder.embed_documents([]).shape == (0, 384)


def test_batches_of_any_size_give_the_same_vectors(onnx_embedder, model_cache_dir):
    small_batches = load_onnx_embedder(PACKAGED_MODEL, cache_dir=model_cache_dir, batch_size=2)
    texts = [*TEXTS, *reversed(TEXTS)]
    np.testing.assert_allclose(
        small_batches.embed_documents(texts), onnx_embedder.embed_documents(texts), atol=1e-5
    )


def test_both_backends_retrieve_and_answer_alike(sample_index_dir, onnx_embedder, torch_embedder):
    settings = RetrievalSettings(index_dir=sample_index_dir)
    with_onnx = NewsAssistant(settings, embedder=onnx_embedder)
    with_torch = NewsAssistant(settings, embedder=torch_embedder)
    try:
        for question in QUESTIONS:
            assert [h.row for h in with_onnx.search(question)] == [
                h.row for h in with_torch.search(question)
            ]
            assert with_onnx.ask(question).text == with_torch.ask(question).text
    finally:
        with_onnx.close()
        with_torch.close()


def test_the_default_backend_is_8_bit_onnx_with_a_cache_under_xdg_cache_home(
    embedder, model_cache_dir
):
    settings = RetrievalSettings()
    assert settings.embedding_backend == "auto"
    assert settings.model_cache_dir == model_cache_dir
    assert isinstance(embedder, OnnxEmbedder)  # the session's embedder is the default one
    assert embedder.quantized
    assert any(model_cache_dir.glob("*-int8/model.onnx"))


def test_auto_falls_back_to_fp32_when_8_bit_weights_would_change_the_vectors(
    monkeypatch, tmp_path, model_cache_dir, onnx_embedder, caplog
):
    cache = tmp_path / "models"  # the fp32 export only: the 8-bit copy is made and checked
    [entry] = [p for p in model_cache_dir.iterdir() if p.is_dir() and "int8" not in p.name]
    shutil.copytree(entry, cache / entry.name)
    monkeypatch.setattr("retrieval.onnx_backend._INT8_MIN_COSINE", 1.01)  # nothing passes
    with caplog.at_level(logging.INFO, logger="retrieval.embedding"):
        fallback = load_embedder(RetrievalSettings(embedding_backend="auto", model_cache_dir=cache))
    assert isinstance(fallback, OnnxEmbedder) and not fallback.quantized
    assert not any(cache.glob("*-int8"))
    assert "fp32" in caplog.text and "8-bit weights change" in caplog.text
    np.testing.assert_allclose(
        fallback.embed_documents(TEXTS), onnx_embedder.embed_documents(TEXTS), atol=1e-6
    )


def test_a_failed_8_bit_check_is_remembered_so_later_starts_skip_it(
    monkeypatch, tmp_path, model_cache_dir, caplog
):
    cache = tmp_path / "models"
    [entry] = [p for p in model_cache_dir.iterdir() if p.is_dir() and "int8" not in p.name]
    shutil.copytree(entry, cache / entry.name)
    settings = RetrievalSettings(embedding_backend="auto", model_cache_dir=cache)
    monkeypatch.setattr("retrieval.onnx_backend._INT8_MIN_COSINE", 1.01)
    assert not load_embedder(settings).quantized  # quantised, checked, refused

    quantized = []
    real_quantize = onnx_backend._quantize
    monkeypatch.setattr(
        onnx_backend, "_quantize", lambda *a: quantized.append(1) or real_quantize(*a)
    )
    with caplog.at_level(logging.INFO, logger="retrieval.embedding"):
        again = load_embedder(settings)
    assert not again.quantized and not quantized  # the next start does not quantise again
    assert "8-bit weights change" in caplog.text and "checked before" in caplog.text

    # A different check (or onnxruntime, or model files) is checked afresh, and may pass.
    monkeypatch.setattr("retrieval.onnx_backend._INT8_MIN_COSINE", 0.95)
    assert load_embedder(settings).quantized and quantized == [1]


def test_the_packaged_model_is_exported_with_each_layers_attention_fused(
    onnx_embedder, model_cache_dir
):
    [entry] = [p for p in model_cache_dir.iterdir() if p.is_dir() and "int8" not in p.name]
    assert json.loads((entry / "entry.json").read_text())["fused"] is True
    operators = [node.op_type for node in onnx.load(entry / "model.onnx").graph.node]
    assert operators.count("Attention") == 6  # one per layer of MiniLM-L6
    assert "Softmax" not in operators
    assert sorted(p.name for p in entry.iterdir()) == ["entry.json", "model.onnx"]


def test_a_model_the_fuser_cannot_handle_is_exported_unfused(
    monkeypatch, tmp_path, torch_embedder, caplog
):
    def cannot_fuse(*args, **kwargs):
        raise AssertionError("unexpected graph pattern")

    monkeypatch.setattr("onnxruntime.transformers.optimizer.optimize_model", cannot_fuse)
    with caplog.at_level(logging.INFO, logger="retrieval.onnx_backend"):
        unfused = load_onnx_embedder(PACKAGED_MODEL, cache_dir=tmp_path)

    assert "cannot fuse" in caplog.text and "unexpected graph pattern" in caplog.text
    [entry] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((entry / "entry.json").read_text())["fused"] is False
    assert "Softmax" in {node.op_type for node in onnx.load(entry / "model.onnx").graph.node}
    reference = torch_embedder.embed_documents(TEXTS)
    assert _cosines(unfused.embed_documents(TEXTS), reference).min() >= 0.9999


def test_a_damaged_or_partial_cache_entry_is_exported_again_not_used(
    tmp_path, model_cache_dir, onnx_embedder, torch_embedder, caplog
):
    cache = tmp_path / "models"
    [entry] = [p for p in model_cache_dir.iterdir() if p.is_dir() and "int8" not in p.name]
    shutil.copytree(entry, cache / entry.name)
    model = cache / entry.name / "model.onnx"
    data = model.read_bytes()
    # Same size, still a valid ONNX file, position embeddings zeroed: only the vector of the
    # probe sentence shows the damage.
    graph = onnx.load(model).graph
    weights = next(t.raw_data for t in graph.initializer if "position_embeddings" in t.name)
    start = data.find(weights)
    damaged = data[:start] + bytes(len(weights)) + data[start + len(weights) :]
    model.write_bytes(damaged)
    crashed = cache / f".{entry.name}.tmp-crashed"  # an export killed half-way
    crashed.mkdir()
    (crashed / "model.onnx").write_bytes(data[:1000])

    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_backend"):
        healed = load_onnx_embedder(PACKAGED_MODEL, cache_dir=cache)

    assert "unusable" in caplog.text and "probe sentence" in caplog.text
    assert model.stat().st_size == len(data) and model.read_bytes() != damaged
    assert not crashed.exists()
    assert sorted(p.name for p in cache.iterdir()) == [entry.name, f"{entry.name}.lock"]
    reference = torch_embedder.embed_documents(TEXTS)
    assert _cosines(healed.embed_documents(TEXTS), reference).min() >= 0.9999


def test_asking_with_the_onnx_backend_never_imports_torch(
    sample_index_dir, onnx_embedder, tmp_path
):
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "    print('LOADED', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
        "    raise\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env |= {"NEWSBOT_EMBEDDING_BACKEND": "onnx", "NEWSBOT_INDEX_DIR": str(sample_index_dir)}
    result = subprocess.run(
        [sys.executable, "-c", code, "ask", "Who met whom in Lima?", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr
    assert "Luong Cuong" in json.loads(result.stdout)["answer"]


def test_int8_weights_stay_close_and_find_the_same_passages(
    sample_index_dir, onnx_embedder, model_cache_dir
):
    int8 = load_embedder(RetrievalSettings(embedding_backend="onnx-int8"))
    assert isinstance(int8, OnnxEmbedder)
    assert int8.name == onnx_embedder.name  # same model: it searches fp32-built indexes
    assert any(model_cache_dir.glob("*-int8/model.onnx"))
    assert _cosines(int8.embed_documents(TEXTS), onnx_embedder.embed_documents(TEXTS)).min() > 0.97

    settings = RetrievalSettings(index_dir=sample_index_dir)
    with_int8 = NewsAssistant(settings, embedder=int8)
    with_fp32 = NewsAssistant(settings, embedder=onnx_embedder)
    try:
        for question in QUESTIONS:
            assert with_int8.search(question)[0].row == with_fp32.search(question)[0].row
    finally:
        with_int8.close()
        with_fp32.close()


def _copy_with_pooling(tmp_path: Path, pooling: dict[str, bool]) -> Path:
    """The packaged model's files (weights linked, not copied) with another pooling config."""
    source = Path(resolve_model(PACKAGED_MODEL))
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors"))
    (target / "model.safetensors").symlink_to(source / "model.safetensors")
    config = target / "1_Pooling" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | pooling))
    return target


def test_an_unsupported_pooling_fails_clearly_or_falls_back_to_torch_in_auto_mode(tmp_path, caplog):
    model = _copy_with_pooling(
        tmp_path, {"pooling_mode_mean_tokens": False, "pooling_mode_weightedmean_tokens": True}
    )
    cache = tmp_path / "cache"
    with pytest.raises(ConfigurationError, match="pooling weightedmean is not supported"):
        load_embedder(
            RetrievalSettings(
                embedding_model=str(model), embedding_backend="onnx", model_cache_dir=cache
            )
        )
    with caplog.at_level(logging.WARNING, logger="retrieval.embedding"):
        fallback = load_embedder(
            RetrievalSettings(
                embedding_model=str(model), embedding_backend="auto", model_cache_dir=cache
            )
        )
    assert isinstance(fallback, SentenceTransformerEmbedder)
    assert "instead of ONNX Runtime" in caplog.text and "weightedmean" in caplog.text
    assert not cache.exists()  # refused before exporting anything


def test_a_model_that_is_not_on_this_machine_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="nor in the local Hugging Face cache"):
        load_onnx_embedder("example-org/no-such-model", cache_dir=tmp_path)


def test_an_8_bit_vector_does_not_depend_on_what_it_is_embedded_with(embedder):
    """Activations are quantised per run: batch mates must not change a question's vector."""
    assert embedder.quantized
    alone = embedder.embed_query("Who met whom in Lima?")
    for mates in (["APEC 2024"], [TEXTS[2], "", "Grand Cross Order of Honour"]):
        batched = embedder.embed_documents(["Who met whom in Lima?", *mates])[0]
        np.testing.assert_allclose(batched, alone, atol=1e-6)
