"""A local HTTP double of the Telegram Bot API, as strict as the real one where bots slip.

It answers like api.telegram.org: the token is part of the path (a wrong one is 401), unknown
methods are 404, a text over 4096 characters (UTF-16 code units, after entity parsing) is 400
"message is too long", malformed HTML is 400 "can't parse entities: ...", an edit that changes
nothing is 400 "message is not modified", flood control is 429 with ``parameters.retry_after``,
getUpdates honours offsets (confirming earlier updates), limits and the long-poll timeout, and
refuses to run while a webhook is set or when a second poller interrupts the first (409). Update
types the bot did not list in ``allowed_updates`` are never delivered. Inline keyboards are checked
(1-64 bytes of callback data) and an edit without one removes it; a button press can be answered
once (``answerCallbackQuery``); a draft's Stop exists only when it was sent with ``can_stop``.
Tests push updates in and read what the bot sent. Only for tests; never a runtime default.

``ask()`` pushes a user's message and waits for the bot's answer (benchmarks). With
``control_plane=True`` (load tests, where the load generator is another process) it also serves
``POST /_control/ask`` — not a Bot API method, and outside the ``/bot<token>/`` space the bot
uses: ``{"user_id", "text"}`` becomes a private text message from that user, and the response is the
bot's first answer to it (``{"update_id", "reply"}``), or 504 if none comes within ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl
from aiohttp import web

from parley_testing.doubles.credentials import TELEGRAM_TOKEN

MAX_TEXT_UTF16 = 4096
MAX_CALLBACK_TEXT = 200  # answerCallbackQuery's notification text
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API's getFile limit
# What Telegram leaves out unless a bot lists it in allowed_updates.
NOT_SENT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"^/?\s*([a-zA-Z][a-zA-Z0-9-]*)")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is what Telegram says after the prefix."""


def utf16_len(text: str) -> int:
    """Length the way Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:  # noqa: PLR0912  (one tokenizer loop, like Telegram's)
    """The visible text of Telegram-HTML ``text``; raises EntityParseError like Telegram does."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            offset = len(text[:i].encode())
            if end == -1:
                raise EntityParseError(f"Can't find end of the tag starting at byte offset {offset}")
            inner = text[i + 1 : end]
            match = _TAG_NAME.match(inner)
            if not match:
                raise EntityParseError(f"Unsupported start tag at byte offset {offset}")
            name = match.group(1).lower()
            if inner.startswith("/"):
                if not stack:
                    raise EntityParseError(f'Unexpected end tag "{name}" at byte offset {offset}')
                if stack[-1] != name:
                    raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
                stack.pop()
            else:
                if name not in _ALLOWED_TAGS:
                    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
                if name == "a" and "href=" not in inner:
                    raise EntityParseError(f"Can't find href attribute of the tag at byte offset {offset}")
                stack.append(name)
            i = end + 1
        elif char == "&":
            end = text.find(";", i, i + 12)
            name = text[i + 1 : end] if end != -1 else ""
            if name in _NAMED_ENTITIES:
                out.append(_NAMED_ENTITIES[name])
                i = end + 1
            elif name.startswith("#") and len(name) > 1:
                try:
                    code = int(name[2:], 16) if name[1:2] in ("x", "X") else int(name[1:])
                    out.append(chr(code))
                except ValueError:
                    out.append("&")
                    i += 1
                    continue
                i = end + 1
            else:
                out.append("&")
                i += 1
        else:
            out.append(char)
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


class TelegramError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class SentMessage:
    """A message the bot sent (and possibly edited)."""

    chat_id: int
    message_id: int
    text: str  # visible text, after entity parsing
    raw: str  # what the bot sent
    parse_mode: str | None
    reply_to: int | None = None
    sent_at: float = field(default_factory=time.perf_counter)  # when the bot's sendMessage arrived
    edits: int = 0
    deleted: bool = False
    reply_markup: dict[str, Any] | None = None  # inline keyboard; an edit without one removes it
    rich: bool = False  # sent with sendRichMessage (``raw`` is its Markdown)

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of each inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(str(b["text"]), str(b.get("callback_data", ""))) for row in rows for b in row]


@dataclass
class Draft:
    """One sendMessageDraft call."""

    chat_id: int
    draft_id: int
    text: str
    can_stop: bool = False


