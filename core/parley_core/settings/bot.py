"""Settings of the Telegram bot (parley_bot)."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from parley_core.settings.base import split_commas
from parley_core.settings.budgets import BudgetSettings

# What Telegram accepts as a webhook secret_token.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ModelPrice(BaseModel):
    """What a model costs, in US dollars per million tokens (the unit gateways publish prices in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: float = Field(ge=0, description="US dollars per million prompt (input) tokens.")
    completion: float = Field(ge=0, description="US dollars per million completion (output) tokens.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for one request of these token counts."""
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class BotSettings(BudgetSettings):
    """The Telegram bot (parley_bot)."""

    telegram_bot_token: SecretStr | None = Field(default=None, description="Token from @BotFather.")
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server; point it at a self-hosted telegram-bot-api.",
    )
    llm_api_key: SecretStr | None = Field(default=None, description="Key of the LLM gateway.")
    llm_base_url: str = Field(
        default="https://openrouter.ai/api/v1", description="Any OpenAI-compatible endpoint."
    )
    llm_model: str = Field(default="openai/gpt-4o-mini", description="Primary model.")
    llm_fallback_model: str = Field(
        default="meta-llama/llama-3.1-8b-instruct", description="Model used when the primary fails."
    )
    llm_model_choices: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated models a user may pick with /model (their choice replaces "
        "LLM_MODEL as the primary; the fallback stays). Empty: /model only shows the configured models.",
    )
    bot_host: str = Field(
        default="127.0.0.1",
        description="Address of the health/metrics (and webhook) server; 0.0.0.0 in a container.",
    )
    bot_port: int = Field(default=8080, ge=1, le=65535, description="Port of /health, /ready, /metrics.")

    db_pool_pre_ping: bool = Field(
        default=False,
        description="Bot: off by default — a pre-ping costs BEGIN, a ping and ROLLBACK per checkout, "
        "tripling the database round trips of a message; the bot retries a statement once on a "
        "connection that turns out to be dead instead.",
    )
    db_max_overflow: int = Field(
        default=0,
        ge=0,
        description="Bot: 0 by default — an overflow connection is closed when it goes back to the "
        "pool, so under load the bot opened and closed one per message (975 connects per 2,000 "
        "messages in make bench-bot, half the throughput); its statements are short and queue well "
        "for DB_POOL_SIZE connections.",
    )

    bot_mode: Literal["polling", "webhook"] = Field(
        default="polling",
        description="`polling` (exactly one replica) or `webhook` (several replicas behind a Service).",
    )
    telegram_webhook_url: str | None = Field(
        default=None, description="Public HTTPS URL Telegram posts updates to (webhook mode)."
    )
    telegram_webhook_path: str = Field(
        default="/telegram/webhook", description="Path of the webhook route on BOT_PORT."
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; required in webhook mode.",
    )
    telegram_webhook_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often each replica asks Telegram (getWebhookInfo) how many updates wait for "
        "the webhook and when a delivery last failed (webhook mode; exported for alerting).",
    )
    telegram_polling_timeout_seconds: int = Field(
        default=10, ge=0, le=50, description="Long-polling wait of one getUpdates call."
    )

    llm_system_prompt: str = Field(
        default="You are Parley, a helpful assistant in a Telegram chat. Answer concisely; "
        "Markdown is allowed.",
        description="System prompt for users who have not set their own.",
    )
    llm_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for one LLM attempt; a model that times out is not asked again for "
        "that message (the fallback is).",
    )
    llm_deadline_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Overall time budget of one answer, retries and fallback included. With a fallback "
        "model it must be at least twice LLM_TIMEOUT_SECONDS: the primary may use all but the last "
        "LLM_TIMEOUT_SECONDS, which belong to the fallback.",
    )
    llm_attempts_per_model: int = Field(
        default=2, ge=1, le=5, description="Attempts on each model before moving on (retries = attempts - 1)."
    )
    llm_backoff_base_seconds: float = Field(
        default=0.5, ge=0, description="First backoff; doubles each retry, with full jitter."
    )
    llm_backoff_max_seconds: float = Field(default=8.0, ge=0, description="Longest single backoff.")
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open the primary's circuit breaker."
    )
    llm_breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, description="How long an open breaker skips the primary model."
    )
    llm_max_completion_tokens: int | None = Field(
        default=None, ge=1, description="max_tokens of one answer; unset leaves it to the model."
    )
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='JSON: model -> `{"prompt": ..., "completion": ...}` in US dollars per million '
        "tokens. An answer's cost is the gateway's own figure (OpenRouter reports `usage.cost` with "
        "every response); this table prices answers of gateways that report tokens only. A model "
        "in neither has no cost recorded.",
    )

    llm_vision_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["openai/gpt-4o-mini", "openai/gpt-4o"],
        description="Comma-separated models that read images. A photo goes to the user's model only "
        "when it is one of them (otherwise the user is told to pick one with /model); the fallback "
        "model is skipped for a photo unless it is one of them.",
    )
    llm_transcription_model: str | None = Field(
        default=None,
        description="Model of the gateway's /audio/transcriptions endpoint (e.g. `whisper-1`) that "
        'turns voice messages into text. Unset: voice messages get a polite "send text" reply.',
    )
    bot_photo_max_bytes: int = Field(
        default=5_000_000,
        ge=1,
        le=20_000_000,
        description="Largest photo fetched for the model; the bot picks the largest of Telegram's "
        "sizes of a photo under this (the Bot API serves files up to 20 MB).",
    )
    bot_photos_per_turn: int = Field(
        default=4, ge=1, le=10, description="Most photos one answer looks at (an album's others are named)."
    )
    bot_document_max_bytes: int = Field(
        default=2_000_000,
        ge=1,
        le=20_000_000,
        description="Largest text, Markdown or PDF document read; a larger one gets a clear reply.",
    )
    bot_document_max_chars: int = Field(
        default=40_000,
        ge=100,
        description="Most characters of a document's text given to the model; a longer text is refused "
        "with a clear reply rather than cut silently.",
    )
    bot_voice_max_seconds: int = Field(default=300, ge=1, description="Longest voice message transcribed.")

    stream_replies: Literal["auto", "draft", "edit", "off"] = Field(
        default="auto",
        description="Streaming in private chats: `auto` uses sendMessageDraft and falls back to "
        "throttled editMessageText when the server lacks it.",
    )
    stream_edit_interval_seconds: float = Field(
        default=1.0, ge=0.1, description="Least time between two streaming updates of one chat."
    )

    history_default_messages: int = Field(
        default=20, ge=1, description="Messages of history the LLM sees unless a user sets /history."
    )
    history_max_messages: int = Field(default=100, ge=1, description="Largest value /history accepts.")
    system_prompt_max_chars: int = Field(default=2000, ge=1, description="Longest /system prompt.")

    rate_limit_burst: int = Field(
        default=5, ge=1, description="Answers a user may get in a burst; later messages wait their turn."
    )
    rate_limit_per_minute: float = Field(
        default=20.0, gt=0, description="Sustained answers per minute per user (token-bucket refill)."
    )
    bot_max_queued_messages: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Messages of one user waiting for an answer at most; a message beyond them is "
        "refused with a reply saying it was not taken.",
    )
    bot_coalesce_seconds: float = Field(
        default=1.5,
        ge=0,
        le=10,
        description="Messages of one user that arrive within this time of each other while an answer "
        "is pending (or a long paste Telegram split at 4096 characters) become one turn.",
    )
    bot_stale_message_seconds: float = Field(
        default=900.0,
        ge=60,
        description="A message that waited longer than this for its answer (bot or database down) gets "
        '"I could not answer this in time, please ask again" instead of a late answer.',
    )
    bot_update_dedupe_seconds: float = Field(
        default=86400.0,
        ge=600,
        description="How long an update id counts as seen: Telegram re-sends unconfirmed updates, and "
        "re-uses ids after a week without updates, so a re-used id older than this is a new message.",
    )
    bot_heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often the process refreshes its heartbeat and looks for work nobody alive is "
        "doing (messages of a crashed process, replies not yet sent).",
    )
    bot_instance_stale_seconds: float = Field(
        default=20.0,
        gt=0,
        description="A process whose heartbeat is older than this is dead: its users' leases are taken "
        "over (webhook mode; in polling mode the one process takes them over at start).",
    )
    bot_intake_backoff_max_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest pause between attempts to store incoming updates while the database is "
        "unavailable; Telegram keeps unconfirmed updates for 24 h.",
    )
    allowed_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Telegram user ids allowed to chat; empty allows everyone.",
    )
    bot_admin_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Telegram user ids that may change users' budgets with /budget.",
    )

    telegram_global_per_second: float = Field(
        default=30.0, ge=0, description="Outgoing messages per second for the whole bot; 0 = unpaced."
    )
    telegram_chat_interval_seconds: float = Field(
        default=1.0, ge=0, description="Least time between two outgoing messages in one private chat."
    )
    telegram_group_per_minute: float = Field(
        default=20.0, ge=0, description="Outgoing messages per minute in one group; 0 = unpaced."
    )
    telegram_retry_after_max_seconds: float = Field(
        default=60.0, ge=0, description="Longest flood-control wait honoured before giving up on a send."
    )

    ready_db_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready waits for the database."
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Longest wait for in-flight replies on shutdown."
    )

    @field_validator(
        "allowed_user_ids", "bot_admin_user_ids", "llm_model_choices", "llm_vision_models", mode="before"
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return split_commas(value)

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> Self:
        if self.bot_mode == "webhook":
            missing = [
                name
                for name, value in (
                    ("TELEGRAM_WEBHOOK_URL", self.telegram_webhook_url),
                    ("TELEGRAM_WEBHOOK_SECRET", self.telegram_webhook_secret),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"BOT_MODE=webhook needs {' and '.join(missing)}")
        secret = self.telegram_webhook_secret
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return self

    @model_validator(mode="after")
    def _timings_leave_room(self) -> Self:
        if (
            self.llm_fallback_model != self.llm_model
            and self.llm_deadline_seconds < 2 * self.llm_timeout_seconds
        ):
            raise ValueError(
                f"LLM_DEADLINE_SECONDS ({self.llm_deadline_seconds:g}) leaves the fallback model no time: "
                f"the primary may use up to LLM_TIMEOUT_SECONDS ({self.llm_timeout_seconds:g}) per attempt, "
                "and the fallback needs one full attempt after it, so the deadline must be at least "
                f"twice LLM_TIMEOUT_SECONDS = {2 * self.llm_timeout_seconds:g} s (raise the deadline or "
                "lower the timeout)"
            )
        if self.bot_instance_stale_seconds < 3 * self.bot_heartbeat_seconds:
            raise ValueError(
                f"BOT_INSTANCE_STALE_SECONDS ({self.bot_instance_stale_seconds:g}) must be at least "
                f"three times BOT_HEARTBEAT_SECONDS ({3 * self.bot_heartbeat_seconds:g}): a live process "
                "that misses one heartbeat would otherwise lose its users to another process"
            )
        return self

    @property
    def offered_models(self) -> list[str]:
        """What /model offers: LLM_MODEL (the default) first, then LLM_MODEL_CHOICES, each once."""
        return list(dict.fromkeys([self.llm_model, *self.llm_model_choices]))

    def missing_for_start(self) -> list[str]:
        """Variables without which the bot cannot answer anybody."""
        missing = []
        if self.telegram_bot_token is None:
            missing.append("TELEGRAM_BOT_TOKEN")
        if self.llm_api_key is None:
            missing.append("LLM_API_KEY")
        return missing
