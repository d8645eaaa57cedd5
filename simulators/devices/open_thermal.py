"""Open-profile thermal pads (contrast, heat, cold): the GATT binding of :class:`ThermalCore`.

Thermal service (docs/gatt-profile.md): Control Point (write with response), State (read,
notify on every change of mode, setpoint or flags), Plate Temperature (read, notify every
clock second), Capabilities (read). Refused commands are answered with the profile's ATT
application errors; the frames are built and parsed by :mod:`drivers.codecs.open_profile`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bumble import gatt

from drivers.clock import Clock
from drivers.codecs import open_profile as op
from simulators.catalog import DeviceFamily, DeviceSpec, SimulatorError
from simulators.devices.base import SimulatedDevice, lease_floor_for
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.state import DeviceState
from simulators.devices.thermal_core import ThermalCore, flag_names
from simulators.physics import ThermalParams, ThermalState

__all__ = ["OpenThermalPad"]

logger = logging.getLogger(__name__)


class OpenThermalPad(SimulatedDevice):
    """A heat, cold or contrast pad speaking the relieve open profile."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        params: ThermalParams | None = None,
    ) -> None:
        if spec.family is not DeviceFamily.OPEN_THERMAL:
            raise SimulatorError(f"{spec.key} is not an open-profile thermal pad.")
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.core = ThermalCore(
            heat_range_c=spec.heat_range_c,
            cold_range_c=spec.cold_range_c,
            faults=self.faults,
            now=clock.now(),
            params=params,
            battery_pct=battery_pct,
        )
        self.core.lease_floor_s = lease_floor_for(clock)
        self._sent_key: tuple[int, int | None, int] | None = None
        self._state_char = SimCharacteristic(
            op.THERMAL_STATE_UUID,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} thermal state",
            read=self._reader(lambda now: bytes(self.core.state_frame(now))),
        )
        self._plate_char = SimCharacteristic(
            op.PLATE_TEMPERATURE_UUID,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} plate temperature",
            read=self._reader(lambda now: bytes(self.core.plate_frame(now))),
        )

    # --- test-side API -------------------------------------------------------------------

    @property
    def thermal(self) -> ThermalState:
        """True plate and skin-side temperatures now."""
        self._advance(self.clock.now())
        return self.core.thermal

    def skin_c(self) -> float:
        """The true skin-side temperature now (what a probe under this pad reads)."""
        return self.thermal.skin_c

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        control = SimCharacteristic(
            op.THERMAL_CONTROL_POINT_UUID,
            Properties.WRITE,
            label=f"{self.key} thermal control point",
            write=self._writer(self._on_command),
        )
        capabilities = SimCharacteristic(
            op.THERMAL_CAPABILITIES_UUID,
            Properties.READ,
            label=f"{self.key} thermal capabilities",
            read=lambda: bytes(self.core.capabilities),
        )
        characteristics = [control, self._state_char, self._plate_char, capabilities]
        return [service(op.THERMAL_SERVICE_UUID, characteristics)]

    def _service_uuids(self) -> list[str]:
        return [op.THERMAL_SERVICE_UUID]

    def _on_command(self, data: bytes, now: float) -> None:
        try:
            self.core.command(data, now)
        except op.CommandRejectedError as exc:
            raise AttRefusal(int(exc.att_error), str(exc)) from exc

    # --- firmware hooks ------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        self.core.advance(now)

    def _busy(self) -> bool:
        return self.core.physical_drive().mode.value != "off"

    def _next_deadline(self) -> float | None:
        return self.core.next_deadline()

    async def _periodic(self, now: float) -> None:
        await self._notify(self._plate_char, bytes(self.core.plate_frame(now)))

    async def _notify_changes(self, now: float) -> None:
        key = self.core.change_key()
        if key != self._sent_key:
            self._sent_key = key
            await self._notify(self._state_char, bytes(self.core.state_frame(now)))

    def _link_lost(self, now: float) -> None:
        self.core.link_lost(now)

    def _set_battery(self, percent: float) -> None:
        self.core.battery_pct = percent

    def _battery_pct(self) -> float:
        return self.core.battery_pct

    def _drain(self, now: float) -> None:
        self.core.drain(now)

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        core = self.core
        drive = core.physical_drive()
        lease = core.lease_remaining_ms(now)
        return replace(
            base,
            output_on=core.mode != op.ThermalMode.OFF,
            energised=drive.mode.value != "off",
            mode=core.mode.name.lower(),
            setpoint_c=None
            if core.setpoint_centi is None
            else op.centi_to_celsius(core.setpoint_centi),
            plate_c=core.thermal.plate_c,
            skin_c=core.thermal.skin_c,
            sensor_c=core.sensor_c(now),
            lease_remaining_s=lease / 1000.0 if core.lease_deadline is not None else None,
            flags=flag_names(core.flags),
        )