@dataclass
class StoredFile:
    """A user's file as the Bot API keeps it: ``size`` is what Telegram reports (tests may claim a
    size larger than the bytes, to stand for a file too big to keep in a test)."""

    file_id: str
    file_unique_id: str
    data: bytes
    size: int
    path: str


@dataclass
class TelegramDouble:
    """State of the fake Bot API: pending updates, sent messages, scripted failures."""

    token: str = TELEGRAM_TOKEN
    bot_username: str = "parley_test_bot"
    drafts_supported: bool = True
    rich_messages_supported: bool = True  # False: sendRichMessage is 404, as on an older Bot API server
    rich_refused_chats: set[int] = field(default_factory=set)  # chats where rich messages are refused
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)
    chat_actions: list[tuple[int, str]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_pending: int = 0  # what getWebhookInfo reports waiting (scripted by tests)
    webhook_last_error: tuple[int, str] | None = None  # (Unix time, message) of the last failed POST
    url: str = ""
    record_calls: bool = True
    control_plane: bool = False
    # Where a registered webhook origin is really reached (what an ingress in front of the bot does for
    # Telegram): {"https://bot.example": "http://10.0.0.7:8080"}; the path is kept.
    webhook_routes: dict[str, str] = field(default_factory=dict)
    callback_answers: list[tuple[str, str | None]] = field(default_factory=list)  # (query id, text)
    # Update types the bot asked for (getUpdates / setWebhook allowed_updates); None: Telegram's default.
    allowed_updates: list[str] | None = None
    # The command menus set with setMyCommands, by language_code ("" is the default menu).
    command_menus: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)  # by file_id
    downloads: list[str] = field(default_factory=list)  # file_path of every download served
    _callback_ids: set[str] = field(default_factory=set)
    _answer_waiters: dict[int, asyncio.Future[SentMessage]] = field(default_factory=dict)
    _failures: dict[str, list[TelegramError]] = field(default_factory=dict)
    _reject_entities: int = 0
    _next_update_id: int = 1000
    _message_ids: dict[int, itertools.count[int]] = field(default_factory=dict)
    _changed: asyncio.Condition | None = None
    _poll_generation: int = 0
    _runner: web.AppRunner | None = None

    @property
    def bot_id(self) -> int:
        """The numeric id in the token."""
        return int(self.token.split(":")[0])

    # ---- scripting -------------------------------------------------------------------------

    def flood(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``retry_after``."""
        flood = TelegramError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        self._failures.setdefault(method, []).extend([flood] * times)

    def fail(self, method: str, code: int, description: str, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with error ``code`` and ``description``."""
        self._failures.setdefault(method, []).extend([TelegramError(code, description)] * times)

    def failures_left(self, method: str) -> int:
        """Scripted failures of ``method`` not yet served."""
        return len(self._failures.get(method, []))

    def reject_entities(self, times: int = 1) -> None:
        """Refuse the next ``times`` formatted texts with "can't parse entities" (a renderer bug)."""
        self._reject_entities += times

    def push_update(self, update: dict[str, Any], *, update_id: int | None = None) -> int:
        """Queue an update and wake pollers; returns its id (the next one, unless ``update_id`` is
        given: Telegram re-sends an unconfirmed update with its id, and re-uses ids after a quiet week)."""
        if update_id is None:
            self._next_update_id += 1
            update_id = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id)  # later updates come after it
        self.updates.append({"update_id": update_id, **update})
        self.updates.sort(key=lambda queued: int(queued["update_id"]))
        self._notify()
        return update_id

    def text_update(
        self,
        text: str,
        *,
        user_id: int = 42,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to_bot: bool = False,
        first_name: str = "Ada",
        username: str | None = "ada",
        language_code: str | None = "en",
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A message update as Telegram builds it (entities for commands and mentions included);
        ``language_code`` is the sender's app language (Telegram omits it when unknown: None)."""
        chat = chat_id if chat_id is not None else user_id
        message: dict[str, Any] = {
            "message_id": next(self._ids(chat)),
            "date": int(time.time()),
            "chat": {"id": chat, "type": chat_type, **({"title": "group"} if chat_type != "private" else {})},
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                **({"username": username} if username else {}),
                **({"language_code": language_code} if language_code else {}),
            },
        }
        if text:
            message["text"] = text
            entities = []
            if text.startswith("/"):
                entities.append(
                    {"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}
                )
            for match in re.finditer(r"@\w+", text):
                entities.append(
                    {"type": "mention", "offset": utf16_len(text[: match.start()]), "length": len(match[0])}
                )
            if entities:
                message["entities"] = entities
        if reply_to_bot:
            message["reply_to_message"] = {
                "message_id": 1,
                "date": int(time.time()),
                "chat": message["chat"],
                "from": {
                    "id": self.bot_id,
                    "is_bot": True,
                    "first_name": "Parley",
                    "username": self.bot_username,
                },
                "text": "earlier answer",
            }
        message.update(extra or {})
        return {"message": message}

    def add_file(self, data: bytes, *, suffix: str, size: int | None = None) -> StoredFile:
        """Keep ``data`` as a user's file (what a photo, document or voice message refers to)."""
        unique = uuid.uuid4().hex[:16]
        stored = StoredFile(
            file_id=f"BQAC-{unique}-{uuid.uuid4().hex}",
            file_unique_id=unique,
            data=data,
            size=len(data) if size is None else size,
            path=f"files/{unique}{suffix}",
        )
        self.files[stored.file_id] = stored
        return stored

    def photo_update(
        self, data: bytes, *, caption: str | None = None, width: int = 1280, height: int = 960, **kwargs: Any
    ) -> dict[str, Any]:
        """A photo message as Telegram sends it: the photo in several sizes (a thumbnail, then ``data``)."""
        thumbnail = self.add_file(data[:1024], suffix=".jpg")
        full = self.add_file(data, suffix=".jpg")
        scale = 90 / max(width, height)
        sizes = [
            {**self._file_fields(thumbnail), "width": round(width * scale), "height": round(height * scale)},
            {**self._file_fields(full), "width": width, "height": height},
        ]
        return self._file_update({"photo": sizes}, caption, **kwargs)

    def document_update(
        self,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        size: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A document message; ``size`` claims a size other than the bytes' (a file too big to hold)."""
        suffix = "." + file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        stored = self.add_file(data, suffix=suffix, size=size)
        document = {**self._file_fields(stored), "file_name": file_name, "mime_type": mime_type}
        return self._file_update({"document": document}, caption, **kwargs)

    def voice_update(self, data: bytes, *, duration: int, **kwargs: Any) -> dict[str, Any]:
        """A voice message (Opus in OGG, as Telegram's apps record it)."""
        stored = self.add_file(data, suffix=".oga")
        voice = {**self._file_fields(stored), "duration": duration, "mime_type": "audio/ogg"}
        return self._file_update({"voice": voice}, None, **kwargs)

    @staticmethod
    def _file_fields(stored: StoredFile) -> dict[str, Any]:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size}

    def _file_update(self, fields: dict[str, Any], caption: str | None, **kwargs: Any) -> dict[str, Any]:
        update = self.text_update("", **kwargs)
        message = update["message"]
        message.update(fields)
        if caption:
            message["caption"] = caption
            mentions = [
                {"type": "mention", "offset": utf16_len(caption[: m.start()]), "length": len(m[0])}
                for m in re.finditer(r"@\w+", caption)
            ]
            if mentions:
                message["caption_entities"] = mentions
        return update

    def callback_update(
        self, data: str, *, message: SentMessage, user_id: int = 42, language_code: str = "en"
    ) -> dict[str, Any]:
        """A press of the inline button with ``data`` under ``message``, by ``user_id``."""
        if data not in {button_data for _, button_data in message.buttons()}:
            raise ValueError(f"message {message.message_id} has no button with data {data!r}")
        query_id = f"{user_id}-{uuid.uuid4().hex[:12]}"
        self._callback_ids.add(query_id)
        return {
            "callback_query": {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": language_code},
                "message": self._message_result(message),
                "chat_instance": str(message.chat_id),
                "data": data,
            }
        }

    def stop_update(self, draft: Draft) -> dict[str, Any]:
        """The user pressed Telegram's Stop on a draft (only drafts sent with can_stop have one)."""
        if not draft.can_stop:
            raise ValueError("that draft was sent without can_stop: it shows no Stop button")
        return {
            "stopped_message_generation": {
                "chat": {"id": draft.chat_id, "type": "private", "first_name": "Ada"},
                "draft_id": draft.draft_id,
            }
        }

    def send_text(self, text: str, **kwargs: Any) -> int:
        """Push a text message update; returns its update_id."""
        return self.push_update(self.text_update(text, **kwargs))

    async def ask(self, text: str, *, user_id: int, timeout: float, **kwargs: Any) -> tuple[int, SentMessage]:
        """Send ``text`` from ``user_id`` in a private chat and wait for the bot's first message back.

        One question at a time per user (ValueError otherwise); TimeoutError after ``timeout``.
        Returns the update id and the answer (its ``sent_at`` is when the bot sent it).
        """
        if user_id in self._answer_waiters:
            raise ValueError(f"user {user_id} is still waiting for an answer")
        waiter: asyncio.Future[SentMessage] = asyncio.get_running_loop().create_future()
        self._answer_waiters[user_id] = waiter
        try:
            update_id = self.send_text(text, user_id=user_id, **kwargs)
            return update_id, await asyncio.wait_for(waiter, timeout)
        finally:
            self._answer_waiters.pop(user_id, None)

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id`` and did not delete, in order."""
        return [m for m in self.sent if m.chat_id == chat_id and not m.deleted]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until ``predicate()`` holds (checked on every change); fails after ``timeout``."""
        assert self._changed is not None
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_messages(self, chat_id: int, count: int, timeout: float = 20.0) -> list[SentMessage]:
        """Wait until the bot has sent ``count`` messages to ``chat_id``; returns them."""
        await self.wait_for(lambda: len(self.messages_to(chat_id)) >= count, timeout)
        return self.messages_to(chat_id)

    async def deliver_webhook(
        self, update: dict[str, Any], *, secret: str | None = None, update_id: int | None = None
    ) -> int:
        """POST an update to the registered webhook like Telegram does; returns the HTTP status.

        Telegram re-sends an update it could not deliver with the same ``update_id``."""
        if update_id is None:
            self._next_update_id += 1
            update_id = self._next_update_id
        body = {"update_id": update_id, **update}
        if not self._wanted(body):
            raise AssertionError(
                f"Telegram would not send this update: allowed_updates is {self.allowed_updates}"
            )
        headers = {}
        token = secret if secret is not None else self.webhook_secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        target = yarl.URL(self.webhook_url)
        route = self.webhook_routes.get(str(target.origin()))
        if route is not None:
            target = yarl.URL(route).with_path(target.path).with_query(target.query)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(target, json=body, headers=headers) as response,
            ):
                status = response.status
        except aiohttp.ClientConnectionError:
            self.webhook_last_error = (int(time.time()), "Connection refused")
            raise
        if not 200 <= status < 300:  # Telegram's wording in getWebhookInfo.last_error_message
            self.webhook_last_error = (int(time.time()), f"Wrong response from the webhook: {status}")
        return status

    # ---- server ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1") -> str:
        """Listen on a free port of `host` (loopback unless pods must reach it); returns the base URL
        (what TELEGRAM_API_URL takes)."""
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        if self.control_plane:
            app.router.add_post("/_control/ask", self._control_ask)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _notify(self) -> None:
        if self._changed is None:
            return

        async def notify(condition: asyncio.Condition) -> None:
            async with condition:
                condition.notify_all()

        task = asyncio.get_running_loop().create_task(notify(self._changed))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _wanted(self, update: dict[str, Any]) -> bool:
        """Whether Telegram sends this update to a bot that asked for ``allowed_updates``."""
        kind = next(key for key in update if key != "update_id")
        if not self.allowed_updates:
            return kind not in NOT_SENT_BY_DEFAULT
        return kind in self.allowed_updates

    def _ids(self, chat_id: int) -> itertools.count[int]:
        return self._message_ids.setdefault(chat_id, itertools.count(1))

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(TelegramError(401, "Unauthorized"))
        method = request.match_info["method"]
        params = await _params(request)
        if self.record_calls:
            self.calls.append((method, params))
        handler = _METHODS.get(method.lower())
        unsupported = (method.lower() == "sendmessagedraft" and not self.drafts_supported) or (
            method.lower() == "sendrichmessage" and not self.rich_messages_supported
        )
        if handler is None or unsupported:
            return _error(TelegramError(404, "Not Found"))
        if self._failures.get(method):
            failure = self._failures[method].pop(0)
            self._notify()
            return _error(failure)
        try:
            result = await handler(self, params)
        except TelegramError as exc:
            return _error(exc)
        finally:
            self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        """A file by the path getFile gave (the Bot API's file endpoint; 404 for anything else)."""
        if request.match_info["token"] != self.token:
            return _error(TelegramError(401, "Unauthorized"))
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.path == path), None)
        if stored is None or stored.size > MAX_DOWNLOAD_BYTES:
            return _error(TelegramError(404, "Not Found"))
        self.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise TelegramError(400, "Bad Request: invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise TelegramError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.path,
        }

    async def _control_ask(self, request: web.Request) -> web.Response:
        """A user's message in, the bot's answer out (one question at a time per user)."""
        try:
            body = await request.json()
            user_id, text, timeout = int(body["user_id"]), str(body["text"]), float(body.get("timeout", 60))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected {user_id: int, text: str, timeout?: s}"}, status=400)
        try:
            update_id, answer = await self.ask(
                text, user_id=user_id, timeout=timeout, first_name=f"User {user_id}", username=None
            )
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except TimeoutError:
            return web.json_response({"error": f"no answer within {timeout} s"}, status=504)
        return web.json_response({"update_id": update_id, "reply": answer.text})

    # ---- methods ---------------------------------------------------------------------------

    async def _get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Parley",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                "to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"] or [])
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(int(params.get("timeout") or 0), 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        assert self._changed is not None
        while True:
            if generation != self._poll_generation:
                raise TelegramError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot "
                    "instance is running",
                )
            self.updates = [u for u in self.updates if self._wanted(u)]  # Telegram drops the others
            if self.updates:
                return self.updates[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                async with asyncio.timeout(remaining), self._changed:
                    await self._changed.wait()
            except TimeoutError:
                return []

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise TelegramError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise TelegramError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret is not None else None
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"] or [])
        return True

    async def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self.webhook_pending if self.webhook_url else len(self.updates),
        }
        if self.webhook_url and self.webhook_last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise TelegramError(400, "Bad Request: commands must be a list of at most 100 commands")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(name)):
                raise TelegramError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(description)) <= 256:
                raise TelegramError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise TelegramError(400, "Bad Request: LANG_CODE_INVALID")  # a two-letter ISO 639-1 code
        self.command_menus[language] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        action = str(params.get("action") or "")
        if action not in {"typing", "upload_photo", "record_voice", "upload_document", "choose_sticker"}:
            raise TelegramError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((int(params["chat_id"]), action))
        return True

    def _visible(self, params: dict[str, Any]) -> str:
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise TelegramError(400, "Bad Request: message text is empty")
        text = str(text)
        mode = params.get("parse_mode")
        if mode:
            if str(mode).lower() != "html":
                raise TelegramError(400, f"Bad Request: unsupported parse_mode {mode}")
            if self._reject_entities:
                self._reject_entities -= 1
                raise TelegramError(
                    400,
                    "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
                )
            try:
                text = parse_html(text)
            except EntityParseError as exc:
                raise TelegramError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise TelegramError(400, "Bad Request: message is too long")
        return text

    def _message_result(self, message: SentMessage) -> dict[str, Any]:
        return {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "supergroup"},
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Parley",
                "username": self.bot_username,
            },
            "text": message.text,
        }

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        visible = self._visible(params)
        reply = params.get("reply_parameters")
        message = SentMessage(
            chat_id=chat_id,
            message_id=next(self._ids(chat_id)),
            text=visible,
            raw=str(params["text"]),
            parse_mode=params.get("parse_mode"),
            reply_to=int(reply["message_id"]) if isinstance(reply, dict) else None,
            reply_markup=_keyboard(params.get("reply_markup")),
        )
        self.sent.append(message)
        waiter = self._answer_waiters.pop(chat_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        return self._message_result(message)

    def _find(self, params: dict[str, Any]) -> SentMessage:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for message in self.sent:
            if message.chat_id == chat_id and message.message_id == message_id and not message.deleted:
                return message
        raise TelegramError(400, "Bad Request: message to edit not found")

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(params)
        visible = self._visible(params)
        markup = _keyboard(params.get("reply_markup"))
        if visible == message.text and str(params["text"]) == message.raw and markup == message.reply_markup:
            raise TelegramError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message",
            )
        message.text, message.raw, message.parse_mode = visible, str(params["text"]), params.get("parse_mode")
        message.reply_markup = markup
        message.edits += 1
        return self._message_result(message)

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        try:
            message = self._find(params)
        except TelegramError:
            raise TelegramError(400, "Bad Request: message to delete not found") from None
        message.deleted = True
        return True

    async def _send_rich_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        rich = params.get("rich_message")
        if not isinstance(rich, dict):
            raise TelegramError(400, "Bad Request: can't parse rich message JSON object")
        given = [key for key in ("html", "markdown", "blocks") if rich.get(key)]
        if len(given) != 1:
            raise TelegramError(400, "Bad Request: exactly one of html, markdown or blocks must be specified")
        if chat_id in self.rich_refused_chats:
            raise TelegramError(400, "Bad Request: rich messages can't be sent to the chat")
        source = str(rich[given[0]])
        if utf16_len(source) > MAX_TEXT_UTF16:
            raise TelegramError(400, "Bad Request: message is too long")
        reply = params.get("reply_parameters")
        message = SentMessage(
            chat_id=chat_id,
            message_id=next(self._ids(chat_id)),
            text=source,
            raw=source,
            parse_mode=given[0],
            reply_to=int(reply["message_id"]) if isinstance(reply, dict) else None,
            rich=True,
        )
        self.sent.append(message)
        waiter = self._answer_waiters.pop(chat_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        return self._message_result(message)

    async def _send_message_draft(self, params: dict[str, Any]) -> bool:
        chat_id = int(params["chat_id"])
        if chat_id < 0:
            raise TelegramError(400, "Bad Request: drafts can be sent only to private chats")
        if not int(params.get("draft_id") or 0):
            raise TelegramError(400, "Bad Request: draft_id must be non-zero")
        text = str(params.get("text") or "")
        if params.get("parse_mode"):
            text = self._visible(params)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise TelegramError(400, "Bad Request: message is too long")
        self.drafts.append(
            Draft(chat_id, int(params["draft_id"]), text, can_stop=bool(params.get("can_stop")))
        )
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_ids:
            raise TelegramError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_TEXT:
            raise TelegramError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callback_ids.discard(query_id)  # a query is answered once
        self.callback_answers.append((query_id, None if text is None else str(text)))
        return True


_background: set[asyncio.Task[None]] = set()

_Handler = Callable[[TelegramDouble, dict[str, Any]], Awaitable[Any]]
_METHODS: dict[str, _Handler] = {
    "getme": TelegramDouble._get_me,
    "getupdates": TelegramDouble._get_updates,
    "setwebhook": TelegramDouble._set_webhook,
    "deletewebhook": TelegramDouble._delete_webhook,
    "getwebhookinfo": TelegramDouble._get_webhook_info,
    "setmycommands": TelegramDouble._set_my_commands,
    "sendchataction": TelegramDouble._send_chat_action,
    "sendmessage": TelegramDouble._send_message,
    "editmessagetext": TelegramDouble._edit_message_text,
    "deletemessage": TelegramDouble._delete_message,
    "sendmessagedraft": TelegramDouble._send_message_draft,
    "answercallbackquery": TelegramDouble._answer_callback_query,
    "getfile": TelegramDouble._get_file,
    "sendrichmessage": TelegramDouble._send_rich_message,
}


_JSON_FIELDS = {
    "reply_parameters",
    "reply_markup",
    "allowed_updates",
    "entities",
    "link_preview_options",
    "commands",
    "rich_message",
}


def _keyboard(markup: Any) -> dict[str, Any] | None:
    """An inline keyboard as Telegram checks it (callback data of 1-64 bytes), or None."""
    if markup is None:
        return None
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        raise TelegramError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup["inline_keyboard"]:
        for button in row:
            data = button.get("callback_data")
            if not button.get("text") or (data is not None and not 1 <= len(str(data).encode()) <= 64):
                raise TelegramError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters the way the Bot API reads them: query, urlencoded/multipart form or JSON body."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    for key, value in list(params.items()):
        if key in _JSON_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
        elif value in ("true", "false"):
            params[key] = value == "true"
    return params


def _error(exc: TelegramError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return web.json_response(body, status=exc.code)
