"""Open-profile thermal pads (contrast, heat, cold): the GATT binding of :class:`ThermalCore`.

Thermal service (docs/gatt-profile.md): Control Point (write with response), State (read,
notify on every change of mode, setpoint or flags), Plate Temperature (read, notify every
clock second), Capabilities (read). Refused commands are answered with the profile's ATT
application errors; the frames are built and parsed by :mod:`drivers.codecs.open_profile`.
"""

from __future__ import annotations

from dataclasses import replace

from drivers.codecs import open_profile as op
from drivers.core.clock import Clock
from simulators.catalog import DeviceFamily, DeviceSpec
from simulators.devices.firmware import flag_names
from simulators.devices.open_device import OpenService, SimOpenDevice
from simulators.devices.state import DeviceState
from simulators.devices.thermal_core import ThermalCore
from simulators.physics import ThermalParams, ThermalState

__all__ = ["OpenThermalPad"]

THERMAL_SERVICE = OpenService(
    name="thermal",
    service_uuid=op.THERMAL_SERVICE_UUID,
    control_point_uuid=op.THERMAL_CONTROL_POINT_UUID,
    state_uuid=op.THERMAL_STATE_UUID,
    telemetry_uuid=op.PLATE_TEMPERATURE_UUID,
    telemetry_label="plate temperature",
    capabilities_uuid=op.THERMAL_CAPABILITIES_UUID,
)


class OpenThermalPad(SimOpenDevice[ThermalCore]):
    """A heat, cold or contrast pad speaking the relieve open profile."""

    family = DeviceFamily.OPEN_THERMAL
    described_as = "an open-profile thermal pad"

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        params: ThermalParams | None = None,
    ) -> None:
        super().__init__(
            spec,
            clock=clock,
            battery_pct=battery_pct,
            profile=THERMAL_SERVICE,
            core=lambda faults: ThermalCore(
                heat_range_c=spec.heat_range_c,
                cold_range_c=spec.cold_range_c,
                faults=faults,
                now=clock.now(),
                params=params,
                battery_pct=battery_pct,
            ),
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

    # --- firmware hooks ------------------------------------------------------------------

    def _telemetry(self, now: float) -> bytes:
        return bytes(self.core.plate_frame(now))

    def _busy(self) -> bool:
        return self.core.physical_drive().mode.value != "off"

    async def _periodic(self, now: float) -> None:
        await self._notify(self._telemetry_char, self._telemetry(now))

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        core = self.core
        drive = core.physical_drive()
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
            lease_remaining_s=core.lease_remaining_s(now),
            flags=flag_names(core.flags),
        )
