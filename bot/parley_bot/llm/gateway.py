"""One request to the gateway's /chat/completions, plain or streamed, and the tokens and cost it used.

The cost is the gateway's own figure when it reports one (OpenRouter puts ``usage.cost``, in credits
= US dollars, into every response and into a stream's last chunk); otherwise the price table
(LLM_PRICES) turns the token counts into dollars; a model in neither has no cost.

The SDK's generic ``chat.completions.create`` re-validates every argument against its TypedDicts
(about 18 ms of CPU per call in openai 3.x, the bot's biggest cost under load). ``post`` is the
SDK's documented way to send a body as-is; auth, timeouts, error mapping and SSE parsing are the
SDK's own all the same. The SDK's retries are off (``max_retries=0``): the client owns the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

from parley_bot import metrics
from parley_bot.llm.failures import EmptyAnswerError
from parley_bot.llm.types import ChatMessage, PartialCallback
from parley_bot.llm.wire import Usage, answer_text, delta_text, usage_of
from parley_core.settings import ModelPrice


class ModelAnswer(NamedTuple):
    """What one successful request returned."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class Gateway:
    """Sends chat completion requests to one OpenAI-compatible gateway."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout_seconds: float,
        max_completion_tokens: int | None,
        prices: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        # aiohttp as the SDK's transport (the `openai[aiohttp]` extra): httpx's connection pool checks
        # every pooled connection on each request, which with hundreds of conversations in flight
        # cost more CPU than the rest of the request.
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
            http_client=DefaultAioHttpClient(timeout=timeout_seconds),
        )
        self.max_completion_tokens = max_completion_tokens
        self.prices = dict(prices or {})

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    def _body(self, model: str, messages: list[ChatMessage], *, stream: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "model": model,
            "messages": [{"role": m.role, "content": _content(m)} for m in messages],
        }
        if self.max_completion_tokens is not None:
            body["max_tokens"] = self.max_completion_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def answer(self, model: str, messages: list[ChatMessage], timeout: float) -> ModelAnswer:
        """The whole answer in one response; EmptyAnswerError when it has no text."""
        # cast_to=object: the SDK's documented way to get the JSON body as it came (see wire.py).
        response = await self._client.post(
            "/chat/completions",
            body=self._body(model, messages, stream=False),
            cast_to=object,
            options={"timeout": timeout, "security": {"bearer_auth": True}},
        )
        text = answer_text(response)
        if not text.strip():
            raise EmptyAnswerError
        return self._counted(model, text, usage_of(response))

    async def stream(
        self, model: str, messages: list[ChatMessage], timeout: float, on_partial: PartialCallback
    ) -> ModelAnswer:
        """The answer streamed, each longer text handed to ``on_partial``; EmptyAnswerError without text."""
        stream = await self._client.post(
            "/chat/completions",
            body=self._body(model, messages, stream=True),
            cast_to=object,
            options={"timeout": timeout, "security": {"bearer_auth": True}},
            stream=True,
            stream_cls=AsyncStream[object],
        )
        parts: list[str] = []
        usage: Usage | None = None
        async with stream:
            async for chunk in stream:
                usage = usage_of(chunk) or usage
                if piece := delta_text(chunk):
                    parts.append(piece)
                    await on_partial("".join(parts))
        text = "".join(parts)
        if not text.strip():
            raise EmptyAnswerError
        return self._counted(model, text, usage)

    async def transcribe(self, model: str, audio: bytes, *, file_name: str, timeout: float) -> str:
        """What a recording says, from the gateway's /audio/transcriptions (OpenAI's audio API)."""
        result = await self._client.audio.transcriptions.create(
            model=model, file=(file_name, audio), response_format="json", timeout=timeout
        )
        return result.text.strip()

    def _counted(self, model: str, text: str, usage: Usage | None) -> ModelAnswer:
        """The answer with its tokens and cost, counted in the metrics."""
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
        if prompt_tokens:
            metrics.LLM_TOKENS.labels(model=model, kind="prompt").inc(prompt_tokens)
        if completion_tokens:
            metrics.LLM_TOKENS.labels(model=model, kind="completion").inc(completion_tokens)
        cost = self._cost(model, usage)
        if cost:
            metrics.LLM_COST.labels(model=model).inc(cost)
        return ModelAnswer(text, prompt_tokens, completion_tokens, cost)

    def count_stopped(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Count an estimate of what a stopped request used (no usage comes back); returns its cost."""
        metrics.LLM_TOKENS.labels(model=model, kind="prompt").inc(prompt_tokens)
        metrics.LLM_TOKENS.labels(model=model, kind="completion").inc(completion_tokens)
        price = self.prices.get(model)
        cost = price.cost(prompt_tokens, completion_tokens) if price is not None else None
        if cost:
            metrics.LLM_COST.labels(model=model).inc(cost)
        return cost

    def _cost(self, model: str, usage: Usage | None) -> float | None:
        """The gateway's reported cost, else the price table's; None when neither knows."""
        if usage is None:
            return None
        if usage.cost is not None:
            return usage.cost
        price = self.prices.get(model)
        if price is None:
            return None
        return price.cost(usage.prompt_tokens or 0, usage.completion_tokens or 0)


def _content(message: ChatMessage) -> str | list[dict[str, object]]:
    """A message's content: its text, or with images the OpenAI format's list of parts."""
    if not message.images:
        return message.content
    parts: list[dict[str, object]] = [{"type": "text", "text": message.content}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    return parts
