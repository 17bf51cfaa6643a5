"""Data access: the only place SQL is written. Functions take an open AsyncConnection.

Callers own the transaction: a single-statement function can run on an AUTOCOMMIT connection (one
round trip), several calls share ``engine.begin()``. Nothing here is ever awaited across slow I/O
such as an LLM call.
"""

from parley_core.repositories import messages, user_settings, users

__all__ = ["messages", "user_settings", "users"]
