"""Data access: the only place SQL is written. Functions take an open AsyncConnection.

Callers own the transaction: a single-statement function can run on an AUTOCOMMIT connection (one
round trip), several calls share ``engine.begin()``. Nothing here is ever awaited across slow I/O
such as an LLM call.
"""

from parley_core.repositories import bot_instances, messages, turns, user_settings, users

__all__ = ["bot_instances", "messages", "turns", "user_settings", "users"]
