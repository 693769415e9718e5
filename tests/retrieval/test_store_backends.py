"""The retrieval acceptance suite on both stores: FAISS + files, and PostgreSQL + pgvector.

Everything above the store (question reading, fusion, rerank, abstention, answers) is the
same code, so the same questions must get the same answers from either backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from corpus import Article, load_path, sample_corpus_dir
from corpus.errors import IndexStoreError
from retrieval.assistant import NewsAssistant
from retrieval.ingest import update_index
from retrieval.settings import RetrievalSettings
from retrieval.store import copy_store, open_backend
from retrieval.store.faiss_index import FaissIndex

DATA = Path(__file__).resolve().parents[1] / "data"
MULTIHOP_ALL = DATA / "multihop-sample" / "corpus.jsonl"


@pytest.fixture(scope="module")
def multihop(tmp_path_factory) -> Path:
    """A dozen of the MultiHop-RAG sample's articles: enough to rank, quick to embed."""
    path = tmp_path_factory.mktemp("multihop") / "twelve.jsonl"
    path.write_text("\n".join(MULTIHOP_ALL.read_text().splitlines()[:12]) + "\n")
    return path


def _settings(request: pytest.FixtureRequest, tmp_path: Path, **overrides) -> RetrievalSettings:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        return RetrievalSettings(
            store="postgres", database_url=url, index_dir=tmp_path / "local", **overrides
        )
    return RetrievalSettings(index_dir=tmp_path / "index", **overrides)


@pytest.fixture(params=["faiss", "postgres"])
def store_settings(request, tmp_path) -> RetrievalSettings:
    """Settings for an empty store of each backend (the PostgreSQL one a fresh database)."""
    return _settings(request, tmp_path, ingest_batch_articles=2, index_reload_seconds=0)


@pytest.fixture
def assistant(store_settings, embedder) -> Iterator[NewsAssistant]:
    assistant = NewsAssistant(store_settings, embedder=embedder)
    yield assistant
    assistant.close()


def _articles(path: Path) -> list[Article]:
    return [a for a in load_path(path) if isinstance(a, Article)]


def test_lima_question_cites_both_meetings(assistant):
    assistant.ingest([sample_corpus_dir()])

    answer = assistant.ask("Who met whom in Lima?")

    assert not answer.abstained
    assert "Salhuana" in answer.text and "Boluarte" in answer.text
    assert len({c.article_id for c in answer.citations}) == 2


def test_a_question_the_corpus_cannot_answer_is_declined(assistant):
    assistant.ingest([sample_corpus_dir()])

    answer = assistant.ask("What is the boiling point of mercury on Mars?")

    assert answer.abstained and answer.citations == ()


def test_ingest_is_incremental_and_skips_duplicates(assistant, store_settings, tmp_path):
    lines = MULTIHOP_ALL.read_text().splitlines()
    (tmp_path / "first.jsonl").write_text("\n".join(lines[:4]) + "\n")
    (tmp_path / "more.jsonl").write_text("\n".join(lines[2:7]) + "\n")

    first = assistant.ingest([tmp_path / "first.jsonl"])
    again = assistant.ingest([tmp_path / "more.jsonl"])

    assert (first.added, first.commits) == (4, 2)  # batches of 2
    assert (again.added, again.duplicates) == (3, 2)
    manifest = assistant.manifest_now()
    assert manifest is not None and manifest.article_count == 7
    index = assistant.open_index()
    assert len(index) == manifest.chunk_count == len(list(index.all_chunks()))
    index.close()


def test_an_updated_article_replaces_its_passages(assistant, store_settings, embedder, multihop):
    assistant.ingest([multihop])
    story = _articles(multihop)[3]
    changed = dataclasses.replace(
        story, body=story.body + "\n\nUpdate: the quokka sanctuary in Perth reopened on Friday."
    )

    report = update_index(store_settings, embedder, add=[changed])

    assert (report.added, report.removed) == (1, 1)
    index = assistant.open_index()
    assert index.article(story.id).body == changed.body
    assert index.manifest.article_count == len(_articles(multihop))
    index.close()
    hits = assistant.search("Where did the quokka sanctuary reopen?", 3)
    assert hits[0].chunk.article_id == story.id
    assert "quokka" in " ".join(h.chunk.text for h in hits if h.chunk.article_id == story.id)


