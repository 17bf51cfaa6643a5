"""Build aiogram's Telegram types when first used instead of all of them at import: ~100 MB less RSS.

``aiogram.types`` ends its import with a loop that calls ``model_rebuild()`` on each of its ~400
classes, passing the names their forward references need (modules import them only for type
checking). With pydantic >= 2.11 the validator of a model with a ``model_validator`` (every aiogram
type has one) inlines its whole type graph, so that loop alone holds about 100 MB — more than the
rest of the bot with 500 conversations in flight, which uses a dozen of the types. The types are
declared with ``defer_build=True``: pydantic builds each one on first use by itself and then looks
the names up in the globals of the type's module.

:func:`install` changes two things, and nothing after it returns:

* While ``aiogram.types`` is imported — that one import, not longer — ``BaseModel.model_rebuild``
  is pydantic's own except for the calls of aiogram's loop: those keep the namespace the loop
  passes and build nothing. The original is put back as soon as the import returns or fails.
* Then each name that the annotations of a type in ``aiogram.types.*`` or ``aiogram.methods.*`` use
  and its module lacks is added to that module's globals, from that namespace (about 550 names;
  adding all ~400 names to every module would cost 15 MB). pydantic's first-use build finds them there.

Measured at start-up (``import parley_bot.__main__``, then ``warm_up`` of ``Update`` and the Bot
API methods the bot calls, and of their ``Response`` types; VmHWM; aiogram 3.31, pydantic 2.13):
129 MB with this module, 226 MB with aiogram's eager build.

Imported first thing by the ``parley_bot`` package, before anything imports aiogram; a process
that imported aiogram earlier keeps aiogram's eager build and this is a no-op.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

_TYPES_MODULE = "aiogram.types"
_TYPE_MODULES = ("aiogram.types.", "aiogram.methods.")  # methods refer to types by forward reference
_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass
class _State:
    installed: bool = False  # aiogram's types are built on first use in this process


_state = _State()


def _import_types_unbuilt() -> dict[str, Any] | None:
    """Import aiogram.types with its rebuild loop skipped; returns the namespace the loop passed."""
    original = BaseModel.__dict__["model_rebuild"]  # the classmethod itself, put back as it was
    captured: dict[str, Any] = {}

    def rebuild(cls: type[BaseModel], /, **kwargs: Any) -> bool | None:
        namespace = kwargs.get("_types_namespace")
        if namespace and cls.__module__.startswith(_TYPE_MODULES):
            captured.setdefault("namespace", namespace)  # aiogram's loop: build nothing
            return None
        # Any other call: pydantic's own, one frame further from its caller.
        kwargs["_parent_namespace_depth"] = kwargs.get("_parent_namespace_depth", 2) + 1
        result: bool | None = original.__func__(cls, **kwargs)
        return result

    BaseModel.model_rebuild = classmethod(rebuild)  # type: ignore[assignment,method-assign]
    try:
        importlib.import_module(_TYPES_MODULE)
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]
    return captured.get("namespace")


def _annotation_names(model: type[BaseModel]) -> Iterator[str]:
    """Names in the string annotations of ``model`` and its bases (pydantic evaluates inherited fields
    in the module of the class it builds)."""
    for cls in model.__mro__:
        for annotation in inspect.get_annotations(cls).values():
            if isinstance(annotation, str):
                yield from _NAME.findall(annotation)


def _add_missing_names(namespace: dict[str, Any]) -> None:
    """Give each module of aiogram's types and methods the names its models' annotations lack."""
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(_TYPE_MODULES):
            continue
        module_globals = vars(module)
        models = [
            value
            for value in list(module_globals.values())
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module_name
        ]
        for model in models:
            for name in _annotation_names(model):
                if name not in module_globals and name in namespace:
                    module_globals[name] = namespace[name]


def install() -> None:
    """Import aiogram with its Telegram types left unbuilt (idempotent; no-op if aiogram is loaded)."""
    if _TYPES_MODULE in sys.modules:
        return
    namespace = _import_types_unbuilt()
    if namespace is not None:
        _add_missing_names(namespace)
        _state.installed = True


def warm_up(*types: type[BaseModel]) -> None:
    """Build ``types`` now (at start-up) rather than on the first update."""
    for model in types:
        if not model.__pydantic_complete__:
            model.model_rebuild()


def active() -> bool:
    """Whether this process builds aiogram's types on first use (False if aiogram was imported first)."""
    return _state.installed
