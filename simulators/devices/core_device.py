"""A simulated device whose firmware is one battery-powered core object.

The open-profile pads and guns and the Theragun keep everything their firmware does in a core
(:class:`~.thermal_core.ThermalCore`, :class:`~.percussion_core.GunCore`): stepping it, its own
deadlines, link loss and the battery. :class:`CoreDevice` implements those hooks of
:class:`~.base.SimulatedDevice` once by handing them to the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from drivers.core.clock import Clock
from simulators.catalog import DeviceSpec
from simulators.devices.base import SimulatedDevice
from simulators.faults import FaultBook

__all__ = ["CoreDevice", "PoweredCore"]


class PoweredCore(Protocol):
    """A firmware core with its own battery, stepped by clock time."""

    battery_pct: float

    def advance(self, now: float) -> None:
        """Bring the core up to ``now``."""
        ...

    def next_deadline(self) -> float | None:
        """When the core changes by itself."""
        ...

    def link_lost(self, now: float) -> None:
        """The BLE link dropped."""
        ...

    def drain(self, now: float) -> None:
        """The battery dies."""
        ...


CoreT = TypeVar("CoreT", bound=PoweredCore)


class CoreDevice(SimulatedDevice, Generic[CoreT]):
    """A simulated device driven by ``core``, built on the device's own fault book."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float,
        core: Callable[[FaultBook], CoreT],
    ) -> None:
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.core = core(self.faults)

    def _advance(self, now: float) -> None:
        self.core.advance(now)

    def _next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def _link_lost(self, now: float) -> None:
        self.core.link_lost(now)

    def _set_battery(self, percent: float) -> None:
        self.core.battery_pct = percent

    def _battery_pct(self) -> float:
        return self.core.battery_pct

    def _drain(self, now: float) -> None:
        self.core.drain(now)
