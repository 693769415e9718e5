"""Dense search over the sample index and an article-heavy synthetic index."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.articles import Article
from corpus.errors import QuestionError
from retrieval.assistant import NewsAssistant
from retrieval.search import SearchConfig, Searcher, _Ranked
from retrieval.settings import RetrievalSettings
from retrieval.store.faiss_index import FaissIndex


def test_hits_are_ranked_by_score_and_carry_metadata(sample_assistant):
    hits = sample_assistant.search(
        "Grand Cross Order of Honour awarded by the Peruvian Congress", 4
    )
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "Grand Cross Order of Honour" in hits[0].chunk.text
    assert hits[0].chunk.url == "https://en.vietnamplus.vn/post-304001.vnp"


def test_no_article_fills_more_than_its_share(sample_index_dir, embedder):
    index = FaissIndex.open(sample_index_dir)
    try:
        for cap in (1, 2):
            hits = Searcher(index, embedder, SearchConfig(max_chunks_per_article=cap)).search(
                "Vietnam Peru relations", 10
            )
            per_article = {}
            for hit in hits:
                per_article[hit.chunk.article_id] = per_article.get(hit.chunk.article_id, 0) + 1
            assert max(per_article.values()) == cap
            assert len(hits) == 2 * cap
    finally:
        index.close()


def test_the_cap_lets_a_weaker_article_through(tmp_path, embedder):
    """Ten near-identical passages of one article must not hide a second article."""
    long_body = "\n\n".join(f"The Chancay port handled ship number {i} today." for i in range(60))
    settings = RetrievalSettings(
        index_dir=tmp_path / "i", chunk_size=20, chunk_overlap=0, top_k=3, max_chunks_per_article=2
    )
    assistant = NewsAssistant(settings, embedder=embedder)
    articles = tmp_path / "a.jsonl"
    articles.write_text(
        json.dumps({"title": "Port log", "body": long_body, "url": "https://x.org/log"})
        + "\n"
        + json.dumps(
            {
                "title": "Port opening",
                "body": "Peru opened the Chancay port.",
                "url": "https://x.org/open",
            }
        )
        + "\n"
    )
    assistant.ingest([articles])
    hits = assistant.search("Chancay port ships")
    assert {h.chunk.url for h in hits} == {"https://x.org/log", "https://x.org/open"}


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_questions_are_refused(sample_assistant, question):
    with pytest.raises(QuestionError, match="empty"):
        sample_assistant.ask(question)


def test_overlong_questions_are_refused_politely(sample_assistant):
    with pytest.raises(QuestionError, match=r"50,000 characters.*limit is 1,000"):
        sample_assistant.ask("x" * 50_000)


def test_article_is_a_frozen_value():
    article = Article(id="x", title="t", body="b")
    with pytest.raises(AttributeError):
        article.title = "changed"  # type: ignore[misc]


def test_a_batch_of_questions_finds_what_each_finds_alone(sample_assistant):
    questions = [
        "Who met whom in Lima?",
        "Grand Cross Order of Honour",
        "What did Luong Cuong and Eduardo Salhuana discuss?",
        "Who met whom in Lima?",
    ]
    together = sample_assistant.search_many(questions, 4)
    alone = [sample_assistant.search(q, 4) for q in questions]
    assert [[(h.row, h.score) for h in hits] for hits in together] == [
        [(h.row, h.score) for h in hits] for hits in alone
    ]
    assert all(together)


def test_a_batch_with_an_invalid_question_is_refused_whole(sample_assistant):
    with pytest.raises(QuestionError):
        sample_assistant.search_many(["Who met whom in Lima?", "   "])


class _RecordingEmbedder:
    """The real embedder, noting every text it is asked to embed."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.name, self.dimension = embedder.name, embedder.dimension
        self.texts: list[str] = []

    def embed_documents(self, texts, *, progress=False):
        self.texts.extend(texts)
        return self._embedder.embed_documents(texts, progress=progress)

    def embed_query(self, text):
        self.texts.append(text)
        return self._embedder.embed_query(text)


