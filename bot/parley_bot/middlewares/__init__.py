"""Middlewares: around every update (log context) and message (access)."""

from parley_bot.middlewares.access import AccessMiddleware
from parley_bot.middlewares.context import UpdateContextMiddleware

__all__ = ["AccessMiddleware", "UpdateContextMiddleware"]
