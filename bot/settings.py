"""All of newsbot's settings: the retrieval ones plus what the Telegram bot needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from retrieval.settings import RetrievalSettings

OFFICIAL_BOT_API = "https://api.telegram.org/bot"


class Settings(RetrievalSettings):
    """Built once at the entry point from ``NEWSBOT_*`` variables and ``.env``."""

    telegram_token: SecretStr | None = Field(
        None, description="Bot token from @BotFather; required by `newsbot serve`."
    )
    telegram_api_url: str = Field(
        OFFICIAL_BOT_API,
        description="Bot API base URL (the token is appended); tests point it at a local server.",
    )
    drop_pending_updates: bool = Field(
        False, description="Skip the updates that arrived while the bot was not running."
    )
    webhook_url: str | None = Field(
        None,
        description="Public HTTPS URL Telegram should post updates to; unset = long polling.",
    )
    webhook_listen: str = Field("127.0.0.1", description="Address the webhook server binds.")
    webhook_port: int = Field(8443, ge=1, le=65535, description="Port the webhook server binds.")
    webhook_secret: SecretStr | None = Field(
        None,
        description="Secret Telegram sends with every webhook request (1-256 of A-Z a-z 0-9 _ -).",
    )
    allowed_user_ids: Annotated[frozenset[int], NoDecode] = Field(
        default_factory=frozenset, description="Telegram user ids allowed to ask; empty = everyone."
    )
    allowed_chat_ids: Annotated[frozenset[int], NoDecode] = Field(
        default_factory=frozenset, description="Chat ids the bot serves; empty = every chat."
    )
    questions_per_minute: int = Field(
        0, ge=0, le=10_000, description="Questions one user may ask per minute; 0 = no limit."
    )

    messages_per_second: float = Field(
        30.0,
        gt=0,
        le=1000,
        description=(
            "Messages the bot sends per second at most, across all chats (Telegram's limit "
            "is 30 unless paid broadcasts are enabled)."
        ),
    )

    # -- the bot's own state, and followed topics ------------------------------------------
    state_path: Path | None = Field(
        None,
        description=(
            "SQLite file of the bot's state (conversations, last answers, follows, pushes, "
            "rate limits); empty = bot-state.sqlite in the index directory."
        ),
    )
    pushes_per_hour: int = Field(
        6, ge=1, le=1000, description="Messages on followed topics one chat gets per hour, at most."
    )
    max_follows: int = Field(20, ge=1, le=1000, description="Topics one chat may follow at once.")

    def bot_state_path(self) -> Path:
        return self.state_path or self.index_dir / "bot-state.sqlite"

    @field_validator("allowed_user_ids", "allowed_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        # "123, -100456" (or "[123, -100456]") in the environment; a set when built in code.
        if isinstance(value, str):
            return value.strip("[] ").replace(",", " ").split()
        return value