def test_removed_articles_are_never_found_again(assistant, store_settings, embedder, multihop):
    assistant.ingest([multihop])
    articles = _articles(multihop)
    gone = articles[0]
    assert assistant.search(gone.title, 3)[0].chunk.article_id == gone.id

    update_index(store_settings, embedder, remove=[gone.id])

    index = assistant.open_index()
    assert not index.has_article(gone.id)
    assert index.manifest.article_count == len(articles) - 1
    index.close()
    assert all(h.chunk.article_id != gone.id for h in assistant.search(gone.title, 10))


@pytest.fixture(scope="module")
def both(
    tmp_path_factory, embedder, multihop, module_postgres_database
) -> Iterator[tuple[NewsAssistant, NewsAssistant]]:
    """The multihop sample in a FAISS index and copied into PostgreSQL (built once for the
    module: the tests using it only read)."""
    tmp_path = tmp_path_factory.mktemp("both")
    faiss = NewsAssistant(RetrievalSettings(index_dir=tmp_path / "faiss"), embedder=embedder)
    faiss.ingest([multihop])
    url = module_postgres_database
    settings = RetrievalSettings(store="postgres", database_url=url, index_dir=tmp_path / "pg")
    with contextlib.closing(open_backend(settings)) as backend:
        source = faiss.open_index()
        copy_store(source, backend)
        source.close()
    postgres = NewsAssistant(settings, embedder=embedder)
    yield faiss, postgres
    faiss.close()
    postgres.close()


def test_both_backends_rank_passages_alike(both):
    faiss, postgres = both
    questions = [
        json.loads(line)["query"]
        for line in (DATA / "multihop-sample" / "questions.jsonl").read_text().splitlines()
    ] + [  # date filters: only passages published then (or naming the time) are candidates
        "What did TechCrunch report about Google in November 2023?",
        "What happened to Sam Bankman-Fried in early October 2023?",
        "Latest news about Epic Games",
    ]

    same_top = same_set = 0
    for question in questions:
        a = [h.chunk.article_id for h in faiss.search(question, 10)]
        b = [h.chunk.article_id for h in postgres.search(question, 10)]
        same_top += a[:1] == b[:1]
        same_set += set(a) == set(b)

    assert same_top == len(questions)
    assert same_set >= len(questions) - 1


def test_copying_to_postgres_and_back_keeps_every_passage_and_vector(both, tmp_path):
    faiss, postgres = both
    source, copy = faiss.open_index(), postgres.open_index()
    back_settings = RetrievalSettings(index_dir=tmp_path / "back")
    with contextlib.closing(open_backend(back_settings)) as backend:
        report = copy_store(copy, backend)
    back = open_backend(back_settings).open()

    for store in (copy, back):
        assert store.article_ids() == source.article_ids()
        assert len(store) == len(source) == report.passages
        assert [c.text for c in store.all_chunks()] == [c.text for c in source.all_chunks()]
        rows = list(range(len(source)))
        # halfvec keeps 16-bit floats: cosines move by well under 0.01
        assert np.abs(store.vectors(rows) - source.vectors(rows)).max() < 2e-3
        assert all(
            np.array_equal(store.sentences.vectors(r), source.sentences.vectors(r)) for r in rows
        )
    for store in (source, copy, back):
        store.close()


def test_a_refresh_is_skipped_while_another_process_refreshes(store_settings, embedder):
    from retrieval.refresh import refresh

    with contextlib.closing(open_backend(store_settings)) as other:
        with other.lease("refresh") as mine:
            assert mine
            # Nothing listens there: a round that ran would report a failed fetch.
            report = refresh(["http://127.0.0.1:9/feed.xml"], store_settings, embedder)
        assert report.skipped and report.fetches == 0 and report.failed == ()
        with other.lease("refresh") as mine_again:  # let go: the next round may run
            assert mine_again


