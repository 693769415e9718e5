"""Getting news articles in: read files and fetch feeds and pages, strip page boilerplate,
give each a stable id.

Names are imported on first use (see ``corpus.lazy``).
"""

from __future__ import annotations

from corpus.lazy import lazy_exports

_EXPORTS = {
    "Article": "corpus.articles",
    "lazy_exports": "corpus.lazy",
    "article_id": "corpus.articles",
    "normalise_url": "corpus.articles",
    "clean_url": "corpus.articles",
    "content_fingerprint": "corpus.articles",
    "FEED_TYPES": "corpus.fetching",
    "PAGE_TYPES": "corpus.fetching",
    "FetchFailure": "corpus.fetching",
    "FetchPolicy": "corpus.fetching",
    "Fetched": "corpus.fetching",
    "Fetcher": "corpus.fetching",
    "Validators": "corpus.fetching",
    "SourceReport": "corpus.web",
    "WebArticle": "corpus.web",
    "WebRound": "corpus.web",
    "collect": "corpus.web",
    "is_url": "corpus.web",
    "read_url_list": "corpus.web",
    "url_list_file": "corpus.web",
    "FeedEntry": "corpus.loaders",
    "article_from_page": "corpus.loaders",
    "feed_entries": "corpus.loaders",
    "readable_files": "corpus.loaders",
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
