"""The open-profile massage gun: the GATT binding of :class:`GunCore`.

Percussion service (docs/gatt-profile.md): Control Point (write with response), State (read,
notify on every change of running, target speed, cap or flags), Measurement (read, notify
every clock second while the motor turns), Capabilities (read).
"""

from __future__ import annotations

from dataclasses import replace

from bumble import gatt

from drivers.clock import Clock
from drivers.codecs import open_profile as op
from simulators.catalog import DeviceFamily, DeviceSpec, SimulatorError
from simulators.devices.base import SimulatedDevice, lease_floor_for
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.percussion_core import GunCore
from simulators.devices.state import DeviceState
from simulators.devices.thermal_core import flag_names
from simulators.physics import GunParams

__all__ = ["GUN_MAX_PPM", "GUN_MAX_RUN_CAP_S", "GUN_MIN_PPM", "OpenMassageGun"]

# Speed range of the simulated gun: 1200 ppm (slowest setting of common guns) to 3200 ppm.
GUN_MIN_PPM = 1200
GUN_MAX_PPM = 3200
# Longest device-side run cap the gun accepts: 20 minutes (above SAFETY.md M1's 18).
GUN_MAX_RUN_CAP_S = 1200


class OpenMassageGun(SimulatedDevice):
    """A massage gun speaking the relieve open profile."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        params: GunParams | None = None,
    ) -> None:
        if spec.family is not DeviceFamily.OPEN_PERCUSSION:
            raise SimulatorError(f"{spec.key} is not an open-profile massage gun.")
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.core = GunCore(
            faults=self.faults,
            now=clock.now(),
            capabilities=op.PercussionCapabilities(
                min_ppm=GUN_MIN_PPM,
                max_ppm=GUN_MAX_PPM,
                max_run_cap_s=GUN_MAX_RUN_CAP_S,
                features=op.PercussionFeatures.LOAD_SENSING,
            ),
            params=params or GunParams(max_speed_ppm=GUN_MAX_PPM),
            battery_pct=battery_pct,
        )
        self.core.lease_floor_s = lease_floor_for(clock)
        self._sent_key: tuple[bool, int, int, int] | None = None
        self._moving = False
        self._state_char = SimCharacteristic(
            op.PERCUSSION_STATE_UUID,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} percussion state",
            read=self._reader(lambda now: bytes(self.core.state_frame(now))),
        )
        self._measurement_char = SimCharacteristic(
            op.PERCUSSION_MEASUREMENT_UUID,
            Properties.READ | Properties.NOTIFY,
            label=f"{self.key} percussion measurement",
            read=self._reader(lambda _now: bytes(self.core.measurement_frame())),
        )

    def press(self, force_n: float) -> None:
        """The user presses the gun into a muscle with ``force_n`` newtons (0 = lifted off)."""
        self.core.press(force_n, self.clock.now())
        self._poke()

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        control = SimCharacteristic(
            op.PERCUSSION_CONTROL_POINT_UUID,
            Properties.WRITE,
            label=f"{self.key} percussion control point",
            write=self._writer(self._on_command),
        )
        capabilities = SimCharacteristic(
            op.PERCUSSION_CAPABILITIES_UUID,
            Properties.READ,
            label=f"{self.key} percussion capabilities",
            read=lambda: bytes(self.core.capabilities) if self.core.capabilities else b"",
        )
        characteristics = [control, self._state_char, self._measurement_char, capabilities]
        return [service(op.PERCUSSION_SERVICE_UUID, characteristics)]

    def _service_uuids(self) -> list[str]:
        return [op.PERCUSSION_SERVICE_UUID]

    def _on_command(self, data: bytes, now: float) -> None:
        try:
            self.core.command(data, now)
        except op.CommandRejectedError as exc:
            raise AttRefusal(int(exc.att_error), str(exc)) from exc

    # --- firmware hooks ------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        self.core.advance(now)

    def _busy(self) -> bool:
        return self.core.running or self.core.motor.speed_ppm > 0

    def _next_deadline(self) -> float | None:
        return self.core.next_deadline()

    async def _periodic(self, now: float) -> None:
        moving = self.core.running or self.core.motor.speed_ppm > 0
        if moving or self._moving:
            await self._notify(self._measurement_char, bytes(self.core.measurement_frame()))
        self._moving = moving

    async def _notify_changes(self, now: float) -> None:
        key = self.core.change_key()
        if key != self._sent_key:
            self._sent_key = key
            await self._notify(self._state_char, bytes(self.core.state_frame(now)))

    def _link_lost(self, now: float) -> None:
        self.core.link_lost(now)

    def _set_battery(self, percent: float) -> None:
        self.core.battery_pct = percent

    def _battery_pct(self) -> float:
        return self.core.battery_pct

    def _drain(self, now: float) -> None:
        self.core.drain(now)

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        core = self.core
        return gun_fields(base, core, now, flags=flag_names(core.flags))


def gun_fields(
    base: DeviceState, core: GunCore, now: float, *, flags: tuple[str, ...]
) -> DeviceState:
    """The gun part of a snapshot (shared with the Theragun)."""
    return replace(
        base,
        output_on=core.running,
        energised=core.motor.speed_ppm > 0,
        mode="run" if core.running else "off",
        speed_ppm=core.motor.speed_ppm,
        target_speed_ppm=core.target_ppm,
        force_n=core.force_n,
        run_time_s=core.run_time_s(now) if core.running else None,
        lease_remaining_s=core.lease_remaining_ms(now) / 1000.0
        if core.lease_deadline is not None
        else None,
        flags=flags,
    )
