"""Pacing: slots per chat and for the whole bot, groups slower, 0 turns a limit off."""

from __future__ import annotations

from parley_bot.telegram.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_message_per_second_per_chat_and_thirty_per_second_overall() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=30, chat_interval_seconds=1, group_per_minute=20, clock=clock)

    assert pacer.reserve(1) == 0
    assert pacer.reserve(1) == 1.0
    assert round(pacer.reserve(2), 3) == round(1.0 + 1 / 30, 3)  # global slot after the last booked one
    assert pacer.reserve(-5) > 1.0


def test_group_chats_get_twenty_messages_per_minute() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=0, chat_interval_seconds=1, group_per_minute=20, clock=clock)

    waits = [pacer.reserve(-100) for _ in range(3)]

    assert waits == [0, 3.0, 6.0]


def test_zero_turns_pacing_off() -> None:
    pacer = Pacer(global_per_second=0, chat_interval_seconds=0, group_per_minute=0, clock=Clock())

    assert [pacer.reserve(1) for _ in range(5)] == [0] * 5


def test_slots_free_up_as_time_passes() -> None:
    clock = Clock()
    pacer = Pacer(global_per_second=30, chat_interval_seconds=1, group_per_minute=20, clock=clock)
    pacer.reserve(1)
    clock.now += 5

    assert pacer.reserve(1) == 0
