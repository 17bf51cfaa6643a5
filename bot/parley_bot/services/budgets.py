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

from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.i18n import _, current_locale, ngettext
from parley_core import budgets
from parley_core.budgets import Budget, Meter, Override, Spending
from parley_core.repositories import budgets as stored_budgets
from parley_core.repositories.turns import StoredAnswer, UserWork
from parley_core.settings import BotSettings


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
        return _filled(
            blocked,
            now,
            daily=_(
                "Sorry, you have used your daily budget ({used}). "
                "It resets {when}; I'll gladly answer then. /usage shows the details."
            ),
            monthly=_(
                "Sorry, you have used your monthly budget ({used}). "
                "It resets {when}; I'll gladly answer then. /usage shows the details."
            ),
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
    if meter.exhausted:
        return _filled(
            meter,
            now,
            daily=_("That used up your daily budget ({used}); I can answer again {when}."),
            monthly=_("That used up your monthly budget ({used}); I can answer again {when}."),
        )
    return _filled(
        meter,
        now,
        daily=_("You have used {percent}% of your daily budget ({used}); it resets {when}."),
        monthly=_("You have used {percent}% of your monthly budget ({used}); it resets {when}."),
    )


def _filled(meter: Meter, now: datetime, *, daily: str, monthly: str) -> str:
    """The text for the meter's period, with what was used, what is left and when it resets.

    Both texts are literal ``_()`` calls at the caller, so the catalogues see each one whole (a
    sentence built from "daily"/"monthly" pieces would not translate).
    """
    return (daily if meter.period == "day" else monthly).format(
        used=used_of(meter),
        left=amount(meter.left, meter.unit),
        percent=round(meter.fraction * 100),
        when=when(meter.resets_at, now),
    )


def amount(value: Decimal, unit: str) -> str:
    """``12,345 tokens`` or ``$0.0123`` (numbers written the way the user's language writes them)."""
    locale = current_locale()
    if unit == "tokens":
        count = int(value)
        return ngettext("{count} token", "{count} tokens", count).format(
            count=format_decimal(count, locale=locale)
        )
    pattern = "#,##0.0000" if value < 100 else "#,##0.00"
    return "$" + format_decimal(value, format=pattern, locale=locale)


def used_of(meter: Meter) -> str:
    """``1,234 of 10,000 tokens`` or ``$0.2500 of $1.5000``."""
    if meter.unit == "tokens":
        used = format_decimal(int(meter.used), locale=current_locale())
        return _("{used} of {limit}").format(used=used, limit=amount(meter.limit, "tokens"))
    return _("{used} of {limit}").format(used=amount(meter.used, "usd"), limit=amount(meter.limit, "usd"))


def when(resets_at: datetime, now: datetime) -> str:
    """``at 00:00 UTC on 3 December (in 5 h 12 min)``, in the user's language."""
    left = max(resets_at - now, timedelta(0))
    hours, rest = divmod(int(left.total_seconds()), 3600)
    minutes = max(rest // 60, 1 if hours == 0 else 0)
    days, hours = divmod(hours, 24)
    parts = [_("{n} d").format(n=days)] if days else []
    parts += [_("{n} h").format(n=hours)] if hours else []
    parts += [_("{n} min").format(n=minutes)] if minutes and not days else []
    return _("at {time} UTC on {date} (in {left})").format(
        time=f"{resets_at:%H:%M}",
        date=format_date(resets_at, "d MMMM", locale=current_locale()),
        left=" ".join(parts),
    )


def usage_lines(budget: Budget, spending: Spending, now: datetime) -> list[str]:
    """What was used and what is left of each limit, for /usage and the admin's /budget."""
    lines = [
        _("Today: {tokens} · {usd}").format(
            tokens=amount(Decimal(spending.day_tokens), "tokens"), usd=amount(spending.day_usd, "usd")
        ),
        _("This month: {tokens} · {usd}").format(
            tokens=amount(Decimal(spending.month_tokens), "tokens"), usd=amount(spending.month_usd, "usd")
        ),
    ]
    if budget.exempt:
        return [*lines, _("No budget applies.")]
    current = budgets.meters(budget, spending, now)
    if not current:
        return [*lines, _("No budget is set.")]
    lines.append(_("Budget:"))
    lines += [_meter_line(meter, now) for meter in current]
    return lines


def _meter_line(meter: Meter, now: datetime) -> str:
    if meter.exhausted:
        return _filled(
            meter,
            now,
            daily=_("• {used} today — used up, resets {when}"),
            monthly=_("• {used} this month — used up, resets {when}"),
        )
    return _filled(
        meter,
        now,
        daily=_("• {used} today — {left} left, resets {when}"),
        monthly=_("• {used} this month — {left} left, resets {when}"),
    )


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
