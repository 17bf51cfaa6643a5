"""Known figures for the dashboard tests, inserted with plain SQL relative to the database's now().

Every burst sits well inside its windows (never within an hour of a bucket edge that moves while
the tests run), so the expected totals below hold whenever the suite runs.

Some answers carry a cost, some were stopped or retried, and three users have a budget and a ledger
for the current UTC day (``BUDGETS``, ``LEDGER``): the top spenders and their meters are known too.

Retention counts UTC days from a user's first day (the UTC day of ``created_at``): a user created a
whole number of days before the first message of a burst has that burst on exactly that day after
their first day, at whatever time of day the suite runs.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIMARY, FALLBACK = "openai/gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct"
HOUR, DAY = 60, 24 * 60

ACCOUNTS = {
    "analyst": "analyst-password-1",
    "leaver": "leaver-password-12",
    "limited": "limited-password-1",
}

# The latest message of user 1001's dialog (so its preview): longer than the preview length, with
# markup that must stay text.
LONG_ANSWER = (
    "Roll back the <b>Helm</b> release & keep the old ConfigMap: "
    "<script>window.pwned = true</script> helm rollback parley 3, then check that the ingress and "
    "the readiness probe of every pod of the deployment are green again."
)


@dataclass(frozen=True)
class User:
    """A Telegram user, created ``created_minutes_ago`` minutes ago."""

    id: int
    created_minutes_ago: int


@dataclass(frozen=True)
class Burst:
    """``turns`` question/answer pairs of one user, one minute apart, starting ``minutes_ago``. Each
    answer costs ``cost_usd`` (None: unpriced); the first ``stopped`` answers were stopped by the user,
    the last ``retried`` ones replaced by /retry."""

    user_id: int
    minutes_ago: int
    turns: int
    model: str = PRIMARY
    fallback: bool = False
    question: str = "Why is my pod pending?"
    answer: str = "Check the events of the pod and the capacity of the node."
    deleted: bool = False
    cost_usd: str | None = None
    stopped: int = 0
    retried: int = 0


USERS = [
    User(1001, 60 * DAY),  # 60 days: before the 8 signup weeks of retention
    User(1002, 60 * DAY),
    User(1003, 10 * DAY),  # back on day 7 (its burst 3 days ago)
    User(1004, 21 * DAY),  # back on day 1 (its burst 20 days ago)
    User(1005, 40 * DAY),  # its first burst on its first day, the next on day 30
    User(1006, 5 * HOUR),  # new today: total_users goes up against the previous day
    User(1007, 21 * DAY),  # 1004's first day too, but only /reset messages: never back
]
BURSTS = [
    # the last day: 12 messages, 3 active users
    Burst(1001, 40, 3, answer=LONG_ANSWER, cost_usd="0.0125", stopped=1),
    Burst(1002, 90, 2, model=FALLBACK, fallback=True, cost_usd="0.0004", retried=1),
    Burst(1006, 150, 1),  # unpriced: never a spender
    Burst(1007, 60, 2, deleted=True, cost_usd="5"),  # /reset: counts nowhere
    # the day before (previous `day`), still in this week: 2 messages
    Burst(1002, 30 * HOUR, 1, cost_usd="0.002"),
    # earlier this week: 12 messages
    Burst(1003, 3 * DAY, 4, cost_usd="0.003", retried=1),
    Burst(1001, 3 * DAY + 2 * HOUR, 2, cost_usd="0.001"),
    # earlier this month: 16 messages (user 1005's are the previous week's too)
    Burst(1004, 20 * DAY, 5, cost_usd="0.02"),
    Burst(1005, 10 * DAY, 3),
    # the month before: 4 messages
    Burst(1005, 40 * DAY, 2),
]

EXPECTED = {
    "day": {"total_users": 7, "total_messages": 12, "active_dialogs": 3},
    "week": {"total_users": 7, "total_messages": 26, "active_dialogs": 4},
    "month": {"total_users": 7, "total_messages": 42, "active_dialogs": 6},
}
EXPECTED_PREVIOUS_MESSAGES = {"day": 2, "week": 6, "month": 4}
# Distinct users of the last 24 h, 7 x 24 h and 30 x 24 h, whatever the period: the rolling
# periods' active dialogs.
EXPECTED_AUDIENCE = {
    "daily_active_users": 3,
    "weekly_active_users": 4,
    "monthly_active_users": 6,
    "stickiness": 0.5,
}
# The signup weeks with users (each group created at one moment, so in one week whenever the suite
# runs): day N -> (eligible_users, retained_users). Every other of the 8 weeks has no users.
EXPECTED_RETENTION = {
    frozenset({1005}): {"d1": (1, 0), "d7": (1, 0), "d30": (1, 1)},
    frozenset({1004, 1007}): {"d1": (2, 1), "d7": (2, 0), "d30": (0, 0)},  # day 30 is 9 days ahead
    frozenset({1003}): {"d1": (1, 0), "d7": (1, 1), "d30": (0, 0)},
    frozenset({1006}): {"d1": (0, 0), "d7": (0, 0), "d30": (0, 0)},  # its day 1 has not ended
}

# The rolling periods' top spenders, most first: (user_id, cost_usd, total_messages).
EXPECTED_SPENDERS = {
    "day": [(1001, 0.0375, 6), (1002, 0.0008, 4)],
    "week": [(1001, 0.0395, 10), (1003, 0.012, 8), (1002, 0.0028, 6)],
    "month": [(1004, 0.1, 10), (1001, 0.0395, 10), (1003, 0.012, 8), (1002, 0.0028, 6)],
}
# The rolling periods' answers stopped and retried, all models together: (stopped, retried).
EXPECTED_STOPS = {"day": (1, 1), "week": (1, 2), "month": (1, 2)}

# Budget overrides: user -> (tokens_per_day, tokens_per_month, usd_per_day, usd_per_month, exempt). No
# default limit is set, so user 1002 has none.
BUDGETS = {
    1001: (1000, None, "0.05", "1", False),
    1003: (500, None, None, None, False),
    1004: (None, None, None, None, True),
}
# The budget ledger of the current UTC day: user -> (tokens, cost_usd). User 1001 also has a row 40
# days ago (an earlier month: it counts in no meter).
LEDGER = {1001: (480, "0.046"), 1003: (600, "0.012")}
# What the page shows of them: user -> (budget today, budget this month) as (state, text) while the
# seeded day is the API's current UTC day.
EXPECTED_BUDGETS = {
    1001: (("warning", "$0.046 of $0.05"), ("ok", "$0.046 of $1.00")),  # 92 %, 5 %
    1002: (("none", "no limit"), ("none", "no limit")),
    1003: (("exhausted", "600 of 500 tokens"), ("none", "no limit")),
    1004: (("exempt", "exempt"), ("exempt", "exempt")),
}


def _sql_value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _message_rows(burst: Burst) -> list[str]:
    rows = []
    deleted = "now()" if burst.deleted else "NULL"
    cost = "NULL" if burst.cost_usd is None else burst.cost_usd
    for turn in range(burst.turns):
        asked = burst.minutes_ago - 2 * turn
        answer = burst.answer
        stopped = _sql_value(turn < burst.stopped)
        replaced = _sql_value(turn >= burst.turns - burst.retried)
        rows.append(
            f"(gen_random_uuid(), {burst.user_id}, 'user', {_quote(burst.question)}, {len(burst.question)}, "
            f"NULL, NULL, NULL, NULL, false, now() - interval '{asked} minutes', {deleted}, "
            "NULL, false, false)"
        )
        rows.append(
            f"(gen_random_uuid(), {burst.user_id}, 'assistant', {_quote(answer)}, {len(answer)}, "
            f"{_quote(burst.model)}, {120 + turn}, {40 + turn}, {800 + 100 * turn}, "
            f"{str(burst.fallback).lower()}, now() - interval '{asked - 1} minutes', {deleted}, {cost}, "
            f"{stopped}, {replaced})"
        )
    return rows


def seed_sql() -> str:
    """INSERTs of USERS, BURSTS, BUDGETS and LEDGER (the rollup triggers keep the stats up to date)."""
    users = ", ".join(
        f"({u.id}, 'user{u.id}', 'User', 'en', now() - interval '{u.created_minutes_ago} minutes', now())"
        for u in USERS
    )
    messages = ", ".join(row for burst in BURSTS for row in _message_rows(burst))
    # Constants of this module only: no outside input reaches the statement.
    insert_users = (
        "INSERT INTO users (id, username, first_name, language_code, created_at, updated_at) VALUES "
    )
    insert_messages = (
        "INSERT INTO messages (id, user_id, role, content, content_length, model, prompt_tokens, "
        "completion_tokens, latency_ms, fallback_used, created_at, deleted_at, cost_usd, stopped, replaced) "
        "VALUES "
    )
    budgets = ", ".join(
        f"({user}, {', '.join(_sql_value(value) for value in limits)})" for user, limits in BUDGETS.items()
    )
    insert_budgets = (
        "INSERT INTO user_budgets (user_id, tokens_per_day, tokens_per_month, usd_per_day, usd_per_month, "
        "exempt) VALUES "
    )
    today = "(now() AT TIME ZONE 'UTC')::date"
    ledger = ", ".join(f"({user}, {today}, {tokens}, {cost}, 3)" for user, (tokens, cost) in LEDGER.items())
    insert_ledger = "INSERT INTO usage_counters (user_id, day, tokens, cost_usd, turns) VALUES "
    earlier = f"(1001, {today} - 40, 5000, 0.9, 10)"
    return (
        f"{insert_users}{users}; {insert_messages}{messages}; {insert_budgets}{budgets}; "
        f"{insert_ledger}{ledger}, {earlier};"
    )
