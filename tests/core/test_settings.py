"""Loading settings: environment, .env, database URL, production guards, error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley_core import logging as parley_logging
from parley_core.settings import (
    ApiSettings,
    BotSettings,
    ParleySettings,
    SettingsError,
    load_settings,
)


def test_defaults_are_the_production_pool_settings() -> None:
    settings = load_settings(ParleySettings)

    assert (settings.db_pool_size, settings.db_max_overflow) == (20, 30)
    assert settings.db_pool_pre_ping is True
    assert settings.db_pool_recycle == 3600
    assert settings.bcrypt_rounds == 12


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("API_PORT=9001\nDB_HOST=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_HOST", "from-env")

    settings = load_settings(ApiSettings)

    assert settings.api_port == 9001
    assert settings.db_host == "from-env"  # the environment beats .env


def test_url_from_parts_and_from_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "p@ss word")
    parts = load_settings(ParleySettings, db_host="db", db_port=5433, db_name="x", db_user="u")
    url = parts.sqlalchemy_url()
    assert (url.drivername, url.username, url.password) == ("postgresql+asyncpg", "u", "p@ss word")
    assert (url.host, url.port, url.database) == ("db", 5433, "x")

    monkeypatch.setenv("DATABASE_URL", "postgresql://a:b@h:1/d")
    assert load_settings(ParleySettings).sqlalchemy_url().drivername == "postgresql+asyncpg"


def test_secrets_are_hidden_in_repr() -> None:
    settings = load_settings(BotSettings, telegram_bot_token="123:abc-secret", llm_api_key="sk-x")

    assert "abc-secret" not in repr(settings)
    assert settings.missing_for_start() == []
    assert load_settings(BotSettings).missing_for_start() == ["TELEGRAM_BOT_TOKEN", "LLM_API_KEY"]


def test_loaded_secrets_are_registered_with_the_log_redactor() -> None:
    parley_logging.secrets.clear()
    load_settings(
        ApiSettings,
        admin_registration_token="registration-token-xyz",
        database_url="postgresql://u:db-password-123@h/d",
    )

    masked = parley_logging.redact_text("t=registration-token-xyz pw db-password-123")

    assert "registration-token-xyz" not in masked
    assert "db-password-123" not in masked
    parley_logging.secrets.clear()


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(
        SettingsError,
        match="placeholder secret values are refused in production: ADMIN_REGISTRATION_TOKEN",
    ):
        load_settings(ApiSettings, environment="production", admin_registration_token="changeme")
    # The same value is accepted on a laptop.
    assert load_settings(ApiSettings, admin_registration_token="changeme").environment == "development"


def test_invalid_values_are_named_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "super-secret-not-a-number")

    with pytest.raises(SettingsError) as caught:
        load_settings(ParleySettings)

    assert "DB_POOL_SIZE" in str(caught.value)
    assert "super-secret-not-a-number" not in str(caught.value)


def test_log_format_auto() -> None:
    assert load_settings(ParleySettings).resolved_log_format == "console"
    assert load_settings(ParleySettings, environment="production").resolved_log_format == "json"
    assert load_settings(ParleySettings, log_format="json").resolved_log_format == "json"


def test_a_deadline_that_leaves_the_fallback_no_time_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("LLM_DEADLINE_SECONDS", "50")

    with pytest.raises(SettingsError, match=r"LLM_DEADLINE_SECONDS \(50\) leaves the fallback model no time"):
        load_settings(BotSettings)
    # The defaults leave the fallback one full attempt; without a distinct fallback there is nothing to leave.
    assert load_settings(BotSettings, llm_deadline_seconds=60).llm_deadline_seconds == 60
    assert load_settings(BotSettings, llm_fallback_model=BotSettings.model_fields["llm_model"].default)


def test_heartbeats_must_fit_the_staleness_window() -> None:
    with pytest.raises(SettingsError, match="BOT_INSTANCE_STALE_SECONDS"):
        load_settings(BotSettings, bot_heartbeat_seconds=10, bot_instance_stale_seconds=20)


def test_prices_come_as_json_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PRICES", '{"openai/gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}')

    price = load_settings(BotSettings).llm_prices["openai/gpt-4o-mini"]

    assert price.cost(prompt_tokens=1_000_000, completion_tokens=500_000) == pytest.approx(0.45)


@pytest.mark.parametrize(
    "value",
    [
        '{"m": {"prompt": -1, "completion": 1}}',
        '{"m": {"prompt": 1}}',
        '{"m": {"input": 1, "output": 2}}',
        "[1]",
    ],
)
def test_a_malformed_price_table_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LLM_PRICES", value)

    with pytest.raises(SettingsError, match="LLM_PRICES"):
        load_settings(BotSettings)
