"""Settings of each Parley service: the shared base plus what that service alone needs."""

from __future__ import annotations

import json
import re
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from parley_core.settings.base import ParleySettings

# What Telegram accepts as a webhook secret_token.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

# The label an operator in label mode requires on password Secrets (docs/operator.md#which-secrets).
DEFAULT_SECRET_LABEL_SELECTOR = "parley.dev/apiuser-password=true"  # noqa: S105 - a label, not a secret
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
# A selector term that only a labelled object matches: `key`, `key=value`, `key==value`.
_REQUIRED_LABEL = re.compile(rf"({_DNS_SUBDOMAIN.pattern}/)?{_LABEL_NAME}(==?({_LABEL_NAME})?)?")


class ApiSettings(ParleySettings):
    """The stats API and dashboard (parley_api)."""

    api_host: str = Field(default="127.0.0.1", description="Address to listen on; 0.0.0.0 in a container.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="HTTP port of the API and dashboard.")
    api_management_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of /health, /ready, /metrics and the OpenAPI documentation (/docs, /redoc); "
        "when set, API_PORT no longer serves them, so an Ingress to API_PORT exposes only the dashboard "
        "and the public API. Unset: API_PORT serves everything (local runs). The chart sets 9090.",
    )
    admin_registration_token: SecretStr | None = Field(
        default=None,
        description="Token for POST /api/v1/auth/register; unset turns registration off.",
    )
    ready_db_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready and /health wait for the database."
    )
    api_max_body_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Largest request body accepted; a larger one is refused with 413 before it is read.",
    )
    shutdown_delay_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="After SIGTERM, keep serving with /ready at 503 this long so load balancers "
        "stop routing before the listener closes (about 5 in Kubernetes).",
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Longest wait for in-flight requests on shutdown."
    )

    # The stats endpoint: privacy of previews, slow-query thresholds, query plans.
    stats_previews_enabled: bool = Field(
        default=True, description="Show the start of each recent dialog's latest message on the dashboard."
    )
    stats_preview_length: int = Field(
        default=120, ge=10, le=1000, description="Characters of a dialog preview before it is cut with …."
    )
    stats_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a period's figures are reused: the figures do not depend on who asks, so "
        "however many dashboards poll, each period is computed at most once per this many seconds "
        "(and once at a time); a new message shows within it. 0 computes on every request.",
    )
    slow_query_seconds: float = Field(
        default=0.5, gt=0, description="A stats query slower than this is logged at WARNING."
    )
    slow_request_seconds: float = Field(
        default=1.0, gt=0, description="A whole stats collection slower than this is logged at WARNING."
    )
    enable_query_analysis: bool = Field(
        default=False,
        description="Log EXPLAIN ANALYZE plans of the stats queries at DEBUG (runs each query twice: "
        "development only).",
    )

    # Security of the stats API: rate limits, failed-login throttling, the verification cache, CORS.
    # limits' notation ("10/minute", "100 per hour", "5/second;100/hour"); checked here so a typo
    # stops the process instead of silently disabling a limit.
    _LIMIT: ClassVar[re.Pattern[str]] = re.compile(
        r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*"
        r"([,;|]\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*)*$",
        re.IGNORECASE,
    )
    _STORAGE_SCHEMES: ClassVar[frozenset[str]] = frozenset(
        {"memory", "redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel"}
    )

    rate_limit_enabled: bool = Field(
        default=True,
        description="Apply STATS_API_RATE_LIMIT and REGISTRATION_RATE_LIMIT; turn off only for benchmarks. "
        "Failed-login throttling stays on regardless.",
    )
    rate_limit_storage_uri: SecretStr | None = Field(
        default=None,
        description="Where rate-limit and failed-login counters live. Unset means `memory://`: each "
        "replica counts on its own, so N replicas allow N times the limit. `redis://[:password@]host:6379/0` "
        "shares the counters between replicas.",
    )
    stats_api_rate_limit: str = Field(
        default="10/minute",
        description="Requests to /api/v1/stats per authenticated user (limits notation, e.g. `10/minute`).",
    )
    registration_rate_limit: str = Field(
        default="5/minute", description="Calls of POST /api/v1/auth/register per client address."
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs of the proxies (the ingress) whose X-Forwarded-For is believed; "
        "empty: the direct peer is the client.",
    )
    auth_failure_limit_per_username: str = Field(
        default="5/minute",
        description="Password checks (bcrypt) allowed per username before 429 — every attempt for it is "
        "then refused; a credential the verification cache knows costs none. Reserved before the check, "
        "so parallel guesses cannot exceed it.",
    )
    auth_failure_limit_per_address: str = Field(
        default="20/minute", description="Password checks (bcrypt) allowed per client address before 429."
    )
    bcrypt_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="bcrypt checks run at once (each takes a core for ~0.25 s at cost 12); more wait "
        "in line.",
    )
    auth_cache_ttl_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a successful bcrypt check is reused (the row is still read every request); "
        "0 turns the cache off.",
    )
    auth_cache_max_entries: int = Field(
        default=10_000, ge=1, description="Most credentials the verification cache remembers per process."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated browser origins allowed to call the API (`https://dash.example.com`); "
        "empty sends no CORS headers.",
    )
    cors_allow_credentials: bool = Field(
        default=True, description="Let browsers send Basic credentials cross-origin (needs explicit origins)."
    )

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):  # a JSON list, as pydantic-settings would take it
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "stats_api_rate_limit",
        "registration_rate_limit",
        "auth_failure_limit_per_username",
        "auth_failure_limit_per_address",
    )
    @classmethod
    def _is_rate_limit(cls, value: str) -> str:
        if not cls._LIMIT.match(value):
            raise ValueError("must be a rate limit like `10/minute`, `100 per hour` or `5/second;100/hour`")
        return value.strip()

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _known_storage(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = value.get_secret_value().partition("://")[0].lower()
            if scheme not in cls._STORAGE_SCHEMES:
                raise ValueError(f"scheme must be one of {', '.join(sorted(cls._STORAGE_SCHEMES))}")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(
                    "each origin is scheme://host[:port] without a path or trailing slash, or `*`"
                )
        return value

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Self:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "CORS_ORIGINS=* cannot be combined with CORS_ALLOW_CREDENTIALS=true: browsers refuse "
                "credentialed responses for any origin; list the dashboard origins instead"
            )
        return self

    @model_validator(mode="after")
    def _management_port_is_another_port(self) -> Self:
        if self.api_management_port == self.api_port:
            raise ValueError("API_MANAGEMENT_PORT must differ from API_PORT (or be unset)")
        return self

    @property
    def rate_limit_storage(self) -> str:
        """The limits storage URI the rate limiter and the login throttle share."""
        uri = self.rate_limit_storage_uri
        return uri.get_secret_value() if uri is not None else "memory://"


