"""The GATT binding every open-profile device shares (docs/gatt-profile.md).

An open-profile service has a Control Point (write with response), a State snapshot (read,
notify on every change of the core's change key), a telemetry Measurement (read, notify from
the family's ``_periodic``) and Capabilities (read). :class:`SimOpenDevice` builds that service
from an :class:`OpenService` table, hands control-point writes to the core (a refused command
becomes the profile's ATT application error) and grants leases no shorter than
:func:`lease_floor_for` the device's clock.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol, SupportsBytes, TypeVar

from bumble import gatt

from drivers.codecs import open_profile as op
from drivers.core.clock import Clock, at_least_real
from simulators.catalog import DeviceSpec
from simulators.devices.core_device import CoreDevice, PoweredCore
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.faults import FaultBook

__all__ = ["LEASE_REAL_FLOOR_S", "OpenCore", "OpenService", "SimOpenDevice", "lease_floor_for"]

# A lease of 5 s is 83 ms of real time at x60, less than ordinary radio and event-loop jitter
# on a busy machine. Under a scaled clock (demos, rehearsals) a simulated device therefore keeps
# an output on for at least this much real time after a renewal. At x1 and in virtual time the
# lease is exactly what the open profile says.
LEASE_REAL_FLOOR_S = 0.25


def lease_floor_for(clock: Clock) -> float:
    """The shortest lease (clock seconds) a simulated device grants on ``clock``."""
    return at_least_real(clock, 0.0, LEASE_REAL_FLOOR_S)


@dataclass(frozen=True, slots=True)
class OpenService:
    """The UUIDs of one open-profile service and the words its characteristics are logged by."""

    name: str
    """``thermal`` / ``percussion``: labels read ``<key> <name> state`` and so on."""
    service_uuid: str
    control_point_uuid: str
    state_uuid: str
    telemetry_uuid: str
    telemetry_label: str
    """The telemetry characteristic's label after the device key."""
    capabilities_uuid: str


class OpenCore(PoweredCore, Protocol):
    """A firmware core that speaks the open profile."""

    lease_floor_s: float

    @property
    def capabilities(self) -> SupportsBytes | None:
        """The Capabilities value (None: the device has no open profile)."""
        ...

    def command(self, data: bytes, now: float) -> None:
        """Apply one control-point write; CommandRejectedError carries the ATT error."""
        ...

    def state_frame(self, now: float) -> SupportsBytes:
        """The State characteristic value."""
        ...

    def change_key(self) -> Hashable:
        """What a State notification is sent on a change of."""
        ...


OpenCoreT = TypeVar("OpenCoreT", bound=OpenCore)


class SimOpenDevice(CoreDevice[OpenCoreT]):
    """A device serving one open-profile service; the family adds telemetry and a snapshot."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float,
        profile: OpenService,
        core: Callable[[FaultBook], OpenCoreT],
    ) -> None:
        super().__init__(spec, clock=clock, battery_pct=battery_pct, core=core)
        self.core.lease_floor_s = lease_floor_for(clock)
        self._profile = profile
        self._sent_key: Hashable | None = None
        self._state_char = SimCharacteristic(
            profile.state_uuid,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} {profile.name} state",
            read=self._reader(lambda now: bytes(self.core.state_frame(now))),
        )
        self._telemetry_char = SimCharacteristic(
            profile.telemetry_uuid,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} {profile.telemetry_label}",
            read=self._reader(self._telemetry),
        )

    @abc.abstractmethod
    def _telemetry(self, now: float) -> bytes:
        """The telemetry (Measurement) value at ``now``."""

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        profile = self._profile
        control = SimCharacteristic(
            profile.control_point_uuid,
            Properties.WRITE,
            label=f"{self.key} {profile.name} control point",
            write=self._writer(self._on_command),
        )
        capabilities = SimCharacteristic(
            profile.capabilities_uuid,
            Properties.READ,
            label=f"{self.key} {profile.name} capabilities",
            read=self._capabilities,
        )
        characteristics = [control, self._state_char, self._telemetry_char, capabilities]
        return [service(profile.service_uuid, characteristics)]

    def _service_uuids(self) -> list[str]:
        return [self._profile.service_uuid]

    def _capabilities(self) -> bytes:
        capabilities = self.core.capabilities
        return b"" if capabilities is None else bytes(capabilities)

    def _on_command(self, data: bytes, now: float) -> None:
        try:
            self.core.command(data, now)
        except op.CommandRejectedError as exc:
            raise AttRefusal(int(exc.att_error), str(exc)) from exc

    # --- firmware hooks ------------------------------------------------------------------

    async def _notify_changes(self, now: float) -> None:
        key = self.core.change_key()
        if key != self._sent_key:
            self._sent_key = key
            await self._notify(self._state_char, bytes(self.core.state_frame(now)))
