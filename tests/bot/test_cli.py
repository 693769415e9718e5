"""The newsbot command, driven as a user drives it: exit codes, output, JSON contracts."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import cli

DATA = Path(__file__).parents[1] / "data"
LIMA = "Who met whom in Lima?"


def _env(index_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    return {**env, "NEWSBOT_INDEX_DIR": str(index_dir), **extra}


def _run(*args: str, index_dir: Path, cwd: Path, stdin: str | None = None, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(index_dir, **env),
        timeout=300,
    )


# -- in a fresh process ------------------------------------------------------------------


def test_first_ask_indexes_the_sample_corpus_and_answers_with_citations(tmp_path):
    index_dir = tmp_path / "index"
    result = _run("ask", LIMA, "--json", index_dir=index_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "indexing the built-in sample corpus" in result.stderr
    payload = json.loads(result.stdout)  # exactly one JSON object
    assert set(payload) == {
        "question",
        "answer",
        "abstained",
        "citations",
        "time_ranges",
        "mode",
        "dropped",
        "llm_fallback",
    }
    assert payload["time_ranges"] == []  # the question names no time
    # No LLM configured: the extractive answer, and nothing tried.
    assert (payload["mode"], payload["dropped"], payload["llm_fallback"]) == (
        "extractive",
        [],
        None,
    )
    assert payload["abstained"] is False
    for name in ("Luong Cuong", "Boluarte", "Salhuana"):
        assert name in payload["answer"]
    assert len(payload["citations"]) == 2
    for citation in payload["citations"]:
        assert set(citation) == {
            "n",
            "article_id",
            "title",
            "source",
            "url",
            "published",
            "snippet",
            "score",
        }
        assert f"[{citation['n']}]" in payload["answer"]
        assert citation["published"] == "2024-11-14"

    text = _run("ask", LIMA, index_dir=index_dir, cwd=tmp_path)
    assert text.returncode == 0 and text.stderr == ""
    assert "\nSources\n" in text.stdout
    assert (
        "[1] Parliamentary cooperation – a key pillar of Vietnam-Peru relations: leaders — "
        "VietnamPlus (VNA), 2024-11-14 — https://en.vietnamplus.vn/post-304001.vnp"
    ) in text.stdout


def test_help_is_fast_because_it_loads_no_model():
    code = (
        "import sys; from bot.cli import cli\n"
        "try: cli(['--help'], prog_name='newsbot')\n"
        "except SystemExit: pass\n"
        "heavy = ('torch', 'faiss', 'sentence_transformers')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "ingest" in result.stdout and "ask" in result.stdout and "export" in result.stdout
    assert "LOADED []" in result.stdout


def test_a_damaged_index_is_reported_in_one_line_and_left_alone(writable_sample_index, tmp_path):
    manifest = json.loads((writable_sample_index / "manifest.json").read_text())
    vectors = writable_sample_index / manifest["generation"] / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:1000])
    before = vectors.read_bytes()
    result = _run("ask", LIMA, index_dir=writable_sample_index, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "damaged" in lines[0] and "newsbot ingest --rebuild" in lines[0]
    assert vectors.read_bytes() == before


def test_search_reads_one_question_per_line_from_stdin(sample_index_dir, tmp_path):
    questions = "Who met whom in Lima?\n\nGrand Cross Order of Honour\nAPEC 2024\n"
    result = _run(
        "search",
        "--json",
        "--top-k",
        "3",
        index_dir=sample_index_dir,
        cwd=tmp_path,
        stdin=questions,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"] for line in lines] == [
        "Who met whom in Lima?",
        "Grand Cross Order of Honour",
        "APEC 2024",
    ]
    for line in lines:
        assert [h["rank"] for h in line["hits"]] == [1, 2, 3]
        assert set(line["hits"][0]) == {
            "rank",
            "article_id",
            "title",
            "url",
            "published",
            "text",
            "score",
        }
    assert "Grand Cross Order of Honour" in lines[1]["hits"][0]["text"]


def test_search_reports_a_bad_line_and_still_answers_the_rest(sample_index_dir, tmp_path):
    questions = f"Who met whom in Lima?\n{'Lima ' * 2000}\nAPEC 2024\n"
    result = _run("search", "--json", index_dir=sample_index_dir, cwd=tmp_path, stdin=questions)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [bool(line["hits"]) for line in lines] == [True, False, True]
    assert "the limit is 1,000" in lines[1]["error"] and "error" not in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stderr.count("newsbot: error:") == 1


def test_search_answers_each_line_before_the_next_arrives(sample_index_dir, tmp_path):
    """A program that writes a question and waits for its answer is not kept waiting."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "search", "--json", "--top-k", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(sample_index_dir),
    )
    try:
        answers = []
        for question in ("Who met whom in Lima?", "Grand Cross Order of Honour"):
            process.stdin.write(question + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 120)
            assert ready, f"no answer to {question!r} while stdin stays open"
            answers.append(json.loads(process.stdout.readline()))
        process.stdin.close()
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        process.kill()
    assert [a["query"] for a in answers] == ["Who met whom in Lima?", "Grand Cross Order of Honour"]
    assert "Grand Cross Order of Honour" in answers[1]["hits"][0]["text"]