def test_a_split_question_is_embedded_once_and_still_finds_each_outlets_article(tmp_path, embedder):
    articles = tmp_path / "a.jsonl"
    rows = [
        ("TechCrunch", "Beeper Mini brings iMessage to Android phones for a monthly fee."),
        ("The Verge", "Apple blocked Beeper Mini from reaching its iMessage servers."),
        ("Fortune", "Sam Bankman-Fried was convicted of fraud by a jury in New York."),
    ]
    articles.write_text(
        "".join(
            json.dumps(
                {
                    "title": f"{source} story",
                    "body": body,
                    "source": source,
                    "url": f"https://x.org/{i}",
                }
            )
            + "\n"
            for i, (source, body) in enumerate(rows)
        )
    )
    NewsAssistant(RetrievalSettings(index_dir=tmp_path / "i"), embedder=embedder).ingest([articles])
    recording = _RecordingEmbedder(embedder)
    question = (
        "Did TechCrunch report that Beeper Mini brings iMessage to Android, "
        "while The Verge reported that Apple blocked it?"
    )
    index = FaissIndex.open(tmp_path / "i")
    try:
        searcher = Searcher(index, recording)
        parts = [part.text for part in searcher.plan(question).parts]
        hits = searcher.search(question, 2)
    finally:
        index.close()
    assert len(parts) == 2
    # The parts share the question's vector; BM25 and the outlet boosts tell them apart.
    assert recording.texts == [question]
    assert {hit.chunk.source for hit in hits} == {"TechCrunch", "The Verge"}


@settings(max_examples=200, deadline=None)
@given(
    rankings=st.lists(
        st.tuples(
            st.lists(st.integers(0, 30), unique=True, max_size=31),
            st.sampled_from([1.0, 0.5]),
        ),
        min_size=1,
        max_size=4,
    ),
    k=st.integers(1, 12),
    cap=st.integers(1, 3),
)
def test_the_merge_sums_rank_credit_and_breaks_ties_by_first_sighting(
    synthetic_index, embedder, rankings, k, cap
):
    """The merge as its docstring defines it, written plainly, against the vectorised one."""
    index, article_of = synthetic_index
    searcher = Searcher(index, embedder, SearchConfig(max_chunks_per_article=cap))
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows):
            fused[row] = fused.get(row, 0.0) + weight / (1 + rank)
    expected, taken = [], {}
    for row in sorted(fused, key=fused.__getitem__, reverse=True):  # stable: first seen first
        if taken.get(article_of[row], 0) < cap and len(expected) < k:
            taken[article_of[row]] = taken.get(article_of[row], 0) + 1
            expected.append((row, fused[row]))

    merged = searcher._merge(
        [
            (_Ranked(np.array(rows, np.int64), np.zeros(len(rows), np.float32)), weight)
            for rows, weight in rankings
        ],
        k,
        None,
    )
    assert [(hit.row, hit.score) for hit in merged] == expected


@pytest.fixture(scope="module")
def synthetic_index(tmp_path_factory, embedder):
    """31 one-sentence passages in 8 articles of 1 to 7 passages each."""
    directory = tmp_path_factory.mktemp("merge")
    sizes = [1, 7, 2, 6, 3, 5, 4, 3]
    lines = []
    for article, size in enumerate(sizes):
        body = "\n\n".join(
            f"Story {article}, paragraph {p}: the harbour of the town grew much busier."
            for p in range(size)
        )
        lines.append(
            json.dumps(
                {"title": f"Story {article}", "body": body, "url": f"https://x.org/{article}"}
            )
        )
    (directory / "a.jsonl").write_text("\n".join(lines) + "\n")
    settings_ = RetrievalSettings(index_dir=directory / "i", chunk_size=20, chunk_overlap=0)
    NewsAssistant(settings_, embedder=embedder).ingest([directory / "a.jsonl"])
    index = FaissIndex.open(directory / "i")
    assert len(index) == sum(sizes)  # a passage per paragraph
    chunks = index.chunks(list(range(len(index))))
    article_of = [chunk.article_id for chunk in chunks]
    yield index, article_of
    index.close()
