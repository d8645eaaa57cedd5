"""The generic BLE heating mat (levels 1-7 = 36-42 °C), safety class host-timed.

Protocol: :mod:`drivers.codecs.heating_mat` (PROTOCOLS.md section 3). On every connect the
driver writes the auth/init packet first (a refusal is :class:`~drivers.base.AuthFailedError`),
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

from drivers.base import (
    AuthFailedError,
    DeviceError,
    DeviceRefusedError,
    DeviceTimeoutError,
    NotConnectedError,
    OutOfRangeError,
    SafetyClass,
    ThermalCaps,
    ThermalState,
)
from drivers.codecs import heating_mat as hm
from drivers.codecs.errors import DecodeError
from drivers.device import DriverBase, DriverOptions
from drivers.guards import check_heat_limit
from drivers.polling import Poller, Reply, request
from drivers.watch import NOT_ACKNOWLEDGED, STUCK_OUTPUT

__all__ = ["BACKSTOP_TIMER_HOURS", "BUSY_POLL_S", "IDLE_POLL_S", "HeatingMat"]

logger = logging.getLogger(__name__)

BACKSTOP_TIMER_HOURS: Final = 1
"""The mat's own off-timer while heating: its shortest setting (SAFETY.md H4)."""
_SECONDS_PER_HOUR = 3600.0
# Clock seconds between status requests while heating: within the 5 s S2 watchdog even when
# one answer is lost.
BUSY_POLL_S = 2.0
# Clock seconds between status requests while idle: the vendor integrations' keep-alive.
IDLE_POLL_S = hm.STATUS_POLL_INTERVAL_S
_LEVELS: Final = tuple(float(hm.LEVEL_CELSIUS[level]) for level in range(1, hm.MAX_LEVEL + 1))


class HeatingMat(DriverBase[ThermalState]):
    """A level/timer heating mat."""

    DRIVER = "heating-mat"
    KIND = "thermal"
    SAFETY_CLASS = SafetyClass.HOST_TIMED

    def __init__(
        self,
        address: str,
        *,
        init_packet: bytes = hm.DEFAULT_INIT_PACKET,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, **options)
        self._init = hm.InitPacket(bytes(init_packet))
        self._state = ThermalState()
        self._report: Reply[int] = Reply()
        self._stopped_on_purpose = False
        self.timer_hours: int | None = None
        """The mat's timer as it last reported it (whole hours left, 0 = none)."""
        self._poller = Poller(
            clock=self._clock,
            poll=self._poll,
            busy=lambda: self._state.on,
            on_failure=self._poll_failed,
            label=self.label,
            busy_s=BUSY_POLL_S,
            idle_s=IDLE_POLL_S,
        )

    @property
    def state(self) -> ThermalState:
        """The latest state (replaced, never mutated)."""
        return self._state

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
        self._poller.restart()
        await self.request_status()  # read back the level the mat now runs at

    async def cool(self, celsius: float) -> None:
        """A heating mat cannot cool."""
        raise OutOfRangeError(
            f"{self.label} is a heating mat and cannot cool to {celsius:g} °C; use a cold pad.",
            address=self._info.address,
        )

    async def off(self) -> None:
        """Level 0 and timer off. Idempotent; without a link it raises: the mat would stay on."""
        if not self._link.connected:
            if not self._state.on:
                return
            raise NotConnectedError(
                f"{self.label} cannot be switched off: the link is down and the mat keeps "
                "heating until its own timer ends; switch it off at the mat.",
                address=self._info.address,
            )
        await self._write(hm.LEVEL_UUID, bytes(hm.LevelCommand.off()), "level 0 (OFF)")
        self._stopped_on_purpose = True
        self._set(replace(self._state, mode="off", level=0, setpoint_celsius=None))
        await self._write(hm.TIMER_UUID, bytes(hm.TimerCommand(0)), "timer off")
        self._poller.restart()
        await self.request_status()  # read back: a mat that still heats is stuck

    async def request_status(self) -> int:
        """Ask the mat to report level and timer; returns the level (also in :attr:`state`)."""
        return await request(
            self._report,
            lambda: self._write(hm.LEVEL_UUID, bytes(hm.StatusRequest()), "status request"),
            what="status request",
            label=self.label,
            address=self._info.address,
        )

    async def _write(self, uuid: str, data: bytes, what: str) -> None:
        await self._link.write(uuid, data, what=what)

    async def _poll(self) -> None:
        await self.request_status()

    def _poll_failed(self, exc: DeviceError) -> None:
        if isinstance(exc, DeviceTimeoutError):
            self._set_host_fault(NOT_ACKNOWLEDGED, present=True)

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
        # OFF first, always (SAFETY.md S2).
        await self._write(hm.LEVEL_UUID, bytes(hm.LevelCommand.off()), "level 0 (OFF)")
        await self._write(hm.TIMER_UUID, bytes(hm.TimerCommand(0)), "timer off")
        self._stopped_on_purpose = True
        self._set(replace(self._state, mode="off", level=0, setpoint_celsius=None))
        self._poller.restart()

    def _on_level_report(self, data: bytes) -> None:
        try:
            level = hm.MatReport.from_bytes(data).value
            celsius = hm.celsius_for_level(level)
        except DecodeError as exc:
            logger.warning("%s: unreadable level report %s: %s", self.label, data.hex(" "), exc)
            return
        self._note_telemetry()
        if level > 0 and self._stopped_on_purpose:
            self._host_faults.add(STUCK_OUTPUT)  # heating although level 0 was acknowledged
        self._set(
            replace(
                self._state,
                mode="heat" if level > 0 else "off",
                level=level,
                setpoint_celsius=None if celsius is None else float(celsius),
                updated_at=self._clock.now(),
                faults=frozenset(self._host_faults),
            )
        )
        self._report.resolve(level)

    def _on_timer_report(self, data: bytes) -> None:
        try:
            self.timer_hours = hm.MatReport.from_bytes(data).value
        except DecodeError as exc:
            logger.warning("%s: unreadable timer report %s: %s", self.label, data.hex(" "), exc)

    def _set(self, state: ThermalState) -> None:
        if state != self._state:
            self._state = state
            self._publish(state)

    def _went_up(self) -> None:
        self._set(replace(self._state, connected=True, battery=self._info.battery))

    def _went_down(self) -> None:
        # Host-timed: the mat keeps heating (until its timer) when the link goes.
        self._set(replace(self._state, connected=False))

    def _faults_changed(self) -> None:
        self._set(replace(self._state, faults=frozenset(self._host_faults)))

    def _stop_output(self) -> None:
        self._poller.cancel()

    def _telemetry_expected(self) -> bool:
        return self._state.on

    def _battery_changed(self, percent: int) -> None:
        self._set(replace(self._state, battery=percent))

    async def _off_before_disconnect(self) -> None:
        await self.off()
