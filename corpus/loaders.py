"""Read news articles from text, Markdown, HTML, JSONL and RSS/Atom files."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from corpus.articles import Article, article_id, clean_url
from corpus.cleaning import clean_text
from corpus.errors import ArticleError

# trafilatura, feedparser, lxml, yaml and charset_normalizer are imported where a format needs
# them: together about 0.2 s that answering a question (which imports this module) never needs.

__all__ = [
    "FeedEntry",
    "article_from_page",
    "article_to_record",
    "feed_entries",
    "load_path",
    "load_paths",
    "readable_files",
    "sample_corpus_dir",
]

Loaded = Article | ArticleError
_EXPECTED_TYPES = "expected .txt, .md, .html, .jsonl, .xml/.rss/.atom"


def sample_corpus_dir() -> Path:
    """The directory of the small corpus shipped with the package (for demos and tests)."""
    return Path(str(resources.files("corpus").joinpath("samples")))


#: Safe defaults for what one file and one article may hold (the settings override them).
MAX_FILE_BYTES = 50_000_000
MAX_ARTICLE_CHARS = 200_000


def load_paths(
    paths: Iterable[str | Path],
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_article_chars: int = MAX_ARTICLE_CHARS,
) -> Iterator[Loaded]:
    """Like :func:`load_path`, over several files or directories in turn."""
    for path in paths:
        yield from load_path(
            path, max_file_bytes=max_file_bytes, max_article_chars=max_article_chars
        )


def load_path(
    path: str | Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_article_chars: int = MAX_ARTICLE_CHARS,
) -> Iterator[Loaded]:
    """Yield the articles in a file or directory tree, and an ``ArticleError`` per bad record.

    Errors are yielded rather than raised so that one bad file never stops a batch; only a
    path that does not exist raises, since there is nothing to iterate. Directories are read
    recursively in sorted order, skipping hidden entries and files of unknown type.

    Formats by extension: .txt/.md (optional YAML front matter, else the first line is the
    title), .html/.htm, .jsonl/.ndjson (one object per line), .xml/.rss/.atom feeds.
    A file over ``max_file_bytes`` is rejected unread, an article whose cleaned text is
    over ``max_article_chars`` characters is rejected after cleaning.
    """
    path = Path(path)
    if not path.exists():
        raise ArticleError("no such file or directory; check the path", source=str(path))
    if path.is_dir():
        for file in _files_under(path):
            yield from _load_file(file, max_file_bytes, max_article_chars)
    elif _loader_for(path) is None:
        yield ArticleError(
            f"unsupported file type {path.suffix or '(no extension)'!r} ({_EXPECTED_TYPES})",
            source=str(path),
        )
    else:
        yield from _load_file(path, max_file_bytes, max_article_chars)


def readable_files(directory: Path) -> list[Path]:
    """The files under ``directory`` that ingest would read (known types, not hidden)."""
    return list(_files_under(directory))


def _files_under(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not entry.is_symlink():  # a symlinked directory could loop back on itself
                yield from _files_under(entry)
        elif entry.is_file() and _loader_for(entry) is not None:
            yield entry


def _load_file(path: Path, max_file_bytes: int, max_article_chars: int) -> Iterator[Loaded]:
    where = str(path)
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            yield ArticleError(
                f"file is too large ({size:,} bytes; the limit is {max_file_bytes:,}): "
                "split it, or raise NEWSBOT_MAX_FILE_BYTES",
                source=where,
            )
            return
        data = path.read_bytes()
    except OSError as exc:
        yield ArticleError(f"cannot read file ({exc.strerror or exc})", source=where)
        return
    loader = _LOADERS[path.suffix.lower()]  # callers only pass files of a known type
    try:
        for item in loader(data, where):
            if isinstance(item, Article) and len(item.body) > max_article_chars:
                item = ArticleError(
                    f"article {_shorten(item.title)!r} is too long ({len(item.body):,} "
                    f"characters after cleaning; the limit is {max_article_chars:,}): split "
                    "it, or raise NEWSBOT_MAX_ARTICLE_CHARS",
                    source=where,
                )
            yield item
    except ValueError as exc:  # the whole file is unusable (undecodable, not a feed, ...)
        yield ArticleError(str(exc), source=where)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- building an Article -----------------------------------------------------------------


def _make_article(
    *,
    title: str | None,
    body: str | None,
    url: str | None = None,
    source: str | None = None,
    published: datetime | None = None,
    language: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> Article:
    """Clean and identify one article; raises ValueError with the reason it is unusable."""
    title = " ".join((title or "").split())
    if not title:
        raise ValueError("the article has no title")
    if not body or not body.strip():
        raise ValueError("the article body is empty")
    cleaned = clean_text(body, title=title)
    if not cleaned.text:
        raise ValueError(
            f"the article body is empty after removing boilerplate "
            f"({len(cleaned.dropped)} lines dropped)"
        )
    url = (url or "").strip() or None
    return Article(
        id=article_id(url=url, title=title, body=cleaned.text),
        title=title,
        body=cleaned.text,
        url=url,
        source=(source or "").strip() or None,
        published=published,
        language=_language_code(language),
        extra=dict(extra or {}),
    )


def _language_code(value: str | None) -> str:
    """Primary language subtag: "en-US" -> "en"; English when unknown."""
    code = re.split(r"[-_]", (value or "").strip(), maxsplit=1)[0].lower()
    return code or "en"


def _parse_published(value: object, field: str = "published") -> datetime | None:
    """A timezone-aware datetime (UTC when none is given) from ISO 8601 or RFC 2822 text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), tzinfo=UTC)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"field {field!r} is not a date: {value!r} "
                    "(use ISO 8601, e.g. 2024-11-14 or 2024-11-14T08:30:00+07:00)"
                ) from None
    else:
        raise ValueError(f"field {field!r} must be a date, not {_json_type(value)}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else the best guess of charset_normalizer."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    guess = charset_normalizer.from_bytes(data).best()
    if guess is None:
        raise ValueError(
            "cannot decode the file: it is not UTF-8 and no other text encoding fits "
            "(is it a binary file?); save it as UTF-8"
        )
    return str(guess)


# --- plain text and Markdown -------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+")
_FRONT_MATTER_FIELDS = {"title", "url", "date", "published", "source", "language"}


def _load_text(data: bytes, where: str, *, markdown: bool = False) -> Iterator[Loaded]:
    meta, text = _split_front_matter(_decode(data).replace("\r\n", "\n"))
    fields = {k: _front_matter_text(meta, k) for k in ("title", "url", "source", "language")}
    date_key = "published" if "published" in meta else "date"
    title, body = fields["title"], text
    if not title:
        title, body = _first_line_title(text, markdown=markdown)
    extra = {k: _as_text(v) for k, v in meta.items() if k not in _FRONT_MATTER_FIELDS}
    yield _make_article(
        title=title,
        body=body,
        url=fields["url"],
        source=fields["source"],
        published=_parse_published(meta.get(date_key), date_key),
        language=fields["language"],
        extra={k: v for k, v in extra.items() if v},
    )


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The ``---`` YAML header as a dict (empty if there is none) and the text after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    import yaml

    try:
        loaded = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        mark = getattr(exc, "problem_mark", None)
        at = f" at front-matter line {mark.line + 1}" if mark else ""
        raise ValueError(f"invalid front matter ({problem}{at})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError("front matter must be 'key: value' lines")
    return {str(k): v for k, v in (loaded or {}).items()}, text[match.end() :]


def _front_matter_text(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ValueError(f"front-matter field {key!r} must be text, not a list or mapping")
    return _as_text(value)  # YAML reads `title: 1984` as a number; it is still a title


def _first_line_title(text: str, *, markdown: bool) -> tuple[str, str]:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            title = _HEADING.sub("", line.strip()) if markdown else line.strip()
            return title, "\n".join(lines[i + 1 :])
    raise ValueError("the file is empty")


# --- HTML pages --------------------------------------------------------------------------


def _load_html(data: bytes, where: str) -> Iterator[Loaded]:
    yield article_from_page(data)


def article_from_page(
    data: bytes,
    *,
    url: str | None = None,
    title: str | None = None,
    published: datetime | None = None,
    source: str | None = None,
) -> Article:
    """The article of an HTML page; raises ValueError with the reason it has none.

    The page's own metadata wins; ``url`` (where it was fetched), ``title``, ``published``
    and ``source`` (what a feed said about it) fill what the page does not say. A canonical
    link to the site's front page is a misconfiguration, not the article's address.
    """
    import trafilatura
    from trafilatura.settings import Document

    tree = trafilatura.load_html(data)
    if tree is None:
        raise ValueError("cannot parse the file as HTML")
    # Precision mode: every line that reaches the index can be quoted in an answer, so a lost
    # menu line matters more than a lost sentence (README, Article extraction: on the shared
    # benchmark pages it trades 0.003 recall for 0.015 precision).
    doc = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, favor_precision=True
    )
    if not isinstance(doc, Document) or not doc.text or not doc.text.strip():
        raise ValueError("no article text found in the HTML page")
    canonical = doc.url if doc.url and urlsplit(doc.url).path.strip("/") else None
    # trafilatura puts one block element per line; the corpus separates paragraphs by a blank line.
    body = "\n\n".join(line for line in doc.text.split("\n") if line.strip())
    return _make_article(
        title=doc.title or title,
        body=body,
        url=clean_url(address) if (address := canonical or url) else None,
        source=doc.sitename or source or doc.hostname,
        published=_parse_published(doc.date, "date") or published,
        language=doc.language or tree.get("lang"),
        extra={"author": doc.author} if doc.author else {},
    )


# --- JSON Lines --------------------------------------------------------------------------


_PUBLISHED_KEYS = ("published", "published_at", "date")


class _JsonRecord(BaseModel):
    """One JSONL line; strict, because a number where text belongs is a broken export."""

    model_config = ConfigDict(extra="ignore")

    title: StrictStr
    body: StrictStr = Field(validation_alias=AliasChoices("body", "text", "content"))
    url: StrictStr | None = None
    source: StrictStr | None = Field(
        None, validation_alias=AliasChoices("source", "site", "outlet")
    )
    published: StrictStr | None = Field(None, validation_alias=AliasChoices(*_PUBLISHED_KEYS))
    language: StrictStr | None = None


_JSON_ALIASES = {
    "body": "text, content",
    "source": "site, outlet",
    "published": "published_at, date",
}
_JSON_FIELDS = {"title", "body", "text", "content", "url", "source", "site", "outlet"}
_JSON_FIELDS |= {"published", "published_at", "date", "language"}
# An "id" is accepted but not trusted: the id is always derived from the URL or content.
_JSON_FIELDS |= {"id"}


def article_to_record(article: Article) -> dict[str, Any]:
    """The JSON Lines record ``newsbot export`` writes and this module reads back unchanged."""
    return {
        **article.extra,
        "id": article.id,
        "title": article.title,
        "body": article.body,
        "url": article.url,
        "source": article.source,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
    }


def _load_jsonl(data: bytes, where: str) -> Iterator[Loaded]:
    # Split on "\n" only: str.splitlines() would also split on U+2028 inside JSON strings.
    for line_no, line in enumerate(_decode(data).split("\n"), start=1):
        if not line.strip():
            continue
        at = f"{where}:{line_no}"
        try:
            yield _jsonl_article(line)
        except ValueError as exc:
            yield ArticleError(f"line {line_no}: {exc}", source=at)


def _jsonl_article(line: str) -> Article:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(raw)}")
    try:
        record = _JsonRecord.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_describe_validation_error(exc)) from None
    extra = {
        k: _as_text(v)
        for k, v in raw.items()
        if k not in _JSON_FIELDS and v is not None and not isinstance(v, dict | list)
    }
    return _make_article(
        title=record.title,
        body=record.body,
        url=record.url,
        source=record.source,
        published=_parse_published(record.published, _first_key(raw, _PUBLISHED_KEYS)),
        language=record.language,
        extra=extra,
    )


