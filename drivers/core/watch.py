"""Pure checks on what a device reports: status flags, stuck outputs, telemetry stalls.

Fault names are :class:`drivers.core.faults.Fault`; what each means is the table there.

Nothing here does I/O or reads a clock; the device classes feed in what they receive and the
current clock time, and put the answers into their state's ``faults``. The session's last
check after its final OFF (:class:`PlateAfterOff`, :class:`MotorAfterStop`) is fed the same way
by the session runner.
"""

from __future__ import annotations

from typing import Final, Literal

from drivers.codecs import open_profile as op
from drivers.core.faults import Fault, unknown_flag_name

__all__ = [
    "BEYOND_SETPOINT_C",
    "COASTING_SHARE",
    "COLD_ONLY_BELOW_C",
    "EVENT_NAMES",
    "FLAG_FAULTS",
    "HEAT_ONLY_ABOVE_C",
    "LEASE_EXPIRED",
    "MOTOR_WATCH_S",
    "NOT_ACKNOWLEDGED",
    "PLATE_WATCH_S",
    "SPIN_DOWN_S",
    "STUCK_MOVE_C",
    "STUCK_OUTPUT",
    "TELEMETRY_STALL_S",
    "AfterOff",
    "MotorAfterStop",
    "PlateAfterOff",
    "StuckOutputDetector",
    "flag_fault_names",
    "plate_beyond_setpoint",
    "stalled",
    "status_flag_names",
]

# How far (degC) a plate must move the wrong way after OFF before we call the output stuck:
# well above sensor noise (0.01 degC steps) and the settling of a plate that just stopped.
STUCK_MOVE_C = 1.0
# Nothing but the heater warms a pad on the body above body temperature (37 degC): a plate
# that rises after heat-OFF and is above this is still being heated.
HEAT_ONLY_ABOVE_C = 37.0
# Nothing but the cooler chills a pad below any indoor room temperature: a plate that falls
# after cold-OFF and is below this is still being cooled.
COLD_ONLY_BELOW_C = 15.0
# Clock seconds without telemetry after which a device counts as stalled: five telemetry
# intervals (the open profile notifies every second), the S2 watchdog bound of 5 s.
TELEMETRY_STALL_S = 5.0 * op.TELEMETRY_INTERVAL_S

# The fault names the drivers share with the session runner (every name: Fault).
STUCK_OUTPUT: Final = Fault.STUCK_OUTPUT
LEASE_EXPIRED: Final = Fault.LEASE_EXPIRED
NOT_ACKNOWLEDGED: Final = Fault.NOT_ACKNOWLEDGED

FLAG_FAULTS: Final = {
    op.StatusFlags.OVER_TEMPERATURE: Fault.OVER_TEMPERATURE,
    op.StatusFlags.SENSOR_FAULT: Fault.SENSOR_FAULT,
    op.StatusFlags.STUCK_OUTPUT: Fault.STUCK_OUTPUT,
    op.StatusFlags.SUPPLY_FAULT: Fault.SUPPLY_FAULT,
    op.StatusFlags.OVERLOAD: Fault.OVERLOAD,
    op.StatusFlags.LEASE_EXPIRED: Fault.LEASE_EXPIRED,
    op.StatusFlags.LINK_LOST: Fault.LINK_LOST,
    op.StatusFlags.RUN_CAP_REACHED: Fault.RUN_CAP_REACHED,
    op.StatusFlags.LOCAL_STOP: Fault.LOCAL_STOP,
}
"""The fault name of each status flag of the open profile."""
_FLAG_BITS: Final = 16


def status_flag_names(flags: op.StatusFlags) -> tuple[str, ...]:
    """The names of the status flags set in ``flags``, lowest bit first.

    Known flags by :data:`FLAG_FAULTS`; unknown bits become ``fault-bit<n>`` (low byte) or
    ``event-bit<n>`` (high byte), so a newer device's fault is never silently dropped.
    """
    names: list[str] = []
    for bit in range(_FLAG_BITS):
        value = 1 << bit
        if not int(flags) & value:
            continue
        known = FLAG_FAULTS.get(op.StatusFlags(value))
        fault = bool(value & int(op.FAULT_FLAGS))
        names.append(unknown_flag_name(bit, fault=fault) if known is None else known)
    return tuple(names)


