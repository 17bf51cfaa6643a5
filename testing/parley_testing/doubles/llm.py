"""A local OpenAI-compatible chat-completions double (what OpenRouter offers), scriptable per model.

POST {base}/chat/completions answers like OpenAI/OpenRouter: Bearer key required (401 otherwise),
errors in OpenAI's ``{"error": {message, type, param, code}}`` shape, 429 with Retry-After,
5xx, a 400 ``context_length_exceeded`` when the prompt exceeds the model's context, hanging
requests (the client's timeout must fire), dropped connections, and streaming as SSE chunks
ending in a usage chunk (with ``stream_options.include_usage``) and ``[DONE]``. Like OpenRouter,
every usage object carries ``cost`` (credits, i.e. US dollars) from the double's per-model prices;
``report_cost=False`` plays a gateway that reports tokens only. Latency is scripted. Only for tests
and the benchmark; never a runtime default.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from parley_testing.doubles.credentials import LLM_API_KEY

StepKind = Literal["reply", "error", "hang", "drop", "stream_error"]


@dataclass(frozen=True)
class Step:
    """One scripted answer: a reply (optionally fixed text), an HTTP error, a hang or a dropped connection."""

    kind: StepKind = "reply"
    text: str | None = None
    status: int = 500
    delay: float = 0.0


def reply(text: str | None = None, *, delay: float = 0.0) -> Step:
    """Answer normally (``text`` or the default answer) after ``delay`` seconds."""
    return Step("reply", text=text, delay=delay)


def error(status: int, *, delay: float = 0.0) -> Step:
    """Answer with an HTTP error in OpenAI's format (429 carries Retry-After: 0)."""
    return Step("error", status=status, delay=delay)


def hang() -> Step:
    """Never answer (the client's timeout or deadline has to end it)."""
    return Step("hang")


def drop() -> Step:
    """Close the connection without an answer."""
    return Step("drop")


def stream_error() -> Step:
    """Stream a few chunks, then an error event (OpenRouter does this when a provider fails mid-answer)."""
    return Step("stream_error")


def default_answer(messages: list[dict[str, Any]]) -> str:
    """Echo the last user message, so tests can tell answers apart (with how many images it had)."""
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(last, list):
        images = sum(1 for part in last if part["type"] == "image_url")
        return f"echo: {text_of(last)} [{images} image{'s' if images != 1 else ''}]"
    return f"echo: {last}"


def text_of(content: str | list[dict[str, Any]]) -> str:
    """A message's text: the string, or the text parts of a multimodal message."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part["type"] == "text")


def images_of(content: str | list[dict[str, Any]]) -> list[bytes]:
    """The images of a multimodal message, decoded from their data URLs."""
    if isinstance(content, str):
        return []
    urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    return [base64.b64decode(url.partition(",")[2]) for url in urls]


# What OpenAI's format accepts as an image: a data URL of these types, or an http(s) URL.
_DATA_URL = re.compile(r"data:image/(jpeg|png|webp|gif);base64,([A-Za-z0-9+/]+={0,2})")
TOKENS_PER_IMAGE = 85
NO_IMAGE_INPUT = "No endpoints found that support image input"  # OpenRouter's 404 for a text model
# File types OpenAI's /audio/transcriptions takes (it reads the type from the file name).
AUDIO_SUFFIXES = (".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".oga", ".wav", ".webm")


def content_problem(role: str, content: object, *, sees_images: bool) -> str | None:
    """Why a message's content is not what the API takes (None when it is)."""
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not content:
        return "Message content must be a string or a non-empty array of content parts."
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind != "image_url":
            return f"Invalid content part type: {kind!r}."
        if role != "user":
            return f"Image content parts are only allowed in user messages, not {role}."
        problem = _image_problem(part.get("image_url")) or (None if sees_images else NO_IMAGE_INPUT)
        if problem is not None:
            return problem
    return None


def _image_problem(image_url: object) -> str | None:
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return None
    data = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if data is None:
        return "Invalid image_url: expected a data URL (data:image/jpeg;base64,...) or an https URL."
    try:
        base64.b64decode(data[2], validate=True)
    except ValueError:
        return "Invalid base64 image data."
    return None


