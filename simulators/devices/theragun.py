"""A simulated Theragun Gen-4 PRO: speed frames in, status/version frames out (0xFFE0).

Only the published protocol (PROTOCOLS.md section 2, :mod:`drivers.codecs.theragun`): set
speed (0 = stop), status request (answered by a status notification on 0xFFE1), version
request (write without response, answered by a version notification). The gun also sends a
status notification whenever running or speed change. There is no lease and no device-side
cap: the real gun is host-timed, and it keeps running when the phone goes away.

How the real gun answers a malformed frame is not published; this simulator answers a Write
Request it cannot parse with ATT error 0x13 (Value Not Allowed) and drops such a Write Command.
"""

from __future__ import annotations

from bumble import gatt

from drivers.clock import Clock
from drivers.codecs import theragun as tg
from drivers.codecs.errors import DecodeError
from simulators.catalog import DeviceFamily, DeviceSpec, SimulatorError
from simulators.devices.base import SimulatedDevice
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.open_percussion import gun_fields
from simulators.devices.percussion_core import GunCore
from simulators.devices.state import DeviceState
from simulators.physics import GunParams

__all__ = ["ATT_VALUE_NOT_ALLOWED", "SimTheragun"]

# ATT "Value Not Allowed": the answer to a frame the simulated gun cannot parse.
ATT_VALUE_NOT_ALLOWED = 0x13


def _version_code(text: str) -> int:
    """``major.minor.patch`` as the gun's version code (major*100 + minor*10 + patch)."""
    parts = [int(p) for p in text.split(".")[:3]] + [0, 0, 0]
    return tg.VersionNotification.from_parts(parts[0], parts[1], parts[2]).code


class SimTheragun(SimulatedDevice):
    """A Theragun PRO (Gen-4) on the virtual radio."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        model: tg.TheragunModel = tg.TheragunModel.PRO,
    ) -> None:
        if spec.family is not DeviceFamily.THERAGUN:
            raise SimulatorError(f"{spec.key} is not a Theragun.")
        max_rpm = tg.MODELS[model].max_rpm
        if max_rpm is None:
            raise SimulatorError(f"The {model.value} has no published speed command to simulate.")
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.model = model
        self.max_rpm = max_rpm
        self.core = GunCore(
            faults=self.faults,
            now=clock.now(),
            capabilities=None,
            params=GunParams(max_speed_ppm=max_rpm),
            battery_pct=battery_pct,
            stop_on_link_loss=False,
        )
        self._version = tg.VersionNotification(_version_code(spec.firmware))
        self._pending: list[bytes] = []
        self._sent: tuple[bool, int] | None = None
        self._notify_char = SimCharacteristic(
            tg.NOTIFY_UUID, Properties.NOTIFY, label=f"{self.key} notify"
        )

    def press(self, force_n: float) -> None:
        """The user presses the gun into a muscle with ``force_n`` newtons (0 = lifted off)."""
        self.core.press(force_n, self.clock.now())
        self._poke()

    def status_frame(self) -> tg.StatusNotification:
        """The status the gun reports now (running, commanded speed in rpm)."""
        return tg.StatusNotification(running=self.core.running, rpm=self.core.target_ppm)

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        command = SimCharacteristic(
            tg.COMMAND_UUID,
            Properties.WRITE | Properties.WRITE_WITHOUT_RESPONSE,
            label=f"{self.key} command",
            write=self._writer(self._on_command),
        )
        return [service(tg.SERVICE_UUID, [self._notify_char, command])]

    def _service_uuids(self) -> list[str]:
        return [tg.SERVICE_UUID]

    def _on_command(self, data: bytes, now: float) -> None:
        try:
            command = tg.decode_command(data)
        except DecodeError as exc:
            raise AttRefusal(ATT_VALUE_NOT_ALLOWED, str(exc)) from exc
        if isinstance(command, tg.SetSpeed):
            if command.rpm > self.max_rpm:
                raise AttRefusal(ATT_VALUE_NOT_ALLOWED, f"{command.rpm} rpm > {self.max_rpm}")
            self.core.set_speed(command.rpm, now)
        elif isinstance(command, tg.StatusRequest):
            self.core.advance(now)
            self._pending.append(bytes(self.status_frame()))
        else:
            self._pending.append(bytes(self._version))

    # --- firmware hooks ------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        self.core.advance(now)

    def _busy(self) -> bool:
        return self.core.running or self.core.motor.speed_ppm > 0

    def _next_deadline(self) -> float | None:
        return self.core.next_deadline()

    async def _periodic(self, now: float) -> None:
        return None

    async def _notify_changes(self, now: float) -> None:
        key = (self.core.running, self.core.target_ppm)
        if key != self._sent:
            if self._sent is not None:
                self._pending.append(bytes(self.status_frame()))
            self._sent = key
        pending, self._pending = self._pending, []
        for frame in pending:
            await self._notify(self._notify_char, frame)

    def _link_lost(self, now: float) -> None:
        self.core.link_lost(now)

    def _set_battery(self, percent: float) -> None:
        self.core.battery_pct = percent

    def _battery_pct(self) -> float:
        return self.core.battery_pct

    def _drain(self, now: float) -> None:
        self.core.drain(now)

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        return gun_fields(base, self.core, now, flags=())
