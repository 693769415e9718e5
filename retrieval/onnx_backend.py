"""Sentence embeddings on ONNX Runtime, exported once from a sentence-transformers model.

Answering a question then loads neither torch nor transformers: onnxruntime runs the
transformer, the Hugging Face ``tokenizers`` library reads the model's ``tokenizer.json``, and
numpy pools and normalises, as sentence-transformers does for a model made of a Transformer,
a Pooling and optionally a Normalize module (MiniLM and most others). The settings come from
the model's own files: ``modules.json``, ``sentence_bert_config.json`` (truncation) and
``1_Pooling/config.json`` (pooling).

The export runs once per model, on first use, with torch (installed anyway): the transformer
is traced by ``torch.onnx.export`` and its layers' operators fused by ONNX Runtime's
transformer optimizer, its vectors are compared with sentence-transformers' on a few texts,
and only then is the entry moved into the cache, under a name derived from the model's files
(resolved path, sizes, modification times)::

    <cache>/all-MiniLM-L6-v2-<key>/        model.onnx, entry.json
    <cache>/all-MiniLM-L6-v2-<key>-int8/   the same with weights quantised to 8 bits
    <cache>/all-MiniLM-L6-v2-<key>-int8.rejected.json   instead, if those failed the check

An entry is built in a temporary directory and renamed into place under a file lock, so a
crash never leaves a half-written model under the final name and two processes export it
once. Every load embeds a probe sentence and compares it with the vector recorded when the
entry was verified, so a damaged file is noticed, thrown away and exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from filelock import FileLock, Timeout
from tokenizers import Encoding, Tokenizer

from corpus.errors import ConfigurationError

from .durable import publish_directory, write_atomically
from .torch_backend import load_sentence_transformer, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: Bump when the export or the entry layout changes: older entries are then exported again.
EXPORT_FORMAT = 2  # 2: fused operators (see _fuse)
#: Embedded on every load and compared with the vector recorded at export time.
_PROBE = "Vietnam's State President met the President of the Congress of Peru in Lima."
#: What the export is checked on: the probe, a question, nothing, odd Unicode, and a text
#: longer than any model's window (truncation must cut where sentence-transformers cuts).
_CHECK_TEXTS = (
    _PROBE,
    "Who met whom in Lima?",
    "",
    "  Ünïcödé — “quotes”, emoji 🎉, 東京, العربية, a zero-width\u200bspace\t\n",
    " ".join(["The central bank raised interest rates again to curb inflation."] * 60),
)
#: The fp32 export computes what sentence-transformers computes, up to float rounding.
_FP32_MIN_COSINE = 0.9999
#: 8-bit weights move vectors a little: cosine to fp32 0.994 on average and 0.986 at worst on
#: 1,000 news passages, 0.975 for the empty text. Below this, the quantisation went wrong.
_INT8_MIN_COSINE = 0.95
#: Padded word pieces per batch at most. Small batches stay in the CPU caches: on 2 cores, 4
#: passages of 256 word pieces embed ~30 % faster per core than 64, with a tenth of the memory.
_BATCH_TOKENS = 1024
#: Up to this many batches (a question, a few questions) run one after another on all cores.
#: Side by side they wait for the threads the all-core session leaves spinning after each
#: question: measured interleaved, 2 question parts of ~33 word pieces embed in 6.4 ms one
#: after another against 10.9 ms side by side, 3 parts of ~65 in 15.4 against 19.5 ms.
_SEQUENTIAL_BATCHES = 4
#: Beside an 8-bit entry's name: these weights failed the check (see _raise_if_rejected).
_REJECTED_SUFFIX = ".rejected.json"
#: How long a process waits for another one exporting the same model.
_LOCK_TIMEOUT = 600.0
_ENTRY_FILE = "entry.json"
_MODEL_FILE = "model.onnx"
_TRACED_FILE = "traced.onnx"  # torch's export, before fusing
_POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """What sentence-transformers does around the transformer, read from the model's files."""

    transformer_dir: Path  # config.json, tokenizer.json and the weights
    max_seq_length: int
    do_lower_case: bool
    pooling: str  # one of _POOLING_MODES


