"""The life of one simulated device on the virtual radio, shared by every device family.

A :class:`SimulatedDevice` owns a bumble virtual controller, host and device on the world's
``LocalLink``; it advertises its name and service UUIDs in the advertising data, serves GATT
(its family's services plus Battery 0x180F and Device Information 0x180A), and runs one task
that steps the device's firmware core on the injected :class:`~drivers.core.clock.Clock`, sends
telemetry every :data:`TICK_S` clock seconds and state notifications on every change, and
carries out the scheduled faults (link drops, refusing connections, notification loss and
delay, refused or unanswered writes, a dying battery). Families implement the hooks of
:class:`~.hooks.FamilyHooks`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from bumble import gatt, hci
from bumble.device import AdvertisingSet, Connection, Device
from bumble.link import LocalLink

from drivers.codecs import sig_common as sig
from drivers.core.clock import Clock
from simulators.catalog import DeviceSpec, FaultKind, SimulatorError
from simulators.devices.gatt import (
    AttRefusal,
    GuardedServer,
    NoAnswer,
    SimCharacteristic,
    advertising_data,
    make_bumble_device,
)
from simulators.devices.hooks import FamilyHooks
from simulators.devices.sig_services import (
    ADVERTISING_INTERVAL_MS,
    advertising_parameters,
    battery_level_characteristic,
    battery_service,
    device_information_service,
)
from simulators.devices.state import DeviceState, StateCallback, Watchers
from simulators.faults import (
    UNANSWERED_HOLD_S,
    FaultBook,
    FaultSpec,
    ScheduledFault,
    check_supported,
)
from simulators.radio import SimController, SimHost, detach_controller

__all__ = ["ADVERTISING_INTERVAL_MS", "TICK_S", "SimulatedDevice"]

logger = logging.getLogger(__name__)

# Telemetry period in clock seconds: plate temperature / measured speed are notified this
# often (the open profile's TELEMETRY_INTERVAL_S), and physics is stepped at least this often.
TICK_S = 1.0
# HCI reason a peer sees when the device drops the link under a disconnect fault: the link
# supervision time-out, as when a device walks out of range.
LINK_LOSS_REASON = hci.HCI_CONNECTION_TIMEOUT_ERROR
# HCI reason sent when the device refuses a connection it cannot serve (refuse fault).
REFUSED_REASON = hci.HCI_REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_LOW_RESOURCES_ERROR
# Real seconds a stopping device waits for its in-flight HCI commands (they take microseconds
# in process; a remote controller answers within milliseconds).
STOP_GRACE_S = 1.0
# Names (suffixes) of the tasks that issue HCI commands and are let finish on stop.
_RADIO_TASKS = (" firmware", " adv", " refuse")
# ATT error answered by a device without power (cannot normally be seen: no link).
_ATT_UNLIKELY_ERROR = 0x0E


class SimulatedDevice(FamilyHooks):
    """One simulated device: identity from the catalog, firmware from the subclass."""

    def __init__(self, spec: DeviceSpec, *, clock: Clock, battery_pct: float = 100.0) -> None:
        self._check_family(spec)
        if not 0.0 <= battery_pct <= 100.0:
            raise SimulatorError(f"A battery level must be 0..100 %, not {battery_pct}.")
        self.spec = spec
        self.clock = clock
        self.faults = FaultBook()
        self._watchers = Watchers()
        self._tasks: set[asyncio.Task[object]] = set()
        self._connections: list[Connection] = []
        self._controller: SimController | None = None
        self._device: Device | None = None
        self._server: GuardedServer | None = None
        self._advertising_set: AdvertisingSet | None = None
        self._advertising = False
        self._hidden = False
        self._refusing = False
        self._powered = True
        self._started = False
        # Set by a poke; the firmware task clears it before each step. ``_woken`` is the future
        # the sleeping firmware task waits on, resolved by a poke or by its clock deadline.
        self._poked = False
        self._woken: asyncio.Future[None] | None = None
        self._next_tick = math.inf
        self._battery_sent: int | None = None
        self._battery_characteristic: SimCharacteristic | None = None
        # Writes left unanswered (an injected fault) wait on these until the link ends.
        self._unanswered: set[asyncio.Future[None]] = set()

    # --- identity and state ----------------------------------------------------------------

    @classmethod
    def _check_family(cls, spec: DeviceSpec) -> None:
        """Refuse a catalog entry of another family than the class simulates."""
        if spec.family is not cls.family:
            raise SimulatorError(f"{spec.key} is not {cls.described_as}.")

    @property
    def key(self) -> str:
        """The device-type key (``contrast-pad`` ...)."""
        return self.spec.key

    @property
    def name(self) -> str:
        """The advertised name."""
        return self.spec.name

    @property
    def address(self) -> str:
        """The static random address, ``C0:DE:00:00:00:0n``."""
        return self.spec.address

    @property
    def connected(self) -> bool:
        """Whether a central holds a link to the device."""
        return bool(self._connections)

    @property
    def running(self) -> bool:
        """Whether the device is on the air (started and not stopped)."""
        return self._started

    @property
    def state(self) -> DeviceState:
        """A snapshot at the clock's current time."""
        now = self.clock.now()
        self._advance(now)
        return self._snapshot(now)

    def register_callback(self, callback: StateCallback) -> Callable[[], None]:
        """Call ``callback`` with every new snapshot; returns the function that unregisters.

        While anyone watches, the device publishes at least every TICK_S clock seconds.
        """
        unregister = self._watchers.register(callback)
        self._poke()
        return unregister

    def inject(self, fault: FaultSpec) -> ScheduledFault:
        """Schedule ``fault`` (its ``at`` counts from now); FaultNotSupportedError if impossible."""
        if fault.device is not None and fault.device != self.key:
            raise SimulatorError(
                f"That fault is for {fault.device}, not {self.key}; inject it there."
            )
        check_supported(self.key, fault)
        scheduled = self.faults.schedule(fault, self.clock.now())
        logger.info("%s: %s scheduled at clock %.3f", self.key, fault.kind, scheduled.start)
        self._poke()
        return scheduled

    def set_battery(self, percent: float) -> None:
        """Set the battery charge (0 powers the device off at its next step)."""
        if not 0.0 <= percent <= 100.0:
            raise SimulatorError(f"A battery level must be 0..100 %, not {percent}.")
        self._advance(self.clock.now())
        self._set_battery(percent)
        self._poke()

    async def disconnect(self) -> None:
        """Drop every link now, as if the device went out of range for a moment."""
        await self._drop_links(LINK_LOSS_REASON)

    def _snapshot(self, now: float) -> DeviceState:
        active = self.faults.active_kinds(now)
        base = DeviceState(
            key=self.key,
            address=self.address,
            time=now,
            powered=self._powered,
            advertising=self._advertising,
            connected=self.connected,
            battery_pct=self._battery_pct(),
            faults=tuple(sorted(str(k) for k in active)),
        )
        return self._describe(base, now)

    # --- life cycle ------------------------------------------------------------------------

    async def start(self, link: LocalLink) -> None:
        """Put the device on the air on ``link``: power on, advertise, run its firmware."""
        if self._started:
            return
        self._controller = SimController(f"sim-{self.key}", link=link)
        host = SimHost(self._controller)
        self._device, self._server = make_bumble_device(
            name=self.name, address=self.address, host=host, latency=self._latency
        )
        self._battery_characteristic = battery_level_characteristic(
            self.key, lambda: bytes(self._battery_level())
        )
        self._device.add_services(
            [
                *self._build_services(),
                battery_service(self._battery_characteristic),
                device_information_service(self.spec),
            ]
        )
        self._device.on(Device.EVENT_CONNECTION, self._on_connection)
        await self._device.power_on()
        self._started = True
        self._next_tick = self.clock.now()
        if self._powered:
            await self._advertise()
        self._spawn(self._run(), "firmware")
        logger.info("%s (%s) on the air as %r", self.key, self.address, self.name)

    async def stop(self) -> None:
        """Take the device off the air and end its tasks (idempotent).

        Tasks that talk to the controller (the firmware step, advertising, disconnects) are
        let finish their HCI command first: bumble's host cannot take the answer to a command
        whose waiter was cancelled. Tasks waiting on the clock or a peer are cancelled.
        """
        self._started = False
        self._drop_unanswered()
        self._poke()
        radio = [t for t in self._tasks if t.get_name().endswith(_RADIO_TASKS)]
        if radio:
            await asyncio.wait(radio, timeout=STOP_GRACE_S)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._controller is not None:
            detach_controller(self._controller, notify_host=False)
        if self._server is not None:
            self._server.close()
        self._connections.clear()
        self._advertising = False
        self._controller = None
        self._device = None
        self._server = None
        self._advertising_set = None

    def _spawn(self, coroutine: Coroutine[Any, Any, object], what: str) -> None:
        """Run ``coroutine`` as one of the device's tasks (held until done, ended on stop)."""
        task = asyncio.get_running_loop().create_task(coroutine, name=f"sim {self.key} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("%s: task %s failed", self.key, task.get_name(), exc_info=exc)

    def _poke(self) -> None:
        """Wake the firmware task: something changed that it must notify or act on."""
        self._poked = True
        if self._woken is not None:
            _resolve(self._woken)

    def _latency(self) -> float:
        return self.faults.link_latency(self.clock.now())

    # --- the firmware task -----------------------------------------------------------------

    def _ticking(self) -> bool:
        """Whether periodic work is due: someone listens, or the output runs on its own.

        An idle device nobody watches sleeps until its next deadline; physics is stepped by
        elapsed time whenever it wakes, so nothing is lost (and virtual time runs fast).
        """
        return self._powered and (self.connected or len(self._watchers) > 0 or self._busy())

    async def _run(self) -> None:
        while self._started:
            self._poked = False
            now = self.clock.now()
            await self._step(now)
            tick = self._next_tick if self._ticking() else None
            deadlines = [tick, self._next_deadline(), self.faults.next_change(now)]
            # Everything due up to now was just handled: only later deadlines count.
            due = [t for t in deadlines if t is not None and t > now]
            await self._sleep_until(min(due) if due else math.inf)

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep on the clock until ``deadline`` or until poked, whichever comes first."""
        if self._poked:
            return
        # One future, resolved by a poke or by the clock: a device sleeps about once a clock
        # second for hours of virtual time, so this path is kept lean.
        woken = asyncio.get_running_loop().create_future()
        self._woken = woken
        sleeper = None
        if not math.isinf(deadline):
            sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
            sleeper.add_done_callback(lambda _: _resolve(woken))
        try:
            await woken
        finally:
            self._woken = None
            if sleeper is not None:
                sleeper.cancel()

    async def _step(self, now: float) -> None:
        self._advance(now)
        await self._apply_faults(now)
        if self._powered and self._battery_pct() <= 0.0:
            await self._power_off(now)
        if now >= self._next_tick:
            # Ticks sit on one grid for every device, so a virtual clock wakes them together.
            self._next_tick = (math.floor(now / TICK_S) + 1) * TICK_S
            if self._powered:
                await self._periodic(now)
                await self._notify_battery()
        if self._powered:
            await self._notify_changes(now)
        if len(self._watchers):
            self._watchers.publish(self._snapshot(now))

    async def _apply_faults(self, now: float) -> None:
        for fault in self.faults.due_one_shots(now):
            if fault.kind is FaultKind.DISCONNECT:
                logger.info("%s: injected link loss", self.key)
                await self._drop_links(LINK_LOSS_REASON)
            elif fault.kind is FaultKind.BATTERY_DIES:
                logger.info("%s: injected battery death", self.key)
                self._drain(now)
        refusing = self.faults.refusing(now)
        if refusing is not None and not self._refusing:
            self._refusing = True
            self._hidden = refusing.hide
            logger.info("%s: refusing connections (hide=%s)", self.key, refusing.hide)
            if self._hidden:
                await self._stop_advertising()
            await self._drop_links(REFUSED_REASON)
        elif refusing is None and self._refusing:
            self._refusing = False
            logger.info("%s: accepting connections again", self.key)
            if self._hidden:
                self._hidden = False
                if not self.connected:
                    await self._advertise()

    async def _power_off(self, now: float) -> None:
        """The battery is empty: the output stops and the radio goes silent."""
        logger.info("%s: battery empty, powering off", self.key)
        self._powered = False
        self._drain(now)
        self._advertising = False
        if self._controller is not None:
            detach_controller(self._controller, notify_host=True)

    # --- radio -----------------------------------------------------------------------------

    async def _advertise(self) -> None:
        if self._device is None or not self._started or not self._powered or self._hidden:
            return
        if self._advertising_set is None:
            data = advertising_data(self.name, self._service_uuids())
            self._advertising_set = await self._device.create_advertising_set(
                advertising_parameters=advertising_parameters(data),
                advertising_data=data,
                auto_start=True,
            )
        else:
            await self._advertising_set.start()
        self._advertising = True
        self._poke()

    async def _stop_advertising(self) -> None:
        if self._advertising_set is not None and self._advertising:
            await self._advertising_set.stop()
        self._advertising = False
        self._poke()

    async def _drop_links(self, reason: int) -> None:
        for connection in list(self._connections):
            try:
                await connection.disconnect(reason)
            except Exception:  # the link may be gone already
                logger.debug("%s: link already gone", self.key, exc_info=True)

    def _on_connection(self, connection: Connection) -> None:
        now = self.clock.now()
        self._advertising = False
        if not self._powered or self.faults.refusing(now) is not None:
            logger.info("%s: connection from %s refused", self.key, connection.peer_address)
            self._spawn(connection.disconnect(REFUSED_REASON), "refuse")
            connection.on(
                Connection.EVENT_DISCONNECTION,
                lambda _reason: self._spawn(self._readvertise(), "adv"),
            )
            return
        logger.info("%s: connected to %s", self.key, connection.peer_address)
        self._connections.append(connection)
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        self._poke()

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        logger.info(
            "%s: disconnected from %s (reason 0x%02X)", self.key, connection.peer_address, reason
        )
        if connection in self._connections:
            self._connections.remove(connection)
        if not self._connections:
            self._drop_unanswered()
            self._link_lost(self.clock.now())
        self._spawn(self._readvertise(), "adv")
        self._poke()

    async def _readvertise(self) -> None:
        if not self.connected:
            await self._advertise()

    # --- notifications ---------------------------------------------------------------------

    async def _notify(
        self, characteristic: gatt.Characteristic[bytes], value: bytes, *, indicate: bool = False
    ) -> None:
        """Notify (or indicate) subscribers, through the notification faults."""
        if self._device is None or not self._connections:
            return
        now = self.clock.now()
        if self.faults.drop_notification(now):
            logger.debug("%s: notification of %s dropped (fault)", self.key, characteristic.uuid)
            return
        delay = self.faults.notification_delay(now)
        if delay > 0:
            self._spawn(self._notify_later(characteristic, value, indicate, now + delay), "late")
            return
        await self._send(characteristic, value, indicate=indicate)

    async def _notify_later(
        self, characteristic: gatt.Characteristic[bytes], value: bytes, indicate: bool, due: float
    ) -> None:
        await self.clock.sleep_until(due)
        await self._send(characteristic, value, indicate=indicate)

    async def _send(
        self, characteristic: gatt.Characteristic[bytes], value: bytes, *, indicate: bool
    ) -> None:
        if self._device is None or not self._connections:
            return
        logger.debug(
            "%s: %s %s -> %s",
            self.key,
            "indicate" if indicate else "notify",
            characteristic.uuid,
            value.hex(" "),
        )
        if indicate:
            # Indications wait for the client's confirmation: never hold the firmware task.
            self._spawn(self._device.indicate_subscribers(characteristic, value), "indicate")
        else:
            await self._device.notify_subscribers(characteristic, value)

    # --- battery ---------------------------------------------------------------------------

    def _battery_level(self) -> sig.BatteryLevel:
        self._advance(self.clock.now())
        return sig.BatteryLevel(max(0, min(100, math.ceil(self._battery_pct()))))

    async def _notify_battery(self) -> None:
        level = self._battery_level()
        if level.percent != self._battery_sent and self._battery_characteristic is not None:
            self._battery_sent = level.percent
            await self._notify(self._battery_characteristic, bytes(level))

    # --- helpers for families --------------------------------------------------------------

    def _writer(self, handler: Callable[[bytes, float], None]) -> Callable[[bytes], None]:
        """Wrap a family's write handler: injected ATT errors, clock time, and a wake-up."""

        def write(value: bytes) -> None:
            now = self.clock.now()
            fault = self.faults.take_write_fault(now)
            if fault is not None and fault.unanswered:
                raise NoAnswer(self._leave_unanswered())
            if fault is not None:
                raise AttRefusal(fault.code, "injected ATT error")
            if not self._powered:
                raise AttRefusal(_ATT_UNLIKELY_ERROR, "no power")
            handler(value, now)
            self._poke()

        return write

    def _leave_unanswered(self) -> asyncio.Future[None]:
        """A write that gets no answer: the future it waits on, cancelled when the link ends.

        The central waits for the answer in real time, up to its command time-out, and retries.
        A virtual clock would run through minutes of therapy time meanwhile (a lease running
        out, a watchdog firing) where a real radio takes seconds; so it is held for
        :data:`~simulators.faults.UNANSWERED_HOLD_S` real seconds, or until the link ends.
        Other clocks ignore holds.
        """
        logger.info("%s: a write left unanswered (injected fault)", self.key)
        loop = asyncio.get_running_loop()
        until: asyncio.Future[None] = loop.create_future()
        self._unanswered.add(until)
        until.add_done_callback(self._unanswered.discard)
        hold: asyncio.Future[None] = loop.create_future()
        until.add_done_callback(lambda _: _resolve(hold))
        loop.call_later(UNANSWERED_HOLD_S, _resolve, hold)
        self.clock.hold(hold)
        return until

    def _drop_unanswered(self) -> None:
        """The link ended: writes still unanswered end without an answer."""
        for until in list(self._unanswered):
            until.cancel()

    def _reader(self, handler: Callable[[float], bytes]) -> Callable[[], bytes]:
        """Wrap a family's read handler with the current clock time."""

        def read() -> bytes:
            now = self.clock.now()
            self._advance(now)
            return handler(now)

        return read


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
