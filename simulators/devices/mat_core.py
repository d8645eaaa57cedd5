"""The firmware of a simulated BLE heating mat, as pure state transitions.

A level-only mat (docs/protocols.md): level 0 = off, 1..7 heat the mat towards 36..42
degC; a timer of 1..12 hours switches it off by itself. It has no lease, no flags and no
temperature report: it is host-timed, and it keeps heating when the phone goes away (that is
why the host sets its timer as a backstop). It is mains powered: the battery stays full unless
a fault cuts the power.
"""

from __future__ import annotations

import math

from drivers.codecs import heating_mat as hm
from simulators.devices.firmware import SteppedFirmware
from simulators.faults import FaultBook
from simulators.physics import (
    BatteryParams,
    DriveMode,
    ThermalDrive,
    ThermalParams,
    ThermalState,
    resting_thermal_state,
    step_thermal,
)

__all__ = ["MAINS_POWER", "SECONDS_PER_HOUR", "MatCore"]

SECONDS_PER_HOUR = 3600.0
# A mains-powered mat does not drain a battery.
MAINS_POWER = BatteryParams(idle=0.0, heat=0.0, cool=0.0, gun=0.0)


class MatCore(SteppedFirmware):
    """Level, timer and the mat's thermal physics."""

    def __init__(
        self, *, faults: FaultBook, now: float, params: ThermalParams | None = None
    ) -> None:
        super().__init__(faults=faults, now=now)
        self.params = params or ThermalParams()
        self.level = 0
        self.timer_hours = 0
        self.timer_deadline: float | None = None
        self.thermal: ThermalState = resting_thermal_state(self.params)
        self.powered = True
        self._stuck = False

    def next_deadline(self) -> float | None:
        """When the timer switches the mat off."""
        return self.timer_deadline

    def physical_drive(self) -> ThermalDrive:
        """What the heating wire really does."""
        if not self.powered:
            return ThermalDrive()
        if self._stuck:
            return ThermalDrive(DriveMode.HEAT, self.params.heater_runaway_c)
        celsius = hm.LEVEL_CELSIUS.get(self.level)
        if celsius is None:
            return ThermalDrive()
        return ThermalDrive(DriveMode.HEAT, float(celsius))

    def _step(self, dt: float) -> None:
        self.thermal = step_thermal(self.thermal, self.physical_drive(), dt, self.params)

    def _check(self, now: float) -> None:
        if self.faults.stuck_since(now) is None:
            self._stuck = False
        elif self.level > 0 and self.powered:
            self._stuck = True
        if self.timer_deadline is not None and now >= self.timer_deadline:
            self.level = 0
            self.timer_hours = 0
            self.timer_deadline = None

    def set_level(self, level: int, now: float) -> None:
        """Level 0..7 (0 = off)."""
        self.advance(now)
        self.level = level
        self._check(now)

    def set_timer(self, hours: int, now: float) -> None:
        """Timer 1..12 h from now, 0 = timer off."""
        self.advance(now)
        self.timer_hours = hours
        self.timer_deadline = now + hours * SECONDS_PER_HOUR if hours else None

    def timer_report_hours(self, now: float) -> int:
        """The timer as reported: whole hours left, rounded up (0 = no timer)."""
        if self.timer_deadline is None:
            return 0
        return max(0, min(hm.MAX_TIMER_HOURS, math.ceil((self.timer_deadline - now) / 3600.0)))

    def power_cut(self, now: float) -> None:
        """The mains (or the fault's battery) fails: everything stops."""
        self.advance(now)
        self.powered = False
        self.level = 0
        self.timer_hours = 0
        self.timer_deadline = None
        self._stuck = False
