"""/usage (what the user's answers used, what is left, when it resets) and /budget (admins only)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, User
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import N_, _
from parley_bot.incoming import FromUser
from parley_bot.services import budgets
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.formatting import escape
from parley_core.budgets import Limits, Override
from parley_core.logging import get_logger
from parley_core.settings import BotSettings

log = get_logger(__name__)

BUDGET_HELP = N_(
    "Usage: /budget &lt;user id&gt; — show a user's budget\n"
    "/budget &lt;user id&gt; tokens_day=N tokens_month=N usd_day=X usd_month=X — set limits "
    "(any of them; <code>default</code> as a value goes back to the default)\n"
    "/budget &lt;user id&gt; exempt — no budget for this user\n"
    "/budget &lt;user id&gt; default — remove the user's override"
)
_KEYS = {
    "tokens_day": "tokens_per_day",
    "tokens_month": "tokens_per_month",
    "usd_day": "usd_per_day",
    "usd_month": "usd_per_month",
}


class BudgetCommandError(ValueError):
    """An admin's /budget arguments that cannot be applied; the message says why, for the reply."""


async def command_usage_handler(
    message: Message, *, user: User, engine: AsyncEngine, settings: BotSettings, output: TelegramOutput
) -> None:
    """Show the user's own usage and budget."""
    now = datetime.now(UTC)
    stored = await budgets.read(engine, user_id=user.id, now=now)
    budget = budgets.BudgetGuard(settings).budget_of(user.id, stored.override)
    lines = budgets.usage_lines(budget, stored.spending, now)
    await output.send_html(message.chat.id, _("<b>Your usage</b>") + "\n" + escape("\n".join(lines)))


async def command_budget_handler(
    message: Message,
    *,
    user: User,
    command: CommandObject,
    engine: AsyncEngine,
    settings: BotSettings,
    output: TelegramOutput,
) -> None:
    """Admins: show or change a user's budget override."""
    if user.id not in settings.bot_admin_user_ids:
        await output.send_plain(message.chat.id, _("Sorry, /budget is for the bot's admins."))
        return
    words = (command.args or "").split()
    if not words or not words[0].lstrip("-").isdigit():
        await output.send_html(message.chat.id, _(BUDGET_HELP))
        return
    target = int(words[0])
    now = datetime.now(UTC)
    stored = await budgets.read(engine, user_id=target, now=now)
    if len(words) > 1:
        try:
            override = changed_override(stored.override, words[1:])
        except BudgetCommandError as exc:
            await output.send_html(
                message.chat.id,
                _("Sorry, {reason}.").format(reason=escape(str(exc))) + f"\n\n{_(BUDGET_HELP)}",
            )
            return
        await budgets.store_override(engine, user_id=target, override=override, by=f"telegram:{user.id}")
        log.info("budget_changed", target_user_id=target, by=f"telegram:{user.id}", cleared=override is None)
        stored = replace(stored, override=override)
    budget = budgets.BudgetGuard(settings).budget_of(target, stored.override)
    title = (
        _("<b>Budget of user {user}</b> (an override)")
        if stored.override is not None
        else _("<b>Budget of user {user}</b> (the defaults)")
    )
    lines = budgets.usage_lines(budget, stored.spending, now)
    await output.send_html(message.chat.id, title.format(user=target) + "\n" + escape("\n".join(lines)))


def changed_override(current: Override | None, words: list[str]) -> Override | None:
    """The override after an admin's ``/budget <id> ...`` words; None removes it."""
    if words == ["default"]:
        return None
    if words == ["exempt"]:
        return Override(limits=current.limits if current else Limits(), exempt=True)
    values = {
        "tokens_per_day": current.limits.tokens_per_day if current else None,
        "tokens_per_month": current.limits.tokens_per_month if current else None,
        "usd_per_day": current.limits.usd_per_day if current else None,
        "usd_per_month": current.limits.usd_per_month if current else None,
    }
    for word in words:
        key, sep, raw = word.partition("=")
        if not sep or key not in _KEYS:
            raise BudgetCommandError(_("I do not understand {word}").format(word=repr(word)))
        values[_KEYS[key]] = _limit(key, raw)
    limits = Limits(
        tokens_per_day=_as_int(values["tokens_per_day"]),
        tokens_per_month=_as_int(values["tokens_per_month"]),
        usd_per_day=_as_decimal(values["usd_per_day"]),
        usd_per_month=_as_decimal(values["usd_per_month"]),
    )
    return Override(limits=limits, exempt=False)


def _limit(key: str, raw: str) -> int | Decimal | None:
    if raw == "default":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BudgetCommandError(
            _("{key} must be a number or default, not {value}").format(key=key, value=repr(raw))
        ) from None
    if not value.is_finite() or value < 0:
        raise BudgetCommandError(_("{key} must be zero or more").format(key=key))
    if key.startswith("tokens"):
        if value != value.to_integral_value():
            raise BudgetCommandError(_("{key} must be a whole number of tokens").format(key=key))
        if value >= 10**15:
            raise BudgetCommandError(_("{key} must be below a quadrillion tokens").format(key=key))
        return int(value)
    if value >= Decimal("1e10") or value != value.quantize(Decimal("0.000001")):
        raise BudgetCommandError(
            _("{key} must be below 10 billion dollars, with at most 6 decimals").format(key=key)
        )
    return value


def _as_int(value: int | Decimal | None) -> int | None:
    return None if value is None else int(value)


def _as_decimal(value: int | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def create_router() -> Router:
    """/usage and /budget, for commands meant for the bot from a user."""
    router = Router(name=__name__)
    router.message.filter(IsCommand(), AddressedToBot(), FromUser())
    router.message.register(command_usage_handler, Command("usage"))
    router.message.register(command_budget_handler, Command("budget"))
    return router
