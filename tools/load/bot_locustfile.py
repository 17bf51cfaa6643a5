"""Locust scenario for the bot: Telegram users chatting, through the local Telegram and LLM doubles.

Run by `make load` (tools/load/run.py starts the doubles, PostgreSQL and a real `python -m parley_bot`), or
by hand against a bot polling `python -m tools.doubles`:

    uv run locust -f tools/load/bot_locustfile.py --host <TELEGRAM_API_URL it printed>

Each locust user is one Telegram user in a private chat: it sends a question, waits for the bot's
answer (`POST /_control/ask` on the Telegram double returns it), reads for a few seconds and asks
again; now and then it looks at /settings. The response time locust reports is the whole round trip
a user sees — update to answer, including the LLM double's scripted latency.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import HttpUser, between, task

_user_ids = itertools.count(int(os.environ.get("LOAD_BOT_FIRST_USER_ID", "5000000")))
ANSWER_TIMEOUT_SECONDS = 60
RATE_LIMITED = "You are sending messages faster"  # parley_bot.middlewares.access.SLOW_DOWN


class TelegramUser(HttpUser):
    """One person chatting with the bot."""

    wait_time = between(2, 4)  # reading the answer, typing the next question

    def on_start(self) -> None:
        """A Telegram user id of its own, so history and rate limits are per locust user."""
        self.user_id = next(_user_ids)
        self.turn = 0

    def _ask(self, text: str, name: str) -> None:
        payload = {"user_id": self.user_id, "text": text, "timeout": ANSWER_TIMEOUT_SECONDS}
        with self.client.post("/_control/ask", json=payload, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif not response.json().get("reply"):
                response.failure("empty answer")
            elif response.json()["reply"].startswith(RATE_LIMITED):
                response.failure("rate limited (this scenario stays inside the default limit)")

    @task(10)
    def question(self) -> None:
        """A plain question: the LLM path (two statements, one LLM call, one reply)."""
        self.turn += 1
        words = random.choice(["kubernetes", "postgres", "helm", "vault", "python"])
        self._ask(f"question {self.turn} about {words}", "text message -> answer")

    @task(1)
    def settings(self) -> None:
        """A command: no LLM, one read."""
        self._ask("/settings", "/settings -> answer")
