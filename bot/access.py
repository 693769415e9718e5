"""Who may ask the bot: allowlists of users and chats (how often: ``BotState``)."""

from __future__ import annotations

from dataclasses import dataclass


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
