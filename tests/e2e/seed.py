"""Known figures for the dashboard tests, inserted with plain SQL relative to the database's now().

Every burst sits well inside its windows (never within an hour of a bucket edge that moves while
the tests run), so the expected totals below hold whenever the suite runs.

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
    """``turns`` question/answer pairs of one user, one minute apart, starting ``minutes_ago``."""

    user_id: int
    minutes_ago: int
    turns: int
    model: str = PRIMARY
    fallback: bool = False
    question: str = "Why is my pod pending?"
    answer: str = "Check the events of the pod and the capacity of the node."
    deleted: bool = False


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
    Burst(1001, 40, 3, answer=LONG_ANSWER),
    Burst(1002, 90, 2, model=FALLBACK, fallback=True),
    Burst(1006, 150, 1),
    Burst(1007, 60, 2, deleted=True),  # /reset: counts nowhere
    # the day before (previous `day`), still in this week: 2 messages
    Burst(1002, 30 * HOUR, 1),
    # earlier this week: 12 messages
    Burst(1003, 3 * DAY, 4),
    Burst(1001, 3 * DAY + 2 * HOUR, 2),
    # earlier this month: 16 messages (user 1005's are the previous week's too)
    Burst(1004, 20 * DAY, 5),
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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _message_rows(burst: Burst) -> list[str]:
    rows = []
    deleted = "now()" if burst.deleted else "NULL"
    for turn in range(burst.turns):
        asked = burst.minutes_ago - 2 * turn
        answer = burst.answer
        rows.append(
            f"(gen_random_uuid(), {burst.user_id}, 'user', {_quote(burst.question)}, {len(burst.question)}, "
            f"NULL, NULL, NULL, NULL, false, now() - interval '{asked} minutes', {deleted})"
        )
        rows.append(
            f"(gen_random_uuid(), {burst.user_id}, 'assistant', {_quote(answer)}, {len(answer)}, "
            f"{_quote(burst.model)}, {120 + turn}, {40 + turn}, {800 + 100 * turn}, "
            f"{str(burst.fallback).lower()}, now() - interval '{asked - 1} minutes', {deleted})"
        )
    return rows


def seed_sql() -> str:
    """INSERTs of USERS and BURSTS (the rollup triggers keep the stats up to date)."""
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
        "completion_tokens, latency_ms, fallback_used, created_at, deleted_at) VALUES "
    )
    return f"{insert_users}{users}; {insert_messages}{messages};"
