"""CI guard: retrieval quality on a fixed MultiHop-RAG sample must not fall below the README.

The sample (tests/data/multihop-sample) is indexed with the real model; the figures it must
reach are read from the README's "CI quality guard" line.
"""

import pytest

GUARD = "CI quality guard"
TOLERANCE = 0.05  # one question in this sample is worth 0.045


@pytest.fixture(scope="module")
def report(sample_report):
    return sample_report("multihop-sample")


@pytest.mark.parametrize("metric", ["Hits@10", "Hits@4", "MRR@10"])
def test_retrieval_holds_the_level_the_readme_states(report, readme_figure, metric):
    assert report[metric.lower()] >= readme_figure(GUARD, metric) - TOLERANCE, report


def test_abstention_declines_nulls_without_refusing_answerable_questions(report, readme_figure):
    assert report["null_abstained"] >= readme_figure(GUARD, "null declined") - 0.25, report
    assert report["answerable_abstained"] <= 0.15, report  # 2 of 22 today
