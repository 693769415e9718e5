"""The bot's state that survives restarts: conversations, last answers, follows, push memory.

Everything lives in one SQLite file in WAL mode with ``synchronous=FULL``: a call that has
returned is on disk, even if the process is killed or the power fails the next moment. The
bot calls the store from worker threads (``asyncio.to_thread``), so one connection is shared
under a lock and each write is one transaction. Handlers see only the ``BotState`` protocol,
the seam where a PostgreSQL store can later take this one's place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Protocol, Self, Union, get_args, get_origin, get_type_hints

from corpus.errors import ConfigurationError
from retrieval.answer import Answer
from retrieval.durable import fsync_path

SCHEMA_VERSION = 2
#: The newest article ids remembered per chat as already pushed.
PUSHED_MEMORY = 10_000
#: Push messages are counted over this long; question slots over RATE_WINDOW.
PUSH_COUNT_KEPT = timedelta(days=1)
RATE_WINDOW = timedelta(seconds=60)
_FOLLOWS = "SELECT id, chat_id, topic, created_at FROM follows"

_SCHEMA = (
    "CREATE TABLE conversations (chat_id INTEGER PRIMARY KEY, question TEXT NOT NULL)",
    "CREATE TABLE last_answers (chat_id INTEGER PRIMARY KEY, answer TEXT NOT NULL)",
    # AUTOINCREMENT: an id is never reused, so a Follow held by a push job stays unambiguous.
    """CREATE TABLE follows (id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL,
        topic TEXT NOT NULL, topic_key TEXT NOT NULL, created_at TEXT NOT NULL,
        UNIQUE (chat_id, topic_key))""",
    "CREATE TABLE pushes (chat_id INTEGER NOT NULL, sent_at TEXT NOT NULL)",
    "CREATE INDEX pushes_by_chat ON pushes (chat_id, sent_at)",
    """CREATE TABLE pushed_articles (seq INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,
        article_id TEXT NOT NULL, UNIQUE (chat_id, article_id))""",
    "CREATE INDEX pushed_by_chat ON pushed_articles (chat_id, seq)",
    "CREATE TABLE questions (user_id INTEGER NOT NULL, asked_at TEXT NOT NULL)",
    # How far the index has been looked through for articles to push (its ingest times).
    "CREATE TABLE push_mark (id INTEGER PRIMARY KEY CHECK (id = 1), seen TEXT NOT NULL)",
    "CREATE INDEX questions_by_user ON questions (user_id, asked_at)",
)
# Version 2: who looks for articles to push, when several bots share the state.
_LEASES = (
    "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class Follow:
    """A topic a chat follows: new articles on it are pushed to the chat."""

    id: int
    chat_id: int
    topic: str
    created_at: datetime


class BotState(Protocol):
    """What the handlers keep between updates and across restarts.

    Times are timezone-aware datetimes from the caller's clock. Topics compare
    case-insensitively with whitespace collapsed.
    """

    def previous_question(self, chat_id: int) -> str | None: ...
    def set_previous_question(self, chat_id: int, question: str | None) -> None: ...
    def last_answer(self, chat_id: int) -> Answer | None: ...
    def set_last_answer(self, chat_id: int, answer: Answer | None) -> None: ...
    def follow(self, chat_id: int, topic: str, now: datetime) -> tuple[Follow, bool]: ...
    def follows(self, chat_id: int) -> list[Follow]: ...
    def all_follows(self) -> list[Follow]: ...
    def unfollow(self, chat_id: int, which: str) -> Follow | None: ...
    def forget_chat(self, chat_id: int) -> int: ...
    def pushed(self, chat_id: int, article_ids: Iterable[str]) -> set[str]: ...
    def record_push(self, chat_id: int, article_ids: Iterable[str], now: datetime) -> None: ...
    def pushes_since(self, chat_id: int, since: datetime) -> int: ...
    def push_mark(self) -> str | None: ...
    def set_push_mark(self, seen: str) -> None: ...
    # A lease is held by one process until released or expired: e.g. looking for articles
    # to push, so that bots sharing the state never push one article twice.
    def take_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool: ...
    def release_lease(self, name: str, holder: str) -> None: ...
    def take_question_slot(self, user_id: int, now: datetime, per_minute: int) -> float: ...
    def close(self) -> None: ...


class SqliteState:
    """``BotState`` in one SQLite file, created (with its directory) if missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self._lock = threading.Lock()
        # isolation_level=None: transactions are begun explicitly, as BEGIN IMMEDIATE.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise
        if created:
            fsync_path(path.parent)  # the file's name, too, survives power loss

    def _open(self) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # reads the header
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
                raise  # locked, unreadable, …: not a question of what the file is
            raise self._not_ours(str(e)) from e
        if version == 0 and tables:
            raise self._not_ours("it holds another program's tables")
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} was written by a newer newsbot (state version {version}, this "
                f"one reads up to {SCHEMA_VERSION}); upgrade newsbot to use it."
            )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        with self._transaction():
            found = conn.execute("PRAGMA user_version").fetchone()[0]  # someone may beat us
            steps = (_SCHEMA if found < 1 else ()) + (_LEASES if found < 2 else ())
            for statement in steps:
                conn.execute(statement)
            if found < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _not_ours(self, reason: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.path} is not a newsbot state file ({reason}); "
            "move it away and newsbot will start a new one there."
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a read-then-write cannot interleave
        # with another process's; the connection's context manager commits or rolls back.
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            yield self._conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- conversations and last answers ----------------------------------------------------

    def previous_question(self, chat_id: int) -> str | None:
        rows = self._read("SELECT question FROM conversations WHERE chat_id = ?", [chat_id])
        return rows[0][0] if rows else None

    def set_previous_question(self, chat_id: int, question: str | None) -> None:
        self._put("conversations", chat_id, question)

    def last_answer(self, chat_id: int) -> Answer | None:
        rows = self._read("SELECT answer FROM last_answers WHERE chat_id = ?", [chat_id])
        return answer_from_json(rows[0][0]) if rows else None

    def set_last_answer(self, chat_id: int, answer: Answer | None) -> None:
        self._put("last_answers", chat_id, None if answer is None else answer_to_json(answer))

    def _put(self, table: str, chat_id: int, value: str | None) -> None:
        with self._transaction() as conn:
            conn.execute(f"DELETE FROM {table} WHERE chat_id = ?", (chat_id,))
            if value is not None:
                conn.execute(f"INSERT INTO {table} VALUES (?, ?)", (chat_id, value))

    # -- follows -----------------------------------------------------------------------------

    def follow(self, chat_id: int, topic: str, now: datetime) -> tuple[Follow, bool]:
        topic = followed_topic(topic)
        with self._transaction() as conn:
            where = " WHERE chat_id = ? AND topic_key = ?"
            found = conn.execute(_FOLLOWS + where, (chat_id, topic_key(topic))).fetchone()
            if found:
                return _follow(found), False
            cursor = conn.execute(
                "INSERT INTO follows (chat_id, topic, topic_key, created_at) VALUES (?, ?, ?, ?)",
                (chat_id, topic, topic_key(topic), _utc(now)),
            )
        assert cursor.lastrowid is not None
        return Follow(cursor.lastrowid, chat_id, topic, now.astimezone(UTC)), True

    def follows(self, chat_id: int) -> list[Follow]:
        rows = self._read(f"{_FOLLOWS} WHERE chat_id = ? ORDER BY id", [chat_id])
        return [_follow(row) for row in rows]

    def all_follows(self) -> list[Follow]:
        rows = self._read(f"{_FOLLOWS} ORDER BY id")
        return [_follow(row) for row in rows]

    def unfollow(self, chat_id: int, which: str) -> Follow | None:
        """Stop following a topic given by name or by its number in ``follows`` ("2").

        A number that is not in the list is read as a topic, so "2024" can be unfollowed.
        """
        with self._transaction() as conn:
            rows = conn.execute(f"{_FOLLOWS} WHERE chat_id = ? ORDER BY id", (chat_id,))
            found = chosen_follow([_follow(row) for row in rows], which)
            if found is not None:
                conn.execute("DELETE FROM follows WHERE id = ?", (found.id,))
        return found

    def forget_chat(self, chat_id: int) -> int:
        """Forget a chat that blocked the bot or was deleted; its push memory is kept."""
        with self._transaction() as conn:
            dropped = conn.execute("DELETE FROM follows WHERE chat_id = ?", (chat_id,)).rowcount
            conn.execute("DELETE FROM conversations WHERE chat_id = ?", (chat_id,))
            conn.execute("DELETE FROM last_answers WHERE chat_id = ?", (chat_id,))
        return dropped

    # -- pushes ------------------------------------------------------------------------------

    def pushed(self, chat_id: int, article_ids: Iterable[str]) -> set[str]:
        # One JSON parameter rather than one per id: SQLite limits the number of parameters.
        rows = self._read(
            "SELECT article_id FROM pushed_articles"
            " WHERE chat_id = ? AND article_id IN (SELECT value FROM json_each(?))",
            [chat_id, json.dumps(list(article_ids))],
        )
        return {row[0] for row in rows}

    def record_push(self, chat_id: int, article_ids: Iterable[str], now: datetime) -> None:
        """Record one push message to the chat and every article it carried."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO pushes VALUES (?, ?)", (chat_id, _utc(now)))
            conn.execute("DELETE FROM pushes WHERE sent_at < ?", (_utc(now - PUSH_COUNT_KEPT),))
            conn.executemany(
                "INSERT INTO pushed_articles (chat_id, article_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(chat_id, article_id) for article_id in article_ids],
            )
            conn.execute(
                "DELETE FROM pushed_articles WHERE chat_id = ? AND seq <= (SELECT seq FROM"
                " pushed_articles WHERE chat_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (chat_id, chat_id, PUSHED_MEMORY),
            )

    def pushes_since(self, chat_id: int, since: datetime) -> int:
        """Push messages sent to the chat at or after ``since`` (counts go back one day)."""
        rows = self._read(
            "SELECT COUNT(*) FROM pushes WHERE chat_id = ? AND sent_at >= ?",
            [chat_id, _utc(since)],
        )
        return int(rows[0][0])

    def push_mark(self) -> str | None:
        """The newest ingest time of the index already looked through for pushes."""
        rows = self._read("SELECT seen FROM push_mark")
        return rows[0][0] if rows else None

    def set_push_mark(self, seen: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO push_mark VALUES (1, ?)", (seen,))

    def take_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Hold ``name`` until ``now`` + ``seconds`` if it is free, expired or already ours."""
        with self._transaction() as conn:
            row = conn.execute("SELECT holder, until FROM leases WHERE name = ?", [name]).fetchone()
            if row is not None and row[0] != holder and row[1] > _utc(now):
                return False
            until = _utc(now + timedelta(seconds=seconds))
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, until))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    # -- the question rate limit -------------------------------------------------------------

    def take_question_slot(self, user_id: int, now: datetime, per_minute: int) -> float:
        """Record a question and return 0, or return the seconds until one is allowed again.

        At most ``per_minute`` questions in any 60 seconds (0 = no limit). A refused question
        is not recorded, so asking again early does not extend the wait.
        """
        if per_minute <= 0:
            return 0.0
        window_start = _utc(now - RATE_WINDOW)
        with self._transaction() as conn:
            conn.execute("DELETE FROM questions WHERE asked_at <= ?", (window_start,))
            rows = conn.execute(
                "SELECT asked_at FROM questions WHERE user_id = ? ORDER BY asked_at", (user_id,)
            )
            wait = rate_limit_wait([datetime.fromisoformat(r[0]) for r in rows], now, per_minute)
            if wait:
                return wait
            conn.execute("INSERT INTO questions VALUES (?, ?)", (user_id, _utc(now)))
        return 0.0


