"""Terms' BM25 postings read from PostgreSQL once and kept by the process that reads them.

Lexical search needs every posting of every question term. In PostgreSQL a common term's
postings are read at ~0.36 µs each (a term in a tenth of a million passages: 35 ms), so a
question of common words would spend most of its time reading them again and again; the
FAISS backend keeps its whole BM25 matrix in memory for the same reason. Here a replica
keeps them too, within a budget of postings (``NEWSBOT_POSTGRES_POSTINGS_MB``):

- the heaviest terms (most postings: the costliest to read, and the words most questions
  use) are read at start (``prefetch``, from ``load()``) and kept;
- the rest are read on first use, all of a question's missing terms in one query, and kept
  least recently used first.

Postings are kept by passage id, not by a generation's row numbers, so they outlive the
generation that read them: passage ids only grow (a re-ingested article gets new ones) and a
passage's terms never change, so a newer generation appends the postings of the passages
added since (one query for every kept term) and rows removed since are dropped when ids are
turned into rows. A term whose kept postings are more than twice the ones it has now (much
was removed) is read again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg

__all__ = ["BYTES_PER_POSTING", "PostingsCache"]

#: A kept posting: its passage id (int64) and term frequency (uint16).
BYTES_PER_POSTING = 10
#: Terms read at start: those in at least this many passages, heaviest first, filling at
#: most this share of the budget (the rest is for terms read on first use).
PREFETCH_MIN_DOCUMENTS = 1000
PREFETCH_SHARE = 0.8
#: Terms per query when prefetching (one result row per term).
_PREFETCH_BATCH = 64

Postings = tuple[np.ndarray, np.ndarray]  # passage ids ascending, term frequencies
Reader = Callable[[Callable[[psycopg.Connection[Any]], Any]], Any]


class PostingsCache:
    """Postings by term id, complete up to one passage id (see the module docstring).

    Shared by the generations one backend opens, and by the threads answering questions;
    one thread reads from the database at a time, the next finds what it read.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget = max(budget_bytes // BYTES_PER_POSTING, 0)  # postings
        self._lock = threading.Lock()
        self._items: OrderedDict[int, Postings] = OrderedDict()
        self._kept: set[int] = set()  # prefetched: never evicted
        self._held = 0
        self._complete_to = -1  # every kept term holds all its postings with ids ≤ this

    @property
    def held(self) -> int:
        """Postings held now."""
        return self._held

    def get(
        self, read: Reader, term_ids: Sequence[int], documents: dict[int, int], newest: int
    ) -> list[Postings]:
        """Each term's postings with passage ids ≤ at least ``newest`` (the generation's
        highest id); ``documents`` is each term's passage count in that generation."""
        with self._lock:
            self._catch_up(read, newest)
            found: dict[int, Postings] = {}
            for term_id in term_ids:
                item = self._items.get(term_id)
                if item is not None and len(item[0]) > 2 * documents.get(term_id, 0) + 64:
                    self._drop(term_id)  # mostly removed passages: read it afresh
                elif item is not None:
                    found[term_id] = item
                    self._items.move_to_end(term_id)
            missing = [t for t in dict.fromkeys(term_ids) if t not in found]
            if missing:
                fetched = _read(read, missing, self._complete_to)
                for term_id, item in fetched.items():
                    self._add(term_id, item)
                found.update(fetched)
                self._evict()
        return [found[t] for t in term_ids]

    def prefetch(self, read: Reader, documents: dict[int, int], newest: int) -> int:
        """Read and keep the heaviest terms' postings (``documents``: term id → passage
        count); the number of postings held after."""
        heaviest = sorted(documents.items(), key=lambda item: -item[1])
        room, chosen = int(self.budget * PREFETCH_SHARE), []
        for term_id, count in heaviest:
            if count < PREFETCH_MIN_DOCUMENTS or count > room:
                break
            room -= count
            chosen.append(term_id)
        with self._lock:
            self._catch_up(read, newest)
            self._kept.update(chosen)
            wanted = [t for t in chosen if t not in self._items]
        for start in range(0, len(wanted), _PREFETCH_BATCH):
            with self._lock:
                batch = [t for t in wanted[start : start + _PREFETCH_BATCH] if t not in self._items]
                for term_id, item in _read(read, batch, self._complete_to).items():
                    self._add(term_id, item)
                self._evict()
        return self._held

    def _catch_up(self, read: Reader, newest: int) -> None:
        """Append the postings of passages added since the kept ones were read."""
        if newest <= self._complete_to:
            return
        if self._items:
            added = _read(read, list(self._items), newest, after=self._complete_to)
            for term_id, (ids, tf) in added.items():
                if len(ids):
                    old_ids, old_tf = self._items[term_id]
                    self._items[term_id] = (
                        np.concatenate([old_ids, ids]),
                        np.concatenate([old_tf, tf]),
                    )
                    self._held += len(ids)
        self._complete_to = newest

    def _add(self, term_id: int, item: Postings) -> None:
        self._drop(term_id)
        self._items[term_id] = item
        self._held += len(item[0])

    def _drop(self, term_id: int) -> None:
        item = self._items.pop(term_id, None)
        if item is not None:
            self._held -= len(item[0])

    def _evict(self) -> None:
        """Least recently used first; prefetched terms stay."""
        for term_id in [t for t in self._items if t not in self._kept]:
            if self._held <= self.budget:
                return
            self._drop(term_id)


def _read(read: Reader, term_ids: list[int], up_to: int, *, after: int = -1) -> dict[int, Postings]:
    """Each term's postings with ``after`` < passage id ≤ ``up_to`` (every term given is in
    the answer), as two byte strings the server makes (big-endian ids and frequencies) read
    straight into NumPy: converting value by value cost more than the query."""

    def fetch(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        with conn.cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT term_id, string_agg(int8send(passage_id), '' ORDER BY passage_id), "
                "string_agg(int2send(tf), '' ORDER BY passage_id) FROM postings "
                "WHERE term_id = ANY(%s) AND passage_id > %s AND passage_id <= %s "
                "GROUP BY term_id",
                [term_ids, after, up_to],
            )
            return cursor.fetchall()

    empty = (np.zeros(0, np.int64), np.zeros(0, np.uint16))
    found: dict[int, Postings] = dict.fromkeys(term_ids, empty)
    if not term_ids:
        return found
    for term_id, ids, tfs in read(fetch):
        found[term_id] = (
            np.frombuffer(ids, ">i8").astype(np.int64),
            np.frombuffer(tfs, ">i2").astype(np.uint16),
        )
    return found
