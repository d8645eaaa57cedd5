"""What the firmware cores of the simulated devices share, as pure state transitions.

:class:`SteppedFirmware` is the time loop of every core (thermal pad, massage gun, heating
mat): physics and battery are stepped by elapsed clock time in pieces that end at each of the
core's own deadlines and at each fault change, with self-protection checked at every boundary.
:class:`OpenFirmware` adds what both open-profile cores share: the lease, the latched status
flags and the dispatch of control-point commands. No bumble, no asyncio.
"""

from __future__ import annotations

import abc
import math
from typing import Generic, TypeVar

from drivers.codecs import open_profile as op
from drivers.core.watch import status_flag_names
from simulators.faults import FaultBook
from simulators.physics import BatteryParams

__all__ = ["LOW_BATTERY_CUTOFF_PCT", "OpenFirmware", "SteppedFirmware", "flag_names"]

# Below this charge the output stops and SUPPLY_FAULT latches (the cell protects itself).
LOW_BATTERY_CUTOFF_PCT = 2.0

StartT = TypeVar("StartT")


def flag_names(flags: op.StatusFlags) -> tuple[str, ...]:
    """The set flags by the names the drivers give them (``lease-expired``, ``link-lost``;
    unknown bits as ``fault-bit<n>`` / ``event-bit<n>``), lowest bit first."""
    return tuple(str(name) for name in status_flag_names(flags))


class SteppedFirmware(abc.ABC):
    """A firmware core stepped by elapsed clock time (``last_t`` is how far it has got)."""

    def __init__(self, *, faults: FaultBook, now: float) -> None:
        self.faults = faults
        self.last_t = now

    def advance(self, now: float) -> None:
        """Bring the core up to ``now``: physics, battery, deadlines and self-protection."""
        self._check(self.last_t)
        while self.last_t < now:
            end = now
            for t in (self.next_deadline(), self.faults.next_change(self.last_t)):
                if t is not None and self.last_t < t < end:
                    end = t
            self._step(end - self.last_t)
            self.last_t = end
            self._check(end)

    @abc.abstractmethod
    def next_deadline(self) -> float | None:
        """When the core changes by itself (lease expiry, run cap, timer), for the device."""

    @abc.abstractmethod
    def _step(self, dt: float) -> None:
        """Step physics (and battery) by ``dt`` seconds; nothing else changes within a step."""

    @abc.abstractmethod
    def _check(self, now: float) -> None:
        """Self-protection at ``now``: deadlines, latched faults, the scheduled faults."""


class OpenFirmware(SteppedFirmware, Generic[StartT]):
    """An open-profile output: battery, lease, latched flags and the control-point commands.

    ``StartT`` is the family's START command; the subclass decodes its control-point writes,
    starts, renews and stops its output, and says which fault conditions are present.
    """

    def __init__(
        self,
        *,
        faults: FaultBook,
        now: float,
        battery_params: BatteryParams | None,
        battery_pct: float,
    ) -> None:
        super().__init__(faults=faults, now=now)
        self.battery_params = battery_params or BatteryParams()
        self.battery_pct = battery_pct
        self.lease_deadline: float | None = None
        # Under a scaled clock the host's renewals keep real-time jitter: see lease_floor_for.
        self.lease_floor_s = 0.0
        self.flags = op.NO_FLAGS

    # --- commands ------------------------------------------------------------------------

    def command(self, data: bytes, now: float) -> None:
        """Apply one control-point write; CommandRejectedError carries the ATT error."""
        self.advance(now)
        command = self._decode(data)
        if isinstance(command, op.LeaseRenew):
            self.renew(command.lease_ms, now)
        elif isinstance(command, op.ClearFlags):
            self.flags &= self._conditions(now)
        elif isinstance(command, op.OutputOff):
            self._output_off(op.NO_FLAGS)
        else:
            self.start(command, now)
        self._check(now)

    def _expire_lease(self, now: float) -> None:
        """A lease that has run out by ``now`` turns the output OFF and latches LEASE_EXPIRED
        (unless the device forgets to: the ``unlatched_lease`` fault)."""
        if self.lease_deadline is None or now < self.lease_deadline:
            return
        latched = self.faults.latches_lease_expiry(now)
        self._output_off(op.StatusFlags.LEASE_EXPIRED if latched else op.NO_FLAGS)

    def _grant(self, lease_ms: int, max_lease_ms: int, now: float) -> None:
        """Set the lease a START or RENEW asked for (never shorter than ``lease_floor_s``)."""
        granted = op.grant_lease(lease_ms, max_lease_ms)
        self.lease_deadline = now + max(granted / 1000.0, self.lease_floor_s)

    @abc.abstractmethod
    def _decode(self, data: bytes) -> StartT | op.OutputOff | op.LeaseRenew | op.ClearFlags:
        """The family's control-point command in ``data``; CommandRejectedError if malformed."""

    @abc.abstractmethod
    def start(self, command: StartT, now: float) -> None:
        """START: switch on (or change a running output) with a fresh lease."""

    @abc.abstractmethod
    def renew(self, lease_ms: int, now: float) -> None:
        """RENEW: extend the lease of a running output."""

    @abc.abstractmethod
    def _conditions(self, now: float) -> op.StatusFlags:
        """The fault conditions present at ``now`` (what CLEAR_FLAGS cannot clear)."""

    @abc.abstractmethod
    def _output_off(self, event: op.StatusFlags) -> None:
        """Turn the output off, ending its lease, and latch ``event``."""

    # --- frames --------------------------------------------------------------------------

    def lease_remaining_ms(self, now: float) -> int:
        """Milliseconds left on the lease (0 while off or host-timed)."""
        if self.lease_deadline is None:
            return 0
        remaining = math.ceil((self.lease_deadline - now) * 1000.0 - 1e-6)
        return max(0, min(op.LEASE_MAX_MS, remaining))

    def lease_remaining_s(self, now: float) -> float | None:
        """Seconds left on the lease for a snapshot (None while no lease runs)."""
        if self.lease_deadline is None:
            return None
        return self.lease_remaining_ms(now) / 1000.0
