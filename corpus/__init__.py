"""Getting news articles in: read files, strip page boilerplate, give each a stable id.

Names are imported on first use (see ``corpus.lazy``).
"""

from __future__ import annotations

from corpus.lazy import lazy_exports

_EXPORTS = {
    "Article": "corpus.articles",
    "lazy_exports": "corpus.lazy",
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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
