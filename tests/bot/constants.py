"""Test constants of the bot area: the doubles' credentials, a user, the two models."""

from __future__ import annotations

# Shaped like the real thing, so the log redactor's patterns are exercised too.
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
LLM_API_KEY = "sk-test-0123456789abcdefghij"
TEST_USER_ID = 42
PRIMARY_MODEL = "primary/model"
FALLBACK_MODEL = "fallback/model"
