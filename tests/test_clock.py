"""The injected clock: virtual time wakes sleepers in order; scaled time runs faster."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from drivers.core.clock import Clock, MonotonicClock, ScaledClock, VirtualClock


async def test_virtual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, until: float) -> None:
        await clock.sleep_until(until)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, t)) for n, t in (("b", 20), ("a", 10), ("c", 30))]
    await clock.advance(25)
    assert woke == [("a", 10), ("b", 20)]
    assert clock.now() == 25
    await clock.advance(5)
    assert woke[-1] == ("c", 30)
    await asyncio.gather(*tasks)


async def test_absolute_deadlines_do_not_drift() -> None:
    clock = VirtualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        start = clock.now()
        for n in range(1, 1801):
            await clock.sleep_until(start + n)
            ticks.append(clock.now())

    task = asyncio.create_task(ticker())
    await clock.run(task)
    assert ticks == [float(n) for n in range(1, 1801)]


async def test_run_gives_real_time_to_work_outside_the_clock() -> None:
    clock = VirtualClock()

    async def mixed() -> float:
        await asyncio.sleep(0.01)  # e.g. a socket round trip
        await clock.sleep(60)
        return clock.now()

    task = asyncio.create_task(mixed())
    await clock.run(task)
    assert task.result() == 60


async def test_in_process_work_finishes_before_virtual_time_moves_on() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []

    async def long_chain() -> None:  # many hops, like a GATT exchange through bumble's stack
        for _ in range(400):
            await asyncio.sleep(0)
        seen.append(("chain done", clock.now()))

    async def sleeper() -> None:
        await clock.sleep(1)
        seen.append(("sleeper woke", clock.now()))

    tasks = [asyncio.ensure_future(long_chain()), asyncio.ensure_future(sleeper())]
    await clock.advance(1)
    await asyncio.gather(*tasks)
    assert seen == [("chain done", 0.0), ("sleeper woke", 1.0)]


async def test_a_task_that_never_goes_idle_does_not_stop_virtual_time() -> None:
    clock = VirtualClock()

    async def spin() -> None:
        for _ in itertools.count():
            await asyncio.sleep(0)

    spinner = asyncio.ensure_future(spin())
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(5)
        woke.append(clock.now())

    waiting = asyncio.ensure_future(sleeper())
    try:
        await clock.advance(10)
        await waiting
    finally:
        spinner.cancel()
    assert woke == [5.0]
    assert clock.now() == 10.0


async def test_scaled_clock_runs_faster_than_real_time() -> None:
    clock = ScaledClock(100)
    start_real = time.perf_counter()
    start = clock.now()
    await clock.sleep(5)  # 5 clock seconds = 50 real ms
    assert clock.now() - start >= 5
    assert time.perf_counter() - start_real < 5  # less real time than clock time passed
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_all_clocks_satisfy_the_protocol() -> None:
    for clock in (MonotonicClock(), ScaledClock(2), VirtualClock()):
        assert isinstance(clock, Clock)


def test_the_real_clock_counts_time_across_a_suspend(monkeypatch: pytest.MonkeyPatch) -> None:
    # CLOCK_MONOTONIC (time.monotonic) stops while the machine sleeps, so a heat phase that
    # spans a suspend would be recorded short; relieve's real clock is CLOCK_BOOTTIME, which
    # goes on counting. Freeze time.monotonic: the session clocks must not be reading it.
    assert hasattr(time, "CLOCK_BOOTTIME"), "relieve runs on Linux here"
    monkeypatch.setattr(time, "monotonic", lambda: 0.0)
    real, scaled = MonotonicClock(), ScaledClock(60)
    boottime = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert abs(real.now() - boottime) < 0.05
    first = scaled.now()
    time.sleep(0.02)
    assert scaled.now() - first >= 0.02 * 60


async def test_the_virtual_clock_stands_still_while_held_work_is_under_way() -> None:
    # a ledger write on its thread takes a millisecond of real time: no clock time passes
    clock = VirtualClock()
    sleeper = asyncio.ensure_future(clock.sleep(60))
    work = asyncio.ensure_future(asyncio.to_thread(time.sleep, 0.05))
    clock_when_done: list[float] = []
    work.add_done_callback(lambda _: clock_when_done.append(clock.now()))
    clock.hold(work)
    await clock.run(sleeper)
    assert clock_when_done == [0.0]
    assert clock.now() == 60
