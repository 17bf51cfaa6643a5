"""Budgets in the bot: refusing a turn whose budget is used up, warning at BUDGET_WARN_PERCENT, /usage.

The turn's claim read the user's spending of the day and month and their override with the rest
of the work, so the check costs no database round trip. A user's turns run one at a time under
the user's lease, whichever replica holds it: a turn starts only while every limit has something
left, and only that turn can add to the spending before it ends — so a user overspends a limit by
at most one turn's consumption, and an answer is never cut off for budget.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_core import budgets
from parley_core.budgets import Budget, Meter, Override, Spending
from parley_core.repositories import budgets as stored_budgets
from parley_core.repositories.turns import StoredAnswer, UserWork
from parley_core.settings import BotSettings

_PERIOD_WORDS = {"day": "daily", "month": "monthly"}


class BudgetGuard:
    """The budget rules with this bot's defaults."""

    def __init__(self, settings: BotSettings) -> None:
        self.defaults = settings.budget_defaults()
        self.exempt_user_ids = frozenset(settings.budget_exempt_user_ids)
        self.warn_percent = settings.budget_warn_percent

    def budget_of(self, user_id: int, override: Override | None) -> Budget:
        """The limits that apply to ``user_id``."""
        return budgets.effective_budget(
            user_id=user_id, defaults=self.defaults, override=override, exempt_user_ids=self.exempt_user_ids
        )

    def refusal(self, work: UserWork, now: datetime) -> str | None:
        """The polite refusal when a limit is used up (and counted), or None when the turn may start."""
        budget = self.budget_of(work.user_id, work.budget_override)
        if budget.exempt or not budget.limits.any():
            return None
        blocked = budgets.blocking(budgets.meters(budget, work.spending, now))
        if blocked is None:
            return None
        metrics.BOT_BUDGET_REFUSALS.labels(period=blocked.period, unit=blocked.unit).inc()
        return (
            f"Sorry, you have used your {_PERIOD_WORDS[blocked.period]} budget "
            f"({used_of(blocked)}). "
            f"It resets {when(blocked.resets_at, now)}; I'll gladly answer then. /usage shows the details."
        )

    def warning(self, work: UserWork, answer: StoredAnswer | None, now: datetime) -> str | None:
        """A note when this turn's answer took a limit to BUDGET_WARN_PERCENT or beyond, else None."""
        if answer is None:
            return None
        budget = self.budget_of(work.user_id, work.budget_override)
        if budget.exempt or not budget.limits.any():
            return None
        after = work.spending.plus(answer.tokens, answer.dollars or Decimal(0))
        crossed = budgets.newly_warned(
            budgets.meters(budget, work.spending, now),
            budgets.meters(budget, after, now),
            percent=self.warn_percent,
        )
        if not crossed:
            return None
        for meter in crossed:
            metrics.BOT_BUDGET_WARNINGS.labels(period=meter.period, unit=meter.unit).inc()
        return "\n".join(_warning(meter, now) for meter in crossed)


def _warning(meter: Meter, now: datetime) -> str:
    period = _PERIOD_WORDS[meter.period]
    if meter.exhausted:
        return (
            f"That used up your {period} budget ({used_of(meter)}); "
            f"I can answer again {when(meter.resets_at, now)}."
        )
    return (
        f"You have used {round(meter.fraction * 100)}% of your {period} budget ({used_of(meter)}); "
        f"it resets {when(meter.resets_at, now)}."
    )


def amount(value: Decimal, unit: str) -> str:
    """``12,345 tokens`` or ``$0.0123``."""
    if unit == "tokens":
        return f"{int(value):,} tokens"
    return f"${value.quantize(Decimal('0.0001')):,}" if value < 100 else f"${value:,.2f}"


def used_of(meter: Meter) -> str:
    """``1,234 of 10,000 tokens`` or ``$0.2500 of $1.5000``."""
    if meter.unit == "tokens":
        return f"{int(meter.used):,} of {amount(meter.limit, 'tokens')}"
    return f"{amount(meter.used, 'usd')} of {amount(meter.limit, 'usd')}"


def when(resets_at: datetime, now: datetime) -> str:
    """``at 00:00 UTC on 3 December (in 5 h 12 min)``."""
    left = max(resets_at - now, timedelta(0))
    hours, rest = divmod(int(left.total_seconds()), 3600)
    minutes = max(rest // 60, 1 if hours == 0 else 0)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes and not days else []
    return f"at {resets_at:%H:%M} UTC on {resets_at.day} {resets_at:%B} (in {' '.join(parts)})"


def usage_lines(budget: Budget, spending: Spending, now: datetime) -> list[str]:
    """What was used and what is left of each limit, for /usage and the admin's /budget."""
    lines = [
        f"Today: {amount(Decimal(spending.day_tokens), 'tokens')} · {amount(spending.day_usd, 'usd')}",
        f"This month: {amount(Decimal(spending.month_tokens), 'tokens')} · "
        f"{amount(spending.month_usd, 'usd')}",
    ]
    if budget.exempt:
        return [*lines, "No budget applies."]
    current = budgets.meters(budget, spending, now)
    if not current:
        return [*lines, "No budget is set."]
    lines.append("Budget:")
    lines += [_meter_line(meter, now) for meter in current]
    return lines


def _meter_line(meter: Meter, now: datetime) -> str:
    period = "today" if meter.period == "day" else "this month"
    state = "used up" if meter.exhausted else f"{amount(meter.left, meter.unit)} left"
    return f"• {used_of(meter)} {period} — {state}, resets {when(meter.resets_at, now)}"


async def read(engine: AsyncEngine, *, user_id: int, now: datetime) -> stored_budgets.StoredBudget:
    """The user's override and spending, read now (one statement)."""
    async with engine.connect() as conn:
        return await stored_budgets.read_budget(conn, user_id=user_id, today=now.astimezone(UTC).date())


async def store_override(engine: AsyncEngine, *, user_id: int, override: Override | None, by: str) -> None:
    """Set (or with None remove) the user's override."""
    async with engine.begin() as conn:
        if override is None:
            await stored_budgets.clear_override(conn, user_id=user_id)
        else:
            await stored_budgets.set_override(conn, user_id=user_id, override=override, updated_by=by)
