"""Where people meet newsbot: the command line and the Telegram bot.

Names are imported on first use (PEP 562), so importing one module of the package
does not load the others, and `newsbot --help` does not load FAISS or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AccessPolicy": "bot.access",
    "NewsBot": "bot.handlers",
    "OFFICIAL_BOT_API": "bot.settings",
    "RateLimiter": "bot.access",
    "SecretFilter": "bot.app",
    "Settings": "bot.settings",
    "addressed_question": "bot.handlers",
    "bot_token": "bot.app",
    "build_application": "bot.app",
    "check_serve_settings": "bot.app",
    "configure_logging": "bot.app",
    "redact_secrets_in_logs": "bot.app",
    "serve": "bot.app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
