"""The simulation seam: which radio the drivers use, chosen once at start-up.

The only controller module that reaches into :mod:`simulators` (docs/architecture.md: the controller
imports the simulators only at start-up, to select the simulated backend). Everything else
gets a :class:`~drivers.core.backend.BleBackend` and stays plain bleak.

* ``--simulate`` -> an in-process :class:`~simulators.world.SimWorld` of every simulated
  device (on the injected clock) and the simulated backend joined to its link;
* ``--simulator SPEC`` -> the simulated backend over a transport to a simulator server
  (``unix:/path``, ``tcp-client:host:port``; see ``relieve sim serve``);
* neither -> the operating system's Bluetooth stack.

``simulators`` (and bumble with it) is imported only when a simulation is asked for, so
``relieve --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.core.backend import OS_BACKEND, BleBackend
from drivers.core.clock import Clock, MonotonicClock
from profiles.errors import RelieveError

if TYPE_CHECKING:
    from simulators.world import SimWorld

__all__ = ["SIMULATED_FIND_TIMEOUT_S", "Radio", "SimulationError", "open_radio", "radio_for"]

logger = logging.getLogger(__name__)

# Real seconds to listen for a simulated device before calling it absent: the simulated radio
# hears every advertiser as soon as a scan starts, so this only bounds the wait for one that
# is not there.
SIMULATED_FIND_TIMEOUT_S = 2.0


class SimulationError(RelieveError):
    """The simulated radio asked for cannot be used."""


@dataclass(frozen=True)
class Radio:
    """The backend to hand to discovery and drivers, and the simulated world behind it."""

    backend: BleBackend
    description: str
    world: SimWorld | None = None

    @property
    def simulated(self) -> bool:
        """True when the devices are simulated."""
        return self.backend.simulated


@asynccontextmanager
async def open_radio(
    *,
    simulate: bool = False,
    simulator: str | None = None,
    clock: Clock | None = None,
    devices: Sequence[str] | None = None,
) -> AsyncIterator[Radio]:
    """The radio for this run; a simulated world lives as long as the ``async with``.

    ``devices``: the simulated device types (catalog keys) of an in-process world; all of
    them when None.
    """
    if simulate and simulator:
        raise SimulationError("Use either --simulate or --simulator SPEC, not both.")
    if not simulate and not simulator:
        yield Radio(OS_BACKEND, "the Bluetooth adapter")
        return

    from simulators import backend as sim

    simulated = BleBackend(
        client=sim.SimClient,
        scanner=sim.SimScanner,
        name="simulated",
        find_timeout_s=SIMULATED_FIND_TIMEOUT_S,
    )
    if simulator:
        try:
            sim.use_transport(simulator)
        except ValueError as exc:
            raise SimulationError(str(exc)) from exc
        try:
            yield Radio(simulated, f"the simulator at {simulator}")
        finally:
            await sim.reset()
        return

    from simulators.catalog import SimulatorError
    from simulators.world import SimWorld

    try:
        world = SimWorld(clock=clock or MonotonicClock(), devices=devices)
    except SimulatorError as exc:  # an unknown device key: the message names the valid ones
        raise SimulationError(str(exc)) from exc
    async with world:
        sim.use_link(world.link)
        logger.info("simulated devices: %s", ", ".join(world.keys))
        try:
            yield Radio(simulated, "the simulated devices", world)
        finally:
            await sim.reset()


def radio_for(
    args: argparse.Namespace,
    *,
    clock: Clock | None = None,
    devices: Sequence[str] | None = None,
) -> AbstractAsyncContextManager[Radio]:
    """:func:`open_radio` as ``--simulate`` / ``--simulator SPEC`` in ``args`` ask."""
    return open_radio(
        simulate=bool(getattr(args, "simulate", False)),
        simulator=getattr(args, "simulator", None),
        clock=clock,
        devices=devices,
    )
