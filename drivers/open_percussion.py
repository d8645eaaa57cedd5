"""Massage guns speaking the relieve open profile (safety class: lease).

Every run carries a lease (renewed every second of clock time while the motor runs) and a
device-side run-time cap: the gun stops by itself when the host goes quiet, and after the cap
however often the lease is renewed. The cap defaults to the M1 session limit (15 minutes) and
may not exceed the M1 extension (18 minutes). Measured speed and load arrive every second
while the motor turns.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Final, Unpack

from drivers.codecs import open_profile as op
from drivers.core.base import OutOfRangeError, PercussionCaps, PercussionState
from drivers.core.device import DriverOptions
from drivers.core.faults import Fault
from drivers.core.guards import check_rpm, check_run_cap_s
from drivers.core.open_device import OpenProfileDevice
from drivers.core.watch import flag_fault_names
from profiles.limits import HARD

__all__ = ["DEFAULT_RUN_CAP_S", "OpenPercussionGun"]

logger = logging.getLogger(__name__)

DEFAULT_RUN_CAP_S: Final = HARD.massage_max_s
"""Device-side cap of a run when the caller gives none: one M1 massage session (15 min)."""


class OpenPercussionGun(OpenProfileDevice[PercussionState, op.PercussionCapabilities]):
    """A massage gun on the open profile."""

    DRIVER = "open-percussion"
    KIND = "percussion"
    _CONTROL_POINT_UUID = op.PERCUSSION_CONTROL_POINT_UUID
    _CAPABILITIES_UUID = op.PERCUSSION_CAPABILITIES_UUID
    _OFF_COMMAND = "STOP"
    _ALREADY_OFF = "the motor had already stopped"

    def __init__(
        self,
        address: str,
        *,
        lease_s: float = op.DEFAULT_LEASE_MS / 1000,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, PercussionState(), lease_s=lease_s, **options)
        self._stopped_on_purpose = False

    @property
    def caps(self) -> PercussionCaps:
        """What the gun can do, from its Capabilities characteristic."""
        capabilities = self._require_capabilities()
        return PercussionCaps(
            min_rpm=capabilities.min_ppm,
            max_rpm=capabilities.max_ppm,
            max_lease_s=capabilities.max_lease_ms / 1000,
            run_cap_s=float(capabilities.max_run_cap_s),
        )

    async def run(self, rpm: int, *, run_cap_s: float | None = None) -> None:
        """Run at ``rpm``, stopping on the device after ``run_cap_s`` (default 15 min) at most."""
        capabilities = self._require_capabilities()
        address = self._info.address
        check_rpm(
            rpm, capabilities.min_ppm, capabilities.max_ppm, label=self.label, address=address
        )
        if run_cap_s is None:
            cap = min(math.ceil(DEFAULT_RUN_CAP_S), capabilities.max_run_cap_s)
        else:
            check_run_cap_s(run_cap_s, address=address)
            cap = math.ceil(run_cap_s)
            if cap > capabilities.max_run_cap_s:
                raise OutOfRangeError(
                    f"{self.label} caps a run at {capabilities.max_run_cap_s} s, not {cap} s; "
                    "run for less.",
                    address=address,
                )
        command = op.PercussionStart(speed_ppm=rpm, run_cap_s=cap, lease_ms=self._lease_ms)
        self._require_ready()
        self._stopped_on_purpose = False
        sent_at = self._clock.now()
        await self._send_start(command, f"START at {rpm} per minute")
        self._set(replace(self._state, running=True, target_rpm=rpm, faults=self._faults()))
        self._lease_granted(sent_at)

    async def stop(self) -> None:
        """Stop the gun and stop renewing. Idempotent (nothing to send without a link)."""
        await self._switch_off(self._stopped)

    def _stopped(self) -> None:
        """STOP was acknowledged: a motor that runs on from here is stuck."""
        self._stopped_on_purpose = True
        self._set(self._off_state())

    def _decode_capabilities(self, data: bytes) -> op.PercussionCapabilities:
        return op.PercussionCapabilities.from_bytes(data)

    async def _set_up(self) -> None:
        await self._read_capabilities()
        await self._link.subscribe(op.PERCUSSION_STATE_UUID, self._on_state_frame)
        await self._link.subscribe(op.PERCUSSION_MEASUREMENT_UUID, self._on_measurement_frame)
        self._on_state_frame(await self._link.read(op.PERCUSSION_STATE_UUID, what="state read"))
        if self._state.running:
            logger.warning("%s was running when we connected: stopping it first", self.label)
        # STOP first, always (S2 in docs/safety.md).
        await self._send_off()
        self._stopped()

    def _on_state_frame(self, data: bytes) -> None:
        frame = self._decode(op.PercussionState.from_bytes, data, "state")
        if frame is None:
            return
        if self._state.running and not frame.running:
            self._went_off_by_itself()
            self._lease.cancel()
        elif frame.running and self._stopped_on_purpose and not self._lease.running:
            self._host_faults.add(Fault.STUCK_OUTPUT)  # running although STOP was acknowledged
        self._device_faults = flag_fault_names(frame.flags)
        self._note_telemetry()
        self._set(
            replace(
                self._state,
                running=frame.running,
                target_rpm=frame.target_ppm if frame.running else None,
                faults=self._faults(),
                updated_at=self._clock.now(),
            )
        )

    def _on_measurement_frame(self, data: bytes) -> None:
        frame = self._decode(op.PercussionMeasurement.from_bytes, data, "measurement")
        if frame is None:
            return
        self._note_telemetry()
        self._set(
            replace(
                self._state,
                measured_rpm=frame.measured_ppm,
                load=None if frame.load_percent is None else float(frame.load_percent),
                updated_at=self._clock.now(),
                faults=self._faults(),
            )
        )

    async def _off_before_disconnect(self) -> None:
        await self.stop()
