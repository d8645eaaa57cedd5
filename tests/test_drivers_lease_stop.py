"""Stopping lease renewals: no renewal after stop, a bounded wait, OFF never queued behind them.

The unit tests drive :class:`~drivers.core.lease.LeaseKeeper` (a
:class:`~drivers.core.periodic.PeriodicTask`) on a :class:`~drivers.core.clock.VirtualClock` with
renewals that behave like a BLE stack below bleak can: an ATT round trip that takes real time, and a
cancellation that is lost (bumble's ``wait_for`` on Python 3.11 may swallow it). The integration
test switches a simulated open-profile pad OFF through bleak while a renewal is on the air.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from drivers.core.base import DeviceError
from drivers.core.clock import VirtualClock
from drivers.core.lease import LeaseKeeper
from drivers.core.tasks import cancel_and_wait
from drivers.open_thermal import OpenThermalPad
from simulators.faults import LinkLatency
from tests.test_drivers_harness import Sim, sim

__all__ = ["sim"]

# Real seconds the keepers under test wait for a renewal in flight (their stop_wait_s).
STOP_WAIT_S = 0.2
# Real seconds of slack on top of a bound before a test calls it exceeded (event-loop jitter).
SLACK_S = 0.5
# Real seconds every ATT packet to the simulated pad takes in the integration test.
LATENCY_S = 0.1
# Real seconds off() may take with a renewal on the air: that renewal's round trip and OFF's.
OFF_BOUND_S = 4 * LATENCY_S + 2 * SLACK_S


class Renewal:
    """A renewal callable: records when it was sent; held in flight while ``answered`` is clear.

    ``loses_cancel`` makes it behave like a stack that swallows the cancellation: it keeps
    waiting for its answer (``finish=False``) or returns as if answered (``finish=True``).
    ``winds_down_s`` makes an honest renewal take that long (real time) to end once cancelled.
    """

    def __init__(
        self,
        clock: VirtualClock,
        *,
        loses_cancel: bool = False,
        finish: bool = False,
        winds_down_s: float = 0.0,
    ) -> None:
        self.clock = clock
        self.loses_cancel = loses_cancel
        self.finish = finish
        self.winds_down_s = winds_down_s
        self.sent: list[float] = []
        self.answered = asyncio.Event()
        self.answered.set()
        self.in_flight = asyncio.Event()

    async def __call__(self) -> None:
        self.sent.append(self.clock.now())
        self.in_flight.set()
        try:
            while True:
                try:
                    await self.answered.wait()
                except asyncio.CancelledError:
                    if not self.loses_cancel:
                        await asyncio.sleep(self.winds_down_s)
                        raise
                    if self.finish:
                        return
                else:
                    return
        finally:
            self.in_flight.clear()


def keeper_for(renewal: Renewal, failures: list[DeviceError]) -> LeaseKeeper:
    return LeaseKeeper(
        clock=renewal.clock,
        renew=renewal,
        on_failure=failures.append,
        label="pad",
        stop_wait_s=STOP_WAIT_S,
    )


async def renewal_in_flight(renewal: Renewal, keeper: LeaseKeeper) -> None:
    """Renew at 1 s and 2 s, then leave the renewal of 3 s in flight."""
    keeper.start()
    await renewal.clock.advance(2.5)
    renewal.answered.clear()
    await renewal.clock.advance(0.5)
    assert renewal.sent == [1.0, 2.0, 3.0]
    assert renewal.in_flight.is_set()


@pytest.mark.parametrize("finish", [True, False], ids=["lost-then-answered", "lost-and-stuck"])
async def test_no_renewal_is_sent_after_stop_even_when_the_cancellation_is_lost(
    finish: bool,
) -> None:
    renewal = Renewal(VirtualClock(), loses_cancel=True, finish=finish)
    failures: list[DeviceError] = []
    keeper = keeper_for(renewal, failures)
    await renewal_in_flight(renewal, keeper)
    try:
        stopping = asyncio.ensure_future(keeper.stop())
        started = time.monotonic()
        await asyncio.wait({stopping}, timeout=STOP_WAIT_S + SLACK_S)
        waited = time.monotonic() - started

        assert stopping.done(), "stop() waited past its bound for the renewal in flight"
        assert waited < STOP_WAIT_S + SLACK_S
        renewal.answered.set()  # a late answer to the renewal in flight
        await renewal.clock.advance(30)
        assert renewal.sent == [1.0, 2.0, 3.0]
        assert not keeper.running
        assert failures == []
    finally:
        renewal.answered.set()


async def test_a_lost_cancellation_answered_at_once_lets_stop_return_at_once() -> None:
    renewal = Renewal(VirtualClock(), loses_cancel=True, finish=True)
    keeper = keeper_for(renewal, [])
    await renewal_in_flight(renewal, keeper)

    stopping = asyncio.ensure_future(keeper.stop())
    await asyncio.wait({stopping}, timeout=STOP_WAIT_S / 2)

    assert stopping.done(), "stop() did not return with the renewal that ended"
    await renewal.clock.advance(30)
    assert renewal.sent == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("loses_cancel", "winds_down_s"),
    [(True, 0.0), (False, STOP_WAIT_S / 2)],
    ids=["renewal-loses-its-cancel", "renewal-slow-to-end"],
)
async def test_the_callers_own_cancellation_propagates_out_of_stop(
    loses_cancel: bool, winds_down_s: float
) -> None:
    renewal = Renewal(VirtualClock(), loses_cancel=loses_cancel, winds_down_s=winds_down_s)
    keeper = keeper_for(renewal, [])
    await renewal_in_flight(renewal, keeper)
    try:
        stopping = asyncio.ensure_future(keeper.stop())
        await asyncio.sleep(0.01)  # stop() is waiting for the renewal in flight
        assert not stopping.done()
        stopping.cancel()
        await asyncio.wait({stopping}, timeout=SLACK_S)

        assert stopping.done(), "the cancelled caller is still waiting"
        assert stopping.cancelled(), "stop() swallowed its caller's cancellation"
        renewal.answered.set()
        await renewal.clock.advance(30)
        assert renewal.sent == [1.0, 2.0, 3.0]
    finally:
        renewal.answered.set()


async def test_a_renewal_learns_it_was_withdrawn_before_it_would_retry() -> None:
    clock = VirtualClock()
    answer = asyncio.Event()
    withdrawn: list[bool] = []

    async def renew() -> None:
        # What drivers.core.connection asks before every attempt of the write.
        withdrawn.append(keeper.call_withdrawn())
        try:
            await answer.wait()
        except asyncio.CancelledError:
            await answer.wait()  # the cancellation was lost; the attempt ran to its end
        withdrawn.append(keeper.call_withdrawn())

    keeper = LeaseKeeper(
        clock=clock, renew=renew, on_failure=lambda _: None, label="pad", stop_wait_s=0.01
    )
    keeper.start()
    await clock.advance(1)
    await keeper.stop()
    answer.set()
    await clock.advance(5)

    assert withdrawn == [False, True]
    assert not keeper.call_withdrawn()  # asked from elsewhere: nothing of the keeper's


async def test_a_renewal_failing_after_stop_is_not_reported() -> None:
    clock = VirtualClock()
    failures: list[DeviceError] = []
    answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def renew() -> None:
        try:
            await asyncio.shield(answer)
        except asyncio.CancelledError:
            await answer  # the stack lost the cancellation: it waits on, then gives up
        raise DeviceError("the renewal was not acknowledged")

    keeper = LeaseKeeper(
        clock=clock, renew=renew, on_failure=failures.append, label="pad", stop_wait_s=0.01
    )
    keeper.start()
    await clock.advance(1)
    stopping = asyncio.ensure_future(keeper.stop())
    await asyncio.wait({stopping}, timeout=SLACK_S)
    answer.set_result(None)
    await clock.advance(5)

    assert stopping.done()
    assert failures == []
    assert not keeper.running


async def test_cancel_and_wait_gives_up_on_a_task_that_loses_its_cancellation() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    try:
        started = time.monotonic()
        still_running = await cancel_and_wait([task], within_s=STOP_WAIT_S)

        assert time.monotonic() - started < STOP_WAIT_S + SLACK_S
        assert still_running == {task}
        waiting = asyncio.ensure_future(cancel_and_wait([task], within_s=10.0))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.wait({waiting}, timeout=SLACK_S)
        assert waiting.cancelled()  # the caller's cancellation, not swallowed
    finally:
        release.set()
        await task


async def test_off_goes_out_at_once_while_a_renewal_is_on_the_air(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.core.connection")
    pad = sim.track(OpenThermalPad(sim.address("heat-pad"), backend=sim.backend, clock=sim.clock))
    await pad.connect()
    await pad.heat(40.0)
    await sim.advance(5.0)  # renewals every second
    sim.world.inject("heat-pad", LinkLatency(latency=LATENCY_S, duration=2.0))
    caplog.clear()
    await sim.advance(1.0)  # the next renewal goes on the air; its answer takes real time
    writes = [r.getMessage() for r in caplog.records if "GATT write" in r.getMessage()]
    assert len(writes) == 1
    assert writes[0].endswith("(lease renewal)")
    assert sim.world.pad("heat-pad").state.mode == "heat"

    started = time.monotonic()
    async with asyncio.timeout(OFF_BOUND_S):
        await pad.off()
    took = time.monotonic() - started
    await sim.advance(30.0)

    assert took < OFF_BOUND_S
    assert sim.world.pad("heat-pad").state.mode == "off"
    assert pad.state.mode == "off"
    writes = [r.getMessage() for r in caplog.records if "GATT write" in r.getMessage()]
    assert [w.rsplit("(", 1)[1] for w in writes] == ["lease renewal)", "OFF)"]
