"""The firmware of a simulated massage gun, as pure state transitions.

:class:`GunCore` serves both gun simulators: the open-profile gun (every run carries a lease
and a device-side run-time cap; link loss stops the motor) and the Theragun Gen-4 (a speed
command and nothing else: no lease, no cap, it keeps running when the phone goes away). The
motor ramps with :func:`simulators.physics.step_gun`; pressing (``press``) loads it, and at its
stall force it stops with OVERLOAD.
"""

from __future__ import annotations

from drivers.codecs import open_profile as op
from simulators.devices.firmware import LOW_BATTERY_CUTOFF_PCT, OpenFirmware
from simulators.faults import FaultBook
from simulators.physics import (
    BatteryParams,
    GunParams,
    GunState,
    drain_battery,
    gun_drain_rate,
    step_gun,
)

__all__ = ["MAX_U16", "GunCore"]

MAX_U16 = 0xFFFF


class GunCore(OpenFirmware[op.PercussionStart]):
    """One percussion motor with its lease, run cap, flags, physics and battery."""

    def __init__(
        self,
        *,
        faults: FaultBook,
        now: float,
        capabilities: op.PercussionCapabilities | None,
        params: GunParams | None = None,
        battery_params: BatteryParams | None = None,
        battery_pct: float = 100.0,
        stop_on_link_loss: bool = True,
    ) -> None:
        super().__init__(
            faults=faults, now=now, battery_params=battery_params, battery_pct=battery_pct
        )
        self.capabilities = capabilities
        self.params = params or GunParams()
        self.stop_on_link_loss = stop_on_link_loss
        self.running = False
        self.target_ppm = 0
        self.run_cap_s = 0
        self.run_started: float | None = None
        self.motor = GunState()
        self.force_n = 0.0

    # --- time ----------------------------------------------------------------------------

    def cap_deadline(self) -> float | None:
        """When the device-side run cap stops the motor (None without a cap)."""
        if not self.running or self.run_started is None or not self.run_cap_s:
            return None
        return self.run_started + self.run_cap_s

    def next_deadline(self) -> float | None:
        """When the motor stops by itself (lease or cap)."""
        times = [t for t in (self.lease_deadline, self.cap_deadline()) if t is not None]
        return min(times, default=None)

    @property
    def moving(self) -> bool:
        """Whether the motor runs or still spins down."""
        return self.running or self.motor.speed_ppm > 0

    def _step(self, dt: float) -> None:
        commanded = self.target_ppm if self.running and self.battery_pct > 0 else 0
        rate = gun_drain_rate(self.motor.speed_ppm, self.force_n, self.params, self.battery_params)
        self.battery_pct = drain_battery(self.battery_pct, rate, dt)
        self.motor = step_gun(self.motor, commanded, self.force_n, dt, self.params)

    def _conditions(self, now: float) -> op.StatusFlags:
        del now  # the motor's conditions do not depend on the time
        flags = op.NO_FLAGS
        if self.force_n >= self.params.stall_force_n:
            flags |= op.StatusFlags.OVERLOAD
        if self.battery_pct < LOW_BATTERY_CUTOFF_PCT:
            flags |= op.StatusFlags.SUPPLY_FAULT
        return flags

    def _check(self, now: float) -> None:
        self._expire_lease(now)
        cap = self.cap_deadline()
        if cap is not None and now >= cap:
            self._output_off(op.StatusFlags.RUN_CAP_REACHED)
        faults = self._conditions(now)
        if faults and self.running:
            self.flags |= faults
            self._output_off(op.NO_FLAGS)
        elif faults & op.StatusFlags.SUPPLY_FAULT:
            self.flags |= op.StatusFlags.SUPPLY_FAULT

    def _output_off(self, event: op.StatusFlags) -> None:
        self.running = False
        self.target_ppm = 0
        self.run_cap_s = 0
        self.run_started = None
        self.lease_deadline = None
        self.flags |= event

    # --- open-profile commands -----------------------------------------------------------

    def _decode(self, data: bytes) -> op.PercussionCommand:
        return op.decode_percussion_command(data)

    def start(self, command: op.PercussionStart, now: float) -> None:
        """START: run (or change speed) with a fresh lease; the cap counts from the first START."""
        if self.capabilities is None:
            raise op.CommandRejectedError(
                op.AttError.OPCODE_NOT_SUPPORTED, "opcode", "this device has no open profile"
            )
        refusal = self.capabilities.refusal(command)
        if refusal is not None:
            caps = self.capabilities
            if not caps.min_ppm <= command.speed_ppm <= caps.max_ppm:
                raise op.CommandRejectedError(refusal, "speed_ppm", "outside the device's range")
            raise op.CommandRejectedError(
                refusal, "run_cap_s", f"longer than the device's {caps.max_run_cap_s} s"
            )
        if self.flags & op.FAULT_FLAGS:
            raise op.CommandRejectedError(op.AttError.FAULT_ACTIVE, "flags", "a fault is latched")
        self.flags &= ~op.EVENT_FLAGS
        if not self.running:
            self.run_started = now
        self.running = True
        self.target_ppm = command.speed_ppm
        self.run_cap_s = command.run_cap_s
        self._grant(command.lease_ms, self.capabilities.max_lease_ms, now)

    def renew(self, lease_ms: int, now: float) -> None:
        """RENEW: extend the lease of a running motor."""
        if not self.running or self.capabilities is None:
            raise op.CommandRejectedError(
                op.AttError.NOT_PERMITTED_IN_STATE, "running", "the motor is stopped"
            )
        self._grant(lease_ms, self.capabilities.max_lease_ms, now)

    # --- vendor (Theragun) command and the outside world ---------------------------------

    def set_speed(self, speed_ppm: int, now: float) -> None:
        """Host-timed speed command: 0 stops; no lease, no cap (Theragun)."""
        self.advance(now)
        if speed_ppm <= 0:
            self._output_off(op.NO_FLAGS)
        elif self.force_n < self.params.stall_force_n:
            if not self.running:
                self.run_started = now
            self.running = True
            self.target_ppm = speed_ppm
        self._check(now)

    def press(self, force_n: float, now: float) -> None:
        """The user presses the gun into the muscle with ``force_n`` newtons (0 = lifted)."""
        self.advance(now)
        self.force_n = max(0.0, force_n)
        self._check(now)

    def link_lost(self, now: float) -> None:
        """The BLE link dropped: the open-profile gun stops at once and latches LINK_LOST."""
        self.advance(now)
        if self.stop_on_link_loss and self.running:
            self._output_off(op.StatusFlags.LINK_LOST)
        self._check(now)

    def drain(self, now: float) -> None:
        """The battery dies."""
        self.advance(now)
        self.battery_pct = 0.0
        self._check(now)
        self._output_off(op.NO_FLAGS)

    # --- frames --------------------------------------------------------------------------

    def run_time_s(self, now: float) -> float:
        """Seconds since the run started (0 while stopped)."""
        return 0.0 if self.run_started is None else max(0.0, now - self.run_started)

    def state_frame(self, now: float) -> op.PercussionState:
        """The Percussion State characteristic value."""
        if not self.running:
            return op.PercussionState(flags=self.flags)
        return op.PercussionState(
            running=True,
            target_ppm=min(self.target_ppm, MAX_U16),
            lease_remaining_ms=self.lease_remaining_ms(now),
            run_time_s=min(int(self.run_time_s(now)), MAX_U16),
            run_cap_s=min(self.run_cap_s, MAX_U16),
            flags=self.flags,
        )

    def load_percent(self) -> int:
        """Pressing force as a percentage of the stall force."""
        return min(100, round(100.0 * self.force_n / self.params.stall_force_n))

    def measurement_frame(self) -> op.PercussionMeasurement:
        """The Percussion Measurement characteristic value."""
        return op.PercussionMeasurement(
            measured_ppm=min(round(self.motor.speed_ppm), MAX_U16),
            load_percent=self.load_percent(),
        )

    def change_key(self) -> tuple[bool, int, int, int]:
        """The State notification is sent on a change of (running, target, cap, flags)."""
        return self.running, self.target_ppm, self.run_cap_s, int(self.flags)
