"""What each simulated device family provides to the shared device life in :mod:`.base`.

:class:`FamilyHooks` is the interface between :class:`~simulators.devices.base.SimulatedDevice`
(radio, GATT server, firmware task, faults) and one family's firmware: its identity check,
its GATT services, how its core steps and when it changes by itself, what it notifies, and
what it does on link loss and with its battery. The hooks are called with clock time.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from bumble import gatt

from simulators.catalog import DeviceFamily
from simulators.devices.state import DeviceState

__all__ = ["FamilyHooks"]


class FamilyHooks(abc.ABC):
    """The hooks a device family implements (all but ``_busy`` are required)."""

    # The catalog family the class simulates, and how an error message names such a device
    # ("a heating mat"): a spec of another family is refused when the device is built.
    family: ClassVar[DeviceFamily]
    described_as: ClassVar[str]

    @abc.abstractmethod
    def _build_services(self) -> list[gatt.Service]:
        """The family's GATT services (Battery and Device Information are added here)."""

    @abc.abstractmethod
    def _service_uuids(self) -> list[str]:
        """The service UUIDs to advertise."""

    def _busy(self) -> bool:
        """Whether the output runs (ticks continue with nobody connected); default: no."""
        return False

    @abc.abstractmethod
    def _advance(self, now: float) -> None:
        """Step the firmware core to ``now``."""

    @abc.abstractmethod
    def _next_deadline(self) -> float | None:
        """When the core next changes by itself (lease expiry, run cap, timer)."""

    @abc.abstractmethod
    async def _periodic(self, now: float) -> None:
        """Telemetry sent every TICK_S."""

    @abc.abstractmethod
    async def _notify_changes(self, now: float) -> None:
        """Notifications sent when the state changed since the last call."""

    @abc.abstractmethod
    def _link_lost(self, now: float) -> None:
        """The last central went away."""

    @abc.abstractmethod
    def _battery_pct(self) -> float:
        """The battery charge, percent."""

    @abc.abstractmethod
    def _set_battery(self, percent: float) -> None:
        """Set the battery charge."""

    @abc.abstractmethod
    def _drain(self, now: float) -> None:
        """Empty the battery: every output stops."""

    @abc.abstractmethod
    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        """Fill in the family's fields of a snapshot (use ``dataclasses.replace``)."""
