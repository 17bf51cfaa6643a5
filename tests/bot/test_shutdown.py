"""The real process: `python -m parley_bot` drains on SIGTERM with a reply in flight, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_testing.bot_process import bot_process_environment
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import rows


async def test_sigterm_during_an_in_flight_reply_delivers_it_and_exits_zero(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.latency = 2.0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley_bot",
        env=bot_process_environment(database_url, telegram, llm),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await telegram.wait_for(lambda: any(m == "getUpdates" for m, _ in telegram.calls), timeout=30)
        telegram.send_text("answer me before you go")
        await telegram.wait_for(lambda: len(llm.requests) == 1, timeout=30)
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), 40)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()

    assert exit_code == 0, output
    assert [m.text for m in telegram.messages_to(USER)] == ["echo: answer me before you go"]
    stored = await rows(engine, "SELECT role FROM messages ORDER BY created_at")
    assert [r.role for r in stored] == ["user", "assistant"]
    for step in (
        "shutdown_signal",
        "stopping polling",
        "waiting for in-flight replies",
        "in-flight replies finished",
        "confirmed updates",
        "closing database pool",
        "bot_stopped",
    ):
        assert step in output
    assert "answer me before you go" not in output  # message text is not logged at INFO
    assert telegram.token.split(":")[1] not in output
    # The handled update was confirmed: a successor does not receive it again.
    assert telegram.updates == []


async def test_bad_configuration_exits_2_naming_the_variable(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": "", "LLM_API_KEY": ""}
    env.pop("TELEGRAM_BOT_TOKEN")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parley_bot", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in stderr.decode()


async def test_a_token_telegram_rejects_exits_2_without_a_traceback(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    revoked = "123456:" + "A" * 35  # well-formed, but not the double's token
    env = {**bot_process_environment(database_url, telegram, llm), "TELEGRAM_BOT_TOKEN": revoked}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley_bot",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 2
    assert "Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized)" in stderr.decode()
    assert "Traceback" not in stdout.decode() + stderr.decode()
    assert revoked.split(":")[1] not in stdout.decode() + stderr.decode()