class OnnxEmbedder:
    """The ``Embedder`` on ONNX Runtime: sentence-transformers' vectors, without torch.

    ``model_dir`` is the sentence-transformers directory (tokenizer, pooling, truncation) and
    ``onnx_path`` its exported transformer; :func:`load_onnx_embedder` makes and caches that.

    A few batches (a question, a few of them) run one after another, each split
    over every usable core; many batches (ingest) run side by side, one core each, on a
    second session made on first use. Measured on 2 cores: a question embeds 30 % faster
    on two threads, while passages embed 20-25 % faster as single-threaded runs in parallel.
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        onnx_path: Path,
        *,
        batch_size: int = 64,
        quantized: bool = False,
    ) -> None:
        self.name = name
        self.quantized = quantized  # 8-bit weights
        self.batch_size = batch_size
        self._pipeline = pipeline = _read_pipeline(model_dir)
        self._tokenizer_json = (pipeline.transformer_dir / "tokenizer.json").read_text("utf-8")
        self._tokenizer = Tokenizer.from_str(self._tokenizer_json)
        self._tokenizer.no_padding()  # batches are padded here, to their own longest text
        self._tokenizer.enable_truncation(pipeline.max_seq_length)
        self._counter: Tokenizer | None = None  # the same without truncation, made if needed
        self._pad_id = _pad_token_id(pipeline.transformer_dir, self._tokenizer)
        self._onnx_path = onnx_path
        self._session = _session(onnx_path, threads=_usable_cores())
        self._bulk: ort.InferenceSession | None = None
        self._bulk_lock = threading.Lock()
        self._inputs = [i.name for i in self._session.get_inputs()]
        width = self._session.get_outputs()[0].shape[-1]
        self.dimension = width if isinstance(width, int) else len(self.embed_query(_PROBE))

    @property
    def max_tokens(self) -> int:
        processor = self._tokenizer.post_processor  # adds [CLS] and [SEP], if the model has any
        special = processor.num_special_tokens_to_add(False) if processor else 0
        return self._pipeline.max_seq_length - special

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._counter is None:
            counter = Tokenizer.from_str(self._tokenizer_json)
            counter.no_padding()
            counter.no_truncation()
            self._counter = counter
        if self._pipeline.do_lower_case:
            texts = [t.lower() for t in texts]
        encoded = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        if self._pipeline.do_lower_case:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(list(texts))
        batches = self._batches([len(e.ids) for e in encodings])
        if len(batches) <= _SEQUENTIAL_BATCHES:
            for batch in batches:
                vectors[batch] = self._embed_batch(self._session, [encodings[i] for i in batch])
            return vectors
        bulk = self._bulk_session()
        with ThreadPoolExecutor(_usable_cores()) as pool:
            done: Iterable[np.ndarray] = pool.map(
                lambda batch: self._embed_batch(bulk, [encodings[i] for i in batch]), batches
            )
            if progress:
                from tqdm import tqdm

                done = tqdm(done, total=len(batches), desc="Embedding", unit="batch")
            for batch, batch_vectors in zip(batches, done, strict=True):
                vectors[batch] = batch_vectors
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped longest first, as sentence-transformers does, so padding is small.

        With 8-bit weights each text runs alone: activations are quantised over the whole
        run, so in a batch a text's vector would depend on its batch mates (cosine 0.97
        between the same question alone and batched). Alone costs nothing: no padding, and
        51.3 against 50.8 passages/s batched, side by side on 2 cores.
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        if self.quantized:
            return [[i] for i in order]
        batches: list[list[int]] = []
        for i in order:
            last = batches[-1] if batches else None
            # A batch's first text is its longest: every text in it is padded to that width.
            if (
                last
                and len(last) < self.batch_size
                and (len(last) + 1) * lengths[last[0]] <= _BATCH_TOKENS
            ):
                last.append(i)
            else:
                batches.append([i])
        return batches

    def _bulk_session(self) -> ort.InferenceSession:
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = _session(self._onnx_path, threads=1)
            return self._bulk

    def _embed_batch(self, session: ort.InferenceSession, encodings: list[Encoding]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = encoding.ids, 1, encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (tokens,) = session.run(None, {name: feed[name] for name in self._inputs})
        return _normalised(_pooled(tokens, mask, self._pipeline.pooling))


def load_onnx_embedder(
    model: str, *, cache_dir: Path, quantized: bool = False, batch_size: int = 64
) -> OnnxEmbedder:
    """The embedder for ``model`` on ONNX Runtime, exporting it into ``cache_dir`` if needed.

    ``model`` is the ``NEWSBOT_EMBEDDING_MODEL`` setting: the packaged model, a local
    sentence-transformers directory, or a Hub name already in the local Hugging Face cache.
    ``quantized`` gives 8-bit weights (made from the fp32 export). Raises
    ``ConfigurationError`` when the model cannot run here (missing, or a pipeline this backend
    does not reproduce) or its export does not match sentence-transformers.
    """
    model_dir = _locate(model)
    _read_pipeline(model_dir)  # refuse an unsupported model before exporting anything
    fp32_dir = cache_dir / f"{_slug(model)}-{_model_key(model_dir)}"

    def fp32() -> OnnxEmbedder:
        return _cached(
            fp32_dir,
            lambda tmp: _export(model_dir, tmp),
            lambda entry: OnnxEmbedder(
                model, model_dir, entry / _MODEL_FILE, batch_size=batch_size
            ),
        )

    if not quantized:
        return fp32()
    int8_dir = fp32_dir.with_name(fp32_dir.name + "-int8")
    rejected = int8_dir.with_name(int8_dir.name + _REJECTED_SUFFIX)
    _raise_if_rejected(rejected)
    try:
        return _cached(
            int8_dir,
            lambda tmp: _quantize(fp32(), model_dir, fp32_dir / _MODEL_FILE, tmp),
            lambda entry: OnnxEmbedder(
                model, model_dir, entry / _MODEL_FILE, batch_size=batch_size, quantized=True
            ),
        )
    except _QuantizationRejected as exc:
        _remember_rejection(rejected, str(exc))
        raise


def _raise_if_rejected(marker: Path) -> None:
    """Raise the recorded refusal if these weights failed the 8-bit check before.

    Quantising and checking takes seconds; a model that fails it would otherwise pay that
    at every start. The record holds for the same model files (they name the entry), the
    same check and the same onnxruntime; anything else and the check runs again.
    """
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    reason = record.pop("reason", None) if isinstance(record, dict) else None
    if reason and record == _rejection_key():
        raise ConfigurationError(f"{reason} (checked before; delete {marker} to retry)")


def _remember_rejection(marker: Path, reason: str) -> None:
    try:
        write_atomically(marker, json.dumps(_rejection_key() | {"reason": reason}))
    except OSError as exc:  # a read-only cache: check again next time
        logger.debug("Cannot record the failed 8-bit check in %s: %s", marker, exc)


def _rejection_key() -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "onnxruntime": ort.__version__,
        "min_cosine": _INT8_MIN_COSINE,
    }


# -- reading the model's files ----------------------------------------------------------------


def _locate(model: str) -> Path:
    """The model's local directory: packaged, a path, or a Hub name already downloaded."""
    resolved = resolve_model(model)
    path = Path(resolved).expanduser()
    if path.is_dir():
        return path.resolve()
    # Offline by design: a Hub name is only used when a previous download left it cached.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    names = [resolved] if "/" in resolved else [resolved, f"sentence-transformers/{resolved}"]
    for name in names:
        try:
            return Path(snapshot_download(name, local_files_only=True)).resolve()
        except (LocalEntryNotFoundError, ValueError):
            continue
    raise ConfigurationError(
        f"embedding model {model!r} is neither a local directory nor in the local Hugging Face "
        "cache, so it cannot be exported to ONNX: set NEWSBOT_EMBEDDING_MODEL to a local "
        "sentence-transformers directory"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc


def _read_pipeline(model_dir: Path) -> _Pipeline:
    """Transformer → Pooling → (Normalize), as ``modules.json`` lists it; refuse anything else."""
    unsupported = (
        f"the ONNX backend runs sentence-transformers models made of a Transformer, a Pooling "
        f"and optionally a Normalize module; {model_dir} "
    )
    advice = ": set NEWSBOT_EMBEDDING_BACKEND=torch"
    if not (model_dir / "modules.json").is_file():
        raise ConfigurationError(unsupported + "has no modules.json" + advice)
    modules = _read_json(model_dir / "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ConfigurationError(unsupported + f"has {' → '.join(kinds)}" + advice)
    transformer_dir = model_dir / modules[0].get("path", "")
    pooling_dir = model_dir / modules[1].get("path", "")
    if not (transformer_dir / "tokenizer.json").is_file():
        raise ConfigurationError(
            f"{transformer_dir} has no tokenizer.json (the fast tokenizer the ONNX backend "
            "reads)" + advice
        )
    settings_file = model_dir / "config_sentence_transformers.json"
    if settings_file.is_file() and _read_json(settings_file).get("default_prompt_name"):
        raise ConfigurationError(unsupported + "prepends a default prompt" + advice)

    st_config = transformer_dir / "sentence_bert_config.json"
    config = _read_json(st_config) if st_config.is_file() else {}
    max_seq_length = config.get("max_seq_length") or _model_max_length(transformer_dir)
    return _Pipeline(
        transformer_dir=transformer_dir,
        max_seq_length=int(max_seq_length),
        do_lower_case=bool(config.get("do_lower_case", False)),
        pooling=_pooling_mode(pooling_dir / "config.json", advice),
    )


def _model_max_length(transformer_dir: Path) -> int:
    """sentence-transformers' fallback: the tokenizer's limit, capped by the position table."""
    limits = []
    tokenizer_config = transformer_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        limit = _read_json(tokenizer_config).get("model_max_length")
        if isinstance(limit, int) and limit < 1_000_000:  # transformers' "no limit" is ~1e30
            limits.append(limit)
    positions = _read_json(transformer_dir / "config.json").get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    if not limits:
        raise ConfigurationError(f"{transformer_dir}: cannot tell the model's maximum length")
    return min(limits)


def _pooling_mode(config_file: Path, advice: str) -> str:
    config = _read_json(config_file)
    modes = config.get("pooling_mode") or [
        mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)
    ]
    modes = [modes] if isinstance(modes, str) else list(modes)
    if len(modes) != 1 or modes[0] not in _POOLING_MODES:
        raise ConfigurationError(
            f"{config_file}: pooling {'+'.join(map(str, modes)) or 'none'} is not supported by "
            f"the ONNX backend (only one of {', '.join(_POOLING_MODES)})" + advice
        )
    return str(modes[0])


def _pad_token_id(transformer_dir: Path, tokenizer: Tokenizer) -> int:
    """The id the transformers tokenizer pads with (masked out, so any valid id would do)."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = transformer_dir / name
        token = _read_json(path).get("pad_token") if path.is_file() else None
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and (token_id := tokenizer.token_to_id(token)) is not None:
            return token_id
    return 0


def _model_key(model_dir: Path) -> str:
    """Identity of the model's files: a changed file (new weights) gets a new cache entry."""
    files = []
    for path in sorted(model_dir.rglob("*")):
        if path.suffix in {".json", ".safetensors", ".bin", ".txt"} and path.is_file():
            stat = path.stat()
            files.append((str(path.relative_to(model_dir)), stat.st_size, stat.st_mtime_ns))
    identity = json.dumps([EXPORT_FORMAT, str(model_dir), files])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _slug(model: str) -> str:
    """A readable prefix for the cache entry: the model's last name component."""
    tail = model.split(":")[-1].rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-") or "model"


# -- running the model ------------------------------------------------------------------------


def _session(onnx_path: Path, *, threads: int) -> ort.InferenceSession:
    """A CPU session whose runs split each operator over ``threads`` threads, in sequence."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # BERT's graph is a chain: nothing to run side by side
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; its warnings are about choices made above
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def _usable_cores() -> int:
    """The cores this process may run on (fewer than the machine's in a container or cgroup)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _pooled(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' pooling of the token vectors, padding excluded."""
    if mode == "cls":
        return tokens[:, 0]  # padding is on the right, so the first token is the [CLS] token
    weights = mask[..., None].astype(tokens.dtype)
    if mode == "max":
        return np.where(weights > 0, tokens, np.float32(-1e9)).max(axis=1)
    summed = (tokens * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


# -- the cache --------------------------------------------------------------------------------


class _Unusable(Exception):
    """A cache entry that is missing (no reason) or must not be used (the reason)."""


class _QuantizationRejected(ConfigurationError):
    """8-bit weights move this model's vectors too far from its fp32 ones."""


def _cached(
    entry: Path,
    build: Callable[[Path], dict[str, Any]],
    open_entry: Callable[[Path], OnnxEmbedder],
) -> OnnxEmbedder:
    """Open the verified entry, or build it (once, across processes) and open that."""
    try:
        return _checked(entry, open_entry)
    except _Unusable as exc:
        if str(exc):
            logger.warning("The cached model %s is unusable (%s): exporting it again.", entry, exc)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry.parent / f"{entry.name}.lock"), timeout=_LOCK_TIMEOUT):
            try:
                return _checked(entry, open_entry)  # made while this process waited
            except _Unusable:
                pass
            _remove(entry)
            for stale in entry.parent.glob(f".{entry.name}.tmp-*"):  # left by a crash
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=entry.parent))
            try:
                record = build(tmp)
                embedder = open_entry(tmp)
                record |= {
                    "format": EXPORT_FORMAT,
                    "model_bytes": (tmp / _MODEL_FILE).stat().st_size,
                    "probe": embedder.embed_query(_PROBE).tolist(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                (tmp / _ENTRY_FILE).write_text(json.dumps(record), encoding="utf-8")
                publish_directory(tmp, entry)  # the entry appears whole, or not at all
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except Timeout:
        raise ConfigurationError(
            f"another process has been exporting {entry.name} for {_LOCK_TIMEOUT:.0f} s; "
            f"if none is running, delete {entry.parent / (entry.name + '.lock')}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot export the embedding model into {entry.parent}: {exc}. Check that "
            "NEWSBOT_MODEL_CACHE_DIR is a writable directory"
        ) from exc
    logger.info("Exported the embedding model to %s", entry)
    try:
        return _checked(entry, open_entry)
    except _Unusable as exc:
        raise ConfigurationError(f"the model just exported to {entry} is unusable: {exc}") from exc


def _checked(entry: Path, open_entry: Callable[[Path], OnnxEmbedder]) -> OnnxEmbedder:
    """The entry's embedder, after checking the entry is whole and computes what it did."""
    if not entry.is_dir():
        raise _Unusable()
    try:
        record = json.loads((entry / _ENTRY_FILE).read_text(encoding="utf-8"))
        expected_bytes = int(record["model_bytes"])
        probe = np.asarray(record["probe"], dtype=np.float32)
        if record["format"] != EXPORT_FORMAT:
            raise _Unusable(f"made by export format {record['format']}, now {EXPORT_FORMAT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Unusable(f"{_ENTRY_FILE}: {exc}") from exc
    size = (entry / _MODEL_FILE).stat().st_size if (entry / _MODEL_FILE).is_file() else 0
    if size != expected_bytes:
        raise _Unusable(f"{_MODEL_FILE} has {size:,} bytes, not {expected_bytes:,}")
    try:
        embedder = open_entry(entry)
    # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception directly.
    except Exception as exc:
        raise _Unusable(f"onnxruntime cannot load it: {exc}") from exc
    if probe.shape != (embedder.dimension,):
        raise _Unusable(f"its probe vector has shape {probe.shape}")
    cosine = float(embedder.embed_query(_PROBE) @ probe)
    if cosine < _FP32_MIN_COSINE:
        raise _Unusable(f"it embeds the probe sentence differently (cosine {cosine:.6f})")
    return embedder


def _remove(entry: Path) -> None:
    """Take a damaged entry out of the way (renamed first, so it is never half there)."""
    if not entry.exists():
        return
    trash = entry.with_name(f".{entry.name}.tmp-damaged-{os.getpid()}")
    os.rename(entry, trash)
    shutil.rmtree(trash, ignore_errors=True)


# -- making an entry --------------------------------------------------------------------------


def _export(model_dir: Path, target: Path) -> dict[str, Any]:
    """Trace the transformer to ONNX, fuse it, and check it against sentence-transformers."""
    import torch

    # Eager attention traces to the plain MatMul/Softmax pattern ONNX Runtime's fuser knows;
    # the default (SDPA) traces to a masked pattern it cannot fuse.
    model = load_sentence_transformer(str(model_dir), attention="eager")
    transformer = model[0].auto_model  # the Hugging Face model inside the Transformer module
    assert isinstance(transformer, torch.nn.Module)
    transformer.eval()
    tokenizer = model.tokenizer
    names = [
        n
        for n in ("input_ids", "attention_mask", "token_type_ids")
        if n in tokenizer.model_input_names
    ]

    class Encoder(torch.nn.Module):
        """The transformer with positional inputs and one output, as the exporter wants."""

        transformer: torch.nn.Module

        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tokenizer(
        ["A short text.", "A somewhat longer text, to pad."], return_tensors="pt", padding=True
    )
    traced = target / _TRACED_FILE
    started = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter (see the README for why this one) warns that it is
        # deprecated, and tracing warns about Python branches; the check below is what counts.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                Encoder(transformer),
                tuple(sample[n] for n in names),
                str(traced),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]},
                opset_version=17,
                dynamo=False,
            )
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"torch cannot export {model_dir} to ONNX ({exc}): "
                "set NEWSBOT_EMBEDDING_BACKEND=torch"
            ) from exc
    reference = _reference(model)

    def agreement() -> float:
        """How close what is now ``model.onnx`` comes to sentence-transformers."""
        return _agreement(reference, OnnxEmbedder("export", model_dir, target / _MODEL_FILE))

    fused = _fuse(traced, target / _MODEL_FILE, transformer.config)
    if fused and (cosine := agreement()) < _FP32_MIN_COSINE:
        logger.info("The fused graph of %s is off (cosine %.6f): unfused.", model_dir, cosine)
        fused = False
    if not fused:
        os.replace(traced, target / _MODEL_FILE)
        if (cosine := agreement()) < _FP32_MIN_COSINE:
            raise ConfigurationError(
                f"the ONNX export of {model_dir} does not reproduce sentence-transformers "
                f"(cosine {cosine:.6f} < {_FP32_MIN_COSINE}): set NEWSBOT_EMBEDDING_BACKEND=torch"
            )
    traced.unlink(missing_ok=True)
    return {
        "variant": "fp32",
        "source": str(model_dir),
        "fused": fused,
        "min_cosine_to_sentence_transformers": cosine,
        "export_seconds": round(time.perf_counter() - started, 2),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }


