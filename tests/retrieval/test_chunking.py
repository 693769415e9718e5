import itertools
from datetime import UTC, datetime

import pytest

from corpus.articles import Article
from retrieval.chunking import chunk_article
from retrieval.text import words


def _article(body: str) -> Article:
    return Article(
        id="a1",
        title="Title here",
        body=body,
        url="https://example.com/a",
        source="Example",
        published=datetime(2024, 11, 14, tzinfo=UTC),
    )


def _sentence(i: int, n_words: int = 10) -> str:
    return f"Word{i} " + " ".join([f"word{i}"] * (n_words - 2)) + " end."


def test_chunks_are_exact_slices_within_the_word_budget():
    body = "\n\n".join(" ".join(_sentence(p * 10 + s) for s in range(4)) for p in range(6))
    chunks = chunk_article(_article(body), max_size=35, overlap=10)
    assert len(chunks) > 3
    for chunk in chunks:
        assert body[chunk.start : chunk.end] == chunk.text
        assert len(words(chunk.text)) <= 35
        assert chunk.text[0] == "W" and chunk.text.endswith("end.")  # whole sentences
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_by_whole_sentences():
    body = " ".join(_sentence(i) for i in range(12))
    chunks = chunk_article(_article(body), max_size=40, overlap=10)
    for first, second in itertools.pairwise(chunks):
        assert second.start < first.end, "expected the next chunk to repeat the last sentence"
        assert first.text.endswith(body[second.start : first.end])


def test_no_overlap_when_asked():
    body = " ".join(_sentence(i) for i in range(12))
    chunks = chunk_article(_article(body), max_size=40, overlap=0)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    assert "".join(c.text for c in chunks).replace(" ", "") == body.replace(" ", "")


def test_a_sentence_longer_than_the_budget_is_cut_at_word_boundaries():
    body = " ".join(f"w{i}" for i in range(100)) + "."
    chunks = chunk_article(_article(body), max_size=30, overlap=5)
    assert all(len(words(c.text)) <= 30 for c in chunks)
    assert {w for c in chunks for w in words(c.text)} == set(words(body))


def test_chunks_carry_the_article_metadata_and_a_context_header():
    chunk = chunk_article(_article("One sentence here. Another one."), max_size=50, overlap=5)[0]
    assert (chunk.article_id, chunk.title, chunk.source, chunk.url) == (
        "a1",
        "Title here",
        "Example",
        "https://example.com/a",
    )
    assert chunk.header == "Title here | Example | 2024-11-14"
    assert chunk.embedding_text.startswith("Title here\n")


def test_overlap_must_be_smaller_than_the_chunk():
    with pytest.raises(ValueError):
        chunk_article(_article("x."), max_size=10, overlap=10)


def test_passages_fit_the_embedding_models_input_in_word_pieces(embedder):
    # Numbers and rare names split into many word pieces: counted in words, this text
    # would overflow the model's 256-piece input and lose its tail to truncation.
    long_sentence = " ".join(f"X{i:05d}-Ω{i}" for i in range(150)) + "."
    body = " ".join(_sentence(i, 25) for i in range(40)) + "\n\n" + long_sentence
    budget = embedder.max_tokens
    chunks = chunk_article(
        _article(body), max_size=budget, overlap=40, measure=embedder.count_tokens
    )
    sizes = embedder.count_tokens([c.embedding_text for c in chunks])
    assert max(sizes) <= budget
    assert min(sizes[:-3]) > budget * 0.7, "passages should use most of the model's input"
    assert "".join(words(c.text)[-1] for c in chunks[-1:]) == words(long_sentence)[-1]