def flag_fault_names(flags: op.StatusFlags) -> frozenset[str]:
    """The open profile's status flags as fault names (``lease-expired``, ``stuck-output``).

    Unknown bits become ``fault-bit<n>`` (low byte) or ``event-bit<n>`` (high byte), so a newer
    device's fault is never silently dropped.
    """
    return frozenset(status_flag_names(flags))


def stalled(
    last_telemetry_at: float | None, now: float, limit_s: float = TELEMETRY_STALL_S
) -> bool:
    """Whether telemetry last seen at ``last_telemetry_at`` is older than ``limit_s``."""
    return last_telemetry_at is not None and now - last_telemetry_at > limit_s


class StuckOutputDetector:
    """Notices a thermal output that keeps heating (or cooling) after it was turned OFF.

    Call :meth:`switched_on` when an output starts, :meth:`switched_off` when OFF was
    acknowledged (or the device reports it went OFF), and :meth:`plate` with every plate
    reading; :meth:`plate` returns True once the output is judged stuck.
    """

    def __init__(self, move_c: float = STUCK_MOVE_C) -> None:
        self.move_c = move_c
        self._direction: Literal["heat", "cold"] | None = None
        self._extreme: float | None = None

    @property
    def watching(self) -> bool:
        """True while an output that was on is being watched after its OFF."""
        return self._direction is not None

    def switched_on(self) -> None:
        """The output runs again: nothing to watch."""
        self._direction = None
        self._extreme = None

    def switched_off(self, was: Literal["heat", "cold"], plate_c: float | None) -> None:
        """The output was driving ``was`` and is now OFF; watch the plate from ``plate_c``."""
        self._direction = was
        self._extreme = plate_c

    def plate(self, celsius: float | None) -> bool:
        """Feed one plate reading; True when the output still drives after OFF."""
        if self._direction is None or celsius is None:
            return False
        if self._extreme is None:
            self._extreme = celsius
            return False
        if self._direction == "heat":
            self._extreme = min(self._extreme, celsius)
            return celsius - self._extreme >= self.move_c and celsius > HEAT_ONLY_ABOVE_C
        self._extreme = max(self._extreme, celsius)
        return self._extreme - celsius >= self.move_c and celsius < COLD_ONLY_BELOW_C


# --- after the final OFF: did the output really stop? ---------------------------------------
#
# A device that ignores OFF but reports it (a welded heater relay without current sensing, a
# gun whose motor runs on) shows it only in what it measures. When a session ends, the runner
# watches such an output for a short, bounded time after its OFF. It watches only what looks
# driven when the OFF goes out, so a normal session's end costs nothing: a plate beyond its
# setpoint the way its output drives (a regulating heater idles above its setpoint, a Peltier
# below it; nothing but the output itself pushes a plate further), a gun that reports speed.

# A plate this far (degC) beyond its setpoint, the way its output drives, is not regulated.
BEYOND_SETPOINT_C = 1.0
# Back this far (degC) after OFF, the way nothing but the end of the drive takes it: the output
# is off (two steps of the open profile's 0.01 degC resolution).
TURNED_BACK_C = 0.02
# On this far (degC) the drive's way after OFF: still driven. Sensor noise is far smaller, and a
# plate already beyond its setpoint has no heater lag to coast on (its output was idle).
DRIVEN_ON_C = 0.2
# Clock seconds a suspect plate is watched after OFF: three telemetry intervals. A plate that
# has not turned back by then is not confirmed OFF.
PLATE_WATCH_S = 3.0 * op.TELEMETRY_INTERVAL_S
# Clock seconds a stopped motor takes to spin down (a simulated gun needs 0.8 s from its top
# speed); speed reported later than this after STOP means the motor still runs.
SPIN_DOWN_S = 2.0
# A motor reporting less than this share of its speed at STOP is coasting down, not driven:
# load sags a driven motor by a third at most before it stalls (and a stalled motor stops).
COASTING_SHARE = 0.5
# Clock seconds a gun that reported speed is watched after STOP: its spin-down and one more
# measurement. A gun that stops reporting speed has stopped (the open profile measures only
# while the motor turns).
MOTOR_WATCH_S = SPIN_DOWN_S + 1.5 * op.TELEMETRY_INTERVAL_S


