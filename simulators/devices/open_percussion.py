"""The open-profile massage gun: the GATT binding of :class:`GunCore`.

Percussion service (docs/gatt-profile.md): Control Point (write with response), State (read,
notify on every change of running, target speed, cap or flags), Measurement (read, notify
every clock second while the motor turns), Capabilities (read).
"""

from __future__ import annotations

from drivers.codecs import open_profile as op
from drivers.core.clock import Clock
from simulators.catalog import DeviceFamily, DeviceSpec
from simulators.devices.firmware import flag_names
from simulators.devices.gun_device import GunDevice
from simulators.devices.open_device import OpenService, SimOpenDevice
from simulators.devices.percussion_core import GunCore
from simulators.physics import GunParams

__all__ = ["GUN_MAX_PPM", "GUN_MAX_RUN_CAP_S", "GUN_MIN_PPM", "OpenMassageGun"]

# Speed range of the simulated gun: 1200 ppm (slowest setting of common guns) to 3200 ppm.
GUN_MIN_PPM = 1200
GUN_MAX_PPM = 3200
# Longest device-side run cap the gun accepts: 20 minutes (above M1 in docs/safety.md's 18).
GUN_MAX_RUN_CAP_S = 1200

PERCUSSION_SERVICE = OpenService(
    name="percussion",
    service_uuid=op.PERCUSSION_SERVICE_UUID,
    control_point_uuid=op.PERCUSSION_CONTROL_POINT_UUID,
    state_uuid=op.PERCUSSION_STATE_UUID,
    telemetry_uuid=op.PERCUSSION_MEASUREMENT_UUID,
    telemetry_label="percussion measurement",
    capabilities_uuid=op.PERCUSSION_CAPABILITIES_UUID,
)


class OpenMassageGun(SimOpenDevice[GunCore], GunDevice):
    """A massage gun speaking the relieve open profile."""

    family = DeviceFamily.OPEN_PERCUSSION
    described_as = "an open-profile massage gun"

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        params: GunParams | None = None,
    ) -> None:
        capabilities = op.PercussionCapabilities(
            min_ppm=GUN_MIN_PPM,
            max_ppm=GUN_MAX_PPM,
            max_run_cap_s=GUN_MAX_RUN_CAP_S,
            features=op.PercussionFeatures.LOAD_SENSING,
        )
        super().__init__(
            spec,
            clock=clock,
            battery_pct=battery_pct,
            profile=PERCUSSION_SERVICE,
            core=lambda faults: GunCore(
                faults=faults,
                now=clock.now(),
                capabilities=capabilities,
                params=params or GunParams(max_speed_ppm=GUN_MAX_PPM),
                battery_pct=battery_pct,
            ),
        )
        self._moving = False

    def _telemetry(self, now: float) -> bytes:
        return bytes(self.core.measurement_frame())

    async def _periodic(self, now: float) -> None:
        moving = self.core.moving
        if moving or self._moving:
            await self._notify(self._telemetry_char, self._telemetry(now))
        self._moving = moving

    def _reported_flags(self) -> tuple[str, ...]:
        return flag_names(self.core.flags)
