"""The simulated Bluetooth adapter: a bumble host acting as central on a virtual controller.

An adapter is what a real machine's Bluetooth radio is to BlueZ: it scans (shared by every
scanner of the process), keeps the latest advertisement of every device it heard, and makes
connections, one at a time. It reaches the virtual radio either in-process (its own
:class:`~simulators.radio.SimController` joins a ``LocalLink``) or through an HCI transport
(``unix:/path``, ``tcp-client:host:port``) to a simulator server that gives it a controller.

Its ATT client works as BlueZ's does when a caller gives up (:class:`RequestLine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakError
from bumble import att, core, hci
from bumble.device import Connection, Device
from bumble.gatt import GATT_REQUEST_TIMEOUT
from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import Transport, TransportSpecError

from simulators.radio import SimController, SimHost, detach_controller

if TYPE_CHECKING:
    from bumble.gatt_client import Client
    from bumble.link import LocalLink

__all__ = [
    "DEVICE_LOOKUP_TIMEOUT_S",
    "NoSimulatedRadioError",
    "RequestLine",
    "Sighting",
    "SimAdapter",
    "SimDeviceDetails",
    "SimulatorUnreachableError",
    "address_key",
    "cancel_requests",
    "disconnect_quietly",
    "raise_dropped_cancel",
]

logger = logging.getLogger(__name__)

# Real-time limit for finding a device that is addressed by its address string before
# connecting. Scanning starts by hearing every current advertiser at once, so a device that
# advertises is found within milliseconds; this only bounds the wait for one that appears late.
DEVICE_LOOKUP_TIMEOUT_S = 2.0

# Real-time limit for reaching a simulator server and powering the adapter on through it.
TRANSPORT_OPEN_TIMEOUT_S = 5.0

# Real-time grace after bumble's own connect time-out for the controller to report the
# cancelled connection (a stock bumble controller never does; ours does at once).
CONNECT_CANCEL_GRACE_S = 1.0

# Real-time limit for a polite disconnect before the link is simply dropped.
DISCONNECT_TIMEOUT_S = 2.0

# Loop turns close() yields after taking an adapter off the air: a link's end travels
# link -> peer controller -> peer host -> peer device, one turn per hop (socket peers need a
# turn or two more for the server to notice the closed socket).
PEER_SETTLE_TURNS = 10

ADAPTER_NAME = "relieve-sim-adapter"


class NoSimulatedRadioError(BleakBluetoothNotAvailableError):
    """Nothing selected the virtual radio this process's simulated adapter should join."""

    def __init__(self) -> None:
        super().__init__(
            "No simulated radio is selected: call simulators.backend.use_link(link) or "
            "simulators.backend.use_transport(spec) before scanning or connecting.",
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
        )


