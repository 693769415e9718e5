"""Where people meet newsbot: the command line and (soon) Telegram.

Names are imported on first use (PEP 562), so importing one module of the package
does not load the others, and `newsbot --help` does not load FAISS or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OFFICIAL_BOT_API": "bot.settings",
    "Settings": "bot.settings",
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
