"""Theragun Gen-4 massage guns (PRO, Elite, Prime), safety class host-timed.

The published protocol (docs/protocols.md, :mod:`drivers.codecs.theragun`) has a speed
command, a status request answered by a status notification, and a version request. There is
no lease and no device-side cap: the gun keeps running when the host goes away, so relieve times
every run itself and says so. The driver asks for the status every 2 s of clock time while the
gun runs (so a lost link or a gun that does not stop is noticed within the S2 watchdog) and
every 30 s when idle.

Wave rollers are recognised by name but cannot be driven: their level byte is not published.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Final, Unpack

from drivers.codecs import theragun as tg
from drivers.core.base import DeviceError, PercussionCaps, PercussionState
from drivers.core.device import DriverOptions
from drivers.core.guards import check_rpm, check_run_cap_s
from drivers.core.host_timed import HostTimedDevice
from drivers.core.polling import Reply, request

__all__ = ["BUSY_POLL_S", "IDLE_POLL_S", "MIN_RPM", "Theragun"]

logger = logging.getLogger(__name__)

MIN_RPM: Final = 1750
"""Slowest speed relieve commands: Therabody's lowest published speed (1750-2400 ppm)."""
# Clock seconds between status requests while the gun runs: within the 5 s S2 watchdog even
# when one answer is lost.
BUSY_POLL_S = 2.0
# Clock seconds between status requests while idle: a keep-alive.
IDLE_POLL_S = 30.0
# Real seconds to wait for the (optional) version answer while connecting.
VERSION_TIMEOUT_S = 2.0
# The model assumed for a gun whose name is unknown (driver chosen by hand): the one with the
# lowest published top speed, so no command exceeds what any Gen-4 gun takes.
FALLBACK_MODEL: Final = tg.TheragunModel.PRIME


class Theragun(HostTimedDevice[PercussionState]):
    """A Theragun Gen-4 gun on its vendor protocol."""

    DRIVER = "theragun"
    KIND = "percussion"

    def __init__(
        self,
        address: str,
        *,
        model: tg.TheragunModel | None = None,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(
            address, PercussionState(), busy_s=BUSY_POLL_S, idle_s=IDLE_POLL_S, **options
        )
        self._model = model
        self._status: Reply[tg.StatusNotification] = Reply()
        self._version: Reply[tg.VersionNotification] = Reply()

    @property
    def model(self) -> tg.TheragunModel:
        """The model, from the advertised name (or given by hand)."""
        if self._model is not None:
            return self._model
        return tg.model_for_name(self._info.name) or FALLBACK_MODEL

    @property
    def caps(self) -> PercussionCaps:
        """Speed range of the model; no lease, no device-side cap, no timer."""
        return PercussionCaps(min_rpm=MIN_RPM, max_rpm=self._max_rpm())

    def _max_rpm(self) -> int:
        max_rpm = tg.MODELS[self.model].max_rpm
        if max_rpm is None:
            raise DeviceError(
                f"{self.label} is a Theragun {self.model.value}, whose speed command is not "
                "published; relieve cannot drive it: use its own buttons.",
                address=self._info.address,
            )
        return max_rpm

    async def run(self, rpm: int, *, run_cap_s: float | None = None) -> None:
        """Run at ``rpm``. Host-timed: the caller must stop it (``run_cap_s`` is only checked)."""
        check_rpm(rpm, MIN_RPM, self._max_rpm(), label=self.label, address=self._info.address)
        if run_cap_s is not None:
            check_run_cap_s(run_cap_s, address=self._info.address)
        self._require_ready()
        self._stopped_on_purpose = False
        await self._send(tg.SetSpeed.for_model(self.model, rpm), what=f"speed {rpm} rpm")
        self._set(replace(self._state, running=True, target_rpm=rpm))
        await self._read_back()  # what the gun does now

    async def stop(self) -> None:
        """Stop the gun. Idempotent; without a link it raises: the gun would keep running."""
        if self._nothing_to_switch_off(
            f"{self.label} cannot be stopped: the link is down and the gun keeps running "
            "on its own; stop it with its button."
        ):
            return
        await self._send(tg.SetSpeed.stop(), what="stop")
        self._switched_off()
        await self._read_back()  # a gun that still runs is stuck

    async def request_status(self) -> tg.StatusNotification:
        """Ask the gun for its status; the answer also updates :attr:`state`."""
        return await request(
            self._status,
            lambda: self._send(tg.StatusRequest(), what="status request"),
            what="status request",
            label=self.label,
            address=self._info.address,
            withdrawn=self._poller.call_withdrawn,
        )

    async def _send(self, command: tg.TheragunCommand, *, what: str) -> None:
        await self._link.write(
            tg.COMMAND_UUID, bytes(command), what=what, response=command.WITH_RESPONSE
        )

    async def _set_up(self) -> None:
        self._stopped_on_purpose = False  # what happened while away is not ours to judge
        self._max_rpm()  # refuse a Wave roller before anything is sent
        await self._link.subscribe(tg.NOTIFY_UUID, self._on_notification)
        answer = self._version.expect()  # the gun's own version wins over Device Information
        await self._send(tg.VersionRequest(), what="version request")
        try:
            async with asyncio.timeout(VERSION_TIMEOUT_S):
                await answer
        except TimeoutError:
            logger.info("%s did not report its firmware version", self.label)
        status = await self.request_status()
        if status.running:
            logger.warning("%s was running when we connected: stopping it first", self.label)
        # STOP first, always (S2 in docs/safety.md): never resume what ran before the link came up.
        await self._send(tg.SetSpeed.stop(), what="stop")
        self._switched_off()
        self._poller.restart()

    def _on_notification(self, data: bytes) -> None:
        frame = self._decode(tg.decode_notification, data, "notification")
        if frame is None:
            return
        if isinstance(frame, tg.VersionNotification):
            self._info = replace(self._info, firmware=frame.text)
            self._version.resolve(frame)
        elif isinstance(frame, tg.StatusNotification):
            self._on_status(frame)
        else:
            logger.debug("%s: notification type 0x%02X ignored", self.label, frame.frame_type)

    def _on_status(self, status: tg.StatusNotification) -> None:
        self._status_arrived(on=status.running)
        self._set(
            replace(
                self._state,
                running=status.running,
                target_rpm=self._state.target_rpm if status.running else None,
                measured_rpm=status.rpm,
                updated_at=self._clock.now(),
                faults=self._faults(),
            )
        )
        self._status.resolve(status)

    async def _off_before_disconnect(self) -> None:
        await self.stop()
