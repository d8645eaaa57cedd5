"""Conformance of the simulated bleak backend (in-process link) with bleak 3.1's documented API.

Every test drives plain ``BleakScanner`` / ``BleakClient`` with ``backend=SimScanner`` /
``SimClient`` against a small bumble peripheral written here, and checks what a bleak user
observes. Waits for asynchronous events are bounded by a real-time ``WAIT_S``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import establish_connection
from bumble import att, core, gatt
from bumble.device import Connection, Device
from bumble.link import LocalLink

from simulators import backend
from simulators.testing import start_peripheral

# Real-time bound for anything a test waits for (callbacks, notifications).
WAIT_S = 1.0

ADDRESS = "F0:00:00:00:00:01"
NAME = "Test Pad"
SERVICE = "5a1e0000-0000-4000-8000-00000000a0a0"
READABLE = "5a1e0001-0000-4000-8000-00000000a0a0"
WRITABLE = "5a1e0002-0000-4000-8000-00000000a0a0"
NOTIFYING = "5a1e0003-0000-4000-8000-00000000a0a0"
INDICATING = "5a1e0004-0000-4000-8000-00000000a0a0"
LONG = "5a1e0005-0000-4000-8000-00000000a0a0"
FAILING = "5a1e0006-0000-4000-8000-00000000a0a0"
EXTRA_SERVICE = "5a1e0100-0000-4000-8000-00000000a0a0"
EXTRA = "5a1e0101-0000-4000-8000-00000000a0a0"
USER_DESCRIPTION = "00002901-0000-1000-8000-00805f9b34fb"
CCCD = "00002902-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_16 = 0x180F
MANUFACTURER_ID = 0x0B0E
APP_ERROR_READ = 0x80
APP_ERROR_WRITE = 0x81
LONG_VALUE = bytes(range(256)) + bytes(range(44))  # 300 bytes: several ATT PDUs at MTU 64
SERVER_MAX_MTU = 64

P = gatt.Characteristic.Properties


@dataclass
class Pad:
    """The test peripheral and what it observed."""

    device: Device
    characteristics: dict[str, gatt.Characteristic[bytes]]
    writes: list[bytes] = field(default_factory=list)
    reads: list[int] = field(default_factory=lambda: [0])

    def connection(self) -> Connection:
        (connection,) = self.device.connections.values()
        return connection


def _advertising_data() -> bytes:
    return bytes(
        core.AdvertisingData(
            [
                (core.AdvertisingData.FLAGS, bytes([0x06])),
                (core.AdvertisingData.COMPLETE_LOCAL_NAME, NAME.encode()),
                (
                    core.AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                    core.UUID(SERVICE).uuid_bytes,
                ),
                (core.AdvertisingData.TX_POWER_LEVEL, struct.pack("b", -4)),
                (core.AdvertisingData.MANUFACTURER_SPECIFIC_DATA, b"\x0e\x0b\x01\x02"),
                (core.AdvertisingData.SERVICE_DATA_16_BIT_UUID, b"\x0f\x18\x55"),
            ]
        )
    )


async def start_pad(link: LocalLink, *, address: str = ADDRESS, name: str = NAME) -> Pad:
    writes: list[bytes] = []
    reads = [0]

    def read_hello(connection: Connection) -> bytes:
        del connection
        reads[0] += 1
        return b"hello"

    def record(connection: Connection, value: bytes) -> None:
        del connection
        writes.append(value)

    def refuse_read(connection: Connection) -> bytes:
        raise att.ATT_Error(APP_ERROR_READ)

    def refuse_write(connection: Connection, value: bytes) -> None:
        raise att.ATT_Error(APP_ERROR_WRITE)

    rw = gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE
    characteristics: dict[str, gatt.Characteristic[bytes]] = {
        READABLE: gatt.Characteristic(
            READABLE, P.READ, gatt.Characteristic.READABLE, gatt.CharacteristicValue(read_hello)
        ),
        WRITABLE: gatt.Characteristic(
            WRITABLE,
            P.WRITE | P.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=record),
            descriptors=[gatt.Descriptor(USER_DESCRIPTION, rw, b"setpoint")],
        ),
        NOTIFYING: gatt.Characteristic(
            NOTIFYING, P.READ | P.NOTIFY, gatt.Characteristic.READABLE, b"\x00"
        ),
        INDICATING: gatt.Characteristic(
            INDICATING, P.INDICATE, gatt.Characteristic.Permissions(0), b"\x00"
        ),
        LONG: gatt.Characteristic(LONG, P.READ | P.WRITE, rw, LONG_VALUE),
        FAILING: gatt.Characteristic(
            FAILING, P.READ | P.WRITE, rw, gatt.CharacteristicValue(refuse_read, refuse_write)
        ),
    }
    device = await start_peripheral(
        link,
        name=name,
        address=address,
        services=[gatt.Service(SERVICE, list(characteristics.values()))],
        advertising_data=_advertising_data() if name == NAME else None,
        max_mtu=SERVER_MAX_MTU,
    )
    return Pad(device, characteristics, writes, reads)


@pytest.fixture
async def link() -> AsyncIterator[LocalLink]:
    radio = LocalLink()  # type: ignore[no-untyped-call]  # bumble's own, as third parties use
    backend.use_link(radio)
    yield radio
    await backend.reset()


@pytest.fixture
async def pad(link: LocalLink) -> Pad:
    return await start_pad(link)


@pytest.fixture
async def client(pad: Pad) -> AsyncIterator[BleakClient]:
    del pad
    async with BleakClient(ADDRESS, backend=backend.SimClient, timeout=5) as connected:
        yield connected


def _char(client: BleakClient, uuid: str) -> BleakGATTCharacteristic:
    characteristic = client.services.get_characteristic(uuid)
    assert characteristic is not None
    return characteristic


# ----------------------------------------------------------------------------- scanning


async def test_discover_returns_advertisement_data(pad: Pad) -> None:
    del pad
    found = await BleakScanner.discover(timeout=0.05, return_adv=True, backend=backend.SimScanner)
    device, adv = found[ADDRESS]
    assert device.address == ADDRESS
    assert device.name == NAME
    assert adv.local_name == NAME
    assert adv.service_uuids == [SERVICE]
    assert adv.manufacturer_data == {MANUFACTURER_ID: b"\x01\x02"}
    assert adv.service_data == {"0000180f-0000-1000-8000-00805f9b34fb": b"\x55"}
    assert adv.tx_power == -4
    assert adv.rssi == -50  # bumble's virtual controller reports a fixed RSSI


async def test_detection_callback_and_service_filter(link: LocalLink, pad: Pad) -> None:
    del pad
    await start_peripheral(link, name="Other", address="F0:00:00:00:00:02")
    heard: set[str] = set()
    seen_all = asyncio.Event()

    def on_advert(device: object, adv: object) -> None:
        heard.add(getattr(adv, "local_name", ""))
        seen_all.set()

    async with BleakScanner(on_advert, [SERVICE], backend=backend.SimScanner) as scanner:
        async with asyncio.timeout(WAIT_S):
            await seen_all.wait()
        await asyncio.sleep(0.05)  # "Other" was heard at scan start, or is soon
    assert heard == {NAME}
    assert [d.address for d in scanner.discovered_devices] == [ADDRESS]


async def test_find_device_by_address_and_name(pad: Pad) -> None:
    del pad
    by_address = await BleakScanner.find_device_by_address(
        ADDRESS.lower(), timeout=WAIT_S, backend=backend.SimScanner
    )
    by_name = await BleakScanner.find_device_by_name(
        NAME, timeout=WAIT_S, backend=backend.SimScanner
    )
    missing = await BleakScanner.find_device_by_name(
        "nobody", timeout=0.1, backend=backend.SimScanner
    )
    assert by_address is not None
    assert by_address.address == ADDRESS
    assert by_name is not None
    assert by_name.address == ADDRESS
    assert missing is None


async def test_nothing_selected_is_an_actionable_error() -> None:
    await backend.reset()
    with pytest.raises(backend.NoSimulatedRadioError, match="use_link"):
        await BleakScanner.discover(timeout=0.01, backend=backend.SimScanner)


# --------------------------------------------------------------------------- connecting


async def test_services_use_bluez_handles_and_hide_gap_gatt(client: BleakClient) -> None:
    uuids = {service.uuid for service in client.services}
    assert uuids == {SERVICE}
    writable = _char(client, WRITABLE)
    value_handle = writable.obj.handle
    assert writable.handle == value_handle - 1  # the declaration handle, as BlueZ
    assert writable.properties == ["write-without-response", "write"]
    (description,) = writable.descriptors
    assert description.uuid == USER_DESCRIPTION
    assert description.handle == value_handle + 1
    assert _char(client, NOTIFYING).get_descriptor(CCCD) is not None
    assert client.services.get_characteristic(writable.handle) is writable
    assert client.name == NAME


async def test_services_filter_keeps_only_requested(pad: Pad) -> None:
    del pad
    other = "0000180a-0000-1000-8000-00805f9b34fb"
    async with BleakClient(ADDRESS, services=[other], backend=backend.SimClient) as client:
        assert list(client.services) == []


async def test_connect_to_device_from_scanner(pad: Pad) -> None:
    del pad
    device = await BleakScanner.find_device_by_name(
        NAME, timeout=WAIT_S, backend=backend.SimScanner
    )
    assert device is not None
    async with BleakClient(device, backend=backend.SimClient) as client:
        assert client.is_connected
        assert await client.read_gatt_char(READABLE) == b"hello"
    assert not client.is_connected


async def test_bleak_retry_connector_connects_through_the_backend(pad: Pad) -> None:
    del pad
    device = await BleakScanner.find_device_by_name(
        NAME, timeout=WAIT_S, backend=backend.SimScanner
    )
    assert device is not None
    client = await establish_connection(BleakClient, device, NAME, backend=backend.SimClient)
    try:
        assert await client.read_gatt_char(READABLE) == b"hello"
    finally:
        await client.disconnect()


async def test_unknown_address_raises_device_not_found_without_leaking(pad: Pad) -> None:
    del pad
    await backend.default_adapter()
    before = asyncio.all_tasks()
    client = BleakClient("F0:00:00:00:00:99", backend=backend.SimClient, timeout=0.2)
    with pytest.raises(BleakDeviceNotFoundError) as caught:
        await client.connect()
    assert caught.value.identifier == "F0:00:00:00:00:99"
    assert not client.is_connected
    assert asyncio.all_tasks() == before


# -------------------------------------------------------------------------------- GATT


async def test_read_and_writes(client: BleakClient, pad: Pad) -> None:
    assert await client.read_gatt_char(READABLE) == bytearray(b"hello")
    await client.write_gatt_char(WRITABLE, b"\x01", response=True)
    await client.write_gatt_char(WRITABLE, b"\x02", response=False)
    await client.read_gatt_char(READABLE)  # the command is delivered before this round trip
    assert pad.writes == [b"\x01", b"\x02"]


async def test_undeclared_write_kind_is_refused_like_bluez(client: BleakClient, pad: Pad) -> None:
    with pytest.raises(BleakGATTProtocolError) as caught:
        await client.write_gatt_char(READABLE, b"\x01", response=True)
    assert caught.value.code == BleakGATTProtocolErrorCode.REQUEST_NOT_SUPPORTED
    with pytest.raises(BleakGATTProtocolError):
        await client.write_gatt_char(LONG, b"\x01", response=False)
    assert pad.writes == []


async def test_att_error_responses_raise_protocol_errors(client: BleakClient) -> None:
    with pytest.raises(BleakGATTProtocolError) as read_error:
        await client.read_gatt_char(FAILING)
    with pytest.raises(BleakGATTProtocolError) as write_error:
        await client.write_gatt_char(FAILING, b"\x00", response=True)
    assert read_error.value.code == APP_ERROR_READ
    assert write_error.value.code == APP_ERROR_WRITE
    assert client.is_connected  # an ATT error does not end the link


async def test_mtu_and_long_values(client: BleakClient, pad: Pad) -> None:
    assert client.mtu_size == SERVER_MAX_MTU
    assert _char(client, WRITABLE).max_write_without_response_size == SERVER_MAX_MTU - 3
    assert await client.read_gatt_char(LONG) == LONG_VALUE  # read blob
    reversed_value = LONG_VALUE[::-1]
    await client.write_gatt_char(LONG, reversed_value, response=True)  # prepare + execute
    assert pad.characteristics[LONG].value == reversed_value
    with pytest.raises(BleakError, match="write with response"):
        await client.write_gatt_char(WRITABLE, bytes(SERVER_MAX_MTU), response=False)


async def test_descriptors_read_write_and_cccd_guard(client: BleakClient) -> None:
    description = _char(client, WRITABLE).descriptors[0]
    assert await client.read_gatt_descriptor(description.handle) == b"setpoint"
    await client.write_gatt_descriptor(description.handle, b"target")
    assert await client.read_gatt_descriptor(description) == b"target"
    cccd = _char(client, NOTIFYING).get_descriptor(CCCD)
    assert cccd is not None
    with pytest.raises(ValueError, match="CCCD"):
        await client.write_gatt_descriptor(cccd, b"\x01\x00")


async def test_use_cached_read_does_not_ask_the_device(client: BleakClient, pad: Pad) -> None:
    assert await client.read_gatt_char(READABLE) == b"hello"
    reads = pad.reads[0]
    assert await client.read_gatt_char(READABLE, use_cached=True) == b"hello"
    assert pad.reads[0] == reads


async def test_notify_and_indicate(client: BleakClient, pad: Pad) -> None:
    received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_indication(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        await received.put((sender.uuid, bytes(data)))

    await client.start_notify(NOTIFYING, lambda s, d: received.put_nowait((s.uuid, bytes(d))))
    await client.start_notify(INDICATING, on_indication)
    await pad.device.notify_subscribers(pad.characteristics[NOTIFYING], b"\x2a")
    await pad.device.indicate_subscribers(pad.characteristics[INDICATING], b"\x07")
    async with asyncio.timeout(WAIT_S):
        assert await received.get() == (NOTIFYING, b"\x2a")
        assert await received.get() == (INDICATING, b"\x07")
    await client.stop_notify(NOTIFYING)
    cccd = pad.device.gatt_server.read_cccd(pad.connection(), pad.characteristics[NOTIFYING])
    assert cccd == b"\x00\x00"
    with pytest.raises(BleakError, match="neither notify nor indicate"):
        await client.start_notify(READABLE, lambda s, d: None)


async def test_service_changed_triggers_rediscovery(client: BleakClient, pad: Pad) -> None:
    extra = gatt.Characteristic(EXTRA, P.READ, gatt.Characteristic.READABLE, b"new")
    service = gatt.Service(EXTRA_SERVICE, [extra])
    pad.device.add_service(service)
    changed = pad.device.gatt_service
    assert changed is not None
    assert changed.service_changed_characteristic is not None
    await pad.device.indicate_subscribers(
        changed.service_changed_characteristic,
        struct.pack("<HH", service.handle, service.end_group_handle),
    )
    assert await client.read_gatt_char(READABLE) == b"hello"  # waits for the re-discovery
    assert client.services.get_service(EXTRA_SERVICE) is not None
    assert await client.read_gatt_char(EXTRA) == b"new"


# ----------------------------------------------------------------------- disconnection


async def test_peripheral_side_disconnect_fires_callback(pad: Pad) -> None:
    gone = asyncio.Event()
    client = BleakClient(ADDRESS, lambda c: gone.set(), backend=backend.SimClient)
    await client.connect()
    await pad.connection().disconnect()
    async with asyncio.timeout(WAIT_S):
        await gone.wait()
    assert not client.is_connected
    with pytest.raises(BleakError, match="Service Discovery"):
        _ = client.services
    with pytest.raises(BleakError, match="Not connected"):
        await client.start_notify(NOTIFYING, lambda s, d: None)


async def test_local_disconnect_fires_callback_once_and_device_advertises_again(pad: Pad) -> None:
    calls: list[BleakClient] = []
    client = BleakClient(ADDRESS, calls.append, backend=backend.SimClient)
    await client.connect()
    await client.disconnect()
    await client.disconnect()  # a second disconnect is a no-op
    assert calls == [client]
    assert not pad.device.connections
    await client.connect()  # the pad advertises again and accepts a new connection
    assert client.is_connected


async def test_link_loss_during_request_raises_bleak_error(client: BleakClient, pad: Pad) -> None:
    slow_read_started = asyncio.Event()

    async def slow_read(connection: Connection) -> bytes:
        slow_read_started.set()
        await asyncio.sleep(WAIT_S)
        return b""

    pad.characteristics[READABLE].value = gatt.CharacteristicValue(slow_read)
    reading = asyncio.ensure_future(client.read_gatt_char(READABLE))
    queued = asyncio.ensure_future(client.read_gatt_char(LONG))
    async with asyncio.timeout(WAIT_S):
        await slow_read_started.wait()
        await pad.connection().disconnect()
        for operation in (reading, queued):
            with pytest.raises(BleakError, match="disconnected"):
                await operation


async def test_reset_ends_links_and_the_peripheral_advertises_again(link: LocalLink) -> None:
    await start_pad(link)
    gone = asyncio.Event()
    client = BleakClient(ADDRESS, lambda c: gone.set(), backend=backend.SimClient)
    await client.connect()
    await backend.reset()
    assert gone.is_set()
    assert not client.is_connected
    backend.use_link(link)
    async with BleakClient(ADDRESS, backend=backend.SimClient) as again:
        assert again.is_connected


# ---------------------------------------------------------------- pairing, concurrency


async def test_pair_and_unpair(client: BleakClient, pad: Pad) -> None:
    await client.pair()
    assert pad.connection().is_encrypted
    await client.unpair()
    assert not client.is_connected
    with pytest.raises(BleakDeviceNotFoundError):
        await client.unpair()  # nothing left to forget


async def test_pair_while_connecting(pad: Pad) -> None:
    async with BleakClient(ADDRESS, pair=True, backend=backend.SimClient):
        assert pad.connection().is_encrypted


async def test_three_clients_at_once(link: LocalLink) -> None:
    addresses = [f"F0:00:00:00:00:1{i}" for i in range(3)]
    pads = [await start_pad(link, address=a, name=f"Pad {i}") for i, a in enumerate(addresses)]

    async def session(address: str) -> bytes:
        async with BleakClient(address, backend=backend.SimClient) as client:
            for value in range(10):
                await client.write_gatt_char(WRITABLE, bytes([value]), response=True)
            return bytes(await client.read_gatt_char(READABLE))

    assert await asyncio.gather(*(session(a) for a in addresses)) == [b"hello"] * 3
    assert [p.writes for p in pads] == [[bytes([v]) for v in range(10)]] * 3