def test_the_bots_refresh_rounds_share_its_store_and_leave_it_open(assistant, store_settings):
    """Refresh runs on the bot's own backend (one pool, not one per step of a round): after
    two rounds the bot still answers from it, the new story included."""
    from tests.web.fake_web import FakeSite, Page, article_page, rss

    story = article_page(
        "Harbour bridge reopens after repairs",
        [
            "The harbour bridge reopened to traffic on Tuesday, six months after cracks in "
            "two support piers forced the city to close it.",
            "Engineers replaced both piers at a cost of 48 million dollars.",
        ],
        published="2024-05-14T09:00:00Z",
    )
    with FakeSite() as site:
        site.pages["/news/bridge"] = Page(story)
        site.pages["/rss.xml"] = Page(
            rss([{"title": "Bridge", "link": site.url("/news/bridge")}]), "application/rss+xml"
        )
        assistant.ingest([sample_corpus_dir()])
        first = assistant.refresh([site.url("/rss.xml")], expire=False)
        second = assistant.refresh([site.url("/rss.xml")], expire=False)

    assert first.added == ("Harbour bridge reopens after repairs",)
    assert second.added == () and not second.skipped  # the feed had not changed
    answer = assistant.ask("How much did the harbour bridge repairs cost?")
    assert "48 million dollars" in answer.text
    assert assistant.ask("Who met whom in Lima?").citations  # the older articles too


def _bm25_by_passage(store, question: str) -> dict[tuple[str, int], float]:
    scores = store.lexical.query(question)
    rows = scores.matching()
    return {
        (c.article_id, c.position): float(score)
        for c, score in zip(store.chunks(rows.tolist()), scores.at(rows), strict=True)
    }


@pytest.mark.parametrize("postings_mb", [0, 64])
def test_bm25_scores_stay_those_of_faiss_while_the_store_changes(
    postings_mb, tmp_path, embedder, multihop, postgres_database, monkeypatch
):
    """A process keeps the postings it read across generations (``pg_postings``): after
    articles are added, removed and replaced, every passage's BM25 score is still exactly
    the FAISS backend's, with no memory for postings (0 MB) or room for all of them."""
    from retrieval.store import pg_postings

    monkeypatch.setattr(pg_postings, "PREFETCH_MIN_DOCUMENTS", 2)  # a small corpus's heavy
    articles = _articles(multihop)
    changed = dataclasses.replace(
        articles[1], body=articles[1].body + "\n\nThe quokka sanctuary reopened on Friday."
    )
    faiss_settings = RetrievalSettings(index_dir=tmp_path / "faiss")
    pg_settings = RetrievalSettings(
        store="postgres",
        database_url=postgres_database,
        index_dir=tmp_path / "pg",
        postgres_postings_mb=postings_mb,
    )
    questions = [
        articles[0].title,
        "Which company reported quarterly revenue growth and what did analysts say?",
        "Where did the quokka sanctuary reopen?",
    ]
    steps = [
        {"add": articles[:6]},
        {"add": articles[6:9], "remove": {articles[0].id}},
        {"add": [changed]},
    ]
    with contextlib.closing(open_backend(pg_settings)) as pg:  # one process, all generations
        for step in steps:
            update_index(faiss_settings, embedder, **step)
            update_index(pg_settings, embedder, backend=pg, **step)
            faiss_store, pg_store = FaissIndex.open(faiss_settings.index_dir), pg.open()
            pg_store.lexical.prefetch()
            for question in questions:
                expected = _bm25_by_passage(faiss_store, question)
                found = _bm25_by_passage(pg_store, question)
                assert found.keys() == expected.keys()
                assert all(abs(found[p] - expected[p]) < 1e-4 for p in expected)
            faiss_store.close()
            pg_store.close()
            assert pg.postings.held <= pg.postings.budget
        assert any(key[0] == changed.id for key in found)  # the quokka question finds it


