"""Message handlers, one router per topic, built fresh for each Dispatcher by :func:`create_routers`.

A router can be attached to one parent only, so routers are not module-level objects: each
Dispatcher (one per process; tests and an in-process restart build several) gets its own.
"""

from __future__ import annotations

from aiogram import Router

from parley_bot.routers import (
    chat,
    errors,
    history,
    language,
    models,
    settings,
    start,
    stop_and_retry,
    unsupported,
    usage,
)


def create_routers() -> list[Router]:
    """New routers in the order the Dispatcher tries them; the catch-all ``unsupported`` comes last."""
    return [
        errors.create_router(),
        start.create_router(),
        history.create_router(),
        settings.create_router(),
        usage.create_router(),
        models.create_router(),
        language.create_router(),
        stop_and_retry.create_router(),
        chat.create_router(),
        unsupported.create_router(),
    ]
