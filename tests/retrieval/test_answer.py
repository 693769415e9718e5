"""Cited answers over the sample corpus, including the acceptance questions."""

import re
from datetime import UTC, datetime

import pytest

from retrieval.answer import NOT_FOUND, compose_answer, weigh_evidence
from retrieval.chunking import Chunk
from retrieval.search import Hit
from retrieval.text import question_terms

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


def test_a_name_unknown_to_the_corpus_means_no_answer():
    hits = [_hit("Vietnam and Peru held talks.", "a")]
    corpus = {"vietnam", "peru", "hold", "talk"}
    evidence = weigh_evidence(question_terms("Did Vietnam hold talks with China?"), hits, corpus)
    assert evidence.unknown_names == {"china"}
    assert not evidence.sufficient(threshold=0.5, max_missing_names=5)


def test_names_missing_from_the_passages_are_tolerated_up_to_a_limit():
    hits = [_hit("Vietnam and Peru held talks.", "a")]
    corpus = {"vietnam", "peru", "hold", "talk", "chile"}
    evidence = weigh_evidence(question_terms("Did Vietnam hold talks with Chile?"), hits, corpus)
    assert evidence.missing_names == {"chile"} and not evidence.unknown_names
    assert evidence.sufficient(threshold=0.5, max_missing_names=1)
    assert not evidence.sufficient(threshold=0.5, max_missing_names=0)


def test_content_coverage_is_the_share_of_other_words_found():
    hits = [_hit("Vietnam and Peru held talks.", "a")]
    evidence = weigh_evidence(question_terms("Did Vietnam hold talks about mining?"), hits)
    assert evidence.content_coverage == pytest.approx(2 / 3)


def test_a_capitalised_opening_word_is_not_a_name():
    terms = question_terms("Considering the talks, did Vietnam meet Peru?")
    assert "consid" in terms.content and "vietnam" in terms.names


def test_one_sentence_per_article_and_datelines_are_dropped_from_claims():
    hits = [
        _hit("Lima (VNA) – The port opened in Chancay. It was busy.", "a", 0.6),
        _hit("The port in Chancay opened with a ceremony.", "b", 0.5),
        _hit("Bread is baked daily.", "c", 0.4),
    ]
    answer = compose_answer("When did the Chancay port open?", hits)
    assert (
        answer.text
        == "The port opened in Chancay. [1] The port in Chancay opened with a ceremony. [2]"
    )
    assert [c.article_id for c in answer.citations] == ["a", "b"]
    assert answer.citations[0].snippet == "Lima (VNA) – The port opened in Chancay."


def test_no_hits_means_not_found():
    answer = compose_answer("Anything?", [])
    assert answer.abstained and answer.citations == ()
