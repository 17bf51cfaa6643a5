"""Retention by signup week, on a history small enough to count by hand: which users count in a
cohort, whose day N is over, who came back, and what deletions change."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_core.stats import retention
from parley_core.stats.retention import CohortRetention, DayRetention
from parley_testing import stats_reference as baseline

NOW = datetime(2026, 11, 26, 14, 35, tzinfo=UTC)  # a Thursday: the current week began on the 23rd


def at(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


USERS = {
    1: at(2, 10),  # week of Nov 2: back on day 1 and day 7
    2: at(4, 23, 30),  # back just after midnight (day 1) and just before the next (day 7)
    3: at(8, 9),  # a Sunday, same week: back on day 2 only
    4: at(5, 8, month=10),  # week of Oct 5, the oldest shown: back on day 30
    5: at(25, 8),  # yesterday: day 1 is today, not over
    6: at(26, 8),  # today
    7: at(29, 8),  # stamped ahead: counts in the current week, no day over
}
MESSAGES = [
    (1, at(2, 10)), (1, at(3, 9)), (1, at(9, 22)),
    (2, at(4, 23, 31)), (2, at(5, 0, 10)), (2, at(11, 23, 59)),
    (3, at(8, 9)), (3, at(10, 9)),
    (4, at(5, 8, month=10)), (4, at(4, 7)),
    (5, at(25, 8)), (5, at(26, 9)),
    (6, at(26, 8)),
]  # fmt: skip


async def _cohorts(conn: AsyncConnection) -> dict[datetime, CohortRetention]:
    query = retention.retention_query(NOW)
    rollup = query.parse((await conn.execute(query.statement, query.params)).all())
    reference = baseline.retention_query(NOW)
    assert rollup == reference.parse((await conn.execute(reference.statement, reference.params)).all())
    return {cohort.start: cohort for cohort in rollup}


def _day(cohort: CohortRetention, day: int) -> tuple[int, int]:
    found = next(d for d in cohort.days if d.day == day)
    return found.eligible, found.retained


async def test_cohorts_count_the_users_whose_day_is_over_and_who_came_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for user_id, created in USERS.items():
            await conn.execute(text("INSERT INTO users (id, created_at) VALUES (:u, :at)"),
                               {"u": user_id, "at": created})  # fmt: skip
        for user_id, stamp in MESSAGES:
            await conn.execute(
                text("INSERT INTO messages (user_id, role, content, content_length, created_at)"
                     " VALUES (:u, 'user', 'hi', 2, :at)"),
                {"u": user_id, "at": stamp},
            )  # fmt: skip

    async with engine.connect() as conn:
        cohorts = await _cohorts(conn)
    assert list(cohorts) == [at(5, 0, month=10) + retention.WEEK * i for i in range(8)]
    assert all(day.day in (1, 7, 30) for cohort in cohorts.values() for day in cohort.days)

    november = cohorts[at(2, 0)]
    assert november.users == 3
    assert _day(november, 1) == (3, 2)  # users 1 and 2; user 3 came back on day 2
    assert _day(november, 7) == (3, 2)
    assert _day(november, 30) == (0, 0)  # nobody's day 30 is over

    october = cohorts[at(5, 0, month=10)]
    assert (october.users, _day(october, 30), _day(october, 1)) == (1, (1, 1), (1, 0))

    last_week = cohorts[at(23, 0)]
    assert last_week.users == 3  # 5, 6 and 7 (stamped ahead, counted as now)
    assert [(d.eligible, d.retained) for d in last_week.days] == [(0, 0), (0, 0), (0, 0)]
    assert all(c.users == 0 for s, c in cohorts.items() if s not in (at(2, 0), at(5, 0, month=10), at(23, 0)))

    async with engine.begin() as conn:
        # /reset of user 2 takes their days away; user 3's first day moves to Nov 9 (day 1 = the 10th);
        # user 1 is deleted with their history.
        await conn.execute(text("UPDATE messages SET deleted_at = now() WHERE user_id = 2"))
        await conn.execute(text("UPDATE users SET created_at = :at WHERE id = 3"), {"at": at(9, 9)})
        await conn.execute(text("DELETE FROM users WHERE id = 1"))

    async with engine.connect() as conn:
        cohorts = await _cohorts(conn)
    november, november_9 = cohorts[at(2, 0)], cohorts[at(9, 0)]
    assert (november.users, _day(november, 1), _day(november, 7)) == (1, (1, 0), (1, 0))  # user 2 alone
    assert (november_9.users, _day(november_9, 1)) == (1, (1, 1))  # user 3, back on the 10th
    assert DayRetention(30, 1, 1) in cohorts[at(5, 0, month=10)].days
