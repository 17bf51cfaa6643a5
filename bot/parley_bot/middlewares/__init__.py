"""Middlewares: around every update (log context, in-flight tracking, dedupe) and message (access)."""

from parley_bot.middlewares.access import AccessMiddleware
from parley_bot.middlewares.context import UpdateContextMiddleware
from parley_bot.middlewares.dedupe import DedupeMiddleware

__all__ = ["AccessMiddleware", "DedupeMiddleware", "UpdateContextMiddleware"]
