"""The doubles' credentials, shaped like the real thing so the log redactor's patterns are exercised."""

from __future__ import annotations

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
LLM_API_KEY = "sk-test-0123456789abcdefghij"
