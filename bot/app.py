"""The Telegram application: wiring handlers to python-telegram-bot, and running it.

``build_application`` is the one place where the bot is assembled; ``serve`` runs it with
long polling, or behind a webhook when ``NEWSBOT_WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from telegram import BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from corpus.errors import ConfigurationError

from .access import AccessPolicy, RateLimiter
from .handlers import GROUP_COMMANDS, PRIVATE_COMMANDS, NewsBot

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant

    from .settings import Settings

logger = logging.getLogger(__name__)

# "123456789:AAH…" as @BotFather gives it; checked before any request carries it.
_TOKEN_SHAPE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")

# Both log every request URL at INFO or DEBUG, and Bot API URLs contain the token.
_CHATTY_LOGGERS = ("httpx", "httpcore")


def bot_token(settings: Settings) -> str:
    """The token, or a ``ConfigurationError`` that says what is wrong without repeating it."""
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value():
        raise ConfigurationError(
            "NEWSBOT_TELEGRAM_TOKEN is not set: get a token from @BotFather and put it in the "
            "environment or in .env"
        )
    token = settings.telegram_token.get_secret_value().strip()
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigurationError(
            "NEWSBOT_TELEGRAM_TOKEN does not look like a bot token (digits, a colon, then the "
            "secret, as @BotFather gives it)"
        )
    return token


def check_serve_settings(settings: Settings) -> None:
    """Fail at once, in one line, on settings `serve` cannot work with."""
    bot_token(settings)
    if not settings.webhook_url:
        return
    if not settings.webhook_url.startswith("https://"):
        raise ConfigurationError("NEWSBOT_WEBHOOK_URL must be an https:// URL (Telegram's rule)")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise ConfigurationError(
            "NEWSBOT_WEBHOOK_SECRET may only hold 1-256 of A-Z, a-z, 0-9, _ and -"
        )
    if importlib.util.find_spec("tornado") is None:
        raise ConfigurationError(
            'webhook mode needs PTB\'s webhook extra: pip install "python-telegram-bot[webhooks]"'
            " (or unset NEWSBOT_WEBHOOK_URL to use long polling)"
        )


def build_application(settings: Settings, assistant: NewsAssistant | None = None) -> Application:
    """Assemble the bot: the request setup, the handlers, start-up and the error handler.

    The model and index load once, in ``post_init``, in a worker thread; updates are then
    processed concurrently, so one slow question never holds up another chat.
    """
    token = bot_token(settings)
    redact_secrets_in_logs(_secrets(settings))
    _quiet_http_logs()
    if assistant is None:
        from retrieval.assistant import NewsAssistant

        assistant = NewsAssistant(settings)
    bot = NewsBot(
        assistant,
        access=AccessPolicy(settings.allowed_user_ids, settings.allowed_chat_ids),
        limiter=RateLimiter(settings.questions_per_minute),
    )

    async def post_init(application: Application) -> None:
        await asyncio.to_thread(assistant.load)
        stats = await asyncio.to_thread(assistant.stats)
        await application.bot.set_my_commands(PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats())
        await application.bot.set_my_commands(GROUP_COMMANDS, BotCommandScopeAllGroupChats())
        logger.info(
            "@%s is ready: %d articles, %d passages",
            application.bot.username,
            stats.articles,
            stats.chunks,
        )

    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_api_url)
        .base_file_url(_file_url(settings.telegram_api_url))
        .concurrent_updates(True)
        .rate_limiter(AIORateLimiter(overall_max_rate=settings.messages_per_second, max_retries=3))
        .post_init(post_init)
        .build()
    )

    new = filters.UpdateType.MESSAGE  # edits of old messages are not new questions
    private = filters.ChatType.PRIVATE & new
    groups = filters.ChatType.GROUPS & new
    application.add_handler(TypeHandler(Update, bot.admit), group=-1)
    for name, callback in [
        ("start", bot.start),
        ("help", bot.help),
        ("ask", bot.ask),
        ("sources", bot.sources),
        ("stats", bot.stats),
        ("new", bot.new),
    ]:
        application.add_handler(CommandHandler(name, callback, filters=new))
    application.add_handler(MessageHandler(private & filters.COMMAND, bot.unknown_command))
    application.add_handler(MessageHandler(private & filters.TEXT, bot.private_text))
    application.add_handler(
        MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, bot.not_text)
    )
    application.add_handler(
        MessageHandler(groups & filters.TEXT & ~filters.COMMAND, bot.group_text)
    )
    application.add_handler(InlineQueryHandler(bot.inline_query))
    application.add_error_handler(bot.error)
    return application


def serve(settings: Settings, assistant: NewsAssistant | None = None) -> None:
    """Run the bot until SIGINT or SIGTERM: long polling, or a webhook if one is configured.

    PTB's ``run_polling``/``run_webhook`` install the signal handlers, confirm the last
    update to Telegram and shut down cleanly.
    """
    check_serve_settings(settings)
    token = bot_token(settings)
    application = build_application(settings, assistant)
    try:
        if settings.webhook_url:
            _run_webhook(application, settings)
        else:
            application.run_polling(
                allowed_updates=Update.ALL_TYPES,
                drop_pending_updates=settings.drop_pending_updates,
                bootstrap_retries=3,
            )
    except InvalidToken:
        # PTB's own message repeats the token; this one does not.
        raise ConfigurationError(
            "Telegram rejected NEWSBOT_TELEGRAM_TOKEN (401 Unauthorized): check the token "
            "with @BotFather (/token) and set it again"
        ) from None
    except TelegramError as exc:
        message = str(exc).replace(token, "<token>")
        raise ConfigurationError(
            f"could not start the bot at {settings.telegram_api_url}: {message}"
        ) from None


def _run_webhook(application: Application, settings: Settings) -> None:
    url = settings.webhook_url or ""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlparse(url).path.lstrip("/"),
        webhook_url=url,
        secret_token=secret,
        allowed_updates=Update.ALL_TYPES,
        drop_pending_updates=settings.drop_pending_updates,
        bootstrap_retries=3,
    )


def _file_url(api_url: str) -> str:
    """The file-download URL that goes with a Bot API URL (``…/bot`` → ``…/file/bot``)."""
    base = api_url.rstrip("/")
    return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"


# -- keeping secrets out of the logs -----------------------------------------------------------


def _quiet_http_logs() -> None:
    """Raise httpx and httpcore to WARNING: their request lines contain the bot token."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class SecretFilter(logging.Filter):
    """Replaces secrets in a log record (message, arguments and traceback) by ``<secret>``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: let the handler report it
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned, text = self._clean(message), self._clean(record.exc_text)
        if cleaned != message or text != record.exc_text:
            record.msg, record.args, record.exc_text = cleaned, None, text
        return True

    def _clean(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self.secrets:
            # Case-insensitively: PTB capitalises error descriptions ("Chat not found …"),
            # and a lower-cased token is most of the secret still.
            text = re.sub(re.escape(secret), "<secret>", text, flags=re.IGNORECASE)
        return text


class _RedactingRecordFactory:
    """Wraps the log record factory so that every record is cleaned as it is created."""

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped
        self.filter = SecretFilter()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        self.filter.filter(record)
        return record


def redact_secrets_in_logs(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` out of every log record from now on, whichever handler prints it.

    A second line of defence: newsbot never logs the token, but PTB does (at DEBUG it
    logs the Bot API URL, and ``InvalidToken`` repeats the token). Handler filters would
    miss handlers added later, such as pytest's, so this works where records are made.
    """
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        factory = _RedactingRecordFactory(factory)
        logging.setLogRecordFactory(factory)
    factory.filter.secrets.update(s for s in secrets if s)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Log to stderr with timestamps, quietly for HTTP libraries, and never with secrets."""
    redact_secrets_in_logs(_secrets(settings))
    _quiet_http_logs()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_brief_library_errors)


def _brief_library_errors(record: logging.LogRecord) -> bool:
    """PTB's network and token errors in one line instead of a traceback of its internals.

    Their message says what happened ("Conflict: terminated by other getUpdates request");
    `serve` reports start-up failures in a line of its own. Our handlers keep tracebacks.
    """
    error = record.exc_info[1] if record.exc_info else None
    if record.name.startswith("telegram") and isinstance(error, TelegramError):
        # exc_text was formatted, and cleaned of secrets, when the record was made.
        text = record.exc_text or "".join(traceback.format_exception_only(error))
        record.msg, record.args = f"{record.getMessage()} {text.strip().splitlines()[-1]}", None
        record.exc_info, record.exc_text = None, None
    return True


def _secrets(settings: Settings) -> list[str]:
    values = [settings.telegram_token, settings.webhook_secret]
    return [v.get_secret_value() for v in values if v is not None]
