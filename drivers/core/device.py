"""What every device class shares: connecting, reconnecting, callbacks, background tasks.

:class:`DriverBase` holds a :class:`~drivers.core.connection.Connection` and implements the life
cycle of :mod:`drivers.core.base`:

* :meth:`~DriverBase.connect` -- connect (retrying), read Device Information and Battery, then
  the family's set-up, which reads the device's state and sends OFF first (S2 in docs/safety.md);
* an unexpected link loss publishes the disconnected state at once (``connected`` False, so
  the session engine's supervisor sees it), stops lease renewals and polls, and reconnects
  with back-off; a reconnect runs the same set-up, so the output is OFF again and no step is
  ever resumed silently;
* :meth:`~DriverBase.disconnect` -- OFF (best effort, bounded), then disconnect;
* :meth:`~DriverBase.halt` -- stop every background task without sending anything, which is
  what a hung host looks like to the device (fault drills, tests);
* a telemetry watchdog on the injected clock adds ``telemetry-stall`` to the faults when a
  device that should report goes quiet for :data:`~drivers.core.watch.TELEMETRY_STALL_S`.

Families implement the hooks at the bottom. Therapy timing (leases, polls, the watchdog) runs
on the injected :class:`~drivers.core.clock.Clock`; BLE time-outs and reconnect back-off are real
time.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypedDict, TypeVar

from drivers.codecs import sig_common as sig
from drivers.codecs.errors import DecodeError
from drivers.core.backend import OS_BACKEND, BleBackend
from drivers.core.base import DeviceError, DeviceInfo, NotConnectedError, SafetyClass
from drivers.core.clock import Clock, MonotonicClock, at_least_real
from drivers.core.connection import COMMAND_TIMEOUT_S, AttDescriber, Connection
from drivers.core.tasks import cancel_and_wait
from drivers.core.watch import TELEMETRY_STALL_S, stalled

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice

__all__ = [
    "OFF_TIMEOUT_S",
    "RECONNECT_BACKOFF_S",
    "STALL_CHECK_INTERVAL_S",
    "TASK_STOP_WAIT_S",
    "TELEMETRY_STALL",
    "DriverBase",
    "DriverOptions",
]

logger = logging.getLogger(__name__)

# Real seconds to wait before each reconnect attempt after an unexpected link loss: at once
# (a blip), then backing off; the last value repeats until the device is back.
RECONNECT_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Real seconds disconnect() waits for the OFF it sends first before dropping the link anyway.
OFF_TIMEOUT_S = 5.0
# Real seconds disconnect() and halt() wait for a cancelled background task (a reconnect in the
# middle of a GATT command, the watchdog) to end: one GATT command's time-out. A task that takes
# longer lost its cancellation below; they go on without it rather than wait without limit.
TASK_STOP_WAIT_S = COMMAND_TIMEOUT_S
# Clock seconds between two looks of the telemetry watchdog.
STALL_CHECK_INTERVAL_S = 1.0
# Under a scaled clock (demos at x60) the stall limit is at least this much real time, so
# event-loop and radio jitter are not taken for a stall (drivers.core.clock.at_least_real).
STALL_REAL_FLOOR_S = 0.5

TELEMETRY_STALL = "telemetry-stall"
"""Fault name: a device that should report telemetry has gone quiet."""

StateT = TypeVar("StateT")
_T = TypeVar("_T")
Kind = Literal["thermal", "percussion", "probe"]

_INFORMATION = (
    (sig.MANUFACTURER_NAME_UUID, "manufacturer"),
    (sig.MODEL_NUMBER_UUID, "model"),
    (sig.SERIAL_NUMBER_UUID, "serial"),
    (sig.FIRMWARE_REVISION_UUID, "firmware"),
)


class DriverOptions(TypedDict, total=False):
    """Keyword options every device class takes (see :class:`DriverBase`)."""

    name: str | None
    backend: BleBackend
    clock: Clock | None
    ble_device: BLEDevice | None
    command_timeout_s: float
    reconnect: bool


class DriverBase(abc.ABC, Generic[StateT]):
    """One device over bleak: life cycle, callbacks and background tasks."""

    DRIVER: ClassVar[str]
    KIND: ClassVar[Kind]
    SAFETY_CLASS: ClassVar[SafetyClass]

    def __init__(
        self,
        address: str,
        *,
        name: str | None = None,
        backend: BleBackend = OS_BACKEND,
        clock: Clock | None = None,
        ble_device: BLEDevice | None = None,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
        reconnect: bool = True,
        describe_att_error: AttDescriber | None = None,
    ) -> None:
        self._clock: Clock = clock or MonotonicClock()
        # What the shared code says about one device goes to its family's module logger
        # (drivers.open_thermal, drivers.theragun, ...), so a family's messages stay together.
        self._log = logging.getLogger(type(self).__module__)
        extra = {} if describe_att_error is None else {"describe_att_error": describe_att_error}
        self._link = Connection(
            address,
            name=name or (ble_device.name if ble_device is not None else None),
            backend=backend,
            ble_device=ble_device,
            command_timeout_s=command_timeout_s,
            on_lost=self._on_link_lost,
            **extra,
        )
        self._info = DeviceInfo(
            address=self._link.address,
            name=self._link.name,
            kind=self.KIND,
            driver=self.DRIVER,
            safety_class=self.SAFETY_CLASS,
        )
        self._callbacks: list[Callable[[StateT], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_lock = asyncio.Lock()
        self._reconnect_enabled = reconnect
        self._wanted = False  # connected on purpose: reconnect after a link loss
        self._ready = False  # connected and set up (state read, OFF sent): commands may go
        self._reconnect_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._host_faults: set[str] = set()
        self._last_telemetry: float | None = None
        self.reconnects = 0
        """How many times the driver reconnected by itself after a link loss."""

    # --- identity -------------------------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        """Who the device is (model, firmware, battery once connected)."""
        return self._info

    @property
    def connected(self) -> bool:
        """True while the link is up and the device is set up (state read, OFF sent)."""
        return self._ready and self._link.connected

    def _require_ready(self) -> None:
        if not self.connected:
            raise NotConnectedError(
                f"{self.label} is not connected (or is still reconnecting); connect to it, "
                "then try again.",
                address=self._info.address,
            )

    @property
    def clock(self) -> Clock:
        """The clock therapy time is measured on."""
        return self._clock

    @property
    def label(self) -> str:
        """How messages name the device."""
        return self._link.label

    # --- callbacks and tasks ------------------------------------------------------------------

    def register_callback(self, callback: Callable[[StateT], None]) -> Callable[[], None]:
        """Call ``callback`` on every state change; returns the unregister function."""
        self._callbacks.append(callback)

        def unregister() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unregister

    def _publish(self, value: StateT) -> None:
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                logger.exception("a state callback of %s failed", self.label)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.label} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("%s: background task %s failed", self.label, task.get_name(), exc_info=exc)

    # --- life cycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (retrying), read the device's state, and send OFF first if anything is on."""
        async with self._connect_lock:
            if self._link.connected:
                return
            await self._establish()
            self._wanted = True

    async def _establish(self) -> None:
        self._ready = False
        await self._link.open()
        try:
            self._info = replace(self._info, name=self._link.name)
            await self._read_information()
            await self._set_up()
        except BaseException:
            await self._link.close()
            self._went_down()
            raise
        self._last_telemetry = self._clock.now()
        self._ready = True
        self._went_up()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = self._spawn(self._watch_telemetry(), "telemetry watchdog")

    async def disconnect(self) -> None:
        """Turn outputs OFF (best effort, bounded) and disconnect.

        Every wait is bounded (a reconnect in progress, the OFF, the background tasks); if the
        caller is cancelled meanwhile, its ``CancelledError`` propagates.
        """
        self._wanted = False
        reconnecting, self._reconnect_task = self._reconnect_task, None
        if reconnecting is not None:
            await self._end_tasks([reconnecting], "reconnect")
        if self._link.connected:
            try:
                async with asyncio.timeout(OFF_TIMEOUT_S):
                    await self._off_before_disconnect()
            except (DeviceError, TimeoutError) as exc:
                logger.warning(
                    "%s: OFF before disconnecting was not confirmed: %s", self.label, exc
                )
        await self.halt()
        self._ready = False
        await self._link.close()
        self._went_down()

    async def halt(self) -> None:
        """Stop every background task (lease renewal, polls, reconnection) sending nothing.

        To the device this looks like a host that hung: a lease device turns its output OFF
        when the lease runs out; a host-timed one keeps running. Use it for fault drills.
        """
        self._stop_output()
        await self._end_tasks(self._tasks, "background task")
        self._watchdog = None
        self._reconnect_task = None

    async def _end_tasks(self, tasks: Iterable[asyncio.Task[None]], what: str) -> None:
        """Cancel ``tasks`` and wait for them at most :data:`TASK_STOP_WAIT_S`.

        The caller's own cancellation propagates. A task still running after the wait lost its
        cancellation below; it stays held in ``_tasks`` and ends on its own (a reconnect sees
        ``_wanted`` False and drops the link it made).
        """
        still_running = await cancel_and_wait(list(tasks), within_s=TASK_STOP_WAIT_S)
        for task in still_running:
            logger.warning(
                "%s: %s %s still running %.1f s after it was cancelled; going on without it",
                self.label,
                what,
                task.get_name(),
                TASK_STOP_WAIT_S,
            )

    def _on_link_lost(self) -> None:
        """The link dropped without being asked to: publish it, stop renewals, reconnect."""
        self._ready = False
        self._stop_output()
        self._went_down()
        if not (self._wanted and self._reconnect_enabled):
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            return
        self._reconnect_task = self._spawn(self._reconnect(), "reconnect")

    async def _reconnect(self) -> None:
        for attempt in itertools.count(1):
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S)) - 1])
            if not self._wanted:
                return
            try:
                async with self._connect_lock:
                    if not self._wanted or self._link.connected:
                        return
                    self._link.forget_device()
                    await self._establish()
                    if not self._wanted:  # disconnect() gave up waiting for this attempt
                        await self._drop_unwanted_link()
                        return
            except DeviceError as exc:
                logger.warning("%s: reconnect attempt %d failed: %s", self.label, attempt, exc)
                continue
            except Exception:  # keep trying: a reconnect is how the output gets its OFF
                logger.exception(
                    "%s: reconnect attempt %d failed unexpectedly", self.label, attempt
                )
                continue
            self.reconnects += 1
            logger.info("%s: reconnected (attempt %d); the output is OFF", self.label, attempt)
            self._reconnect_task = None
            return

    async def _drop_unwanted_link(self) -> None:
        """A reconnect finished after disconnect() went on without it: disconnect again."""
        logger.info("%s: reconnected after disconnect(); disconnecting again", self.label)
        self._ready = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await self._link.close()
        self._went_down()

    # --- Device Information, Battery, telemetry watchdog --------------------------------------

    async def _read_information(self) -> None:
        texts: dict[str, str | None] = {}
        for uuid, field in _INFORMATION:
            if not self._link.has(uuid):
                continue
            try:
                raw = await self._link.read(uuid, what=f"{field} read")
                texts[field] = sig.DeviceInfoString.from_bytes(raw).text or None
            except (DeviceError, DecodeError) as exc:
                logger.debug("%s: no %s: %s", self.label, field, exc)
        self._info = replace(
            self._info,
            manufacturer=texts.get("manufacturer"),
            model=texts.get("model"),
            serial=texts.get("serial"),
            firmware=texts.get("firmware") or self._info.firmware,
        )
        if self._link.has(sig.BATTERY_LEVEL_UUID):
            try:
                self._on_battery_frame(
                    await self._link.read(sig.BATTERY_LEVEL_UUID, what="battery")
                )
                if self._link.can_notify(sig.BATTERY_LEVEL_UUID):
                    await self._link.subscribe(sig.BATTERY_LEVEL_UUID, self._on_battery_frame)
            except DeviceError as exc:
                logger.debug("%s: battery level unavailable: %s", self.label, exc)

    def _on_battery_frame(self, data: bytes) -> None:
        try:
            percent = sig.BatteryLevel.from_bytes(data).percent
        except DecodeError as exc:
            logger.warning("%s: bad battery level %s: %s", self.label, data.hex(" "), exc)
            return
        if percent != self._info.battery:
            self._info = replace(self._info, battery=percent)
            self._battery_changed(percent)

    def _decode(self, decode: Callable[[bytes], _T], data: bytes, what: str) -> _T | None:
        """``decode(data)``; None (and a warning) when the device sent something unreadable."""
        try:
            return decode(data)
        except DecodeError as exc:
            self._log.warning("%s: unreadable %s %s: %s", self.label, what, data.hex(" "), exc)
            return None

    def _note_telemetry(self) -> None:
        """Telemetry arrived now."""
        self._last_telemetry = self._clock.now()
        if TELEMETRY_STALL in self._host_faults:
            self._set_host_fault(TELEMETRY_STALL, present=False)

    def _set_host_fault(self, name: str, *, present: bool) -> None:
        """Add or remove a fault the host detected; republishes the state when it changes."""
        if present == (name in self._host_faults):
            return
        if present:
            logger.warning("%s: %s", self.label, name)
            self._host_faults.add(name)
        else:
            self._host_faults.discard(name)
        self._faults_changed()

    def clear_host_faults(self) -> None:
        """Forget the faults the host detected (stuck output, stall, unacknowledged renewal)."""
        if self._host_faults:
            self._host_faults.clear()
            self._faults_changed()

    async def _watch_telemetry(self) -> None:
        limit_s = at_least_real(self._clock, TELEMETRY_STALL_S, STALL_REAL_FLOOR_S)
        expected_since: float | None = None
        while True:
            await self._clock.sleep(STALL_CHECK_INTERVAL_S)
            now = self._clock.now()
            if not (self._link.connected and self._telemetry_expected()):
                expected_since = None
                continue
            if expected_since is None:
                expected_since = now
            last = max(self._last_telemetry or expected_since, expected_since)
            if stalled(last, now, limit_s):
                self._set_host_fault(TELEMETRY_STALL, present=True)

    # --- what each family provides ------------------------------------------------------------

    @abc.abstractmethod
    async def _set_up(self) -> None:
        """After (re)connecting: capabilities, subscriptions, read the state, OFF first."""

    @abc.abstractmethod
    def _went_up(self) -> None:
        """Publish the connected state."""

    @abc.abstractmethod
    def _went_down(self) -> None:
        """Publish the disconnected state (``connected`` False)."""

    @abc.abstractmethod
    def _faults_changed(self) -> None:
        """Republish the state with the current host-detected faults."""

    async def _off_before_disconnect(self) -> None:
        """Send OFF before an orderly disconnect (outputs only)."""
        return

    def _stop_output(self) -> None:
        """Stop renewals and polls at once (from synchronous code)."""
        return

    def _telemetry_expected(self) -> bool:
        """Whether the device should be sending telemetry right now."""
        return False

    def _battery_changed(self, percent: int) -> None:
        """The battery level changed (``info.battery`` is already updated)."""
        del percent