def test_sentences_asked_for_more_rows_than_the_cache_holds(both, monkeypatch):
    from retrieval.store import postgres

    faiss, pg = both
    monkeypatch.setattr(postgres, "_SENTENCE_CACHE", 3)
    source, copy = faiss.open_index(), pg.open_index()
    rows = list(range(len(source)))

    found = [copy.sentences.sentences(r) for r in rows]
    best = copy.sentences.best_similarities(rows, source.vectors([0])[0])

    assert found == [source.sentences.sentences(r) for r in rows]
    assert np.allclose(best, source.sentences.best_similarities(rows, source.vectors([0])[0]))
    source.close()
    copy.close()


def test_a_commit_that_fails_midway_leaves_the_postgres_store_as_it_was(
    tmp_path, embedder, postgres_database
):
    from retrieval.store import NewContent

    settings = RetrievalSettings(
        store="postgres", database_url=postgres_database, index_dir=tmp_path
    )
    assistant = NewsAssistant(settings, embedder=embedder)
    assistant.ingest([sample_corpus_dir()])
    story = _articles(MULTIHOP_ALL)[0]
    backend = open_backend(settings)
    before = backend.open()
    chunks = list(before.all_chunks())[:2]
    clash = [dataclasses.replace(c, article_id=story.id, position=0) for c in chunks]
    vectors = before.vectors([0, 1])

    # The new article's two passages share a position: the database refuses the second one
    # after the removal and the article rows of the same commit were written.
    with pytest.raises(IndexStoreError, match="rolled back"):
        backend.commit(
            NewContent.with_passage_vectors([story], clash, vectors),
            base=before,
            model=before.manifest.model,
            dimension=before.manifest.dimension,
            chunk_size=before.manifest.chunk_size,
            chunk_overlap=before.manifest.chunk_overlap,
            remove=[chunks[0].article_id],
        )

    after = backend.open()
    assert after.manifest == before.manifest
    assert after.article_ids() == before.article_ids() and not after.has_article(story.id)
    answer = assistant.ask("Who met whom in Lima?")
    assert "Salhuana" in answer.text and "Boluarte" in answer.text
    backend.close()
    assistant.close()


def _index_favoured(both):
    """The PostgreSQL copy through connections whose planner favours the HNSW index: sorts
    and sequential scans off, HNSW looking at one candidate."""
    url = both[1].settings.database_url.get_secret_value()
    options = "-c enable_seqscan=off -c enable_sort=off -c hnsw.ef_search=1"
    return open_backend(
        RetrievalSettings(
            store="postgres", database_url=f"{url} options='{options}'", index_dir=Path("unused")
        )
    )


def _exact_top(source, among: np.ndarray, query: np.ndarray, k: int = 10) -> list[int]:
    """The ``k`` rows of ``among`` nearest ``query``, by every cosine."""
    return among[np.argsort(-(source.vectors(among.tolist()) @ query))[:k]].tolist()


def test_a_small_filter_is_searched_exactly_even_where_the_planner_likes_the_index(both):
    """With sorts and sequential scans off and HNSW looking at one candidate, an ORDER BY …
    LIMIT that the planner served from the HNSW index would return one passage, or none
    (the first exact query returned none for a filter of every third passage)."""
    faiss, _ = both
    source = faiss.open_index()
    with contextlib.closing(_index_favoured(both)) as backend:
        store = backend.open()
        among = np.arange(0, len(source), 5)  # spread over every day: read by id
        query = source.vectors([1])[0]
        assert "id = ANY" in store.nearest_statement(query, 10, among)[1]

        rows, _ = store.nearest(query, 10, among=among)

        assert rows.tolist() == _exact_top(source, among, query)
    source.close()


