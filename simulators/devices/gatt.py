"""GATT server plumbing shared by every simulated device (the only place that bends bumble).

bumble's GATT server does not enforce characteristic properties: a write to a read-only value raises
inside a server task and the client waits for a response that never comes
(docs/simulation-backend.md). Here every characteristic is a :class:`SimCharacteristic` that answers
a read or write it does not support with the proper ATT error, turns our refusals
(:class:`AttRefusal`) into ATT Error Responses, and never lets an exception leave a request
unanswered. :class:`GuardedServer` adds the pieces that need the request type: a Write Command
(without response) to a characteristic without that property is dropped, as on a real device, and
every ATT packet to and from the device can be held back by a per-packet link latency.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable, Sequence

from bumble import att, gatt, gatt_server
from bumble.core import UUID, AdvertisingData
from bumble.device import Device, DeviceConfiguration
from bumble.hci import Address
from bumble.host import Host

__all__ = [
    "AttRefusal",
    "GuardedServer",
    "NoAnswer",
    "SimCharacteristic",
    "advertising_data",
    "bumble_uuid",
    "make_bumble_device",
    "service",
]

logger = logging.getLogger(__name__)

Properties = gatt.Characteristic.Properties
ReadHandler = Callable[[], bytes]
WriteHandler = Callable[[bytes], None]
LatencySource = Callable[[], float]

_WRITE_PROPERTIES = Properties.WRITE | Properties.WRITE_WITHOUT_RESPONSE
# The Bluetooth base UUID: 16-bit SIG UUIDs are 0000xxxx-0000-1000-8000-00805f9b34fb.
_SIG_BASE_PREFIX = "0000"
_SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
# Advertising data that fits a legacy advertising PDU (Core Spec Vol 6 Part B 2.3.1.1).
LEGACY_ADVERTISING_DATA_MAX = 31
# AD flags: LE General Discoverable Mode, BR/EDR Not Supported.
ADVERTISING_FLAGS = 0x06


def bumble_uuid(uuid: str) -> UUID:
    """A bumble UUID for a UUID string; SIG UUIDs become 16-bit, as on a real device."""
    text = uuid.lower()
    if text.startswith(_SIG_BASE_PREFIX) and text.endswith(_SIG_BASE_SUFFIX) and len(text) == 36:
        return UUID(text[4:8])
    return UUID(text)


def service(uuid: str, characteristics: Iterable[gatt.Characteristic[bytes]]) -> gatt.Service:
    """A primary service."""
    return gatt.Service(bumble_uuid(uuid), list(characteristics))


class AttRefusal(Exception):  # noqa: N818 - it is the ATT answer, not an error of ours
    """Raised by a read or write handler: answer the request with ATT error ``code``."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"ATT error 0x{code:02X}{': ' + reason if reason else ''}")
        self.code = code
        self.reason = reason


class NoAnswer(Exception):  # noqa: N818 - it is the (missing) ATT answer, not an error of ours
    """Raised by a write handler: the write is never answered, so the central times out.

    The request waits on ``until``, which nobody resolves: when it is cancelled (the link
    ended, the device stopped) the request ends without an answer. Until then the central can
    send no other request on the link (ATT allows one at a time).
    """

    def __init__(self, until: asyncio.Future[None]) -> None:
        super().__init__("left unanswered")
        self.until = until


class SimCharacteristic(gatt.Characteristic[bytes]):
    """A characteristic whose value comes from ``read`` and goes to ``write``.

    Permissions follow the properties: no READ property means every read is answered with
    Read Not Permitted, no WRITE/WRITE_WITHOUT_RESPONSE property means Write Not Permitted.
    """

    def __init__(
        self,
        uuid: str,
        properties: gatt.Characteristic.Properties,
        *,
        label: str,
        read: ReadHandler | None = None,
        write: WriteHandler | None = None,
    ) -> None:
        permissions = att.Attribute.Permissions(0)
        if properties & Properties.READ:
            permissions |= att.Attribute.Permissions.READABLE
        if properties & _WRITE_PROPERTIES:
            permissions |= att.Attribute.Permissions.WRITEABLE
        super().__init__(bumble_uuid(uuid), properties, permissions, b"")
        self.label = label
        self._read = read
        self._write = write

    async def read_value(self, bearer: att.Bearer) -> bytes:
        if not self.properties & Properties.READ or self._read is None:
            logger.debug("read of %s refused: not readable", self.label)
            raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR, self.handle)
        try:
            return self._read()
        except AttRefusal as refusal:
            raise att.ATT_Error(refusal.code, self.handle) from refusal
        except Exception as exc:
            logger.exception("reading %s failed inside the simulator", self.label)
            raise att.ATT_Error(att.ATT_UNLIKELY_ERROR_ERROR, self.handle) from exc

    async def write_value(self, bearer: att.Bearer, value: bytes) -> None:
        if not self.properties & _WRITE_PROPERTIES or self._write is None:
            logger.debug("write of %s to %s refused: not writable", value.hex(), self.label)
            raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR, self.handle)
        logger.debug("GATT write %s <- %s", self.label, value.hex(" "))
        try:
            self._write(bytes(value))
        except NoAnswer as silence:
            logger.debug("write to %s left unanswered", self.label)
            await silence.until  # only ever cancelled: then the request ends unanswered
            raise asyncio.CancelledError from None  # never an answer, however the wait ended
        except AttRefusal as refusal:
            logger.debug("write to %s refused: %s", self.label, refusal)
            raise att.ATT_Error(refusal.code, self.handle) from refusal
        except Exception as exc:
            logger.exception("writing %s failed inside the simulator", self.label)
            raise att.ATT_Error(att.ATT_UNLIKELY_ERROR_ERROR, self.handle) from exc


