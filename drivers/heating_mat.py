"""The generic BLE heating mat (levels 1-7 = 36-42 °C), safety class host-timed.

Protocol: :mod:`drivers.codecs.heating_mat` (docs/protocols.md). On every connect the
driver writes the auth/init packet first (a refusal is :class:`~drivers.core.base.AuthFailedError`),
reads level and timer, and sets the level to 0 (OFF first). A level-only mat has no lease and
reports no temperature: ``heat(celsius)`` takes the hottest level not above ``celsius``, and sets
the mat's own timer to 1 hour (its shortest) before the level, as a backstop if relieve goes
away. The status is polled every 2 s of clock time while heating (link loss and a mat that
stays on are noticed within the S2 watchdog) and every 30 s when idle, the keep-alive of the
vendor integrations.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, Unpack

from drivers.codecs import heating_mat as hm
from drivers.core.base import (
    AuthFailedError,
    DeviceRefusedError,
    OutOfRangeError,
    ThermalCaps,
    ThermalState,
)
from drivers.core.device import DriverOptions
from drivers.core.guards import check_heat_limit
from drivers.core.host_timed import HostTimedDevice
from drivers.core.polling import Reply, request

__all__ = ["BACKSTOP_TIMER_HOURS", "BUSY_POLL_S", "IDLE_POLL_S", "HeatingMat"]

logger = logging.getLogger(__name__)

BACKSTOP_TIMER_HOURS: Final = 1
"""The mat's own off-timer while heating: its shortest setting (H4 in docs/safety.md)."""
_SECONDS_PER_HOUR = 3600.0
# Clock seconds between status requests while heating: within the 5 s S2 watchdog even when
# one answer is lost.
BUSY_POLL_S = 2.0
# Clock seconds between status requests while idle: the vendor integrations' keep-alive.
IDLE_POLL_S = hm.STATUS_POLL_INTERVAL_S
_LEVELS: Final = tuple(float(hm.LEVEL_CELSIUS[level]) for level in range(1, hm.MAX_LEVEL + 1))


def _decode_level(data: bytes) -> tuple[int, int | None]:
    """A level report: the level and its temperature in °C (None for level 0)."""
    level = hm.MatReport.from_bytes(data).value
    return level, hm.celsius_for_level(level)


