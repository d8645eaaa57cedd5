"""The firmware of a simulated open-profile thermal pad, as pure state transitions.

:class:`ThermalCore` is what an ESP32 in a heat/cold pad would run: it decodes control-point
commands (with the shared codec), keeps mode, setpoint, lease and latched flags, steps the
plate physics by elapsed clock time, and protects itself (lease expiry, link loss, sensor
fault, over-temperature, low battery all turn the output OFF). No bumble, no asyncio: the
GATT binding in :mod:`simulators.devices.open_thermal` calls it with the current clock time.
"""

from __future__ import annotations

import math

from drivers.codecs import open_profile as op
from simulators.devices.firmware import LOW_BATTERY_CUTOFF_PCT, OpenFirmware, flag_names
from simulators.faults import FaultBook, FaultKind, StuckHeater
from simulators.physics import (
    BatteryParams,
    DriveMode,
    ThermalDrive,
    ThermalParams,
    ThermalState,
    drain_battery,
    resting_thermal_state,
    step_thermal,
    thermal_drain_rate,
)

__all__ = ["LOW_BATTERY_CUTOFF_PCT", "OVER_TEMPERATURE_MARGIN_C", "ThermalCore", "flag_names"]

# The firmware trips OVER_TEMPERATURE when its sensor reads this far beyond the hardware
# setpoint range (a plate never overshoots 3 degC under its own control).
OVER_TEMPERATURE_MARGIN_C = 3.0
# Temperatures a plate reaches with its output off, on a body or in a room: never a fault. A
# cold-only pad (range 5-25 degC) resting on skin at 33 degC is normal, not over-temperature.
RESTING_SPAN_C = (15.0, 40.0)
# Sensor readings outside this span are implausible for a pad on a body: SENSOR_FAULT.
SENSOR_PLAUSIBLE_C = (-10.0, 80.0)

_MODE_TO_DRIVE = {op.ThermalMode.HEAT: DriveMode.HEAT, op.ThermalMode.COLD: DriveMode.COLD}


