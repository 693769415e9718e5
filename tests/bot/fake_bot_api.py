"""A fake Telegram Bot API server on 127.0.0.1, so the real PTB client runs end to end.

It speaks the wire protocol (``POST /bot<token>/<method>`` with form-encoded or JSON
bodies, ``{"ok": true, "result": …}`` replies shaped like Telegram's objects), long-polls
``getUpdates`` with offsets, records every call, and checks what the bot sends the way
Telegram does: at most 4,096 characters, and HTML that is well-formed and uses only the
tags Telegram knows (else ``400 Bad Request: can't parse entities: …``).

Network faults are injected with :meth:`FakeBotAPI.inject`: an error status (429 with
``retry_after``, 500, 502, …), a dropped connection or a stall, for the next calls of a
method. A faulted call is not carried out, as when Telegram or a proxy in front of it fails
before the request reaches the bot's chat. :meth:`FakeBotAPI.revoke_token` answers every
call with 401 from then on, as Telegram does once the token is revoked.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

TOKEN = "123456789:AAHfake-test-token_0123456789abcdefXYZ"
BOT_ID = 123456789
BOT_USERNAME = "newsbot_test_bot"

# Telegram's HTML: tag → the attributes it accepts.
_ALLOWED_TAGS: dict[str, set[str]] = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "tg-spoiler": set(),
    "span": {"class"},
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
    "tg-emoji": {"emoji-id"},
}
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_ATTRIBUTE = re.compile(r'\s+([a-z-]+)(?:=(?:"([^"]*)"|\'([^\']*)\'|([^\s"\'>]+)))?')
# Telegram's answers to a token it does not know (a wrong or revoked one), and to a bad path.
_UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
_NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
# Parameters that stay strings even when they look like JSON.
_STRING_PARAMS = {"text", "query", "parse_mode", "action", "inline_query_id", "secret_token"}


class ParseError(ValueError):
    pass


class _Blocked(Exception):
    """The chat blocked the bot: Telegram answers 403."""


_FORBIDDEN = {
    "ok": False,
    "error_code": 403,
    "description": "Forbidden: bot was blocked by the user",
}


class _Revoked(Exception):
    """The token was revoked while a call waited (a long poll)."""


def check_telegram_html(text: str) -> str:
    """The visible text of Telegram HTML; raises ``ParseError`` as Telegram would refuse it."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end < 0:
                raise ParseError(f"Can't find end of the tag starting at byte offset {i}")
            tag = text[i + 1 : end]
            if tag.startswith("/"):
                name = tag[1:].strip().lower()
                if not stack or stack[-1] != name:
                    raise ParseError(f'Unmatched end tag at byte offset {i}, expected "</{name}>"')
                stack.pop()
            else:
                match = re.match(r"([a-zA-Z][a-zA-Z-]*)", tag)
                name = match.group(1).lower() if match else ""
                if name not in _ALLOWED_TAGS:
                    raise ParseError(f'Unsupported start tag "{name}" at byte offset {i}')
                attributes = {
                    m.group(1): m.group(2) or m.group(3) or m.group(4) or ""
                    for m in _ATTRIBUTE.finditer(tag[len(name) :])
                }
                unknown = set(attributes) - _ALLOWED_TAGS[name]
                if unknown:
                    raise ParseError(f'Unsupported attribute "{unknown.pop()}" in tag "{name}"')
                if name == "a" and not attributes.get("href"):
                    raise ParseError("Can't find href attribute of a link")
                stack.append(name)
            i = end + 1
        elif char == "&" and (entity := _ENTITY.match(text, i)):
            out.append("x")  # one character, whatever it decodes to
            i = entity.end()
        else:
            out.append(char)
            i += 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering one call.

    ``status``: answer with this HTTP status and Telegram's error shape (``retry_after``
    adds ``parameters.retry_after``, as Telegram's 429 does); ``drop``: close the connection
    without a response; ``stall``: wait ``seconds``, then drop it.
    """

    kind: str = "status"
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    seconds: float = 0.0

    def reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            reply["parameters"] = {"retry_after": self.retry_after}
        return reply


TOO_MANY_REQUESTS = Fault(status=429, description="Too Many Requests: retry after 1", retry_after=1)
INTERNAL_ERROR = Fault(status=500, description="Internal Server Error")
BAD_GATEWAY = Fault(status=502, description="Bad Gateway")
DROP = Fault(kind="drop")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    result: Any = None
    error: str | None = None  # the description of a refused call


class FakeBotAPI:
    """Start with ``start()``; point the bot at ``url``; inject updates; read ``calls``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.unauthorized = False  # answer everything with 401, as for a revoked token
        self.reject_html = 0  # refuse this many HTML messages as unparsable
        # Chats that blocked the bot (or were deleted): sending to them is 403 Forbidden.
        self.blocked_chats: set[int] = set()
        self.faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )
        self.faulted: list[tuple[str, Fault]] = []  # (method, fault) as they were applied
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, id) → as it is now
        self._changed = threading.Condition()
        self._closing = False
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bot"

    def start(self) -> FakeBotAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- what tests inject --------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (its ``update_id`` is assigned here) and wake the long poll."""
        with self._changed:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def message(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        text: str | None = None,
        *,
        reply_to: dict[str, Any] | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """Push a new message; commands and @mentions get entities as Telegram adds them."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            **content,
        }
        if text is not None:
            message["text"] = text
            entities = _entities(text)
            if entities:
                message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.push({"message": message})
        return message

    def inline_query(self, user: dict[str, Any], query: str) -> str:
        query_id = str(next(self._message_ids))
        self.push({"inline_query": {"id": query_id, "from": user, "query": query, "offset": ""}})
        return query_id

    def revoke_token(self) -> None:
        """Refuse the token from now on (401), ending a pending long poll with it too."""
        with self._changed:
            self.unauthorized = True
            self._changed.notify_all()

    def inject(self, method: str, *faults: Fault) -> None:
        """The next calls of ``method`` meet ``faults``, one each, in order."""
        with self._changed:
            self.faults[method].extend(faults)

    def _take_fault(self, method: str) -> Fault | None:
        with self._changed:
            queue = self.faults.get(method)
            if not queue:
                return None
            fault = queue.popleft()
            self.faulted.append((method, fault))
            return fault

    # -- what tests read ----------------------------------------------------------------

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        """Calls of ``method`` (to ``chat_id``) that were not refused, in order."""
        return [
            c
            for c in list(self.calls)
            if c.method == method
            and c.error is None
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    async def wait_for(
        self,
        condition: Callable[[], Any],
        timeout: float = 15.0,
        what: str = "condition",
        *,
        progress: Callable[[], Any] | None = None,
    ) -> Any:
        """``condition()`` once it is true; fails after ``timeout`` seconds.

        With ``progress``, only after ``timeout`` seconds in which its value did not change:
        a long wait on a busy machine is then not mistaken for a bot that stopped answering.
        """
        deadline = time.monotonic() + timeout
        seen = progress() if progress else None
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            if progress is not None and (now := progress()) != seen:
                seen, deadline = now, time.monotonic() + timeout
            await asyncio.sleep(0.01)
        stalled = " (no progress)" if progress else ""
        raise AssertionError(f"timed out{stalled} waiting for {what}; calls: {self._summary()}")

    async def wait_for_messages(self, chat_id: int, count: int = 1, timeout: float = 15.0):
        await self.wait_for(
            lambda: len(self.sent(chat_id)) >= count, timeout, f"{count} message(s) to {chat_id}"
        )
        return self.sent(chat_id)

    def _summary(self) -> str:
        return ", ".join(f"{c.method}({c.params.get('chat_id', '')})" for c in self.calls[-30:])

    # -- the Bot API ----------------------------------------------------------------------

    def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        call = Call(method, params)
        self.calls.append(call)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            call.error = "Not Found"
            return 404, dict(_NOT_FOUND)
        try:
            call.result = handler(params)
            return 200, {"ok": True, "result": call.result}
        except _Revoked:
            call.error = "Unauthorized"
            return 401, dict(_UNAUTHORIZED)
        except _Blocked:
            call.error = _FORBIDDEN["description"]
            return 403, dict(_FORBIDDEN)
        except ParseError as exc:
            description = f"Bad Request: can't parse entities: {exc}"
        except ValueError as exc:
            description = f"Bad Request: {exc}"
        call.error = description
        return 400, {"ok": False, "error_code": 400, "description": description}

    def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Newsbot",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing and not self.unauthorized:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            if self.unauthorized:
                raise _Revoked
            return self._updates[:limit]

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            with self._changed:
                self._updates.clear()
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        if not str(params.get("url", "")).startswith("https://"):
            raise ValueError("bad webhook: An HTTPS URL must be provided for webhook")
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        for command in params["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise ValueError("BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise ValueError("BOT_COMMAND_DESCRIPTION_INVALID")
        return True

    def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked_chats:
            raise _Blocked
        text = self._checked_text(params.get("text", ""), params.get("parse_mode"))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self._api_getMe({}),
            "text": text,
        }
        reply = params.get("reply_parameters")
        if reply:
            message["reply_to_message"] = {
                "message_id": reply["message_id"],
                "date": int(time.time()),
                "chat": message["chat"],
            }
        self.messages[chat_id, message["message_id"]] = {**message, "raw": params.get("text")}
        return message

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        """As Telegram: the bot's own message, checked like a new one; the same text again
        is refused ("message is not modified")."""
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ValueError("message to edit not found")
        text = self._checked_text(params.get("text", ""), params.get("parse_mode"))
        message = self.messages[key]
        if params.get("text") == message["raw"]:
            raise ValueError(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.update(text=text, raw=params.get("text"), edit_date=int(time.time()))
        return {k: v for k, v in message.items() if k != "raw"}

    def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if self.messages.pop(key, None) is None:
            raise ValueError("message to delete not found")
        return True

    def _api_answerInlineQuery(self, params: dict[str, Any]) -> bool:
        for result in params.get("results", []):
            content = result["input_message_content"]
            self._checked_text(content["message_text"], content.get("parse_mode"))
        return True

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True

    def _checked_text(self, text: str, parse_mode: str | None) -> str:
        visible = text
        if parse_mode and parse_mode.upper() == "HTML":
            if self.reject_html > 0:
                self.reject_html -= 1
                raise ParseError('Unsupported start tag "b" at byte offset 0')
            visible = check_telegram_html(text)
        if not visible.strip():
            raise ValueError("message text is empty")
        if utf16_len(visible) > 4096:
            raise ValueError("message is too long")
        return visible

    # -- HTTP -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Telegram: the bot's pooled connections are reused, not one per call.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self) -> None:
                self._serve(b"")

            def _serve(self, body: bytes) -> None:
                url = urlparse(self.path)
                match = re.fullmatch(r"/bot([^/]*)/(\w+)", url.path)
                fault = api._take_fault(match.group(2)) if match else None
                if fault is not None and fault.kind != "status":
                    time.sleep(fault.seconds)
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if not match:
                    status, reply = 404, dict(_NOT_FOUND)
                elif match.group(1) != api.token or api.unauthorized:
                    api.calls.append(Call(match.group(2), {}, error="Unauthorized"))
                    status, reply = 401, dict(_UNAUTHORIZED)
                elif fault is not None:
                    status, reply = fault.status, fault.reply()
                else:
                    params = _params(url.query, body, self.headers.get("Content-Type", ""))
                    status, reply = api._call(match.group(2), params)
                payload = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: a long poll cancelled at shutdown

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line contains the token

        return Handler


class _Server(ThreadingHTTPServer):
    """An HTTP server that, like Telegram's, accepts a client's whole pool of connections.

    With ``socketserver``'s backlog of 5, a burst of replies over the bot's 256 pooled
    connections waits in the kernel's queue; the bot times out on some of them and sends
    again, while the server still reads and carries out the first request: a duplicate
    message caused by the fake, not by the bot.
    """

    request_queue_size = socket.SOMAXCONN
    daemon_threads = True


def _params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Bot API parameters from the query string and a form-encoded or JSON body.

    PTB sends forms whose non-string values are JSON inside the form field.
    """
    if content_type.startswith("application/json"):
        return json.loads(body or b"{}")
    pairs = parse_qsl(query) + parse_qsl(body.decode())
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key in _STRING_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram would add: a leading /command and @mentions (UTF-16 offsets)."""
    found = []
    for match in re.finditer(r"(?<![\w@])@\w{5,32}|^/\w+(?:@\w+)?", text):
        kind = "bot_command" if match.group().startswith("/") else "mention"
        found.append(
            {
                "type": kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return found


def private_chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": f"User{user_id}"}


def group_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}


def user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