@pytest.mark.parametrize("allowed", ["every third", "the oldest half"])
def test_a_large_filter_keeps_the_nearest_allowed_passages(both, allowed, monkeypatch):
    """A filter too large to score exactly is searched through HNSW, the allowed passages
    passed as a bitmap of ids; one that stops short of the newest passages must not fail
    on them (a bit past the end of the bitmap)."""
    from retrieval.store import postgres

    monkeypatch.setattr(postgres, "EXACT_SCAN_UP_TO", 0)
    faiss, pg = both
    source, store = faiss.open_index(), pg.open_index()
    n = len(source)
    among = np.arange(0, n, 3) if allowed == "every third" else np.arange(n // 2)
    for query_row in (1, n - 1):
        query = source.vectors([query_row])[0]

        rows, _ = store.nearest(query, 10, among=among)

        assert rows.tolist() == _exact_top(source, among, query)
    source.close()
    store.close()


def _week_of_passages(store) -> np.ndarray:
    """The rows of the seven days holding the most passages of the store."""
    days = store.row_metadata().published_days
    first = max(set(days.tolist()), key=lambda d: int(np.sum((days >= d) & (days < d + 7))))
    return np.flatnonzero((days >= first) & (days < first + 7))


@pytest.mark.parametrize(
    "allowed", ["a week", "every other passage of a week", "its first and last days"]
)
def test_a_dated_filter_is_searched_exactly_by_its_days(both, allowed):
    """A date filter's passages are read by their day of publication, each checked against
    the filter: passages of those days the filter leaves out stay out, and days between two
    it allows are not read. Planner settings that favour the HNSW index must not change the
    answer (as for a small filter)."""
    faiss, _ = both
    source = faiss.open_index()
    week = _week_of_passages(source)
    days = source.row_metadata().published_days
    among = {
        "a week": week,
        "every other passage of a week": week[::2],
        "its first and last days": week[np.isin(days[week], [days[week].min(), days[week].max()])],
    }[allowed]
    assert 0 < len(among) < len(source) // 2
    assert len(np.unique(days[among])) > 1  # more than one day's part of the index is read
    with contextlib.closing(_index_favoured(both)) as backend:
        store = backend.open()
        for query_row in (int(among[0]), 0, len(source) - 1):
            query = source.vectors([query_row])[0]
            assert "published_day" in store.nearest_statement(query, 10, among)[1]

            rows, _ = store.nearest(query, 10, among=among)

            assert rows.tolist() == _exact_top(source, among, query)
    source.close()


def test_a_store_from_before_publication_days_is_migrated(both, postgres_database):
    """A database written before passages carried their day of publication (schema 1) gets
    them from its articles on `newsbot db migrate`, keeps its HNSW index, and its dated
    filters find the same passages as a store written since."""
    from retrieval.store.postgres import migrate

    faiss, _ = both
    source = faiss.open_index()
    settings = RetrievalSettings(
        store="postgres", database_url=postgres_database, index_dir=Path("unused")
    )
    with contextlib.closing(open_backend(settings)) as backend:
        copy_store(source, backend)
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        written = conn.execute("SELECT id, published_day FROM passages ORDER BY id").fetchall()
        for statement in (  # schema 1, as it was
            "DROP INDEX passages_by_day",
            "ALTER TABLE passages DROP COLUMN published_day",
            "ALTER TABLE passages ALTER COLUMN embedding SET STORAGE EXTERNAL",
            "ALTER TABLE passages RESET (toast_tuple_target)",
            "UPDATE newsbot_schema SET version = 1 WHERE component = 'store'",
        ):
            conn.execute(statement)

    assert migrate(postgres_database) == (1, 2)

    with psycopg.connect(postgres_database) as conn:
        assert conn.execute("SELECT id, published_day FROM passages ORDER BY id").fetchall() == (
            written
        )
        assert all(day for _, day in written)  # the sample's articles are all dated
        (storage,) = conn.execute(
            "SELECT attstorage FROM pg_attribute "
            "WHERE attrelid = 'passages'::regclass AND attname = 'embedding'"
        ).fetchone()
        assert storage == "m"  # embeddings kept in the row, not moved out to TOAST
        assert conn.execute("SELECT to_regclass('passages_by_embedding')").fetchone()[0]
    with contextlib.closing(open_backend(settings)) as backend:
        store = backend.open()
        among = _week_of_passages(source)
        query = source.vectors([int(among[0])])[0]
        rows, _ = store.nearest(query, 10, among=among)
        assert rows.tolist() == _exact_top(source, among, query)
        unfiltered, _ = store.nearest(query, 5)
        assert unfiltered[0] == among[0]
    source.close()
