"""Fuzzing the loaders: whatever a file holds, each record is an Article or an ArticleError.

No other exception may escape: one bad file must never stop an ingest.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.articles import Article
from corpus.errors import ArticleError
from corpus.loaders import load_path

EXTENSIONS = [".txt", ".md", ".html", ".jsonl", ".xml", ".rss", ".atom"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_text = st.text(st.characters(codec="utf-8"), max_size=200)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_json_record = st.dictionaries(
    st.sampled_from(
        [
            "title",
            "body",
            "text",
            "content",
            "url",
            "source",
            "site",
            "published",
            "date",
            "published_at",
            "language",
            "id",
            "extra",
        ]
    )
    | _text,
    _json_value,
    max_size=8,
)
_tag = st.sampled_from(
    [
        "html",
        "head",
        "title",
        "body",
        "article",
        "p",
        "div",
        "h1",
        "script",
        "style",
        "a",
        "meta",
        "br",
        "table",
        "td",
        "!--",
        "![CDATA[",
        "?xml",
        "rss",
        "channel",
        "item",
        "entry",
        "feed",
        "description",
        "content:encoded",
    ]
)
_markup = st.lists(
    st.one_of(
        _text,
        _tag.map(lambda t: f"<{t}>"),
        _tag.map(lambda t: f"</{t}>"),
        _tag.map(lambda t: f'<{t} href="{t}" lang="x">'),
        st.sampled_from(["<", ">", "&", "&amp;", "&#0;", "&#xD800;", "]]>", "-->", "\x00"]),
    ),
    max_size=40,
).map("".join)
_encodings = st.sampled_from(
    [
        "utf-8",
        "utf-8-sig",
        "utf-16",
        "utf-16-be",
        "utf-32",
        "latin-1",
        "cp1252",
        "shift_jis",
        "koi8-r",
        "gb18030",
    ]
)


def _load(data: bytes, extension: str) -> list[object]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{extension}"
        path.write_bytes(data)
        results = list(load_path(path))
    for result in results:
        assert isinstance(result, Article | ArticleError), type(result)
        if isinstance(result, Article):
            assert result.title.strip() and result.body.strip()
    return results


@FUZZ
@given(data=st.binary(max_size=2000), extension=st.sampled_from(EXTENSIONS))
def test_random_bytes(data, extension):
    _load(data, extension)


@FUZZ
@given(markup=_markup, extension=st.sampled_from([".html", ".xml", ".rss", ".atom", ".md"]))
def test_broken_markup(markup, extension):
    _load(markup.encode("utf-8", "surrogatepass"), extension)


@FUZZ
@given(text=_text, encoding=_encodings, extension=st.sampled_from(EXTENSIONS))
def test_odd_encodings(text, encoding, extension):
    document = f"---\ntitle: {text[:20]!r}\n---\n{text}\n\n{text}"
    _load(codecs.encode(document, encoding, errors="replace"), extension)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    unit=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
    repeat=st.integers(10_000, 60_000),
    extension=st.sampled_from(EXTENSIONS),
)
def test_huge_lines(unit, repeat, extension):
    line = unit * (repeat // len(unit))
    record = json.dumps({"title": "Huge", "body": line})
    data = record if extension == ".jsonl" else f"Huge title\n{line}\n"
    _load(data.encode("utf-8"), extension)


@FUZZ
@given(records=st.lists(_json_record | _json_value, max_size=5))
def test_json_lines_with_wrong_types(records):
    lines = "\n".join(json.dumps(r) for r in records)
    results = _load(lines.encode("utf-8", "surrogatepass"), ".jsonl")
    assert len(results) == len(records)  # one Article or one error per non-empty line


@FUZZ
@given(front_matter=_text, body=_text)
def test_arbitrary_front_matter(front_matter, body):
    _load(f"---\n{front_matter}\n---\n{body}".encode("utf-8", "surrogatepass"), ".md")
