"""Chat completions through the openai SDK against any OpenAI-compatible gateway (OpenRouter by default).

One call of :meth:`LLMClient.complete` answers one user message within one overall deadline:

* the primary model first — the user's own choice from LLM_MODEL_CHOICES when they made one —
  (skipped while its circuit breaker is open), then the fallback model;
* each model gets ``LLM_ATTEMPTS_PER_MODEL`` attempts on retryable failures (429, 5xx, connection
  errors, a stream that breaks off), with exponential backoff and full jitter between them,
  honouring Retry-After when it fits the deadline;
* a model that times out is not asked again for this message: a hanging model usually hangs again,
  and a second attempt would spend the time the fallback needs;
* every model but the last must finish by ``deadline - LLM_TIMEOUT_SECONDS``, so the fallback always
  gets one full attempt (settings refuse a deadline shorter than two timeouts);
* other 4xx answers (bad key, unknown model) move straight to the next model;
* "context too long" trims the oldest half of the history and retries once — unless the caller
  asked for ``trim=False`` (it folds the older turns into a summary instead, then asks again);
* cancelling the call (a user's stop) closes the request in flight; ``progress`` then tells what
  the model had written and which model it was, and what attempts that broke off midway consumed.

The policy's timing is in ``retry``, what counts as which failure in ``failures``, and one request
(plain or streamed, through the openai SDK over aiohttp, like the Telegram session) in ``gateway``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from parley_bot import metrics
from parley_bot.llm.breaker import CircuitBreaker
from parley_bot.llm.failures import classify, is_context_too_long
from parley_bot.llm.gateway import Gateway, ModelAnswer
from parley_bot.llm.retry import MIN_ATTEMPT_SECONDS, RetryPolicy
from parley_bot.llm.types import (
    ChatMessage,
    Completion,
    ContextTooLongError,
    LLMUnavailableError,
    PartialCallback,
    Progress,
    TranscriptionError,
)
from parley_core.logging import get_logger
from parley_core.settings import BotSettings, ModelPrice

log = get_logger(__name__)

CHARS_PER_TOKEN = 4  # the usual estimate for English text; used only for stopped requests


@dataclass
class _Run:
    """One user message's progress through the models."""

    deadline: float
    messages: list[ChatMessage]
    started: float = field(default_factory=time.perf_counter)
    trim: bool = True
    trimmed: int = 0
    last_error: str = "no_model_available"


class _ContextTooLongError(Exception):
    """The gateway refused the prompt as too long: trim the history and try again."""


