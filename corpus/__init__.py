"""Getting news articles in: read files, strip page boilerplate, give each a stable id.

Names are imported on first use (PEP 562), so importing one module of the package
does not load the others, and `newsbot --help` does not load FAISS or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Article": "corpus.articles",
    "article_id": "corpus.articles",
    "normalise_url": "corpus.articles",
    "CleanedText": "corpus.cleaning",
    "DroppedLine": "corpus.cleaning",
    "clean_text": "corpus.cleaning",
    "ArticleError": "corpus.errors",
    "ConfigurationError": "corpus.errors",
    "IndexStoreError": "corpus.errors",
    "NewsbotError": "corpus.errors",
    "QuestionError": "corpus.errors",
    "article_to_record": "corpus.loaders",
    "load_path": "corpus.loaders",
    "load_paths": "corpus.loaders",
    "sample_corpus_dir": "corpus.loaders",
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
