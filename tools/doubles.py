"""Serve the Telegram (with its control plane) and LLM doubles as one process, for load tests.

    python -m tools.doubles --llm-latency 1.0

prints one JSON line once both listen — the bot's own settings that point it at them
(``TELEGRAM_API_URL``, ``TELEGRAM_BOT_TOKEN``, ``LLM_BASE_URL``, ``LLM_API_KEY``) — then serves until
SIGTERM/SIGINT. Bot API calls and LLM requests are not recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from parley_testing.bot_process import bot_environment
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble


async def serve(llm_latency: float) -> None:
    """Start both doubles, announce them on stdout, wait for a signal, stop."""
    telegram = TelegramDouble(record_calls=False, control_plane=True)
    llm = LLMDouble(latency=llm_latency, record=False)
    await telegram.start()
    await llm.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(bot_environment(telegram, llm)), flush=True)
    try:
        await stop.wait()
    finally:
        await telegram.close()
        await llm.close()


def main() -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-latency", type=float, default=1.0, help="seconds before each LLM answer")
    args = parser.parse_args()
    asyncio.run(serve(args.llm_latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
