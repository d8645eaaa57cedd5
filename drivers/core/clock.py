"""The injected clock: one notion of "now" for the session engine, drivers and simulators.

Everything that measures therapy time takes a :class:`Clock` instead of calling
``asyncio.sleep`` or ``time.monotonic`` directly, so the same code runs

* in real time (:class:`MonotonicClock`),
* faster than real time for demos and rehearsals (:class:`ScaledClock`, e.g. x60), and
* in virtual time for tests (:class:`VirtualClock`: time moves only when it is moved; the cost
  of a session is then only the work done in it, see ``benchmarks/session_bench.py``).

BLE and network time-outs are *not* therapy time and stay in real time.

The clock lives in ``drivers`` because it is the lowest layer that the controller and the
simulators both import (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import itertools
import time
from collections.abc import Callable, Sized
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Clock",
    "MonotonicClock",
    "ScaledClock",
    "VirtualClock",
    "at_least_real",
    "real_seconds",
]

# asyncio may run a timer up to the loop's clock resolution before its time; sleeping this much
# longer (real seconds) makes "now() >= deadline" hold when sleep_until returns.
WAKE_MARGIN_S = 1e-4


def _suspend_counting() -> Callable[[], float]:
    """Monotonic seconds that keep counting while the machine is suspended.

    ``time.monotonic`` (CLOCK_MONOTONIC on Linux) stops during a suspend, so a heat phase that
    spans a laptop's sleep would look shorter than it was, and the rest rules would run from
    the wrong time. Linux's CLOCK_BOOTTIME counts the suspend; elsewhere ``time.monotonic``.
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)


real_seconds = _suspend_counting()
"""Real seconds for therapy time: monotonic, and counting a suspend where the OS allows."""


@runtime_checkable
class Clock(Protocol):
    """Seconds on a monotonic time line, and sleeping until a point on it."""

    def now(self) -> float:
        """The current time in clock seconds (monotonic, arbitrary origin)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (at once when it already is)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of clock time."""
        ...

    @property
    def speed(self) -> float:
        """Clock seconds per real second (1 for real time)."""
        ...

    def hold(self, future: asyncio.Future[Any]) -> None:
        """Work outside clock time is under way (another thread, the disk) until ``future``
        is done.

        Real clocks run on regardless; a virtual clock does not move until it is done, as the
        milliseconds it takes in real time would not move a session's clock.
        """
        ...


class MonotonicClock:
    """Real time, from :data:`real_seconds` (counting a suspend where the OS allows)."""

    @property
    def speed(self) -> float:
        return 1.0

    def now(self) -> float:
        return real_seconds()

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.now()
        await asyncio.sleep(remaining + WAKE_MARGIN_S if remaining > 0 else 0)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)

    def hold(self, future: asyncio.Future[Any]) -> None:
        pass


class ScaledClock:
    """Real time sped up by ``speed`` (x60 runs a 30-minute session in 30 seconds)."""

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be positive, not {speed}")
        self._speed = float(speed)
        self._origin = real_seconds()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return (real_seconds() - self._origin) * self._speed

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.now()
        if remaining > 0:
            # the event loop may fire a timer up to its clock resolution early: add a margin
            await asyncio.sleep(remaining / self._speed + WAKE_MARGIN_S)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)

    def hold(self, future: asyncio.Future[Any]) -> None:
        pass


# At most this many event-loop turns pass before the virtual clock believes that every task has
# either finished or gone to sleep on the clock. It normally stops as soon as the loop has
# nothing left to run (see VirtualClock.settle); the cap only bounds a loop that never goes
# idle (a task that yields without end), and sets the count on event loops whose ready queue
# cannot be seen.
SETTLE_TURNS = 500


