"""``SimClient``: bleak's client backend on a simulated adapter (see :mod:`simulators.backend`).

Semantics follow bleak 3.1 as its BlueZ backend shows them: characteristic handles are
declaration handles, GAP/GATT services are hidden, ATT error responses raise
``BleakGATTProtocolError``, a write of a kind the characteristic does not declare is refused
with ``REQUEST_NOT_SUPPORTED`` before anything is sent, the disconnected callback runs on every
disconnect (either side), and a Service Changed indication re-discovers the services.
A cancelled operation raises ``CancelledError`` to its caller at once, while its ATT request
completes unseen, as in BlueZ (see :class:`~simulators.backend.adapter.RequestLine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.exc import (
    BleakCharacteristicNotFoundError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bumble import att, core, hci
from bumble.device import Connection
from bumble.gatt import (
    GATT_DEVICE_NAME_CHARACTERISTIC,
    GATT_GENERIC_ACCESS_SERVICE,
    GATT_GENERIC_ATTRIBUTE_SERVICE,
    GATT_SERVICE_CHANGED_CHARACTERISTIC,
)
from bumble.gatt_client import CharacteristicProxy, Client, ServiceProxy

from simulators.backend.adapter import (
    DEVICE_LOOKUP_TIMEOUT_S,
    RequestLine,
    SimAdapter,
    SimDeviceDetails,
    address_key,
    cancel_requests,
    disconnect_quietly,
    raise_dropped_cancel,
)
from simulators.backend.mapping import build_service_collection
from simulators.backend.selection import default_adapter

__all__ = ["ATT_MTU_REQUEST", "SimClient"]

logger = logging.getLogger(__name__)

# The ATT MTU the client asks for when it connects: BlueZ's choice (the largest a 512-byte
# attribute value plus the ATT header needs).
ATT_MTU_REQUEST = 517

# ATT_MTU before any exchange (Core spec Vol 3, Part F, 3.2.8).
ATT_DEFAULT_MTU = 23

# Bytes of ATT header in a Write Command: opcode (1) + handle (2).
WRITE_COMMAND_HEADER = 3


class _LinkLostError(core.BaseBumbleError):
    """A GATT request was made on a link that has ended."""


def _refuse_pdu(pdu: bytes) -> None:
    del pdu
    raise _LinkLostError("the link has ended")


class SimClient(BaseBleakClient):
    """bleak client backend that reaches bumble peripherals on a simulated radio.

    Use it as ``BleakClient(address_or_device, backend=SimClient)``. An explicit adapter may be
    given with ``sim_adapter=`` (several adapters in one process model several machines);
    otherwise a device found by :class:`SimScanner` is reached through the adapter that heard
    it, and an address string through this process's default adapter.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        sim_adapter: SimAdapter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._requested_services = services
        self._adapter = sim_adapter
        self._found: SimDeviceDetails | None = None
        self._name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, SimDeviceDetails):
                self._found = address_or_ble_device.details
        self._connection: Connection | None = None
        self._connected_adapter: SimAdapter | None = None
        self._mtu = ATT_DEFAULT_MTU
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_again = False

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """The GAP Device Name, else the advertised name, else the address with dashes."""
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The ATT MTU negotiated on the current (or last) connection."""
        if self._connection is not None:
            return int(self._connection.att_mtu)
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -------------------------------------------------------------- connecting
    async def _choose_adapter(self) -> SimAdapter:
        if self._adapter is not None:
            return self._adapter
        if self._found is not None and self._found.adapter.is_open:
            return self._found.adapter
        return await default_adapter()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU, discover services; optionally pair first.

        Raises:
            BleakDeviceNotFoundError: no device advertises this address.
            TimeoutError: the connection was not made within ``timeout``.
        """
        if self.is_connected:
            raise BleakError("Client is already connected")
        timeout = float(kwargs.get("timeout", self._timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        adapter = await self._choose_adapter()
        peer: hci.Address | None = None
        if self._found is not None and self._found.adapter is adapter:
            peer = self._found.address
        else:
            sighting = await adapter.find_advertiser(
                self.address, within_s=min(timeout, DEVICE_LOOKUP_TIMEOUT_S)
            )
            if sighting is None:
                raise BleakDeviceNotFoundError(
                    self.address,
                    f"Device with address {self.address} was not found: nothing on the "
                    "simulated radio advertises it (is the simulator running?).",
                )
            peer = sighting.address
        logger.debug("connecting to %s via %s", address_key(peer), adapter.description)
        cancels_before = cancel_requests()
        connection = await adapter.connect(peer, within_s=max(deadline - loop.time(), 0.0))
        try:
            async with asyncio.timeout_at(deadline):
                await self._set_up(adapter, connection, pair=pair)
            raise_dropped_cancel(cancels_before)
        except BaseException:
            self._detach()
            await disconnect_quietly(connection)
            raise

    async def _set_up(self, adapter: SimAdapter, connection: Connection, *, pair: bool) -> None:
        self._connection = connection
        RequestLine(connection.gatt_client)  # installs itself as the client's send_request
        self._connected_adapter = adapter
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        if connection.handle not in adapter.device.connections:  # gone before we listened
            self._detach()
            raise BleakError(f"{self.address} disconnected while connecting; connect again.")
        async with self._gatt("connection set-up") as client:
            if pair:
                await self._pair(connection)
            await self._exchange_mtu(client)
            await self._discover(client)
            await self._read_device_name(client)
        logger.debug("connected to %s, MTU %d", self.address, self._mtu)

    async def _exchange_mtu(self, client: Client) -> None:
        try:
            self._mtu = await client.request_mtu(ATT_MTU_REQUEST)
        except att.ATT_Error as exc:  # a server may refuse the exchange: ATT_MTU stays 23
            logger.debug("%s refused the MTU exchange: %r", self.address, exc)

    async def _discover(self, client: Client) -> None:
        """Discover every service, characteristic and descriptor; fill ``self.services``."""
        client.services = []  # forget proxies of an earlier discovery
        services = await client.discover_services()
        for service in services:
            for characteristic in await client.discover_characteristics((), service):
                await client.discover_descriptors(characteristic)
                characteristic.descriptors_discovered = True
        self.services = build_service_collection(
            services, self._max_write_without_response_size, self._requested_services
        )
        await self._watch_service_changes(client, services)

    async def _watch_service_changes(self, client: Client, services: list[ServiceProxy]) -> None:
        for service in services:
            if service.uuid != GATT_GENERIC_ATTRIBUTE_SERVICE:
                continue
            for characteristic in service.characteristics:
                if characteristic.uuid == GATT_SERVICE_CHANGED_CHARACTERISTIC:
                    await client.subscribe(characteristic, self._on_service_changed)

    async def _read_device_name(self, client: Client) -> None:
        for characteristic in client.get_characteristics_by_uuid(GATT_DEVICE_NAME_CHARACTERISTIC):
            service = next(
                (s for s in client.services if characteristic in s.characteristics), None
            )
            if service is None or service.uuid != GATT_GENERIC_ACCESS_SERVICE:
                continue
            try:
                self._name = bytes(await client.read_value(characteristic)).decode("utf-8")
            except (att.ATT_Error, UnicodeDecodeError) as exc:
                logger.debug("device name of %s unreadable: %r", self.address, exc)
            return

    def _max_write_without_response_size(self) -> int:
        return self.mtu_size - WRITE_COMMAND_HEADER

    # ----------------------------------------------------------- disconnecting
    def _detach(self) -> Connection | None:
        """Forget the connection without telling anyone; returns it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._mtu = int(connection.att_mtu)
            connection.remove_listener(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        self.services = None
        self._subscribers.clear()
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        return connection

    def _on_disconnection(self, reason: int) -> None:
        connection = self._detach()
        if connection is None:
            return
        # Requests queued behind the one bumble cancels would go nowhere and wait for bumble's
        # 30 s time-out: make sending on this dead link fail at once instead.
        setattr(connection.gatt_client, "send_gatt_pdu", _refuse_pdu)  # noqa: B010
        logger.debug("%s disconnected (reason 0x%02X)", self.address, reason)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect; afterwards ``is_connected`` is False and the callback has run."""
        connection = self._connection
        if connection is None:
            return
        await disconnect_quietly(connection)
        if self._connection is connection:  # the link did not report its end: drop it anyway
            self._on_disconnection(hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (LE Secure Connections, Just Works) with the connected peripheral."""
        async with self._gatt("pairing"):
            await self._pair(self._require_connection())

    async def _pair(self, connection: Connection) -> None:
        try:
            await connection.pair()
        except core.ProtocolError as exc:
            raise BleakError(f"Pairing with {self.address} failed: {exc}.") from exc

    async def unpair(self) -> None:
        """Forget the pairing keys and disconnect, as BlueZ does when a device is removed."""
        adapter = self._connected_adapter or self._adapter
        peer = self._connection.peer_address if self._connection is not None else None
        if peer is None and self._found is not None:
            peer = self._found.address
        had_keys = adapter is not None and peer is not None and await adapter.delete_keys(peer)
        if not had_keys and not self.is_connected:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} is not paired."
            )
        await self.disconnect()

    # ------------------------------------------------------------ GATT errors
    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    @contextlib.asynccontextmanager
    async def _gatt(self, what: str) -> AsyncIterator[Client]:
        """Run one GATT procedure, translating bumble's failures into bleak's exceptions."""
        connection = self._require_connection()
        refresh = self._refresh
        if refresh is not None and refresh is not asyncio.current_task():
            await asyncio.wait([refresh])  # operations wait for a re-discovery in progress
            connection = self._require_connection()
        try:
            yield connection.gatt_client
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except _LinkLostError as exc:
            raise BleakError(
                f"{self.address} disconnected; reconnect and retry the {what}."
            ) from exc
        except core.TimeoutError as exc:
            raise BleakError(f"{self.address} did not answer the {what} in time.") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling() == 0:
                # bumble cancels the request it waits on when the link ends.
                raise BleakError(
                    f"{self.address} disconnected during the {what}; reconnect and retry."
                ) from None
            raise

    def _current(self, characteristic: BleakGATTCharacteristic) -> CharacteristicProxy[bytes]:
        """The proxy on this connection for ``characteristic`` (which may be from an old one)."""
        current = (
            None
            if self.services is None
            else self.services.characteristics.get(characteristic.handle)
        )
        if current is None or not isinstance(current.obj, CharacteristicProxy):
            raise BleakCharacteristicNotFoundError(characteristic.handle)
        proxy: CharacteristicProxy[bytes] = current.obj
        return proxy

    def _descriptor_handle(self, descriptor: BleakGATTDescriptor) -> int:
        if self.services is None or descriptor.handle not in self.services.descriptors:
            raise BleakError(f"Descriptor with handle {descriptor.handle} was not found!")
        return descriptor.handle

    # ------------------------------------------------------------------- I/O
    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        async with self._gatt("read") as client:
            proxy = self._current(characteristic)
            cached = client.cached_values.get(proxy.handle) if use_cached else None
            value = cached[1] if cached is not None else await client.read_value(proxy)
        logger.debug("read %s (handle %d): %s", characteristic.uuid, proxy.handle, value.hex())
        return bytearray(value)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        async with self._gatt("descriptor read") as client:
            handle = self._descriptor_handle(descriptor)
            cached = client.cached_values.get(handle) if use_cached else None
            value = cached[1] if cached is not None else await client.read_value(handle)
        logger.debug("read descriptor %d: %s", handle, value.hex())
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        value = bytes(data)
        kind = "write" if response else "write-without-response"
        if kind not in characteristic.properties:
            # BlueZ refuses a write type the characteristic does not declare (NotSupported).
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.REQUEST_NOT_SUPPORTED)
        async with self._gatt("write") as client:
            proxy = self._current(characteristic)
            if not response and len(value) > self._max_write_without_response_size():
                raise BleakError(
                    f"{len(value)} bytes do not fit one write without response "
                    f"(max {self._max_write_without_response_size()}); write with response."
                )
            logger.debug(
                "write %s (handle %d, response=%s): %s",
                characteristic.uuid,
                proxy.handle,
                response,
                value.hex(),
            )
            await client.write_value(proxy, value, with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        value = bytes(data)
        async with self._gatt("descriptor write") as client:
            handle = self._descriptor_handle(descriptor)
            logger.debug("write descriptor %d: %s", handle, value.hex())
            await client.write_value(handle, value, with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(
                f"Characteristic {characteristic.uuid} supports neither notify nor indicate."
            )

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        async with self._gatt("start of notifications") as client:
            proxy = self._current(characteristic)
            self._forget_subscriber(client, proxy.handle)
            self._subscribers[proxy.handle] = on_value
            await client.subscribe(proxy, on_value, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        async with self._gatt("stop of notifications") as client:
            proxy = self._current(characteristic)
            subscriber = self._subscribers.pop(proxy.handle, None)
            if subscriber is not None:
                await client.unsubscribe(proxy, subscriber)

    def _forget_subscriber(self, client: Client, value_handle: int) -> None:
        subscriber = self._subscribers.pop(value_handle, None)
        if subscriber is None:
            return
        for subscribers in (client.notification_subscribers, client.indication_subscribers):
            subscribers.get(value_handle, set()).discard(subscriber)

    # -------------------------------------------------------- Service Changed
    def _on_service_changed(self, value: bytes) -> None:
        logger.debug("%s: services changed (%s), discovering again", self.address, value.hex())
        if self._refresh is not None and not self._refresh.done():
            self._refresh_again = True
            return
        self._refresh = asyncio.get_running_loop().create_task(self._rediscover())

    async def _rediscover(self) -> None:
        connection = self._connection
        while connection is not None and connection is self._connection:
            self._refresh_again = False
            subscribers = dict(self._subscribers)
            try:
                await self._discover(connection.gatt_client)
            except core.BaseBumbleError as exc:
                logger.warning("re-discovery of %s failed: %r", self.address, exc)
                return
            # Keep subscriptions whose characteristic still exists at the same handle.
            characteristics = self.services.characteristics if self.services else {}
            self._subscribers = {
                handle: subscriber
                for handle, subscriber in subscribers.items()
                if handle - 1 in characteristics
            }
            if not self._refresh_again:
                break
        self._refresh = None
