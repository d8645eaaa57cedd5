"""Pure checks on what a device reports: fault names, stuck outputs, telemetry stalls.

Nothing here does I/O or reads a clock; the device classes feed in what they receive and the
current clock time, and put the answers into their state's ``faults``.
"""

from __future__ import annotations

from typing import Final, Literal

from drivers.codecs import open_profile as op

__all__ = [
    "COLD_ONLY_BELOW_C",
    "EVENT_NAMES",
    "HEAT_ONLY_ABOVE_C",
    "NOT_ACKNOWLEDGED",
    "STUCK_MOVE_C",
    "STUCK_OUTPUT",
    "TELEMETRY_STALL_S",
    "StuckOutputDetector",
    "flag_fault_names",
    "stalled",
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

STUCK_OUTPUT: Final = "stuck-output"
"""Fault name: an output that keeps driving after OFF."""
NOT_ACKNOWLEDGED: Final = "not-acknowledged"
"""Fault name: a command (a lease renewal, a poll) not acknowledged after the retries (S4)."""

_FLAG_NAMES: Final = {
    op.StatusFlags.OVER_TEMPERATURE: "over-temperature",
    op.StatusFlags.SENSOR_FAULT: "sensor-fault",
    op.StatusFlags.STUCK_OUTPUT: STUCK_OUTPUT,
    op.StatusFlags.SUPPLY_FAULT: "supply-fault",
    op.StatusFlags.OVERLOAD: "overload",
    op.StatusFlags.LEASE_EXPIRED: "lease-expired",
    op.StatusFlags.LINK_LOST: "link-lost",
    op.StatusFlags.RUN_CAP_REACHED: "run-cap-reached",
    op.StatusFlags.LOCAL_STOP: "local-stop",
}
_FLAG_BITS: Final = 16


def flag_fault_names(flags: op.StatusFlags) -> frozenset[str]:
    """The open profile's status flags as fault names (``lease-expired``, ``stuck-output``).

    Unknown bits become ``fault-bit<n>`` (low byte) or ``event-bit<n>`` (high byte), so a newer
    device's fault is never silently dropped.
    """
    names = set()
    for bit in range(_FLAG_BITS):
        value = 1 << bit
        if not int(flags) & value:
            continue
        name = _FLAG_NAMES.get(op.StatusFlags(value))
        if name is None:
            name = f"{'fault' if value & int(op.FAULT_FLAGS) else 'event'}-bit{bit}"
        names.add(name)
    return frozenset(names)


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


EVENT_NAMES: Final = flag_fault_names(op.EVENT_FLAGS)
"""The names of the event flags (latched reports that an accepted START clears)."""
