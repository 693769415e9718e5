"""The official MultiHop-RAG retrieval metric, on hand-made rankings with known scores."""

import json

import pytest

from corpus.errors import ArticleError
from retrieval.answer import Answer, Citation
from retrieval.evaluation import (
    LabelledQuestion,
    evaluate,
    load_questions,
    score_answer,
    score_ranking,
)


def _q(*facts: str, kind: str = "comparison_query") -> LabelledQuestion:
    return LabelledQuestion("q", "question?", kind, facts)


def test_relevance_ignores_spaces_and_newlines_but_not_case():
    q = _q("The cat sat on the mat.")
    assert score_ranking(q, ["x", "…The  cat sat\non the\nmat. More"], False).hits10 == 1
    assert score_ranking(q, ["the cat sat on the mat."], False).hits10 == 0
    assert score_ranking(q, ["The cat sat on the\tmat."], False).hits10 == 0  # tabs are kept


def test_hits_mrr_and_the_authors_map():
    q = _q("fact one", "fact two", "fact three")
    ranking = ["no", "has fact two", "no", "no", "fact one and fact two"] + ["no"] * 5
    score = score_ranking(q, ranking, False)
    assert (score.hits4, score.hits10) == (1.0, 1.0)
    assert score.mrr10 == pytest.approx(1 / 2)
    # new facts at rank 2 (one) and rank 5 (one), over min(3 facts, 10)
    assert score.map10 == pytest.approx((1 / 2 + 1 / 5) / 3)


def test_only_the_first_ten_ranks_count():
    q = _q("needle")
    score = score_ranking(q, ["hay"] * 10 + ["needle"], False)
    assert (score.hits10, score.mrr10, score.map10) == (0.0, 0.0, 0.0)
    assert score_ranking(q, ["hay"] * 4 + ["needle"], False).hits4 == 0.0


def test_null_questions_only_count_towards_abstention():
    answerable, null = _q("fact"), _q(kind="null_query")
    report = evaluate([answerable, null], lambda query: (["a fact here"], False))
    summary = report.to_dict()
    assert summary["questions"] == 1 and summary["hits@10"] == 1.0
    assert (summary["null_abstained"], summary["answerable_abstained"]) == (0.0, 0.0)
    declined = evaluate([answerable, null], lambda query: ([], True)).to_dict()
    assert (declined["null_abstained"], declined["answerable_abstained"]) == (1.0, 1.0)


def test_questions_file_errors_name_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"query": "ok?", "evidence": []}) + "\n" + '{"no": "query"}\n')
    with pytest.raises(ArticleError, match=r"q\.jsonl:2"):
        load_questions(path)


def _answer(*snippets_and_urls: tuple[str, str], abstained: bool = False) -> Answer:
    citations = tuple(
        Citation(n, f"a{n}", "Title", "Wire", url, None, snippet, 0.5)
        for n, (snippet, url) in enumerate(snippets_and_urls, start=1)
    )
    return Answer("question?", "text", citations, abstained=abstained)


def test_an_answer_is_right_when_a_cited_snippet_holds_the_fact():
    q = LabelledQuestion("q", "?", "casual", ("the port cost $3.5 billion",), ("u1",))
    whole = _answer(("Officials said  the port\ncost $3.5 billion to build.", "u1"))
    assert score_answer(q, whole).right and score_answer(q, whole).first_right
    # A piece of the fact counts only from eight words on.
    nine_words = "one two three four five six seven eight nine"
    long_fact = LabelledQuestion("q", "?", "casual", (nine_words,), ("u1",))
    assert score_answer(
        long_fact, _answer(("two three four five six seven eight nine", "u1"))
    ).right
    assert not score_answer(
        long_fact, _answer(("three four five six seven eight nine", "u1"))
    ).right


def test_padding_is_citing_an_article_the_evidence_does_not_come_from():
    q = LabelledQuestion("q", "?", "casual", ("the fact",), ("u1",))
    score = score_answer(q, _answer(("no", "u2"), ("holds the fact", "u1")))
    assert score.right and not score.first_right and score.pads and score.cited_articles == 2
    assert not score_answer(q, _answer(("holds the fact", "u1"))).pads
    unknown_source = LabelledQuestion("q", "?", "casual", ("the fact",), ("",))
    assert not score_answer(unknown_source, _answer(("the fact", "u1"), ("x", "u2"))).pads


def test_answer_figures_are_reported_overall_and_per_type():
    right = LabelledQuestion("a", "a?", "casual", ("the fact",), ("u1",))
    wrong = LabelledQuestion("b", "b?", "keywords", ("other fact",), ("u1",))
    null = LabelledQuestion("c", "c?", "null_query", ())
    answers = {
        "a?": (["the fact"], _answer(("holds the fact", "u1"), ("padding", "u2"))),
        "b?": (["x"], _answer(abstained=True)),
        "c?": ([], _answer(abstained=True)),
    }
    report = evaluate([right, wrong, null], lambda query: answers[query])
    summary = report.to_dict()
    assert summary["answered_right"] == 0.5 and summary["declined"] == 0.5
    assert summary["padded"] == 1.0 and summary["cited_articles"] == 2.0
    assert summary["null_abstained"] == 1.0
    assert summary["by_type"]["casual"]["answered_right"] == 1.0
    assert summary["by_type"]["keywords"]["declined"] == 1.0