# -- in-process --------------------------------------------------------------------------


def test_ingest_prints_a_summary_with_rejections(runner, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": 5, "body": "x"}\n')
    index = str(tmp_path / "index")
    result = runner.invoke(
        cli, ["ingest", str(DATA / "extra-article.md"), str(bad), "--index", index]
    )
    assert result.exit_code == 0, result.output
    assert "Added 1 articles" in result.output and "rejected 1" in result.output
    assert "bad.jsonl:1" in result.output
    again = runner.invoke(cli, ["ingest", str(DATA / "extra-article.md"), "--index", index])
    assert "Added 0 articles" in again.output and "skipped 1 already indexed" in again.output


def test_ingest_of_a_missing_path_fails_clearly(runner, tmp_path):
    result = runner.invoke(cli, ["ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1
    assert "newsbot: error:" in result.output and "nope" in result.output


def test_export_then_ingest_gives_the_same_articles_back(runner, sample_index_dir, tmp_path):
    out = tmp_path / "export.jsonl"
    exported = runner.invoke(
        cli, ["export", "--index", str(sample_index_dir), "--output", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and all("See more" not in r["body"] for r in records)

    rebuilt = tmp_path / "rebuilt"
    assert runner.invoke(cli, ["ingest", str(out), "--index", str(rebuilt)]).exit_code == 0
    again = runner.invoke(cli, ["export", "--index", str(rebuilt)])
    assert [json.loads(line) for line in again.output.splitlines()] == records


def test_stats_describe_the_index(runner, sample_index_dir):
    result = runner.invoke(cli, ["stats", "--index", str(sample_index_dir), "--json"])
    stats = json.loads(result.output)
    assert (stats["articles"], stats["dimension"], stats["newest_article"]) == (
        2,
        384,
        "2024-11-14",
    )
    assert stats["chunks"] > 2 and stats["size_bytes"] > 0
    text = runner.invoke(cli, ["stats", "--index", str(sample_index_dir)]).output
    assert "articles      2" in text and "2024-11-14 to 2024-11-14" in text


def test_stats_without_an_index_says_how_to_make_one(runner, tmp_path):
    result = runner.invoke(cli, ["stats", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1 and "newsbot ingest" in result.output


@pytest.mark.parametrize(("question", "message"), [("  ", "empty"), ("x" * 5000, "limit is 1,000")])
def test_unusable_questions_exit_non_zero(runner, sample_index_dir, question, message):
    result = runner.invoke(cli, ["ask", question, "--index", str(sample_index_dir)])
    assert result.exit_code == 1 and message in result.output


def test_invalid_settings_are_one_clear_line(runner, sample_index_dir, monkeypatch):
    monkeypatch.setenv("NEWSBOT_TOP_K", "many")
    result = runner.invoke(cli, ["ask", LIMA, "--index", str(sample_index_dir)])
    assert result.exit_code == 1
    assert "NEWSBOT_TOP_K" in result.output and len(result.output.strip().splitlines()) == 1


def test_unrelated_questions_are_declined(runner, sample_index_dir):
    result = runner.invoke(
        cli,
        [
            "ask",
            "What is the boiling point of mercury on Mars?",
            "--json",
            "--index",
            str(sample_index_dir),
        ],
    )
    payload = json.loads(result.output)
    assert payload["abstained"] is True and payload["citations"] == []


def test_chat_answers_follow_ups_in_context(runner, sample_index_dir):
    session = "Who met whom in Lima?\n/sources\nand what award did he receive?\n/new\n/quit\n"
    result = runner.invoke(cli, ["chat", "--index", str(sample_index_dir)], input=session)
    assert result.exit_code == 0, result.output
    assert "Salhuana" in result.output
    answers = result.output.split("\n? ")
    follow_up = next(
        a for a in answers if a.startswith("Cuong") or "award" in a.split("Sources")[0]
    )
    assert "Order" in follow_up.split("Sources")[0]  # answered about the award, not Lima again
    assert "Starting afresh." in result.output


def _chat(runner, index_dir: Path, *lines: str) -> list[str]:
    """What the chat printed after each line typed (the banner left out)."""
    session = "".join(f"{line}\n" for line in (*lines, "/quit"))
    result = runner.invoke(cli, ["chat", "--index", str(index_dir)], input=session)
    assert result.exit_code == 0, result.output
    return result.output.split("\n? ")[1:-1]


def test_chat_help_lists_the_commands_instead_of_answering(runner, sample_index_dir):
    for command in ("/help", "/help@newsbot", "/HELP"):
        (reply,) = _chat(runner, sample_index_dir, command)
        assert "/new" in reply and "/sources" in reply and "/quit" in reply
        assert "Sources" not in reply and "could not find" not in reply


def test_chat_start_and_stats_say_what_is_indexed(runner, sample_index_dir):
    start, stats = _chat(runner, sample_index_dir, "/start", "/stats@newsbot")
    assert "Hello!" in start and "I know 2 news articles, published on 2024-11-14." in start
    assert "<b>" not in start  # Telegram's markup is not shown in a terminal
    assert "articles      2" in stats and "2024-11-14 to 2024-11-14" in stats


def test_chat_unknown_commands_are_not_answered_as_questions(runner, sample_index_dir):
    replies = _chat(runner, sample_index_dir, "/lima", "/who met whom in Lima?", "/ask")
    unknown = "I don't know that command. /help lists what I can do."
    assert replies[:2] == [f"{unknown}\n", f"{unknown}\n"]
    assert replies[2].startswith("Ask something after /ask")


def test_chat_ask_answers_the_question_after_it(runner, sample_index_dir):
    (reply,) = _chat(runner, sample_index_dir, f"/ask@newsbot {LIMA}")
    assert "Luong Cuong" in reply.split("Sources")[0] and "\nSources\n" in reply


def test_eval_scores_labelled_questions(runner, sample_index_dir):
    questions = DATA / "sample-questions.jsonl"
    result = runner.invoke(
        cli, ["eval", str(questions), "--index", str(sample_index_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)["newsbot"]
    assert (scores["questions"], scores["hits@10"], scores["null_questions"]) == (2, 1.0, 1)
    assert scores["null_abstained"] == 1.0 and scores["answerable_abstained"] == 0.0
    table = runner.invoke(cli, ["eval", str(questions), "--index", str(sample_index_dir)]).output
    assert "Hits@10" in table and "inference_query" in table and "null declined" in table


def test_eval_with_an_unreadable_questions_file_fails_clearly(runner, sample_index_dir, tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text("not json\n")
    result = runner.invoke(cli, ["eval", str(bad), "--index", str(sample_index_dir)])
    assert result.exit_code == 1 and "q.jsonl:1" in result.output


def test_latest_lists_the_newest_articles_and_those_on_a_topic(runner, tmp_path):
    index = str(tmp_path / "index")
    dated = str(DATA / "dated-news" / "corpus.jsonl")
    assert runner.invoke(cli, ["ingest", dated, "--index", index]).exit_code == 0
    result = runner.invoke(cli, ["latest", "--index", index, "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [a["title"] for a in payload["articles"]] == [
        "Gaza ceasefire talks resume in Cairo",
        "Federal Reserve signals a pause in rate cuts",
    ]
    result = runner.invoke(
        cli, ["latest", "Federal Reserve", "--since", "2024-11-01", "--index", index]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Latest on “Federal Reserve” since 1 November 2024, newest first"
    assert lines[1].startswith(
        "[1] Federal Reserve signals a pause in rate cuts — Markets Daily, 2024-12-05"
    )
    assert "[2] Federal Reserve minutes show divided officials" in result.output
    assert "half-point" not in result.output  # October's: before the window


def test_latest_explains_a_time_it_cannot_read(runner, tmp_path):
    result = runner.invoke(cli, ["latest", "--since", "whenever", "--index", str(tmp_path / "i")])
    assert result.exit_code == 2
    assert "cannot read 'whenever' as a time" in result.output
