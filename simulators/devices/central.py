"""A plain bumble central for talking GATT to simulated devices without bleak.

Tests use it to check the devices through bumble's own client (so a bug in our bleak
backend cannot hide a bug in a simulator), and it is handy for poking a running world from a
Python prompt. Everything is by UUID string; ATT error responses become :class:`GattError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bumble import att
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from simulators.catalog import SimulatorError
from simulators.devices.gatt import bumble_uuid
from simulators.radio import detach_controller

__all__ = [
    "CENTRAL_ADDRESS",
    "BumbleCentral",
    "CentralLink",
    "GattError",
    "LinkDroppedError",
    "Sighting",
    "uuid_text",
]

logger = logging.getLogger(__name__)

# Static random address of the test central (outside the simulators' C0:DE:00:00:00:0x range).
CENTRAL_ADDRESS = "C0:DE:00:00:FF:01"
# How long a scan waits (real time) for every expected advertiser: advertising runs every
# 20 ms, so a second is generous.
SCAN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Sighting:
    """One advertiser heard while scanning: what a scanner learns from the advertising data."""

    address: str
    name: str | None
    service_uuids: tuple[str, ...]


def uuid_text(uuid: UUID) -> str:
    """A bumble UUID as bleak spells it: 128-bit, lower case."""
    return uuid.to_hex_str("-").lower() if len(uuid.uuid_bytes) == 16 else _sig_text(uuid)


def _sig_text(uuid: UUID) -> str:
    return f"0000{uuid.to_hex_str().lower():0>4}-0000-1000-8000-00805f9b34fb"


_UUID_LISTS = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


class GattError(SimulatorError):
    """The device answered a request with an ATT error."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"The device answered {what} with ATT error 0x{code:02X}.")
        self.code = code


class LinkDroppedError(SimulatorError):
    """The link ended while a request was waiting for its answer."""

    def __init__(self, reason: int) -> None:
        super().__init__(f"The device dropped the link (HCI reason 0x{reason:02X}).")
        self.reason = reason


_T = TypeVar("_T")


class CentralLink:
    """One connection from the central to a device, with its services discovered."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.peer = Peer(connection)
        self.disconnected: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, reason: int) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(reason)

    async def _guard(self, request: Awaitable[_T]) -> _T:
        """Await ``request``, or raise LinkDroppedError when the link ends first.

        bumble's GATT client keeps waiting (30 s) for the answer to a request whose link
        has gone; a real stack fails it at once.
        """
        task = asyncio.ensure_future(request)
        await asyncio.wait((task, self.disconnected), return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled():
            return task.result()
        if self.disconnected.done():  # bumble cancels some requests itself on disconnection
            task.cancel()
            raise LinkDroppedError(self.disconnected.result())
        return task.result()

    async def discover(self) -> None:
        """Discover every service and characteristic."""
        await self._guard(self.peer.discover_services())
        for service in self.peer.services:
            await self._guard(service.discover_characteristics())

    def characteristic(self, uuid: str) -> CharacteristicProxy[bytes]:
        """The (first) characteristic with ``uuid``."""
        found = self.peer.get_characteristics_by_uuid(bumble_uuid(uuid))
        if not found:
            raise SimulatorError(f"The device has no characteristic {uuid}.")
        return found[0]

    async def read(self, uuid: str) -> bytes:
        """Read a characteristic value."""
        try:
            return bytes(await self._guard(self.peer.read_value(self.characteristic(uuid))))
        except att.ATT_Error as exc:
            raise GattError(exc.error_code, f"a read of {uuid}") from exc

    async def write(self, uuid: str, value: bytes, *, response: bool = True) -> None:
        """Write a characteristic value (a Write Request, or a Write Command)."""
        characteristic = self.characteristic(uuid)
        try:
            await self._guard(self.peer.write_value(characteristic, value, with_response=response))
        except att.ATT_Error as exc:
            raise GattError(exc.error_code, f"a write of {value.hex()} to {uuid}") from exc

    async def subscribe(self, uuid: str, *, indicate: bool = False) -> asyncio.Queue[bytes]:
        """Enable notifications (or indications); values arrive in the returned queue."""
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        sink: Callable[[bytes], None] = lambda value: queue.put_nowait(bytes(value))  # noqa: E731
        characteristic = self.characteristic(uuid)
        await self._guard(self.peer.subscribe(characteristic, sink, prefer_notify=not indicate))
        return queue

    async def disconnect(self) -> None:
        """Close the link."""
        if not self.disconnected.done():
            await self.connection.disconnect()


class BumbleCentral:
    """A bumble device in the central role on a ``LocalLink``."""

    def __init__(self, link: LocalLink, address: str = CENTRAL_ADDRESS) -> None:
        self.link = link
        self.address = address
        self._controller: Controller | None = None
        self._device: Device | None = None

    async def start(self) -> None:
        """Power the central on."""
        self._controller = Controller("sim-central", link=self.link)
        host = Host(self._controller, AsyncPipeSink(self._controller))
        self._device = Device(name="relieve test central", address=Address(self.address), host=host)
        await self._device.power_on()

    async def connect(self, address: str) -> CentralLink:
        """Connect to ``address`` and discover its services and characteristics."""
        if self._device is None:
            await self.start()
        if self._device is None:  # pragma: no cover - start() sets it
            raise SimulatorError("The central could not be started.")
        link = CentralLink(await self._device.connect(Address(address)))
        await link.discover()
        return link

    async def scan(
        self, addresses: set[str], *, within_s: float = SCAN_TIMEOUT_S
    ) -> dict[str, Sighting]:
        """Scan until every address in ``addresses`` was heard (TimeoutError after ``within_s``)."""
        if self._device is None:
            await self.start()
        device = self._device
        if device is None:  # pragma: no cover - start() sets it
            raise SimulatorError("The central could not be started.")
        wanted = {a.upper() for a in addresses}
        seen: dict[str, Sighting] = {}
        all_heard = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Advertisement) -> None:
            address = str(advertisement.address).upper()
            names = advertisement.data.get_all(AdvertisingData.Type.COMPLETE_LOCAL_NAME)
            uuids = [
                uuid_text(uuid)
                for kind in _UUID_LISTS
                for found in advertisement.data.get_all(kind)
                for uuid in (found if isinstance(found, list) else [found])
                if isinstance(uuid, UUID)
            ]
            # bumble's virtual controller reports the advertising data again as a "scan
            # response", which the accumulator appends: keep each UUID once.
            unique = tuple(dict.fromkeys(uuids))
            seen[address] = Sighting(address, names[0] if names else None, unique)
            if wanted <= seen.keys() and not all_heard.done():
                all_heard.set_result(None)

        device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
        await device.start_scanning(filter_duplicates=False)
        try:
            await asyncio.wait_for(all_heard, within_s)
        finally:
            await device.stop_scanning()
            device.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)
        return seen

    async def close(self) -> None:
        """Leave the link."""
        if self._controller is not None:
            detach_controller(self._controller, notify_host=True)
        self._controller = None
        self._device = None

    async def __aenter__(self) -> BumbleCentral:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
