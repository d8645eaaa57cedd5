"""A simulated BLE heating mat (service 0xFF01): auth first, then level and timer packets.

The protocol is :mod:`drivers.codecs.heating_mat` (docs/protocols.md): the host writes
the init packet to 0xFF10, then value packets ``[v, 0xFF-v, v, 0xFF-v]`` to 0xFF20 (level
0..7, or 0x12 = "report your state") and 0xFF30 (timer hours 0..12). The mat reports level
and timer on 0xFF20/0xFF30 (read, notify) as ``[0xFF-v, v, 0xFF-v, v]``.

Not published, so chosen here and documented in docs/simulators.md: before a correct init
packet on the current link, writes to 0xFF20/0xFF30 are refused with ATT error 0x08
(Insufficient Authorization); a wrong init packet is refused the same way; a packet whose
complement bytes do not match, or a level/timer out of range, is refused with 0x13 (Value
Not Allowed). Authorisation ends with the link.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bumble import gatt

from drivers.codecs import heating_mat as hm
from drivers.codecs.errors import DecodeError
from drivers.core.clock import Clock
from simulators.catalog import DeviceFamily, DeviceSpec
from simulators.devices.base import SimulatedDevice
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.mat_core import MatCore
from simulators.devices.state import DeviceState
from simulators.physics import ThermalParams

__all__ = ["ATT_INSUFFICIENT_AUTHORIZATION", "ATT_VALUE_NOT_ALLOWED", "SimHeatingMat"]

logger = logging.getLogger(__name__)

# ATT "Insufficient Authorization": a command before the init packet.
ATT_INSUFFICIENT_AUTHORIZATION = 0x08
# ATT "Value Not Allowed": a packet that is not [v, 0xFF-v, v, 0xFF-v] or is out of range.
ATT_VALUE_NOT_ALLOWED = 0x13


class SimHeatingMat(SimulatedDevice):
    """A level/timer heating mat on the virtual radio."""

    family = DeviceFamily.HEATING_MAT
    described_as = "a heating mat"

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        params: ThermalParams | None = None,
        init_packet: bytes = hm.DEFAULT_INIT_PACKET,
    ) -> None:
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.core = MatCore(faults=self.faults, now=clock.now(), params=params)
        self.init_packet = init_packet
        self.authorized = False
        self._battery = battery_pct
        self._sent: tuple[int, int] | None = None
        self._report_requested = False
        self._level_char = SimCharacteristic(
            hm.LEVEL_UUID,
            Properties.READ | Properties.WRITE | Properties.NOTIFY,
            label=f"{self.key} level",
            read=self._reader(lambda _now: bytes(hm.MatReport.of(self.core.level))),
            write=self._writer(self._on_level),
        )
        self._timer_char = SimCharacteristic(
            hm.TIMER_UUID,
            Properties.READ | Properties.WRITE | Properties.NOTIFY,
            label=f"{self.key} timer",
            read=self._reader(
                lambda now: bytes(hm.MatReport.of(self.core.timer_report_hours(now)))
            ),
            write=self._writer(self._on_timer),
        )

    # --- test-side API -------------------------------------------------------------------

    def skin_c(self) -> float:
        """The true skin-side temperature now (what a probe under the mat reads)."""
        self._advance(self.clock.now())
        return self.core.thermal.skin_c

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        auth = SimCharacteristic(
            hm.AUTH_UUID,
            Properties.WRITE,
            label=f"{self.key} auth",
            write=self._writer(self._on_auth),
        )
        return [service(hm.SERVICE_UUID, [auth, self._level_char, self._timer_char])]

    def _service_uuids(self) -> list[str]:
        return [hm.SERVICE_UUID]

    def _on_auth(self, data: bytes, now: float) -> None:
        del now
        if data != self.init_packet:
            self.authorized = False
            raise AttRefusal(ATT_INSUFFICIENT_AUTHORIZATION, f"init packet {data.hex()} refused")
        self.authorized = True
        logger.debug("%s: authorised", self.key)

    def _require_auth(self) -> None:
        if not self.authorized:
            raise AttRefusal(ATT_INSUFFICIENT_AUTHORIZATION, "write the init packet first")

    def _on_level(self, data: bytes, now: float) -> None:
        self._require_auth()
        try:
            command = hm.decode_level_write(data)
        except DecodeError as exc:
            raise AttRefusal(ATT_VALUE_NOT_ALLOWED, str(exc)) from exc
        if isinstance(command, hm.StatusRequest):
            self._report_requested = True
            return
        self.core.set_level(command.level, now)

    def _on_timer(self, data: bytes, now: float) -> None:
        self._require_auth()
        try:
            command = hm.TimerCommand.from_bytes(data)
        except DecodeError as exc:
            raise AttRefusal(ATT_VALUE_NOT_ALLOWED, str(exc)) from exc
        self.core.set_timer(command.hours, now)

    # --- firmware hooks ------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        self.core.advance(now)

    def _busy(self) -> bool:
        return self.core.physical_drive().mode.value != "off"

    def _next_deadline(self) -> float | None:
        return self.core.next_deadline()

    async def _periodic(self, now: float) -> None:
        return None

    async def _notify_changes(self, now: float) -> None:
        key = (self.core.level, self.core.timer_report_hours(now))
        if key != self._sent or self._report_requested:
            self._sent = key
            self._report_requested = False
            await self._notify(self._level_char, bytes(hm.MatReport.of(key[0])))
            await self._notify(self._timer_char, bytes(hm.MatReport.of(key[1])))

    def _link_lost(self, now: float) -> None:
        del now
        self.authorized = False

    def _set_battery(self, percent: float) -> None:
        self._battery = percent

    def _battery_pct(self) -> float:
        return self._battery

    def _drain(self, now: float) -> None:
        self._battery = 0.0
        self.core.power_cut(now)

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        core = self.core
        celsius = hm.LEVEL_CELSIUS.get(core.level)
        remaining = None if core.timer_deadline is None else max(0.0, core.timer_deadline - now)
        return replace(
            base,
            output_on=core.level > 0,
            energised=core.physical_drive().mode.value != "off",
            mode="heat" if core.level > 0 else "off",
            setpoint_c=None if celsius is None else float(celsius),
            plate_c=core.thermal.plate_c,
            skin_c=core.thermal.skin_c,
            level=core.level,
            timer_remaining_s=remaining,
        )
