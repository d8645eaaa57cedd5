"""Shared set-up of the driver tests: a simulated world on a virtual clock, reached through bleak.

The ``sim`` fixture starts every simulated device of the catalog on one virtual radio with a
:class:`~drivers.core.clock.VirtualClock`, selects the simulated bleak backend, and disconnects
every driver made through it before the world stops. Other driver test modules import the fixture
and the helpers from here; the two tests at the bottom check the harness itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pytest

from drivers.core.backend import BleBackend
from drivers.core.clock import VirtualClock
from simulators import backend as sim_backend
from simulators.world import SimWorld

__all__ = ["FIND_TIMEOUT_S", "WAIT_S", "Sim", "sim", "wait_until"]

# Real seconds a test waits for something asynchronous (a reconnect, a notification).
WAIT_S = 3.0
# Real seconds drivers listen for a simulated device (every advertiser is heard at once).
FIND_TIMEOUT_S = 0.5


class _Driver(Protocol):
    async def disconnect(self) -> None: ...


_D = TypeVar("_D", bound=_Driver)


@dataclass
class Sim:
    """The simulated world, its clock, and the backend that reaches it."""

    clock: VirtualClock
    world: SimWorld
    backend: BleBackend
    drivers: list[_Driver] = field(default_factory=list)

    def address(self, key: str) -> str:
        """The address of simulated device ``key``."""
        return self.world.device(key).address

    def track(self, driver: _D) -> _D:
        """Disconnect ``driver`` when the test ends."""
        self.drivers.append(driver)
        return driver

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of therapy time pass."""
        await self.clock.advance(seconds)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait (real time) until ``predicate()`` holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.005)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """Every simulated device on a virtual clock, reachable through the simulated backend."""
    clock = VirtualClock()
    world = SimWorld(clock=clock)
    await world.start()
    sim_backend.use_link(world.link)
    backend = BleBackend(
        client=sim_backend.SimClient,
        scanner=sim_backend.SimScanner,
        name="simulated",
        find_timeout_s=FIND_TIMEOUT_S,
    )
    harness = Sim(clock, world, backend)
    try:
        yield harness
    finally:
        for driver in harness.drivers:
            await driver.disconnect()
        await sim_backend.reset()
        await world.stop()


async def test_harness_reaches_every_simulated_device(sim: Sim) -> None:
    from drivers.core import discovery

    heard = {result.address for result in await discovery.scan(sim.backend, timeout_s=0.1)}
    assert heard == {device.address for device in sim.world}


async def test_wait_until_fails_when_the_condition_never_holds() -> None:
    with pytest.raises(pytest.fail.Exception, match="not met"):
        await wait_until(lambda: False, timeout_s=0.02)