class HeatingMat(HostTimedDevice[ThermalState]):
    """A level/timer heating mat."""

    DRIVER = "heating-mat"
    KIND = "thermal"

    def __init__(
        self,
        address: str,
        *,
        init_packet: bytes = hm.DEFAULT_INIT_PACKET,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, ThermalState(), busy_s=BUSY_POLL_S, idle_s=IDLE_POLL_S, **options)
        self._init = hm.InitPacket(bytes(init_packet))
        self._report: Reply[int] = Reply()
        self.timer_hours: int | None = None
        """The mat's timer as it last reported it (whole hours left, 0 = none)."""

    @property
    def caps(self) -> ThermalCaps:
        """Seven heat levels (36-42 °C); no cooling, no plate sensor, a 1-hour backstop timer."""
        return ThermalCaps(
            can_heat=True,
            can_cool=False,
            min_celsius=_LEVELS[0],
            max_celsius=_LEVELS[-1],
            levels=_LEVELS,
            has_plate_sensor=False,
            timer_s=BACKSTOP_TIMER_HOURS * _SECONDS_PER_HOUR,
        )

    @staticmethod
    def level_for(celsius: float) -> int:
        """The hottest level not above ``celsius``; OutOfRangeError below the lowest level."""
        levels = [level for level, value in hm.LEVEL_CELSIUS.items() if value <= celsius]
        if not levels:
            raise OutOfRangeError(
                f"The mat's lowest level is {_LEVELS[0]:g} °C; ask for {_LEVELS[0]:g} °C or more."
            )
        return max(levels)

    async def heat(self, celsius: float) -> None:
        """Heat at the hottest level not above ``celsius``, with the 1-hour backstop timer."""
        check_heat_limit(celsius, address=self._info.address)
        level = self.level_for(celsius)
        self._require_ready()
        self._stopped_on_purpose = False
        # The backstop first: the mat is never on without its own timer running.
        await self._write(hm.TIMER_UUID, bytes(hm.TimerCommand(BACKSTOP_TIMER_HOURS)), "timer")
        await self._write(hm.LEVEL_UUID, bytes(hm.LevelCommand(level)), f"level {level}")
        self._set(
            replace(
                self._state,
                mode="heat",
                level=level,
                setpoint_celsius=float(hm.LEVEL_CELSIUS[level]),
            )
        )
        await self._read_back()  # the level the mat now runs at

    async def cool(self, celsius: float) -> None:
        """A heating mat cannot cool."""
        raise OutOfRangeError(
            f"{self.label} is a heating mat and cannot cool to {celsius:g} °C; use a cold pad.",
            address=self._info.address,
        )

    async def off(self) -> None:
        """Level 0 and timer off. Idempotent; without a link it raises: the mat would stay on."""
        if self._nothing_to_switch_off(
            f"{self.label} cannot be switched off: the link is down and the mat keeps "
            "heating until its own timer ends; switch it off at the mat."
        ):
            return
        await self._write(hm.LEVEL_UUID, bytes(hm.LevelCommand.off()), "level 0 (OFF)")
        self._switched_off()
        await self._write(hm.TIMER_UUID, bytes(hm.TimerCommand(0)), "timer off")
        await self._read_back()  # a mat that still heats is stuck

    async def request_status(self) -> int:
        """Ask the mat to report level and timer; returns the level (also in :attr:`state`)."""
        return await request(
            self._report,
            lambda: self._write(hm.LEVEL_UUID, bytes(hm.StatusRequest()), "status request"),
            what="status request",
            label=self.label,
            address=self._info.address,
            withdrawn=self._poller.call_withdrawn,
        )

    async def _write(self, uuid: str, data: bytes, what: str) -> None:
        await self._link.write(uuid, data, what=what)

    async def _set_up(self) -> None:
        self._stopped_on_purpose = False  # what happened while away is not ours to judge
        try:
            await self._link.write(hm.AUTH_UUID, bytes(self._init), what="init packet")
        except DeviceRefusedError as exc:
            raise AuthFailedError(
                f"{self.label} refused the init packet {self._init.payload.hex()}: capture your "
                "mat's packet from its vendor app and give it with --init-packet.",
                address=self._info.address,
            ) from exc
        await self._link.subscribe(hm.LEVEL_UUID, self._on_level_report)
        await self._link.subscribe(hm.TIMER_UUID, self._on_timer_report)
        self._on_level_report(await self._link.read(hm.LEVEL_UUID, what="level read"))
        self._on_timer_report(await self._link.read(hm.TIMER_UUID, what="timer read"))
        if self._state.on:
            logger.warning("%s was heating when we connected: switching it OFF first", self.label)
        # OFF first, always (S2 in docs/safety.md).
        await self._write(hm.LEVEL_UUID, bytes(hm.LevelCommand.off()), "level 0 (OFF)")
        await self._write(hm.TIMER_UUID, bytes(hm.TimerCommand(0)), "timer off")
        self._switched_off()
        self._poller.restart()

    def _on_level_report(self, data: bytes) -> None:
        report = self._decode(_decode_level, data, "level report")
        if report is None:
            return
        level, celsius = report
        self._status_arrived(on=level > 0)
        self._set(
            replace(
                self._state,
                mode="heat" if level > 0 else "off",
                level=level,
                setpoint_celsius=None if celsius is None else float(celsius),
                updated_at=self._clock.now(),
                faults=self._faults(),
            )
        )
        self._report.resolve(level)

    def _on_timer_report(self, data: bytes) -> None:
        report = self._decode(hm.MatReport.from_bytes, data, "timer report")
        if report is not None:
            self.timer_hours = report.value

    def _off_state(self) -> ThermalState:
        return replace(super()._off_state(), level=0)

    async def _off_before_disconnect(self) -> None:
        await self.off()
