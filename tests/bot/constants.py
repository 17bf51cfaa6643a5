"""Test constants of the bot area: the doubles' credentials, a user, the two models."""

from __future__ import annotations

from parley_testing.doubles.credentials import LLM_API_KEY, TELEGRAM_TOKEN

__all__ = ["FALLBACK_MODEL", "LLM_API_KEY", "PRIMARY_MODEL", "TELEGRAM_TOKEN", "TEST_USER_ID"]

TEST_USER_ID = 42
PRIMARY_MODEL = "primary/model"
FALLBACK_MODEL = "fallback/model"