# US dollars per million prompt and completion tokens, when a test names no price for the model.
DEFAULT_PRICE = (0.5, 1.5)


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word (at least one per message)."""
    return max(len(text.split()), 1)


@dataclass
class LLMDouble:
    """State of the fake gateway: key, scripts per model, latency, context sizes, recorded requests."""

    api_key: str = LLM_API_KEY
    latency: float = 0.0
    context_tokens: dict[str, int] = field(default_factory=dict)
    answer: Callable[[list[dict[str, Any]]], str] = default_answer
    chunk_words: int = 3
    chunk_delay: float = 0.0
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Models that take image parts (any other answers 404 as OpenRouter does), and what
    # /audio/transcriptions hears in a recording.
    vision_models: set[str] = field(default_factory=lambda: {"openai/gpt-4o-mini", "openai/gpt-4o"})
    transcribe: Callable[[bytes], str] = lambda audio: f"a voice message of {len(audio)} bytes"
    transcriptions: list[tuple[str, bytes]] = field(default_factory=list)  # (model, audio) received
    report_cost: bool = True
    record: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Streams the client closed before their end (a stopped answer): the gateway stops generating.
    disconnects: int = 0
    streamed_chunks: int = 0  # content chunks written to streams, in all
    url: str = ""
    _scripts: dict[str, deque[Step]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _hanging: set[asyncio.Event] = field(default_factory=set)

    def script(self, model: str, *steps: Step) -> None:
        """Queue answers for ``model`` ("*" for any model); unscripted requests get a normal reply."""
        self._scripts.setdefault(model, deque()).extend(steps)

    def cost_of(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """What the double bills for a request (its ``usage.cost``)."""
        prompt_price, completion_price = self.prices.get(model, DEFAULT_PRICE)
        return (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1_000_000

    def models_called(self) -> list[str]:
        """Model of every request so far, in order."""
        return [r["model"] for r in self.requests]

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on `host` (loopback unless pods must reach it); returns the base URL (what
        LLM_BASE_URL takes), ending in /v1."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}/v1"
        return self.url

    async def close(self) -> None:
        """Release hanging requests and stop listening."""
        for event in list(self._hanging):
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_step(self, model: str) -> Step:
        for key in (model, "*"):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return Step("reply")

    async def _completions(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911, PLR0912
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            return _error(400, "'model' and a non-empty 'messages' are required.", "invalid_request_error")
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in {"system", "user", "assistant"}:
                return _error(
                    400, "Invalid message in 'messages'.", "invalid_request_error", param="messages"
                )
            problem = content_problem(
                message["role"], message.get("content"), sees_images=model in self.vision_models
            )
            if problem == NO_IMAGE_INPUT:
                return _error(404, problem, "invalid_request_error")
            if problem is not None:
                return _error(400, problem, "invalid_request_error", param="messages")
        if self.record:
            self.requests.append(body)
        # The gateway refuses a prompt over the context before any model sees it (no scripted step used).
        prompt_tokens = sum(
            count_tokens(text_of(m["content"])) + TOKENS_PER_IMAGE * len(images_of(m["content"]))
            for m in messages
        )
        limit = self.context_tokens.get(model)
        if limit is not None and prompt_tokens > limit:
            return _error(
                400,
                f"This model's maximum context length is {limit} tokens. However, your messages resulted "
                f"in {prompt_tokens} tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                code="context_length_exceeded",
                param="messages",
            )
        step = self._next_step(model)
        delay = self.latency + step.delay
        if delay:
            await asyncio.sleep(delay)
        if step.kind == "hang":
            event = asyncio.Event()
            self._hanging.add(event)
            try:
                await event.wait()
            finally:
                self._hanging.discard(event)
            return _error(503, "shutting down", "server_error")
        if step.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if step.kind == "error":
            return self._scripted_error(step.status)

        text = step.text if step.text is not None else self.answer(messages)
        completion_tokens = count_tokens(text)
        usage: dict[str, int | float] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.report_cost:
            usage["cost"] = self.cost_of(model, prompt_tokens, completion_tokens)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, model, text, usage if include_usage else None, step)
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )

    async def _transcriptions(self, request: web.Request) -> web.Response:
        """OpenAI's /audio/transcriptions: multipart ``model`` and ``file``, ``{"text": ...}`` back."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if request.content_type != "multipart/form-data":
            return _error(400, "Expected a multipart/form-data body.", "invalid_request_error")
        form = await request.post()
        model, upload = form.get("model"), form.get("file")
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter", "invalid_request_error", param="model")
        if not isinstance(upload, web.FileField):
            return _error(400, "you must provide a file parameter", "invalid_request_error", param="file")
        if not upload.filename.lower().endswith(AUDIO_SUFFIXES):
            return _error(
                400,
                f"Invalid file format. Supported formats: {[s.lstrip('.') for s in AUDIO_SUFFIXES]}",
                "invalid_request_error",
                param="file",
            )
        audio = upload.file.read()
        self.transcriptions.append((model, audio))
        return web.json_response({"text": self.transcribe(audio)})

    def _scripted_error(self, status: int) -> web.Response:
        if status == 429:
            return _error(
                429,
                "Rate limit exceeded: free-models-per-min.",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": "0"},
            )
        if status >= 500:
            return _error(status, "The server had an error while processing your request.", "server_error")
        return _error(status, "Scripted error.", "invalid_request_error")

    async def _stream(
        self,
        request: web.Request,
        model: str,
        text: str,
        usage: dict[str, int | float] | None,
        step: Step,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            words = text.split(" ")
            pieces = [
                " ".join(words[i : i + self.chunk_words]) + (" " if i + self.chunk_words < len(words) else "")
                for i in range(0, len(words), self.chunk_words)
            ]
            if step.kind == "stream_error":
                pieces = pieces[:2]
            for piece in pieces:
                await response.write(chunk({"content": piece}))
                self.streamed_chunks += 1
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
        except ConnectionResetError:
            self.disconnects += 1  # the client went away mid-answer: stop generating
            return response
        except asyncio.CancelledError:
            self.disconnects += 1
            raise
        if step.kind == "stream_error":
            error_event = {"error": {"message": "Provider returned error", "code": 502}}
            await response.write(f"data: {json.dumps(error_event)}\n\n".encode())
            await response.write_eof()
            return response
        await response.write(chunk({}, "stop"))
        if usage is not None:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)
