"""Pacing: slots per chat and for the whole bot, groups slower, 0 turns a limit off."""

from __future__ import annotations

from parley_bot.telegram.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reserve(pacer: Pacer, clock: Clock, chat_id: int) -> float:
    """Both steps of ``Pacer.wait`` with a fake clock: the total wait of one send."""
    waited = pacer.reserve_chat(chat_id)
    clock.now += waited
    waited_too = pacer.reserve_send(chat_id)
    clock.now -= waited
    return waited + waited_too


def test_one_message_per_second_per_chat_and_thirty_per_second_overall() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=30, chat_interval_seconds=1, group_per_minute=20, clock=clock)

    assert (pacer.reserve_chat(1), pacer.reserve_send(1)) == (0, 0)
    assert pacer.reserve_chat(1) == 1.0  # chat 1's second message sleeps until its slot...
    assert pacer.reserve_chat(2) == 0  # ...while chat 2 need not wait at all
    assert pacer.reserve_send(2) == 0
    clock.now += 1.0
    assert pacer.reserve_send(1) == 0


def test_at_most_thirty_messages_in_any_second() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=30, chat_interval_seconds=1, group_per_minute=20, clock=clock)

    waits = [reserve(pacer, clock, chat) for chat in range(1, 71)]

    assert waits[:30] == [0] * 30  # thirty answers finishing together go out together
    assert waits[30:60] == [1.0] * 30  # the next thirty in the next second
    assert waits[60:] == [2.0] * 10
    clock.now += 10
    assert reserve(pacer, clock, 99) == 0


def test_a_chat_held_back_by_the_bot_wide_limit_keeps_its_own_interval() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=1, chat_interval_seconds=1, group_per_minute=20, clock=clock)
    for chat in (10, 11, 12):
        reserve(pacer, clock, chat)  # the bot-wide slots of the next 3 s are taken

    first = reserve(pacer, clock, 1)
    second = reserve(pacer, clock, 1)

    assert first == 3.0
    assert second >= first + 1.0


def test_group_chats_get_twenty_messages_per_minute() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=0, chat_interval_seconds=1, group_per_minute=20, clock=clock)

    waits = [reserve(pacer, clock, -100) for _ in range(3)]

    assert waits == [0, 3.0, 6.0]


def test_zero_turns_pacing_off() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=0, chat_interval_seconds=0, group_per_minute=0, clock=clock)

    assert [reserve(pacer, clock, 1) for _ in range(5)] == [0] * 5


def test_slots_free_up_as_time_passes() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=30, chat_interval_seconds=1, group_per_minute=20, clock=clock)
    reserve(pacer, clock, 1)
    clock.now += 5

    assert reserve(pacer, clock, 1) == 0