def _fuse(traced: Path, fused: Path, config: Any) -> bool:
    """Write ``traced`` with each layer's operators fused (ONNX Runtime's transformer optimizer).

    A layer's attention becomes one operator instead of about forty (MatMul, Reshape,
    Transpose, Softmax, ...), which matters most for a short question: ONNX Runtime splits
    every operator over the cores and waits for them, so a run is mostly that overhead.
    Measured on 2 cores with 8-bit weights: a dev question embeds in 3.9 against 4.5 ms.
    Returns False, leaving no file, when the optimizer cannot handle this model's graph.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        model = optimize_model(
            str(traced),
            model_type="bert",  # BERT-like encoders (MiniLM, MPNet, ...); others fail the check
            num_heads=getattr(config, "num_attention_heads", 0),  # 0: read from the graph
            hidden_size=getattr(config, "hidden_size", 0),
        )
        model.save_model_to_file(str(fused))
    except Exception as exc:  # the optimizer raises whatever its graph matching hits
        logger.info("ONNX Runtime cannot fuse %s (%s): unfused.", traced, exc)
        fused.unlink(missing_ok=True)
        return False
    return True


def _reference(model: SentenceTransformer) -> np.ndarray:
    vectors = model.encode(
        list(_CHECK_TEXTS),
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def _agreement(reference: np.ndarray, embedder: OnnxEmbedder) -> float:
    """The smallest cosine between the reference vectors and the embedder's."""
    return float((reference * embedder.embed_documents(_CHECK_TEXTS)).sum(axis=1).min())


