"""VirtualClock.jump: time passes and nobody runs, as in a frozen process."""

from __future__ import annotations

import asyncio

import pytest

from drivers.core.clock import VirtualClock


async def test_jump_wakes_nobody_until_time_moves_on_then_every_overdue_sleeper_at_once() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, until: float) -> None:
        await clock.sleep_until(until)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, t)) for n, t in (("a", 1), ("b", 2), ("c", 40))]
    await clock.settle()
    clock.jump(30)
    assert clock.now() == 30
    await clock.settle()
    assert woke == []  # nothing ran while "frozen"
    await clock.advance(0)
    # the overdue ones wake together, in deadline order, and see the time after the freeze
    assert woke == [("a", 30), ("b", 30)]
    await clock.advance(10)
    assert woke[-1] == ("c", 40)
    await asyncio.gather(*tasks)


def test_jump_cannot_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock().jump(-1)