def plate_beyond_setpoint(
    mode: str, setpoint_c: float | None, plate_c: float | None
) -> Literal["heat", "cold"] | None:
    """The way an output drives a plate that is beyond its setpoint that way (None: not)."""
    if setpoint_c is None or plate_c is None:
        return None
    if mode == "heat" and plate_c > setpoint_c + BEYOND_SETPOINT_C:
        return "heat"
    if mode == "cold" and plate_c < setpoint_c - BEYOND_SETPOINT_C:
        return "cold"
    return None


class PlateAfterOff:
    """Whether a plate that was driven beyond its setpoint stopped being driven after OFF.

    Feed :meth:`reading` each new plate reading after the OFF: True once the plate turned back
    (the output is off), False once it went on the drive's way (it is still driven), None
    while undecided. :meth:`verdict` is the answer when the watch ends undecided: not off.
    """

    watch_s = PLATE_WATCH_S

    def __init__(
        self, direction: Literal["heat", "cold"], plate_c: float, *, undecided_off: bool = False
    ) -> None:
        self.direction = direction
        self._sign = 1.0 if direction == "heat" else -1.0
        self._start = plate_c
        # True for a plate that was not beyond its setpoint (a cooled plate colder than skin):
        # one that merely holds still is not being driven on; only going on the drive's way is
        self._undecided_off = undecided_off

    def reading(self, celsius: float | None, at: float) -> bool | None:
        """One plate reading (``at``: its clock time, unused); see the class."""
        del at
        if celsius is None:
            return None
        onward = (celsius - self._start) * self._sign
        if onward <= -TURNED_BACK_C:
            return True
        if onward >= DRIVEN_ON_C:
            return False
        return None

    def verdict(self) -> bool:
        """At the end of the watch, undecided: a plate beyond its setpoint never turned back,
        so not off; a plate watched with ``undecided_off`` never went on its way, so off."""
        return self._undecided_off


class MotorAfterStop:
    """Whether a gun's motor stopped after STOP, from the speed it reports.

    Feed :meth:`reading` each new speed report after the STOP with its clock time: True once it
    reports standstill or is clearly coasting down (below :data:`COASTING_SHARE` of its speed at
    the STOP), False once it reports speed :data:`SPIN_DOWN_S` or more after the STOP (the motor
    still runs), None while it may still be spinning down. :meth:`verdict` is the answer when
    the watch ends undecided: it stopped reporting speed, so it stopped.
    """

    watch_s = MOTOR_WATCH_S

    def __init__(self, stopped_at: float, rpm_at_stop: float) -> None:
        self._stopped_at = stopped_at
        self._coasting_below = rpm_at_stop * COASTING_SHARE

    def reading(self, rpm: float | None, at: float) -> bool | None:
        """One speed report (per minute) made at clock time ``at``; see the class."""
        if rpm is None or rpm <= 0 or rpm < self._coasting_below:
            return True
        if at - self._stopped_at >= SPIN_DOWN_S:
            return False
        return None

    def verdict(self) -> bool:
        """At the end of the watch, undecided: no speed reported after the spin-down."""
        return True


AfterOff = PlateAfterOff | MotorAfterStop
"""The watch on one output after its final OFF."""


EVENT_NAMES: Final = flag_fault_names(op.EVENT_FLAGS)
"""The names of the event flags (latched reports that an accepted START clears)."""
