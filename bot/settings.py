"""All of newsbot's settings: the retrieval ones plus what the Telegram bot needs."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
