"""An in-process world of simulated devices on one virtual radio.

::

    async with SimWorld(clock=VirtualClock()) as world:
        backend.use_link(world.link)            # simulators.backend: bleak reaches the world
        async with BleakClient(world.device("heat-pad").address, backend=SimClient) as c:
            ...
        await world.clock.advance(60)           # (a VirtualClock) one minute of therapy time

A world builds every device of the catalog (or the ``devices`` chosen) on one bumble
``LocalLink`` with one injected Clock (default: real time), starts them (advertising and one
firmware task each, cancelled on stop), finds them by key or address, lays the skin probe
under a pad, and applies fault scenarios.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from bumble.link import LocalLink

from drivers.core.clock import Clock, MonotonicClock
from simulators.catalog import (
    DeviceFamily,
    SimulatorError,
    UnknownDeviceError,
    device_keys,
    spec_for,
)
from simulators.devices.base import SimulatedDevice
from simulators.devices.heating_mat import SimHeatingMat
from simulators.devices.open_percussion import OpenMassageGun
from simulators.devices.open_thermal import OpenThermalPad
from simulators.devices.skin_probe import SimSkinProbe, SkinSource
from simulators.devices.state import DeviceState, StateCallback
from simulators.devices.theragun import SimTheragun
from simulators.faults import FaultSpec, Scenario, ScheduledFault, load_scenario
from simulators.radio import DelayedLink

__all__ = ["DEFAULT_PROBE_PAD", "SimWorld", "build_device"]

logger = logging.getLogger(__name__)

# Where the skin probe lies unless told otherwise: under the contrast pad (the pad whose
# skin-side temperature matters most, it goes both hot and cold).
DEFAULT_PROBE_PAD = "contrast-pad"

_FAMILIES: dict[DeviceFamily, type[SimulatedDevice]] = {
    DeviceFamily.OPEN_THERMAL: OpenThermalPad,
    DeviceFamily.OPEN_PERCUSSION: OpenMassageGun,
    DeviceFamily.THERAGUN: SimTheragun,
    DeviceFamily.HEATING_MAT: SimHeatingMat,
    DeviceFamily.SKIN_PROBE: SimSkinProbe,
}

_D = TypeVar("_D", bound=SimulatedDevice)


def build_device(key: str, *, clock: Clock, battery_pct: float = 100.0) -> SimulatedDevice:
    """A (not yet started) simulator for catalog entry ``key``."""
    spec = spec_for(key)
    return _FAMILIES[spec.family](spec, clock=clock, battery_pct=battery_pct)


class SimWorld:
    """Simulated devices on one virtual radio with one clock."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        devices: Iterable[str] | None = None,
        link: LocalLink | None = None,
        latency_s: float = 0.0,
        scenario: Scenario | str | None = None,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        if link is not None and latency_s:
            raise SimulatorError("Give either an existing link or a latency, not both.")
        self.link: LocalLink = link or DelayedLink(latency_s)
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        keys = list(device_keys() if devices is None else devices)
        for key in keys:
            spec_for(key)  # UnknownDeviceError names the valid keys
        if len(set(keys)) != len(keys):
            raise SimulatorError("Each device can be in a world only once.")
        batteries = {s.key: s.battery for s in self.scenario.device} if self.scenario else {}
        self._devices: dict[str, SimulatedDevice] = {}
        for key in keys:
            battery = batteries.get(key)
            self._devices[key] = build_device(
                key, clock=self.clock, battery_pct=100.0 if battery is None else battery
            )
        self._started = False
        self._place_default_probe()

    # --- looking devices up ----------------------------------------------------------------

    def __iter__(self) -> Iterator[SimulatedDevice]:
        return iter(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, key: object) -> bool:
        return key in self._devices

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the devices in this world, in catalog order."""
        return tuple(self._devices)

    def device(self, key_or_address: str) -> SimulatedDevice:
        """The device with this key or address."""
        if key_or_address in self._devices:
            return self._devices[key_or_address]
        for device in self._devices.values():
            if device.address.upper() == key_or_address.upper():
                return device
        raise UnknownDeviceError(
            f"This world has no device {key_or_address!r}; it has: {', '.join(self._devices)}."
        )

    def _typed(self, key: str, kind: type[_D]) -> _D:
        device = self.device(key)
        if not isinstance(device, kind):
            raise SimulatorError(f"{key} is not a {kind.__name__}.")
        return device

    def pad(self, key: str = "contrast-pad") -> OpenThermalPad:
        """An open-profile thermal pad."""
        return self._typed(key, OpenThermalPad)

    def gun(self, key: str = "massage-gun") -> OpenMassageGun:
        """The open-profile massage gun."""
        return self._typed(key, OpenMassageGun)

    def theragun(self, key: str = "theragun") -> SimTheragun:
        """The Theragun."""
        return self._typed(key, SimTheragun)

    def mat(self, key: str = "heating-mat") -> SimHeatingMat:
        """The heating mat."""
        return self._typed(key, SimHeatingMat)

    def probe(self, key: str = "skin-probe") -> SimSkinProbe:
        """The skin probe."""
        return self._typed(key, SimSkinProbe)

    def states(self) -> list[DeviceState]:
        """A snapshot of every device now."""
        return [device.state for device in self._devices.values()]

    # --- probe placement, faults, events -----------------------------------------------------

    def _place_default_probe(self) -> None:
        probes = [d for d in self._devices.values() if isinstance(d, SimSkinProbe)]
        pads = [d for d in self._devices.values() if isinstance(d, OpenThermalPad | SimHeatingMat)]
        if not probes or not pads:
            return
        preferred = [p for p in pads if p.key == DEFAULT_PROBE_PAD]
        for probe in probes:
            probe.place_under((preferred or pads)[0])

    def place_probe(self, pad_key: str | None, probe_key: str = "skin-probe") -> None:
        """Lay the probe under the pad ``pad_key`` (None: on bare skin)."""
        pad: SkinSource | None = None
        if pad_key is not None:
            device = self.device(pad_key)
            if not isinstance(device, OpenThermalPad | SimHeatingMat):
                raise SimulatorError(f"{pad_key} is not a pad the probe can lie under.")
            pad = device
        self.probe(probe_key).place_under(pad)

    def inject(self, key: str, fault: FaultSpec) -> ScheduledFault:
        """Give device ``key`` a fault (its ``at`` counts from now)."""
        return self.device(key).inject(fault)

    def apply_scenario(self, scenario: Scenario) -> list[ScheduledFault]:
        """Apply a scenario's device set-up and faults; fault times count from now."""
        for setup in scenario.device:
            if setup.key not in self._devices:
                raise UnknownDeviceError(f"The scenario sets up {setup.key}, not in this world.")
            if setup.placed_under is not None:
                self.place_probe(setup.placed_under, setup.key)
            if setup.battery is not None:
                self._devices[setup.key].set_battery(setup.battery)
        scheduled = []
        for fault in scenario.fault:
            if fault.device is None or fault.device not in self._devices:
                raise UnknownDeviceError(
                    f"The scenario has a fault for {fault.device}, which is not in this world."
                )
            scheduled.append(self._devices[fault.device].inject(fault))
        logger.info("scenario %r applied: %d fault(s)", scenario.name, len(scheduled))
        return scheduled

    def register_callback(self, callback: StateCallback) -> Callable[[], None]:
        """Watch every device's state; returns the function that unregisters."""
        unregisters = [device.register_callback(callback) for device in self._devices.values()]

        def unregister() -> None:
            for undo in unregisters:
                undo()

        return unregister

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Put every device on the air and apply the world's scenario."""
        if self._started:
            return
        self._started = True
        try:
            await asyncio.gather(*(device.start(self.link) for device in self._devices.values()))
            if self.scenario is not None:
                self.apply_scenario(self.scenario)
        except BaseException:
            await self.stop()
            raise
        logger.info("simulated world started: %s", ", ".join(self._devices))

    async def stop(self) -> None:
        """Take every device off the air and cancel their tasks (idempotent)."""
        self._started = False
        await asyncio.gather(
            *(device.stop() for device in self._devices.values()), return_exceptions=True
        )

    async def __aenter__(self) -> SimWorld:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
