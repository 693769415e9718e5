"""The official MultiHop-RAG retrieval metric, on hand-made rankings with known scores."""

import json

import pytest

from corpus.errors import ArticleError
from retrieval.evaluation import LabelledQuestion, evaluate, load_questions, score_ranking


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
