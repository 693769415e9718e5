"""Who may ask the bot, and how often: allowlists of users and chats, and a per-user rate."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Allowlists of Telegram user ids and chat ids; an empty list lets everyone in.

    Both must admit an update. A private chat's id is the user's own id, so restricting
    chats to a group also closes private chats unless those users' ids are listed too.
    """

    user_ids: frozenset[int] = frozenset()
    chat_ids: frozenset[int] = frozenset()

    def admits(self, user_id: int | None, chat_id: int | None) -> bool:
        """Whether a message from ``user_id`` in ``chat_id`` (``None``: unknown) is served."""
        if self.user_ids and user_id not in self.user_ids:
            return False
        return not (self.chat_ids and chat_id is not None and chat_id not in self.chat_ids)


@dataclass(slots=True)
class RateLimiter:
    """At most ``per_minute`` questions from one user in any 60 seconds (0 = no limit)."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _asked: dict[int, deque[float]] = field(default_factory=dict)

    def wait_time(self, user_id: int) -> float:
        """Record a question and return 0, or return the seconds until one is allowed again.

        A refused question is not recorded, so asking again early does not extend the wait.
        """
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        asked = self._asked.setdefault(user_id, deque())
        while asked and now - asked[0] >= 60:
            asked.popleft()
        if len(asked) >= self.per_minute:
            return 60 - (now - asked[0])
        asked.append(now)
        return 0.0
