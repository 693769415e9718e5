"""Cut the small MultiHop-RAG sample that the CI quality guard runs on (tests/data/multihop-sample).

Picks a fixed, seeded set of dev questions stratified by type, every article their evidence
cites, and a few unrelated articles as distractors. Run from the repository root:

    .venv/bin/python bench/make_eval_sample.py ../shared/eval/multihop-rag
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

PER_TYPE = {"comparison_query": 8, "inference_query": 8, "temporal_query": 6, "null_query": 4}
DISTRACTORS = 15
SEED = 20261123


def main(source: Path, target: Path) -> None:
    articles = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    questions = [json.loads(line) for line in (source / "dev-queries.jsonl").open(encoding="utf-8")]
    rng = random.Random(SEED)
    chosen = []
    for kind, count in PER_TYPE.items():
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
    print(f"{len(chosen)} questions, {len(sample)} articles ({DISTRACTORS} distractors): {target}")


if __name__ == "__main__":
    default_target = Path("tests/data/multihop-sample")
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else default_target)