def _first_key(raw: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return next((key for key in keys if key in raw), keys[0])


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "missing":
            also = f" (or {_JSON_ALIASES[field]})" if field in _JSON_ALIASES else ""
            problems.append(f"field {field!r}{also} is required")
        elif error["type"] == "string_type":
            problems.append(f"field {field!r} must be a string, not {_json_type(error['input'])}")
        else:
            problems.append(f"field {field!r}: {error['msg']}")
    return "; ".join(problems)


# --- RSS and Atom feeds ------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "dl", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"blockquote", "pre", "table", "tr", "figure", "figcaption", "section", "article"}
    | {"header", "footer", "aside", "address", "hr", "br"}
)


def _load_feed(data: bytes, where: str) -> Iterator[Loaded]:
    for n, entry in enumerate(feed_entries(data), start=1):
        if isinstance(entry.article, ArticleError):
            yield ArticleError(f"entry {n}: {entry.article}", source=where)
        else:
            yield entry.article


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of a feed: where its story lives, and the feed's own text of it."""

    link: str | None
    title: str | None
    published: datetime | None
    source: str | None
    article: Article | ArticleError  # from the entry's own text (often only a summary)


def feed_entries(data: bytes) -> list[FeedEntry]:
    """The entries of an RSS or Atom feed; raises ValueError if ``data`` is not one."""
    import feedparser

    feed = feedparser.parse(data)
    if not feed.get("version") and not feed.entries:  # an empty file has no version at all
        reason = feed.get("bozo_exception")
        detail = f": {reason}" if reason else ""
        raise ValueError(f"not an RSS or Atom feed{detail}")
    channel = feed.feed
    entries = []
    for entry in feed.entries:
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None
        source = entry.get("source", {}).get("title") or channel.get("title")
        try:
            article: Article | ArticleError = _feed_article(entry, channel, published, source)
        except ValueError as exc:
            article = ArticleError(str(exc))
        entries.append(FeedEntry(entry.get("link"), entry.get("title"), published, source, article))
    return entries