def _quantize(fp32: OnnxEmbedder, model_dir: Path, source: Path, target: Path) -> dict[str, Any]:
    """8-bit weights (dynamic quantisation: activations are quantised as they come)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # The pre-processing onnxruntime recommends (constant folding, shape inference); its
    # symbolic shape inference does not handle this graph, and is not needed for MatMuls.
    prepared = target / "prepared.onnx"
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    # One scale per output channel: one per tensor moves MiniLM's vectors five times as far
    # (mean cosine to fp32 0.949 instead of 0.994 on 1,000 passages).
    quantize_dynamic(
        prepared,
        target / _MODEL_FILE,
        weight_type=QuantType.QInt8,
        per_channel=True,
        # ONNX's shape inference cannot type the outputs of fused operators (Attention,
        # SkipLayerNormalization); they are all float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    prepared.unlink()
    quantized = OnnxEmbedder("quantize", model_dir, target / _MODEL_FILE)
    cosine = _agreement(fp32.embed_documents(_CHECK_TEXTS), quantized)
    if cosine < _INT8_MIN_COSINE:
        raise _QuantizationRejected(
            f"8-bit weights change this model's vectors too much (cosine {cosine:.4f} < "
            f"{_INT8_MIN_COSINE}): set NEWSBOT_EMBEDDING_BACKEND=onnx"
        )
    return {"variant": "int8", "source": str(source), "min_cosine_to_fp32": cosine}
