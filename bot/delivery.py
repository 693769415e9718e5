"""Sending to Telegram through its bad moments: retried while the network or Telegram fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Message
from telegram.error import BadRequest, NetworkError, RetryAfter

logger = logging.getLogger(__name__)

#: Seconds between attempts to deliver a reply while Telegram or the network fails (5xx,
#: dropped connections, time-outs, 429 beyond the rate limiter's own retries): about two
#: minutes in all, then the error handler takes over.
SEND_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


async def deliver(send: Callable[[], Awaitable[Message]]) -> Message:
    """``send()``, tried again while the failure is the network's or Telegram's, not ours.

    A request Telegram refuses (``BadRequest``, ``Forbidden``) is not retried. A time-out
    is: the reply is then sent at least once, the lesser evil than an unanswered question.
    """
    for delay in (*SEND_RETRY_DELAYS, None):
        try:
            return await send()
        except BadRequest:
            raise
        except (NetworkError, RetryAfter) as exc:  # includes TimedOut, 5xx, dropped links
            if delay is None:
                raise
            logger.warning("Sending a reply failed (%s); trying again in %g s", exc, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
