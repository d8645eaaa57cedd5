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

from drivers.base import (
    DeviceError,
    DeviceRefusedError,
    DeviceTimeoutError,
    NotConnectedError,
    OutOfRangeError,
    PercussionCaps,
    PercussionState,
    SafetyClass,
)
from drivers.codecs import open_profile as op
from drivers.codecs.errors import DecodeError
from drivers.device import DriverBase, DriverOptions
from drivers.guards import check_lease_s, check_rpm, check_run_cap_s
from drivers.lease import LeaseKeeper
from drivers.watch import EVENT_NAMES, NOT_ACKNOWLEDGED, STUCK_OUTPUT, flag_fault_names
from profiles.limits import HARD

__all__ = ["DEFAULT_RUN_CAP_S", "OpenPercussionGun"]

logger = logging.getLogger(__name__)

DEFAULT_RUN_CAP_S: Final = HARD.massage_max_s
"""Device-side cap of a run when the caller gives none: one M1 massage session (15 min)."""


class OpenPercussionGun(DriverBase[PercussionState]):
    """A massage gun on the open profile."""

    DRIVER = "open-percussion"
    KIND = "percussion"
    SAFETY_CLASS = SafetyClass.LEASE

    def __init__(
        self,
        address: str,
        *,
        lease_s: float = op.DEFAULT_LEASE_MS / 1000,
        **options: Unpack[DriverOptions],
    ) -> None:
        self._lease_ms = check_lease_s(lease_s, address=address)
        super().__init__(address, describe_att_error=op.describe_att_error, **options)
        self._state = PercussionState()
        self._capabilities: op.PercussionCapabilities | None = None
        self._device_faults: frozenset[str] = frozenset()
        self._stopped_on_purpose = False
        self._lease = LeaseKeeper(
            clock=self._clock, renew=self._renew, on_failure=self._renewal_failed, label=self.label
        )

    @property
    def state(self) -> PercussionState:
        """The latest state (replaced, never mutated)."""
        return self._state

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

    @property
    def lease_s(self) -> float:
        """The lease every run carries, seconds."""
        return self._lease_ms / 1000

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
        # An accepted START clears the latched events: drop them first (see OpenThermalPad).
        before, self._device_faults = self._device_faults, self._device_faults - EVENT_NAMES
        try:
            await self._link.write(
                op.PERCUSSION_CONTROL_POINT_UUID, bytes(command), what=f"START at {rpm} per minute"
            )
        except DeviceError:
            self._device_faults = before
            raise
        self._set(
            replace(
                self._state,
                running=True,
                target_rpm=rpm,
                faults=self._device_faults | self._host_faults,
            )
        )
        self._lease.start()

    async def stop(self) -> None:
        """Stop the gun and stop renewing. Idempotent (nothing to send without a link)."""
        await self._lease.stop()
        if not self._link.connected:
            return
        await self._link.write(op.PERCUSSION_CONTROL_POINT_UUID, bytes(op.OutputOff()), what="STOP")
        self._stopped_on_purpose = True
        self._set(replace(self._state, running=False, target_rpm=None))

    async def clear_faults(self) -> None:
        """Ask the gun to clear latched flags whose condition has ended; forget host faults."""
        await self._link.write(
            op.PERCUSSION_CONTROL_POINT_UUID, bytes(op.ClearFlags()), what="CLEAR_FLAGS"
        )
        self.clear_host_faults()

    async def _renew(self) -> None:
        await self._link.write(
            op.PERCUSSION_CONTROL_POINT_UUID,
            bytes(op.LeaseRenew(self._lease_ms)),
            what="lease renewal",
        )

    def _renewal_failed(self, exc: DeviceError) -> None:
        if isinstance(exc, DeviceTimeoutError):
            self._set_host_fault(NOT_ACKNOWLEDGED, present=True)
        elif (
            isinstance(exc, DeviceRefusedError)
            and exc.att_error == op.AttError.NOT_PERMITTED_IN_STATE
        ):
            logger.info("%s: the motor had already stopped when the lease was renewed", self.label)
        elif not isinstance(exc, NotConnectedError):
            logger.error("%s: lease renewal failed: %s", self.label, exc)

    def _require_capabilities(self) -> op.PercussionCapabilities:
        if self._capabilities is None:
            raise NotConnectedError(
                f"Connect to {self.label} before using it: its capabilities are read on connect.",
                address=self._info.address,
            )
        return self._capabilities

    async def _set_up(self) -> None:
        raw = await self._link.read(op.PERCUSSION_CAPABILITIES_UUID, what="capabilities read")
        try:
            self._capabilities = op.PercussionCapabilities.from_bytes(raw)
        except DecodeError as exc:
            raise DeviceError(
                f"{self.label} sent capabilities this driver cannot read ({exc.problem}); "
                "update relieve.",
                address=self._info.address,
            ) from exc
        await self._link.subscribe(op.PERCUSSION_STATE_UUID, self._on_state_frame)
        await self._link.subscribe(op.PERCUSSION_MEASUREMENT_UUID, self._on_measurement_frame)
        self._on_state_frame(await self._link.read(op.PERCUSSION_STATE_UUID, what="state read"))
        if self._state.running:
            logger.warning("%s was running when we connected: stopping it first", self.label)
        # STOP first, always (SAFETY.md S2).
        await self._link.write(op.PERCUSSION_CONTROL_POINT_UUID, bytes(op.OutputOff()), what="STOP")
        self._stopped_on_purpose = True
        self._set(replace(self._state, running=False, target_rpm=None))

    def _on_state_frame(self, data: bytes) -> None:
        try:
            frame = op.PercussionState.from_bytes(data)
        except DecodeError as exc:
            logger.warning("%s: unreadable state %s: %s", self.label, data.hex(" "), exc)
            return
        if self._state.running and not frame.running:
            self._lease.cancel()
        elif frame.running and self._stopped_on_purpose and not self._lease.running:
            self._host_faults.add(STUCK_OUTPUT)  # running although STOP was acknowledged
        self._device_faults = flag_fault_names(frame.flags)
        self._note_telemetry()
        self._set(
            replace(
                self._state,
                running=frame.running,
                target_rpm=frame.target_ppm if frame.running else None,
                faults=self._device_faults | self._host_faults,
                updated_at=self._clock.now(),
            )
        )

    def _on_measurement_frame(self, data: bytes) -> None:
        try:
            frame = op.PercussionMeasurement.from_bytes(data)
        except DecodeError as exc:
            logger.warning("%s: unreadable measurement %s: %s", self.label, data.hex(" "), exc)
            return
        self._note_telemetry()
        self._set(
            replace(
                self._state,
                measured_rpm=frame.measured_ppm,
                load=None if frame.load_percent is None else float(frame.load_percent),
                updated_at=self._clock.now(),
                faults=self._device_faults | self._host_faults,
            )
        )

    def _set(self, state: PercussionState) -> None:
        if state != self._state:
            self._state = state
            self._publish(state)

    def _went_up(self) -> None:
        self._set(replace(self._state, connected=True, battery=self._info.battery))

    def _went_down(self) -> None:
        # The open profile stops the motor when the link drops (LINK_LOST).
        self._set(replace(self._state, connected=False, running=False, target_rpm=None))

    def _faults_changed(self) -> None:
        self._set(replace(self._state, faults=self._device_faults | self._host_faults))

    def _stop_output(self) -> None:
        self._lease.cancel()

    def _telemetry_expected(self) -> bool:
        return self._state.running

    def _battery_changed(self, percent: int) -> None:
        self._set(replace(self._state, battery=percent))

    async def _off_before_disconnect(self) -> None:
        await self.stop()
