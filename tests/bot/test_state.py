"""The bot's state survives restarts and kills, stays whole under threads, refuses odd files.

The behaviour every ``BotState`` owes is checked on both backends (``state_factory``): one
SQLite file, and a PostgreSQL database that several replicas share.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from bot.pg_state import PostgresState
from bot.state import SqliteState, answer_from_json, answer_to_json
from corpus.errors import ConfigurationError
from retrieval.answer import Answer, Citation

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

State = SqliteState | PostgresState


@pytest.fixture(params=["sqlite", "postgres"])
def state_factory(request, tmp_path) -> Iterator[Callable[[], State]]:
    """Opens the test's one state, anew on each call (as a restart or a replica would)."""
    opened: list[State] = []

    def open_state() -> State:
        if request.param == "sqlite":
            state: State = SqliteState(tmp_path / "state" / "bot.sqlite3")
        else:
            state = PostgresState(request.getfixturevalue("postgres_database"))
        opened.append(state)
        return state

    yield open_state
    for state in opened:
        state.close()


def _answer() -> Answer:
    lima = timezone(timedelta(hours=-5))
    citations = (
        Citation(1, "a1", "Rain in Lima", "VNA", "https://x.test/1", T0, "It rained.", 0.91),
        Citation(2, "a2", "Dry «Paris»", None, None, None, "Not a drop… “yet”.", 0.5),
        Citation(3, "a3", "Naive", "AP", None, datetime(2024, 1, 2, 3, 4, 5), "Old news.", 0.25),
        Citation(4, "a4", "Offset", "AP", None, datetime(2024, 5, 6, tzinfo=lima), "Later.", 0.1),
    )
    timings = {"search": 0.02}  # not kept, and not compared
    return Answer("Did it rain?", "It rained. [1]", citations, False, 0.75, timings)


def test_every_kind_of_state_survives_a_restart(state_factory):
    with state_factory() as state:  # SQLite: the directory does not exist yet
        state.set_previous_question(1, "Who won the election?")
        state.set_last_answer(1, _answer())
        state.follow(1, "Climate", T0)
        state.follow(2, "Elections", T0 + timedelta(seconds=1))
        state.record_push(1, ["a1", "a2"], T0)
        assert state.take_question_slot(9, T0, per_minute=1) == 0
        state.set_push_mark("2025-03-01T12:00:00+00:00")

    with state_factory() as state:
        assert state.previous_question(1) == "Who won the election?"
        assert state.last_answer(1) == _answer()
        assert [(f.chat_id, f.topic, f.created_at) for f in state.all_follows()] == [
            (1, "Climate", T0),
            (2, "Elections", T0 + timedelta(seconds=1)),
        ]
        assert state.pushed(1, ["a1", "a2", "a3"]) == {"a1", "a2"}
        assert state.pushes_since(1, T0) == 1
        assert state.take_question_slot(9, T0 + timedelta(seconds=10), per_minute=1) == 50
        assert state.push_mark() == "2025-03-01T12:00:00+00:00"


