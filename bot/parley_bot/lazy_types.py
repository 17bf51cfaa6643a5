"""Build aiogram's Telegram types when first used instead of all of them at import: ~110 MB less RSS.

``import aiogram`` calls ``model_rebuild()`` on each of the ~400 classes in ``aiogram.types``. With
pydantic >= 2.11 the validator of a model with a ``model_validator`` (every aiogram type has one)
inlines its whole type graph, so the import alone holds about 130 MB (pydantic#12558,
aiogram#1513) — more than the rest of the bot with 500 conversations in flight. The types are
declared with ``defer_build=True``: pydantic builds each one on first use by itself and only lacks
the namespace of forward references aiogram passes to that loop. This module keeps the namespace
and hands it over when a type is first used (or built by ``warm_up``).

Imported first thing by the ``parley_bot`` package, before anything imports aiogram; a process
that imported aiogram earlier keeps aiogram's eager build and this is a no-op.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

_TYPES_MODULE = "aiogram.types"
_LAZY_MODULES = ("aiogram.types.", "aiogram.methods.")  # methods refer to types by forward reference
_original_rebuild = BaseModel.model_rebuild.__func__  # type: ignore[attr-defined]


@dataclass
class _State:
    namespace: dict[str, Any] | None = None  # aiogram's names for the types' forward references
    deferring: bool = False  # True while aiogram's import-time rebuild loop runs


_state = _State()


def _is_telegram_type(cls: type[BaseModel]) -> bool:
    return cls.__module__.startswith(_LAZY_MODULES)


def _model_rebuild(cls: type[BaseModel], /, **kwargs: Any) -> bool | None:
    if _is_telegram_type(cls):
        namespace = kwargs.get("_types_namespace")
        if _state.deferring and namespace is not None:
            if namespace and _state.namespace is None:
                _state.namespace = namespace  # aiogram's loop: keep its namespace, build nothing
            return None
        if not namespace and _state.namespace is not None:
            kwargs["_types_namespace"] = _state.namespace
    result: bool | None = _original_rebuild(cls, **kwargs)
    return result


def install() -> None:
    """Import aiogram with its Telegram types left unbuilt (idempotent; no-op if aiogram is loaded)."""
    if _TYPES_MODULE in sys.modules:
        return
    BaseModel.model_rebuild = classmethod(_model_rebuild)  # type: ignore[assignment,method-assign]
    _state.deferring = True
    try:
        importlib.import_module(_TYPES_MODULE)  # runs aiogram's rebuild loop, now deferred
    finally:
        _state.deferring = False


def warm_up(*types: type[BaseModel]) -> None:
    """Build ``types`` now (at start-up) rather than on the first update."""
    for model in types:
        if not model.__pydantic_complete__:
            model.model_rebuild()


def active() -> bool:
    """Whether this process builds aiogram's types on first use (False if aiogram was imported first)."""
    return _state.namespace is not None
