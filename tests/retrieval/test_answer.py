"""Cited answers over the sample corpus, including the acceptance questions."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corpus.errors import ConfigurationError
from retrieval.answer import NOT_FOUND, compose_answer
from retrieval.assistant import NewsAssistant
from retrieval.chunking import Chunk
from retrieval.search import Hit
from retrieval.selection import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    AnswerModel,
    expected_answer,
)
from retrieval.settings import RetrievalSettings
from retrieval.text import question_terms

CASES = Path(__file__).parents[1] / "data" / "answer-cases" / "corpus.jsonl"
TALKS_URL = "https://en.vietnamplus.vn/post-303979.vnp"
CONGRESS_URL = "https://en.vietnamplus.vn/post-304001.vnp"


def _claims(answer):
    """(claim text, n) for each ``claim [n]`` in the answer."""
    return [
        (m.group(1).strip(), int(m.group(2))) for m in re.finditer(r"(.+?)\s\[(\d+)\]", answer.text)
    ]


def test_who_met_whom_in_lima_names_both_meetings_and_cites_both_articles(sample_assistant):
    answer = sample_assistant.ask("Who met whom in Lima?")
    assert not answer.abstained
    for name in ("Luong Cuong", "Boluarte", "Eduardo Salhuana"):
        assert name in answer.text
    assert {c.url for c in answer.citations} == {TALKS_URL, CONGRESS_URL}
    by_n = {c.n: c for c in answer.citations}
    claims = _claims(answer)
    assert sorted(n for _, n in claims) == sorted(by_n)
    for claim, n in claims:
        assert claim.rstrip(".") in by_n[n].snippet, f"[{n}] does not support: {claim}"
    boluarte = next(c for c in answer.citations if "Boluarte" in c.snippet)
    salhuana = next(c for c in answer.citations if "Salhuana" in c.snippet)
    assert (boluarte.url, salhuana.url) == (TALKS_URL, CONGRESS_URL)
    assert all(c.published_date == "2024-11-14" and c.source for c in answer.citations)


@pytest.mark.parametrize(
    "question",
    [
        "What did Vietnam say about net-zero emissions?",
        "What did Vietnam say about emissions?",
        "What is the boiling point of mercury on Mars?",
        "How are relations between Vietnam and China?",
        "What did Vietnam's ambassador to Hungary say?",
    ],
)
def test_questions_the_corpus_cannot_answer_are_declined(sample_assistant, question):
    answer = sample_assistant.ask(question)
    assert answer.abstained
    assert answer.text == NOT_FOUND
    assert answer.citations == ()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What order did the Peruvian Congress award Luong Cuong?", "Grand Cross Order of Honour"),
        (
            "Where did Vietnam invite the Peruvian President to visit in 2025?",
            "visit Vietnam in 2025",
        ),
        ("Who is Eduardo Salhuana?", "President of the Congress of Peru"),
        # Details the article states next to sentences on the same topic.
        ("Which emerging fields did Cuong want to cooperate in?", "semiconductors"),
    ],
)
def test_specific_questions_cite_the_sentence_that_answers(sample_assistant, question, expected):
    answer = sample_assistant.ask(question)
    assert not answer.abstained
    assert expected in answer.citations[0].snippet


def test_timings_are_reported(sample_assistant):
    timings = sample_assistant.ask("Who met whom in Lima?").timings
    assert set(timings) == {"embed_ms", "search_ms", "compose_ms"}


def _hit(text: str, article: str, score: float = 0.5) -> Hit:
    chunk = Chunk(
        article,
        0,
        text,
        0,
        len(text),
        f"Title {article}",
        "Wire",
        None,
        datetime(2024, 1, 2, tzinfo=UTC),
    )
    return Hit(chunk, score, 0)


def test_a_capitalised_opening_word_is_not_a_name():
    terms = question_terms("Considering the talks, did Vietnam meet Peru?")
    assert "consid" in terms.content and "vietnam" in terms.names


# A model that answers by word coverage alone, so that claims and citations are predictable.
COVERAGE_ONLY = AnswerModel.from_dict(
    {
        "sentence": {
            "features": list(SENTENCE_FEATURES),
            "weights": [10.0 if f == "coverage" else 0.0 for f in SENTENCE_FEATURES],
            "bias": -5.0,
        },
        "question": {
            "features": list(QUESTION_FEATURES),
            "weights": [1.0 if f == "best_sentence" else 0.0 for f in QUESTION_FEATURES],
            "bias": 0.0,
        },
        "threshold": 0.5,
        "extra_share": 0.5,
        "extra_floor": 1.0,
    }
)


def test_each_answering_sentence_is_a_claim_and_datelines_are_dropped():
    hits = [
        _hit(
            "Lima (VNA) – The port opened in Chancay on Thursday after two years. It rained.", "a"
        ),
        _hit("The port in Chancay opened with a ceremony for the President of Peru.", "b"),
        _hit("Bread is baked daily in the old town by the river, as it always was.", "c"),
    ]
    answer = compose_answer("When did the Chancay port open?", hits, model=COVERAGE_ONLY)
    assert answer.text == (
        "The port opened in Chancay on Thursday after two years. [1] "
        "The port in Chancay opened with a ceremony for the President of Peru. [2]"
    )
    assert [c.article_id for c in answer.citations] == ["a", "b"]
    assert answer.citations[0].snippet.startswith("Lima (VNA) – The port opened")


def test_sentences_of_one_article_share_its_citation_in_the_articles_order():
    text = (
        "Ships from Shanghai will call at the new Chancay port from December onwards. "
        "Officials said little about the weather that week in the region. "
        "The Chancay port opened on Thursday with a ceremony attended by the President."
    )
    answer = compose_answer(
        "When did the Chancay port open?", [_hit(text, "a")], model=COVERAGE_ONLY
    )
    (citation,) = answer.citations
    assert answer.text.endswith("the President. [1]") and answer.text.count("[1]") == 1
    assert (
        citation.snippet.startswith("Ships from Shanghai")
        and " … The Chancay port" in citation.snippet
    )


def test_below_the_bar_it_declines():
    hits = [_hit("Bread is baked daily in the old town by the river, as it always was.", "c")]
    answer = compose_answer("When did the Chancay port open?", hits, model=COVERAGE_ONLY)
    assert answer.abstained and answer.text == NOT_FOUND


def test_no_hits_means_not_found():
    answer = compose_answer("Anything?", [])
    assert answer.abstained and answer.citations == ()


# -- failure classes, on a small corpus of five articles (tests/data/answer-cases) ------------


@pytest.fixture(scope="module")
def cases(tmp_path_factory, embedder):
    settings = RetrievalSettings(index_dir=tmp_path_factory.mktemp("answer-cases"))
    assistant = NewsAssistant(settings, embedder=embedder)
    assistant.ingest([CASES])
    yield assistant
    assistant.close()


def _cited(answer) -> str:
    return " | ".join(c.snippet for c in answer.citations)


def test_the_sentence_that_answers_beats_one_that_only_shares_words(cases):
    # "The port of Chancay was built by…" and "A new deep-water port opened in Chancay…"
    # share the question's rarest words; only one sentence says what it cost.
    answer = cases.ask("how much did the chancay port cost")
    assert not answer.abstained
    assert "$1.3 billion" in answer.citations[0].snippet, _cited(answer)


def test_an_unrelated_article_sharing_a_name_is_not_cited(cases):
    answer = cases.ask("Who did Patrick Kane sign with?")
    assert not answer.abstained
    assert "Detroit Red Wings" in answer.citations[0].snippet, _cited(answer)
    assert {c.url for c in answer.citations} == {"https://example.org/kane-signs"}


def test_a_misspelt_name_is_found(cases):
    answer = cases.ask("how much is patrik kanes new contract worth")
    assert not answer.abstained
    assert "$2.75 million" in _cited(answer)
    assert cases.index.lexical.query_terms("patrik kane") == ("patrick", "kane")


@pytest.mark.parametrize(
    "question",
    [
        "What is Patrick Kane's daughter called?",
        "who won the 2024 super bowl",
        "What did Mayor Lena Ortiz say about the new stadium?",
    ],
)
def test_a_question_the_articles_do_not_answer_is_declined(cases, question):
    answer = cases.ask(question)
    assert answer.abstained, _cited(answer)
    assert answer.text == NOT_FOUND and answer.citations == ()


def test_a_short_sentence_is_quoted_with_the_next_one_and_said_once(cases):
    answer = cases.ask("Who did Patrick Kane sign with?")
    first = answer.citations[0].snippet
    assert first.startswith("Patrick Kane has a new team. The three-time Stanley Cup champion")
    assert first.count("Detroit Red Wings") == 1


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("how many goals has harry kane scored", "number"),
        ("When did the bridge reopen?", "date"),
        ("who coaches dortmund", "person"),
        ("Where was the port built?", "place"),
        ("why are coffee prices rising", "other"),
    ],
)
def test_what_a_question_asks_for(question, kind):
    assert expected_answer(question) == kind


def test_an_unreadable_or_mismatched_answer_model_is_reported_clearly(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read the answer model"):
        AnswerModel.load(str(tmp_path / "missing.json"))
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read the answer model"):
        AnswerModel.load(str(garbled))
    other = tmp_path / "other.json"
    fitted = json.loads((Path(__file__).parents[2] / "retrieval" / "answer_model.json").read_text())
    fitted["sentence"]["features"] = ["similarity"]
    other.write_text(json.dumps(fitted))
    with pytest.raises(ConfigurationError, match="make fit-answers"):
        AnswerModel.load(str(other))
