"""Settings shared by every Parley process, and the one way to load them.

Precedence, highest first: explicit arguments, Vault (when VAULT_ADDR is set, for secret fields
only), environment variables, `.env`, defaults.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from parley_core import logging as parley_logging
from parley_core.settings.errors import SettingsError
from parley_core.settings.sources import VaultSettingsSource, secret_field_names
from parley_core.vault import VaultError, VaultSettings

# Values that are fine on a laptop and fatal in production.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "changethis", "secret", "password", "admin"})


def split_commas(value: object) -> object:
    """A list setting's value: "a, b" or a JSON list from the environment, a scalar as one item."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):  # a JSON list, as pydantic-settings would take it
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


class ParleySettings(BaseSettings):
    """What every service needs: environment, logging, database, password hashing."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", validate_default=True)

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses placeholder secrets and defaults logs to JSON.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level written; DEBUG adds query timings."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="`auto`: console in development, JSON in production."
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="Full SQLAlchemy/libpq URL; when set, the DB_HOST..DB_PASSWORD parts are ignored.",
    )
    db_host: str = Field(default="localhost", description="PostgreSQL host.")
    db_port: int = Field(default=5432, ge=1, le=65535, description="PostgreSQL port.")
    db_name: str = Field(default="parley", description="Database name.")
    db_user: str = Field(default="parley", description="Database role.")
    db_password: SecretStr | None = Field(default=None, description="Password of DB_USER.")
    db_pool_size: int = Field(default=20, ge=1, description="Connections kept open per process.")
    db_max_overflow: int = Field(default=30, ge=0, description="Extra connections under load.")
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request waits for a free connection."
    )
    db_pool_recycle: int = Field(default=3600, ge=-1, description="Seconds before a connection is replaced.")
    db_pool_pre_ping: bool = Field(default=True, description="Test a connection before each use.")
    db_pool_warn_utilization: float = Field(
        default=0.8, gt=0, le=1, description="Pool share in use above which a warning is logged."
    )
    db_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to open a connection.")
    db_statement_timeout_ms: int = Field(
        default=0, ge=0, description="PostgreSQL statement_timeout for app sessions; 0 = none."
    )
    db_echo: bool = Field(default=False, description="Log every SQL statement (development only).")

    bcrypt_rounds: int = Field(default=12, ge=4, le=16, description="bcrypt cost factor.")

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Self:
        if self.environment != "production":
            return self
        bad = [
            name.upper()
            for name in secret_field_names(type(self))
            if (value := getattr(self, name)) is not None
            and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        ]
        if bad:
            raise ValueError(f"placeholder secret values are refused in production: {', '.join(bad)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Put Vault between explicit arguments and the environment."""
        vault = VaultSettingsSource(settings_cls, VaultSettings())
        return init_settings, vault, env_settings, dotenv_settings, file_secret_settings

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        """The log format `auto` stands for."""
        if self.log_format != "auto":
            return self.log_format
        return "json" if self.environment == "production" else "console"

    def sqlalchemy_url(self) -> URL:
        """The asyncpg URL of the database, built from DATABASE_URL or the DB_* parts."""
        if self.database_url is not None:
            url = make_url(self.database_url.get_secret_value())
            if url.drivername in (
                "postgres",
                "postgresql",
                "postgresql+psycopg",
                "postgresql+psycopg2",
            ):
                url = url.set(drivername="postgresql+asyncpg")
            return url
        return URL.create(
            "postgresql+asyncpg",
            username=self.db_user,
            password=self.db_password.get_secret_value() if self.db_password else None,
            host=self.db_host,
            port=self.db_port,
            database=self.db_name,
        )

    def missing_for_start(self) -> list[str]:
        """Variables that may be unset for tooling but are needed to run the service."""
        return []

    def secret_values(self) -> list[str]:
        """Every secret this process holds, for the log redactor."""
        values = [
            value.get_secret_value()
            for name in secret_field_names(type(self))
            if (value := getattr(self, name)) is not None
        ]
        password = self.sqlalchemy_url().password
        if password:
            values.append(str(password))
        return values


SettingsT = TypeVar("SettingsT", bound=ParleySettings)


def _variable(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]).upper() if loc else "settings"


def load_settings(settings_cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Create settings once at an entry point; errors name variables and Vault keys, never values."""
    try:
        settings = settings_cls(**overrides)
    except ValidationError as exc:
        vault = VaultSettings()
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            variable = _variable(error["loc"])
            if error["type"] == "missing":
                where = f"set {variable} in the environment"
                if vault.enabled:
                    where += f" or key {variable.lower()!r} at Vault {vault.kv_mount}/{vault.secret_path}"
                problems.append(f"{variable} is required: {where}")
            else:
                problems.append(f"{variable}: {error['msg']}")
        raise SettingsError(problems) from None
    except VaultError as exc:
        raise SettingsError([f"cannot read secrets from Vault: {exc}"]) from None
    for value in settings.secret_values():
        parley_logging.secrets.add(value)
    return settings


def settings_for_main(settings_cls: type[SettingsT], *, program: str) -> SettingsT:
    """Settings and logging for a service's ``main()``; bad configuration ends the process with exit 2."""
    try:
        settings = load_settings(settings_cls)
        missing = settings.missing_for_start()
        if missing:
            raise SettingsError([f"{name} is required to run {program}" for name in missing])
    except SettingsError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    parley_logging.configure_logging(level=settings.log_level, fmt=settings.resolved_log_format)
    return settings