def answer_to_json(answer: Answer) -> str:
    """``answer`` as JSON: the fields its equality compares (so not its timings)."""
    return json.dumps(_plain(answer), ensure_ascii=False)


def answer_from_json(text: str) -> Answer:
    """The ``Answer`` that ``answer_to_json`` wrote, by this or another newsbot version.

    Unknown keys are ignored and missing fields take their defaults, so rows written before
    a field was added or after one was dropped still read.
    """
    return _typed(Answer, json.loads(text))


def _plain(value: Any) -> Any:
    """``value`` as JSON types: dataclasses become objects, datetimes ISO-8601 text."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.compare}
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _typed(hint: Any, value: Any) -> Any:
    """``_plain``'s inverse, led by the type hints of the dataclasses' fields."""
    if value is None:
        return None
    if isinstance(hint, type) and is_dataclass(hint):
        hints = get_type_hints(hint)
        known = [f.name for f in fields(hint) if f.init and f.name in value]
        return hint(**{name: _typed(hints[name], value[name]) for name in known})
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):  # X | None
        return _typed(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], item) for item in value)
        return tuple(_typed(a, item) for a, item in zip(args, value, strict=True))
    if hint in (datetime, date):
        return hint.fromisoformat(value)
    return value


def followed_topic(topic: str) -> str:
    """``topic`` as it is stored: whitespace collapsed; an empty one is refused."""
    topic = " ".join(topic.split())
    if not topic:
        raise ValueError("a topic to follow cannot be empty")
    return topic


def chosen_follow(followed: list[Follow], which: str) -> Follow | None:
    """The follow ``which`` names among ``followed`` (a chat's, in /following order): its
    number there ("2"), else its topic. A number not in the list is read as a topic, so
    "2024" can be unfollowed."""
    number = int(which) if which.strip().isdecimal() else 0
    if 1 <= number <= len(followed):
        return followed[number - 1]
    key = topic_key(which)
    return next((f for f in followed if topic_key(f.topic) == key), None)


def rate_limit_wait(asked: list[datetime], now: datetime, per_minute: int) -> float:
    """Seconds until a question is allowed, given the times (oldest first) of the user's
    questions in the window; 0 when one is allowed now."""
    if len(asked) < per_minute:
        return 0.0
    # The question whose leaving the window brings the count under the limit.
    return (asked[len(asked) - per_minute] + RATE_WINDOW - now).total_seconds()


def topic_key(topic: str) -> str:
    """How topics compare: case-insensitively, whitespace collapsed."""
    return " ".join(topic.split()).casefold()


def _utc(moment: datetime) -> str:
    """Fixed-width ISO-8601 in UTC, so that text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be stored: {moment!r}; give it a timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _follow(row: tuple[int, int, str, str]) -> Follow:
    return Follow(row[0], row[1], row[2], datetime.fromisoformat(row[3]))
