"""What the open-profile drivers share: the lease, the Control Point, Capabilities, faults.

Both open-profile services (thermal and percussion, docs/gatt-profile.md) take every command on
a Control Point, describe the device in a Capabilities characteristic read on connect, latch
fault and event flags in their State, and need every ON renewed before its lease runs out
(H4 in docs/safety.md). :class:`OpenProfileDevice` holds that logic; a service's driver names its
UUIDs, decodes its own Capabilities and States, and says how its logs word things.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar, Generic, SupportsBytes, TypeVar, Unpack

from drivers.codecs import open_profile as op
from drivers.codecs.errors import DecodeError
from drivers.core.base import (
    DeviceError,
    DeviceRefusedError,
    DeviceTimeoutError,
    NotConnectedError,
    SafetyClass,
)
from drivers.core.device import DriverOptions
from drivers.core.guards import check_lease_s
from drivers.core.lease import LeaseKeeper, LeaseLapsedError
from drivers.core.output import OutputDriver, OutputStateT
from drivers.core.watch import EVENT_NAMES, LEASE_EXPIRED, NOT_ACKNOWLEDGED

__all__ = ["CapabilitiesT", "OpenProfileDevice"]

CapabilitiesT = TypeVar("CapabilitiesT", op.ThermalCapabilities, op.PercussionCapabilities)


class OpenProfileDevice(OutputDriver[OutputStateT], Generic[OutputStateT, CapabilitiesT]):
    """A device on one open-profile service (safety class: lease)."""

    SAFETY_CLASS = SafetyClass.LEASE

    _CONTROL_POINT_UUID: ClassVar[str]
    """The service's Control Point: every command is written here."""
    _CAPABILITIES_UUID: ClassVar[str]
    """The service's Capabilities characteristic, read on every connect."""
    _OFF_COMMAND: ClassVar[str]
    """How the logs name the OFF command ("OFF" for a pad, "STOP" for a gun)."""
    _ALREADY_OFF: ClassVar[str]
    """Logged when a renewal is refused because the output had stopped already."""

    def __init__(
        self,
        address: str,
        state: OutputStateT,
        *,
        lease_s: float,
        **options: Unpack[DriverOptions],
    ) -> None:
        self._lease_ms = check_lease_s(lease_s, address=address)
        super().__init__(address, state, describe_att_error=op.describe_att_error, **options)
        self._capabilities: CapabilitiesT | None = None
        self._device_faults: frozenset[str] = frozenset()
        self._lease = LeaseKeeper(
            clock=self._clock,
            renew=self._renew,
            on_failure=self._renewal_failed,
            label=self.label,
            stop_wait_s=self._link.command_timeout_s,
        )

    @property
    def lease_s(self) -> float:
        """The lease every ON (every run of a gun) carries, seconds."""
        return self._lease_ms / 1000

    async def clear_faults(self) -> None:
        """Ask the device to clear latched flags whose condition has ended; forget host faults."""
        await self._write(op.ClearFlags(), "CLEAR_FLAGS")
        self.clear_host_faults()

    # --- what each service provides -----------------------------------------------------------

    @abc.abstractmethod
    def _decode_capabilities(self, data: bytes) -> CapabilitiesT:
        """The service's Capabilities frame (DecodeError when unreadable)."""

    # --- commands -----------------------------------------------------------------------------

    async def _write(self, command: SupportsBytes, what: str) -> None:
        await self._link.write(self._CONTROL_POINT_UUID, bytes(command), what=what)

    async def _send_off(self) -> None:
        await self._write(op.OutputOff(), self._OFF_COMMAND)

    async def _switch_off(self, acknowledged: Callable[[], None]) -> None:
        """Stop renewing and send OFF at once; ``acknowledged()`` runs when the device took it.

        The keeper is stopped by its flag first, so OFF waits at most for the one renewal whose
        ATT transaction is in flight (the link's command time-out), never for the renewal loop;
        the keeper's task is then given a short bounded time to end. Without a link nothing is
        sent: the device switched itself OFF when the link dropped (and would when its lease
        ran out).
        """
        self._lease.cancel()
        if self._link.connected:
            await self._send_off()
            acknowledged()
        await self._lease.stop()

    async def _send_start(self, command: SupportsBytes, what: str) -> None:
        """Write a START; the device's latched events are dropped unless it is refused.

        An accepted START clears the latched events (lease-expired ...): drop them first so no
        telemetry in between republishes a stale "lease expired" for the new step. The host's
        own record of a lease that ran out goes with them: the START carries a new lease.
        """
        before, self._device_faults = self._device_faults, self._device_faults - EVENT_NAMES
        lapsed = LEASE_EXPIRED in self._host_faults
        self._host_faults.discard(LEASE_EXPIRED)
        try:
            await self._write(command, what)
        except DeviceError:
            self._device_faults = before
            if lapsed:
                self._host_faults.add(LEASE_EXPIRED)
            raise

    def _lease_granted(self, sent_at: float) -> None:
        """A START sent at clock time ``sent_at`` was accepted: keep its lease alive."""
        capabilities = self._capabilities
        granted_ms = (
            self._lease_ms
            if capabilities is None
            else op.grant_lease(self._lease_ms, capabilities.max_lease_ms)
        )
        self._lease.start(lease_s=granted_ms / 1000, granted_at=sent_at)

    async def _renew(self) -> None:
        # Every attempt asks the keeper first: a renewal is never sent once it was stopped.
        await self._link.write(
            self._CONTROL_POINT_UUID,
            bytes(op.LeaseRenew(self._lease_ms)),
            what="lease renewal",
            withdrawn=self._lease.call_withdrawn,
        )

    def _went_off_by_itself(self) -> None:
        """The device reports the output OFF while its lease was being kept: when the lease had
        run out on the host's clock, say so (a device that does not latch LEASE_EXPIRED would
        report a plain OFF). Published with the state that follows."""
        runs_out_at = self._lease.runs_out_at
        if self._lease.running and runs_out_at is not None and self._clock.now() >= runs_out_at:
            self._log.warning("%s: turned itself off: its lease ran out", self.label)
            self._host_faults.add(LEASE_EXPIRED)

    def _renewal_failed(self, exc: DeviceError) -> None:
        if isinstance(exc, LeaseLapsedError):
            # Not renewed: the device has turned the output OFF (a device that does not latch
            # LEASE_EXPIRED would not say why). The host's own count says it.
            self._log.warning("%s", exc)
            self._set_host_fault(LEASE_EXPIRED, present=True)
        elif isinstance(exc, DeviceTimeoutError):
            self._set_host_fault(NOT_ACKNOWLEDGED, present=True)
        elif (
            isinstance(exc, DeviceRefusedError)
            and exc.att_error == op.AttError.NOT_PERMITTED_IN_STATE
        ):
            self._log.info("%s: %s when the lease was renewed", self.label, self._ALREADY_OFF)
        elif not isinstance(exc, NotConnectedError):
            self._log.error("%s: lease renewal failed: %s", self.label, exc)

    # --- capabilities -------------------------------------------------------------------------

    def _require_capabilities(self) -> CapabilitiesT:
        if self._capabilities is None:
            raise NotConnectedError(
                f"Connect to {self.label} before using it: its capabilities are read on connect.",
                address=self._info.address,
            )
        return self._capabilities

    async def _read_capabilities(self) -> None:
        """Read the Capabilities (the first step of every set-up)."""
        raw = await self._link.read(self._CAPABILITIES_UUID, what="capabilities read")
        try:
            self._capabilities = self._decode_capabilities(raw)
        except DecodeError as exc:
            raise DeviceError(
                f"{self.label} sent capabilities this driver cannot read ({exc.problem}); "
                "update relieve.",
                address=self._info.address,
            ) from exc

    # --- hooks --------------------------------------------------------------------------------

    def _faults(self) -> frozenset[str]:
        return self._device_faults | self._host_faults

    def _went_down(self) -> None:
        # The open profile turns every output OFF when the link drops (LINK_LOST).
        self._set(replace(self._off_state(), connected=False))

    def _stop_output(self) -> None:
        self._lease.cancel()
