"""A pydantic-settings source that fills secret fields from one Vault KV v2 secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from parley_core.settings.errors import SettingsError
from parley_core.vault import VaultReader, VaultSettings


def secret_field_names(settings_cls: type[BaseSettings]) -> list[str]:
    """Fields typed SecretStr (or SecretStr | None): the ones Vault may provide."""
    names = []
    for name, field in settings_cls.model_fields.items():
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        if annotation is SecretStr or SecretStr in args:
            names.append(name)
    return names


class VaultSettingsSource(PydanticBaseSettingsSource):
    """Reads VAULT_SECRET_PATH once and hands over the keys named like secret fields.

    Keys are the field names in lower case (``db_password``); the upper-case variable name
    (``DB_PASSWORD``) is accepted too. Keys that are not secret fields are ignored, so one Vault
    secret can be shared by several services.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        vault: VaultSettings,
        reader_factory: Callable[[VaultSettings], VaultReader] = VaultReader,
    ) -> None:
        super().__init__(settings_cls)
        self.vault = vault
        self._reader_factory = reader_factory

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: values are produced all at once in ``__call__``."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.vault.enabled:
            return {}
        if not self.vault.secret_path:
            raise SettingsError(["VAULT_ADDR is set but VAULT_SECRET_PATH is not"])
        secret = self._reader_factory(self.vault).read(self.vault.secret_path)
        values: dict[str, Any] = {}
        for name in secret_field_names(self.settings_cls):
            for key in (name, name.upper()):
                if key in secret.data:
                    values[name] = secret.data[key]
                    break
        return values