def _feed_article(
    entry: Any, channel: Any, published: datetime | None, source: str | None
) -> Article:
    extra = {"author": entry.get("author"), "guid": entry.get("id")}
    if entry.get("tags"):
        extra["tags"] = ", ".join(t.get("term", "") for t in entry.tags if t.get("term"))
    return _make_article(
        title=entry.get("title"),
        body=_entry_text(entry),
        url=entry.get("link"),
        source=source,
        published=published,
        language=entry.get("language") or channel.get("language"),
        extra={k: v for k, v in extra.items() if v},
    )


def _entry_text(entry: Any) -> str:
    """The entry's full content if the feed has it, else its summary, as plain paragraphs."""
    candidates = [(c.get("value", ""), c.get("type", "")) for c in entry.get("content", [])]
    if entry.get("summary"):
        candidates.append((entry.summary, entry.get("summary_detail", {}).get("type", "")))
    value, kind = max(candidates, key=lambda c: len(c[0]), default=("", ""))
    return value if kind == "text/plain" else _html_to_text(value)


def _html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, one paragraph per block element."""
    if not html.strip():
        return ""
    import lxml.html

    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iter():
        if element.tag in ("script", "style"):
            element.text = ""
        if isinstance(element.tag, str) and element.tag in _BLOCK_TAGS:
            element.text = "\n\n" + (element.text or "")
            element.tail = "\n\n" + (element.tail or "")
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", root.text_content()))
    return "\n\n".join(p for p in paragraphs if p)


# --- dispatch ----------------------------------------------------------------------------

_Loader = Callable[[bytes, str], Iterator[Loaded]]


def _load_markdown(data: bytes, where: str) -> Iterator[Loaded]:
    return _load_text(data, where, markdown=True)


_LOADERS: dict[str, _Loader] = {
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".jsonl": _load_jsonl,
    ".ndjson": _load_jsonl,
    ".xml": _load_feed,
    ".rss": _load_feed,
    ".atom": _load_feed,
}


def _loader_for(path: Path) -> _Loader | None:
    return _LOADERS.get(path.suffix.lower())
