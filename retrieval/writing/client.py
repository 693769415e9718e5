"""Talking to an OpenAI-compatible chat server (llama.cpp, Ollama, vLLM, LM Studio, OpenAI).

The wire protocol is one endpoint, ``POST {base_url}/chat/completions``, answered with JSON
or, when streaming, with server-sent events; httpx (already used for feeds) speaks it in a
few lines, with nothing read from the environment (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``
and the like play no part) and no retry policy of its own.

One whole step, retries included, is bounded by ``timeout``. A failed request is retried only
when the wait (``Retry-After``, or a short backoff) still leaves time for a reply, so a 429
asking for a minute falls back at once instead of holding the question. Whatever goes wrong
becomes a :class:`ChatFailure` whose reason fits a log line (never the API key).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx

__all__ = ["ChatClient", "ChatFailure"]

_RETRY_MARGIN = 1.0  # a retry is worth it only if a reply can still arrive after the wait
_BACKOFF = 0.5  # seconds before the first retry when the server names no wait
_ATTEMPTS = 3
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class ChatFailure(Exception):
    """The model gave no usable reply; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class ChatClient:
    """Chat completions from ``base_url`` (e.g. ``http://127.0.0.1:8080/v1``).

    Blocking (:meth:`complete`) for worker threads and the CLI, or async (:meth:`acomplete`).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 20.0,
        max_tokens: int = 300,
        temperature: float = 0.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature

    def complete(
        self,
        messages: Sequence[dict[str, str]],
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """The reply's text. With ``on_text`` the reply is streamed and ``on_text`` called with
        the text so far as it grows. Runs its own event loop, in a thread of its own when the
        caller's thread already runs one."""
        work = self.acomplete(messages, on_text=on_text)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, work).result()

    async def acomplete(
        self,
        messages: Sequence[dict[str, str]],
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        deadline = time.monotonic() + self.timeout
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": on_text is not None,
        }
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(timeout=self.timeout, headers=self._headers) as http,
            ):
                for attempt in range(1, _ATTEMPTS + 1):
                    try:
                        text = await self._request(http, body, on_text)
                    except _Retryable as failed:
                        wait = failed.wait
                        if wait is None:
                            wait = _BACKOFF * 2 ** (attempt - 1)
                        if attempt == _ATTEMPTS:
                            raise ChatFailure(failed.reason) from None
                        if wait + _RETRY_MARGIN > deadline - time.monotonic():
                            raise ChatFailure(
                                f"{failed.reason}; waiting {wait:g} s to retry would not fit in "
                                f"the {self.timeout:g} s allowed"
                            ) from None
                        await asyncio.sleep(wait)
                        continue
                    if not text.strip():
                        raise ChatFailure("the model replied with no text")
                    return text
        except TimeoutError:
            raise ChatFailure(f"no complete reply within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:  # e.g. the connection dropped mid-stream
            raise ChatFailure(f"the reply broke off ({type(exc).__name__})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        http: httpx.AsyncClient,
        body: dict[str, Any],
        on_text: Callable[[str], None] | None,
    ) -> str:
        try:
            async with http.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_failure(response)
                if on_text is None or "text/event-stream" not in response.headers.get(
                    "content-type", ""
                ):
                    # Not streamed (or a server that ignores "stream"): one JSON object.
                    text = _message_text(_json(await response.aread()))
                    if on_text is not None and text:
                        on_text(text)
                    return text
                return await _read_stream(_events(response.aiter_lines()), on_text)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Not retried: a server that is down stays down for the next second too.
            raise ChatFailure(f"could not reach {self.url} ({type(exc).__name__})") from None


async def _read_stream(events: AsyncIterator[str], on_text: Callable[[str], None]) -> str:
    pieces: list[str] = []
    async for data in events:
        if data == "[DONE]":
            break
        event = _json(data.encode())
        if "error" in event:
            raise ChatFailure(f"the server reported an error mid-reply: {_error_text(event)}")
        choices = event.get("choices") or []  # a usage-only event has none
        piece = choices[0].get("delta", {}).get("content") if choices else None
        if piece is not None and not isinstance(piece, str):
            raise ChatFailure("the streamed reply was malformed (content is not text)")
        if piece:
            pieces.append(piece)
            on_text("".join(pieces))
    return "".join(pieces)


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data:`` payloads of a server-sent event stream, one per event."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ChatFailure(f"the reply was not JSON: {raw[:60]!r}") from None
    if not isinstance(value, dict):
        raise ChatFailure("the reply was not a JSON object")
    return value


def _message_text(reply: dict[str, Any]) -> str:
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ChatFailure("the reply was not a chat completion (no choices[0].message)") from None
    if content is not None and not isinstance(content, str):
        raise ChatFailure("the reply was malformed (content is not text)")
    return content or ""


def _status_failure(response: httpx.Response) -> Exception:
    status = response.status_code
    after = response.headers.get("retry-after")
    reason = f"the server answered {status}" + (f" (Retry-After: {after})" if after else "")
    if status in (401, 403):
        return ChatFailure(f"the server refused the request ({status}): check NEWSBOT_LLM_API_KEY")
    if status in _RETRY_STATUSES:
        return _Retryable(reason, _seconds(after))
    try:
        detail = _error_text(json.loads(response.content))
    except ValueError:
        detail = ""
    return ChatFailure(reason + (f": {detail}" if detail else ""))


def _error_text(reply: Any) -> str:
    error = reply.get("error") if isinstance(reply, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return " ".join(str(message or "").split())[:200]


def _seconds(retry_after: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
