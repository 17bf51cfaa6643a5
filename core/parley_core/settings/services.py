"""Settings of each Parley service: the shared base plus what that service alone needs."""

from __future__ import annotations

from pydantic import Field, SecretStr

from parley_core.settings.base import ParleySettings


class ApiSettings(ParleySettings):
    """The stats API and dashboard (parley_api)."""

    api_host: str = Field(default="127.0.0.1", description="Address to listen on; 0.0.0.0 in a container.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="HTTP port of the API and dashboard.")
    admin_registration_token: SecretStr | None = Field(
        default=None,
        description="Token for POST /api/v1/auth/register; unset turns registration off.",
    )
    ready_db_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready and /health wait for the database."
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
    bot_port: int = Field(default=8080, ge=1, le=65535, description="Port of /health, /ready, /metrics.")

    def missing_for_start(self) -> list[str]:
        """Variables without which the bot cannot answer anybody."""
        missing = []
        if self.telegram_bot_token is None:
            missing.append("TELEGRAM_BOT_TOKEN")
        if self.llm_api_key is None:
            missing.append("LLM_API_KEY")
        return missing


class OperatorSettings(ParleySettings):
    """The ApiUser operator (parley_operator); its own settings arrive with the operator."""