class ThermalCore(OpenFirmware[op.ThermalStart]):
    """One thermal output with its lease, flags, physics and battery."""

    def __init__(
        self,
        *,
        heat_range_c: tuple[float, float] | None,
        cold_range_c: tuple[float, float] | None,
        faults: FaultBook,
        now: float,
        params: ThermalParams | None = None,
        battery_params: BatteryParams | None = None,
        battery_pct: float = 100.0,
        max_lease_ms: int = op.LEASE_MAX_MS,
    ) -> None:
        super().__init__(
            faults=faults, now=now, battery_params=battery_params, battery_pct=battery_pct
        )
        self.capabilities = op.ThermalCapabilities.from_celsius(
            heat_range_c, cold_range_c, max_lease_ms
        )
        self.heat_range_c = heat_range_c
        self.cold_range_c = cold_range_c
        self.params = params or ThermalParams()
        self.mode = op.ThermalMode.OFF
        self.setpoint_centi: int | None = None
        self.thermal: ThermalState = resting_thermal_state(self.params)
        # Direction a welded output keeps driving in (set while a stuck fault holds it).
        self._stuck: DriveMode | None = None

    # --- time ----------------------------------------------------------------------------

    def _step(self, dt: float) -> None:
        drive = self.physical_drive()
        rate = thermal_drain_rate(self.thermal, drive, self.params, self.battery_params)
        self.battery_pct = drain_battery(self.battery_pct, rate, dt)
        self.thermal = step_thermal(self.thermal, drive, dt, self.params)

    def next_deadline(self) -> float | None:
        """When something happens by itself (lease expiry), for the device's timer."""
        return self.lease_deadline

    def physical_drive(self) -> ThermalDrive:
        """What the output really does right now."""
        if self.battery_pct <= 0.0:
            return ThermalDrive()
        if self._stuck is DriveMode.HEAT:
            return ThermalDrive(DriveMode.HEAT, self.params.heater_runaway_c)
        if self._stuck is DriveMode.COLD:
            return ThermalDrive(DriveMode.COLD, self.params.cooler_runaway_c)
        drive_mode = _MODE_TO_DRIVE.get(self.mode)
        if drive_mode is None or self.setpoint_centi is None:
            return ThermalDrive()
        return ThermalDrive(drive_mode, op.centi_to_celsius(self.setpoint_centi))

    # --- what the sensor and the flags say -------------------------------------------------

    def sensor_c(self, now: float) -> float:
        """The plate temperature the device's own sensor reads (NaN under a sensor fault)."""
        return self.faults.sensor_reading(self.thermal.plate_c, now)

    def _limits(self) -> tuple[float, float]:
        spans = [s for s in (self.heat_range_c, self.cold_range_c, RESTING_SPAN_C) if s]
        low = min(s[0] for s in spans) - OVER_TEMPERATURE_MARGIN_C
        high = max(s[1] for s in spans) + OVER_TEMPERATURE_MARGIN_C
        return low, high

    def _conditions(self, now: float) -> op.StatusFlags:
        """The fault conditions present at ``now`` (what CLEAR_FLAGS cannot clear)."""
        flags = op.NO_FLAGS
        reading = self.sensor_c(now)
        low, high = self._limits()
        if math.isnan(reading) or not SENSOR_PLAUSIBLE_C[0] <= reading <= SENSOR_PLAUSIBLE_C[1]:
            flags |= op.StatusFlags.SENSOR_FAULT
        elif not low <= reading <= high:
            flags |= op.StatusFlags.OVER_TEMPERATURE
        if self._stuck is not None and self.mode == op.ThermalMode.OFF and not self._silent(now):
            flags |= op.StatusFlags.STUCK_OUTPUT
        if self.battery_pct < LOW_BATTERY_CUTOFF_PCT:
            flags |= op.StatusFlags.SUPPLY_FAULT
        return flags

    def _silent(self, now: float) -> bool:
        return any(
            isinstance(f.spec, StuckHeater) and f.spec.silent
            for f in self.faults.active(FaultKind.STUCK_HEATER, now)
        )

    def _check(self, now: float) -> None:
        """Self-protection at ``now``: expire the lease, latch faults, follow the stuck fault."""
        if self.faults.stuck_since(now) is None:
            self._stuck = None
        elif self._stuck is None and self.mode != op.ThermalMode.OFF:
            self._stuck = _MODE_TO_DRIVE.get(self.mode)
        self._expire_lease(now)
        faults = self._conditions(now)
        if faults:
            self.flags |= faults
            if self.mode != op.ThermalMode.OFF:
                self._output_off(op.NO_FLAGS)

    # --- commands ------------------------------------------------------------------------

    def _decode(self, data: bytes) -> op.ThermalCommand:
        return op.decode_thermal_command(data)

    def start(self, command: op.ThermalStart, now: float) -> None:
        """START: switch on (or change mode/setpoint) with a fresh lease."""
        refusal = self.capabilities.refusal(command)
        if refusal == op.AttError.MODE_NOT_SUPPORTED:
            doing = "heat" if command.mode == op.ThermalMode.HEAT else "cool"
            raise op.CommandRejectedError(refusal, "mode", f"this device cannot {doing}")
        if refusal is not None:
            raise op.CommandRejectedError(refusal, "setpoint", "outside the device's range")
        if self.flags & op.FAULT_FLAGS:
            raise op.CommandRejectedError(
                op.AttError.FAULT_ACTIVE, "flags", f"faults latched: {flag_names(self.flags)}"
            )
        self.flags &= ~op.EVENT_FLAGS
        self.mode = command.mode
        self.setpoint_centi = command.setpoint_centi
        self._grant(command.lease_ms, self.capabilities.max_lease_ms, now)

    def renew(self, lease_ms: int, now: float) -> None:
        """RENEW: extend the lease of a running output."""
        if self.mode == op.ThermalMode.OFF:
            raise op.CommandRejectedError(
                op.AttError.NOT_PERMITTED_IN_STATE, "mode", "the output is OFF"
            )
        self._grant(lease_ms, self.capabilities.max_lease_ms, now)

    def link_lost(self, now: float) -> None:
        """The BLE link dropped: a running output goes OFF at once and LINK_LOST latches."""
        self.advance(now)
        if self.mode != op.ThermalMode.OFF:
            self._output_off(op.StatusFlags.LINK_LOST)
        self._check(now)

    def drain(self, now: float) -> None:
        """The battery dies: no power for anything."""
        self.advance(now)
        self.battery_pct = 0.0
        self._stuck = None
        self._check(now)

    def _output_off(self, event: op.StatusFlags) -> None:
        self.mode = op.ThermalMode.OFF
        self.setpoint_centi = None
        self.lease_deadline = None
        self.flags |= event

    # --- frames --------------------------------------------------------------------------

    def state_frame(self, now: float) -> op.ThermalState:
        """The Thermal State characteristic value."""
        return op.ThermalState(
            mode=self.mode,
            setpoint_centi=self.setpoint_centi,
            lease_remaining_ms=self.lease_remaining_ms(now),
            flags=self.flags,
        )

    def plate_frame(self, now: float) -> op.PlateTemperature:
        """The Plate Temperature characteristic value (not known under a sensor fault)."""
        reading = self.sensor_c(now)
        if math.isnan(reading):
            return op.PlateTemperature(None)
        return op.PlateTemperature.from_celsius(max(-300.0, min(300.0, reading)))

    def change_key(self) -> tuple[int, int | None, int]:
        """What the State notification is sent on a change of (mode, setpoint, flags)."""
        return int(self.mode), self.setpoint_centi, int(self.flags)
