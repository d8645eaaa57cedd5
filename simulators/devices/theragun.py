"""A simulated Theragun Gen-4 PRO: speed frames in, status/version frames out (0xFFE0).

Only the published protocol (docs/protocols.md, :mod:`drivers.codecs.theragun`): set
speed (0 = stop), status request (answered by a status notification on 0xFFE1), version
request (write without response, answered by a version notification). The gun also sends a
status notification whenever running or speed change. There is no lease and no device-side
cap: the real gun is host-timed, and it keeps running when the phone goes away.

How the real gun answers a malformed frame is not published; this simulator answers a Write
Request it cannot parse with ATT error 0x13 (Value Not Allowed) and drops such a Write Command.
"""

from __future__ import annotations

from bumble import gatt

from drivers.codecs import theragun as tg
from drivers.codecs.errors import DecodeError
from drivers.core.clock import Clock
from simulators.catalog import DeviceFamily, DeviceSpec, SimulatorError
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.gun_device import GunDevice
from simulators.devices.percussion_core import GunCore
from simulators.physics import GunParams

__all__ = ["ATT_VALUE_NOT_ALLOWED", "SimTheragun"]

# ATT "Value Not Allowed": the answer to a frame the simulated gun cannot parse.
ATT_VALUE_NOT_ALLOWED = 0x13


def _version_code(text: str) -> int:
    """``major.minor.patch`` as the gun's version code (major*100 + minor*10 + patch)."""
    parts = [int(p) for p in text.split(".")[:3]] + [0, 0, 0]
    return tg.VersionNotification.from_parts(parts[0], parts[1], parts[2]).code


class SimTheragun(GunDevice):
    """A Theragun PRO (Gen-4) on the virtual radio."""

    family = DeviceFamily.THERAGUN
    described_as = "a Theragun"

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        model: tg.TheragunModel = tg.TheragunModel.PRO,
    ) -> None:
        self._check_family(spec)  # before the model, as the spec is the first thing to fit
        max_rpm = tg.MODELS[model].max_rpm
        if max_rpm is None:
            raise SimulatorError(f"The {model.value} has no published speed command to simulate.")
        super().__init__(
            spec,
            clock=clock,
            battery_pct=battery_pct,
            core=lambda faults: GunCore(
                faults=faults,
                now=clock.now(),
                capabilities=None,
                params=GunParams(max_speed_ppm=max_rpm),
                battery_pct=battery_pct,
                stop_on_link_loss=False,
            ),
        )
        self.model = model
        self.max_rpm = max_rpm
        self._version = tg.VersionNotification(_version_code(spec.firmware))
        self._pending: list[bytes] = []
        self._sent: tuple[bool, int] | None = None
        self._notify_char = SimCharacteristic(
            tg.NOTIFY_UUID, Properties.NOTIFY, label=f"{self.key} notify"
        )

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