class _OrderedDelay:
    """Runs callbacks ``latency`` real seconds after submission, in submission order."""

    def __init__(self, latency: LatencySource) -> None:
        self._latency = latency
        self._queue: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, callback: Callable[[], None]) -> None:
        delay = self._latency()
        if delay <= 0 and not self._queue:
            callback()
            return
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time() + max(delay, 0.0), callback))
        if self._timer is None:
            self._timer = loop.call_at(self._queue[0][0], self._run_due)

    def _run_due(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        while self._queue and self._queue[0][0] <= loop.time():
            _, callback = self._queue.popleft()
            try:
                callback()
            except Exception:
                logger.exception("a delayed ATT packet could not be delivered")
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._run_due)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class GuardedServer(gatt_server.Server):
    """bumble's GATT server with write-type checks and an optional per-packet latency."""

    def __init__(self, device: Device, latency: LatencySource | None = None) -> None:
        super().__init__(device)
        source = latency or (lambda: 0.0)
        self._inbound = _OrderedDelay(source)
        self._outbound = _OrderedDelay(source)
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Drop packets still held back by the latency."""
        self._inbound.cancel()
        self._outbound.cancel()
        for task in self._tasks:
            task.cancel()

    def send_gatt_pdu(self, bearer: att.Bearer, pdu: bytes) -> None:
        send = super().send_gatt_pdu
        self._outbound.submit(lambda: send(bearer, pdu))

    def on_gatt_pdu(self, bearer: att.Bearer, att_pdu: att.ATT_PDU) -> None:
        handle = super().on_gatt_pdu
        self._inbound.submit(lambda: handle(bearer, att_pdu))

    def on_att_write_request(self, bearer: att.Bearer, request: att.ATT_Write_Request) -> None:
        attribute = self.get_attribute(request.attribute_handle)
        if isinstance(attribute, gatt.Characteristic) and not (
            attribute.properties & Properties.WRITE
        ):
            logger.debug("write request to 0x%04X refused: no WRITE property", attribute.handle)
            self.send_response(
                bearer,
                att.ATT_Error_Response(
                    request_opcode_in_error=request.op_code,
                    attribute_handle_in_error=request.attribute_handle,
                    error_code=att.ATT_WRITE_NOT_PERMITTED_ERROR,
                ),
            )
            return
        super().on_att_write_request(bearer, request)

    def on_att_write_command(self, bearer: att.Bearer, request: att.ATT_Write_Command) -> None:
        attribute = self.get_attribute(request.attribute_handle)
        if attribute is None:
            return
        if isinstance(attribute, gatt.Characteristic) and not (
            attribute.properties & Properties.WRITE_WITHOUT_RESPONSE
        ):
            logger.debug(
                "write command to 0x%04X dropped: no WRITE_WITHOUT_RESPONSE", attribute.handle
            )
            return
        task = asyncio.create_task(self._write_command(bearer, attribute, request.attribute_value))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _write_command(
        bearer: att.Bearer, attribute: att.Attribute[bytes], value: bytes
    ) -> None:
        try:
            await attribute.write_value(bearer, value)
        except att.ATT_Error as error:
            # A Write Command has no response: the device drops what it refuses.
            logger.debug("write command dropped with ATT error 0x%02X", error.error_code)


def make_bumble_device(
    *, name: str, address: str, host: Host, latency: LatencySource | None = None
) -> tuple[Device, GuardedServer]:
    """A bumble Device whose GATT server is a :class:`GuardedServer` (with GAP and GATT)."""
    config = DeviceConfiguration(
        name=name,
        address=Address(address),
        gap_service_enabled=False,
        gatt_service_enabled=False,
    )
    device = Device(config=config, host=host)
    server = GuardedServer(device, latency)
    device.gatt_server = server
    event = gatt_server.Server.EVENT_CHARACTERISTIC_SUBSCRIPTION
    server.on(event, lambda *args: device.emit(event, *args))
    device.add_default_services()
    return device, server


def advertising_data(name: str, service_uuids: Iterable[str]) -> bytes:
    """Flags, the complete local name and the complete service UUID lists, in one AD blob."""
    uuids = [bumble_uuid(u) for u in service_uuids]
    short = [u for u in uuids if len(u.to_bytes()) == 2]
    long = [u for u in uuids if len(u.to_bytes()) == 16]
    structures: list[tuple[int, bytes]] = [
        (AdvertisingData.FLAGS, bytes([ADVERTISING_FLAGS])),
        (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode("utf-8")),
    ]
    if short:
        structures.append(
            (
                AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                b"".join(u.to_bytes() for u in short),
            )
        )
    if long:
        structures.append(
            (
                AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                b"".join(u.to_bytes() for u in long),
            )
        )
    return bytes(AdvertisingData(structures))


def characteristics_of(services: Sequence[gatt.Service]) -> list[gatt.Characteristic[bytes]]:
    """Every characteristic of ``services`` (for tests and logging)."""
    return [c for s in services for c in s.characteristics]
