"""Budget rules (which limits apply, when a turn is refused or warned, when periods end) and the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core import budgets
from parley_core.budgets import Budget, Limits, Override, Spending
from parley_core.repositories import budgets as stored
from parley_core.repositories import turns
from parley_core.repositories.turns import LeaseTerms, ReplyDraft, StoredAnswer
from parley_core.repositories.users import TelegramProfile

NOW = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
DEFAULTS = Limits(tokens_per_day=1000, usd_per_month=Decimal("2"))


def test_an_override_replaces_only_the_limits_it_sets() -> None:
    override = Override(limits=Limits(tokens_per_day=50, tokens_per_month=500))
    budget = budgets.effective_budget(user_id=1, defaults=DEFAULTS, override=override, exempt_user_ids=())
    assert budget == Budget(
        limits=Limits(tokens_per_day=50, tokens_per_month=500, usd_per_month=Decimal("2")),
        exempt=False,
        overridden=True,
    )


@pytest.mark.parametrize(
    ("override", "exempt_ids"),
    [(Override(limits=Limits(tokens_per_day=5), exempt=True), ()), (None, (1,))],
)
def test_an_exempt_user_has_no_limit(override: Override | None, exempt_ids: tuple[int, ...]) -> None:
    budget = budgets.effective_budget(
        user_id=1, defaults=DEFAULTS, override=override, exempt_user_ids=exempt_ids
    )
    assert budget.exempt
    assert budgets.meters(budget, Spending(day_tokens=10**9), NOW) == []


def test_a_turn_is_blocked_by_the_used_up_limit_that_resets_last() -> None:
    budget = budgets.effective_budget(
        user_id=1,
        defaults=Limits(tokens_per_day=100, tokens_per_month=100),
        override=None,
        exempt_user_ids=(),
    )
    mid_month = datetime(2026, 12, 15, 10, tzinfo=UTC)
    assert (
        budgets.blocking(budgets.meters(budget, Spending(day_tokens=99, month_tokens=99), mid_month)) is None
    )
    blocked = budgets.blocking(budgets.meters(budget, Spending(day_tokens=100, month_tokens=100), mid_month))
    assert blocked is not None
    assert (blocked.period, blocked.resets_at) == ("month", datetime(2027, 1, 1, tzinfo=UTC))


def test_a_zero_limit_refuses_at_once() -> None:
    budget = Budget(limits=Limits(usd_per_day=Decimal(0)), exempt=False, overridden=True)
    [meter] = budgets.meters(budget, Spending(), NOW)
    assert meter.exhausted
    assert meter.fraction == 1.0


def test_the_warning_comes_once_when_a_turn_crosses_the_threshold() -> None:
    budget = Budget(limits=Limits(tokens_per_day=1000), exempt=False, overridden=False)

    def crossed(before: int, after: int) -> list[str]:
        warned = budgets.newly_warned(
            budgets.meters(budget, Spending(day_tokens=before), NOW),
            budgets.meters(budget, Spending(day_tokens=after), NOW),
            percent=80,
        )
        return [m.period for m in warned]

    assert crossed(700, 799) == []
    assert crossed(700, 800) == ["day"]
    assert crossed(800, 900) == []  # already warned by the turn that crossed 80 %
    assert crossed(700, 1500) == ["day"]  # straight past 100 %: still one note


@pytest.mark.parametrize(
    ("now", "day_end", "month_end"),
    [
        (NOW, datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (
            datetime(2028, 2, 28, 23, 59, tzinfo=UTC),
            datetime(2028, 2, 29, tzinfo=UTC),
            datetime(2028, 3, 1, tzinfo=UTC),
        ),
    ],
)
def test_periods_end_at_utc_midnight_and_the_first_of_the_next_month(
    now: datetime, day_end: datetime, month_end: datetime
) -> None:
    assert budgets.period_ends(now) == (day_end, month_end)


async def _user(engine: AsyncEngine, user_id: int, holder: uuid.UUID) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO bot_instances (id, mode, hostname) VALUES (:h, 'polling', 't')"), {"h": holder}
        )
        await turns.accept_message(
            conn,
            profile=TelegramProfile(
                id=user_id, username=None, first_name="A", last_name=None, language_code=None
            ),
            update_id=user_id,
            chat_id=user_id,
            telegram_message_id=1,
            sent_at=NOW,
            content="hi",
            lease=LeaseTerms(holder=holder, stale_seconds=60, take_over=True),
            default_history=20,
            max_queued=10,
            dedupe_seconds=600,
        )


ANSWER = StoredAnswer(
    content="hello",
    model="m",
    prompt_tokens=30,
    completion_tokens=12,
    latency_ms=5,
    fallback_used=False,
    cost_usd=0.000125,
)


async def _finish(engine: AsyncEngine, user_id: int, holder: uuid.UUID, day: date) -> list[uuid.UUID] | None:
    async with engine.begin() as conn:
        message_ids = [
            r.message_id
            for r in await conn.execute(
                text("SELECT message_id FROM bot_inbox WHERE user_id = :u"), {"u": user_id}
            )
        ]
        return await turns.finish_turn(
            conn,
            user_id=user_id,
            holder=holder,
            message_ids=message_ids or [uuid.uuid4()],
            answer=ANSWER,
            replies=[ReplyDraft(user_id, None, "hello", markdown=True, parts_total=1, is_answer=True)],
            usage_day=day,
        )


async def test_the_ledger_counts_a_stored_answer_once_even_when_the_statement_is_repeated(
    engine: AsyncEngine,
) -> None:
    holder = uuid.uuid4()
    await _user(engine, 501, holder)
    day = date(2026, 12, 31)
    assert await _finish(engine, 501, holder, day) is not None
    assert await _finish(engine, 501, holder, day) is None  # a retry after the first run committed

    async with engine.connect() as conn:
        found = await stored.read_budget(conn, user_id=501, today=day)
    assert found.spending == Spending(
        day_tokens=42, day_usd=Decimal("0.000125"), month_tokens=42, month_usd=Decimal("0.000125")
    )
    assert found.override is None


async def test_a_turn_that_lost_its_lease_still_counts_what_it_consumed(engine: AsyncEngine) -> None:
    holder, successor = uuid.uuid4(), uuid.uuid4()
    await _user(engine, 502, holder)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO bot_instances (id, mode, hostname) VALUES (:h, 'webhook', 't')"),
            {"h": successor},
        )
        await conn.execute(text("UPDATE users SET lease_holder = :h WHERE id = 502"), {"h": successor})
    assert await _finish(engine, 502, holder, date(2026, 12, 31)) is None  # nothing stored or sent

    async with engine.connect() as conn:
        found = await stored.read_budget(conn, user_id=502, today=date(2026, 12, 31))
    assert found.spending.day_tokens == 42


async def test_the_month_sums_its_days_and_a_new_month_starts_empty(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for day, tokens in ((date(2026, 11, 30), 7), (date(2026, 12, 1), 10), (date(2026, 12, 15), 20)):
            await conn.execute(
                text("INSERT INTO usage_counters (user_id, day, tokens, turns) VALUES (503, :d, :t, 1)"),
                {"d": day, "t": tokens},
            )
        on_15th = await stored.read_budget(conn, user_id=503, today=date(2026, 12, 15))
        next_month = await stored.read_budget(conn, user_id=503, today=date(2027, 1, 1))
    assert (on_15th.spending.day_tokens, on_15th.spending.month_tokens) == (20, 30)
    assert (next_month.spending.day_tokens, next_month.spending.month_tokens) == (0, 0)


async def test_overrides_are_stored_listed_and_cleared(engine: AsyncEngine) -> None:
    override = Override(limits=Limits(tokens_per_month=10, usd_per_day=Decimal("0.5")), exempt=False)
    async with engine.begin() as conn:
        await stored.set_override(conn, user_id=601, override=override, updated_by="api:alice")
        await stored.set_override(
            conn, user_id=602, override=Override(limits=Limits(), exempt=True), updated_by="x"
        )
        await stored.set_override(conn, user_id=601, override=override, updated_by="telegram:7")
    async with engine.connect() as conn:
        listed = await stored.list_overrides(conn, after=0, limit=10)
        page = await stored.list_overrides(conn, after=601, limit=10)
        [(_, first)] = listed[:1]
    assert [user_id for user_id, _ in listed] == [601, 602]
    assert first.limits == override.limits
    assert first.updated_by == "telegram:7"
    assert [user_id for user_id, _ in page] == [602]
    async with engine.begin() as conn:
        assert await stored.clear_override(conn, user_id=601)
        assert not await stored.clear_override(conn, user_id=601)


async def test_the_database_refuses_a_negative_limit(engine: AsyncEngine) -> None:
    with pytest.raises(Exception, match="ck_user_budgets_limits_non_negative"):
        async with engine.begin() as conn:
            await stored.set_override(
                conn, user_id=603, override=Override(limits=Limits(tokens_per_day=-1)), updated_by="x"
            )