class BotSettings(ParleySettings):
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

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def _split_user_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

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

    def missing_for_start(self) -> list[str]:
        """Variables without which the bot cannot answer anybody."""
        missing = []
        if self.telegram_bot_token is None:
            missing.append("TELEGRAM_BOT_TOKEN")
        if self.llm_api_key is None:
            missing.append("LLM_API_KEY")
        return missing


class OperatorSettings(ParleySettings):
    """The ApiUser operator (parley_operator): ApiUser resources -> api_users rows."""

    operator_host: str = Field(
        default="127.0.0.1",
        description="Address of the liveness and metrics endpoints; 0.0.0.0 in a container.",
    )
    operator_health_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of kopf's liveness endpoint (`/healthz`)."
    )
    operator_metrics_port: int = Field(
        default=9090, ge=1, le=65535, description="Port of the Prometheus `/metrics` endpoint."
    )
    operator_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch (ApiUsers and their Secrets); empty watches "
        "the whole cluster (needs a ClusterRole).",
    )
    operator_resync_seconds: float = Field(
        default=300.0,
        ge=5,
        description="How often every ApiUser is checked against its row and source; drift (a row deleted "
        "or altered behind the operator's back) is repaired within this time. An unchanged user costs "
        "one Secret read and one row read, never a bcrypt hash.",
    )
    operator_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay after a temporary error; doubles per retry."
    )
    operator_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest retry delay after temporary errors (database, Vault, API)."
    )
    operator_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="bcrypt hashes computed at once; each takes one CPU core for about 0.25 s at cost 12.",
    )
    operator_min_password_length: int = Field(
        default=12, ge=1, le=72, description="Shortest password accepted from a Secret or Vault (characters)."
    )
    operator_kube_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one Kubernetes API request made by the operator."
    )
    operator_watch_server_timeout_seconds: int = Field(
        default=60,
        ge=10,
        description="Server-side length of one watch request; the watch is then re-opened.",
    )
    operator_watch_client_timeout_seconds: float = Field(
        default=90.0,
        gt=0,
        description="Client-side limit of one watch request, so a stalled watch is noticed and re-opened.",
    )
    operator_watch_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout to open a watch connection."
    )
    operator_secret_label_selector: str = Field(
        default=DEFAULT_SECRET_LABEL_SELECTOR,
        description="Label mode (the default): the operator reads passwords only from Secrets with these "
        "labels, through a labelled list and watch; an ApiUser naming a Secret without them gets "
        "`Ready=False` reason `SecretNotLabelled`. Only comma-separated `key=value` or `key` terms "
        "(`!=`, `!key`, `in`, `notin` are refused: some match Secrets without the label). Unused when "
        "OPERATOR_SECRET_NAMES is set; empty only together with it.",
    )
    operator_secret_names: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Named mode: comma-separated names of the only Secrets the operator reads (in each "
        "watched namespace), each read by GET, so a Role with `resourceNames` can enforce it; an "
        "ApiUser naming another Secret gets `Ready=False` reason `SecretNotAllowed`. Set, it replaces "
        "the label selector and the Secret watch (a watch cannot be limited to several names).",
    )
    operator_secret_poll_seconds: float = Field(
        default=30.0,
        ge=1,
        description="Named mode only: how often each ApiUser's Secret is read to notice a rotation (no "
        "watch); a changed Secret reaches its row within this time. One Secret GET per ApiUser.",
    )

    @field_validator("operator_namespaces", "operator_secret_names", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("operator_secret_names")
    @classmethod
    def _secret_names_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
                raise ValueError(f"{name!r} is not a Secret name (a DNS subdomain: a-z, 0-9, '-', '.')")
        return value

    @field_validator("operator_secret_label_selector")
    @classmethod
    def _selector_requires_labels(cls, value: str) -> str:
        terms = [term.strip() for term in value.split(",")] if value.strip() else []
        for term in terms:
            if not _REQUIRED_LABEL.fullmatch(term):
                raise ValueError(
                    f"term {term!r} does not require a label: use comma-separated key=value or key terms "
                    "(e.g. parley.dev/apiuser-password=true), never !=, !key, in or notin"
                )
        return ",".join(terms)

    @model_validator(mode="after")
    def _watch_timeouts_in_order(self) -> Self:
        if self.operator_watch_client_timeout_seconds <= self.operator_watch_server_timeout_seconds:
            raise ValueError(
                "OPERATOR_WATCH_CLIENT_TIMEOUT_SECONDS must exceed OPERATOR_WATCH_SERVER_TIMEOUT_SECONDS"
            )
        if self.operator_retry_max_seconds < self.operator_retry_base_seconds:
            raise ValueError("OPERATOR_RETRY_MAX_SECONDS must be at least OPERATOR_RETRY_BASE_SECONDS")
        if not self.operator_secret_names and not self.operator_secret_label_selector:
            raise ValueError(
                "OPERATOR_SECRET_LABEL_SELECTOR is empty and OPERATOR_SECRET_NAMES unset: the operator "
                "never reads every Secret; set a label selector (e.g. "
                f"{DEFAULT_SECRET_LABEL_SELECTOR}) or name the Secrets"
            )
        return self