class SimulatorUnreachableError(BleakBluetoothNotAvailableError):
    """The simulator server named by a transport string could not be reached."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach the simulator at {spec!r} ({reason}): start it "
            "(relieve sim serve) or check the transport string.",
            BleakBluetoothNotAvailableReason.POWERED_OFF,
        )


@dataclass(frozen=True)
class Sighting:
    """One advertisement heard by an adapter (advertising data merged with a real scan response)."""

    key: str  # address as bleak shows it: upper-case, colon-separated, no type suffix
    address: hci.Address  # with its type, as needed to connect
    data: bytes  # raw advertising data (plus scan response data when it differs)
    rssi: int
    connectable: bool


@dataclass(frozen=True)
class SimDeviceDetails:
    """``BLEDevice.details`` of a device found by :class:`~simulators.backend.SimScanner`."""

    address: hci.Address
    adapter: SimAdapter


SightingListener = Callable[[Sighting], None]


def address_key(address: str | hci.Address) -> str:
    """The address as bleak shows it on Linux: ``F0:12:34:56:78:9A``."""
    if isinstance(address, hci.Address):
        return address.to_string(with_type_qualifier=False)
    return address.strip().upper()


def _is_scan_response(report: Any) -> bool:
    if isinstance(report, hci.HCI_LE_Extended_Advertising_Report_Event.Report):
        scan_response = hci.HCI_LE_Extended_Advertising_Report_Event.EventType.SCAN_RESPONSE
        return bool(report.event_type & scan_response)
    return bool(report.event_type == hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP)


def _is_connectable(report: Any) -> bool:
    if isinstance(report, hci.HCI_LE_Extended_Advertising_Report_Event.Report):
        connectable = hci.HCI_LE_Extended_Advertising_Report_Event.EventType.CONNECTABLE_ADVERTISING
        return bool(report.event_type & connectable)
    return report.event_type in (
        hci.HCI_LE_Advertising_Report_Event.EventType.ADV_IND,
        hci.HCI_LE_Advertising_Report_Event.EventType.ADV_DIRECT_IND,
    )


class SimAdapter:
    """A simulated central: one bumble ``Device`` on its own virtual controller."""

    def __init__(
        self,
        device: Device,
        *,
        description: str,
        controller: SimController | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.device = device
        self.description = description
        self.loop = asyncio.get_running_loop()
        self._controller = controller
        self._transport = transport
        self._closed = False
        self._listeners: dict[object, SightingListener] = {}
        self._primary_data: dict[str, bytes] = {}
        self.sightings: dict[str, Sighting] = {}
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        device.host.on("advertising_report", self._on_advertising_report)

    # ------------------------------------------------------------------ opening
    @classmethod
    async def on_link(cls, link: LocalLink) -> SimAdapter:
        """An adapter whose controller joins ``link`` in this process."""
        controller = SimController(ADAPTER_NAME, link=link)
        host = SimHost(controller)
        device = Device(name=ADAPTER_NAME, address=hci.Address.generate_static_address(), host=host)
        adapter = cls(device, description="in-process link", controller=controller)
        try:
            await device.power_on()
        except BaseException:
            adapter._close_now()
            raise
        logger.debug("simulated adapter %s joined an in-process link", device.random_address)
        return adapter

    @classmethod
    async def over_transport(cls, spec: str) -> SimAdapter:
        """An adapter that is a bumble host over the HCI transport ``spec``."""
        try:
            async with asyncio.timeout(TRANSPORT_OPEN_TIMEOUT_S):
                transport = await open_transport(spec)
        except (OSError, TimeoutError, TransportSpecError) as exc:
            raise SimulatorUnreachableError(spec, str(exc) or type(exc).__name__) from exc
        host = Host(transport.source, transport.sink)
        device = Device(name=ADAPTER_NAME, address=hci.Address.generate_static_address(), host=host)
        adapter = cls(device, description=spec, transport=transport)
        try:
            async with asyncio.timeout(TRANSPORT_OPEN_TIMEOUT_S):
                await device.power_on()
        except TimeoutError as exc:
            adapter._close_now()
            raise SimulatorUnreachableError(spec, "no answer to HCI reset") from exc
        except BaseException:
            adapter._close_now()
            raise
        terminated = getattr(transport.source, "terminated", None)
        if isinstance(terminated, asyncio.Future):
            terminated.add_done_callback(lambda _: adapter._on_transport_lost())
        logger.debug("simulated adapter %s opened over %s", device.random_address, spec)
        return adapter

    # ------------------------------------------------------------------ closing
    @property
    def is_open(self) -> bool:
        return not self._closed

    def _on_transport_lost(self) -> None:
        if not self._closed:
            logger.warning("the simulator at %s went away; its links are gone", self.description)
            self._close_now()

    def _close_now(self) -> None:
        """Take the adapter off the air at once: every link it had ends, listeners are dropped."""
        if self._closed:
            return
        self._closed = True
        self._listeners.clear()
        if self._controller is not None:
            detach_controller(self._controller)
        if self._transport is not None:
            # Transport.close() is a coroutine only by signature: it closes source and sink.
            for end in (self._transport.source, self._transport.sink):
                close = getattr(end, "close", None)
                if close is not None:
                    close()
        # Every connection object learns it is gone now (bumble's flush), so clients see it.
        self.device.on_flush()

    async def close(self) -> None:
        """Take the adapter off the air: every link it had ends, its transport closes.

        Then yield a few loop turns, so peripherals in this process hear their links end and
        start what they do next (advertise again) while the caller's loop is still running.
        """
        self._close_now()
        for _ in range(PEER_SETTLE_TURNS):
            await asyncio.sleep(0)

    def abandon(self) -> None:
        """Forget an adapter whose event loop is gone: only leave the link, do no I/O."""
        self._closed = True
        if self._controller is not None and self._controller in self._controller.link.controllers:
            self._controller.link.remove_controller(self._controller)

    # ----------------------------------------------------------------- scanning
    def add_listener(self, listener: SightingListener) -> Callable[[], None]:
        """Call ``listener`` for every advertisement heard; returns the function that stops it."""
        token = object()
        self._listeners[token] = listener

        def remove() -> None:
            self._listeners.pop(token, None)

        return remove

    def _on_advertising_report(self, report: Any) -> None:
        key = address_key(report.address)
        data = bytes(report.data)
        if _is_scan_response(report):
            primary = self._primary_data.get(key)
            # bumble's virtual controller sends the advertising data again as "scan response".
            if primary is None or data == primary:
                return
            data = primary + data
        else:
            self._primary_data[key] = data
        sighting = Sighting(key, report.address, data, int(report.rssi), _is_connectable(report))
        self.sightings[key] = sighting
        for listener in list(self._listeners.values()):
            listener(sighting)

    async def start_scanning(self, *, hear_all_now: bool = False) -> None:
        """Start scanning unless some other user of this adapter already did.

        A scan that starts hears every current advertiser at once (``SimController``); with
        ``hear_all_now`` a scan already running is restarted to get that too.
        """
        self._require_open()
        async with self._scan_lock:
            self._scan_users += 1
            try:
                if self._scan_users > 1 and hear_all_now:
                    await self.device.stop_scanning()
                if self._scan_users == 1 or hear_all_now:
                    await self.device.start_scanning(filter_duplicates=False)
            except BaseException:
                self._scan_users -= 1
                raise

    async def stop_scanning(self) -> None:
        """Stop scanning once its last user stops."""
        async with self._scan_lock:
            if self._scan_users == 0:
                return
            self._scan_users -= 1
            if self._scan_users == 0 and not self._closed:
                await self.device.stop_scanning()

    async def find_advertiser(self, key: str, within_s: float) -> Sighting | None:
        """Scan until device ``key`` is heard advertising connectably, for up to ``within_s``."""
        key = address_key(key)
        found: asyncio.Future[Sighting] = self.loop.create_future()

        def listener(sighting: Sighting) -> None:
            if sighting.key == key and sighting.connectable and not found.done():
                found.set_result(sighting)

        remove = self.add_listener(listener)
        try:
            await self.start_scanning(hear_all_now=True)
            try:
                async with asyncio.timeout(within_s):
                    return await found
            except TimeoutError:
                return None
            finally:
                await self.stop_scanning()
        finally:
            remove()

    # --------------------------------------------------------------- connecting
    async def connect(self, address: hci.Address, within_s: float) -> Connection:
        """Connect to ``address`` as central; connection attempts are made one at a time."""
        self._require_open()
        key = address_key(address)
        async with self._connect_lock:
            existing = set(self.device.connections)
            cancels_before = cancel_requests()
            try:
                async with asyncio.timeout(within_s + CONNECT_CANCEL_GRACE_S):
                    connection = await self.device.connect_le(
                        address, own_address_type=hci.OwnAddressType.RANDOM, timeout=within_s
                    )
                raise_dropped_cancel(cancels_before)
            except asyncio.CancelledError:
                if not self._closed:
                    # The controller may still complete this connection: cancel it, or drop it,
                    # before anyone else may connect.
                    await asyncio.shield(self._abandon_connection_attempt(address, existing))
                task = asyncio.current_task()
                if task is not None and task.cancelling() == 0:  # not our caller's cancel
                    raise BleakError(
                        f"The simulated adapter closed while connecting to {key}; connect again."
                    ) from None
                raise
            except (core.TimeoutError, TimeoutError) as exc:
                raise TimeoutError(
                    f"Connecting to {key} timed out after {within_s:.1f} s."
                ) from exc
            except core.BaseBumbleError as exc:
                raise BleakError(
                    f"Connecting to {key} failed ({exc}); retry, or check that the device "
                    "still advertises."
                ) from exc
            else:
                return connection

    async def _abandon_connection_attempt(self, address: hci.Address, existing: set[int]) -> None:
        with contextlib.suppress(core.BaseBumbleError):
            await self.device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
        for handle, connection in list(self.device.connections.items()):
            if handle not in existing and connection.peer_address == address:
                logger.debug("dropping the connection to %s nobody waits for", address)
                await disconnect_quietly(connection)

    def _require_open(self) -> None:
        if self._closed:
            raise BleakError(
                f"The simulated adapter ({self.description}) is closed; "
                "scan or connect again to use a new one."
            )

    async def delete_keys(self, address: hci.Address) -> bool:
        """Forget pairing keys for ``address``; True when there were any."""
        keystore = self.device.keystore
        if keystore is None or await keystore.get(str(address)) is None:
            return False
        await keystore.delete(str(address))
        return True


def cancel_requests() -> int:
    """How many cancellations of the current task are pending (``Task.cancelling()``)."""
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def raise_dropped_cancel(cancels_before: int) -> None:
    """Raise the cancellation that Python 3.11's ``wait_for`` (used inside bumble) dropped.

    When the awaited result arrives in the same loop turn as a cancel, 3.11's ``wait_for``
    returns the result and loses the cancel (fixed in 3.12); the task's count of pending
    cancellations still shows it.
    """
    if cancel_requests() > cancels_before:
        raise asyncio.CancelledError


async def disconnect_quietly(connection: Connection) -> None:
    """Disconnect ``connection`` politely, giving up silently after a short real-time wait."""
    try:
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await connection.disconnect()
    except (TimeoutError, core.BaseBumbleError) as exc:
        logger.debug("disconnect of %s did not complete: %r", connection.peer_address, exc)


class RequestLine:
    """A bumble GATT client's ATT requests: one at a time, never cancelled by their callers.

    bumble sends one request at a time (``request_semaphore``) and takes the next response PDU,
    and any error response, as the answer to ``pending_request``. Its own ``send_request``
    cancels the pending request together with its caller, so the late response answered the
    next request. This replaces ``client.send_request``: the caller is cancelled at once, but
    its request keeps its place in line, is sent, and holds the line until its response (or
    bumble's time-out, or the link's end) arrives; the outcome is dropped, as BlueZ does.
    Uncontended requests take exactly as many loop turns as with bumble's own.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._line = client.request_semaphore
        self._unseen: set[asyncio.Task[None]] = set()  # requests of cancelled callers
        setattr(client, "send_request", self.send_request)  # noqa: B010

    async def send_request(self, request: att.ATT_PDU) -> att.ATT_PDU:
        """Send ``request`` in its turn and return its response (bumble's contract)."""
        logger.debug("ATT request %s", request.name)
        if self._line.locked():
            # Wait in a task of its own, so that the request keeps its place when the caller
            # is cancelled: a real stack has it queued and sends it in its turn.
            turn = self._loop.create_task(self._line.acquire())
            try:
                await asyncio.shield(turn)
            except asyncio.CancelledError:
                unseen = self._loop.create_task(self._finish_unseen(turn, request))
                self._unseen.add(unseen)
                unseen.add_done_callback(self._unseen.discard)
                raise
        else:
            await self._line.acquire()  # free: returns without yielding
        return await asyncio.shield(self._begin(request))

    def _begin(self, request: att.ATT_PDU) -> asyncio.Future[att.ATT_PDU]:
        """Send ``request`` (the line is ours) and return the future of its response."""
        client = self._client
        response: asyncio.Future[att.ATT_PDU] = self._loop.create_future()
        timer = self._loop.call_later(GATT_REQUEST_TIMEOUT, self._time_out, request, response)
        client.pending_request = request
        client.pending_response = response
        try:
            client.send_gatt_pdu(bytes(request))
        except BaseException:
            timer.cancel()
            client.pending_request = None
            client.pending_response = None
            self._line.release()
            raise
        response.add_done_callback(functools.partial(self._end, timer))
        return response

    def _end(self, timer: asyncio.TimerHandle, response: asyncio.Future[att.ATT_PDU]) -> None:
        """The response arrived (or the time-out, or the link's end): the next may go."""
        timer.cancel()
        if self._client.pending_response is response:
            self._client.pending_request = None
            self._client.pending_response = None
        self._line.release()
        if not response.cancelled():
            response.exception()  # retrieved here: its caller may be gone

    @staticmethod
    def _time_out(request: att.ATT_PDU, response: asyncio.Future[att.ATT_PDU]) -> None:
        if not response.done():
            logger.warning("no response to %s within %d s", request.name, GATT_REQUEST_TIMEOUT)
            response.set_exception(core.TimeoutError(f"GATT timeout for {request.name}"))

    async def _finish_unseen(self, turn: asyncio.Task[bool], request: att.ATT_PDU) -> None:
        """Send the request of a caller cancelled while it waited in line, in its turn."""
        try:
            await turn
            outcome: object = await self._begin(request)
        except (core.BaseBumbleError, asyncio.CancelledError) as exc:
            outcome = exc
        logger.debug("%s of a cancelled caller ended: %r", request.name, outcome)
