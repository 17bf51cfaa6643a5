"""The bot's locust scenario (tools/load/bot_locustfile.py) against the doubles' control plane and a
real bot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.support import rows
from tools.load.run import bot_phase


async def test_control_plane_returns_the_bots_answer_and_refuses_bad_requests() -> None:
    double = TelegramDouble(control_plane=True)
    await double.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def ask(payload: object) -> tuple[int, dict[str, object]]:
                async with session.post(f"{double.url}/_control/ask", json=payload) as response:
                    return response.status, await response.json()

            status, body = await ask({"text": "no user"})
            assert status == 400
            assert "user_id" in str(body["error"])
            status, body = await ask({"user_id": 9, "text": "anyone?", "timeout": 0.2})
            assert status == 504  # no bot is polling
            assert "no answer" in str(body["error"])
            assert double.updates[-1]["message"]["text"] == "anyone?"
    finally:
        await double.close()


async def test_locust_scenario_chats_with_a_real_bot(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    stats = await asyncio.to_thread(
        bot_phase, database_url, users=4, seconds=8, workdir=tmp_path, llm_latency=0.2
    )

    questions = stats["text message -> answer"]
    assert questions["requests"] >= 4
    assert stats["Aggregated"]["failures"] == 0
    assert questions["p50_ms"] >= 200  # the LLM's scripted latency is part of what a user waits
    answers = await rows(engine, "SELECT count(*) AS n FROM messages WHERE role = 'assistant'")
    # every answer a user got was stored (plus at most one per user cut off when locust stopped)
    assert questions["requests"] <= answers[0].n <= questions["requests"] + 4
