"""Where people meet newsbot: the command line and the Telegram bot.

Names are imported on first use (see ``corpus.lazy``).
"""

from __future__ import annotations

from corpus.lazy import lazy_exports

_EXPORTS = {
    "AccessPolicy": "bot.access",
    "NewsBot": "bot.handlers",
    "DraftMessage": "bot.streaming",
    "draft_html": "bot.streaming",
    "OFFICIAL_BOT_API": "bot.settings",
    "BotState": "bot.state",
    "Follow": "bot.state",
    "FollowPusher": "bot.follows",
    "Push": "bot.follows",
    "PushReport": "bot.follows",
    "MAX_TOPIC_CHARS": "bot.follows",
    "SEND_RETRY_DELAYS": "bot.delivery",
    "SqliteState": "bot.state",
    "open_state": "bot.app",
    "PostgresState": "bot.pg_state",
    "answer_from_json": "bot.state",
    "answer_to_json": "bot.state",
    "topic_key": "bot.state",
    "chosen_follow": "bot.state",
    "followed_topic": "bot.state",
    "rate_limit_wait": "bot.state",
    "checked_topic": "bot.follows",
    "deliver": "bot.delivery",
    "ScheduledRefresh": "bot.schedule",
    "in_daemon_thread": "bot.schedule",
    "lower_priority": "bot.schedule",
    "BACKGROUND_NICENESS": "bot.schedule",
    "SecretFilter": "bot.app",
    "Settings": "bot.settings",
    "Shutdown": "bot.app",
    "addressed_question": "bot.handlers",
    "bot_token": "bot.app",
    "build_application": "bot.app",
    "check_serve_settings": "bot.app",
    "configure_logging": "bot.app",
    "redact_secrets_in_logs": "bot.app",
    "run_bot": "bot.app",
    "serve": "bot.app",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