def test_a_follow_and_a_push_survive_the_process_being_killed(tmp_path):
    path = tmp_path / "bot.sqlite3"
    child = textwrap.dedent(
        """
        import os, signal, sys
        from datetime import UTC, datetime
        from pathlib import Path
        from bot.state import SqliteState

        state = SqliteState(Path(sys.argv[1]))
        now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        state.follow(5, "Floods in Peru", now)
        state.record_push(5, ["a1", "a2"], now)
        print("done", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.stdout == "done\n", run.stderr
    assert run.returncode == -signal.SIGKILL
    assert path.with_name("bot.sqlite3-wal").exists()  # no close(): the writes are in the WAL

    with SqliteState(path) as state:
        assert [f.topic for f in state.follows(5)] == ["Floods in Peru"]
        assert state.pushed(5, ["a1", "a2"]) == {"a1", "a2"}
        assert state.pushes_since(5, T0) == 1


def test_following_the_same_topic_again_keeps_one_follow(state_factory):
    with state_factory() as state:
        first, added = state.follow(1, "  Climate   change ", T0)
        assert added and first.topic == "Climate change" and first.created_at == T0
        again, added_again = state.follow(1, "climate CHANGE", T0 + timedelta(hours=1))
        assert (again, added_again) == (first, False)
        assert state.follows(1) == [first]
        _, other_chat = state.follow(2, "Climate change", T0)
        assert other_chat  # follows are per chat


def test_unfollow_by_topic_or_by_number(state_factory):
    with state_factory() as state:
        for minute, topic in enumerate(["Climate", "Elections", "Football", "2024"]):
            state.follow(1, topic, T0 + timedelta(minutes=minute))
        removed = state.unfollow(1, "2")
        assert removed is not None and removed.topic == "Elections"
        removed = state.unfollow(1, "  CLIMATE ")
        assert removed is not None and removed.topic == "Climate"
        assert state.unfollow(1, "Elections") is None  # already gone
        assert state.unfollow(1, "7") is None  # no seventh follow
        removed = state.unfollow(1, "2024")  # not a number in the list: a topic
        assert removed is not None and removed.topic == "2024"
        assert [f.topic for f in state.follows(1)] == ["Football"]


def test_forget_chat_drops_follows_and_conversation_but_keeps_push_memory(state_factory):
    with state_factory() as state:
        state.follow(1, "Climate", T0)
        state.follow(1, "Elections", T0)
        state.follow(2, "Climate", T0)
        state.set_previous_question(1, "Who won?")
        state.set_last_answer(1, _answer())
        state.record_push(1, ["a1"], T0)

        assert state.forget_chat(1) == 2
        assert state.follows(1) == [] and [f.chat_id for f in state.all_follows()] == [2]
        assert state.previous_question(1) is None and state.last_answer(1) is None
        assert state.pushed(1, ["a1"]) == {"a1"}  # no repeats if the chat comes back
        assert state.forget_chat(1) == 0


def test_none_forgets_a_conversation_and_a_last_answer(state_factory):
    with state_factory() as state:
        state.set_previous_question(1, "Who won?")
        state.set_previous_question(1, "And then?")
        assert state.previous_question(1) == "And then?"
        state.set_previous_question(1, None)
        state.set_last_answer(1, _answer())
        state.set_last_answer(1, None)
        assert state.previous_question(1) is None and state.last_answer(1) is None


def test_pushes_since_counts_messages_not_articles(state_factory):
    with state_factory() as state:
        state.record_push(1, ["a1", "a2", "a3"], T0)
        state.record_push(1, ["a4"], T0 + timedelta(minutes=30))
        state.record_push(2, ["a1"], T0 + timedelta(minutes=30))
        assert state.pushes_since(1, T0) == 2
        assert state.pushes_since(1, T0 + timedelta(minutes=30)) == 1  # at or after
        assert state.pushes_since(1, T0 + timedelta(minutes=31)) == 0
        assert state.pushed(1, ["a1", "a4", "a9"]) == {"a1", "a4"}
        assert state.pushed(2, ["a1", "a4"]) == {"a1"}


def test_push_memory_keeps_the_newest_ten_thousand_articles_per_chat(state_factory):
    with state_factory() as state:
        ids = [f"a{i}" for i in range(10_003)]
        state.record_push(1, ids[:10_000], T0)
        state.record_push(1, ids[10_000:], T0 + timedelta(minutes=1))
        assert state.pushed(1, ids) == set(ids[3:])


def test_the_question_rate_limit_allows_n_a_minute_and_a_refusal_does_not_extend_it(state_factory):
    with state_factory() as state:
        at = [T0 + timedelta(seconds=s) for s in range(200)]
        assert state.take_question_slot(1, at[0], per_minute=2) == 0
        assert state.take_question_slot(1, at[10], per_minute=2) == 0
        assert state.take_question_slot(1, at[20], per_minute=2) == pytest.approx(40)
        assert state.take_question_slot(1, at[30], per_minute=2) == pytest.approx(30)
        assert state.take_question_slot(2, at[30], per_minute=2) == 0  # another user
        assert state.take_question_slot(1, at[60], per_minute=2) == 0  # the first has left
        assert state.take_question_slot(1, at[61], per_minute=2) == pytest.approx(9)
        assert all(state.take_question_slot(1, at[62], per_minute=0) == 0 for _ in range(5))


def test_concurrent_calls_from_threads_lose_nothing(state_factory):
    state = state_factory()
    allowed = []

    def work(thread: int) -> None:
        for i in range(50):
            state.record_push(1, [f"t{thread}-{i}"], T0)
            allowed.append(state.take_question_slot(7, T0, per_minute=100) == 0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every_id = [f"t{n}-{i}" for n in range(8) for i in range(50)]
    assert state.pushes_since(1, T0) == 400
    assert state.pushed(1, every_id) == set(every_id)
    assert sum(allowed) == 100  # check-and-record is atomic: exactly the limit got through
    state.close()


def test_a_state_file_from_a_newer_newsbot_is_refused(tmp_path):
    path = tmp_path / "s.db"
    SqliteState(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(ConfigurationError, match="upgrade newsbot") as refused:
        SqliteState(path)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.db"
    garbage = os.urandom(4096)
    path.write_bytes(garbage)
    with pytest.raises(ConfigurationError, match="not a newsbot state file") as refused:
        SqliteState(path)
    assert str(path) in str(refused.value) and "move it away" in str(refused.value)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # no -wal or -shm beside it


def test_another_programs_database_is_not_taken_over(tmp_path):
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    with pytest.raises(ConfigurationError, match="not a newsbot state file"):
        SqliteState(path)


def test_an_answer_with_citations_round_trips_through_json():
    answer = _answer()
    text = answer_to_json(answer)
    assert answer_from_json(text) == answer
    published = [c.published for c in answer_from_json(text).citations]
    assert published == [c.published for c in answer.citations]
    assert [p.utcoffset() if p else None for p in published] == [
        timedelta(0),
        None,
        None,
        timedelta(hours=-5),
    ]


def test_fields_added_to_answer_later_round_trip_too():
    # Found by type: a tuple of dataclasses with datetimes inside, as the time ranges are.
    if "ranges" not in {f.name for f in fields(Answer)}:
        pytest.skip("this newsbot's Answer has no time ranges")
    from retrieval.timeframe import TimeRange

    week = TimeRange(T0, T0 + timedelta(days=7), "last week")
    answer = replace(_answer(), ranges=(week,))
    assert answer_from_json(answer_to_json(answer)) == answer


def test_an_llm_written_answer_round_trips_with_what_was_dropped():
    from retrieval.answer import DroppedSentence

    answer = replace(
        _answer(),
        mode="llm",
        dropped=(DroppedSentence("They signed 12 deals.", "12: not in [1]"),),
    )
    assert answer_from_json(answer_to_json(answer)) == answer
    fell_back = replace(_answer(), fallback="the server answered 500")
    assert answer_from_json(answer_to_json(fell_back)).fallback == "the server answered 500"


def test_answers_stored_by_other_versions_still_read():
    old = (
        '{"question": "Q?", "text": "A. [1]", "abstained": false, "shape": "new key",'
        ' "citations": [{"n": 1, "article_id": "a1", "title": "T", "source": null,'
        ' "url": null, "published": null, "snippet": "A.", "score": 0.5}]}'
    )
    answer = answer_from_json(old)
    assert answer.evidence == 0.0  # missing: its default
    assert answer.citations[0].article_id == "a1" and answer.text == "A. [1]"


def test_naive_times_are_refused(state_factory):
    naive = datetime(2025, 3, 1, 12, 0)
    with state_factory() as state:
        for store in (
            lambda: state.follow(1, "Climate", naive),
            lambda: state.record_push(1, ["a1"], naive),
            lambda: state.pushes_since(1, naive),
            lambda: state.take_question_slot(1, naive, per_minute=1),
        ):
            with pytest.raises(ValueError, match="naive"):
                store()
        assert state.follows(1) == [] and state.pushed(1, ["a1"]) == set()


def test_the_push_mark_starts_unset_and_is_replaced(state_factory):
    with state_factory() as state:
        assert state.push_mark() is None
        state.set_push_mark("2025-03-01T12:00:00+00:00")
        state.set_push_mark("2025-03-01T13:00:00+00:00")
        assert state.push_mark() == "2025-03-01T13:00:00+00:00"


def test_a_lease_has_one_holder_until_released_or_expired(state_factory):
    with state_factory() as one, state_factory() as two:
        assert one.take_lease("push", "bot-a", T0, 60)
        assert not two.take_lease("push", "bot-b", T0 + timedelta(seconds=30), 60)
        assert one.take_lease("push", "bot-a", T0 + timedelta(seconds=30), 60)  # renewed
        one.release_lease("push", "bot-a")
        assert two.take_lease("push", "bot-b", T0 + timedelta(seconds=31), 60)
        # bot-b dies holding it: after its 60 s, another takes it over
        assert not one.take_lease("push", "bot-a", T0 + timedelta(seconds=90), 60)
        assert one.take_lease("push", "bot-a", T0 + timedelta(seconds=92), 60)
        two.release_lease("push", "bot-b")  # not its lease any more: changes nothing
        assert not two.take_lease("push", "bot-b", T0 + timedelta(seconds=93), 60)


def test_a_version_1_state_file_gains_the_lease_table_and_keeps_its_follows(tmp_path):
    path = tmp_path / "s.db"
    with SqliteState(path) as state:
        state.follow(7, "Climate", T0)
    with sqlite3.connect(path) as conn:  # as newsbot before leases left it
        conn.execute("DROP TABLE leases")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with SqliteState(path) as state:
        assert [f.topic for f in state.follows(7)] == ["Climate"]
        assert state.take_lease("push", "bot-a", T0, 60)


def test_an_empty_topic_cannot_be_followed(state_factory):
    with state_factory() as state, pytest.raises(ValueError, match="empty"):
        state.follow(1, "  \t ", T0)


# -- PostgreSQL: one state that several replicas share ---------------------------------------


def test_a_postgres_database_from_a_newer_newsbot_is_refused_without_its_password(
    postgres_database,
):
    PostgresState(postgres_database).close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("UPDATE newsbot_schema SET version = 3 WHERE component = 'bot_state'")
    with_password = make_conninfo(postgres_database, password="secret")  # trust ignores it
    with pytest.raises(ConfigurationError, match="upgrade newsbot") as refused:
        PostgresState(with_password)
    message = str(refused.value)
    dbname = psycopg.conninfo.conninfo_to_dict(postgres_database)["dbname"]
    assert f"{dbname!r} on 127.0.0.1:" in message and "version 3" in message
    assert "secret" not in message


def test_a_version_1_postgres_state_is_upgraded_in_place(postgres_database):
    from bot.pg_state import _MIGRATIONS
    from retrieval.store.pg_schema import apply_migrations

    with psycopg.connect(postgres_database, autocommit=True) as conn:
        assert apply_migrations(conn, "bot_state", _MIGRATIONS[:1]) == (0, 1)
        conn.execute("INSERT INTO bot_conversations VALUES (5, 'Who won?')")
    with PostgresState(postgres_database) as state:
        assert state.previous_question(5) == "Who won?"
        assert state.take_lease("push", "bot-a", T0, 60)


def test_another_programs_bot_tables_are_not_taken_over(postgres_database):
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE bot_follows (note text)")
    with pytest.raises(ConfigurationError, match="did not make"):
        PostgresState(postgres_database)


def test_two_replicas_see_each_others_writes(postgres_database):
    with PostgresState(postgres_database) as one, PostgresState(postgres_database) as two:
        made, _ = one.follow(1, "Climate", T0)
        assert two.follows(1) == [made]
        assert two.follow(1, " CLIMATE ", T0 + timedelta(hours=1)) == (made, False)
        two.set_previous_question(1, "Who won?")
        two.set_last_answer(1, _answer())
        assert one.previous_question(1) == "Who won?" and one.last_answer(1) == _answer()
        one.record_push(1, ["a1"], T0)
        assert two.pushed(1, ["a1", "a2"]) == {"a1"} and two.pushes_since(1, T0) == 1
        two.set_push_mark("m1")
        assert one.push_mark() == "m1"
        removed = two.unfollow(1, "1")
        assert removed == made and one.follows(1) == []


def test_replicas_starting_together_make_the_schema_once(postgres_database):
    opened: list[PostgresState] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresState(postgres_database))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for state in opened:
        state.close()
    assert errors == [] and len(opened) == 4


def test_two_replicas_cannot_both_take_the_last_question_slot(postgres_database):
    one, two = PostgresState(postgres_database), PostgresState(postgres_database)
    rounds = 20
    granted: list[list[bool]] = [[] for _ in range(rounds)]
    start = threading.Barrier(2)

    def ask(state: PostgresState) -> None:
        for user in range(rounds):  # a new user each round: a race for their only slot
            start.wait()
            granted[user].append(state.take_question_slot(user, T0, per_minute=1) == 0)

    threads = [threading.Thread(target=ask, args=(state,)) for state in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    one.close()
    two.close()
    assert [sorted(each) for each in granted] == [[False, True]] * rounds
