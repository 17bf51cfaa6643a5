"""Entry point: `python -m parley_bot` — settings, logging, the Dispatcher and its dependencies, serve."""

from __future__ import annotations

import asyncio
import gc
import sys
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.types import Update
from aiogram.utils.token import TokenValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import lazy_types, metrics, runner
from parley_bot.i18n import LocaleMiddleware
from parley_bot.intake import AcceptanceMiddleware
from parley_bot.lifecycle import Lifecycle, PollingHeartbeat
from parley_bot.llm import LLMClient
from parley_bot.middlewares import AccessMiddleware, UpdateContextMiddleware
from parley_bot.routers import create_routers
from parley_bot.services.instance import Instance
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.services.recovery import Recovery
from parley_bot.services.turns import TurnRunner
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.output import BOT_METHODS, BestEffortChatActions
from parley_core.db import create_engine
from parley_core.logging import get_logger
from parley_core.settings import BotSettings, settings_for_main


@dataclass(frozen=True)
class BotServices:
    """What the handlers and the runner share: the answering of turns and the process's heartbeat."""

    instance: Instance
    turns: TurnRunner
    recovery: Recovery


def create_services(
    *,
    settings: BotSettings,
    engine: AsyncEngine,
    llm: LLMClient,
    output: TelegramOutput,
    lifecycle: Lifecycle,
) -> BotServices:
    """The turn runner and the recovery loop of one bot process."""
    instance = Instance(mode=settings.bot_mode, stale_seconds=settings.bot_instance_stale_seconds)
    for model in settings.offered_models:  # a series per model /model offers, scrapeable from the start
        metrics.BOT_MODEL_CHOICES.labels(model=model)
    turns = TurnRunner(
        engine=engine, llm=llm, output=output, settings=settings, instance=instance, lifecycle=lifecycle
    )
    recovery = Recovery(
        engine=engine, instance=instance, runner=turns, lifecycle=lifecycle, settings=settings
    )
    return BotServices(instance=instance, turns=turns, recovery=recovery)


def create_dispatcher(
    *,
    settings: BotSettings,
    engine: AsyncEngine,
    llm: LLMClient,
    output: TelegramOutput,
    lifecycle: Lifecycle,
    services: BotServices,
) -> Dispatcher:
    """The Dispatcher with every dependency handlers ask for by name, middlewares and routers."""
    dp = Dispatcher(  # no FSM: conversation state lives in PostgreSQL, and its middleware runs per update
        settings=settings,
        engine=engine,
        llm=llm,
        output=output,
        turns=services.turns,
        lifecycle=lifecycle,
        disable_fsm=True,
    )
    dp.update.outer_middleware(AcceptanceMiddleware(lifecycle))
    dp.update.outer_middleware(UpdateContextMiddleware())
    dp.update.outer_middleware(LocaleMiddleware())
    refusals = RateLimiter(burst=settings.rate_limit_burst, per_minute=settings.rate_limit_per_minute)
    access = AccessMiddleware(allowed_user_ids=settings.allowed_user_ids, limiter=refusals, output=output)
    dp.message.middleware(access)
    dp.callback_query.middleware(access)
    dp.include_routers(*create_routers())
    return dp


def create_bot(settings: BotSettings, lifecycle: Lifecycle) -> Bot:
    """A Bot talking to TELEGRAM_API_URL, with the polling heartbeat and best-effort chat actions."""
    assert settings.telegram_bot_token is not None
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(PollingHeartbeat(lifecycle))
    session.middleware(BestEffortChatActions())
    return Bot(settings.telegram_bot_token.get_secret_value(), session=session)


async def run(
    bot_settings: BotSettings, *, lifecycle: Lifecycle | None = None, handle_signals: bool = True
) -> None:
    """Build everything for ``bot_settings`` and serve until SIGTERM (or ``lifecycle.request_stop()``)."""
    lifecycle = lifecycle or Lifecycle()
    lazy_types.warm_up(Update, *BOT_METHODS)  # not on the first user's message
    bot = create_bot(bot_settings, lifecycle)
    engine = create_engine(bot_settings, application_name="parley-bot")
    llm = LLMClient.from_settings(bot_settings)
    output = TelegramOutput.from_settings(bot, bot_settings)
    services = create_services(
        settings=bot_settings, engine=engine, llm=llm, output=output, lifecycle=lifecycle
    )
    dp = create_dispatcher(
        settings=bot_settings, engine=engine, llm=llm, output=output, lifecycle=lifecycle, services=services
    )
    # Everything built so far lives as long as the process: moving it out of the collector's reach
    # keeps full collections (which otherwise pause the event loop for 50-150 ms) short.
    gc.collect()
    gc.freeze()
    process = runner.BotProcess(
        settings=bot_settings,
        lifecycle=lifecycle,
        dp=dp,
        bot=bot,
        engine=engine,
        llm=llm,
        turns=services.turns,
        recovery=services.recovery,
    )
    await runner.serve(process, handle_signals=handle_signals)


def main() -> int:
    """Run the bot; exit 2 on bad configuration, 1 when it could not run, 0 after a graceful stop."""
    bot_settings = settings_for_main(BotSettings, program="parley-bot")
    log = get_logger("parley_bot")
    try:
        asyncio.run(run(bot_settings))
    except TokenValidationError:
        print(
            "parley-bot: invalid configuration:\n  - TELEGRAM_BOT_TOKEN is not a bot token", file=sys.stderr
        )
        return 2
    except TelegramUnauthorizedError:
        # A wrong or revoked token: a configuration error, not a crash worth a traceback.
        print(
            "parley-bot: invalid configuration:\n  - Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized):"
            " the token is wrong or was revoked; get the current one from @BotFather",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        log.error("bot_failed", error=type(exc).__name__, exc_info=exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
