"""Cut the small samples the CI quality guards run on (tests/data/multihop-sample and
tests/data/natural-sample).

Picks a fixed, seeded set of dev questions stratified by type, every article their evidence
cites, and a few unrelated articles as distractors. Run from the repository root:

    .venv/bin/python bench/make_eval_sample.py ../shared/eval/multihop-rag
    .venv/bin/python bench/make_eval_sample.py ../shared/eval/multihop-rag \
        tests/data/natural-sample ../shared/eval/natural-questions/dev.jsonl
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

PER_TYPE = {"comparison_query": 8, "inference_query": 8, "temporal_query": 6, "null_query": 4}
# The natural questions: single-hop, six styles of 20 each and 30 null ones in the dev set.
NATURAL_PER_TYPE = {
    "casual": 5,
    "keywords": 5,
    "lowercase_typo": 5,
    "paraphrase": 5,
    "followup_free": 5,
    "entity_long_tail": 5,
    "null_query": 10,
}
DISTRACTORS = 15
SEED = 20261123


def main(source: Path, target: Path, questions_file: Path | None = None) -> None:
    articles = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    questions_file = questions_file or source / "dev-queries.jsonl"
    questions = [json.loads(line) for line in questions_file.open(encoding="utf-8")]
    per_type = PER_TYPE if questions_file.name == "dev-queries.jsonl" else NATURAL_PER_TYPE
    rng = random.Random(SEED)
    chosen = []
    for kind, count in per_type.items():
        pool = [q for q in questions if q["question_type"] == kind]
        chosen += rng.sample(pool, count)
    needed = {e["url"] for q in chosen for e in q["evidence"]}
    sample = [a for a in articles if a["url"] in needed]
    others = [a for a in articles if a["url"] not in needed]
    sample += rng.sample(others, DISTRACTORS)
    sample.sort(key=lambda a: a["id"])

    target.mkdir(parents=True, exist_ok=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for article in sample:
            f.write(json.dumps(article, ensure_ascii=False) + "\n")
    with (target / "questions.jsonl").open("w", encoding="utf-8") as f:
        for question in chosen:
            f.write(json.dumps(question, ensure_ascii=False) + "\n")
    shutil.copy(source / "README.md", target / "DATASET-README.md")
    if questions_file.parent != source:
        shutil.copy(questions_file.parent / "README.md", target / "QUESTIONS-README.md")
    print(f"{len(chosen)} questions, {len(sample)} articles ({DISTRACTORS} distractors): {target}")


if __name__ == "__main__":
    default_target = Path("tests/data/multihop-sample")
    main(
        Path(sys.argv[1]),
        Path(sys.argv[2]) if len(sys.argv) > 2 else default_target,
        Path(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
