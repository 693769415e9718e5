"""The bot's state in PostgreSQL, so that several bot replicas share one state.

``PostgresState`` behaves as ``SqliteState`` does, but any number of processes on any number
of machines may use one database at once: a follow made through one replica is pushed by
another, a question counts against the same per-user limit wherever it arrives, and an
article pushed by one replica is not pushed again by the next. Each write is one transaction
and every read-then-write is made safe against other replicas (``INSERT … ON CONFLICT``, row
locks, and per-user or per-chat advisory locks), so at most ``per_minute`` questions get
through however many replicas are asked at once. Times are stored as ``timestamptz``.

The code owns the schema: its tables (all named ``bot_…``, so that they can share a database
with other newsbot stores) are created on first use, and the version is kept in
``newsbot_schema``; a database written by a newer newsbot is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import psycopg
from psycopg_pool import ConnectionPool

from bot.state import (
    PUSH_COUNT_KEPT,
    PUSHED_MEMORY,
    RATE_WINDOW,
    Follow,
    answer_from_json,
    answer_to_json,
    chosen_follow,
    followed_topic,
    rate_limit_wait,
    topic_key,
)
from retrieval.answer import Answer
from retrieval.store.pg_schema import advisory_lock, apply_migrations

SCHEMA_VERSION = 2
_COMPONENT = "bot_state"
_FOLLOWS = "SELECT id, chat_id, topic, created_at FROM bot_follows"

_SCHEMA = (
    "CREATE TABLE bot_conversations (chat_id bigint PRIMARY KEY, question text NOT NULL)",
    "CREATE TABLE bot_last_answers (chat_id bigint PRIMARY KEY, answer text NOT NULL)",
    # An identity never hands out an id twice, so a Follow held by a push job stays unambiguous.
    """CREATE TABLE bot_follows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        chat_id bigint NOT NULL, topic text NOT NULL, topic_key text NOT NULL,
        created_at timestamptz NOT NULL, UNIQUE (chat_id, topic_key))""",
    "CREATE TABLE bot_pushes (chat_id bigint NOT NULL, sent_at timestamptz NOT NULL)",
    "CREATE INDEX bot_pushes_by_chat ON bot_pushes (chat_id, sent_at)",
    """CREATE TABLE bot_pushed_articles (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        chat_id bigint NOT NULL, article_id text NOT NULL, UNIQUE (chat_id, article_id))""",
    "CREATE INDEX bot_pushed_by_chat ON bot_pushed_articles (chat_id, seq)",
    "CREATE TABLE bot_questions (user_id bigint NOT NULL, asked_at timestamptz NOT NULL)",
    "CREATE INDEX bot_questions_by_user ON bot_questions (user_id, asked_at)",
    # How far the index has been looked through for articles to push (its ingest times).
    "CREATE TABLE bot_push_mark (id integer PRIMARY KEY CHECK (id = 1), seen text NOT NULL)",
)
_MIGRATIONS = [
    (1, _SCHEMA),
    (
        2,
        (
            """CREATE TABLE bot_leases (name text PRIMARY KEY, holder text NOT NULL,
                until timestamptz NOT NULL)""",
        ),
    ),
]


class PostgresState:
    """``BotState`` in a PostgreSQL database (a libpq conninfo or URL); tables made if missing."""

    def __init__(self, conninfo: str) -> None:
        # The schema on a connection of its own: a wrong address or a refused version fails
        # here at once with libpq's own message, rather than as a pool timeout.
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            info = conn.info
            self.description = f"the PostgreSQL database {info.dbname!r} on {info.host}:{info.port}"
            apply_migrations(conn, _COMPONENT, _MIGRATIONS)
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True},  # reads are single statements; writes say BEGIN
            check=ConnectionPool.check_connection,  # outlives a server restart
            name="newsbot-state",
            open=False,
        )
        self._pool.open(wait=True, timeout=30)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- conversations and last answers ----------------------------------------------------

    def previous_question(self, chat_id: int) -> str | None:
        rows = self._read("SELECT question FROM bot_conversations WHERE chat_id = %s", [chat_id])
        return rows[0][0] if rows else None

    def set_previous_question(self, chat_id: int, question: str | None) -> None:
        self._put("bot_conversations", "question", chat_id, question)

    def last_answer(self, chat_id: int) -> Answer | None:
        rows = self._read("SELECT answer FROM bot_last_answers WHERE chat_id = %s", [chat_id])
        return answer_from_json(rows[0][0]) if rows else None

    def set_last_answer(self, chat_id: int, answer: Answer | None) -> None:
        value = None if answer is None else answer_to_json(answer)
        self._put("bot_last_answers", "answer", chat_id, value)

    def _put(self, table: str, column: str, chat_id: int, value: str | None) -> None:
        with self._transaction() as conn:
            if value is None:
                conn.execute(f"DELETE FROM {table} WHERE chat_id = %s", [chat_id])
            else:
                conn.execute(
                    f"INSERT INTO {table} VALUES (%s, %s)"
                    f" ON CONFLICT (chat_id) DO UPDATE SET {column} = EXCLUDED.{column}",
                    [chat_id, value],
                )

    # -- follows -----------------------------------------------------------------------------

    def follow(self, chat_id: int, topic: str, now: datetime) -> tuple[Follow, bool]:
        topic = followed_topic(topic)
        key = topic_key(topic)
        while True:  # again only if another replica unfollowed it between our two statements
            with self._transaction() as conn:
                created = conn.execute(
                    "INSERT INTO bot_follows (chat_id, topic, topic_key, created_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (chat_id, topic_key) DO NOTHING"
                    " RETURNING id, chat_id, topic, created_at",
                    [chat_id, topic, key, _aware(now)],
                ).fetchone()
                if created is not None:
                    return _follow(created), True
                where = " WHERE chat_id = %s AND topic_key = %s"
                found = conn.execute(_FOLLOWS + where, [chat_id, key]).fetchone()
                if found is not None:
                    return _follow(found), False

    def follows(self, chat_id: int) -> list[Follow]:
        rows = self._read(f"{_FOLLOWS} WHERE chat_id = %s ORDER BY id", [chat_id])
        return [_follow(row) for row in rows]

    def all_follows(self) -> list[Follow]:
        return [_follow(row) for row in self._read(f"{_FOLLOWS} ORDER BY id")]

    def unfollow(self, chat_id: int, which: str) -> Follow | None:
        """Stop following a topic given by name or by its number in ``follows`` ("2").

        A number that is not in the list is read as a topic, so "2024" can be unfollowed.
        """
        with self._transaction() as conn:
            # FOR UPDATE: the numbering cannot shift under us while another replica writes.
            rows = conn.execute(f"{_FOLLOWS} WHERE chat_id = %s ORDER BY id FOR UPDATE", [chat_id])
            found = chosen_follow([_follow(row) for row in rows], which)
            if found is not None:
                conn.execute("DELETE FROM bot_follows WHERE id = %s", [found.id])
        return found

    def forget_chat(self, chat_id: int) -> int:
        """Forget a chat that blocked the bot or was deleted; its push memory is kept."""
        with self._transaction() as conn:
            dropped = conn.execute("DELETE FROM bot_follows WHERE chat_id = %s", [chat_id])
            conn.execute("DELETE FROM bot_conversations WHERE chat_id = %s", [chat_id])
            conn.execute("DELETE FROM bot_last_answers WHERE chat_id = %s", [chat_id])
        return dropped.rowcount

    # -- pushes ------------------------------------------------------------------------------

    def pushed(self, chat_id: int, article_ids: Iterable[str]) -> set[str]:
        rows = self._read(
            "SELECT article_id FROM bot_pushed_articles"
            " WHERE chat_id = %s AND article_id = ANY(%s::text[])",
            [chat_id, list(article_ids)],
        )
        return {row[0] for row in rows}

    def record_push(self, chat_id: int, article_ids: Iterable[str], now: datetime) -> None:
        """Record one push message to the chat and every article it carried."""
        now = _aware(now)
        with self._transaction() as conn:
            # One push to a chat at a time: two replicas inserting the same ids in different
            # orders would otherwise deadlock.
            advisory_lock(conn, f"newsbot.push.{chat_id}")
            conn.execute("INSERT INTO bot_pushes VALUES (%s, %s)", [chat_id, now])
            _sweep(conn, "bot_pushes", "sent_at < %s", now - PUSH_COUNT_KEPT)
            conn.execute(
                "INSERT INTO bot_pushed_articles (chat_id, article_id)"
                " SELECT %s, id FROM unnest(%s::text[]) WITH ORDINALITY AS given (id, n)"
                " ORDER BY n ON CONFLICT DO NOTHING",
                [chat_id, list(article_ids)],
            )
            conn.execute(
                "DELETE FROM bot_pushed_articles WHERE chat_id = %s AND seq <= (SELECT seq FROM"
                " bot_pushed_articles WHERE chat_id = %s ORDER BY seq DESC LIMIT 1 OFFSET %s)",
                [chat_id, chat_id, PUSHED_MEMORY],
            )

    def pushes_since(self, chat_id: int, since: datetime) -> int:
        """Push messages sent to the chat at or after ``since`` (counts go back one day)."""
        rows = self._read(
            "SELECT COUNT(*) FROM bot_pushes WHERE chat_id = %s AND sent_at >= %s",
            [chat_id, _aware(since)],
        )
        return int(rows[0][0])

    def push_mark(self) -> str | None:
        """The newest ingest time of the index already looked through for pushes."""
        rows = self._read("SELECT seen FROM bot_push_mark")
        return rows[0][0] if rows else None

    def set_push_mark(self, seen: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO bot_push_mark VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET seen = EXCLUDED.seen",
                [seen],
            )

    def take_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Hold ``name`` until ``now`` + ``seconds`` if it is free, expired or already ours
        (one statement: of replicas asking at once, exactly one gets it)."""
        until = _aware(now) + timedelta(seconds=seconds)
        rows = self._read(
            "INSERT INTO bot_leases VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
            " SET holder = EXCLUDED.holder, until = EXCLUDED.until"
            " WHERE bot_leases.until <= %s OR bot_leases.holder = EXCLUDED.holder"
            " RETURNING holder",
            [name, holder, until, _aware(now)],
        )
        return bool(rows)

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM bot_leases WHERE name = %s AND holder = %s", [name, holder])

    # -- the question rate limit -------------------------------------------------------------

    def take_question_slot(self, user_id: int, now: datetime, per_minute: int) -> float:
        """Record a question and return 0, or return the seconds until one is allowed again.

        At most ``per_minute`` questions in any 60 seconds (0 = no limit), across all the
        replicas. A refused question is not recorded, so asking again early does not extend
        the wait.
        """
        if per_minute <= 0:
            return 0.0
        now = _aware(now)
        window_start = now - RATE_WINDOW
        with self._transaction() as conn:
            # Held to the commit: another replica's check-and-record for this user waits.
            advisory_lock(conn, f"newsbot.questions.{user_id}")
            _sweep(conn, "bot_questions", "asked_at <= %s", window_start)
            rows = conn.execute(
                "SELECT asked_at FROM bot_questions"
                " WHERE user_id = %s AND asked_at > %s ORDER BY asked_at",
                [user_id, window_start],
            )
            wait = rate_limit_wait([row[0] for row in rows], now, per_minute)
            if wait:
                return wait
            conn.execute("INSERT INTO bot_questions VALUES (%s, %s)", [user_id, now])
        return 0.0


def _sweep(conn: psycopg.Connection[tuple[Any, ...]], table: str, expired: str, when: Any) -> None:
    """Delete the rows of ``table`` that match ``expired`` (a condition on ``when``).

    Rows that another transaction is deleting already are skipped rather than waited for,
    so two replicas sweeping at once neither deadlock nor hold each other up.
    """
    conn.execute(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE {expired} FOR UPDATE SKIP LOCKED))",
        [when],
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be stored: {moment!r}; give it a timezone")
    return moment


def _follow(row: tuple[Any, ...]) -> Follow:
    return Follow(row[0], row[1], row[2], row[3].astimezone(UTC))
