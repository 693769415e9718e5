"""What newsbot remembers of its web sources, beside the index: ``sources.sqlite``.

Per URL, the validators of the last visit (ETag, Last-Modified), so the next round asks
"has it changed?" and a 304 costs nothing. Per source (feed, page, list), its kind, when it
last worked and its last error, for ``newsbot stats`` (how many of its articles are stored
the index itself says). Per round, what it
did. Validators are written only after the index commit that holds what they describe: a
crash in between costs a re-fetch, never a story that the next round believes it has.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from corpus.fetching import Validators

__all__ = ["SourceStats", "SourceStore"]

STATE_NAME = "sources.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    url TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    last_ok TEXT,
    last_error TEXT,
    last_error_at TEXT
);
CREATE TABLE IF NOT EXISTS rounds (
    finished TEXT PRIMARY KEY,
    added INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    expired INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SourceStats:
    url: str
    kind: str
    last_ok: str | None
    last_error: str | None
    last_error_at: str | None


class SourceStore:
    """The sources database of one index directory (created on first write)."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / STATE_NAME

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            with db:
                yield db
        finally:
            db.close()

    def validators(self) -> dict[str, Validators]:
        """Every URL's validators (read once per round: a round asks for each URL)."""
        if not self.path.exists():
            return {}
        with self._db() as db:
            return {
                url: Validators(etag, modified)
                for url, etag, modified in db.execute("SELECT * FROM validators")
            }

    def record_round(
        self,
        *,
        validators: dict[str, Validators],
        sources: Iterable[tuple[str, str, str | None]],
        counts: dict[str, int],
    ) -> None:
        """After a commit: the validators that now hold, each source's outcome
        (url, kind, error or None) and the round's counts."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db() as db:
            db.executemany(
                "INSERT OR REPLACE INTO validators VALUES (?, ?, ?)",
                [
                    (url, v.etag, v.last_modified)
                    for url, v in validators.items()
                    if v.etag or v.last_modified
                ],
            )
            for url, kind, error in sources:
                db.execute(
                    "INSERT INTO sources (url, kind) VALUES (?, ?) ON CONFLICT(url) DO NOTHING",
                    (url, kind),
                )
                if error is None:
                    db.execute(
                        "UPDATE sources SET kind = CASE WHEN ? = 'unchanged' THEN kind ELSE ? "
                        "END, last_ok = ? WHERE url = ?",
                        (kind, kind, now, url),
                    )
                else:
                    db.execute(
                        "UPDATE sources SET last_error = ?, last_error_at = ? WHERE url = ?",
                        (error, now, url),
                    )
            db.execute(
                "INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?)",
                (
                    now,
                    counts.get("added", 0),
                    counts.get("updated", 0),
                    counts.get("unchanged", 0),
                    counts.get("failed", 0),
                    counts.get("expired", 0),
                ),
            )

    def sources(self) -> list[SourceStats]:
        if not self.path.exists():
            return []
        with self._db() as db:
            return [
                SourceStats(*row)
                for row in db.execute(
                    "SELECT url, kind, last_ok, last_error, last_error_at FROM sources ORDER BY url"
                )
            ]

    def last_round(self) -> str | None:
        if not self.path.exists():
            return None
        with self._db() as db:
            (finished,) = db.execute("SELECT MAX(finished) FROM rounds").fetchone()
            return finished
