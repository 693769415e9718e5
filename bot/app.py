"""The Telegram application: wiring handlers to python-telegram-bot, and running it.

``build_application`` is the one place where the bot is assembled; ``run_bot`` runs it with
long polling, or behind a webhook when ``NEWSBOT_WEBHOOK_URL`` is set, until its
``Shutdown`` is requested: by SIGINT or SIGTERM (``serve`` installs the handlers), or by
Telegram rejecting the token while the bot runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import re
import signal
import traceback
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from telegram import BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
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
from telegram.request import HTTPXRequest

from corpus.errors import ConfigurationError

from .access import AccessPolicy
from .follows import FollowPusher
from .handlers import GROUP_COMMANDS, PRIVATE_COMMANDS, NewsBot
from .schedule import ScheduledRefresh
from .state import BotState, SqliteState

if TYPE_CHECKING:
    from retrieval.assistant import NewsAssistant
    from retrieval.refresh import RefreshReport

    from .settings import Settings

logger = logging.getLogger(__name__)

# "123456789:AAH…" as @BotFather gives it; checked before any request carries it.
_TOKEN_SHAPE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")

# Both log every request URL at INFO or DEBUG, and Bot API URLs contain the token.
_CHATTY_LOGGERS = ("httpx", "httpcore")

#: Seconds a long poll waits on Telegram for updates before asking again.
POLL_TIMEOUT = 10

#: Seconds between attempts to reach Telegram at start-up, e.g. while the network comes up.
STARTUP_RETRY_DELAYS = (1.0, 2.0, 4.0)

TOKEN_REJECTED = (
    "Telegram rejected NEWSBOT_TELEGRAM_TOKEN (401 Unauthorized): check the token with "
    "@BotFather (/token) and set it again"
)
TOKEN_REVOKED = (
    "Telegram rejected NEWSBOT_TELEGRAM_TOKEN (401 Unauthorized) while the bot was running, "
    "so it stopped: the token was revoked or the bot deleted. Get the current token from "
    "@BotFather (/token), set it and start the bot again"
)


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
    if settings.refresh_minutes is not None:
        _refresh_sources(settings)
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


class Shutdown:
    """Tells a running bot to stop, and remembers whether Telegram rejected its token.

    Requested by a signal (a normal stop), or by the first request Telegram answers with
    401 Unauthorized: the token was revoked, or the bot deleted, while it ran. PTB's polling
    then ends without a word and the bot would idle forever; instead it stops the same
    graceful way, and ``serve`` reports why and exits non-zero.
    """

    def __init__(self) -> None:
        self._requested = asyncio.Event()
        self.token_rejected = False

    def request(self) -> None:
        self._requested.set()

    def reject_token(self) -> None:
        self.token_rejected = True
        self._requested.set()

    async def wait(self) -> None:
        await self._requested.wait()


class _TokenWatchingRequest(HTTPXRequest):
    """PTB's HTTP layer, telling ``shutdown`` when Telegram rejects the token.

    Every request of the bot passes here, polling and replies alike, so a revoked token is
    noticed in webhook mode too, where no ``getUpdates`` would fail.
    """

    __slots__ = ("_shutdown",)

    def __init__(self, shutdown: Shutdown, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shutdown = shutdown

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        task = asyncio.current_task()
        if status == HTTPStatus.UNAUTHORIZED and task is not None:
            # PTB turns the 401 into InvalidToken. Stop once the task that made the request
            # is done with it: polling has then ended by itself (stopping it earlier would
            # leave that error unretrieved, and poll once more), or a reply's error handler
            # has run.
            task.add_done_callback(lambda _: self._shutdown.reject_token())
        return status, payload


def build_application(
    settings: Settings,
    assistant: NewsAssistant | None = None,
    shutdown: Shutdown | None = None,
    state: BotState | None = None,
) -> Application:
    """Assemble the bot: the request setup, the handlers, start-up and the error handler.

    The model and index load once, in ``post_init``, in a worker thread; updates are then
    processed concurrently, so one slow question never holds up another chat. A request
    Telegram answers with 401 Unauthorized requests ``shutdown``. ``state`` defaults to the
    SQLite file of ``NEWSBOT_STATE_PATH``; it is closed when the bot stops.
    """
    token = bot_token(settings)
    shutdown = shutdown or Shutdown()
    redact_secrets_in_logs(_secrets(settings))
    _quiet_http_logs()
    if assistant is None:
        from retrieval.assistant import NewsAssistant

        assistant = NewsAssistant(settings)
    state = state or open_state(settings)
    zone = settings.zone()

    def clock() -> datetime:
        return datetime.now(zone)

    bot = NewsBot(
        assistant,
        access=AccessPolicy(settings.allowed_user_ids, settings.allowed_chat_ids),
        state=state,
        questions_per_minute=settings.questions_per_minute,
        max_follows=settings.max_follows,
        pushes_per_hour=settings.pushes_per_hour,
        stream_answers=bool(settings.llm_base_url),
        clock=clock,
    )
    pusher = FollowPusher(assistant, state, per_hour=settings.pushes_per_hour, clock=clock)

    async def push_new_articles(_: RefreshReport) -> None:
        pushed = await pusher.push_new(application.bot)
        if pushed.sent or pushed.over_the_limit or pushed.chats_dropped:
            logger.info(
                "Followed topics: %d messages sent, %d over the hourly limit, %d chats gone",
                pushed.sent,
                pushed.over_the_limit,
                len(pushed.chats_dropped),
            )

    schedule = _schedule(settings, assistant, push_new_articles)

    async def post_init(application: Application) -> None:
        await asyncio.to_thread(assistant.load)
        stats = await asyncio.to_thread(assistant.stats)
        await pusher.begin()
        application.bot_data[_WATCH] = asyncio.create_task(pusher.watch(application.bot))
        if schedule is not None:
            application.bot_data[_SCHEDULE] = schedule
            schedule.start()
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
        # PTB's defaults: a pool of 256 connections for replies, one for the long poll.
        .request(_TokenWatchingRequest(shutdown))
        .get_updates_request(_TokenWatchingRequest(shutdown, connection_pool_size=1))
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
        ("latest", bot.latest),
        ("follow", bot.follow),
        ("unfollow", bot.unfollow),
        ("following", bot.following),
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
    application.bot_data[_STATE] = state
    return application


_SCHEDULE = "newsbot.schedule"  # where post_init leaves the refresh schedule for _stop
_STATE = "newsbot.state"  # the bot's state store, closed by _stop
_WATCH = "newsbot.watch"  # the task looking for new articles on followed topics


def _schedule(
    settings: Settings,
    assistant: NewsAssistant,
    after_round: Callable[[RefreshReport], Awaitable[None]],
) -> ScheduledRefresh | None:
    """The refresh schedule, if NEWSBOT_REFRESH_MINUTES and NEWSBOT_FEEDS ask for one."""
    if settings.refresh_minutes is None:
        return None
    return ScheduledRefresh(
        assistant, _refresh_sources(settings), settings.refresh_minutes, after_round=after_round
    )


def _refresh_sources(settings: Settings) -> list[str]:
    from retrieval.refresh import configured_sources

    sources = configured_sources(settings.feeds)
    if not sources:
        raise ConfigurationError(
            "NEWSBOT_REFRESH_MINUTES is set but NEWSBOT_FEEDS is empty: set the feeds to refresh"
        )
    return sources


async def run_bot(
    application: Application,
    settings: Settings,
    shutdown: Shutdown,
    *,
    poll_timeout: int = POLL_TIMEOUT,
) -> None:
    """Run the bot until ``shutdown`` is requested, then stop it gracefully.

    The steps of PTB's ``run_polling``/``run_webhook``, in a loop of our own so that a
    rejected token ends it as a signal does. Stopping waits for the questions in progress,
    so answers being prepared are still sent, and confirms the fetched updates to Telegram.
    Errors at start-up (the token refused, Telegram unreachable) are raised.
    """
    assert application.post_init is not None and application.updater is not None
    await _initialize(application)
    async with application:  # shuts it down on the way out, whatever happens
        try:
            await application.post_init(application)
            if settings.webhook_url:
                await application.updater.start_webhook(**_webhook_options(settings))
            else:
                await application.updater.start_polling(
                    timeout=poll_timeout,
                    allowed_updates=Update.ALL_TYPES,
                    drop_pending_updates=settings.drop_pending_updates,
                    bootstrap_retries=len(STARTUP_RETRY_DELAYS),
                )
            await application.start()
            await shutdown.wait()
            if shutdown.token_rejected:
                logger.error("Telegram rejected the token (401 Unauthorized): stopping the bot")
        finally:
            await _stop(application)


async def _initialize(application: Application) -> None:
    """``application.initialize()`` (``getMe``), tried again while Telegram is unreachable."""
    for delay in (*STARTUP_RETRY_DELAYS, None):
        try:
            await application.initialize()
            return
        except BadRequest:
            raise
        except (NetworkError, RetryAfter) as exc:  # not InvalidToken: retrying cannot help
            if delay is None:
                raise
            logger.warning("Could not reach Telegram (%s); trying again in %g s", exc, delay)
            await asyncio.sleep(delay)


async def _stop(application: Application) -> None:
    """Stop fetching updates, then finish the ones fetched: ``run_polling``'s order.

    Either may not have started, if start-up failed half-way.
    """
    assert application.updater is not None
    schedule = application.bot_data.get(_SCHEDULE)
    if schedule is not None:
        await schedule.stop()
    watch = application.bot_data.get(_WATCH)
    if watch is not None:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    if application.updater.running:
        # Polling that ended on a rejected token re-raises it here; it is reported already.
        with contextlib.suppress(InvalidToken):
            await application.updater.stop()
    if application.running:
        await application.stop()
    state = application.bot_data.get(_STATE)
    if state is not None:
        await asyncio.to_thread(state.close)


def serve(settings: Settings, assistant: NewsAssistant | None = None) -> None:
    """Run the bot until SIGINT or SIGTERM: long polling, or a webhook if one is configured.

    The first signal stops the bot gracefully; a second one ends the process at once.
    A token Telegram rejects, at start-up or later, is a ``ConfigurationError``.
    """
    check_serve_settings(settings)
    token = bot_token(settings)
    shutdown = Shutdown()
    application = build_application(settings, assistant, shutdown)
    try:
        asyncio.run(_run_until_signalled(application, settings, shutdown))
    except InvalidToken:
        # PTB's own message repeats the token; this one does not.
        raise ConfigurationError(TOKEN_REJECTED) from None
    except TelegramError as exc:
        message = str(exc).replace(token, "<token>")
        raise ConfigurationError(
            f"could not start the bot at {settings.telegram_api_url}: {message}"
        ) from None
    if shutdown.token_rejected:
        raise ConfigurationError(TOKEN_REVOKED)


async def _run_until_signalled(
    application: Application, settings: Settings, shutdown: Shutdown
) -> None:
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows, where Ctrl-C still raises KeyboardInterrupt and run_bot's
        # clean-up runs as asyncio.run cancels it.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(number, _stop_on_signal, loop, number, shutdown)
    await run_bot(application, settings, shutdown)


def _stop_on_signal(loop: asyncio.AbstractEventLoop, number: int, shutdown: Shutdown) -> None:
    logger.info(
        "Received %s: stopping (send it again to quit at once)", signal.Signals(number).name
    )
    loop.remove_signal_handler(number)  # the default action again, for the impatient
    shutdown.request()


def _webhook_options(settings: Settings) -> dict[str, Any]:
    url = settings.webhook_url or ""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlparse(url).path.lstrip("/"),
        "webhook_url": url,
        "secret_token": secret,
        "allowed_updates": Update.ALL_TYPES,
        "drop_pending_updates": settings.drop_pending_updates,
        "bootstrap_retries": len(STARTUP_RETRY_DELAYS),
    }


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
    """What no log line may show: tokens, keys, database addresses and their passwords."""
    values = [
        settings.telegram_token,
        settings.webhook_secret,
        settings.llm_api_key,
        settings.database_url,
        settings.database_replica_urls,
    ]
    secrets = [v.get_secret_value() for v in values if v is not None]
    urls = [settings.database_url.get_secret_value()] if settings.database_url else []
    if urls:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        for url in urls + settings.replica_urls():
            with contextlib.suppress(psycopg.ProgrammingError):
                secrets.append(str(conninfo_to_dict(url).get("password") or ""))
    return [s for s in secrets if s]


def open_state(settings: Settings) -> BotState:
    """The bot's state where the store is: SQLite beside the index, or the PostgreSQL
    database that every replica shares (``NEWSBOT_STORE=postgres``)."""
    if settings.store == "postgres" and settings.database_url is not None:
        from .pg_state import PostgresState

        return PostgresState(settings.database_url.get_secret_value())
    return SqliteState(settings.bot_state_path())
