"""Settings of Parley's services (pydantic-settings), with secrets optionally from Vault."""

from parley_core.settings.api import ApiSettings
from parley_core.settings.base import ParleySettings, load_settings, settings_for_main
from parley_core.settings.bot import BotSettings, ModelPrice
from parley_core.settings.errors import SettingsError
from parley_core.settings.migrations import MigrationSettings
from parley_core.settings.operator import OperatorSettings

__all__ = [
    "ApiSettings",
    "BotSettings",
    "MigrationSettings",
    "ModelPrice",
    "OperatorSettings",
    "ParleySettings",
    "SettingsError",
    "load_settings",
    "settings_for_main",
]