def trim_history(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Drop the oldest half of the history, keeping system prompts and the newest message."""
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    history, newest = rest[:-1], rest[-1:]
    if not history:
        raise ContextTooLongError("the message alone does not fit the model's context")
    keep = history[(len(history) + 1) // 2 :]
    # A conversation should not start with an orphaned answer.
    while keep and keep[0].role == "assistant":
        keep = keep[1:]
    return [*system, *keep, *newest]


class LLMClient:
    """Primary/fallback completion with retries, a deadline and a circuit breaker per model."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        primary_model: str,
        fallback_model: str,
        policy: RetryPolicy,
        breaker_failures: int,
        breaker_cooldown_seconds: float,
        max_completion_tokens: int | None = None,
        prices: Mapping[str, ModelPrice] | None = None,
        vision_models: Collection[str] = (),
        transcription_model: str | None = None,
    ) -> None:
        self._gateway = Gateway(
            api_key=api_key,
            base_url=base_url,
            timeout_seconds=policy.timeout_seconds,
            max_completion_tokens=max_completion_tokens,
            prices=prices,
        )
        self.primary_model = primary_model
        self.fallback_model = fallback_model
        self.vision_models = frozenset(vision_models)
        self.transcription_model = transcription_model
        self.policy = policy
        self._breaker_failures = breaker_failures
        self._breaker_cooldown_seconds = breaker_cooldown_seconds
        self.breakers: dict[str, CircuitBreaker] = {}

    def models_for(self, primary: str | None = None) -> list[str]:
        """The models one call tries in order: ``primary`` (LLM_MODEL unless given), then the fallback."""
        first = primary or self.primary_model
        return [first] if self.fallback_model == first else [first, self.fallback_model]

    def sees_images(self, model: str) -> bool:
        """Whether ``model`` reads images (LLM_VISION_MODELS)."""
        return model in self.vision_models

    async def transcribe(self, audio: bytes, *, file_name: str) -> str:
        """What a voice message says (LLM_TRANSCRIPTION_MODEL must be set); TranscriptionError."""
        if self.transcription_model is None:
            raise TranscriptionError("no transcription model is configured")
        try:
            return await self._gateway.transcribe(
                self.transcription_model, audio, file_name=file_name, timeout=self.policy.timeout_seconds
            )
        except Exception as exc:  # the gateway's refusal, a timeout, a broken connection: one answer
            metrics.LLM_ERRORS.labels(model=self.transcription_model, error_type=type(exc).__name__).inc()
            log.warning("transcription_failed", model=self.transcription_model, error=type(exc).__name__)
            raise TranscriptionError(type(exc).__name__) from exc

    @property
    def models(self) -> list[str]:
        """The configured chain: LLM_MODEL, then LLM_FALLBACK_MODEL."""
        return self.models_for()

    def _breaker(self, model: str) -> CircuitBreaker:
        # One breaker per model, shared by every user who picked it.
        breaker = self.breakers.get(model)
        if breaker is None:
            breaker = CircuitBreaker(
                model, failures=self._breaker_failures, cooldown_seconds=self._breaker_cooldown_seconds
            )
            self.breakers[model] = breaker
        return breaker

    @classmethod
    def from_settings(cls, settings: BotSettings) -> LLMClient:
        """The client BotSettings describe (LLM_API_KEY must be set)."""
        if settings.llm_api_key is None:
            raise ValueError("LLM_API_KEY is not set")
        return cls(
            api_key=settings.llm_api_key.get_secret_value(),
            base_url=settings.llm_base_url,
            primary_model=settings.llm_model,
            fallback_model=settings.llm_fallback_model,
            policy=RetryPolicy(
                attempts_per_model=settings.llm_attempts_per_model,
                timeout_seconds=settings.llm_timeout_seconds,
                deadline_seconds=settings.llm_deadline_seconds,
                backoff_base_seconds=settings.llm_backoff_base_seconds,
                backoff_max_seconds=settings.llm_backoff_max_seconds,
            ),
            breaker_failures=settings.llm_breaker_failures,
            breaker_cooldown_seconds=settings.llm_breaker_cooldown_seconds,
            max_completion_tokens=settings.llm_max_completion_tokens,
            prices=settings.llm_prices,
            vision_models=settings.llm_vision_models,
            transcription_model=settings.llm_transcription_model,
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._gateway.close()

    def stopped_usage(
        self, model: str, messages: list[ChatMessage], text: str
    ) -> tuple[int, int, float | None]:
        """What a request stopped or broken off midway used: (prompt tokens, completion tokens, dollars).

        A closed stream brings no usage, so it is estimated at one token per CHARS_PER_TOKEN
        characters and priced with LLM_PRICES (a gateway's own figure is not available).
        """
        prompt_tokens = -(-sum(len(m.content) for m in messages) // CHARS_PER_TOKEN)
        completion_tokens = -(-len(text) // CHARS_PER_TOKEN)
        return (
            prompt_tokens,
            completion_tokens,
            self._gateway.count_stopped(model, prompt_tokens, completion_tokens),
        )

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        on_partial: PartialCallback | None = None,
        primary: str | None = None,
        progress: Progress | None = None,
        trim: bool = True,
    ) -> Completion:
        """Answer ``messages`` with ``primary`` (LLM_MODEL unless given), then the fallback.

        Streams through ``on_partial`` when given; ``progress`` follows the model asked and the text
        so far. Raises LLMUnavailableError, and ContextTooLongError when the prompt does not fit —
        at once with ``trim=False``, else after dropping the oldest half of the history did not help.
        """
        run = _Run(
            deadline=asyncio.get_running_loop().time() + self.policy.deadline_seconds,
            messages=messages,
            trim=trim,
        )
        progress = progress if progress is not None else Progress()
        models = self.models_for(primary)
        if any(m.images for m in messages):  # only a model that reads images may answer
            models = [model for model in models if self.sees_images(model)]
        for index, model in enumerate(models):
            breaker = self._breaker(model)
            if not breaker.allow():
                metrics.LLM_ERRORS.labels(model=model, error_type="circuit_open").inc()
                log.warning("llm_model_skipped", model=model, reason="circuit_open")
                run.last_error = "circuit_open"
                continue
            if index > 0:
                metrics.LLM_FALLBACK_USED.inc()
                log.warning("llm_fallback", model=model, reason=run.last_error)
            is_last = index == len(models) - 1
            reserve = 0.0 if is_last else self.policy.timeout_seconds  # the fallback's one attempt
            progress.model, progress.text, progress.fallback_used = model, "", index > 0
            answer = await self._try_model(
                model, breaker, run, progress, on_partial, budget_end=run.deadline - reserve
            )
            if answer is not None:
                text, prompt_tokens, completion_tokens, cost_usd = answer
                latency_ms = round((time.perf_counter() - run.started) * 1000)
                log.info(
                    "llm_answered",
                    model=model,
                    latency_ms=latency_ms,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost_usd=cost_usd,
                    fallback_used=index > 0,
                )
                return Completion(
                    text=text,
                    model=model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_ms=latency_ms,
                    fallback_used=index > 0,
                    trimmed_messages=run.trimmed,
                    cost_usd=cost_usd,
                )
        raise LLMUnavailableError(run.last_error)

    async def _try_model(  # noqa: PLR0911  (each return is one way a model gives up)
        self,
        model: str,
        breaker: CircuitBreaker,
        run: _Run,
        progress: Progress,
        on_partial: PartialCallback | None,
        *,
        budget_end: float,
    ) -> ModelAnswer | None:
        """Attempts on one model until ``budget_end``; None when it failed for good (``run.last_error``)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while attempt < self.policy.attempts_per_model:
            remaining = budget_end - loop.time()
            if remaining < MIN_ATTEMPT_SECONDS:
                breaker.release_trial()
                if budget_end >= run.deadline:
                    raise LLMUnavailableError("deadline")
                run.last_error = "budget"
                return None
            try:
                answer = await self._attempt(
                    model,
                    run.messages,
                    timeout=min(self.policy.timeout_seconds, remaining),
                    on_partial=progress.follow(on_partial),
                )
            except _ContextTooLongError:
                breaker.release_trial()
                if not run.trim:
                    raise ContextTooLongError("the prompt does not fit the model's context") from None
                if run.trimmed:
                    raise ContextTooLongError("the prompt does not fit even after trimming") from None
                before = len(run.messages)
                run.messages = trim_history(run.messages)
                run.trimmed = before - len(run.messages)
                log.warning("llm_context_trimmed", model=model, dropped_messages=run.trimmed)
                continue
            except Exception as exc:  # every failure is classified; none may escape as a crash
                if progress.text:  # the stream broke off midway: what it generated is billed
                    prompt_tokens, completion_tokens, cost = self.stopped_usage(
                        model, run.messages, progress.text
                    )
                    progress.wasted.add(prompt_tokens + completion_tokens, cost)
                    progress.text = ""
                failure = classify(exc)
                breaker.record_failure()
                run.last_error = failure.error_type
                attempt += 1
                log.warning("llm_attempt_failed", model=model, error_type=failure.error_type, attempt=attempt)
                if not failure.retryable or failure.error_type == "timeout":
                    return None
                if attempt >= self.policy.attempts_per_model:
                    return None
                delay = self.policy.delay(attempt - 1, failure.retry_after)
                if loop.time() + delay + MIN_ATTEMPT_SECONDS >= budget_end:
                    return None
                await asyncio.sleep(delay)
                if not breaker.allow():
                    return None
                continue
            breaker.record_success()
            return answer
        return None

    async def _attempt(
        self,
        model: str,
        messages: list[ChatMessage],
        *,
        timeout: float,
        on_partial: PartialCallback | None,
    ) -> ModelAnswer:
        """One request to ``model``, counted and timed."""
        metrics.LLM_REQUESTS.labels(model=model).inc()
        started = time.perf_counter()
        status = "error"
        try:
            async with asyncio.timeout(timeout):
                if on_partial is None:
                    result = await self._gateway.answer(model, messages, timeout)
                else:
                    result = await self._gateway.stream(model, messages, timeout, on_partial)
            status = "success"
            return result
        except Exception as exc:
            if is_context_too_long(exc):
                metrics.LLM_ERRORS.labels(model=model, error_type="context_length").inc()
                raise _ContextTooLongError from exc
            metrics.LLM_ERRORS.labels(model=model, error_type=classify(exc).error_type).inc()
            raise
        finally:
            metrics.LLM_REQUEST_DURATION.labels(model=model, status=status).observe(
                time.perf_counter() - started
            )
