"""Settings of the stats API and dashboard (parley_api)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from parley_core.settings.base import split_commas
from parley_core.settings.budgets import BudgetSettings


class ApiSettings(BudgetSettings):
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
    stats_dialog_gap_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description="A dialog is a run of one user's messages with no pause longer than this; recent "
        "dialogs show each user's latest one and its duration.",
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
    budgets_api_rate_limit: str = Field(
        default="60/minute",
        description="Requests to /api/v1/budgets per authenticated admin (limits notation).",
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
        return split_commas(value)

    @field_validator(
        "stats_api_rate_limit",
        "budgets_api_rate_limit",
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