class VirtualClock:
    """Virtual time for tests: time moves only when the test (or :meth:`run`) moves it.

    ``await clock.advance(1800)`` wakes every sleeper in deadline order, letting the event loop
    settle after each wake-up, so timers fire in exactly the order they would in real time and
    a 30-minute session costs only the work done in it (about a second of real time with
    simulated devices and their GATT traffic: ``benchmarks/session_bench.py``).
    """

    def __init__(self, start: float = 0.0, *, settle_turns: int = SETTLE_TURNS) -> None:
        self._now = float(start)
        self._settle_turns = settle_turns
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._outside: set[asyncio.Future[Any]] = set()  # work that time waits for

    @property
    def speed(self) -> float:
        return float("inf")

    def now(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + seconds)

    def hold(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            self._outside.add(future)
            future.add_done_callback(self._outside.discard)

    async def _hold_for_outside(self) -> bool:
        """Wait (in real time) while work outside clock time is pending; whether it was."""
        pending = [f for f in self._outside if not f.done()]
        if not pending:
            return False
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        return True

    def next_deadline(self) -> float | None:
        """The earliest pending deadline, or None when nobody sleeps on this clock."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every task that can run without time passing run.

        Yields to the event loop until nothing is ready to run at this instant: in-process work
        (bumble's link, queues, futures) always has a callback ready until it is done or asleep
        on the clock. Work that waits on real time (a socket, a real time-out) is not waited
        for; :meth:`run` gives it real time when nothing sleeps on the clock.
        """
        ready = _ready_queue(asyncio.get_running_loop())
        for _ in range(self._settle_turns):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in order."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        await self.advance_to(self._now + seconds)

    def jump(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once, waking nobody in between.

        What a frozen process sees (``kill -STOP``, a suspended laptop): nothing ran while
        the time passed, and every sleeper whose deadline went by is overdue. They wake, all at
        the same moment, on the next turn of :meth:`advance` / :meth:`run`, as overdue timers
        do when a real process is continued. Code that sleeps on this clock (the simulated
        devices too) then finds ``now()`` far beyond where it last looked.
        """
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._now += seconds

    async def advance_to(self, target: float) -> None:
        """Move time forward to ``target``, waking sleepers in deadline order."""
        await self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            if await self._hold_for_outside():
                await self.settle()
                continue
            self._now = max(self._now, deadline)
            self._wake_due()
            await self.settle()
        self._now = max(self._now, target)

    async def run(self, awaitable: asyncio.Future[object] | asyncio.Task[object]) -> None:
        """Advance time as far as needed until ``awaitable`` is done.

        When nothing sleeps on the clock and the task is not done, it waits on something
        outside virtual time (a socket, a real time-out): give it a little real time.
        """
        while not awaitable.done():
            await self.settle()
            if awaitable.done():
                break
            if await self._hold_for_outside():
                continue
            deadline = self.next_deadline()
            if deadline is None:
                await asyncio.sleep(0.001)
                continue
            self._now = max(self._now, deadline)
            self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


def _ready_queue(loop: asyncio.AbstractEventLoop) -> Sized | None:
    """The queue of callbacks ``loop`` will run on its next turn, where it can be seen.

    asyncio has no public "is the loop idle" call; CPython's event loops (3.11 to 3.14) keep
    their ready callbacks in ``_ready``. Elsewhere (uvloop) None: settle then yields the full
    :data:`SETTLE_TURNS`.
    """
    ready = getattr(loop, "_ready", None)
    return ready if isinstance(ready, collections.deque) else None


def at_least_real(clock: Clock, clock_s: float, real_floor_s: float) -> float:
    """``clock_s`` clock seconds, but never less than ``real_floor_s`` of real time.

    A watchdog of 5 s is 83 ms of real time at x60: ordinary event-loop and radio jitter would
    trip it. Under a scaled clock such intervals keep a real-time floor; in real time (x1) and in
    virtual time (tests: no jitter at all) they are exactly ``clock_s``.
    """
    speed = clock.speed
    if speed == float("inf") or speed <= 1:
        return clock_s
    return max(clock_s, real_floor_s * speed)
